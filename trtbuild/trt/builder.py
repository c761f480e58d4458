"""BuildPlan -> serialized TensorRT plan -> ``model.engine`` + manifest, on TensorRT 8.5/8.6, 10.x, 11.x.

One code path; every version difference is a ``hasattr``/``getattr`` on the installed module (enum
integers changed in 11.0, so none is stored). Every BuildOptions field is either applied or refused
with an error naming the option and the installed TensorRT version: :data:`HANDLED_OPTIONS` lists
how each one is handled, and a test keeps it in step with the dataclass.
"""

from __future__ import annotations

import contextlib
import ctypes
import fnmatch
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.errors import ModelError, ShapeError, SpecError, TrtbuildError
from trtbuild.trt.compat import import_tensorrt

import_tensorrt()  # a MissingDependencyError with install steps, not a bare ImportError or a stub
import tensorrt as trt  # noqa: E402

from trtbuild.plan import BuildPlan, check_conflicts  # noqa: E402
from trtbuild.plan import onnx_has_low_precision as plan_low_precision  # noqa: E402
from trtbuild.trt.compat import (  # noqa: E402
    cuda_device,
    has_calibrators,
    has_precision_flags,
    member,
)
from trtbuild.trt.dtypes import dtype_name, from_trtexec  # noqa: E402
from trtbuild.trt.logger import get_logger  # noqa: E402

log = logging.getLogger(__name__)

#: trtexec pool names -> MemoryPoolType members.
MEMORY_POOLS = {
    "workspace": "WORKSPACE",
    "dlaSRAM": "DLA_MANAGED_SRAM",
    "dlaLocalDRAM": "DLA_LOCAL_DRAM",
    "dlaGlobalDRAM": "DLA_GLOBAL_DRAM",
    "tacticSharedMem": "TACTIC_SHARED_MEMORY",
}
#: trtexec I/O layouts -> TensorFormat members.
TENSOR_FORMATS = {
    "chw": "LINEAR", "chw2": "CHW2", "chw4": "CHW4", "hwc8": "HWC8", "chw16": "CHW16", "chw32": "CHW32",
    "dhwc8": "DHWC8", "cdhw32": "CDHW32", "hwc": "HWC", "dhwc": "DHWC", "dla_linear": "DLA_LINEAR",
    "dla_hwc4": "DLA_HWC4", "hwc16": "HWC16",
}  # fmt: skip
#: trtexec --preview names -> PreviewFeature members.
PREVIEW_FEATURES = {
    "fasterdynamicshapes0805": "FASTER_DYNAMIC_SHAPES_0805",
    "disableexternaltacticsourcesforcore0805": "DISABLE_EXTERNAL_TACTIC_SOURCES_FOR_CORE_0805",
    "profilesharing0806": "PROFILE_SHARING_0806",
    "aliasedpluginio1003": "ALIASED_PLUGIN_IO_10_03",
    "runtimeactivationresize": "RUNTIME_ACTIVATION_RESIZE_10_10",
    "multideviceruntime": "MULTIDEVICE_RUNTIME_10_16",
}
HARDWARE_LEVELS = {"none": "NONE", "ampere+": "AMPERE_PLUS", "sameComputeCapability": "SAME_COMPUTE_CAPABILITY"}
RUNTIME_PLATFORMS = {"SameAsBuild": "SAME_AS_BUILD", "WindowsAMD64": "WINDOWS_AMD64"}
PROFILING_VERBOSITY = {"layer_names_only": "LAYER_NAMES_ONLY", "detailed": "DETAILED", "none": "NONE"}
TILING_LEVELS = ("NONE", "FAST", "MODERATE", "FULL")
#: trtexec's default (the library's own is 1); engines built the same way time the same way.
TRTEXEC_AVG_TIMING = 8

#: How each BuildOptions field is handled (a test checks this covers every field).
HANDLED_OPTIONS: dict[str, str] = {
    "profiles": "IOptimizationProfile.set_shape / set_shape_input per profile",
    "fp16": "BuilderFlag.FP16 (<= 10.x); 11.x: needs an FP16-cast ONNX",
    "bf16": "BuilderFlag.BF16 (9.x/10.x); 11.x: needs a BF16/FP16-cast ONNX",
    "int8": "BuilderFlag.INT8 + calibrator or Q/DQ (<= 10.x); 11.x: needs a Q/DQ ONNX",
    "fp8": "BuilderFlag.FP8 (<= 10.x); 11.x refused",
    "int4": "BuilderFlag.INT4 (10.x); else refused",
    "best": "FP16 + BF16 + INT8 flags (<= 10.x); 11.x refused",
    "calib": "cache-only IInt8EntropyCalibrator2 (<= 10.x); 11.x refused",
    "calib_profile": "IBuilderConfig.set_calibration_profile (<= 10.x)",
    "precision_constraints": "OBEY_/PREFER_PRECISION_CONSTRAINTS (<= 10.x); 11.x refused",
    "layer_precisions": "ILayer.precision (<= 10.x); 11.x refused",
    "layer_output_types": "ILayer.set_output_type (<= 10.x); 11.x refused",
    "strongly_typed": "NetworkDefinitionCreationFlag.STRONGLY_TYPED (10.x); always on in 11.x; 8.x refused",
    "input_io_formats": "ITensor.allowed_formats (+ dtype on <= 10.x)",
    "output_io_formats": "ITensor.allowed_formats (+ dtype on <= 10.x)",
    "mem_pool_size": "IBuilderConfig.set_memory_pool_limit per MemoryPoolType",
    "profiling_verbosity": "IBuilderConfig.profiling_verbosity",
    "avg_timing": "IBuilderConfig.avg_timing_iterations (default 8, as trtexec)",
    "refit": "BuilderFlag.REFIT",
    "strip_weights": "BuilderFlag.STRIP_PLAN (+ REFIT_IDENTICAL unless --refit)",
    "strip_all_weights": "folded into refit + strip_weights by the spec",
    "version_compatible": "BuilderFlag.VERSION_COMPATIBLE (+ NATIVE_INSTANCENORM, VC plugin libraries)",
    "exclude_lean_runtime": "BuilderFlag.EXCLUDE_LEAN_RUNTIME",
    "plugin_instance_norm": "OnnxParser.clear_flag(NATIVE_INSTANCENORM)",
    "uint8_asymmetric_quantization_dla": "OnnxParserFlag.ENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA",
    "report_capability_dla": "OnnxParserFlag.REPORT_CAPABILITY_DLA + parser.set_builder_config",
    "adjust_for_dla": "OnnxParserFlag.ADJUST_FOR_DLA",
    "enable_plugin_override": "OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE",
    "sparsity": "BuilderFlag.SPARSE_WEIGHTS (force refused)",
    "no_tf32": "clear BuilderFlag.TF32",
    "direct_io": "BuilderFlag.DIRECT_IO",
    "layer_device_types": "IBuilderConfig.set_device_type per layer",
    "allow_gpu_fallback": "BuilderFlag.GPU_FALLBACK",
    "build_dla_standalone": "refused: EngineCapability.DLA_STANDALONE makes a cuDLA loadable, not a TensorRT plan",
    "save_engine": "the engine path",
    "tactic_sources": "IBuilderConfig.set_tactic_sources from TacticSource names",
    "no_builder_cache": "BuilderFlag.DISABLE_TIMING_CACHE",
    "no_compilation_cache": "BuilderFlag.DISABLE_COMPILATION_CACHE",
    "error_on_timing_cache_miss": "BuilderFlag.ERROR_ON_TIMING_CACHE_MISS",
    "timing_cache_file": "load, use, merge (ITimingCache.combine) and save under a file lock",
    "preview": "IBuilderConfig.set_preview_feature",
    "builder_optimization_level": "IBuilderConfig.builder_optimization_level",
    "max_tactics": "IBuilderConfig.max_num_tactics",
    "hardware_compatibility_level": "IBuilderConfig.hardware_compatibility_level",
    "runtime_platform": "IBuilderConfig.runtime_platform",
    "max_aux_streams": "IBuilderConfig.max_aux_streams",
    "allow_weight_streaming": "BuilderFlag.WEIGHT_STREAMING",
    "mark_debug": "INetworkDefinition.mark_debug per tensor",
    "tiling_optimization_level": "IBuilderConfig.tiling_optimization_level",
    "l2_limit_for_tiling": "IBuilderConfig.l2_limit_for_tiling",
    "skip_inference": "nothing to do at build time (bench reads it)",
    "distributive_independence": "BuilderFlag.DISTRIBUTIVE_INDEPENDENCE",
    "monitor_memory": "BuilderFlag.MONITOR_MEMORY",
}

_plugin_libraries: list[Any] = []  # static plugin libraries stay loaded for the process


def _version() -> str:
    return str(trt.__version__)


def _unsupported(option: str, what: str, hint: str = "") -> SpecError:
    tail = f" {hint}" if hint else " Drop the option, or use a TensorRT version that has it."
    return SpecError(f"{option} is not supported by the installed TensorRT {_version()} ({what} is missing).{tail}")


@dataclass
class _Applied:
    """What was set, for the log and the manifest."""

    flags: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Precision:
    requested: list[str]
    flags: list[str]
    calibrator: Any
    path: str


# --------------------------------------------------------------------------------------------------
# Entry point


def build_engine(
    plan: BuildPlan, *, calibrator: Any = None, show_progress: bool = True, precision_record: dict[str, Any] | None = None
) -> Path:
    """Build ``plan`` with the installed TensorRT and write the engine and its manifest; returns the path.

    ``calibrator`` is an ``IInt8Calibrator`` for implicit INT8 on TensorRT <= 10.x (11.x has none:
    pass a Q/DQ model instead). ``precision_record`` (what the ONNX precision pipeline did: converter,
    calibration provenance, accuracy report) goes into the manifest.
    """
    from trtbuild import engine_file

    spec = plan.spec
    b = spec.build
    _check_combinations(plan)
    precision = _plan_precision(plan, calibrator)
    logger = get_logger(spec.reporting.verbose)
    logger.take_errors()
    _load_static_plugins(spec.system.static_plugins)
    init_plugins = getattr(trt, "init_libnvinfer_plugins", None)
    if init_plugins is not None:
        init_plugins(logger, "")
    applied = _Applied()
    engine_path = Path(plan.engine_path)
    log.info("Building %s with TensorRT %s (%s)", engine_path, _version(), precision.path)
    # Ctrl-C must not raise inside a TensorRT callback (logger, progress monitor): it would unwind
    # through C++. It sets a flag instead; the build stops at its next step and we raise afterwards.
    with cuda_device(spec.system.device), _interrupt_guard() as interrupt:
        try:
            builder = trt.Builder(logger)
        except (TypeError, RuntimeError) as exc:  # pybind11: "factory function returned nullptr"
            raise TrtbuildError(f"TensorRT {_version()} could not create a builder ({exc}): {_errors(logger)}. "
                                "Check that a GPU and driver are visible (nvidia-smi).") from None  # fmt: skip
        _load_dynamic_plugins(builder, spec.system.dynamic_plugins)
        network = builder.create_network(_network_flags(plan, applied))
        config = builder.create_builder_config()
        defaults = _builder_flag_state(config)
        parser = trt.OnnxParser(network, logger)
        _apply_parser_flags(parser, config, b)
        _parse(parser, plan.model.path, logger)
        _apply_network_options(network, config, b, applied)
        _apply_config(builder, config, plan, precision, applied)
        _apply_plugins_to_serialize(parser, config, spec)
        profiles = _add_profiles(builder, network, config, b.profiles, logger)
        _apply_calibrator(builder, network, config, plan, precision, profiles, applied)
        cache = _TimingCache(b.timing_cache_file, plan.timing_cache_ignore_mismatch) if b.timing_cache_file else None
        if cache is not None:
            cache.attach(config)
        _check_applied(plan, network, defaults, config)
        io_tensors = _network_io(network)
        interrupt.check()
        serialized, build_time = _run_build(builder, network, config, logger, show_progress, interrupt)
        if cache is not None:
            cache.save(config)
    data = memoryview(serialized).cast("B")
    manifest = engine_file.make_manifest(
        data,
        engine_path=engine_path,
        tensorrt_version=_version(),
        spec=spec,
        onnx_path=plan.model.path,
        io_tensors=io_tensors,
        precision={"requested": precision.requested, "path": precision.path, "builder_flags": applied.flags,
                   **({"pipeline": precision_record} if precision_record else {})},  # fmt: skip
        build_time_s=build_time,
        extra={"builder_settings": applied.settings, "recipe_sha256": plan.recipe_sha256, "build_plan": plan.decisions()},
    )
    engine_file.write_engine(engine_path, data, manifest)
    log.info("Engine built in %.1f s: %s (%.2f MiB); manifest %s", build_time, engine_path, len(data) / (1 << 20),
             engine_file.manifest_path(engine_path).name)  # fmt: skip
    return engine_path


def _errors(logger: Any) -> str:
    errors = logger.take_errors()
    return "; ".join(e.strip() for e in errors[-5:]) if errors else "TensorRT gave no error message (run with --verbose)"


# --------------------------------------------------------------------------------------------------
# Checks that need no TensorRT objects


def _check_combinations(plan: BuildPlan) -> None:
    check_conflicts(plan.spec)  # the plan refused these already; a hand-edited plan is refused again


def _plan_precision(plan: BuildPlan, calibrator: Any) -> _Precision:
    """The plan's precision flags and calibrator; what this TensorRT cannot do is refused before building."""
    b = plan.spec.build
    requested = [name for name in ("fp16", "bf16", "int8", "fp8", "int4", "best") if getattr(b, name)]
    installed = _dialect(_version())
    if installed != plan.target_major:
        raise SpecError(
            f"The build plan was written for TensorRT {plan.target_major}.x, but TensorRT {_version()} is installed; "
            f"plan again for this TensorRT (drop --trtexec-version, or pack the recipe with --trtexec-version {installed})."
        )
    if plan.conversions and plan.converted_from is None:
        steps = ", ".join(f"{c.kind} ({c.converter})" for c in plan.conversions)
        raise SpecError(f"The plan converts the ONNX first ({steps}); build it with trtbuild.build.build_from_plan, "
                        "which runs those conversions, not with the TensorRT builder alone.")  # fmt: skip
    planned = plan.calibrator
    if planned is None:
        if calibrator is not None:
            raise SpecError("A calibrator was given, but the plan has no implicit INT8 calibration (add --int8, or "
                            "drop the calibrator).")  # fmt: skip
        cal = None
    elif calibrator is not None:
        cal = calibrator
    elif planned.data is None and planned.cache:
        cal = _cache_calibrator(planned.cache)
    else:
        raise SpecError(f"The plan calibrates INT8 with {planned.kind} from calibration data, but no calibrator was "
                        "made from it; build with trtbuild.build.build_from_plan and the same calibration options.")  # fmt: skip
    if cal is not None and (not has_calibrators(trt) or not has_precision_flags(trt)):
        raise _unsupported("INT8 calibration", "IInt8EntropyCalibrator2")
    if plan.target_major >= 11:
        path = "strongly typed (TensorRT 11): types from the ONNX"
        if plan.precision_path == "qdq" or plan.conversions and plan.conversions[-1].kind == "int8-qdq":
            path += ", explicit Q/DQ quantization"
    else:
        path = "; ".join(plan.precision_steps)
    return _Precision(requested, list(plan.precision_flags), cal, path)


def _dialect(version: str) -> int:
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 10
    return 8 if major <= 9 else (11 if major >= 11 else 10)


def onnx_has_low_precision(path: str) -> bool:
    """Kept for callers of the old location; the plan decides (:func:`trtbuild.plan.onnx_has_low_precision`)."""
    return plan_low_precision(path)


def _cache_calibrator(path: str | None) -> Any:
    """An entropy calibrator that only replays a calibration cache (as trtexec --calib does)."""
    if not path or not Path(path).is_file():
        raise SpecError(
            f"--calib {path}: no such calibration cache. Without calibration data a cache is the only source of INT8 "
            "scales; give an existing cache, calibration data, or a Q/DQ model."
        )
    base = getattr(trt, "IInt8EntropyCalibrator2")  # noqa: B009 - absent in 11.x; only reached on <= 10.x
    cache = Path(path).read_bytes()

    class CacheCalibrator(base):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            base.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str], p_str: Any = None) -> Any:
            return None  # no data: TensorRT must take every scale from the cache

        def read_calibration_cache(self) -> bytes:
            return cache

        def write_calibration_cache(self, data: Any) -> None:
            return None

    return CacheCalibrator()


# --------------------------------------------------------------------------------------------------
# Network and parser


def _network_flags(plan: BuildPlan, applied: _Applied) -> int:
    """The plan's NetworkDefinitionCreationFlags (EXPLICIT_BATCH on 8.x, STRONGLY_TYPED on request on 10.x)."""
    ncf = trt.NetworkDefinitionCreationFlag
    flags = 0
    for name in plan.network_flags:
        found = member(ncf, name)
        if found is None:
            raise _unsupported("--stronglyTyped" if name == "STRONGLY_TYPED" else "an ONNX network",
                               f"NetworkDefinitionCreationFlag.{name}")  # fmt: skip
        flags |= 1 << int(found)
        applied.flags.append(f"NetworkDefinitionCreationFlag.{name}")
    return flags


def _builder_flag_state(config: Any) -> set[int]:
    """The BuilderFlag values set on ``config`` (values, not names: aliases such as WEIGHTLESS = STRIP_PLAN).

    Read as Polygraphy's str_from_config does (backend/trt/util.py: ``BuilderFlag.__members__`` with
    ``config.get_flag``; networks: ``hasattr(network, "get_flag") and network.get_flag(flag)``).
    """
    members = getattr(trt.BuilderFlag, "__members__", {})
    return {int(value) for value in members.values() if config.get_flag(value)}


def _flag_names(values: set[int], planned: list[str]) -> list[str]:
    names = {int(v): n for n, v in reversed(list(getattr(trt.BuilderFlag, "__members__", {}).items()))}
    names.update({int(f): n for n in planned if (f := member(trt.BuilderFlag, n)) is not None})
    return sorted(names.get(v, str(v)) for v in values)


def _check_applied(plan: BuildPlan, network: Any, before: set[int], config: Any) -> None:
    """After configuring: exactly the plan's BuilderFlags set (and cleared), its network flags on."""
    after = _builder_flag_state(config)
    problems = []
    for what, got, planned in (("set", after - before, plan.builder_flags),
                               ("cleared", before - after, plan.cleared_builder_flags)):  # fmt: skip
        want = {int(f) for n in planned if (f := member(trt.BuilderFlag, n)) is not None}
        if got != want or len(want) != len(planned):
            problems.append(f"BuilderFlags {what} {_flag_names(got, planned)}, planned {sorted(planned)}")
    get_flag = getattr(network, "get_flag", None)
    if get_flag is not None:
        missing = [n for n in plan.network_flags if not get_flag(member(trt.NetworkDefinitionCreationFlag, n))]
        if missing:
            problems.append(f"network flags {missing} planned but not set")
    if problems:
        raise TrtbuildError(f"TensorRT {_version()} was configured differently from the build plan ({'; '.join(problems)}); "
                            "this is a trtbuild bug: report it with the plan (`trtbuild build ... --dry-run --json`).")  # fmt: skip


def _set_parser_flag(parser: Any, name: str, option: str, *, clear: bool = False) -> None:
    flag = member(getattr(trt, "OnnxParserFlag", None), name)
    if flag is None:
        raise _unsupported(option, f"OnnxParserFlag.{name}")
    (parser.clear_flag if clear else parser.set_flag)(flag)


def _apply_parser_flags(parser: Any, config: Any, b: Any) -> None:
    native_norm = member(getattr(trt, "OnnxParserFlag", None), "NATIVE_INSTANCENORM")  # 8.6+
    if native_norm is not None and (b.version_compatible or b.hardware_compatibility_level == "ampere+"):
        parser.set_flag(native_norm)  # version/hardware-compatible engines need it (default on since 10.0)
    if native_norm is not None and b.plugin_instance_norm:
        parser.clear_flag(native_norm)  # before 8.6 the plugin is all there is
    if b.uint8_asymmetric_quantization_dla:
        _set_parser_flag(parser, "ENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA", "--uint8AsymmetricQuantizationDLA")
    if b.report_capability_dla:
        _set_parser_flag(parser, "REPORT_CAPABILITY_DLA", "--reportCapabilityDLA")
        if not hasattr(parser, "set_builder_config"):
            raise _unsupported("--reportCapabilityDLA", "OnnxParser.set_builder_config")
        parser.set_builder_config(config)
    if b.adjust_for_dla:
        _set_parser_flag(parser, "ADJUST_FOR_DLA", "--adjustForDLA")
    if b.enable_plugin_override:
        _set_parser_flag(parser, "ENABLE_PLUGIN_OVERRIDE", "--enablePluginOverride")


def _parse(parser: Any, onnx_path: str, logger: Any) -> None:
    # parse_from_file (not parse(bytes)) so external-data weights resolve next to the model.
    if parser.parse_from_file(str(onnx_path)):
        return
    count = int(parser.num_errors)
    nodes = _onnx_nodes(onnx_path) if count else []
    lines = [_describe_parser_error(parser.get_error(i), nodes) for i in range(count)]
    if not lines:
        lines = [_errors(logger)]
    raise ModelError(
        f"TensorRT {_version()} could not parse {onnx_path} ({count or 'unknown'} error{'s' if count != 1 else ''}): "
        + "; ".join(lines)
        + ". Check the model with `trtbuild inspect`, export it again (another opset, or simplified), or provide "
        "a plugin for unsupported ops."
    )


def _onnx_nodes(path: str) -> list[tuple[str, str]]:
    try:
        from trtbuild.model.load import load_onnx

        return [(n.name, n.op_type) for n in load_onnx(path, load_weights=False).graph.node]
    except Exception:  # the message is still useful without names
        return []


def _describe_parser_error(err: Any, nodes: list[tuple[str, str]]) -> str:
    node = int(err.node())
    name = err.node_name() if hasattr(err, "node_name") else ""  # 9.x+
    op = err.node_operator() if hasattr(err, "node_operator") else ""
    if node >= 0 and (not name or not op) and node < len(nodes):
        name, op = name or nodes[node][0], op or nodes[node][1]
    where = "model"
    if node >= 0:
        where = f"node {node}" + (f" '{name}'" if name else "") + (f" ({op})" if op else "")
    code = err.code()
    return f"{where}: {str(err.desc()).strip()} [{getattr(code, 'name', code)}]"


def _network_io(network: Any) -> list[dict[str, Any]]:
    tensors = []
    for mode, count, get in (("input", network.num_inputs, network.get_input),
                             ("output", network.num_outputs, network.get_output)):  # fmt: skip
        for i in range(count):
            t = get(i)
            tensors.append({"name": t.name, "mode": mode, "dtype": dtype_name(trt, t.dtype), "shape": list(t.shape),
                            "shape_tensor": bool(t.is_shape_tensor)})  # fmt: skip
    return tensors


def _layers(network: Any) -> list[Any]:
    return [network.get_layer(i) for i in range(network.num_layers)]


def _match_layers(layers: list[Any], pattern: str, option: str) -> list[Any]:
    if pattern == "*":
        return layers
    found = [layer for layer in layers if layer.name == pattern or ("*" in pattern and fnmatch.fnmatchcase(layer.name, pattern))]
    if not found:
        sample = ", ".join(layer.name for layer in layers[:8])
        raise SpecError(f"{option}: the network has no layer named '{pattern}' (layers include {sample}...); "
                        "use `trtbuild inspect MODEL.engine` on a --profilingVerbosity=detailed build to see names.")  # fmt: skip
    return found


def _pairs(text: str) -> list[tuple[str, str]]:
    from trtbuild.shapes import split_name_and_value

    return [split_name_and_value(item.strip()) for item in text.split(",") if item.strip()]


def _apply_network_options(network: Any, config: Any, b: Any, applied: _Applied) -> None:
    if b.input_io_formats:
        _apply_io_formats([network.get_input(i) for i in range(network.num_inputs)], b.input_io_formats, "--inputIOFormats")
    if b.output_io_formats:
        _apply_io_formats([network.get_output(i) for i in range(network.num_outputs)], b.output_io_formats, "--outputIOFormats")
    weak_typing = member(trt.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS") is not None  # removed with weak typing in 11.0
    if (b.layer_precisions or b.layer_output_types) and not weak_typing:
        raise _unsupported("--layerPrecisions/--layerOutputTypes", "weak typing (ILayer.precision)",
                           "Networks are strongly typed there; put casts in the ONNX instead.")  # fmt: skip
    if b.layer_precisions:
        layers = _layers(network)
        for name, value in _pairs(b.layer_precisions):
            dtype = from_trtexec(trt, value, option="--layerPrecisions")
            for layer in _match_layers(layers, name, "--layerPrecisions"):
                layer.precision = dtype
        applied.settings["layer_precisions"] = b.layer_precisions
    if b.layer_output_types:
        layers = _layers(network)
        for name, value in _pairs(b.layer_output_types):
            types = [from_trtexec(trt, v, option="--layerOutputTypes") for v in value.split("+")]
            for layer in _match_layers(layers, name, "--layerOutputTypes"):
                for index in range(layer.num_outputs):
                    layer.set_output_type(index, types[min(index, len(types) - 1)])
        applied.settings["layer_output_types"] = b.layer_output_types
    if b.layer_device_types:
        layers = _layers(network)
        for name, value in _pairs(b.layer_device_types):
            device = member(trt.DeviceType, value.strip().upper())
            if device is None:
                raise SpecError(f"--layerDeviceTypes: device '{value}' for '{name}' must be GPU or DLA.")
            for layer in _match_layers(layers, name, "--layerDeviceTypes"):
                config.set_device_type(layer, device)
        applied.settings["layer_device_types"] = b.layer_device_types
    if b.mark_debug:
        if not hasattr(network, "mark_debug"):
            raise _unsupported("--markDebug", "INetworkDefinition.mark_debug")
        by_name = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
        for layer in _layers(network):
            for index in range(layer.num_outputs):
                tensor = layer.get_output(index)
                by_name.setdefault(tensor.name, tensor)
        for name in (n.strip() for n in b.mark_debug.split(",") if n.strip()):
            if name not in by_name:
                raise SpecError(f"--markDebug: the network has no tensor named '{name}'.")
            network.mark_debug(by_name[name])
        applied.settings["mark_debug"] = b.mark_debug


def _apply_io_formats(tensors: list[Any], text: str, option: str) -> None:
    entries = [e.strip() for e in text.split(",")]
    if len(entries) not in (1, len(tensors)):
        raise SpecError(f"{option} has {len(entries)} entries but the network has {len(tensors)} such tensors; "
                        "give one entry for all of them or one per tensor, in network order.")  # fmt: skip
    for index, tensor in enumerate(tensors):
        entry = entries[0] if len(entries) == 1 else entries[index]
        mask = 0
        dtype = None
        for fmt in entry.split("+"):
            kind, _, layout = fmt.rpartition(":")
            if kind:
                if not has_precision_flags(trt):
                    raise SpecError(f"Invalid TensorFormat {fmt} in {option}: TensorRT {_version()} takes the layout "
                                    "only (e.g. chw); I/O types come from the ONNX model.")  # fmt: skip
                dtype = from_trtexec(trt, kind, option=option)
            name = TENSOR_FORMATS.get(layout.strip().lower())
            found = member(trt.TensorFormat, name) if name else None
            if found is None:
                raise _unsupported(option, f"TensorFormat for '{layout}'")
            mask |= 1 << int(found)
        if dtype is not None:
            tensor.dtype = dtype
        tensor.allowed_formats = mask


# --------------------------------------------------------------------------------------------------
# Builder config


def _set_flag(config: Any, name: str, option: str, applied: _Applied) -> None:
    flag = member(trt.BuilderFlag, name)
    if flag is None:
        raise _unsupported(option, f"BuilderFlag.{name}")
    config.set_flag(flag)
    applied.flags.append(name)


def _set_attr(config: Any, attr: str, value: Any, option: str, applied: _Applied) -> None:
    if not hasattr(config, attr):
        raise _unsupported(option, f"IBuilderConfig.{attr}")
    setattr(config, attr, value)
    applied.settings[attr] = getattr(value, "name", value)


def _enum_value(enum_name: str, member_name: str, option: str) -> Any:
    enum = getattr(trt, enum_name, None)
    found = member(enum, member_name)
    if found is None:
        raise _unsupported(option, f"{enum_name}.{member_name}")
    return found


def _apply_config(builder: Any, config: Any, plan: BuildPlan, precision: _Precision, applied: _Applied) -> None:
    spec = plan.spec
    b = spec.build
    for flag in precision.flags:
        _set_flag(config, flag, "--" + flag.lower(), applied)
    if b.precision_constraints in ("obey", "prefer") or ((b.layer_precisions or b.layer_output_types) and not b.precision_constraints):
        if not b.precision_constraints:
            log.info("--layerPrecisions/--layerOutputTypes without --precisionConstraints: using prefer.")
        name = "OBEY_PRECISION_CONSTRAINTS" if b.precision_constraints == "obey" else "PREFER_PRECISION_CONSTRAINTS"
        _set_flag(config, name, "--precisionConstraints", applied)
    for pool, nbytes in b.mem_pool_size.items():
        pool_type = _enum_value("MemoryPoolType", MEMORY_POOLS[pool], f"--memPoolSize={pool}")
        config.set_memory_pool_limit(pool_type, int(nbytes))
        applied.settings[f"mem_pool.{pool}"] = int(nbytes)
    if b.no_tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
        applied.settings["TF32"] = False
    simple_flags = (
        ("refit", "REFIT", "--refit"),
        ("direct_io", "DIRECT_IO", "--directIO"),
        ("no_builder_cache", "DISABLE_TIMING_CACHE", "--noBuilderCache"),
        ("no_compilation_cache", "DISABLE_COMPILATION_CACHE", "--noCompilationCache"),
        ("error_on_timing_cache_miss", "ERROR_ON_TIMING_CACHE_MISS", "--errorOnTimingCacheMiss"),
        ("allow_weight_streaming", "WEIGHT_STREAMING", "--allowWeightStreaming"),
        ("distributive_independence", "DISTRIBUTIVE_INDEPENDENCE", "--distributiveIndependence"),
        ("monitor_memory", "MONITOR_MEMORY", "--monitorMemory"),
        ("version_compatible", "VERSION_COMPATIBLE", "--versionCompatible"),
        ("exclude_lean_runtime", "EXCLUDE_LEAN_RUNTIME", "--excludeLeanRuntime"),
    )
    for attr, flag, option in simple_flags:
        if getattr(b, attr):
            _set_flag(config, flag, option, applied)
    if b.strip_weights:
        _set_flag(config, "STRIP_PLAN", "--stripWeights", applied)
        if not b.refit:
            _set_flag(config, "REFIT_IDENTICAL", "--stripWeights", applied)
    if b.sparsity == "enable":
        _set_flag(config, "SPARSE_WEIGHTS", "--sparsity=enable", applied)
    config.avg_timing_iterations = b.avg_timing if b.avg_timing is not None else TRTEXEC_AVG_TIMING
    applied.settings["avg_timing_iterations"] = config.avg_timing_iterations
    if b.profiling_verbosity:
        value = _enum_value("ProfilingVerbosity", PROFILING_VERBOSITY[b.profiling_verbosity], "--profilingVerbosity")
        _set_attr(config, "profiling_verbosity", value, "--profilingVerbosity", applied)
    if b.builder_optimization_level is not None:
        _set_attr(config, "builder_optimization_level", b.builder_optimization_level, "--builderOptimizationLevel", applied)
    if b.max_tactics is not None:
        _set_attr(config, "max_num_tactics", b.max_tactics, "--maxTactics", applied)
    if b.max_aux_streams is not None:
        _set_attr(config, "max_aux_streams", b.max_aux_streams, "--maxAuxStreams", applied)
    if b.hardware_compatibility_level and b.hardware_compatibility_level != "none":
        value = _enum_value("HardwareCompatibilityLevel", HARDWARE_LEVELS[b.hardware_compatibility_level],
                            f"--hardwareCompatibilityLevel={b.hardware_compatibility_level}")  # fmt: skip
        _set_attr(config, "hardware_compatibility_level", value, "--hardwareCompatibilityLevel", applied)
    if b.runtime_platform and b.runtime_platform != "SameAsBuild":
        value = _enum_value("RuntimePlatform", RUNTIME_PLATFORMS[b.runtime_platform], f"--runtimePlatform={b.runtime_platform}")
        _set_attr(config, "runtime_platform", value, "--runtimePlatform", applied)
    if b.tiling_optimization_level is not None:
        if not 0 <= b.tiling_optimization_level < len(TILING_LEVELS):
            raise SpecError(f"--tilingOptimizationLevel must be 0..3, not {b.tiling_optimization_level}.")
        value = _enum_value("TilingOptimizationLevel", TILING_LEVELS[b.tiling_optimization_level], "--tilingOptimizationLevel")
        _set_attr(config, "tiling_optimization_level", value, "--tilingOptimizationLevel", applied)
    if b.l2_limit_for_tiling is not None:
        _set_attr(config, "l2_limit_for_tiling", b.l2_limit_for_tiling, "--l2LimitForTiling", applied)
    if b.tactic_sources:
        _apply_tactic_sources(config, b.tactic_sources, applied)
    if b.preview:
        _apply_preview(config, b.preview, applied)
    _apply_dla(builder, config, plan, precision, applied)


def _apply_tactic_sources(config: Any, text: str, applied: _Applied) -> None:
    mask = int(config.get_tactic_sources())
    for item in (i.strip() for i in text.split(",") if i.strip()):
        sign, name = item[0], item[1:].upper().replace("CUBLASLT", "CUBLAS_LT")
        source = member(trt.TacticSource, name)
        if source is None or sign not in "+-":
            known = ", ".join(n for n in ("CUBLAS", "CUBLAS_LT", "CUDNN", "EDGE_MASK_CONVOLUTIONS", "JIT_CONVOLUTIONS")
                              if member(trt.TacticSource, n) is not None)  # fmt: skip
            raise SpecError(f"--tacticSources: '{item}' is not a tactic source of TensorRT {_version()}; "
                            f"write +NAME or -NAME with NAME one of {known}.")  # fmt: skip
        bit = 1 << int(source)
        mask = mask | bit if sign == "+" else mask & ~bit
    if not config.set_tactic_sources(mask):
        raise SpecError(f"TensorRT {_version()} rejected --tacticSources={text}.")
    applied.settings["tactic_sources"] = text


def _apply_preview(config: Any, text: str, applied: _Applied) -> None:
    for item in (i.strip() for i in text.split(",") if i.strip()):
        if item[0] not in "+-":
            raise SpecError(f"--preview entry '{item}' must start with + or -, like +aliasedPluginIO1003.")
        key = item[1:]
        name = PREVIEW_FEATURES.get(key.lower().replace("_", ""), key.upper())
        feature = member(getattr(trt, "PreviewFeature", None), name)
        if feature is None:
            raise _unsupported(f"--preview={item}", f"PreviewFeature.{name}")
        config.set_preview_feature(feature, item[0] == "+")
    applied.settings["preview"] = text


def _apply_dla(builder: Any, config: Any, plan: BuildPlan, precision: _Precision, applied: _Applied) -> None:
    spec = plan.spec
    b = spec.build
    core = spec.system.use_dla_core
    if core is None:
        return
    cores = int(getattr(builder, "num_DLA_cores", 0))
    if core < 0 or core >= cores:
        fix = f"pick a core from 0 to {cores - 1}" if cores else "drop the option, or build on a Jetson that has DLA"
        raise SpecError(
            f"--useDLACore={core}: this device has {cores} DLA core{'s' if cores != 1 else ''} (DLA exists on Jetson "
            f"AGX/NX Xavier and AGX/NX Orin, not on discrete GPUs, Orin Nano or Thor); {fix}."
        )
    if not b.allow_gpu_fallback:
        for index, profile in enumerate(b.profiles):
            for name, rng in profile.shapes.items():
                if not rng.min == rng.opt == rng.max:
                    raise ShapeError(
                        f"DLA does not support dynamic shapes: profile {index} gives '{name}' min/opt/max that differ; "
                        "use one fixed shape (--shapes) or add --allowGPUFallback to run dynamic layers on the GPU."
                    )
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core
    applied.settings["default_device_type"] = "DLA"
    applied.settings["DLA_core"] = core
    if b.allow_gpu_fallback:
        _set_flag(config, "GPU_FALLBACK", "--allowGPUFallback", applied)
    if has_precision_flags(trt):
        for flag in plan.dla_builder_flags(precision.flags):  # the plan decides (FP16 allowed; PREFER unless obey)
            if flag == "FP16":
                log.info("DLA runs FP16 or INT8 only: allowing FP16.")
            if flag not in applied.flags:
                _set_flag(config, flag, "--useDLACore", applied)


def _apply_plugins_to_serialize(parser: Any, config: Any, spec: Any) -> None:
    libraries = list(spec.system.set_plugins_to_serialize)
    b = spec.build
    if b.version_compatible and not b.exclude_lean_runtime and not spec.system.ignore_parsed_plugin_libs:
        used = getattr(parser, "get_used_vc_plugin_libraries", None)
        if used is not None:
            libraries += [lib for lib in used() if lib not in libraries]
    if libraries:
        if not hasattr(config, "plugins_to_serialize"):
            raise _unsupported("--setPluginsToSerialize", "IBuilderConfig.plugins_to_serialize")
        config.plugins_to_serialize = libraries


def _load_static_plugins(paths: list[str]) -> None:
    for path in paths:
        try:
            _plugin_libraries.append(ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_GLOBAL", 0)))
        except OSError as exc:
            raise SpecError(f"--staticPlugins: cannot load the plugin library {path} ({exc}).") from None


def _load_dynamic_plugins(builder: Any, paths: list[str]) -> None:
    if not paths:
        return
    registry = builder.get_plugin_registry()
    if not hasattr(registry, "load_library"):
        raise _unsupported("--dynamicPlugins", "IPluginRegistry.load_library")
    for path in paths:
        if registry.load_library(path) is None:
            raise SpecError(f"--dynamicPlugins: TensorRT {_version()} could not load the plugin library {path}.")


# --------------------------------------------------------------------------------------------------
# Profiles and calibration


def _add_profiles(builder: Any, network: Any, config: Any, profiles: list[Any], logger: Any) -> list[Any]:
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    created = []
    for index, profile in enumerate(profiles):
        trt_profile = builder.create_optimization_profile()
        for name, rng in profile.shapes.items():
            tensor = inputs.get(name)
            if tensor is None:
                raise ShapeError(f"Profile {index} names '{name}', which the parsed network has no input of; its "
                                 f"inputs are {', '.join(inputs)}.")  # fmt: skip
            if tensor.is_shape_tensor:  # the values a shape tensor may take, not its dims
                trt_profile.set_shape_input(name, list(rng.min), list(rng.opt), list(rng.max))
            else:
                trt_profile.set_shape(name, tuple(rng.min), tuple(rng.opt), tuple(rng.max))
        if config.add_optimization_profile(trt_profile) < 0:
            raise ShapeError(f"TensorRT {_version()} rejected optimization profile {index} "
                             f"({profile.flag_values()}): {_errors(logger)}")  # fmt: skip
        created.append(trt_profile)
    return created


def _apply_calibrator(builder: Any, network: Any, config: Any, plan: BuildPlan, precision: _Precision,
                      profiles: list[Any], applied: _Applied) -> None:  # fmt: skip
    calib_profile = plan.spec.build.calib_profile
    if precision.calibrator is None:
        if calib_profile is not None:
            log.warning("--calibProfile is ignored: there is no INT8 calibration in this build.")
        return
    if not has_calibrators(trt) or not hasattr(config, "int8_calibrator"):
        raise _unsupported("INT8 calibration", "IBuilderConfig.int8_calibrator")
    calibrator = precision.calibrator
    config.int8_calibrator = calibrator
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    data = getattr(calibrator, "data", None)
    shapes = plan.calibration_shapes(getattr(data, "batch_shapes", None))
    if shapes is not None:
        missing = [t.name for t in inputs if t.name not in shapes]
        if missing:
            raise SpecError(f"The calibration data has no batches for the network input(s) {', '.join(missing)}; give "
                            "calibration data for every input (--calib-data with named .npz arrays).")  # fmt: skip
        # A dedicated calibration profile of the batch shapes, not added to the config (trtexec does the same).
        dedicated = builder.create_optimization_profile()
        for t in inputs:
            dedicated.set_shape(t.name, shapes[t.name], shapes[t.name], shapes[t.name])
        if not config.set_calibration_profile(dedicated):
            raise SpecError(f"TensorRT {_version()} rejected the calibration profile of the batch shapes "
                            f"{shapes}.")  # fmt: skip
        applied.settings["calibration_profile"] = {n: "x".join(map(str, d)) for n, d in shapes.items()}
    elif profiles:
        index = calib_profile or 0
        if not 0 <= index < len(profiles):
            raise SpecError(f"--calibProfile={index}: the build has {len(profiles)} profiles (0..{len(profiles) - 1}).")
        if not config.set_calibration_profile(profiles[index]):
            raise SpecError(f"TensorRT {_version()} rejected profile {index} as the calibration profile.")
        ranges = plan.spec.build.profiles[index].shapes
        shapes = {t.name: tuple(ranges[t.name].opt) if t.name in ranges else tuple(int(d) for d in t.shape)
                  for t in inputs}  # fmt: skip
    else:
        shapes = {t.name: tuple(int(d) for d in t.shape) for t in inputs}
    if hasattr(calibrator, "set_network_inputs"):
        calibrator.set_network_inputs({t.name: calibration_dtype(dtype_name(trt, t.dtype)) for t in inputs}, shapes)


def calibration_dtype(name: str) -> str:
    """The numpy type TensorRT reads a calibration input in: index types as they are, all else float32.

    Polygraphy's calibrator (backend/trt/calibrator.py, set_input_metadata): "TensorRT requires non-index
    calibration inputs to be provided in float32" (index: float32, int32, int64, bool). The name is the
    *network* input's type, so on 8.x an ONNX int64 input is read as int32 (the parser casts it down).
    """
    return name if name in ("int32", "int64", "bool") else "float32"


# --------------------------------------------------------------------------------------------------
# Timing cache


class _TimingCache:
    """A timing cache file shared by builds: loaded before, merged and saved after, under a file lock."""

    def __init__(self, path: str, ignore_mismatch: bool = True) -> None:
        self.path = Path(path)
        self.ignore_mismatch = ignore_mismatch  # decided by the plan (BuildPlan.timing_cache_ignore_mismatch)

    def _read(self) -> bytes:
        return self.path.read_bytes() if self.path.is_file() else b""

    def attach(self, config: Any) -> None:
        data = self._read()
        cache = config.create_timing_cache(data)
        if cache is None or not config.set_timing_cache(cache, self.ignore_mismatch):
            log.warning("The timing cache %s does not match this TensorRT/GPU; starting from an empty cache.", self.path)
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, True)
        log.info("Timing cache %s: %s", self.path, f"{len(data)} bytes loaded" if data else "new")

    def save(self, config: Any) -> None:
        from filelock import FileLock

        from trtbuild.fsutil import atomic_write_bytes

        built = config.get_timing_cache()
        # Another build may have saved since we loaded: merge into what is on disk now, under the lock.
        with FileLock(str(self.path) + ".lock", timeout=600):
            merged = built
            data = self._read()
            if data:
                on_disk = config.create_timing_cache(data)
                if on_disk is not None and on_disk.combine(built, self.ignore_mismatch):
                    merged = on_disk
                else:
                    log.warning("The timing cache %s was made by another TensorRT/GPU; replacing it.", self.path)
            atomic_write_bytes(self.path, memoryview(merged.serialize()).cast("B"))
        log.info("Timing cache saved to %s", self.path)


# --------------------------------------------------------------------------------------------------
# Building, with progress


class _Interrupt:
    """Ctrl-C seen during the build; the progress monitor (if any) asks TensorRT to stop."""

    def __init__(self) -> None:
        self.seen = False
        self.monitor: Any = None

    def __call__(self, signum: int, frame: Any) -> None:
        if not self.seen:
            log.warning("Interrupted: stopping the build at TensorRT's next step...")
        self.seen = True
        if self.monitor is not None:
            self.monitor.cancelled = True

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupt_guard() -> Iterator[_Interrupt]:
    interrupt = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield interrupt  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_build(builder: Any, network: Any, config: Any, logger: Any, show_progress: bool,
               interrupt: _Interrupt) -> tuple[Any, float]:  # fmt: skip
    from trtbuild.console import progress

    with progress() as bar:
        monitor = _progress_monitor(bar) if show_progress and hasattr(config, "progress_monitor") else None
        if monitor is not None:
            config.progress_monitor = monitor
            interrupt.monitor = monitor
        else:
            log.info("Building (TensorRT %s has no progress monitor; this can take minutes)...", _version())
        start = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        elapsed = time.perf_counter() - start
    if interrupt.seen or (monitor is not None and monitor.cancelled):
        raise KeyboardInterrupt
    if serialized is None:
        raise TrtbuildError(f"TensorRT {_version()} failed to build the engine: {_errors(logger)}.")
    return serialized, elapsed


def _progress_monitor(bar: Any) -> Any:
    if not hasattr(trt, "IProgressMonitor"):  # 9.1/10.0+
        return None

    class ProgressMonitor(trt.IProgressMonitor):
        """Drives the progress bar; must be thread-safe and outlive the build (TensorRT docs)."""

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.cancelled = False
            self._lock = threading.Lock()
            self._tasks: dict[str, Any] = {}
            self._depth: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            with self._lock:
                depth = self._depth.get(parent_phase, -1) + 1 if parent_phase else 0
                self._depth[phase_name] = depth
                self._tasks[phase_name] = bar.add_task("  " * depth + phase_name, total=max(int(num_steps), 1))

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                task = self._tasks.get(phase_name)
                if task is not None:
                    bar.update(task, completed=int(step) + 1)
            return not self.cancelled  # False asks TensorRT to stop the build

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                task = self._tasks.pop(phase_name, None)
                if task is not None:
                    bar.remove_task(task)

    return ProgressMonitor()
