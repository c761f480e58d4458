"""INT8 Q/DQ quantization of an ONNX model from calibration data, in a form TensorRT accepts.

Two quantizers:
* NVIDIA ModelOpt (``modelopt.onnx.quantization``), when installed: run in a subprocess, because
  it patches ONNX Runtime's quantizer for the rest of the process. It writes opset >= 19, which
  TensorRT 8.6 does not document, so 8.6 targets use ONNX Runtime.
* ONNX Runtime's ``quantize_static`` with the TensorRT recipe (QDQ format, int8 activations and
  weights, symmetric, per-channel weights, zero point 0, no bias quantization, Q/DQ pairs on the
  inputs of Conv/Gemm/MatMul). Its calibration runs here rather than inside quantize_static so
  that entropy calibration gets a real histogram (quantize_static's defaults degrade it to
  min/max) and so the ranges can be cached with their provenance.
The result is always passed through :func:`trtbuild.model.qdq_check.check_qdq` and run once in
ONNX Runtime.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import MissingDependencyError, TrtbuildError
from trtbuild.model.calib import CalibrationData, cache_is_fresh, read_provenance, write_provenance
from trtbuild.model.fp16 import modelopt_available, modelopt_python, package_version, run_subprocess
from trtbuild.model.qdq_check import QdqReport, check_qdq, default_opset, max_opset, parse_target_trt

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from trtbuild.model.range_search import RangeSearch
    from trtbuild.model.repair import RepairJudge, RepairReport

log = logging.getLogger(__name__)

METHODS = ("auto", "entropy", "minmax", "percentile")
#: what ``auto`` tries: both come from one calibration pass (min-max is the histogram's own maximum)
AUTO_METHODS = ("minmax", "entropy")
QUANTIZERS = ("auto", "modelopt", "onnxruntime")
#: TensorRT's placement: Q/DQ on the inputs (activation + weight) of the ops that run in INT8
DEFAULT_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")
DEFAULT_PERCENTILE = 99.99
#: entropy needs room to clip: ORT's quantize_static uses 128/128 bins, which gives min/max ranges
ENTROPY_BINS = 2048
ENTROPY_QUANTIZED_BINS = 128
#: part of a range cache's provenance: bump when the range computation changes so old caches rebuild
RANGES_VERSION = 3


#: QuantizeLinear/DequantizeLinear take an ``axis`` (per-channel scales) from opset 13
PER_CHANNEL_MIN_OPSET = 13


class QuantizationError(TrtbuildError):
    """Quantization failed, or produced a model TensorRT would not accept."""


@dataclass
class QuantizeOptions:
    method: str = "auto"  # auto | entropy | minmax | percentile
    percentile: float = DEFAULT_PERCENTILE
    exclude_nodes: list[str] = field(default_factory=list)
    exclude_op_types: list[str] = field(default_factory=list)
    op_types: list[str] | None = None  # None: DEFAULT_OP_TYPES; ["all"]: every op ORT can quantize
    per_channel: bool = True
    quantizer: str = "auto"  # auto | modelopt | onnxruntime
    target_trt: str = "10"
    high_precision: str = "fp32"  # fp32 | fp16: type of the non-quantized layers (fp16 needs modelopt)


@dataclass
class QuantizeResult:
    path: Path
    quantizer: str
    quantizer_version: str | None
    check: QdqReport
    calibration: dict[str, Any]
    cache: str | None
    cache_reused: bool
    opset: int
    notes: list[str] = field(default_factory=list)
    repair: RepairReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "quantizer": self.quantizer,
            "quantizer_version": self.quantizer_version,
            "opset": self.opset,
            "check": self.check.to_dict(),
            "calibration": self.calibration,
            "cache": self.cache,
            "cache_reused": self.cache_reused,
            "notes": self.notes,
            "repair": self.repair.to_dict() if self.repair else None,
        }


def choose_quantizer(options: QuantizeOptions) -> str:
    requested = options.quantizer
    if requested not in QUANTIZERS:
        raise QuantizationError(f"Unknown quantizer '{requested}'; choose one of {', '.join(QUANTIZERS)}.")
    target = parse_target_trt(options.target_trt)
    if requested == "modelopt":
        if not modelopt_available():
            raise MissingDependencyError(
                "--quantizer modelopt needs NVIDIA ModelOpt: install it in an environment of its own and point "
                "TRTBUILD_MODELOPT_PYTHON at its python (docs/precision.md), or use --quantizer onnxruntime."
            )
        if target < (10, 0):
            raise QuantizationError(
                "ModelOpt writes opset >= 19, beyond TensorRT 8.6's parser (opset 17); use --quantizer onnxruntime "
                "for --target-trt 8.6."
            )
        if options.method == "percentile":
            raise QuantizationError("ModelOpt's INT8 calibration has entropy and max, not percentile; use --quantizer onnxruntime.")
        return "modelopt"
    # auto: ONNX Runtime's quantizer with trtbuild's calibration, which matched or beat ModelOpt's INT8 on
    # every corpus model (docs/precision.md); ModelOpt only for INT8 + FP16 in one ONNX, which it alone does.
    if requested == "auto" and options.high_precision == "fp16" and modelopt_available() and target >= (10, 0):
        return "modelopt"
    if options.high_precision == "fp16":
        raise QuantizationError(
            "FP16 outside the Q/DQ nodes needs NVIDIA ModelOpt (set TRTBUILD_MODELOPT_PYTHON to the python of its "
            "environment, docs/precision.md); ONNX Runtime's quantizer leaves those layers FP32."
        )
    return "onnxruntime"


def quantize_int8(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str],
    calib: CalibrationData | None,
    options: QuantizeOptions | None = None,
    *,
    cache: str | os.PathLike[str] | None = None,
    explicit_cache: bool = False,
    select_feeds: Sequence[Mapping[str, np.ndarray]] = (),
    repair: RepairJudge | None = None,
) -> QuantizeResult:
    """Write an INT8 Q/DQ copy of ``model`` to ``output``, calibrated on ``calib``.

    With ``method="auto"`` the min-max and entropy ranges of one calibration pass each give a model;
    the one closer to FP32 on ``select_feeds`` (held-out samples; else the first calibration batch)
    is kept.
    ``cache`` holds the calibrated ranges (ONNX Runtime's JSON, provenance in ``cache + .json``); it
    is reused while the data, preprocessing and model are unchanged. ``explicit_cache`` (the user
    named it with --calib) refuses a stale cache instead of rebuilding it, and lets it stand in for
    calibration data. With ``repair``, a model that fails that judge gets the fewest nodes kept in
    float that make it pass (:mod:`trtbuild.model.repair`; ONNX Runtime's quantizer only).
    """
    from trtbuild.model.load import resolve_model_path

    opts = replace(options or QuantizeOptions())  # the opset step may switch per-channel off for this run
    if opts.method not in METHODS:
        raise QuantizationError(f"Unknown calibration method '{opts.method}'; choose one of {', '.join(METHODS)}.")
    source = resolve_model_path(model)
    _refuse_quantized(source)
    quantizer = choose_quantizer(opts)
    out_path = Path(output)
    if quantizer == "modelopt":
        if repair is not None:
            raise QuantizationError(
                "--repair re-quantizes the model many times with the same ranges, which ModelOpt cannot do without "
                "recalibrating each time; use --quantizer onnxruntime with --repair."
            )
        if calib is None:
            raise QuantizationError("ModelOpt quantization needs calibration data (--calib-data); a cache is not enough.")
        _quantize_modelopt(source, out_path, calib, opts)
        result = QuantizeResult(
            path=out_path,
            quantizer="modelopt",
            quantizer_version=package_version("nvidia-modelopt"),
            check=check_qdq(out_path, opts.target_trt),
            calibration=calib.provenance(),
            cache=None,
            cache_reused=False,
            opset=0,
        )
    else:
        result = _quantize_ort(
            source, out_path, calib, opts, cache=cache, explicit_cache=explicit_cache, select_feeds=select_feeds,
            repair=repair,
        )
    import onnx

    written = onnx.load(str(out_path), load_external_data=False)
    result.opset = default_opset(written)
    _require_qdq(written, source)
    result.check.raise_if_failed(f"The quantized model of {source.name}")
    if calib is not None:
        _validate_runs(out_path, next(calib.batches("calib")))
    log.info(
        "INT8 Q/DQ with %s %s (%s calibration): %s.",
        result.quantizer,
        result.quantizer_version or "",
        opts.method,
        result.check.summary(),
    )
    return result


# --------------------------------------------------------------------------------------------------
# ONNX Runtime


class _OneBatch:
    """ONNX Runtime's CalibrationDataReader over a single batch.

    The calibrator is fed one batch per ``collect_data`` call: ORT keeps every intermediate output
    of a call in memory and stacks them with ``np.asarray``, so feeding all samples at once grows
    memory with the sample count and fails when samples differ in shape. Its histogram and min/max
    collectors merge across calls, so the result is the same.
    """

    def __init__(self, batch: dict[str, np.ndarray]) -> None:
        self._batch: dict[str, np.ndarray] | None = batch

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch, self._batch = self._batch, None
        return batch

    def rewind(self) -> None:  # part of ORT's reader protocol; one pass is all the calibrator makes
        pass


def _refuse_quantized(source: Path) -> None:
    from trtbuild.model.fp16_pass import quantized_ops
    from trtbuild.model.load import load_onnx

    found = quantized_ops(load_onnx(source, load_weights=False))
    if found:
        raise QuantizationError(
            f"{source} is already quantized ({', '.join(found)}); quantizing it again would stack scales. Quantize the "
            "FP32 model it was made from, check this one against TensorRT's rules with --check-only, or build it as "
            "it is."
        )


def _require_qdq(model: onnx.ModelProto, source: Path) -> None:
    """A run that inserted no Q/DQ node is a failure, never an INT8 model."""
    from trtbuild.model.fp16_pass import iter_nodes

    nodes = list(iter_nodes(model.graph))
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in nodes):
        return
    nested = any(n.op_type in ("If", "Loop", "Scan") for n in model.graph.node)
    where = (
        "its compute sits in If/Loop/Scan subgraphs, which the quantizer does not enter"
        if nested
        else "it has no op the quantizer handles (see --op-types)"
    )
    raise QuantizationError(f"Nothing in {source.name} was quantized: {where}; there is no INT8 model to write.")


def _convs_without_int8_kernels(fp32: Path) -> list[str]:
    """Conv nodes that TensorRT does not run in INT8, so Q/DQ around them only costs accuracy.

    The rule is NVIDIA ModelOpt's (``modelopt.onnx.quantization.graph_utils.find_nodes_from_convs_to_exclude``,
    INT8 mode): input and output channels of at least 16, or, for a standard convolution with a square
    kernel, one of them a multiple of 8 and either the first layer (fed by a graph input) or one side
    at least 16; a grouped convolution needs output channels a multiple of 8 and kernels of at least 3.
    Convolutions whose weights are not constants are skipped too. (Measured on the corpus: quantizing
    openwakeword's 1-channel STFT convolution costs 0.06 of cosine.)
    """
    import onnx

    model = onnx.load(str(fp32), load_external_data=False)
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    inputs = {i.name for i in model.graph.input}
    skipped = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        shape = weights.get(node.input[1]) if len(node.input) > 1 else None
        if not shape or len(shape) < 3:
            skipped.append(node.name)
            continue
        out_ch, in_ch = shape[0], shape[1]
        if out_ch >= 16 and in_ch >= 16:
            continue
        attrs = {a.name: a for a in node.attribute}
        group = attrs["group"].i if "group" in attrs else 1
        kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else shape[2:]
        standard_ok = (
            group == 1
            and (out_ch % 8 == 0 or in_ch % 8 == 0)
            and (any(i in inputs for i in node.input) or out_ch >= 16 or in_ch >= 16)
            and len(set(kernel)) == 1
        )
        grouped_ok = group > 1 and out_ch % 8 == 0 and all(k >= 3 for k in kernel)
        if not (standard_ok or grouped_ok):
            skipped.append(node.name)
    return skipped


def _weights_as_initializers(model: onnx.ModelProto) -> int:
    """Constant nodes of the main graph become initializers, so their tensors are quantized as weights
    (per channel) rather than as activations (Paddle exports keep every weight in a Constant node)."""
    keep = []
    moved = 0
    for node in model.graph.node:
        value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and value is not None:
            value.name = node.output[0]
            model.graph.initializer.append(value)
            moved += 1
        else:
            keep.append(node)
    if moved:
        del model.graph.node[:]
        model.graph.node.extend(keep)
    return moved


def _prepared_fp32(source: Path, target: tuple[int, int], tmp: Path, options: QuantizeOptions) -> Path:
    """The FP32 model ready for ORT's quantizer: weights as initializers, an opset the target parses
    (TensorRT 8.6: <= 17) and, for per-channel weights, at least 13 (QuantizeLinear's axis needs it)."""
    import onnx

    from trtbuild.model.fp16 import named_nodes
    from trtbuild.model.load import load_onnx

    model = named_nodes(load_onnx(source))  # node names: exclusions refer to nodes by name
    moved = _weights_as_initializers(model)
    if moved:
        log.info("Moved %d Constant node tensor(s) into initializers so they are quantized as weights.", moved)
    opset = default_opset(model)
    limit = max_opset(target)
    if opset < PER_CHANNEL_MIN_OPSET and options.per_channel:
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, PER_CHANNEL_MIN_OPSET)
            log.info(
                "Raised the opset from %d to %d: per-channel QuantizeLinear needs opset %d.",
                opset, PER_CHANNEL_MIN_OPSET, PER_CHANNEL_MIN_OPSET,
            )  # fmt: skip
        except Exception as exc:  # the converter raises many types for unsupported adapters
            options.per_channel = False
            log.warning(
                "Quantizing weights per tensor: per-channel scales need opset %d and raising %s from opset %d failed "
                "(%s). Export the model with opset >= %d for per-channel weights.",
                PER_CHANNEL_MIN_OPSET, source.name, opset, type(exc).__name__, PER_CHANNEL_MIN_OPSET,
            )  # fmt: skip
    elif opset > limit:
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, limit)
        except Exception as exc:  # the converter raises many types for unsupported adapters
            raise QuantizationError(
                f"{source} has opset {opset}, but TensorRT {target[0]}.{target[1]} parses up to opset {limit}, and "
                f"converting it down failed ({type(exc).__name__}: {exc}); export the model with opset {limit}."
            ) from None
        log.info("Converted the model from opset %d to %d for TensorRT %d.%d.", opset, limit, *target)
    path = tmp / "fp32.onnx"
    onnx.save(model, str(path), save_as_external_data=model.ByteSize() > (1 << 30))
    return path


def _op_types(options: QuantizeOptions) -> list[str]:
    if options.op_types and [t.lower() for t in options.op_types] == ["all"]:
        from onnxruntime.quantization.registry import QDQRegistry

        types = sorted(QDQRegistry)
    else:
        types = list(options.op_types or DEFAULT_OP_TYPES)
    return [t for t in types if t not in set(options.exclude_op_types)]


def default_cache_path(output: str | os.PathLike[str]) -> Path:
    """``model.int8.onnx`` -> ``model.int8.calib`` (provenance in ``model.int8.calib.json``)."""
    return Path(output).with_suffix(".calib")


def _quantize_ort(
    source: Path,
    out_path: Path,
    calib: CalibrationData | None,
    opts: QuantizeOptions,
    *,
    cache: str | os.PathLike[str] | None,
    explicit_cache: bool,
    select_feeds: Sequence[Mapping[str, np.ndarray]],
    repair: RepairJudge | None = None,
) -> QuantizeResult:
    import onnx
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, load_tensors_data, save_tensors_data

    from trtbuild.model.calib import file_sha256

    target = parse_target_trt(opts.target_trt)
    op_types = _op_types(opts)
    if not op_types:
        raise QuantizationError("Every op type is excluded from quantization; nothing would run in INT8.")
    cache_path = Path(cache) if cache else default_cache_path(out_path)
    provenance: dict[str, Any] = calib.provenance() if calib is not None else {"model_sha256": file_sha256(source)}
    provenance.update(method=opts.method, percentile=opts.percentile if opts.method == "percentile" else None,
                      op_types=op_types, quantizer="onnxruntime", target_opset=max_opset(target),
                      ranges_version=RANGES_VERSION)  # fmt: skip
    if opts.method == "auto":  # auto's ranges may come from the range search: its caches follow its version
        from trtbuild.model.range_search import SEARCH_VERSION

        provenance["range_search_version"] = SEARCH_VERSION
    reused = False
    with tempfile.TemporaryDirectory(prefix="trtbuild-quant-") as tmp_name:
        tmp = Path(tmp_name)
        fp32 = _prepared_fp32(source, target, tmp, opts)
        skipped = _convs_without_int8_kernels(fp32)
        if skipped:
            log.info(
                "Keeping %d Conv node(s) in float: TensorRT has no INT8 kernels for their channel counts (%s).",
                len(skipped), ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else ""),
            )  # fmt: skip
            opts.exclude_nodes = [*opts.exclude_nodes, *(n for n in skipped if n not in opts.exclude_nodes)]
        only = () if calib is not None else (
            "model_sha256", "method", "percentile", "op_types", "ranges_version", "range_search_version"
        )  # fmt: skip
        if cache_is_fresh(cache_path, provenance, explicit=explicit_cache, only=only, what="range cache"):
            try:
                ranges = load_tensors_data(cache_path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise QuantizationError(
                    f"{cache_path} is not an INT8 range cache written by trtbuild quantize ({type(exc).__name__}: "
                    f"{exc}). A TensorRT calibration cache only works on the builder-flag path (TensorRT <= 10)."
                ) from None
            reused = True
            stored = read_provenance(cache_path) or {}
            if calib is None:
                provenance = {**stored, **{k: provenance.get(k) for k in only}}
            else:  # how the cached ranges were chosen still describes them (the manifest repeats it)
                provenance.update({k: stored[k] for k in ("method_scores", "range_search") if k in stored})
            candidates = {str(stored.get("chosen_method") or opts.method): ranges}
        else:
            if calib is None:
                raise QuantizationError(
                    f"No calibration data and no range cache at {cache_path}: pass --calib-data DIR (or --calib-random "
                    "for a smoke test)."
                )
            static_batch = has_static_batch(fp32)
            from trtbuild.console import progress

            with _quiet(), progress() as bar:
                calibrator = create_calibrator(
                    fp32,
                    op_types,
                    augmented_model_path=str(tmp / "augmented.onnx"),
                    calibrate_method=CalibrationMethod.Percentile,  # exposes every tensor to calibrate
                    extra_options={"symmetric": True},
                )
                passes = 1 if opts.method == "minmax" else 2
                task = bar.add_task("INT8 calibration", total=calib.num_batches("calib") * passes)
                batches = functools.partial(calib.batches, "calib", pad_last=static_batch)
                candidates = _histogram_ranges(calibrator, batches, opts, lambda: bar.advance(task))
            del calibrator
        select_score: Callable[[Path], float] | None = None
        if len(candidates) > 1:
            feeds = list(select_feeds) or ([next(calib.batches("calib"))] if calib is not None else [])
            select_score = _cosine_scorer(fp32, feeds)
            chosen, scores = _choose_ranges(fp32, candidates, tmp, op_types, opts, select_score)
            log.info(
                "Calibration method: %s (cosine to FP32 on %d batch(es): %s).",
                chosen, len(feeds), ", ".join(f"{m} {v:.5f}" for m, v in scores.items()),
            )  # fmt: skip
            provenance.update(chosen_method=chosen, method_scores=scores)
        else:
            chosen = next(iter(candidates))
            provenance.setdefault("chosen_method", chosen)
        ranges = candidates[chosen]
        staged = tmp / f"quantized-{chosen}.onnx"  # already written when auto compared the candidates
        if not staged.exists():
            _quantize_with(fp32, ranges, staged, op_types, opts)
        if opts.method == "auto" and not reused and calib is not None and select_score is not None:
            held_out = calib.held_out and bool(select_feeds)
            searched = _search_ranges(fp32, ranges, staged, tmp, op_types, opts, calib, select_score,
                                      scores[chosen], held_out=held_out)  # fmt: skip
            if searched is not None:
                provenance["range_search"] = searched[1].to_json()
                if searched[1].kept:
                    ranges, staged = searched[0], searched[2]
        if not reused:
            save_tensors_data(ranges, cache_path)
            write_provenance(cache_path, provenance, format="onnxruntime TensorsData JSON (tensor ranges)")
        repaired = _repair(fp32, ranges, staged, op_types, opts, repair, tmp) if repair is not None else None
        if repaired is not None:
            staged = repaired[0]
        quantized = onnx.load(str(staged))
        _strip_foreign_opsets(quantized)
        from trtbuild.fsutil import atomic_write_bytes

        atomic_write_bytes(out_path, quantized.SerializeToString())
    from onnxruntime import __version__ as ort_version

    return QuantizeResult(
        path=out_path,
        quantizer="onnxruntime",
        quantizer_version=ort_version,
        check=check_qdq(out_path, opts.target_trt),
        calibration=provenance,
        cache=str(cache_path),
        cache_reused=reused,
        opset=0,
        repair=repaired[1] if repaired is not None else None,
    )


def _repair(
    fp32: Path, ranges: Any, staged: Path, op_types: list[str], opts: QuantizeOptions, repair_judge: RepairJudge, tmp: Path
) -> tuple[Path, RepairReport] | None:
    """Keep the fewest quantized nodes in float that make ``staged`` pass ``repair_judge`` (same ranges)."""
    import onnx

    from trtbuild.model.repair import node_weights, quantized_nodes, search

    before = repair_judge.score(staged)
    if before.passed:
        log.info("The INT8 model passes on the repair samples; nothing to repair.")
        return None
    nodes = quantized_nodes(onnx.load(str(staged), load_external_data=False))

    def convert(keep: list[str], path: Path) -> Path:
        return _quantize_with(fp32, ranges, path, op_types, replace(opts, exclude_nodes=[*opts.exclude_nodes, *keep]))

    weights = node_weights(onnx.load(str(fp32), load_external_data=False))
    return search([[n] for n in nodes], convert, repair_judge, tmp, precision="int8", flag="--exclude-nodes",
                  weights=weights, before=before)  # fmt: skip


def entropy_amax(hist: np.ndarray, edges: np.ndarray, num_quantized_bins: int = ENTROPY_QUANTIZED_BINS) -> float:
    """TensorRT's entropy calibration on an |x| histogram: the threshold whose 128-bin quantization
    loses the least information (KL divergence), as in pytorch-quantization's ``_compute_amax_entropy``.

    Every candidate threshold ``edges[i]`` (i = 128..n) is scored at once from prefix sums: for a
    threshold at bin i, p is the histogram with the tail clipped into bin i-1, and q spreads each of
    the 128 groups' mass evenly over its non-empty bins. The KL sum splits into per-bin terms
    (prefix sums of c log c), per-group terms (mass log mean) and the clipped last bin, so no loop
    over thresholds is needed; tests compare it with the direct loop.
    """
    import numpy as np

    c = np.asarray(hist, dtype=np.float64).copy()
    n = c.size
    if n > 1:
        c[0] = c[1]  # the spike of exact zeros (ReLU outputs) would drag the threshold to ~0
    groups = num_quantized_bins
    if n <= groups or not c.any():
        return float(edges[-1])
    total = c.sum()
    prefix = np.concatenate([[0.0], np.cumsum(c)])  # prefix[k] = sum(c[:k])
    nonzero = np.concatenate([[0], np.cumsum(c > 0)])
    c_log_c = np.concatenate([[0.0], np.cumsum(np.where(c > 0, c * np.log(np.where(c > 0, c, 1.0)), 0.0))])
    i = np.arange(groups, n + 1)  # candidate thresholds
    bounds = (np.arange(groups + 1)[None, :] * i[:, None] + groups - 1) // groups  # group g: [bounds[g], bounds[g+1])
    mass = prefix[bounds[:, 1:]] - prefix[bounds[:, :-1]]
    members = nonzero[bounds[:, 1:]] - nonzero[bounds[:, :-1]]
    filled = members > 0
    log_mean = np.log(np.where(filled & (mass > 0), mass / np.where(filled, members, 1), 1.0))
    group_terms = np.sum(np.where(filled, mass * log_mean, 0.0), axis=1)
    last = c[i - 1]
    last_log_mean = log_mean[np.arange(i.size), ((i - 1) * groups) // i]
    kept = prefix[i]  # sum of q's unnormalised mass
    log_kept = np.log(np.where(kept > 0, kept, 1.0))
    # sum over bins j < i-1 of p log(p / q)
    kl = (c_log_c[i - 1] - prefix[i - 1] * np.log(total)) / total
    kl -= (group_terms - np.where(last > 0, last * last_log_mean, 0.0)) / total - prefix[i - 1] / total * log_kept
    # the last bin holds its own count plus the clipped tail
    p_last = (total - prefix[i - 1]) / total
    log_q_last = last_log_mean - log_kept
    kl += np.where(p_last > 0, p_last * (np.log(np.where(p_last > 0, p_last, 1.0)) - log_q_last), 0.0)
    kl = np.where((p_last > 0) & (last == 0), np.inf, kl)  # q is 0 where p is not: not representable
    if not np.isfinite(kl).any():
        return float(edges[n])
    best = kl.size - 1 - int(np.argmin(kl[::-1]))  # ties go to the larger threshold, as in pytorch-quantization
    return float(edges[i[best]])


def _histogram_ranges(
    calibrator: Any,
    batches: Callable[[], Iterator[dict[str, np.ndarray]]],
    opts: QuantizeOptions,
    advance: Callable[[], None],
) -> dict[str, Any]:
    """Ranges per calibration method from |x| histograms, filled one batch at a time through the
    calibrator's augmented session (every tensor to calibrate is one of its outputs).

    Two passes over ``batches()`` when a method needs histograms: the first fixes each tensor's range,
    the second counts over it, so the histograms equal one over all samples at once (merging re-binned
    ones moved entropy thresholds by up to 40 %). Min-max needs only the first.
    """
    import numpy as np
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import TensorData, TensorsData

    from trtbuild.model.histogram import AbsHistogram

    histogram = AbsHistogram(bins=ENTROPY_BINS)
    session = calibrator.infer_session
    wanted = set(calibrator.tensors_to_calibrate)
    names = [o.name for o in session.get_outputs()]
    methods = AUTO_METHODS if opts.method == "auto" else (opts.method,)
    for record in (histogram.widen,) if methods == ("minmax",) else (histogram.widen, histogram.add):
        for batch in batches():
            for name, value in zip(names, session.run(None, batch)):
                if name in wanted:
                    record(name, value)
            advance()
    ort_methods = {
        "minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }  # fmt: skip
    candidates: dict[str, Any] = {}
    for method in methods:
        data = {}
        for name in histogram.amax:
            if method == "entropy":
                amax = entropy_amax(histogram.counts[name], histogram.edges(name))
            elif method == "percentile":
                amax = histogram.percentile(name, opts.percentile)
            else:
                amax = histogram.amax[name]
            value = np.float32(amax)
            data[name] = TensorData(lowest=np.array(-value, np.float32), highest=np.array(value, np.float32))
        candidates[method] = TensorsData(ort_methods[method], data)
    return candidates


def _quantize_with(fp32: Path, ranges: Any, staged: Path, op_types: list[str], opts: QuantizeOptions) -> Path:
    """ORT's quantize_static with the TensorRT recipe and the given ranges."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    ranges_file = staged.with_suffix(".ranges.json")
    save_tensors_data(ranges, ranges_file)
    with _quiet():
        quantize_static(
            str(fp32),
            str(staged),
            None,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=op_types,
            per_channel=opts.per_channel,
            reduce_range=False,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(opts.exclude_nodes),
            calibrate_method=ranges.calibration_method,
            calibration_cache_path=str(ranges_file),
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "AddQDQPairToWeight": True,  # float weight + Q + DQ: TensorRT quantizes weights itself
                "DedicatedQDQPair": True,
                "QuantizeBias": False,  # an INT32 bias DequantizeLinear is rejected by TensorRT's parser
                "OpTypesToExcludeOutputQuantization": op_types,  # Q/DQ on inputs only (TensorRT placement)
            },
        )
    return staged


def _choose_ranges(
    fp32: Path,
    candidates: Mapping[str, Any],
    tmp: Path,
    op_types: list[str],
    opts: QuantizeOptions,
    worst_cosine: Callable[[Path], float],
) -> tuple[str, dict[str, float]]:
    """The candidate whose model is closest to FP32: highest ``worst_cosine`` (a :func:`_cosine_scorer`)."""
    scores = {
        method: worst_cosine(_quantize_with(fp32, ranges, tmp / f"quantized-{method}.onnx", op_types, opts))
        for method, ranges in candidates.items()
    }
    return max(scores, key=lambda m: scores[m]), scores


def _cosine_scorer(fp32: Path, feeds: Sequence[Mapping[str, np.ndarray]]) -> Callable[[Path], float]:
    """``score(model)``: its worst cosine to ``fp32`` over ``feeds`` and outputs (FP32 outputs computed once)."""
    from trtbuild.model.accuracy import run_model, session
    from trtbuild.verdict import plain_cosine

    reference = session(fp32)
    wants = [run_model(fp32, feed, reference) for feed in feeds]

    def score(path: Path) -> float:
        candidate = session(path)
        worst = 1.0
        for feed, want in zip(feeds, wants):
            got = run_model(path, feed, candidate)
            worst = min([worst, *(plain_cosine(ref, got[name]) for name, ref in want.items())])
        return worst

    return score


def _search_ranges(
    fp32: Path,
    ranges: Any,
    staged: Path,
    tmp: Path,
    op_types: list[str],
    opts: QuantizeOptions,
    calib: CalibrationData,
    select_score: Callable[[Path], float],
    selected: float,
    *,
    held_out: bool,
) -> tuple[Any, RangeSearch, Path] | None:
    """:func:`trtbuild.model.range_search.narrow_ranges` for ``staged`` (the chosen model, ``selected`` its
    worst cosine by ``select_score`` on the held-out samples): searched when that misses the INT8 cosine,
    scored on the first calibration batches, confirmed by ``select_score``. Ranges that fit the calibration
    batches but move held-out outputs away from FP32 are not kept (``RangeSearch.kept``); without held-out
    samples nothing could confirm a search, so there is none."""
    import itertools

    import onnx

    from trtbuild.console import progress
    from trtbuild.model.range_search import FACTORS, MAX_BATCHES, MAX_TENSORS, narrow_ranges
    from trtbuild.verdict import limits_for

    min_cosine = limits_for("int8").min_cosine
    if selected >= min_cosine:
        return None
    quantized = onnx.load(str(staged), load_external_data=False)
    tensors = list(dict.fromkeys(
        n.input[0] for n in quantized.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in ranges.data
    ))  # fmt: skip
    if not tensors or len(tensors) > MAX_TENSORS:
        return None
    if not held_out:
        log.info(
            "INT8 range search skipped: the model misses cosine %.2f (%.4f), but with fewer than 5 calibration files "
            "there are no held-out samples to confirm narrowed ranges on.", min_cosine, selected,
        )  # fmt: skip
        return None
    batches = calib.batches("calib", pad_last=has_static_batch(fp32))
    worst_cosine = _cosine_scorer(fp32, list(itertools.islice(batches, MAX_BATCHES)))
    trial = tmp / "range-search.onnx"

    def score(candidate: Any) -> float:
        return worst_cosine(_quantize_with(fp32, candidate, trial, op_types, opts))

    with progress() as bar:
        task = bar.add_task("INT8 range search", total=len(FACTORS) * len(tensors))
        searched = narrow_ranges(ranges, tensors, score, worst_cosine(staged), lambda: bar.advance(task))
    if searched is None:
        return None
    narrowed, found = searched
    path = _quantize_with(fp32, narrowed, tmp / "quantized-narrowed.onnx", op_types, opts)
    found.confirm(selected, select_score(path))
    return narrowed, found, path


def has_static_batch(path: Path) -> bool:
    """Whether a graph input has a fixed first dim: such a model runs only full calibration batches."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            return True
    return False


def _strip_foreign_opsets(model: onnx.ModelProto) -> None:
    """Drop opset imports of domains no node uses (ORT may add com.microsoft; TensorRT ignores, but why keep)."""
    used = {n.domain for n in model.graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del model.opset_import[:]
    model.opset_import.extend(keep)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ORT's quantizer prints progress to stdout and warns about pre-processing; keep our output clean."""
    quant_logger = logging.getLogger()
    level = quant_logger.level
    quant_logger.setLevel(max(level, logging.ERROR))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        quant_logger.setLevel(level)


def _validate_runs(path: Path, feed: Mapping[str, np.ndarray]) -> None:
    import numpy as np

    from trtbuild.model.accuracy import run_model

    try:
        outputs = run_model(path, feed)
    except Exception as exc:
        raise QuantizationError(f"The quantized model does not run in ONNX Runtime ({type(exc).__name__}: {str(exc)[:300]}).") from None
    for name, value in outputs.items():
        if np.asarray(value).dtype.kind == "f" and not np.all(np.isfinite(value)):
            log.warning("The quantized model's output '%s' has inf/NaN values on the first calibration batch.", name)


# --------------------------------------------------------------------------------------------------
# ModelOpt (subprocess)


def _quantize_modelopt(source: Path, out_path: Path, calib: CalibrationData, opts: QuantizeOptions) -> None:
    import numpy as np

    from trtbuild.fsutil import atomic_write_bytes

    with tempfile.TemporaryDirectory(prefix="trtbuild-modelopt-") as tmp_name:
        tmp = Path(tmp_name)
        samples = calib.all_samples("calib")
        batch = calib.batch_size
        count = next(iter(samples.values())).shape[0]
        if count % batch:
            # modelopt splits the data into calibration_shapes-sized steps; repeat samples to fill the last one.
            fill = np.arange(batch - count % batch) % count
            samples = {n: np.concatenate([a, a[fill]]) for n, a in samples.items()}
        npz = tmp / "calib.npz"
        savez: Any = np.savez  # its stubs take **kwds as bool (allow_pickle)
        savez(npz, **samples)
        staged = tmp / "model.int8.onnx"
        shapes = ",".join(f"{n}:{'x'.join(str(d) for d in s)}" for n, s in calib.batch_shapes.items())
        cmd = [
            modelopt_python(), "-m", "modelopt.onnx.quantization",
            "--onnx_path", str(source), "--output_path", str(staged),
            "--quantize_mode", "int8",
            "--calibration_data_path", str(npz),
            "--calibration_method", "entropy" if opts.method in ("entropy", "auto") else "max",
            "--calibration_shapes", shapes,
            "--calibration_eps", "cpu",
            "--high_precision_dtype", opts.high_precision,
        ]  # fmt: skip
        if opts.exclude_nodes:
            cmd += ["--nodes_to_exclude", *opts.exclude_nodes]
        if opts.exclude_op_types:
            cmd += ["--op_types_to_exclude", *opts.exclude_op_types]
        run_subprocess(cmd, "modelopt ONNX quantization")
        if not staged.exists():
            raise QuantizationError("modelopt finished without writing the quantized model.")
        atomic_write_bytes(out_path, staged.read_bytes())
