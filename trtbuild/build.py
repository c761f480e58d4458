"""Build an engine from a checked plan: the bridge between the CPU-side plan and ``trtbuild.trt``."""

from __future__ import annotations

import os
from typing import Any

from trtbuild.plan import BuildPlan
from trtbuild.spec import BuildSpec


def build_from_plan(
    plan: BuildPlan,
    *,
    calibrator: Any = None,
    calib: Any = None,
    precision_path: str | None = None,
) -> str:
    """Build and write the engine and its manifest; returns the engine path.

    ``--fp16``/``--int8`` go the way the installed TensorRT needs (DESIGN.md's table): builder flags
    on <= 10.x, the ONNX precision pipeline (FP16 cast, INT8 Q/DQ) on 11.x or with
    ``precision_path="onnx"``; implicit INT8 on <= 10.x calibrates from ``calib`` (CalibOptions).
    """
    from trtbuild.trt.compat import import_tensorrt, major_version

    trt = import_tensorrt()  # a clear MissingDependencyError before any work
    from trtbuild.trt.builder import build_engine as trt_build_engine

    major = major_version(str(trt.__version__)) or plan.target_major
    prepared = None
    if calibrator is None and _needs_precision_pipeline(plan, major, calib, precision_path):
        from trtbuild.precision import prepare_for_precision

        prepared = prepare_for_precision(plan, calib=calib, target_trt_major=major, precision_path=precision_path)
        if prepared.path != plan.model.path:
            plan = _replan(plan, prepared.path)
        calibrator = prepared.make_calibrator(trt)
    result = trt_build_engine(plan, calibrator=calibrator, precision_record=prepared.manifest() if prepared else None)
    if calibrator is not None and hasattr(calibrator, "raise_if_failed"):
        calibrator.raise_if_failed()
    return str(result)


def _needs_precision_pipeline(plan: BuildPlan, major: int, calib: Any, precision_path: str | None) -> bool:
    """Whether the request needs ONNX conversion or calibration data before TensorRT sees it."""
    from trtbuild.plan import QDQ_OPS
    from trtbuild.trt.builder import onnx_has_low_precision

    b = plan.spec.build
    if not (b.fp16 or b.int8):
        return False
    has_qdq = any(op in plan.model.op_histogram for op in QDQ_OPS)
    if major >= 11 or precision_path == "onnx":
        return (b.int8 and not has_qdq) or (b.fp16 and not onnx_has_low_precision(plan.model.path))
    has_data = calib is not None and (getattr(calib, "data", None) or getattr(calib, "random", False))
    return bool(b.int8 and not has_qdq and has_data)


def _replan(plan: BuildPlan, onnx_path: str) -> BuildPlan:
    """The same build for the converted ONNX (profiles keep their input names)."""
    import dataclasses

    from trtbuild.plan import plan_build

    spec = dataclasses.replace(plan.spec, onnx=onnx_path, build=dataclasses.replace(plan.spec.build))
    new = plan_build(spec, onnx_path, trtexec_version=plan.target_major)
    new.recipe_sha256 = plan.recipe_sha256
    return new


def build_engine(
    model: str | os.PathLike[str] | BuildPlan,
    spec: BuildSpec | None = None,
    *,
    calibrator: Any = None,
) -> str:
    """Python API: build ``model`` (an ONNX path, ``zoo:NAME`` or a checked BuildPlan) with ``spec``.

    Returns the engine path; ``model.engine.json`` beside it is the manifest. ``calibrator`` is an
    INT8 calibrator for TensorRT <= 10.x (11.x takes Q/DQ models instead).
    """
    if isinstance(model, BuildPlan):
        plan = model
    else:
        from trtbuild.plan import plan_build

        plan = plan_build(spec or BuildSpec(), model)
    return build_from_plan(plan, calibrator=calibrator)
