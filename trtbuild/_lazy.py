"""Lazy public names: a package lists ``name -> "module:attribute"`` and imports each on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, api: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``api[name]`` once and caches it in ``namespace``."""

    def __getattr__(name: str) -> Any:
        target = api.get(name)
        if target is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        module, _, attr = target.partition(":")
        value = getattr(importlib.import_module(module), attr)
        namespace[name] = value
        return value

    return __getattr__
