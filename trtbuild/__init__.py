"""trtbuild: build, check and benchmark TensorRT engines from ONNX.

The public API is imported lazily so that ``import trtbuild`` (and ``python -m trtbuild --help``)
stays fast: numpy, onnx, torch and TensorRT load only when a function that needs them is called.
"""

from __future__ import annotations

from trtbuild._lazy import lazy_getattr

__version__ = "0.1.0"

# public name -> "module:attribute"
_API = {
    "BuildSpec": "trtbuild.spec:BuildSpec",
    "BuildOptions": "trtbuild.spec:BuildOptions",
    "SystemOptions": "trtbuild.spec:SystemOptions",
    "InferenceOptions": "trtbuild.spec:InferenceOptions",
    "ReportingOptions": "trtbuild.spec:ReportingOptions",
    "Profile": "trtbuild.shapes:Profile",
    "ShapeRange": "trtbuild.shapes:ShapeRange",
    "profile_from_flags": "trtbuild.shapes:profile_from_flags",
    "load_profiles_file": "trtbuild.shapes:load_profiles_file",
    "inspect_model": "trtbuild.model.inspect:inspect_model",
    "plan_build": "trtbuild.plan:plan_build",
    "build_engine": "trtbuild.build:build_engine",
    "load_engine": "trtbuild.engine_file:load_engine",
    "load_engine_bytes": "trtbuild.engine_file:load_engine_bytes",
    "inspect_engine": "trtbuild.engine_file:inspect_engine",
    "pack": "trtbuild.recipe:pack",
    "unpack": "trtbuild.recipe:unpack",
    "doctor": "trtbuild.doctor:run_checks",
    "TrtbuildError": "trtbuild.errors:TrtbuildError",
    "prepare_for_precision": "trtbuild.precision:prepare_for_precision",
    "convert_onnx": "trtbuild.precision:convert_onnx",
    "PreparedModel": "trtbuild.precision:PreparedModel",
    "cast_fp16": "trtbuild.model.fp16:cast_fp16",
    "quantize_int8": "trtbuild.model.quantize:quantize_int8",
    "check_qdq": "trtbuild.model.qdq_check:check_qdq",
    "compare_accuracy": "trtbuild.model.accuracy:compare_models",
    "CalibOptions": "trtbuild.model.calib:CalibOptions",
    "open_calibration": "trtbuild.model.calib:open_calibration",
    "export": "trtbuild.model.export:export",
    "ExportResult": "trtbuild.model.export:ExportResult",
    "optimize": "trtbuild.model.optimize:optimize",
    "compare": "trtbuild.compare:MODULE",  # a callable module: trtbuild.compare(...) runs compare()
    "CompareReport": "trtbuild.compare:CompareReport",
    # the callable package itself: trtbuild.bench(...) runs trtbuild.bench.run.bench
    "bench": "trtbuild.bench:_self",
    "LatencyTable": "trtbuild.bench.table:LatencyTable",
    "TimingOptions": "trtbuild.bench.timing:TimingOptions",
    "load_suite": "trtbuild.nightly.suite:load_suite",
    "run_suite": "trtbuild.nightly:run_suite",
    "gate_run": "trtbuild.nightly.gate:gate_run",
    "ResultsStore": "trtbuild.nightly.store:ResultsStore",
    "write_report": "trtbuild.nightly.report:write_report",
}

__all__ = ["__version__", *_API]


__getattr__ = lazy_getattr("trtbuild", _API, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
