"""Assemble the fake ``tensorrt`` module for one API level from the template classes."""

from __future__ import annotations

import types
from typing import Any

from . import _trt_core as core
from . import _trt_runtime as rt
from ._enums import make_enum
from ._levels import ABSENT_CLASSES, ABSENT_MEMBERS, SEVERITY, Level
from ._onnx_exec import TRT_TO_NUMPY
from ._pycuda import DeviceMemory
from ._trt_common import Dims, IHostMemory

# (public name, template, base names) in dependency order
_CLASSES: list[tuple[str, type, tuple[str, ...]]] = [
    ("ILogger", core.ILogger, ()),
    ("Logger", core.Logger, ("ILogger",)),
    ("IHostMemory", IHostMemory, ()),
    ("ITensor", core.ITensor, ()),
    ("ILayer", core.ILayer, ()),
    ("INetworkDefinition", core.INetworkDefinition, ()),
    ("ParserError", core.ParserError, ()),
    ("OnnxParser", core.OnnxParser, ()),
    ("IOptimizationProfile", core.IOptimizationProfile, ()),
    ("ITimingCache", core.ITimingCache, ()),
    ("IProgressMonitor", core.IProgressMonitor, ()),
    ("IInt8Calibrator", core.IInt8Calibrator, ()),
    ("IInt8EntropyCalibrator", core.IInt8EntropyCalibrator, ("IInt8Calibrator",)),
    ("IInt8EntropyCalibrator2", core.IInt8EntropyCalibrator2, ("IInt8Calibrator",)),
    ("IInt8LegacyCalibrator", core.IInt8LegacyCalibrator, ("IInt8Calibrator",)),
    ("IInt8MinMaxCalibrator", core.IInt8MinMaxCalibrator, ("IInt8Calibrator",)),
    ("IOutputAllocator", core.IOutputAllocator, ()),
    ("IPluginRegistry", core.IPluginRegistry, ()),
    ("IBuilderConfig", core.IBuilderConfig, ()),
    ("Builder", core.Builder, ()),
    ("Runtime", rt.Runtime, ()),
    ("ICudaEngine", rt.ICudaEngine, ()),
    ("IExecutionContext", rt.IExecutionContext, ()),
    ("EngineInspector", rt.EngineInspector, ()),
    ("Refitter", rt.Refitter, ()),
    ("OnnxParserRefitter", rt.OnnxParserRefitter, ()),
]

# Module-level DataType aliases (tensorrt/__init__.py) and the level they need.
_DTYPE_ALIASES = {
    "float32": "FLOAT", "float16": "HALF", "int8": "INT8", "int32": "INT32", "bool": "BOOL", "uint8": "UINT8",
    "fp8": "FP8", "int64": "INT64", "bfloat16": "BF16", "int4": "INT4", "fp4": "FP4", "e8m0": "E8M0",
}  # fmt: skip


def _copy_class(name: str, template: type, bases: tuple[type, ...], mod: Any, level: Level) -> type:
    absent = ABSENT_MEMBERS.get(level.name, {}).get(name, set())
    ns = {k: v for k, v in template.__dict__.items() if k not in ("__dict__", "__weakref__") and k not in absent}
    ns.update(__module__="tensorrt", __qualname__=name, _M=mod, _L=level)
    if not bases:
        bases = template.__bases__
    return type(template)(name, bases, ns)


def build_module(level: Level, mem: DeviceMemory) -> types.ModuleType:
    mod = types.ModuleType("tensorrt")
    mod.__doc__ = f"Emulated TensorRT {level.version} (tests/trt_emulator): ONNX Runtime on CPU, no GPU."
    mod.__version__ = level.version  # type: ignore[attr-defined]
    mod.__file__ = __file__
    mod.EMULATOR_LEVEL = level.name  # type: ignore[attr-defined]
    mod._device_memory = mem  # type: ignore[attr-defined]
    # Test hooks (never real TensorRT names): op types whose engines cannot be captured into a CUDA graph,
    # the GPU that timing caches name, and every calibration batch TensorRT read.
    mod.EMULATOR_CAPTURE_UNSAFE_OPS = set()  # type: ignore[attr-defined]
    mod.EMULATOR_GPU_ID = "Emulated GPU sm_86"  # type: ignore[attr-defined]
    mod.EMULATOR_CALIBRATION_READS = []  # type: ignore[attr-defined]
    for enum_name, members in level.enums.items():
        setattr(mod, enum_name, make_enum(enum_name, members))
    mod.Dims = Dims  # type: ignore[attr-defined]
    for name, template, base_names in _CLASSES:
        if name in ABSENT_CLASSES.get(level.name, set()):
            continue
        bases = tuple(getattr(mod, b) for b in base_names)
        setattr(mod, name, _copy_class(name, template, bases, mod, level))
    severity = make_enum("Severity", SEVERITY)
    severity.__qualname__ = "ILogger.Severity"
    mod.ILogger.Severity = severity  # type: ignore[attr-defined]
    for sev_name, member in severity.__members__.items():
        setattr(mod.ILogger, sev_name, member)  # trt.Logger.WARNING works like trt.Logger.Severity.WARNING
    for alias, dt in _DTYPE_ALIASES.items():
        if hasattr(mod.DataType, dt):  # type: ignore[attr-defined]
            setattr(mod, alias, getattr(mod.DataType, dt))  # type: ignore[attr-defined]

    def nptype(trt_type: Any) -> Any:
        """numpy type for a TensorRT DataType, as ``tensorrt.nptype`` does."""
        try:
            return TRT_TO_NUMPY[trt_type.name]
        except (KeyError, AttributeError):
            raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.") from None

    def volume(iterable: Any) -> int:
        vol = 1
        for d in iterable:
            vol *= int(d)
        return vol

    registry = mod.IPluginRegistry()

    def init_libnvinfer_plugins(logger: Any, namespace: str) -> bool:
        registry._creators.update(core.STANDARD_PLUGINS)
        return True

    def get_plugin_registry() -> Any:
        return registry

    def get_nv_onnx_parser_version() -> int:
        major, minor, patch = level.version_tuple[:3]
        return major * 10000 + minor * 100 + patch

    for fn in (nptype, volume, init_libnvinfer_plugins, get_plugin_registry, get_nv_onnx_parser_version):
        fn.__module__ = "tensorrt"
        setattr(mod, fn.__name__, fn)
    return mod
