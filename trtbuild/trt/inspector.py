"""Open a checked plan and describe the engine: I/O tensors, profiles, layers (EngineInspector).

``deserialize_engine`` is the one place that hands bytes to ``deserialize_cuda_engine``, and only
bytes that :func:`trtbuild.engine_file.load_engine_bytes` already checked. The layer information
JSON changed in 11.x ("I/O Tensors" objects instead of "Bindings" names), so it is parsed
defensively by :func:`parse_layer_information`, which needs no TensorRT.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from trtbuild.errors import EngineFileError

log = logging.getLogger(__name__)


def deserialize_engine(
    data: bytes | bytearray | memoryview, manifest: Mapping[str, Any] | None, *, verbose: bool = False, source: str = "engine"
) -> Any:
    """``ICudaEngine`` from checked plan bytes, with the runtime settings the manifest asks for."""
    from trtbuild.trt.compat import import_tensorrt

    import_tensorrt()
    import tensorrt as trt

    from trtbuild.trt.logger import get_logger

    view = memoryview(data).cast("B")
    if bytes(view[:4]) != b"ftrt":  # never hand foreign bytes to TensorRT, whoever calls this
        raise EngineFileError(f"{source} is not a TensorRT plan (it does not start with 'ftrt'); refusing to load it.")
    logger = get_logger(verbose)
    logger.take_errors()
    from trtbuild.trt.runtime import ALLOW_HOST_CODE_ENV, register_plugins

    register_plugins(trt, logger)  # TensorRT's own plugins, before deserializing (as Polygraphy/trtexec)
    runtime = trt.Runtime(logger)
    manifest = manifest or {}
    compat = manifest.get("compatibility") or {}
    allow_host_code = compat.get("version_compatible") or os.environ.get(ALLOW_HOST_CODE_ENV, "") == "1"
    if allow_host_code and hasattr(runtime, "engine_host_code_allowed"):
        # A version-compatible plan embeds the lean runtime, which only runs when host code is allowed.
        runtime.engine_host_code_allowed = True
    dla_core = manifest.get("dla_core")
    if dla_core is not None:
        runtime.DLA_core = int(dla_core)  # before deserializing a DLA engine
    engine = runtime.deserialize_cuda_engine(view)
    if engine is None:
        errors = logger.take_errors()
        detail = "; ".join(e.strip() for e in errors[-3:]) or "no message"
        raise EngineFileError(
            f"TensorRT {trt.__version__} could not deserialize {source} ({detail}); rebuild the engine on this host "
            "from the same ONNX and spec."
        )
    return engine


def describe_engine(engine: Any) -> dict[str, Any]:
    """I/O tensors, per-profile shapes and layer information of a deserialized engine."""
    from trtbuild.trt.compat import import_tensorrt

    import_tensorrt()
    import tensorrt as trt

    from trtbuild.trt.dtypes import dtype_name

    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    io = []
    for name in names:
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        io.append({
            "name": name,
            "mode": "input" if is_input else "output",
            "dtype": dtype_name(trt, engine.get_tensor_dtype(name)),
            "shape": list(engine.get_tensor_shape(name)),
            "shape_tensor": bool(engine.is_shape_inference_io(name)),
        })  # fmt: skip
    profiles: list[dict[str, Any]] = []
    for index in range(engine.num_optimization_profiles):
        shapes: dict[str, Any] = {}
        for tensor in io:
            if tensor["mode"] != "input":
                continue
            name = tensor["name"]
            if tensor["shape_tensor"] and hasattr(engine, "get_tensor_profile_values"):
                # The binding labels its arguments (name: int, profile_index: str); they are (profile, name).
                lo, opt, hi = engine.get_tensor_profile_values(index, name)
            else:
                lo, opt, hi = engine.get_tensor_profile_shape(name, index)
            shapes[name] = {"min": list(lo), "opt": list(opt), "max": list(hi)}
        profiles.append(shapes)
    info: dict[str, Any] = {"io": io, "profiles": profiles, "num_layers": int(engine.num_layers)}
    level = getattr(engine, "hardware_compatibility_level", None)
    if level is not None:
        info["hardware_compatibility_level"] = getattr(level, "name", str(level))
    verbosity = getattr(engine, "profiling_verbosity", None)
    if verbosity is not None:
        info["profiling_verbosity"] = getattr(verbosity, "name", str(verbosity))
    try:
        inspector = engine.create_engine_inspector()
        text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
        info["layers"] = parse_layer_information(text)
    except Exception as exc:  # layer information is a bonus: never fail inspect over it
        log.debug("EngineInspector failed: %s", exc)
        info["layers"] = None
    return info


def parse_layer_information(text: str | None) -> dict[str, Any]:
    """EngineInspector JSON (<= 10.x "Bindings" or 11.x "I/O Tensors" schema) -> a plain summary.

    With LAYER_NAMES_ONLY verbosity the layers are bare names; with DETAILED they are objects with
    type, tactic, inputs and outputs. Unknown keys are kept under ``raw``.
    """
    if not text:
        return {"layers": [], "io": [], "detailed": False, "schema": "empty"}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # ONELINE or malformed text: one layer per line, names only.
        return {"layers": [{"name": line.strip()} for line in text.splitlines() if line.strip()], "io": [],
                "detailed": False, "schema": "text"}  # fmt: skip
    if isinstance(data, list):
        data = {"Layers": data}
    layers_raw = data.get("Layers") or []
    layers: list[dict[str, Any]] = []
    detailed = False
    for entry in layers_raw:
        if isinstance(entry, str):
            layers.append({"name": entry})
            continue
        if not isinstance(entry, dict):
            continue
        detailed = True
        layers.append({
            "name": entry.get("Name", ""),
            "type": entry.get("LayerType", entry.get("Type", "")),
            "tactic": entry.get("TacticName", entry.get("TacticValue", "")),
            "inputs": [_tensor_summary(t) for t in entry.get("Inputs", []) or []],
            "outputs": [_tensor_summary(t) for t in entry.get("Outputs", []) or []],
            "raw": {k: v for k, v in entry.items() if k not in ("Name", "LayerType", "Inputs", "Outputs")},
        })  # fmt: skip
    if "I/O Tensors" in data:
        schema = "11.x I/O Tensors"
        io = [_io_tensor(t) for t in data.get("I/O Tensors") or []]
    else:
        schema = "Bindings"
        io = [{"name": b} if isinstance(b, str) else _io_tensor(b) for b in data.get("Bindings") or []]
    return {"layers": layers, "io": io, "detailed": detailed, "schema": schema}


def _tensor_summary(tensor: Any) -> dict[str, Any]:
    if not isinstance(tensor, dict):
        return {"name": str(tensor)}
    # 10.x combines layout and type in "Format/Datatype"; 11.x splits them into "Format" and "DataType".
    dtype = tensor.get("DataType") or tensor.get("Format/Datatype", "")
    return {"name": tensor.get("Name", ""), "dims": tensor.get("Dimensions"), "type": dtype, "format": tensor.get("Format", "")}


def _io_tensor(tensor: Any) -> dict[str, Any]:
    if not isinstance(tensor, dict):
        return {"name": str(tensor)}
    summary = _tensor_summary(tensor)
    summary["mode"] = str(tensor.get("IOMode", "")).lower() or None
    profiles = tensor.get("ProfileInfo") or []
    if profiles:
        summary["profiles"] = [{"min": p.get("MinShape"), "opt": p.get("OptShape"), "max": p.get("MaxShape")}
                               for p in profiles if isinstance(p, dict)]  # fmt: skip
    return summary
