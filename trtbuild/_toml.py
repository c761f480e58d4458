"""TOML reading (tomllib on 3.11+, tomli on 3.10) with errors a user can act on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from trtbuild.errors import TrtbuildError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise TrtbuildError(f"{path} does not exist; check the path.") from None
    except tomllib.TOMLDecodeError as exc:
        raise TrtbuildError(f"{path} is not valid TOML ({exc}); fix the file and run again.") from None
