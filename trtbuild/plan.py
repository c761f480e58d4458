"""Validate a BuildSpec against its model and describe the build without TensorRT (``--dry-run``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trtbuild.errors import ModelError, ShapeError, SpecError, TrtbuildError
from trtbuild.model.calib import CalibOptions, CalibrationError
from trtbuild.model.fp16 import modelopt_available
from trtbuild.model.inspect import ModelReport, inspect_model
from trtbuild.spec import BuildSpec, TrtexecCommand
from trtbuild.trt.compat import installed_tensorrt_version, major_version

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class CalibrationPlanError(CalibrationError):
    """INT8 that cannot be calibrated as asked (no data, a missing folder or cache), found at plan time."""



PrecisionPath = Literal["none", "flags", "onnx", "qdq", "typed"]
PRECISION_PATHS: tuple[str, ...] = ("flags", "onnx")  # what --precision-path accepts
#: ONNX Runtime's dynamic/integer quantization ops: TensorRT's ONNX parser has none of them.
INTEGER_OPS = ("ConvInteger", "MatMulInteger", "DynamicQuantizeLinear")
CALIBRATORS = {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}


@dataclass
class ConversionStep:
    """One ONNX-side conversion the build runs before TensorRT parses the model."""

    kind: Literal["fp16-cast", "int8-qdq"]
    converter: str  # trtbuild (FP16 pass) | onnxruntime (quantize_static) | modelopt
    output: str
    repair: bool = False  # a failing accuracy verdict starts precision repair (trtbuild.model.repair)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "converter": self.converter, "output": self.output,
                **({"repair": True} if self.repair else {})}  # fmt: skip


@dataclass
class CalibratorPlan:
    """Implicit INT8 calibration (TensorRT <= 10.x): which calibrator, fed from what, at which profile."""

    kind: str  # IInt8EntropyCalibrator2 | IInt8MinMaxCalibrator | a calibrator given through the Python API
    data: dict[str, Any] | None  # where the batches come from (None: the cache only)
    profile: str  # "dedicated (calibration batch shape)" or "profile N"
    cache: str | None  # the TensorRT calibration cache read (and written, unless given)
    cache_given: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "data": self.data, "profile": self.profile, "cache": self.cache,
                "cache_given": self.cache_given}  # fmt: skip


@dataclass
class BuildPlan:
    """Every decision ``build`` makes, computed on the CPU from spec + model + target TensorRT version.

    ``trt/builder.py`` only executes it and checks afterwards that it applied exactly these flags;
    ``--dry-run`` prints it, ``pack`` stores it and the engine manifest records it.
    """

    spec: BuildSpec
    model: ModelReport
    engine_path: str
    tensorrt_version: str | None  # installed, or None
    target_major: int  # the TensorRT major the plan is written for
    precision_steps: list[str] = field(default_factory=list)
    trtexec: TrtexecCommand | None = None
    warnings: list[str] = field(default_factory=list)
    recipe_sha256: str | None = None  # set by `build --recipe`: the engine manifest records it
    precision_path: PrecisionPath = "none"
    conversions: list[ConversionStep] = field(default_factory=list)
    precision_flags: list[str] = field(default_factory=list)  # the BuilderFlags precision asks for
    builder_flags: list[str] = field(default_factory=list)  # every BuilderFlag the builder sets
    network_flags: list[str] = field(default_factory=list)  # NetworkDefinitionCreationFlag names
    calibrator: CalibratorPlan | None = None
    plugins: dict[str, list[str]] = field(default_factory=dict)
    converted_from: str | None = None  # set once the plan's conversions ran: the ONNX they started from
    calib_options: CalibOptions | None = None  # the calibration options the plan was made with (it reads that data)
    requested_precision_path: str | None = None  # --precision-path as given

    @property
    def manifest_path(self) -> str:
        return self.engine_path + ".json"

    # ---- build decisions the builder executes (TensorRT-side details; see trt/builder.py)

    @property
    def timing_cache_ignore_mismatch(self) -> bool:
        """Load and merge timing caches with ``ignore_mismatch=True``: a cache shared by two GPU types keeps
        both GPUs' entries (NvInfer.h ITimingCache::combine: "ignoreMismatch must be set to true if combining
        a timing cache created from a different device"; trtexec's buildTimingCacheFromFile and Polygraphy's
        EngineFromNetwork pass true). Entries are keyed per device, so another GPU's never stand in for ours."""
        return True

    def dla_builder_flags(self, precision_flags: list[str]) -> list[str]:
        """The BuilderFlags a DLA build adds (TensorRT <= 10.x, weakly typed).

        DLA runs FP16 or INT8 only, so FP16 is allowed unless INT8 was asked, and layers prefer those types
        (trtexec's sampleEngines.cpp sets kPREFER_PRECISION_CONSTRAINTS for DLA). With
        --precisionConstraints=obey, PREFER is left off: TensorRT takes exactly one of the two
        (NvInfer.h, ILayer::setPrecision).
        """
        b = self.spec.build
        if self.spec.system.use_dla_core is None or b.strongly_typed or self.target_major >= 11:
            return []
        flags = [] if any(f in precision_flags for f in ("FP16", "INT8")) else ["FP16"]
        if b.precision_constraints != "obey":
            flags.append("PREFER_PRECISION_CONSTRAINTS")
        return flags

    def calibration_shapes(self, batch_shapes: Mapping[str, Any] | None) -> dict[str, tuple[int, ...]] | None:
        """The shapes implicit INT8 calibration runs at: None to use profile ``--calibProfile`` (or 0) as built.

        TensorRT reads each calibration input as the calibration profile's OPT shape and cannot see the
        buffer, so a batch of another size is cut or read past. With calibration data, the calibration
        profile is a dedicated one of the batch shapes (min = opt = max), as trtexec builds for
        ``--calibProfile`` shapes (sampleEngines.cpp, setCalibrationProfile). A pinned ``--calibProfile=N``
        must have the batch shapes as its OPT shapes.
        """
        if not batch_shapes:
            return None
        shapes = {name: tuple(int(d) for d in dims) for name, dims in batch_shapes.items()}
        b = self.spec.build
        if b.calib_profile is None:
            return shapes
        if not 0 <= b.calib_profile < len(b.profiles):
            raise SpecError(f"--calibProfile={b.calib_profile}: the build has {len(b.profiles)} profile(s) "
                            f"(0..{len(b.profiles) - 1}).")  # fmt: skip
        profile = b.profiles[b.calib_profile]
        for name, dims in shapes.items():
            rng = profile.shapes.get(name)
            if rng is not None and tuple(rng.opt) != dims:
                raise ShapeError(
                    f"INT8 calibration batches for '{name}' are {'x'.join(map(str, dims))}, but --calibProfile="
                    f"{b.calib_profile} has the OPT shape {'x'.join(map(str, rng.opt))}, which is what TensorRT reads; "
                    "drop --calibProfile (trtbuild then calibrates with a profile of the batch shape) or make its OPT "
                    "shape the calibration batch shape."
                )
        return None

    @property
    def outputs(self) -> dict[str, str]:
        """Every file the build writes."""
        out = {"engine": self.engine_path, "manifest": self.manifest_path}
        if self.spec.build.timing_cache_file:
            out["timing_cache"] = self.spec.build.timing_cache_file
        for step in self.conversions:
            out[step.kind] = step.output
        if self.calibrator is not None and self.calibrator.cache and not self.calibrator.cache_given:
            out["calibration_cache"] = self.calibrator.cache
        return out

    def decisions(self) -> dict[str, Any]:
        """The build decisions (what the manifest records as ``plan`` and a recipe stores)."""
        return {
            "target_tensorrt_major": self.target_major,
            "precision_path": self.precision_path,
            "conversions": [c.to_dict() for c in self.conversions],
            "precision_flags": list(self.precision_flags),
            "builder_flags": list(self.builder_flags),
            "cleared_builder_flags": self.cleared_builder_flags,
            "network_flags": list(self.network_flags),
            "calibrator": self.calibrator.to_dict() if self.calibrator else None,
            "plugins": {k: list(v) for k, v in self.plugins.items()},
            "outputs": self.outputs,
            "timing_cache_ignore_mismatch": self.timing_cache_ignore_mismatch,
        }

    @property
    def cleared_builder_flags(self) -> list[str]:
        return ["TF32"] if self.spec.build.no_tf32 and self.target_major <= 10 else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "engine": self.engine_path,
            "manifest": self.manifest_path,
            "tensorrt_installed": self.tensorrt_version,
            "target_tensorrt_major": self.target_major,
            "precision_steps": self.precision_steps,
            "decisions": self.decisions(),
            "spec": self.spec.to_dict(),
            "trtexec": {"args": self.trtexec.args, "notes": self.trtexec.notes, "command": str(self.trtexec)}
            if self.trtexec
            else None,
            "warnings": self.warnings,
            "recipe_sha256": self.recipe_sha256,
            "timing_cache_ignore_mismatch": self.timing_cache_ignore_mismatch,
        }


def portable_decisions(decisions: dict[str, Any]) -> dict[str, Any]:
    """The decisions with host paths cut to file names: what a recipe's re-plan on the device must match."""
    out = json.loads(json.dumps(decisions))
    out.pop("outputs", None)
    out.pop("target_tensorrt_major", None)  # the device decides its TensorRT; what that changes shows below
    out.pop("plugins", None)  # the device names its own plugin libraries
    for step in out.get("conversions", []):
        step["output"] = Path(step["output"]).name
    cal = out.get("calibrator")
    if cal:
        cal["cache"] = Path(cal["cache"]).name if cal.get("cache") else None
        if cal.get("data"):
            cal["data"] = {k: (Path(v).name if k == "source" and v else v) for k, v in cal["data"].items()}
    return out


def plan_differences(stored: dict[str, Any], replanned: dict[str, Any]) -> list[str]:
    """What a re-plan changed, key by key (empty when it builds the same way)."""
    a, b = portable_decisions(stored), portable_decisions(replanned)
    return [f"{key}: {a.get(key)!r} in the recipe, {b.get(key)!r} here" for key in sorted(set(a) | set(b))
            if a.get(key) != b.get(key)]  # fmt: skip


def default_engine_path(model: str | os.PathLike[str]) -> str:
    """``model.onnx`` -> ``model.engine`` beside it; ``zoo:NAME`` -> ``NAME.engine`` in the current folder."""
    text = os.fspath(model)
    if text.startswith("zoo:"):
        return f"{text[4:]}.engine"
    return str(Path(text).with_suffix(".engine"))


@dataclass
class _Precision:
    path: PrecisionPath
    steps: list[str]
    flags: list[str]
    conversions: list[ConversionStep]
    calibrator: CalibratorPlan | None
    warnings: list[str]


def decide_precision(
    spec: BuildSpec,
    model: ModelReport,
    target: int,
    *,
    calib: CalibOptions | None = None,
    precision_path: str | None = None,
    external_calibrator: bool = False,
    version: str | None = None,
    low_precision: bool | None = None,
) -> _Precision:
    """The precision path, ONNX conversions, precision BuilderFlags and calibrator for ``target``.

    Pure: reads the spec, the model report and the calibration options' paths (existence only).
    ``low_precision`` says whether the ONNX already computes in FP16/BF16 (read from the file when None).
    """
    b = spec.build
    if precision_path is not None and precision_path not in PRECISION_PATHS:
        raise SpecError(f"--precision-path must be one of {', '.join(PRECISION_PATHS)}, not '{precision_path}'.")
    has_qdq = any(op in model.op_histogram for op in QDQ_OPS)
    opts = calib or CalibOptions()
    cache = b.calib or opts.cache
    has_data = bool(opts.data or opts.random)
    if opts.data and not Path(opts.data).exists():
        raise CalibrationPlanError(f"--calib-data {opts.data}: no such file or folder; give the folder of calibration "
                                   "images (or .npy/.npz files) that exists on this machine.")  # fmt: skip
    requested = [n for n in ("fp16", "bf16", "int8", "fp8", "int4", "best") if getattr(b, n)]
    label = version or str(target)
    out_dir = Path(b.save_engine or default_engine_path(model.path)).parent
    stem = Path(model.path).stem
    warnings: list[str] = []

    def low() -> bool:
        return onnx_has_low_precision(model.path) if low_precision is None else low_precision

    def int8_step() -> ConversionStep:
        if not (has_data or cache):
            raise CalibrationPlanError(
                f"--int8 on the ONNX path quantizes {Path(model.path).name} to Q/DQ, which needs calibration data: "
                "pass --calib-data DIR (images or .npy/.npz), or --calib-random for a smoke test only."
            )
        converter = "modelopt" if (modelopt_available() and target >= 10) else "onnxruntime"
        return ConversionStep("int8-qdq", converter, str(out_dir / f"{stem}.int8.onnx"))

    def conversions() -> list[ConversionStep]:
        if b.int8 and not has_qdq:
            return [int8_step()]
        if b.fp16 and not b.int8 and not low():
            return [ConversionStep("fp16-cast", "trtbuild", str(out_dir / f"{stem}.fp16.onnx"))]
        return []

    if target >= 11:
        if b.fp8 or b.int4 or b.best or b.calib or external_calibrator:
            raise SpecError(
                f"TensorRT {label} has no --fp8/--int4/--best/--calib builder options and no calibrators; quantize the "
                "ONNX with ModelOpt (Q/DQ) and build it without precision flags."
            )
        if precision_path == "flags" and (b.fp16 or b.int8 or b.bf16):
            raise SpecError(
                "--precision-path flags is impossible on TensorRT 11: it has no FP16/INT8 builder flags and no "
                "calibrators. Use --precision-path onnx (the default there): the ONNX is cast or quantized first."
            )
        if b.precision_constraints or b.layer_precisions or b.layer_output_types:
            raise SpecError(f"TensorRT {label} networks are strongly typed: --precisionConstraints, --layerPrecisions "
                            "and --layerOutputTypes were removed; put casts in the ONNX instead.")  # fmt: skip
        if b.bf16 and not b.fp16 and not low():
            raise SpecError(f"TensorRT {label} has no --bf16 builder flag and trtbuild casts to FP16 only: ask for "
                            "--fp16, or build an ONNX that already computes in BF16.")  # fmt: skip
        steps = conversions()
        text = [_describe(c) for c in steps]
        if b.int8 and has_qdq:
            text.append("the ONNX already has Q/DQ nodes: build it as is (explicit quantization)")
        text.append("build the strongly typed network without precision flags (TensorRT 11)")
        path: PrecisionPath = "onnx" if steps else ("qdq" if has_qdq else ("typed" if requested else "none"))
        return _Precision(path, text, [], steps, None, warnings)

    if b.strongly_typed:
        if requested or external_calibrator or b.calib or precision_path:
            raise SpecError(
                f"--stronglyTyped takes every type from the ONNX, so it cannot be combined with "
                f"{', '.join('--' + r for r in requested) or '--calib, --precision-path or a calibrator'}; drop "
                "--stronglyTyped, or cast/quantize the ONNX first (`trtbuild cast` / `trtbuild quantize`) and build "
                "that with --stronglyTyped alone."
            )
        if b.precision_constraints or b.layer_precisions or b.layer_output_types:
            raise SpecError("--precisionConstraints/--layerPrecisions/--layerOutputTypes do not apply to a strongly "
                            "typed network (--stronglyTyped); put casts in the ONNX instead.")  # fmt: skip
        return _Precision("typed", ["strongly typed network: types from the ONNX"], [], [], None, warnings)

    bf16_ok = target >= 10  # BuilderFlag.BF16 arrived in 9.x; the 8 dialect is 8.5/8.6
    if b.bf16 and not bf16_ok:
        raise SpecError(f"--bf16 needs TensorRT 9 or later (BuilderFlag.BF16); TensorRT {label} has FP16 only.")
    flags = [flag for name, flag in (("fp16", "FP16"), ("bf16", "BF16"), ("fp8", "FP8"), ("int4", "INT4"))
             if getattr(b, name)]  # fmt: skip
    if b.best:
        flags += ["FP16"] + (["BF16"] if bf16_ok else [])
    if precision_path == "onnx":
        steps = conversions()
        flags = flags + (["INT8"] if b.int8 or has_qdq else [])
        text = [_describe(c) for c in steps]
        if b.int8 and has_qdq:
            text.append("the ONNX already has Q/DQ nodes: build it as is (explicit quantization)")
        flags = list(dict.fromkeys(flags))
        text.append("build weakly typed with builder flags " + (", ".join(flags) or "none"))
        return _Precision("onnx" if steps else ("qdq" if has_qdq else "flags"), text, flags, steps, None, warnings)
    calibrator = None
    text = []
    if has_qdq:
        flags.append("INT8")
        text.append("the ONNX has Q/DQ nodes: INT8 flag set for explicit quantization")
        if has_data or cache or external_calibrator:
            warnings.append("The ONNX has Q/DQ nodes: its scales are used and the calibration data/cache is ignored.")
    elif b.int8 or b.best:
        profile = _calibration_profile(spec, has_data or external_calibrator)
        algorithm = "entropy"
        if external_calibrator:
            calibrator = CalibratorPlan("the calibrator given to build_engine", None, profile, None)
        elif has_data:
            data = {"source": opts.data, "random": opts.random, "preprocess": opts.preprocess if opts.data else None,
                    "samples": opts.samples, "shape": opts.shape, "seed": opts.seed if opts.random else None}  # fmt: skip
            calibrator = CalibratorPlan(CALIBRATORS[algorithm], data, profile, str(cache or out_dir / f"{stem}.calib"),
                                        cache_given=bool(cache))  # fmt: skip
        elif cache:
            if not Path(cache).is_file():
                raise CalibrationPlanError(
                    f"--calib {cache}: no such calibration cache, and no calibration data was given; INT8 needs one "
                    "of them. Give an existing cache, or --calib-data DIR to calibrate (the cache is then written)."
                )
            calibrator = CalibratorPlan(CALIBRATORS["entropy"], None, profile, str(cache), cache_given=True)
        elif b.int8:
            raise CalibrationPlanError(
                f"--int8 on {Path(model.path).name}, which has no Q/DQ nodes, needs calibration: pass --calib-data DIR "
                "(images or .npy/.npz files), --calib CACHE (an existing TensorRT calibration cache), or quantize the "
                "ONNX first (`trtbuild quantize`) and build that."
            )
        else:
            warnings.append("--best: INT8 left off (no Q/DQ nodes and no calibration data or cache); FP16"
                            + ("/BF16" if bf16_ok else "") + " allowed. Pass --calib-data DIR to add INT8.")
        if calibrator is not None:
            flags.append("INT8")
            source = (f"data {opts.data or 'random (--calib-random)'}" if calibrator.data else
                      "an external calibrator" if external_calibrator else f"the calibration cache {calibrator.cache} only")  # fmt: skip
            text.append(f"implicit INT8 with {calibrator.kind} from {source} ({calibrator.profile})")
    elif has_data or (cache and not b.int8):
        if b.calib:
            raise SpecError("--calib is an INT8 calibration cache, but neither --int8 nor --best was given; add --int8 "
                            "or drop --calib.")  # fmt: skip
        if external_calibrator:
            raise SpecError("A calibrator was given without --int8 (or --best); add --int8 or drop the calibrator.")
    flags = list(dict.fromkeys(flags))
    text.insert(0, "builder flags: " + (", ".join(f"BuilderFlag.{f}" for f in flags) if flags else "none (FP32/TF32)"))
    path = "qdq" if has_qdq else ("flags" if flags else "none")
    return _Precision(path, text, flags, [], calibrator, warnings)


def _ask_repair(precision: _Precision) -> None:
    """``--repair``: only conversions made here can be repaired (builder flags leave precision to TensorRT)."""
    if not precision.conversions:
        raise SpecError(
            "--repair applies to the FP16/INT8 conversions of the ONNX precision path, and this build converts "
            "nothing: add --precision-path onnx with --fp16 or --int8 (on TensorRT 11 that path is the default), or "
            "drop --repair."
        )
    for step in precision.conversions:
        step.repair = True
    precision.steps[:] = [_describe(c) for c in precision.conversions] + precision.steps[len(precision.conversions):]


def _describe(step: ConversionStep) -> str:
    repair = ", repaired if its accuracy verdict fails" if step.repair else ""
    if step.kind == "int8-qdq":
        return f"quantize the ONNX to INT8 Q/DQ with {step.converter} (calibration data{repair}) -> {step.output}"
    return f"cast the ONNX to FP16 with {step.converter} (I/O kept FP32{repair}) -> {step.output}"


def _calibration_profile(spec: BuildSpec, dedicated: bool) -> str:
    b = spec.build
    if b.calib_profile is not None:
        if b.profiles and not 0 <= b.calib_profile < len(b.profiles):
            raise SpecError(f"--calibProfile={b.calib_profile}: the build has {len(b.profiles)} profile(s) "
                            f"(0..{len(b.profiles) - 1}).")  # fmt: skip
        return f"profile {b.calib_profile}"
    if dedicated:
        return "dedicated (calibration batch shape)"
    return "profile 0" if b.profiles else "the static input shapes"


def builder_flags(spec: BuildSpec, target: int, precision_flags: list[str], dla_flags: list[str]) -> list[str]:
    """Every BuilderFlag the builder sets, in the order it sets them (trt/builder.py _apply_config)."""
    b = spec.build
    flags = list(precision_flags)
    if b.precision_constraints in ("obey", "prefer") or ((b.layer_precisions or b.layer_output_types)
                                                         and not b.precision_constraints):  # fmt: skip
        flags.append("OBEY_PRECISION_CONSTRAINTS" if b.precision_constraints == "obey" else "PREFER_PRECISION_CONSTRAINTS")
    for attr, flag in SIMPLE_FLAGS:
        if getattr(b, attr):
            flags.append(flag)
    if b.strip_weights:
        flags.append("STRIP_PLAN")
        if not b.refit:
            flags.append("REFIT_IDENTICAL")
    if b.sparsity == "enable":
        flags.append("SPARSE_WEIGHTS")
    if spec.system.use_dla_core is not None and b.allow_gpu_fallback:
        flags.append("GPU_FALLBACK")
    flags += [f for f in dla_flags if f not in flags]
    return list(dict.fromkeys(flags))


#: spec attribute -> BuilderFlag for the options that are one flag each (the builder sets them in this order).
SIMPLE_FLAGS = (
    ("refit", "REFIT"),
    ("direct_io", "DIRECT_IO"),
    ("no_builder_cache", "DISABLE_TIMING_CACHE"),
    ("no_compilation_cache", "DISABLE_COMPILATION_CACHE"),
    ("error_on_timing_cache_miss", "ERROR_ON_TIMING_CACHE_MISS"),
    ("allow_weight_streaming", "WEIGHT_STREAMING"),
    ("distributive_independence", "DISTRIBUTIVE_INDEPENDENCE"),
    ("monitor_memory", "MONITOR_MEMORY"),
    ("version_compatible", "VERSION_COMPATIBLE"),
    ("exclude_lean_runtime", "EXCLUDE_LEAN_RUNTIME"),
)


def network_flags(spec: BuildSpec, target: int) -> list[str]:
    """NetworkDefinitionCreationFlags: EXPLICIT_BATCH on 8.x (ONNX needs it), STRONGLY_TYPED on request on 10.x."""
    flags = ["EXPLICIT_BATCH"] if target < 10 else []
    if spec.build.strongly_typed and target <= 10:
        if target < 10:
            raise SpecError("--stronglyTyped needs TensorRT 10 (NetworkDefinitionCreationFlag.STRONGLY_TYPED); drop "
                            "the option for TensorRT 8.x.")  # fmt: skip
        flags.append("STRONGLY_TYPED")
    return flags


#: trtexec 8.x (TensorRT 8.5/8.6) build options that arrived in TensorRT 10: their builder members do not exist there.
NEWER_THAN_8 = {
    "noCompilationCache": "BuilderFlag.DISABLE_COMPILATION_CACHE", "errorOnTimingCacheMiss": "BuilderFlag.ERROR_ON_TIMING_CACHE_MISS",
    "maxTactics": "IBuilderConfig.max_num_tactics", "tilingOptimizationLevel": "TilingOptimizationLevel",
    "l2LimitForTiling": "IBuilderConfig.l2_limit_for_tiling", "runtimePlatform": "RuntimePlatform",
    "stripWeights": "BuilderFlag.STRIP_PLAN", "stripAllWeights": "BuilderFlag.STRIP_PLAN",
    "allowWeightStreaming": "BuilderFlag.WEIGHT_STREAMING", "markDebug": "INetworkDefinition.mark_debug",
    "distributiveIndependence": "BuilderFlag.DISTRIBUTIVE_INDEPENDENCE", "monitorMemory": "BuilderFlag.MONITOR_MEMORY",
    "int4": "BuilderFlag.INT4",
}  # fmt: skip


def check_options_for_target(spec: BuildSpec, target: int, label: str) -> None:
    """Options the target TensorRT has no builder member for, refused at plan time (not when the build gets there)."""
    if target >= 10:
        return  # 11.x's removed options are the precision ones, which decide_precision answers
    from trtbuild.spec import OPTIONS, SECTIONS

    for opt in OPTIONS:
        if opt.name not in NEWER_THAN_8:
            continue
        value = getattr(getattr(spec, opt.section), opt.attr)
        if value != getattr(SECTIONS[opt.section](), opt.attr):
            raise SpecError(f"--{opt.name} needs TensorRT 10 or later; TensorRT {label} has no "
                            f"{NEWER_THAN_8[opt.name]}. Drop it, or target TensorRT 10 (--trtexec-version 10).")  # fmt: skip


def check_conflicts(spec: BuildSpec) -> None:
    """Option combinations no TensorRT can build, refused before anything runs."""
    b = spec.build
    if b.plugin_instance_norm and (b.version_compatible or b.hardware_compatibility_level == "ampere+"):
        raise SpecError("--pluginInstanceNorm cannot be combined with --versionCompatible or "
                        "--hardwareCompatibilityLevel=ampere+: those need the native InstanceNorm; drop one.")  # fmt: skip
    if b.no_builder_cache and b.timing_cache_file:
        raise SpecError("--noBuilderCache disables the timing cache that --timingCacheFile would load and save; drop one.")
    if b.sparsity == "force":
        raise SpecError("--sparsity=force (prune weights to 2:4 at build time) is deprecated and not supported by "
                        "trtbuild; prune the model first (e.g. with ModelOpt sparsity) and build with --sparsity=enable.")  # fmt: skip
    if b.build_dla_standalone:
        # trtexec's help (sampleOptions.cpp): the output "can be loaded by cuDLA", and trtexec skips inference for
        # it. It is not a TensorRT plan, so it could be neither written as model.engine (checked for the plan
        # tag) nor run; refuse at plan time.
        raise SpecError("--buildDLAStandalone builds a cuDLA loadable, not a TensorRT engine, and trtbuild writes, "
                        "checks and runs TensorRT engines only; build the loadable with `trtexec --onnx=MODEL "
                        "--useDLACore=N --buildDLAStandalone --saveEngine=model.dla` and load it with cuDLA.")


def target_problems(model: ModelReport, target: int, version: str | None = None) -> list[tuple[str, str]]:
    """Why the target TensorRT's parser would refuse or misread ``model``: (kind, sentence) pairs, empty when none.

    The same checks as ``quantize --check-only`` for Q/DQ (trtbuild.model.qdq_check), plus the opset limit and
    ONNX Runtime's integer ops. For ``inspect`` and anything else that reports rather than refuses.
    """
    from trtbuild.model.qdq_check import check_qdq, max_opset

    text = _target_text(target, version)
    limit = max_opset(text)
    problems: list[tuple[str, str]] = []
    if model.opset > limit:
        problems.append(("opset", f"{model.path} declares ONNX opset {model.opset}, but TensorRT {text}'s ONNX parser "
                         f"reads up to opset {limit}; export the model again with opset {limit} or lower, or target a "
                         "newer TensorRT (--trtexec-version)."))  # fmt: skip
    integer = {op: n for op, n in model.op_histogram.items() if op in INTEGER_OPS}
    if integer:
        ops = ", ".join(f"{op} x{n}" for op, n in integer.items())
        problems.append(("integer-ops", f"{model.path} holds ONNX Runtime's integer/dynamic quantization ops ({ops}), "
                         "which TensorRT's parser has no support for; quantize the FP32 model with `trtbuild quantize` "
                         "(static Q/DQ) instead."))  # fmt: skip
    if any(op in model.op_histogram for op in QDQ_OPS):
        report = check_qdq(model.path, text)
        if not report.ok:
            try:
                report.raise_if_failed(f"The Q/DQ model {model.path}")
            except TrtbuildError as exc:
                problems.append(("qdq", str(exc)))
    return problems


def check_model_for_target(model: ModelReport, target: int, version: str | None) -> None:
    """Refuse, at plan time, a model the target's parser cannot read (the first of :func:`target_problems`)."""
    problems = target_problems(model, target, version)
    if problems:
        raise ModelError(problems[0][1])


def _target_text(target: int, version: str | None) -> str:
    if target < 10:
        return "8.6"
    if version and _dialect_for(version) == target:
        parts = version.split(".")
        return ".".join(parts[:2])
    return str(target)


def onnx_has_low_precision(path: str) -> bool:
    """Whether the ONNX already computes in FP16/BF16 (a cast model), judged from its declared types."""
    from onnx import TensorProto

    from trtbuild.model.load import load_onnx

    low = {TensorProto.FLOAT16, TensorProto.BFLOAT16}
    model = load_onnx(path, load_weights=False)

    def graph_has(graph: Any) -> bool:
        for init in graph.initializer:
            if init.data_type in low:
                return True
        for value in list(graph.input) + list(graph.output) + list(graph.value_info):
            if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type in low:
                return True
        for node in graph.node:
            for attr in node.attribute:
                if node.op_type == "Cast" and attr.name == "to" and attr.i in low:
                    return True
                if attr.HasField("t") and attr.t.data_type in low:
                    return True
                if attr.HasField("g") and graph_has(attr.g):
                    return True
                if any(graph_has(g) for g in attr.graphs):
                    return True
        return False

    return graph_has(model.graph)


def plan_build(
    spec: BuildSpec,
    model: str | os.PathLike[str] | None = None,
    *,
    trtexec_version: int | None = None,
    calib: CalibOptions | None = None,
    precision_path: str | None = None,
    external_calibrator: bool = False,
    repair: bool = False,
) -> BuildPlan:
    """Check ``spec`` against the model and decide everything a build does; needs no TensorRT or GPU.

    ``repair`` asks the ONNX conversions to repair a failing accuracy verdict (``--repair``).
    """
    model_arg = model if model is not None else spec.onnx
    if model_arg is None:
        raise SpecError("No model given: pass the .onnx path (or --onnx=model.onnx in trtexec form).")
    report = inspect_model(model_arg)
    if report.ort_only:
        raise ModelError(
            f"{report.path} was saved by ONNX Runtime's extended/all graph optimizations and only ONNX Runtime can "
            "run it; build from the original ONNX (or one optimized with --level basic)."
        )
    if report.nonstandard_ops:
        ops = ", ".join(f"{op} x{n}" for op, n in report.nonstandard_ops.items())
        raise ModelError(
            f"{report.path} uses ops outside the standard ONNX domain that TensorRT's parser cannot read ({ops}); "
            "export the model again without ONNX Runtime's fused ops, or provide TensorRT plugins for them."
        )
    check_conflicts(spec)
    resolved = spec.resolved(report.inputs)
    resolved.onnx = report.path
    installed = installed_tensorrt_version()
    target = trtexec_version or _dialect_for(installed)
    version = installed if _dialect_for(installed) == target else None
    check_model_for_target(report, target, version)
    check_options_for_target(resolved, target, version or _target_text(target, version))
    engine_path = resolved.build.save_engine or default_engine_path(model_arg)
    resolved.build.save_engine = engine_path
    warnings: list[str] = []
    if report.checker != "ok":
        warnings.append(f"onnx.checker: {report.checker}")
    precision = decide_precision(resolved, report, target, calib=calib, precision_path=precision_path,
                                 external_calibrator=external_calibrator, version=version)  # fmt: skip
    if repair:
        _ask_repair(precision)
    warnings += precision.warnings
    plan = BuildPlan(
        spec=resolved,
        model=report,
        engine_path=engine_path,
        tensorrt_version=installed,
        target_major=target,
        precision_steps=precision.steps,
        trtexec=resolved.to_trtexec(target),
        warnings=warnings,
        precision_path=precision.path,
        conversions=precision.conversions,
        precision_flags=precision.flags,
        calibrator=precision.calibrator,
        network_flags=network_flags(resolved, target),
        plugins={k: list(getattr(resolved.system, k)) for k in ("static_plugins", "dynamic_plugins",
                                                                "set_plugins_to_serialize") if getattr(resolved.system, k)},  # fmt: skip
    )
    plan.calib_options, plan.requested_precision_path = calib, precision_path
    plan.builder_flags = builder_flags(resolved, target, precision.flags, plan.dla_builder_flags(precision.flags))
    _annotate_trtexec(plan, calib)
    return plan


def _annotate_trtexec(plan: BuildPlan, calib: CalibOptions | None) -> None:
    """Say, line by line, where the printed trtexec command is not the same build."""
    cmd = plan.trtexec
    if cmd is None:
        return
    notes = cmd.notes
    cal = plan.calibrator
    if cal is not None and cal.data is not None:
        cache = Path(cal.cache).name if cal.cache else "CACHE"
        notes.append(f"calibration data has no trtexec flag: pass --calib={cache} after a first build (trtbuild "
                     "writes that cache), else trtexec --int8 builds with placeholder scales")  # fmt: skip
        cmd.args = [a for a in cmd.args if not a.startswith("--calib=")]
    if plan.conversions:
        steps = ", ".join(f"{c.kind} with {c.converter}" for c in plan.conversions)
        names = " and ".join(Path(c.output).name for c in plan.conversions)
        notes.append(f"the ONNX is converted first ({steps}); trtexec has no such step: run it on {names}")
    if plan.spec.build.best and cal is None and "INT8" not in plan.precision_flags:
        notes.append("--best: trtbuild leaves INT8 off without calibration data or a cache; trtexec --best turns it on "
                     "with placeholder scales")  # fmt: skip


def _dialect_for(version: str | None) -> int:
    major = major_version(version)
    if major is None:
        return 10
    if major <= 9:
        return 8
    return 11 if major >= 11 else 10
