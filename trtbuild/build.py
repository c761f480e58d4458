"""Build an engine from a checked plan: the bridge between the CPU-side plan and ``trtbuild.trt``."""

from __future__ import annotations

from trtbuild.plan import BuildPlan


def build_from_plan(plan: BuildPlan) -> str:
    """Build and write the engine and its manifest; returns the engine path."""
    from trtbuild.trt.compat import import_tensorrt

    import_tensorrt()  # a clear MissingDependencyError before any work
    from trtbuild.trt.builder import build_engine

    result = build_engine(plan)
    return str(result)
