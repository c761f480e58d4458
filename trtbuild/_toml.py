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


#: Suites and profile files are a few KiB; a larger "TOML" file is a wrong path, not settings.
MAX_TOML_BYTES = 16 << 20


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise TrtbuildError(f"{path} is a folder, not a TOML file; give the path of the .toml file.")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_TOML_BYTES + 1)
    except FileNotFoundError:
        raise TrtbuildError(f"{path} does not exist; check the path.") from None
    except OSError as exc:
        raise TrtbuildError(f"Cannot read {path} ({exc.strerror or exc}); check the path and its permissions.") from None
    if len(raw) > MAX_TOML_BYTES:
        raise TrtbuildError(f"{path} is larger than {MAX_TOML_BYTES >> 20} MiB, far more than a settings file; check the path.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TrtbuildError(
            f"{path} is not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x}); TOML files are UTF-8: save it as "
            "UTF-8 and run again."
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TrtbuildError(f"{path} is not valid TOML ({exc}); fix the file and run again.") from None
    except RecursionError:
        raise TrtbuildError(f"{path} nests tables or arrays too deeply to read; fix the file and run again.") from None
