"""Build an engine from a checked plan: the bridge between the CPU-side plan and ``trtbuild.trt``."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from trtbuild.model.calib import CalibOptions
from trtbuild.plan import BuildPlan, plan_build
from trtbuild.spec import BuildSpec


def build_from_plan(
    plan: BuildPlan,
    *,
    calibrator: Any = None,
    calib: CalibOptions | None = None,
    precision_path: str | None = None,
) -> str:
    """Run the plan: its ONNX conversions, its calibrator, then the TensorRT build; returns the engine path.

    Every decision is the plan's (DESIGN.md, "The plan decides"): ``calib`` must be the calibration options
    the plan was made with (it reads the data the plan names), ``precision_path`` is only checked against it.
    """
    from trtbuild.trt.compat import import_tensorrt

    trt = import_tensorrt()  # a clear MissingDependencyError before any work
    from trtbuild.trt.builder import build_engine as trt_build_engine

    if precision_path is not None and precision_path == "flags" and plan.precision_path == "onnx":
        from trtbuild.errors import SpecError

        raise SpecError("--precision-path flags was asked, but the plan converts the ONNX; plan again with it.")
    calib = calib or plan.calib_options
    prepared = None
    executed = plan
    if plan.conversions:
        from trtbuild.precision import prepare_for_precision

        prepared = prepare_for_precision(plan, calib=calib, target_trt_major=plan.target_major, precision_path="onnx",
                                         repair=any(step.repair for step in plan.conversions))  # fmt: skip
        executed = _converted(plan, prepared.path)
    elif plan.calibrator is not None and plan.calibrator.data is not None and calibrator is None:
        from trtbuild.precision import prepare_for_precision

        # --best calibrates as --int8 does: the plan put INT8 in it, with this data.
        prepared = prepare_for_precision(plan, int8=True, calib=calib, target_trt_major=plan.target_major,
                                         precision_path="flags")  # fmt: skip
        calibrator = prepared.make_calibrator(trt)
    result = trt_build_engine(executed, calibrator=calibrator, precision_record=prepared.manifest() if prepared else None)
    if calibrator is not None and hasattr(calibrator, "raise_if_failed"):
        calibrator.raise_if_failed()
    return str(result)


def _converted(plan: BuildPlan, onnx_path: str) -> BuildPlan:
    """The same plan, executed on the converted ONNX (its decisions stay the plan's)."""
    from trtbuild.model.inspect import inspect_model

    spec = dataclasses.replace(plan.spec, onnx=onnx_path, build=dataclasses.replace(plan.spec.build))
    return dataclasses.replace(plan, spec=spec, model=inspect_model(onnx_path), converted_from=plan.model.path)


def build_engine(
    model: str | os.PathLike[str] | BuildPlan,
    spec: BuildSpec | None = None,
    *,
    calibrator: Any = None,
    calib: CalibOptions | None = None,
) -> str:
    """Python API: build ``model`` (an ONNX path, ``zoo:NAME`` or a checked BuildPlan) with ``spec``.

    Returns the engine path; ``model.engine.json`` beside it is the manifest. ``calibrator`` is an
    INT8 calibrator for TensorRT <= 10.x (11.x takes Q/DQ models instead); ``calib`` the calibration
    data options (as ``--calib-data``).
    """
    if isinstance(model, BuildPlan):
        plan = model
    else:
        plan = plan_build(spec or BuildSpec(), model, calib=calib, external_calibrator=calibrator is not None)
    return build_from_plan(plan, calibrator=calibrator, calib=calib)
