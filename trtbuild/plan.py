"""Validate a BuildSpec against its model and describe the build without TensorRT (``--dry-run``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.errors import ModelError, ShapeError, SpecError
from trtbuild.model.inspect import ModelReport, inspect_model
from trtbuild.spec import BuildSpec, TrtexecCommand
from trtbuild.trt.compat import installed_tensorrt_version, major_version

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class BuildPlan:
    """What ``build`` will do: the checked spec, the model, the precision path and trtexec's equivalent."""

    spec: BuildSpec
    model: ModelReport
    engine_path: str
    tensorrt_version: str | None  # installed, or None
    target_major: int  # the TensorRT major the plan is written for
    precision_steps: list[str] = field(default_factory=list)
    trtexec: TrtexecCommand | None = None
    warnings: list[str] = field(default_factory=list)
    recipe_sha256: str | None = None  # set by `build --recipe`: the engine manifest records it

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "engine": self.engine_path,
            "manifest": self.manifest_path,
            "tensorrt_installed": self.tensorrt_version,
            "target_tensorrt_major": self.target_major,
            "precision_steps": self.precision_steps,
            "spec": self.spec.to_dict(),
            "trtexec": {"args": self.trtexec.args, "notes": self.trtexec.notes, "command": str(self.trtexec)}
            if self.trtexec
            else None,
            "warnings": self.warnings,
            "recipe_sha256": self.recipe_sha256,
            "timing_cache_ignore_mismatch": self.timing_cache_ignore_mismatch,
        }


def default_engine_path(model: str | os.PathLike[str]) -> str:
    """``model.onnx`` -> ``model.engine`` beside it; ``zoo:NAME`` -> ``NAME.engine`` in the current folder."""
    text = os.fspath(model)
    if text.startswith("zoo:"):
        return f"{text[4:]}.engine"
    return str(Path(text).with_suffix(".engine"))


def precision_steps(spec: BuildSpec, model: ModelReport, target_major: int, version: str | None = None) -> list[str]:
    """The steps the installed (or targeted) TensorRT needs for the requested precision."""
    b = spec.build
    has_qdq = any(op in model.op_histogram for op in QDQ_OPS)
    steps: list[str] = []
    if target_major >= 11:
        if b.fp16 or b.bf16:
            steps.append("cast the ONNX to FP16 (I/O kept FP32), then build the strongly typed network")
        if b.int8 and not has_qdq:
            steps.append("quantize the ONNX to INT8 Q/DQ with calibration data, then build")
        if b.int8 and has_qdq:
            steps.append("the ONNX already has Q/DQ nodes: build it as is (explicit quantization)")
        if b.fp8 or b.int4 or b.best or b.calib:
            raise SpecError(
                f"TensorRT {version or target_major} has no --fp8/--int4/--best/--calib builder options; quantize the ONNX with "
                "ModelOpt (Q/DQ) and build it without precision flags."
            )
        if not steps:
            steps.append("FP32 (types come from the ONNX; TensorRT 11 networks are strongly typed)")
        return steps
    flags = [name.upper() for name in ("fp16", "bf16", "int8", "fp8", "int4") if getattr(b, name)]
    if b.best:
        flags = ["FP16", "BF16", "INT8"]
    if has_qdq and "INT8" not in flags:
        flags.append("INT8")
        steps.append("the ONNX has Q/DQ nodes: INT8 flag set for explicit quantization")
    if "INT8" in flags and not has_qdq:
        source = f"calibration cache {b.calib}" if b.calib else "calibration data (--calib-data) or a cache (--calib)"
        steps.append(f"implicit INT8 with IInt8EntropyCalibrator2 from {source}")
    steps.insert(0, "builder flags: " + (", ".join(f"BuilderFlag.{f}" for f in flags) if flags else "none (FP32/TF32)"))
    return steps


def plan_build(
    spec: BuildSpec,
    model: str | os.PathLike[str] | None = None,
    *,
    trtexec_version: int | None = None,
) -> BuildPlan:
    """Check ``spec`` against the model and say what a build would do; needs no TensorRT or GPU."""
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
    resolved = spec.resolved(report.inputs)
    resolved.onnx = report.path
    installed = installed_tensorrt_version()
    target = trtexec_version or _dialect_for(installed)
    engine_path = resolved.build.save_engine or default_engine_path(model_arg)
    resolved.build.save_engine = engine_path
    warnings: list[str] = []
    if report.checker != "ok":
        warnings.append(f"onnx.checker: {report.checker}")
    return BuildPlan(
        spec=resolved,
        model=report,
        engine_path=engine_path,
        tensorrt_version=installed,
        target_major=target if target != 8 else 8,
        precision_steps=precision_steps(resolved, report, target, installed if _dialect_for(installed) == target else None),
        trtexec=resolved.to_trtexec(target),
        warnings=warnings,
    )


def _dialect_for(version: str | None) -> int:
    major = major_version(version)
    if major is None:
        return 10
    if major <= 9:
        return 8
    return 11 if major >= 11 else 10
