"""BuildSpec: typed build, system, inference and reporting options after trtexec's option structs.

One table (:data:`OPTIONS`) names every trtexec option trtbuild understands, the dataclass field it
sets, its kind and the trtexec versions ("dialects") that accept it. Parsing a pasted trtexec
command line, the ``build`` command's own flags and printing the equivalent trtexec command all go
through that table, so they cannot drift apart. trtexec options that trtbuild does not take are in
:data:`UNSUPPORTED`, each with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trtbuild.errors import ShapeError, SpecError
from trtbuild.shapes import (
    Profile,
    TensorInfo,
    dims_of,
    parse_shape_list,
    profiles_from_events,
    resolve_profiles,
)

log = logging.getLogger(__name__)

#: trtexec dialects: 8 = TensorRT 8.5/8.6, 10 = 10.x, 11 = 11.x.
DIALECTS = (8, 10, 11)
ALL = frozenset(DIALECTS)
UNTIL_10 = frozenset({8, 10})
FROM_10 = frozenset({10, 11})
ONLY_11 = frozenset({11})

SIZE_UNITS = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
MAX_BYTES = (1 << 63) - 1
_INT32_MAX = (1 << 31) - 1
MEMORY_POOLS = ("workspace", "dlaSRAM", "dlaLocalDRAM", "dlaGlobalDRAM", "tacticSharedMem")
IO_FORMATS = (
    "chw", "chw2", "chw4", "hwc8", "chw16", "chw32", "dhwc8", "cdhw32", "hwc", "dhwc", "dla_linear", "dla_hwc4", "hwc16",
)  # fmt: skip
IO_TYPES_10 = ("fp32", "fp16", "bf16", "int32", "int64", "int8", "uint8", "bool", "fp8")
TACTIC_SOURCES = {
    11: ("EDGE_MASK_CONVOLUTIONS", "JIT_CONVOLUTIONS"),
    10: ("CUBLAS", "CUBLAS_LT", "CUDNN", "EDGE_MASK_CONVOLUTIONS", "JIT_CONVOLUTIONS"),
    8: ("CUBLAS", "CUBLAS_LT", "CUDNN", "EDGE_MASK_CONVOLUTIONS", "JIT_CONVOLUTIONS"),
}
PROFILING_VERBOSITY = {"layer_names_only": "layer_names_only", "detailed": "detailed", "none": "none",
                       "default": "layer_names_only", "verbose": "detailed"}  # fmt: skip
HW_COMPAT = {"none": "none", "ampere+": "ampere+", "samecomputecapability": "sameComputeCapability"}

PRECISION_11_NOTE = (
    "TensorRT 11 removed the precision flags and calibrators: precision lives in the ONNX model. "
    "trtbuild build --fp16/--int8 converts the ONNX first (FP16 cast, INT8 Q/DQ) and builds the result; "
    "with trtexec 11, run `trtbuild cast model.onnx --fp16 --calib-data DIR -o model.fp16.onnx` or "
    "`trtbuild quantize model.onnx --int8 --calib-data DIR -o model.int8.onnx` and pass that ONNX."
)


# --------------------------------------------------------------------------------------------------
# The option structs


@dataclass
class BuildOptions:
    """What shapes the engine: profiles, precision, memory, caches, compatibility, tactics."""

    profiles: list[Profile] = field(default_factory=list)
    # Precision requests. On TensorRT <= 10 they set builder flags; on 11 they pick the ONNX pipeline.
    fp16: bool = False
    bf16: bool = False
    int8: bool = False
    fp8: bool = False
    int4: bool = False
    best: bool = False
    calib: str | None = None
    calib_profile: int | None = None
    precision_constraints: str | None = None  # none | obey | prefer (10.x)
    layer_precisions: str | None = None
    layer_output_types: str | None = None
    strongly_typed: bool = False
    input_io_formats: str | None = None
    output_io_formats: str | None = None
    mem_pool_size: dict[str, int] = field(default_factory=dict)  # pool -> bytes
    profiling_verbosity: str | None = None
    avg_timing: int | None = None
    refit: bool = False
    strip_weights: bool = False
    strip_all_weights: bool = False
    version_compatible: bool = False
    exclude_lean_runtime: bool = False
    plugin_instance_norm: bool = False
    uint8_asymmetric_quantization_dla: bool = False
    report_capability_dla: bool = False
    adjust_for_dla: bool = False
    enable_plugin_override: bool = False
    sparsity: str | None = None  # disable | enable | force
    no_tf32: bool = False
    direct_io: bool = False
    layer_device_types: str | None = None
    allow_gpu_fallback: bool = False
    build_dla_standalone: bool = False
    save_engine: str | None = None
    tactic_sources: str | None = None
    no_builder_cache: bool = False
    no_compilation_cache: bool = False
    error_on_timing_cache_miss: bool = False
    timing_cache_file: str | None = None
    preview: str | None = None
    builder_optimization_level: int | None = None
    max_tactics: int | None = None
    hardware_compatibility_level: str | None = None
    runtime_platform: str | None = None
    max_aux_streams: int | None = None
    allow_weight_streaming: bool = False
    mark_debug: str | None = None
    tiling_optimization_level: int | None = None
    l2_limit_for_tiling: int | None = None
    skip_inference: bool = False
    distributive_independence: bool = False
    monitor_memory: bool = False


@dataclass
class SystemOptions:
    device: int | None = None
    use_dla_core: int | None = None
    static_plugins: list[str] = field(default_factory=list)
    dynamic_plugins: list[str] = field(default_factory=list)
    set_plugins_to_serialize: list[str] = field(default_factory=list)
    ignore_parsed_plugin_libs: bool = False


@dataclass
class InferenceOptions:
    """How the engine is run and timed (trtexec's defaults when a field is None)."""

    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    load_inputs: str | None = None
    iterations: int | None = None  # 10
    warm_up: int | None = None  # 200 ms
    duration: float | None = None  # 3 s
    sleep_time: int | None = None
    idle_time: int | None = None
    inf_streams: int | None = None
    expose_dma: bool = False
    # Modes whose defaults differ between trtexec 10 and 11; None means "the dialect's default".
    data_transfers: bool | None = None
    spin_wait: bool | None = None
    cuda_graph: bool | None = None
    use_managed_memory: bool = False
    threads: bool = False
    use_profile: int | None = None
    persistent_cache_ratio: float | None = None
    allocation_strategy: str | None = None
    time_deserialize: bool = False


@dataclass
class ReportingOptions:
    verbose: bool = False
    avg_runs: int | None = None
    percentile: str | None = None
    dump_output: bool = False
    dump_profile: bool = False
    dump_layer_info: bool = False
    dump_optimization_profile: bool = False
    export_times: str | None = None
    export_output: str | None = None
    export_profile: str | None = None
    export_layer_info: str | None = None


SECTIONS = {"build": BuildOptions, "system": SystemOptions, "inference": InferenceOptions, "reporting": ReportingOptions}


# --------------------------------------------------------------------------------------------------
# The option table


@dataclass(frozen=True)
class Opt:
    """One trtexec option: where it lands in the spec and which trtexec versions take it."""

    name: str  # trtexec spelling without dashes
    section: str
    attr: str
    kind: str  # flag | int | float | str | choice | mempool | list | shape | inference_shapes | neg_flag
    dialects: frozenset[int] = ALL
    help: str = ""
    choices: Mapping[str, str] | None = None  # accepted spelling (lower-cased) -> stored value
    aliases: tuple[str, ...] = ()
    ours: str | None = None  # trtbuild's own spelling (kebab case), when it differs
    removed_hint: str = ""  # said when the flag is used in a dialect that lacks it

    @property
    def flags(self) -> list[str]:
        names = [f"--{self.name}"] + [f"--{a}" for a in self.aliases]
        if self.ours and f"--{self.ours}" not in names:
            names.insert(0, f"--{self.ours}")
        return names


def _o(name: str, section: str, attr: str, kind: str, help: str = "", **kw: Any) -> Opt:
    return Opt(name, section, attr, kind, help=help, **kw)


_REMOVED_PRECISION = "removed in TensorRT 11: " + PRECISION_11_NOTE
OPTIONS: tuple[Opt, ...] = (
    # ---- model shapes (profiles are collected in order; see shapes.profiles_from_events)
    _o("minShapes", "build", "profiles", "shape", "Minimum shapes, e.g. images:1x3x640x640 (or 1x3x640x640 for one input).", ours="min"),
    _o("optShapes", "build", "profiles", "shape", "Shapes TensorRT tunes for (default: max if min and max are given).", ours="opt"),
    _o("maxShapes", "build", "profiles", "shape", "Maximum shapes.", ours="max"),
    _o("profile", "build", "profiles", "shape", "Start optimization profile N; the next --min/--opt/--max belong to it."),
    _o("shapes", "inference", "shapes", "inference_shapes", "Run-time shapes; alone, builds exactly that shape (min=opt=max)."),
    # ---- precision
    _o("fp16", "build", "fp16", "flag", "Allow FP16 (TensorRT 11: cast the ONNX to FP16 first).", dialects=UNTIL_10, removed_hint=_REMOVED_PRECISION),
    _o("bf16", "build", "bf16", "flag", "Allow BF16 (TensorRT <= 10).", dialects=FROM_10 - ONLY_11, removed_hint=_REMOVED_PRECISION),
    _o("int8", "build", "int8", "flag", "Allow INT8 (TensorRT 11: quantize the ONNX to Q/DQ first).", dialects=UNTIL_10, removed_hint=_REMOVED_PRECISION),
    _o("fp8", "build", "fp8", "flag", "Allow FP8 (TensorRT <= 10).", dialects=UNTIL_10, removed_hint=_REMOVED_PRECISION),
    _o("int4", "build", "int4", "flag", "Allow INT4 weights (TensorRT 10).", dialects=FROM_10 - ONLY_11, removed_hint=_REMOVED_PRECISION),
    _o("best", "build", "best", "flag", "Allow every precision (TensorRT <= 10).", dialects=UNTIL_10, removed_hint=_REMOVED_PRECISION),
    _o("calib", "build", "calib", "str", "INT8 calibration cache file (TensorRT <= 10).", dialects=UNTIL_10, removed_hint=_REMOVED_PRECISION),
    _o("calibProfile", "build", "calib_profile", "int", "Profile used for INT8 calibration (TensorRT <= 10).", dialects=UNTIL_10, removed_hint=_REMOVED_PRECISION),
    _o("precisionConstraints", "build", "precision_constraints", "choice", "none|obey|prefer per-layer precision (TensorRT <= 10).",
       dialects=UNTIL_10, choices={"none": "none", "obey": "obey", "prefer": "prefer"}, removed_hint="removed in TensorRT 11: networks are strongly typed; put casts in the ONNX."),
    _o("layerPrecisions", "build", "layer_precisions", "str", "Per-layer precision, name:fp16[,...] (TensorRT <= 10).", dialects=UNTIL_10,
       removed_hint="removed in TensorRT 11: networks are strongly typed; put casts in the ONNX."),
    _o("layerOutputTypes", "build", "layer_output_types", "str", "Per-layer output types (TensorRT <= 10).", dialects=UNTIL_10,
       removed_hint="removed in TensorRT 11: networks are strongly typed; put casts in the ONNX."),
    _o("stronglyTyped", "build", "strongly_typed", "flag", "Strongly typed network (TensorRT 10; always on in 11)."),
    _o("inputIOFormats", "build", "input_io_formats", "str", "Input formats: fmt[+fmt][,...] (10.x also type:fmt, e.g. fp16:chw)."),
    _o("outputIOFormats", "build", "output_io_formats", "str", "Output formats, as --inputIOFormats."),
    # ---- memory, caches, build effort
    _o("memPoolSize", "build", "mem_pool_size", "mempool", "Pool limits, pool:size[,...]; pools workspace, dlaSRAM, dlaLocalDRAM, dlaGlobalDRAM, tacticSharedMem; units B/K/M/G (default M)."),
    _o("timingCacheFile", "build", "timing_cache_file", "str", "Timing cache to load, use and save back (merged, under a file lock).", ours="timing-cache"),
    _o("noBuilderCache", "build", "no_builder_cache", "flag", "Disable the timing cache."),
    _o("noCompilationCache", "build", "no_compilation_cache", "flag", "Disable the compilation cache.", dialects=FROM_10),
    _o("errorOnTimingCacheMiss", "build", "error_on_timing_cache_miss", "flag", "Fail when a tactic is not in the timing cache.", dialects=FROM_10),
    _o("builderOptimizationLevel", "build", "builder_optimization_level", "int", "Build effort 0..5 (TensorRT default 3)."),
    _o("maxTactics", "build", "max_tactics", "int", "Most tactics to time per layer (-1: heuristic).", dialects=FROM_10),
    _o("avgTiming", "build", "avg_timing", "int", "Iterations averaged per tactic timing (trtexec default 8)."),
    _o("tacticSources", "build", "tactic_sources", "str", "(+|-)SOURCE[,...], e.g. -CUDNN,+CUBLAS_LT."),
    _o("maxAuxStreams", "build", "max_aux_streams", "int", "Auxiliary streams per inference stream."),
    _o("tilingOptimizationLevel", "build", "tiling_optimization_level", "int", "Tiling optimization 0..3.", dialects=FROM_10),
    _o("l2LimitForTiling", "build", "l2_limit_for_tiling", "int", "L2 cache limit for tiling, bytes.", dialects=FROM_10),
    _o("preview", "build", "preview", "str", "Preview features, (+|-)name[,...]."),
    _o("profilingVerbosity", "build", "profiling_verbosity", "choice", "layer_names_only|detailed|none (detailed lets inspect show layers).", choices=PROFILING_VERBOSITY),
    # ---- compatibility and engine content
    _o("hardwareCompatibilityLevel", "build", "hardware_compatibility_level", "choice", "none|ampere+|sameComputeCapability: run on other GPUs.", choices=HW_COMPAT),
    _o("versionCompatible", "build", "version_compatible", "flag", "Engine runs on later TensorRT versions (lean runtime embedded).", aliases=("vc",)),
    _o("excludeLeanRuntime", "build", "exclude_lean_runtime", "flag", "With --versionCompatible: do not embed the lean runtime."),
    _o("runtimePlatform", "build", "runtime_platform", "choice", "SameAsBuild|WindowsAMD64 target platform.", dialects=FROM_10,
       choices={"sameasbuild": "SameAsBuild", "windowsamd64": "WindowsAMD64"}),
    _o("refit", "build", "refit", "flag", "Refittable engine."),
    _o("stripWeights", "build", "strip_weights", "flag", "Strip refittable weights from the plan.", dialects=FROM_10, aliases=()),
    _o("stripAllWeights", "build", "strip_all_weights", "flag", "Same as --refit --stripWeights.", dialects=FROM_10),
    _o("sparsity", "build", "sparsity", "choice", "disable|enable|force structured-sparsity tactics.",
       choices={"disable": "disable", "enable": "enable", "force": "force"}),
    _o("noTF32", "build", "no_tf32", "flag", "Disable TF32 (on by default)."),
    _o("directIO", "build", "direct_io", "flag", "No reformatting at network boundaries (deprecated)."),
    _o("allowWeightStreaming", "build", "allow_weight_streaming", "flag", "Weight-streaming engine.", dialects=FROM_10),
    _o("markDebug", "build", "mark_debug", "str", "Mark tensors as debug tensors, name[,...].", dialects=FROM_10),
    _o("pluginInstanceNorm", "build", "plugin_instance_norm", "flag", "Use the InstanceNorm plugin instead of the native layer.", aliases=("pi",), dialects=FROM_10),
    _o("uint8AsymmetricQuantizationDLA", "build", "uint8_asymmetric_quantization_dla", "flag", "Parser: uint8 asymmetric quantization for DLA.", dialects=FROM_10),
    _o("reportCapabilityDLA", "build", "report_capability_dla", "flag", "Parser: check every node can run on DLA.", dialects=FROM_10),
    _o("adjustForDLA", "build", "adjust_for_dla", "flag", "Parser: rewrite layers to suit DLA.", dialects=FROM_10),
    _o("enablePluginOverride", "build", "enable_plugin_override", "flag", "Parser: a plugin replaces the standard op.", dialects=FROM_10),
    _o("layerDeviceTypes", "build", "layer_device_types", "str", "Device per layer, name:GPU|DLA[,...]."),
    _o("allowGPUFallback", "build", "allow_gpu_fallback", "flag", "Run layers DLA cannot on the GPU."),
    _o("buildDLAStandalone", "build", "build_dla_standalone", "flag", "Build a cuDLA loadable (no inference)."),
    _o("distributiveIndependence", "build", "distributive_independence", "flag", "Distributive independence (hidden trtexec flag).", dialects=FROM_10),
    _o("monitorMemory", "build", "monitor_memory", "flag", "Builder memory monitor.", dialects=FROM_10),
    _o("saveEngine", "build", "save_engine", "str", "Where to write the engine (a .engine.json manifest goes beside it).", ours="output"),
    _o("skipInference", "build", "skip_inference", "flag", "Build only, do not run."),
    # ---- system
    _o("device", "system", "device", "int", "CUDA device index."),
    _o("useDLACore", "system", "use_dla_core", "int", "Run on DLA core N (Jetson/DRIVE)."),
    _o("staticPlugins", "system", "static_plugins", "list", "Plugin library to dlopen (repeatable).", aliases=("plugins",)),
    _o("dynamicPlugins", "system", "dynamic_plugins", "list", "Plugin library loaded through the registry (repeatable).", dialects=FROM_10),
    _o("setPluginsToSerialize", "system", "set_plugins_to_serialize", "list", "Plugin library serialized into the engine (repeatable).", dialects=FROM_10),
    _o("ignoreParsedPluginLibs", "system", "ignore_parsed_plugin_libs", "flag", "Do not add plugin libraries the parser reports.", dialects=FROM_10),
    # ---- inference
    _o("loadInputs", "inference", "load_inputs", "str", "Raw input files, name:file[,...]."),
    _o("iterations", "inference", "iterations", "int", "Run at least N iterations (10)."),
    _o("warmUp", "inference", "warm_up", "int", "Warm-up in ms of GPU time (200)."),
    _o("duration", "inference", "duration", "float", "Run at least S seconds (3)."),
    _o("sleepTime", "inference", "sleep_time", "int", "Delay in ms before the first inference."),
    _o("idleTime", "inference", "idle_time", "int", "Sleep in ms between iterations."),
    _o("infStreams", "inference", "inf_streams", "int", "Concurrent inference streams (1).", aliases=("streams",)),
    _o("exposeDMA", "inference", "expose_dma", "flag", "Serialize DMA transfers with compute."),
    _o("includeDataTransfers", "inference", "data_transfers", "flag", "Time H2D/D2H copies each iteration (11.x; 10.x does by default).", dialects=ONLY_11),
    _o("noDataTransfers", "inference", "data_transfers", "neg_flag", "Do not copy inputs/outputs each iteration (10.x).", dialects=UNTIL_10),
    _o("useSpinWait", "inference", "spin_wait", "flag", "Busy-wait for the GPU (10.x; 11.x default).", dialects=UNTIL_10),
    _o("noSpinWait", "inference", "spin_wait", "neg_flag", "Block instead of spinning (11.x).", dialects=ONLY_11),
    _o("useCudaGraph", "inference", "cuda_graph", "flag", "Replay a CUDA graph (10.x; 11.x default).", dialects=UNTIL_10),
    _o("noCudaGraph", "inference", "cuda_graph", "neg_flag", "Plain enqueue instead of a CUDA graph (11.x).", dialects=ONLY_11),
    _o("useManagedMemory", "inference", "use_managed_memory", "flag", "Managed memory instead of host + device buffers."),
    _o("threads", "inference", "threads", "flag", "One host thread per stream."),
    _o("useProfile", "inference", "use_profile", "int", "Optimization profile to run (0)."),
    _o("persistentCacheRatio", "inference", "persistent_cache_ratio", "float", "Share of L2 kept for persistent data."),
    _o("allocationStrategy", "inference", "allocation_strategy", "choice", "static|profile|runtime device memory.", dialects=FROM_10,
       choices={"static": "static", "profile": "profile", "runtime": "runtime"}),
    _o("timeDeserialize", "inference", "time_deserialize", "flag", "Time engine deserialization and exit."),
    # ---- reporting
    _o("verbose", "reporting", "verbose", "flag", "Verbose logging (TensorRT's too)."),
    _o("avgRuns", "reporting", "avg_runs", "int", "Runs averaged per trace line (10)."),
    _o("percentile", "reporting", "percentile", "str", "Percentiles to report, P1,P2,... (90,95,99)."),
    _o("dumpOutput", "reporting", "dump_output", "flag", "Print the last inference's outputs."),
    _o("dumpProfile", "reporting", "dump_profile", "flag", "Print the per-layer profile."),
    _o("dumpLayerInfo", "reporting", "dump_layer_info", "flag", "Print layer information."),
    _o("dumpOptimizationProfile", "reporting", "dump_optimization_profile", "flag", "Print the profiles' shapes."),
    _o("exportTimes", "reporting", "export_times", "str", "Per-iteration timing JSON (trtexec keys)."),
    _o("exportOutput", "reporting", "export_output", "str", "Output tensors JSON."),
    _o("exportProfile", "reporting", "export_profile", "str", "Per-layer profile JSON."),
    _o("exportLayerInfo", "reporting", "export_layer_info", "str", "Layer information JSON."),
)

OPTIONS_BY_FLAG: dict[str, Opt] = {}
for _opt in OPTIONS:
    for _name in (_opt.name, *_opt.aliases):
        OPTIONS_BY_FLAG[_name] = _opt

#: Accepted only to say, in one sentence, what happened to them.
LEGACY: dict[str, str] = {
    "explicitBatch": "--explicitBatch was removed in TensorRT 10: networks are always explicit batch. Drop the flag.",
    "explicitPrecision": "--explicitPrecision was removed in TensorRT 10 (it had no effect). Drop the flag.",
    "workspace": "--workspace={value} was removed in TensorRT 10; use --memPoolSize=workspace:{value} (MiB, or give a B/K/M/G unit).",
    "minTiming": "--minTiming was removed in TensorRT 10; use --avgTiming=N.",
    "heuristic": "--heuristic was removed in TensorRT 10; use --builderOptimizationLevel=N.",
    "buildOnly": "--buildOnly was removed in TensorRT 10; use --skipInference.",
    "nvtxMode": "--nvtxMode was removed in TensorRT 10; use --profilingVerbosity=detailed|layer_names_only|none.",
    "batch": "--batch was removed in TensorRT 9 with implicit batch; give the batch in the shapes (--shapes=input:8x3x224x224).",
    "maxBatch": "--maxBatch was removed in TensorRT 9 with implicit batch; give the batch in --maxShapes.",
    "weightless": "--weightless was removed in TensorRT 11; use --stripWeights.",
    "restricted": "--restricted was removed in TensorRT 11 (safety scope); drop the flag.",
    "minShapesCalib": _REMOVED_PRECISION,
    "optShapesCalib": _REMOVED_PRECISION,
    "maxShapesCalib": _REMOVED_PRECISION,
}
#: trtexec 8 still took these (deprecated); trtbuild maps them with a warning in dialect 8.
LEGACY_MAPPED_IN_8 = {"workspace", "explicitBatch", "explicitPrecision", "minTiming", "heuristic", "buildOnly"}
#: Accepted with a warning because they do nothing in that dialect (trtexec does the same).
NOOP_IN_11 = {"stronglyTyped", "useCudaGraph", "noDataTransfers", "useSpinWait", "directIO"}
#: Accepted everywhere with a warning: trtbuild always behaves as the flag asks.
NOOP_ALWAYS = {"separateProfileRun": "trtbuild always profiles in a separate run (as trtexec 11 does)"}

#: trtexec options trtbuild does not take, and why.
UNSUPPORTED: dict[str, str] = {
    "onnx": "trtbuild takes the model as its first argument (`trtbuild trtexec` reads --onnx=).",
    "loadEngine": "run or inspect an engine with `trtbuild bench model.engine` / `trtbuild inspect model.engine`.",
    "safe": "safety engines need NVIDIA's safety runtime, which has no Python API.",
    "consistency": "only for safety engines (--safe).",
    "dumpKernelText": "only for safety engines (--safe), through a C++-only builder overload.",
    "safetyPlugins": "only for safety engines (--safe).",
    "remoteAutoTuningConfig": "only for safety engines (--safe).",
    "cpuOnly": "only for safety engines with remote auto-tuning.",
    "useRuntime": "lean/dispatch runtimes only load engines; build with --versionCompatible and load with the lean runtime yourself.",
    "leanDLLPath": "a run-time option of the lean runtime, which trtbuild does not drive.",
    "asyncFileReader": "trtbuild deserializes from memory after checking the plan's checksum.",
    "getPlanVersionOnly": "`trtbuild inspect model.engine` prints the plan's TensorRT version.",
    "decomposableAttentions": "needs IAttention layers found after parsing; not exposed yet.",
    "markUnfusedTensorsAsDebugTensors": "debug-tensor dumping is not driven by trtbuild.",
    "saveDebugTensors": "debug-tensor dumping is not driven by trtbuild.",
    "saveAllDebugTensors": "debug-tensor dumping is not driven by trtbuild.",
    "tempdir": "a runtime setting of the lean runtime, not used by trtbuild's full runtime.",
    "tempfileControls": "a runtime setting of the lean runtime, not used by trtbuild's full runtime.",
    "refitFromOnnx": "refitting is not part of trtbuild's build/bench flow.",
    "timeRefit": "refitting is not part of trtbuild's build/bench flow.",
    "dumpRefit": "refitting is not part of trtbuild's build/bench flow.",
    "dumpRawBindingsToFile": "use --exportOutput (JSON) instead.",
    "weightStreamingBudget": "weight-streaming budgets are a run-time knob not driven by trtbuild yet.",
    "loadRefOutputs": "use `trtbuild compare` for accuracy checks.",
    "refPair": "use `trtbuild compare` for accuracy checks.",
    "accuracyAlgorithm": "use `trtbuild compare` for accuracy checks.",
    "atol": "use `trtbuild compare --atol` for accuracy checks.",
    "rtol": "use `trtbuild compare --rtol` for accuracy checks.",
    "accuracyThreshold": "use `trtbuild compare` for accuracy checks.",
    "tuneBuildRoutes": "trtexec 11.1 tuning forks child trtexec processes; out of scope.",
    "tuneBuildRouteFile": "trtexec 11.1 tuning; out of scope.",
    "tuningSearch": "trtexec 11.1 tuning; out of scope.",
    "tuningCacheFile": "trtexec 11.1 tuning; out of scope.",
    "tuningTimeOut": "trtexec 11.1 tuning; out of scope.",
    "saveAllEngines": "trtexec 11.1 tuning; out of scope.",
    "dryRun": "trtexec 11.1 tuning dry run; trtbuild's own --dry-run validates and prints the plan.",
    "continue": "trtexec 11.1 tuning; out of scope.",
    "helpBuildRoute": "trtexec 11.1 tuning; out of scope.",
    "setBuildRoute": "trtexec 11.1 tuning; out of scope.",
}


# --------------------------------------------------------------------------------------------------
# Value parsing and formatting


def parse_size(text: str, *, default_unit: str = "M", what: str = "size") -> int:
    """trtexec sizes: a decimal number with an optional B/K/M/G unit (base 2), fractions rounded down."""
    value = text.strip()
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)([bBkKmMgG]?)", value)
    if not match:
        raise SpecError(f"Cannot read the {what} '{text}': give a number with an optional unit B, K, M or G, like 4G or 1024M.")
    unit = match.group(2).upper() or default_unit
    number = float(match.group(1)) * SIZE_UNITS[unit]  # a 400-digit number is inf here, not an error
    if not math.isfinite(number) or number > MAX_BYTES:
        raise SpecError(f"The {what} '{_clip(text)}' is larger than 2^63 bytes; give a size a GPU can have, like 4G.")
    return int(number)


def format_size(nbytes: int) -> str:
    for unit in ("G", "M", "K"):
        if nbytes and nbytes % SIZE_UNITS[unit] == 0:
            return f"{nbytes // SIZE_UNITS[unit]}{unit}"
    return f"{nbytes}B"


def parse_mem_pools(text: str) -> dict[str, int]:
    pools: dict[str, int] = {}
    lookup = {p.lower(): p for p in MEMORY_POOLS}
    for pair in text.split(","):
        name, sep, size = pair.rpartition(":")
        pool = lookup.get(name.strip().lower())
        if not sep or pool is None:
            raise SpecError(
                f"--memPoolSize '{pair}' is not pool:size; pools are {', '.join(MEMORY_POOLS)}, e.g. workspace:4G."
            )
        nbytes = parse_size(size, what=f"{pool} pool size")
        if pool == "dlaSRAM":  # TensorRT wants a power of two, at most 1 GiB
            nbytes = min(1 << 30, 1 << (nbytes.bit_length() - 1)) if nbytes else 0
        pools[pool] = nbytes
    return pools


def format_mem_pools(pools: Mapping[str, int]) -> str:
    return ",".join(f"{pool}:{format_size(n)}" for pool, n in pools.items())


def _parse_tactic_sources(text: str, dialect: int) -> str:
    known = TACTIC_SOURCES[dialect]
    seen: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if len(item) < 2 or item[0] not in "+-":
            raise SpecError(f"--tacticSources entry '{item}' must start with + or -, like -CUDNN,+CUBLAS_LT.")
        name = item[1:].upper().replace("CUBLASLT", "CUBLAS_LT")
        if name not in known:
            raise SpecError(
                f"--tacticSources: '{name}' is not a tactic source of TensorRT {dialect}.x; known: {', '.join(known)}."
            )
        if name in seen and seen[name] != item[0]:
            raise SpecError(f"--tacticSources enables and disables {name} at once; keep one.")
        seen[name] = item[0]
    return ",".join(f"{sign}{name}" for name, sign in seen.items())


def _parse_io_formats(text: str, dialect: int, flag: str) -> str:
    for entry in text.split(","):
        for fmt in entry.split("+"):
            kind, _, layout = fmt.rpartition(":")
            if kind and dialect == 11:
                raise SpecError(
                    f"Invalid TensorFormat {fmt} in --{flag}: TensorRT 11 takes the layout only (e.g. chw); "
                    "I/O types come from the ONNX model."
                )
            if kind and kind not in IO_TYPES_10:
                raise SpecError(f"--{flag}: unknown type '{kind}' in '{fmt}'; types are {', '.join(IO_TYPES_10)}.")
            if layout.lower() not in IO_FORMATS:
                raise SpecError(f"--{flag}: unknown format '{layout}' in '{fmt}'; formats are {', '.join(IO_FORMATS)}.")
    return text


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text)} characters)"


def _parse_int(text: str, flag: str) -> int:
    value = text.strip()
    # int() also takes '²'-like Unicode digits, '1_000' and 4000-digit numbers; trtexec takes none of them.
    if not re.fullmatch(r"[+-]?[0-9]{1,19}", value):
        raise SpecError(f"--{flag} needs a whole number, not '{_clip(text)}'.")
    return int(value)


def _parse_float(text: str, flag: str) -> float:
    value = text.strip()
    if not re.fullmatch(r"[+-]?([0-9]{1,30}(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?", value):
        raise SpecError(f"--{flag} needs a finite decimal number, not '{_clip(text)}'.")
    number = float(value)
    if not math.isfinite(number):
        raise SpecError(f"--{flag} needs a finite number, not '{_clip(text)}'.")
    return number


#: Inclusive ranges of numeric options (None: unbounded). The command line and a recipe's spec.json are
#: both held to this one table, so a value refused as a flag cannot come in through a file.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "builder_optimization_level": (0, 5),
    "avg_timing": (1, _INT32_MAX),
    "calib_profile": (0, _INT32_MAX),
    "max_tactics": (-1, _INT32_MAX),
    "max_aux_streams": (0, _INT32_MAX),
    "tiling_optimization_level": (0, 3),
    "l2_limit_for_tiling": (-1, MAX_BYTES),
    "device": (0, _INT32_MAX),
    "use_dla_core": (0, _INT32_MAX),
    "iterations": (1, _INT32_MAX),
    "warm_up": (0, _INT32_MAX),
    "duration": (0, 1e9),
    "sleep_time": (0, _INT32_MAX),
    "idle_time": (0, _INT32_MAX),
    "inf_streams": (1, 1024),
    "use_profile": (0, _INT32_MAX),
    "persistent_cache_ratio": (0, 1),
    "avg_runs": (1, _INT32_MAX),
}


def _range_text(lo: float | None, hi: float | None) -> str:
    if hi is None or hi >= _INT32_MAX:
        return f"at least {lo:g}"
    return f"{lo:g}..{hi:g}"


def check_ranges(spec: BuildSpec) -> None:
    """Refuse numeric options outside :data:`RANGES` (and NaN or infinity), naming the flag."""
    for opt in OPTIONS:
        bounds = RANGES.get(opt.attr)
        value = getattr(getattr(spec, opt.section), opt.attr)
        if bounds is None or value is None:
            continue
        lo, hi = bounds
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"--{opt.name} must be a finite number, not {value}.")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            extra = " (trtbuild does not run forever; trtexec's --duration=-1 is not supported)" if opt.attr == "duration" else ""
            raise SpecError(f"--{opt.name} must be {_range_text(lo, hi)}, not {value}{extra}.")
    for pool, nbytes in spec.build.mem_pool_size.items():
        if not 0 <= nbytes <= MAX_BYTES:
            raise SpecError(f"--memPoolSize {pool} must be 0 to 2^63-1 bytes, not {nbytes}.")


# --------------------------------------------------------------------------------------------------
# BuildSpec


@dataclass
class TrtexecCommand:
    """An equivalent trtexec command line plus notes on what it cannot say."""

    args: list[str]
    notes: list[str] = field(default_factory=list)
    dialect: int = 10

    def __str__(self) -> str:
        import shlex

        return " ".join(["trtexec", *(shlex.quote(a) for a in self.args)])


@dataclass
class BuildSpec:
    """Everything needed to build (and run) one engine, independent of the installed TensorRT."""

    onnx: str | None = None
    build: BuildOptions = field(default_factory=BuildOptions)
    system: SystemOptions = field(default_factory=SystemOptions)
    inference: InferenceOptions = field(default_factory=InferenceOptions)
    reporting: ReportingOptions = field(default_factory=ReportingOptions)

    # ---- construction

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[str, str | None]], *, dialect: int | None = 10, onnx: str | None = None
    ) -> BuildSpec:
        """Options as ``(trtexec name, value)`` in command-line order; value None for a bare flag.

        ``dialect=None`` accepts the options of every trtexec version (the ``build`` command: its
        --fp16 is a request that each TensorRT version satisfies its own way).
        """
        if dialect is not None and dialect not in DIALECTS:
            raise SpecError(f"Unknown trtexec version {dialect}; use one of {', '.join(map(str, DIALECTS))}.")
        spec = cls(onnx=onnx)
        shape_events: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name, value in pairs:
            if name == "onnx":
                if "onnx" in seen:
                    raise SpecError("--onnx is given twice; give one model.")
                seen.add("onnx")
                spec.onnx = _require(value, name)
                continue
            opt = _lookup(name, dialect, value)
            if opt is None:
                continue  # a no-op flag, already warned about
            if opt.kind == "shape":
                shape_events.append((_SHAPE_EVENT[opt.name], _require(value, name)))
                continue
            if opt.kind == "inference_shapes":
                # trtexec: --shapes alone also fixes the build profile (min = opt = max)
                shape_events.append(("shapes", _require(value, name)))
            if opt.kind != "list" and opt.name in seen:
                raise SpecError(f"--{name} is given twice; give it once.")
            seen.add(opt.name)
            _apply(spec, opt, value, dialect)
        spec.build.profiles = profiles_from_events(shape_events)
        check_ranges(spec)
        _check_combinations(spec, dialect)
        return spec

    @classmethod
    def from_trtexec_args(cls, argv: Sequence[str], *, dialect: int = 10) -> BuildSpec:
        """Parse a trtexec command line (``--key=value`` only, as trtexec itself)."""
        pairs: list[tuple[str, str | None]] = []
        args = list(argv)
        if args and args[0].endswith("trtexec"):
            args = args[1:]
        for arg in args:
            if not arg.startswith("-"):
                raise SpecError(
                    f"'{arg}' is not a trtexec option: trtexec takes --key=value only (a space-separated value "
                    "like '--shapes input:1x3' does not work); write --shapes=input:1x3."
                )
            key, sep, value = arg.lstrip("-").partition("=")
            pairs.append((key, value if sep else None))
        return cls.from_pairs(pairs, dialect=dialect)

    # ---- views

    def resolved(self, inputs: Sequence[TensorInfo]) -> BuildSpec:
        """A copy whose profiles are checked against the model and keyed by its input names."""
        new = dataclasses.replace(self, build=dataclasses.replace(self.build))
        new.build.profiles = resolve_profiles(self.build.profiles, inputs)
        _check_profile_indices(new)
        if "" in new.inference.shapes:  # a bare --shapes 8x3x640x640: name it, trtexec needs NAME:DIMS
            new.inference = dataclasses.replace(new.inference, shapes=_name_bare_shape(new.inference.shapes, inputs))
        if new.inference.shapes and new.build.profiles:
            index = new.inference.use_profile or 0
            check_run_shapes(new.inference.shapes, new.build.profiles[index], index, inputs)
        return new

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"onnx": self.onnx}
        for section in SECTIONS:
            values: dict[str, Any] = {}
            for f in dataclasses.fields(getattr(self, section)):
                value = getattr(getattr(self, section), f.name)
                if f.name == "profiles":
                    value = [p.as_dict() for p in value]
                elif f.name == "shapes":
                    value = {k: list(v) for k, v in value.items()}
                values[f.name] = value
            data[section] = values
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "The spec") -> BuildSpec:
        """The inverse of :meth:`to_dict`; ``data`` is checked against :func:`spec_schema` (known keys, JSON
        types) and :data:`RANGES` first, since it may come from a file someone else wrote (a recipe)."""
        from trtbuild.schema import problem

        why = problem(data, spec_schema())
        if why is not None:
            raise SpecError(f"{source} is not a valid build spec: {why}. Write it with trtbuild (to_dict / pack).")
        spec = cls(onnx=data.get("onnx"))
        for section, kind in SECTIONS.items():
            values = dict(data.get(section, {}))
            if "profiles" in values:
                values["profiles"] = [Profile.from_dict(p, source=f"profile {i}") for i, p in enumerate(values["profiles"])]
            if "shapes" in values:
                values["shapes"] = {k: dims_of(v, f"{source} inference shape '{k}'") for k, v in values["shapes"].items()}
            setattr(spec, section, kind(**values))
        check_ranges(spec)
        return spec

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def non_defaults(self) -> dict[str, dict[str, Any]]:
        """Options that differ from the defaults, per section (for the plan printout)."""
        out: dict[str, dict[str, Any]] = {}
        for section, kind in SECTIONS.items():
            default = kind()
            changed = {
                f.name: getattr(getattr(self, section), f.name)
                for f in dataclasses.fields(kind)
                if getattr(getattr(self, section), f.name) != getattr(default, f.name) and f.name != "profiles"
            }
            if changed:
                out[section] = changed
        return out

    def to_trtexec(self, dialect: int = 10) -> TrtexecCommand:
        """The equivalent trtexec command line in one dialect, with notes on what it cannot express."""
        if dialect not in DIALECTS:
            raise SpecError(f"Unknown trtexec version {dialect}; use one of {', '.join(map(str, DIALECTS))}.")
        args: list[str] = []
        notes: list[str] = []
        if self.onnx:
            args.append(f"--onnx={self.onnx}")
        profiles = self.build.profiles
        for index, profile in enumerate(profiles):
            if len(profiles) > 1:
                args.append(f"--profile={index}")
            values = profile.flag_values()
            args += [f"--minShapes={values['min']}", f"--optShapes={values['opt']}", f"--maxShapes={values['max']}"]
        for opt in OPTIONS:
            if opt.kind == "shape":
                continue
            section = getattr(self, opt.section)
            value = getattr(section, opt.attr)
            default = getattr(SECTIONS[opt.section](), opt.attr)
            if value == default:
                continue
            if opt.kind in ("flag", "neg_flag") and value != (opt.kind == "flag"):
                continue  # the other spelling of a tri-state option carries this value
            if dialect not in opt.dialects:
                replacement = _dialect_replacement(opt, dialect)
                if replacement is not None:
                    args += replacement
                elif opt.kind in ("flag", "neg_flag") and opt.section == "inference" and dialect == 11:
                    pass  # the 11.x default already does what the 10.x flag asked
                else:
                    notes.append(f"--{opt.name} has no trtexec {dialect} equivalent: {opt.removed_hint or 'not in that version'}")
                continue
            args += _format_opt(opt, value)
        return TrtexecCommand(args, _dedupe(notes), dialect)


def _name_bare_shape(shapes: Mapping[str, Sequence[int]], inputs: Sequence[TensorInfo]) -> dict[str, Any]:
    """``{"": dims}`` -> ``{name: dims}`` for the model's only dynamic input (or its only input)."""
    dynamic = [t.name for t in inputs if t.is_dynamic] or [t.name for t in inputs]
    if len(dynamic) != 1:
        raise SpecError(f"--shapes {'x'.join(map(str, shapes['']))} has no input name, but the model has "
                        f"{len(dynamic)} candidate inputs ({', '.join(dynamic)}); write NAME:DIMS for each.")  # fmt: skip
    return {(dynamic[0] if k == "" else k): v for k, v in shapes.items()}


def _check_profile_indices(spec: BuildSpec) -> None:
    count = len(spec.build.profiles)
    for flag, value in (("useProfile", spec.inference.use_profile), ("calibProfile", spec.build.calib_profile)):
        if value is not None and count and value >= count:
            raise SpecError(f"--{flag}={value} names a profile that does not exist: the build has {count} "
                            f"profile(s), numbered 0..{count - 1}.")  # fmt: skip


def check_run_shapes(shapes: Mapping[str, Sequence[int]], profile: Profile, index: int,
                     inputs: Sequence[TensorInfo]) -> None:  # fmt: skip
    """Refuse run-time ``--shapes`` that the engine's profile cannot take (TensorRT would fail at run time)."""
    from trtbuild.shapes import format_dims

    for name, dims in shapes.items():
        key = name
        if not name and len(profile.shapes) == 1:
            key = next(iter(profile.shapes))
        rng = profile.shapes.get(key)
        if rng is None:
            continue  # a static input, or one the shape checks name elsewhere
        label = f"'{key}'" if key else "the input"
        given = f"{key}:{format_dims(dims)}" if key else format_dims(dims)
        if len(dims) != len(rng.min):
            raise ShapeError(f"--shapes gives {label} {len(dims)} dimensions ({format_dims(dims)}) but profile {index} "
                             f"has {len(rng.min)} ({format_dims(rng.min)}); give a shape of the model's rank.")  # fmt: skip
        if any(d < lo or d > hi for d, lo, hi in zip(dims, rng.min, rng.max)):
            raise ShapeError(
                f"--shapes {given} is outside optimization profile {index} (min {format_dims(rng.min)}, "
                f"max {format_dims(rng.max)}), so the engine could not run it; pick a shape inside the profile or widen "
                "--min/--max."
            )


_SHAPE_EVENT = {"minShapes": "min", "optShapes": "opt", "maxShapes": "max", "profile": "profile"}


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _dialect_replacement(opt: Opt, dialect: int) -> list[str] | None:
    """Flags whose meaning survives in another dialect under another spelling."""
    return None


def _require(value: str | None, name: str) -> str:
    if value is None or value == "":
        raise SpecError(f"--{name} needs a value: write --{name}=VALUE.")
    return value


def _lookup(name: str, dialect: int | None, value: str | None = None) -> Opt | None:
    if name in UNSUPPORTED:
        raise SpecError(f"--{name} is not supported by trtbuild: {UNSUPPORTED[name]}")
    if name in LEGACY:
        if dialect == 8 and name in LEGACY_MAPPED_IN_8:
            log.warning("%s (accepted for trtexec 8 compatibility)", LEGACY[name].format(value=value or "N"))
            return OPTIONS_BY_FLAG.get({"workspace": "memPoolSize", "minTiming": "avgTiming",
                                        "heuristic": "builderOptimizationLevel", "buildOnly": "skipInference"}.get(name, ""))
        raise SpecError(LEGACY[name].format(value=value or "N"))
    if name in NOOP_ALWAYS:
        log.warning("--%s: %s; ignoring it.", name, NOOP_ALWAYS[name])
        return None
    if dialect == 11 and name in NOOP_IN_11:
        log.warning("--%s has no effect with trtexec 11 (its behaviour is the default there); ignoring it.", name)
        return None
    opt = OPTIONS_BY_FLAG.get(name)
    if opt is None:
        close = _close_names(name)
        hint = f" Did you mean {' or '.join('--' + c for c in close)}?" if close else ""
        raise SpecError(f"Unknown option --{name}.{hint} `trtbuild build --help` lists every option.")
    if dialect is not None and dialect not in opt.dialects:
        hint = opt.removed_hint or f"it is not an option of trtexec {dialect}"
        raise SpecError(f"--{name} is not available in trtexec {dialect}: {hint}")
    return opt


def _close_names(name: str) -> list[str]:
    import difflib

    return difflib.get_close_matches(name, list(OPTIONS_BY_FLAG) + list(LEGACY), n=2, cutoff=0.75)


def _apply(spec: BuildSpec, opt: Opt, value: str | None, dialect: int | None) -> None:
    section = getattr(spec, opt.section)
    name = opt.name
    if opt.name == "memPoolSize" and value is not None and ":" not in value:
        value = f"workspace:{value}"  # the legacy --workspace=N mapped in dialect 8
    if opt.kind == "flag":
        setattr(section, opt.attr, True)  # trtexec: any value of a boolean flag means "on"
    elif opt.kind == "neg_flag":
        setattr(section, opt.attr, False)
    elif opt.kind == "int":
        setattr(section, opt.attr, _parse_int(_require(value, name), name))
    elif opt.kind == "float":
        setattr(section, opt.attr, _parse_float(_require(value, name), name))
    elif opt.kind == "choice":
        assert opt.choices is not None
        raw = _require(value, name)
        key = raw.lower()
        if key not in opt.choices:
            raise SpecError(f"--{name} must be one of {', '.join(dict.fromkeys(opt.choices.values()))}, not '{raw}'.")
        if key in ("default", "verbose"):
            log.warning("--profilingVerbosity=%s is deprecated; using %s.", key, opt.choices[key])
        setattr(section, opt.attr, opt.choices[key])
    elif opt.kind == "mempool":
        pools = dict(getattr(section, opt.attr))
        pools.update(parse_mem_pools(_require(value, name)))
        setattr(section, opt.attr, pools)
    elif opt.kind == "list":
        getattr(section, opt.attr).append(_require(value, name))
        if name == "plugins":
            log.warning("--plugins is deprecated; use --staticPlugins.")
    elif opt.kind == "inference_shapes":
        spec.inference.shapes = dict(parse_shape_list(_require(value, name), flag="shapes"))
    elif opt.kind == "str":
        text = _require(value, name)
        if opt.attr == "tactic_sources":
            text = _parse_tactic_sources(text, dialect or 10)
        elif opt.attr in ("input_io_formats", "output_io_formats"):
            text = _parse_io_formats(text, dialect or 10, name)
        setattr(section, opt.attr, text)
    else:  # pragma: no cover - table error
        raise AssertionError(opt)
    if name == "streams":
        log.warning("--streams is deprecated; use --infStreams.")
    if name == "directIO":
        log.warning("--directIO is deprecated and may be ignored by TensorRT.")


def _format_opt(opt: Opt, value: Any) -> list[str]:
    if opt.kind in ("flag", "neg_flag"):
        return [f"--{opt.name}"]
    if opt.kind == "mempool":
        return [f"--{opt.name}={format_mem_pools(value)}"]
    if opt.kind == "list":
        return [f"--{opt.name}={v}" for v in value]
    if opt.kind == "inference_shapes":
        from trtbuild.shapes import format_shape_list

        return [f"--{opt.name}={format_shape_list(value)}"]
    if opt.kind == "float":
        return [f"--{opt.name}={value:g}"]
    return [f"--{opt.name}={value}"]


def _check_combinations(spec: BuildSpec, dialect: int | None) -> None:
    b = spec.build
    if b.fp8 and b.int8:
        raise SpecError("--fp8 and --int8 cannot be combined (trtexec refuses it too); choose one.")
    if b.best and b.strongly_typed:
        raise SpecError("--best cannot be combined with --stronglyTyped: a strongly typed network takes its types from the ONNX.")
    if b.exclude_lean_runtime and not b.version_compatible:
        raise SpecError("--excludeLeanRuntime only makes sense with --versionCompatible; add it or drop the flag.")
    if b.build_dla_standalone and b.allow_gpu_fallback:
        raise SpecError("--buildDLAStandalone forbids --allowGPUFallback: a standalone DLA loadable cannot use the GPU.")
    if b.allow_gpu_fallback and spec.system.use_dla_core is None and not b.build_dla_standalone:
        raise SpecError("--allowGPUFallback needs --useDLACore=N: it lets layers fall back from DLA to the GPU.")
    if b.calib and not (b.int8 or b.best):
        raise SpecError("--calib is an INT8 calibration cache; add --int8 (or drop --calib).")
    if b.strip_all_weights:
        b.refit = True
        b.strip_weights = True
        b.strip_all_weights = False


_SPEC_SCHEMA: Any = None


def spec_schema() -> Any:
    """The JSON schema of :meth:`BuildSpec.to_dict`, derived from the option dataclasses' type hints."""
    global _SPEC_SCHEMA
    if _SPEC_SCHEMA is None:
        import typing

        from trtbuild.schema import AnyValue, Bool, Int, ListOf, MapOf, Nullable, Num, Obj, Schema, Str

        def convert(hint: Any) -> Schema:
            origin, args = typing.get_origin(hint), typing.get_args(hint)
            if hint is bool:
                return Bool
            if hint is int:
                return Int
            if hint is float:
                return Num
            if hint is str:
                return Str
            if hint is Profile:
                return MapOf(AnyValue)  # Profile.from_dict checks each entry with a sentence of its own
            if origin in (list, tuple):
                return ListOf(convert(args[0]))
            if origin is dict:
                return MapOf(convert(args[1]))
            if args and type(None) in args:
                (inner,) = [a for a in args if a is not type(None)]
                return Nullable(convert(inner))
            raise AssertionError(f"no schema for {hint!r}")  # pragma: no cover - a new field type

        sections = {
            name: Obj({f: convert(t) for f, t in typing.get_type_hints(kind).items()}, extra=False)
            for name, kind in SECTIONS.items()
        }
        _SPEC_SCHEMA = Obj({"onnx": Nullable(Str), **sections}, extra=False)
    return _SPEC_SCHEMA


def option_table(dialect: int | None = None) -> list[dict[str, str]]:
    """Rows for the README's trtexec <-> trtbuild flag table."""
    rows = []
    for opt in OPTIONS:
        if dialect is not None and dialect not in opt.dialects:
            continue
        rows.append(
            {
                "trtexec": f"--{opt.name}",
                "trtbuild": " ".join(opt.flags),
                "versions": ",".join(f"{d}.x" for d in DIALECTS if d in opt.dialects),
                "help": opt.help,
            }
        )
    return rows
