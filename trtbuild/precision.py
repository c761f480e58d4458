"""``--fp16`` / ``--int8`` for every TensorRT version: pick the pipeline and prepare the ONNX for it.

| request | TensorRT <= 10.x (default: ``flags``)                 | TensorRT 11.x (always ``onnx``)           |
|---------|-------------------------------------------------------|-------------------------------------------|
| fp16    | BuilderFlag.FP16 on the FP32 network                  | cast the ONNX to FP16 (I/O kept FP32)     |
| int8    | BuilderFlag.INT8 + IInt8EntropyCalibrator2 and cache  | quantize the ONNX to INT8 Q/DQ            |

``precision_path="onnx"`` forces the ONNX pipeline on TensorRT <= 10 too (the builder then still
sets FP16/INT8 flags for a weakly typed network, or builds it strongly typed on 10.x). Every
ONNX-side conversion is compared with FP32 on held-out samples and fails past the thresholds.
:func:`prepare_for_precision` returns what the build needs and what the manifest records.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import SpecError
from trtbuild.model.accuracy import AccuracyReport
from trtbuild.model.calib import CalibOptions, CalibrationData
from trtbuild.model.qdq_check import QdqReport

if TYPE_CHECKING:
    from trtbuild.model.repair import RepairJudge, RepairReport

log = logging.getLogger(__name__)

PRECISION_PATHS = ("flags", "onnx")


@dataclass
class PreparedModel:
    """The ONNX to build and how precision was handled; ``manifest()`` is what the engine manifest records."""

    path: str  # the ONNX the builder parses (the original on the flags path)
    precision_path: str  # flags | onnx | none
    converter: str | None = None  # onnxconverter-common | modelopt | onnxruntime | tensorrt-calibrator
    converter_version: str | None = None
    provenance: dict[str, Any] | None = None  # calibration provenance (data hash, preprocessing, model)
    accuracy_report: AccuracyReport | None = None
    builder_flags: list[str] = field(default_factory=list)  # BuilderFlag names the builder sets (<= 10.x)
    calibration_cache: str | None = None  # flags path: the TensorRT calibration cache to read/write
    calibration_cache_explicit: bool = False
    calibration_algorithm: str = "entropy"
    calibration: CalibrationData | None = None  # flags path: the batches the calibrator feeds
    qdq_check: QdqReport | None = None
    source: str = ""  # the FP32 ONNX the request started from
    target_trt_major: int = 10
    requested: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "path": self.precision_path,
            "target_tensorrt_major": self.target_trt_major,
            "source_onnx": self.source,
            "onnx": self.path,
            "converter": self.converter,
            "converter_version": self.converter_version,
            "builder_flags": self.builder_flags,
            "calibration": self.provenance,
            "calibration_cache": self.calibration_cache,
            "accuracy": self.accuracy_report.to_dict() if self.accuracy_report else None,
            "qdq_check": self.qdq_check.to_dict() if self.qdq_check else None,
            "steps": self.steps,
            **({"details": self.details} if self.details else {}),
        }

    def make_calibrator(self, trt: Any = None) -> Any:
        """The TensorRT calibrator for the flags path (None when no implicit INT8 calibration is needed)."""
        if self.calibration_cache is None:
            return None
        from trtbuild.trt.calibrator import make_calibrator

        return make_calibrator(
            self.calibration,
            self.calibration_cache,
            algorithm=self.calibration_algorithm,
            explicit_cache=self.calibration_cache_explicit,
            model=self.path,
            trt=trt,
        )


def _from_plan(plan: Any) -> dict[str, Any]:
    """Defaults taken from a BuildPlan (duck-typed so this module does not import the planner)."""
    build = plan.spec.build
    opt = None
    if build.profiles:
        index = build.calib_profile or 0
        profile = build.profiles[min(index, len(build.profiles) - 1)]
        opt = {name: rng.opt for name, rng in profile.shapes.items()}
    return {
        "model": plan.model.path,
        "fp16": bool(build.fp16),
        "int8": bool(build.int8),
        "target": int(plan.target_major),
        "profile_opt": opt,
        "cache": build.calib,
        "output_dir": Path(plan.engine_path).parent,
        # the plan names the converted ONNX (BuildPlan.conversions): write exactly there
        "conversion_output": plan.conversions[-1].output if getattr(plan, "conversions", None) else None,
    }


def prepare_for_precision(
    plan_or_onnx: Any,
    fp16: bool | None = None,
    int8: bool | None = None,
    calib: CalibOptions | None = None,
    target_trt_major: int | None = None,
    precision_path: str | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    profile_opt: dict[str, tuple[int, ...]] | None = None,
    fp16_options: Any = None,
    quantize_options: Any = None,
    calib_algorithm: str = "entropy",
    max_error: float | None = None,
    min_cosine: float | None = None,
    check_accuracy: bool = True,
    repair: bool = False,
) -> PreparedModel:
    """Prepare ``plan_or_onnx`` (a BuildPlan, an ONNX path or ``zoo:NAME``) for the requested precision.

    Parameters left as None come from the plan (its spec's --fp16/--int8/--calib, target major,
    profile opt shapes, engine folder) or defaults. ``calib`` carries the --calib-* options; its
    ``cache`` (or the plan's --calib) is an explicit cache. Raises a TrtbuildError subclass on
    bad combinations, missing data, a failed Q/DQ check or an accuracy miss.
    """
    from trtbuild.model.load import resolve_model_path

    defaults: dict[str, Any] = {}
    if hasattr(plan_or_onnx, "spec") and hasattr(plan_or_onnx, "model"):
        defaults = _from_plan(plan_or_onnx)
        model_arg = defaults["model"]
    else:
        model_arg = plan_or_onnx
    want_fp16 = bool(defaults.get("fp16", False) if fp16 is None else fp16)
    want_int8 = bool(defaults.get("int8", False) if int8 is None else int8)
    target = int(target_trt_major if target_trt_major is not None else defaults.get("target", 10))
    opts = calib or CalibOptions()
    if opts.cache is None and defaults.get("cache"):
        opts = CalibOptions(**{**opts.to_dict(), "cache": defaults["cache"]})
    opt_shapes = profile_opt or defaults.get("profile_opt")
    source = resolve_model_path(model_arg)
    out_dir = Path(output_dir) if output_dir is not None else defaults.get("output_dir") or _default_dir(model_arg, source)
    requested = [name for name, on in (("fp16", want_fp16), ("int8", want_int8)) if on]
    prepared = PreparedModel(
        path=str(source), precision_path="none", source=str(source), target_trt_major=target, requested=requested
    )
    if not requested:
        prepared.steps.append("FP32: no precision conversion")
        return prepared

    path = _choose_path(target, precision_path)
    prepared.precision_path = path
    import onnx

    from trtbuild.model.qdq_check import check_qdq, has_qdq

    model_has_qdq = has_qdq(onnx.load(str(source), load_external_data=False))
    target_text = "8.6" if target < 10 else str(target)
    if want_int8 and model_has_qdq:
        # Already quantized (explicit quantization): check it and build it as is.
        prepared.qdq_check = check_qdq(source, target_text)
        prepared.qdq_check.raise_if_failed(f"The Q/DQ model {source}")
        prepared.converter = "none (the ONNX already has Q/DQ nodes)"
        prepared.steps.append(f"the ONNX already has Q/DQ nodes ({prepared.qdq_check.summary()}): build it as is")
        if target <= 10:
            prepared.builder_flags = ["INT8", *(["FP16"] if want_fp16 else [])]
        elif want_fp16:
            note = "--fp16 on TensorRT 11 with a Q/DQ model: layers outside the Q/DQ nodes keep the ONNX's own types"
            log.warning("%s (quantize the FP32 model with nvidia-modelopt for INT8 + FP16).", note)
            prepared.steps.append(note)
        return prepared
    if path == "flags":
        return _flags_path(prepared, source, want_fp16, want_int8, opts, opt_shapes, out_dir, calib_algorithm)
    output = Path(defaults.get("conversion_output") or out_dir / f"{source.stem}.{'int8' if want_int8 else 'fp16'}.onnx")
    job = _Conversion(source, want_fp16, want_int8, opts, opt_shapes, target, "8.6" if target < 10 else str(target),
                      fp16_options, quantize_options, max_error, min_cosine, repair)  # fmt: skip
    return _onnx_path(prepared, job, output, check_accuracy)


def _default_dir(model_arg: Any, source: Path) -> Path:
    # zoo models live in a cache folder: write their converted copies to the working folder instead.
    return Path.cwd() if str(model_arg).startswith("zoo:") else source.parent


def _choose_path(target: int, requested: str | None) -> str:
    """The same rule as the build plan (trtbuild.plan.decide_precision): onnx on 11.x, else as asked (flags)."""
    if requested is not None and requested not in PRECISION_PATHS:
        raise SpecError(f"--precision-path must be one of {', '.join(PRECISION_PATHS)}, not '{requested}'.")
    if target >= 11:
        if requested == "flags":
            raise SpecError(
                "--precision-path flags is impossible on TensorRT 11: it has no FP16/INT8 builder flags and no "
                "calibrators. Use --precision-path onnx (the default there): the ONNX is cast or quantized first."
            )
        return "onnx"
    return requested or "flags"


def _flags_path(
    prepared: PreparedModel,
    source: Path,
    fp16: bool,
    int8: bool,
    opts: CalibOptions,
    opt_shapes: dict[str, tuple[int, ...]] | None,
    out_dir: Path,
    algorithm: str,
) -> PreparedModel:
    from trtbuild.model.calib import CalibrationError, open_calibration

    flags = (["FP16"] if fp16 else []) + (["INT8"] if int8 else [])
    prepared.builder_flags = flags
    prepared.steps.append("builder flags: " + ", ".join(f"BuilderFlag.{f}" for f in flags))
    if not int8:
        prepared.converter = "tensorrt"
        return prepared
    explicit = opts.cache is not None
    cache = Path(opts.cache) if opts.cache is not None else out_dir / f"{source.stem}.calib"
    data = open_calibration(opts, source, profile_opt=opt_shapes, require=False)
    if data is None and not cache.is_file():
        raise CalibrationError(
            f"INT8 on the builder-flag path needs calibration data or a cache: pass --calib-data DIR (images or "
            f".npy/.npz), or --calib FILE with an existing TensorRT calibration cache (none at {cache})."
        )
    prepared.calibration = data
    prepared.calibration_cache = str(cache)
    prepared.calibration_cache_explicit = explicit
    prepared.calibration_algorithm = algorithm
    prepared.converter = "tensorrt-calibrator"
    prepared.details["calibrator"] = {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}.get(
        algorithm, algorithm
    )
    prepared.provenance = {**(data.provenance() if data is not None else {}), "algorithm": algorithm}
    source_text = f"{data.num_samples} sample(s) from {data.source}" if data is not None else "the cache only"
    prepared.steps.append(f"implicit INT8: {prepared.details['calibrator']} on {source_text}, cache {cache}")
    return prepared


def convert_onnx(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    fp16: bool = False,
    int8: bool = False,
    calib: CalibOptions | None = None,
    target_trt: str | int = 10,
    profile_opt: dict[str, tuple[int, ...]] | None = None,
    fp16_options: Any = None,
    quantize_options: Any = None,
    max_error: float | None = None,
    min_cosine: float | None = None,
    check_accuracy: bool = True,
    repair: bool = False,
) -> PreparedModel:
    """The ONNX pipeline on its own (``trtbuild cast`` / ``trtbuild quantize``): convert, check, compare.

    ``int8`` quantizes to Q/DQ (with ``fp16``: FP16 elsewhere where ModelOpt can do it); ``fp16`` alone
    casts. The accuracy report is written to ``output + .accuracy.json`` and, with
    ``check_accuracy``, raises :class:`trtbuild.model.accuracy.AccuracyError` past the thresholds.
    ``repair`` keeps the fewest nodes in higher precision that make a failing conversion pass
    (:mod:`trtbuild.model.repair`).
    """
    from trtbuild.model.load import resolve_model_path
    from trtbuild.model.qdq_check import parse_target_trt

    if not (fp16 or int8):
        raise SpecError("Nothing to convert: ask for --fp16 and/or --int8.")
    source = resolve_model_path(model)
    major = parse_target_trt(target_trt)[0]
    prepared = PreparedModel(
        path=str(source), precision_path="onnx", source=str(source), target_trt_major=major,
        requested=[n for n, on in (("fp16", fp16), ("int8", int8)) if on],
    )  # fmt: skip
    job = _Conversion(source, fp16, int8, calib or CalibOptions(), profile_opt, major, str(target_trt),
                      fp16_options, quantize_options, max_error, min_cosine, repair)  # fmt: skip
    return _onnx_path(prepared, job, Path(output), check_accuracy)


@dataclass(frozen=True)
class _Conversion:
    """What the ONNX pipeline converts, and how (one request, shared by publishing and converting)."""

    source: Path
    fp16: bool
    int8: bool
    calib: CalibOptions
    opt_shapes: dict[str, tuple[int, ...]] | None
    target: int  # TensorRT major
    target_text: str  # as given, e.g. "8.6" or "10.15"
    fp16_options: Any
    quantize_options: Any
    max_error: float | None
    min_cosine: float | None
    repair: bool = False


def _onnx_path(prepared: PreparedModel, job: _Conversion, out: Path, check_accuracy: bool) -> PreparedModel:
    """Convert into a staging file beside ``out``; publish it only after it loads, runs and passes."""
    from trtbuild.fsutil import staging_path

    if out.is_dir():
        raise SpecError(f"The output {out} is a folder; give a file name, like {out / (job.source.stem + '.onnx')}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = staging_path(out)
    try:
        report = _convert_staged(prepared, job, staged, out)
        if check_accuracy and not report.passed:
            report.candidate = str(out)
            report.raise_if_failed()
        report.candidate = str(out)
        os.replace(staged, out)
    except BaseException as exc:
        staged.unlink(missing_ok=True)
        from trtbuild.errors import TrtbuildError

        if isinstance(exc, TrtbuildError) and out.name not in str(exc):
            exc.args = (f"{exc.args[0] if exc.args else exc} Nothing was written to {out}.", *exc.args[1:])
        raise
    from trtbuild.model.accuracy import write_report_json

    write_report_json(report, str(out) + ".accuracy.json")
    log.info("Wrote %s (checked: it loads, runs and %s its accuracy verdict).", out, "passes" if report.passed else "misses")
    prepared.path = str(out)
    if not report.passed:
        log.warning("The accuracy check failed and was not enforced (--no-accuracy-check): %s.", "; ".join(report.failures))
    return prepared


def _convert_staged(prepared: PreparedModel, job: _Conversion, out: Path, final: Path) -> AccuracyReport:
    """Convert ``job`` into ``out`` (the staging file) and judge it; ``final`` is where it will be published."""
    source, fp16, int8, opts, opt_shapes, target = job.source, job.fp16, job.int8, job.calib, job.opt_shapes, job.target
    fp16_options, quantize_options, target_text = job.fp16_options, job.quantize_options, job.target_text
    max_error, min_cosine = job.max_error, job.min_cosine
    from trtbuild.model.accuracy import compare_models, thresholds_for
    from trtbuild.model.calib import open_calibration

    data = open_calibration(opts, source, profile_opt=opt_shapes, require=int8 and opts.cache is None)
    eval_feeds, held_out = _eval_feeds(data, source, opts, opt_shapes)
    precision = "int8+fp16" if int8 and fp16 else "int8" if int8 else "fp16"
    limits = thresholds_for(precision, max_error, min_cosine)
    repair_judge = _repair_judge(source, data, eval_feeds, limits) if job.repair else None
    repair: RepairReport | None = None
    if int8:
        from trtbuild.model.fp16 import modelopt_available
        from trtbuild.model.quantize import (
            QuantizeOptions,
            choose_quantizer,
            default_cache_path,
            quantize_int8,
        )

        qopts = replace(quantize_options or QuantizeOptions(), target_trt=target_text)
        if fp16:
            qopts.high_precision = "fp16" if (modelopt_available() and target >= 10) else "fp32"
        quantizer = choose_quantizer(qopts)
        # The range cache sits beside the published model (a re-run reuses it), not beside the staging file.
        cache = opts.cache or str(default_cache_path(final))
        result = quantize_int8(
            source, out, data, qopts, cache=cache, explicit_cache=opts.cache is not None, select_feeds=eval_feeds,
            repair=repair_judge,
        )
        prepared.converter, prepared.converter_version = result.quantizer, result.quantizer_version
        prepared.qdq_check = result.check
        prepared.provenance = result.calibration
        prepared.details["range_cache"] = result.cache
        prepared.steps.append(f"quantized to INT8 Q/DQ with {quantizer}: {result.check.summary()}")
        repair = result.repair
        if fp16 and qopts.high_precision != "fp16":
            note = (
                "layers outside the Q/DQ nodes stay FP32 (ONNX Runtime's quantizer); install nvidia-modelopt for "
                "INT8 + FP16 in one ONNX"
            )
            if target >= 11:
                log.warning("--fp16 with --int8 on TensorRT 11: %s.", note)
            prepared.steps.append(note if target >= 11 else "FP16 for the other layers comes from BuilderFlag.FP16")
        if qopts.high_precision != "fp16":
            precision = "int8"
    else:
        from trtbuild.model.fp16 import Fp16Options, cast_fp16

        fopts = replace(fp16_options or Fp16Options())
        if target < 10 and fopts.converter == "modelopt":
            raise SpecError(
                "ModelOpt AutoCast writes opset >= 19, beyond TensorRT 8.6's parser (opset 17); use the default "
                "converter (--converter trtbuild), which keeps the model's opset."
            )
        if data is None and fopts.range_scan:
            log.warning(
                "No calibration data: the FP16 range scan sees only the seeded inputs, so activations that overflow "
                "FP16 on real inputs may go unseen (ONNX Runtime on the CPU hides them too). Pass --calib-data."
            )
        with tempfile.TemporaryDirectory(prefix="trtbuild-cast-") as tmp:
            npz = _write_npz(data, Path(tmp) / "calib.npz") if data is not None and _wants_modelopt(fopts) else None
            cast = cast_fp16(
                source,
                out,
                fopts,
                # Without data the scan still sees the seeded inputs: real overflows may hide, blatant ones do not.
                scan_feeds=data.batches("calib") if data is not None else eval_feeds,
                validate_feed=eval_feeds[0],
                calibration_npz=npz,
            )
            repair = _repair_fp16(source, out, fopts, cast, repair_judge, eval_feeds[0]) if repair_judge else None
        prepared.converter, prepared.converter_version = cast.converter, cast.converter_version
        prepared.provenance = data.provenance() if data is not None else None
        prepared.details["fp16"] = {k: v for k, v in cast.to_dict().items() if k != "path"}
        kept = f", {len(cast.blocked_nodes)} node(s) kept FP32" if cast.blocked_nodes else ""
        prepared.steps.append(f"cast to FP16 with {cast.converter} (I/O {'FP32' if cast.keep_io_types else 'FP16'}{kept})")
    if target <= 10:
        prepared.builder_flags = (["FP16"] if fp16 else []) + (["INT8"] if int8 else [])
        prepared.steps.append(
            "build weakly typed with " + ", ".join(f"BuilderFlag.{f}" for f in prepared.builder_flags)
            + " (or strongly typed on 10.x, without flags)"
        )  # fmt: skip
    else:
        prepared.steps.append("build the strongly typed network without precision flags")
    if repair is not None:
        prepared.details["repair"] = repair.to_dict()
        prepared.steps.append(repair.summary() + (f" (the same as {repair.reproduce()})" if repair.kept_nodes else ""))
    report = compare_models(source, out, eval_feeds, precision=precision, thresholds=limits, held_out=held_out)
    report.repair = repair.to_dict() if repair is not None else None
    prepared.accuracy_report = report
    return report


#: batches the repair search judges candidates on: the held-out ones first, then calibration ones
REPAIR_BATCHES = 8


def _repair_judge(
    source: Path, data: CalibrationData | None, eval_feeds: list[dict[str, Any]], limits: Any
) -> RepairJudge:
    from trtbuild.model.repair import RepairJudge

    if data is None:
        log.warning("Repairing on seeded inputs: without --calib-data the nodes it keeps may not be the ones real "
                    "inputs need.")  # fmt: skip
    feeds = list(eval_feeds)[:REPAIR_BATCHES]
    if data is not None and data.held_out:
        for batch in data.batches("calib"):
            if len(feeds) >= REPAIR_BATCHES:
                break
            feeds.append(batch)
    return RepairJudge(source, feeds, held_out=min(len(eval_feeds), REPAIR_BATCHES), limits=limits)


def _repair_fp16(
    source: Path, out: Path, fopts: Any, cast: Any, repair_judge: RepairJudge, validate_feed: dict[str, Any]
) -> RepairReport | None:
    """Keep the fewest FP16 nodes in FP32 that make ``out`` pass; ``out`` then holds the repaired model."""
    import shutil

    from trtbuild.model.fp16 import cast_fp16, named_nodes
    from trtbuild.model.load import load_onnx
    from trtbuild.model.repair import fp16_units, node_weights, search

    before = repair_judge.score(out)
    if before.passed:
        log.info("The FP16 model passes on the repair samples; nothing to repair.")
        return None
    fp32 = named_nodes(load_onnx(source, load_weights=False))
    already = set(fopts.node_block_list) | set(cast.blocked_nodes)
    # The range scan's verdicts stand; each attempt only adds nodes to keep.
    base = replace(fopts, node_block_list=sorted(already), range_scan=False)

    def convert(keep: list[str], path: Path) -> Path:
        cast_fp16(source, path, replace(base, node_block_list=[*base.node_block_list, *keep]), validate_feed=validate_feed)
        return path

    with tempfile.TemporaryDirectory(prefix="trtbuild-repair-") as tmp:
        best, report = search(fp16_units(fp32, already), convert, repair_judge, Path(tmp), precision="fp16",
                              flag="--fp16-block-nodes", weights=node_weights(fp32), before=before)  # fmt: skip
        shutil.copyfile(best, out)
    return report


def _wants_modelopt(fopts: Any) -> bool:
    from trtbuild.model.fp16 import choose_converter

    return choose_converter(fopts.converter) == "modelopt"


def _write_npz(data: CalibrationData, path: Path) -> Path:
    import numpy as np

    savez: Any = np.savez
    savez(path, **data.all_samples("calib"))
    return path


def _eval_feeds(
    data: CalibrationData | None, source: Path, opts: CalibOptions, opt_shapes: dict[str, tuple[int, ...]] | None
) -> tuple[list[dict[str, Any]], bool]:
    """Held-out batches, else calibration ones (flagged), else seeded inputs at shapes derived from the model."""
    if data is not None:
        from trtbuild.model.quantize import has_static_batch

        # a model with a fixed batch takes only full batches: the last one repeats samples to fill it
        full = has_static_batch(source)
        if data.num_eval_samples:
            return list(data.batches("eval", pad_last=full)), data.held_out
        return list(data.batches("calib", pad_last=full)), False
    from trtbuild.model.accuracy import run_model
    from trtbuild.model.calib import seeded_inputs
    from trtbuild.shapes import format_dims

    seeded = seeded_inputs(source, shape=opts.shape, profile_opt=opt_shapes, samples=4, seed=opts.seed)
    shapes = ", ".join(f"{n}:{format_dims(d)}" for n, d in seeded.batch_shapes.items())
    feeds = list(seeded.batches("eval"))
    try:
        run_model(source, feeds[0])
    except Exception as exc:
        from trtbuild.errors import TrtbuildError

        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise TrtbuildError(
            f"Without calibration data the accuracy check runs on seeded inputs, but {source.name} does not run at the "
            f"shapes derived from it ({shapes}): {first}. Give shapes it runs at with --opt NAME:DIMS (trtexec syntax), "
            "or real samples with --calib-data FILE.npz."
        ) from None
    log.info("No calibration data: the accuracy check uses seeded inputs (floats in [0, 1), integers 0) at %s.", shapes)
    return feeds, True
