"""A CPU test double of the ``tensorrt``, ``pycuda`` and cuda-python modules (tests only; trtbuild never
imports it).

``install(level)`` puts fake ``tensorrt``, ``pycuda``, ``pycuda.driver`` and cuda-python's
``cuda.bindings.runtime``/``cuda.cudart`` into ``sys.modules`` (``pycuda.autoprimaryctx`` and
``pycuda.autoinit`` are created when imported, pushing device 0's context as PyCUDA does) and yields
the fake tensorrt module. Each level ("8.6", "10.x",
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

from ._cudart import CaptureApi, build_cuda_python
from ._levels import LEVELS, get_level
from ._pycuda import DeviceMemory, build_modules
from ._trt_module import build_module

__all__ = ["LEVELS", "install"]

_FAKE_NAMES = (
    "tensorrt", "pycuda", "pycuda.driver", "pycuda.autoprimaryctx", "pycuda.autoinit",
    "cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart",
)  # fmt: skip


def _forget_trtbuild_trt() -> None:
    """Drop cached ``trtbuild.trt.*`` modules so the next import binds to the current tensorrt."""
    parent = sys.modules.get("trtbuild.trt")
    for name in [n for n in sys.modules if n.startswith("trtbuild.trt.")]:
        del sys.modules[name]
        child = name.rsplit(".", 1)[1]
        if parent is not None and name.count(".") == 2 and hasattr(parent, child):
            delattr(parent, child)  # else `from trtbuild.trt import x` returns the stale module


@contextlib.contextmanager
def install(level: str, *, devices: int = 1, cuda_python: bool = True, dla_cores: int = 0) -> Iterator[types.ModuleType]:
    """Install the fake modules for ``level`` into ``sys.modules``; restore everything afterwards.

    ``devices``: how many emulated GPUs there are; ``cuda_python``: whether cuda-python (graph capture) is
    importable; ``dla_cores``: DLA cores the builder and runtime report.
    """
    lvl = get_level(level)
    mem = DeviceMemory(devices)
    mem.dla_cores = dla_cores
    pycuda_mods, finder = build_modules(mem)
    mods: dict[str, types.ModuleType] = {"tensorrt": build_module(lvl, mem), **pycuda_mods}
    capture = CaptureApi(mem)
    mods["tensorrt"].EMULATOR_CAPTURE = capture  # type: ignore[attr-defined]
    if cuda_python:
        mods.update(build_cuda_python(capture))
    for name, module in mods.items():
        # A real module has a spec; importlib.util.find_spec (used by torch.export.load) insists on one.
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package="." not in name)
    saved = {name: sys.modules.get(name) for name in _FAKE_NAMES}
    _forget_trtbuild_trt()
    for name in _FAKE_NAMES:
        sys.modules.pop(name, None)  # a name this install does not fake is absent, not the real module
    sys.modules.update(mods)
    if not cuda_python:
        for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
            sys.modules[name] = None  # type: ignore[assignment]  # import fails as when it is not installed
    sys.meta_path.insert(0, finder)
    try:
        yield mods["tensorrt"]
    finally:
        sys.meta_path.remove(finder)
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
        _forget_trtbuild_trt()
