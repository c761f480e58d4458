"""A CPU test double of the ``tensorrt`` and ``pycuda`` modules (tests only; trtbuild never imports it).

``install(level)`` puts fake ``tensorrt``, ``pycuda``, ``pycuda.driver``, ``pycuda.autoprimaryctx`` and
``pycuda.autoinit`` into ``sys.modules`` and yields the fake tensorrt module. Each level ("8.6", "10.x",
"11.x") exposes only the names that TensorRT version has (11.x: no FP16/INT8 flags, no calibrators,
no EXPLICIT_BATCH) with that version's enum values. Networks run through ONNX Runtime on host memory;
TensorRT's contracts are enforced: profile bounds, input shapes set before execute, every address set,
foreign or truncated plans rejected, errors reported through the logger at ERROR severity.

Nothing it measures is a TensorRT or GPU figure.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import sys
import types
from collections.abc import Iterator

from ._levels import LEVELS, get_level
from ._pycuda import DeviceMemory, build_modules
from ._trt_module import build_module

__all__ = ["LEVELS", "install"]

_FAKE_NAMES = ("tensorrt", "pycuda", "pycuda.driver", "pycuda.autoprimaryctx", "pycuda.autoinit")


def _forget_trtbuild_trt() -> None:
    """Drop cached ``trtbuild.trt.*`` modules so the next import binds to the current tensorrt."""
    parent = sys.modules.get("trtbuild.trt")
    for name in [n for n in sys.modules if n.startswith("trtbuild.trt.")]:
        del sys.modules[name]
        child = name.rsplit(".", 1)[1]
        if parent is not None and name.count(".") == 2 and hasattr(parent, child):
            delattr(parent, child)  # else `from trtbuild.trt import x` returns the stale module


@contextlib.contextmanager
def install(level: str) -> Iterator[types.ModuleType]:
    """Install the fake modules for ``level`` into ``sys.modules``; restore everything afterwards."""
    lvl = get_level(level)
    mem = DeviceMemory()
    mods: dict[str, types.ModuleType] = {"tensorrt": build_module(lvl, mem), **build_modules(mem)}
    for name, module in mods.items():
        # A real module has a spec; importlib.util.find_spec (used by torch.export.load) insists on one.
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package="." not in name)
    saved = {name: sys.modules.get(name) for name in _FAKE_NAMES}
    _forget_trtbuild_trt()
    sys.modules.update(mods)
    try:
        yield mods["tensorrt"]
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
        _forget_trtbuild_trt()
