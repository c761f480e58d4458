"""Build an engine from a checked plan: the bridge between the CPU-side plan and ``trtbuild.trt``."""

from __future__ import annotations

import os
from typing import Any

from trtbuild.plan import BuildPlan
from trtbuild.spec import BuildSpec


def build_from_plan(plan: BuildPlan, *, calibrator: Any = None) -> str:
    """Build and write the engine and its manifest; returns the engine path."""
    from trtbuild.trt.compat import import_tensorrt

    import_tensorrt()  # a clear MissingDependencyError before any work
    from trtbuild.trt.builder import build_engine as trt_build_engine

    result = trt_build_engine(plan, calibrator=calibrator)
    return str(result)


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
