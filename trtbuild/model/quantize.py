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
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import MissingDependencyError, TrtbuildError
from trtbuild.model.calib import CalibrationData, cache_is_fresh, read_provenance, write_provenance
from trtbuild.model.fp16 import modelopt_available, package_version, run_subprocess
from trtbuild.model.qdq_check import QdqReport, check_qdq, default_opset, max_opset, parse_target_trt

if TYPE_CHECKING:
    import numpy as np
    import onnx

log = logging.getLogger(__name__)

METHODS = ("entropy", "minmax", "percentile")
QUANTIZERS = ("auto", "modelopt", "onnxruntime")
#: TensorRT's placement: Q/DQ on the inputs (activation + weight) of the ops that run in INT8
DEFAULT_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")
DEFAULT_PERCENTILE = 99.99
#: entropy needs room to clip: ORT's quantize_static uses 128/128 bins, which gives min/max ranges
ENTROPY_BINS = 2048
ENTROPY_QUANTIZED_BINS = 128
#: part of a range cache's provenance: bump when the range computation changes so old caches rebuild
RANGES_VERSION = 1


class QuantizationError(TrtbuildError):
    """Quantization failed, or produced a model TensorRT would not accept."""


@dataclass
class QuantizeOptions:
    method: str = "entropy"  # entropy | minmax | percentile
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
        }


def choose_quantizer(options: QuantizeOptions) -> str:
    requested = options.quantizer
    if requested not in QUANTIZERS:
        raise QuantizationError(f"Unknown quantizer '{requested}'; choose one of {', '.join(QUANTIZERS)}.")
    target = parse_target_trt(options.target_trt)
    if requested == "modelopt":
        if not modelopt_available():
            raise MissingDependencyError(
                "--quantizer modelopt needs NVIDIA ModelOpt: pip install 'nvidia-modelopt[onnx]' (see "
                "docs/precision.md for a lean CPU install), or use --quantizer onnxruntime."
            )
        if target < (10, 0):
            raise QuantizationError(
                "ModelOpt writes opset >= 19, beyond TensorRT 8.6's parser (opset 17); use --quantizer onnxruntime "
                "for --target-trt 8.6."
            )
        if options.method == "percentile":
            raise QuantizationError("ModelOpt's INT8 calibration has entropy and max, not percentile; use --quantizer onnxruntime.")
        return "modelopt"
    if requested == "auto" and modelopt_available() and target >= (10, 0) and options.method != "percentile":
        return "modelopt"
    if options.high_precision == "fp16":
        raise QuantizationError(
            "FP16 outside the Q/DQ nodes needs NVIDIA ModelOpt (pip install 'nvidia-modelopt[onnx]'); ONNX Runtime's "
            "quantizer leaves those layers FP32."
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
) -> QuantizeResult:
    """Write an INT8 Q/DQ copy of ``model`` to ``output``, calibrated on ``calib``.

    ``cache`` holds the calibrated ranges (ONNX Runtime's JSON, provenance in ``cache + .json``); it
    is reused while the data, preprocessing and model are unchanged. ``explicit_cache`` (the user
    named it with --calib) refuses a stale cache instead of rebuilding it, and lets it stand in for
    calibration data.
    """
    from trtbuild.model.load import resolve_model_path

    opts = options or QuantizeOptions()
    if opts.method not in METHODS:
        raise QuantizationError(f"Unknown calibration method '{opts.method}'; choose one of {', '.join(METHODS)}.")
    source = resolve_model_path(model)
    quantizer = choose_quantizer(opts)
    out_path = Path(output)
    if quantizer == "modelopt":
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
        result = _quantize_ort(source, out_path, calib, opts, cache=cache, explicit_cache=explicit_cache)
    import onnx

    result.opset = default_opset(onnx.load(str(out_path), load_external_data=False))
    result.check.raise_if_failed(f"The quantized model {out_path}")
    if calib is not None:
        _validate_runs(out_path, next(calib.batches("calib")))
    log.info(
        "INT8 Q/DQ with %s %s (%s calibration): %s; wrote %s.",
        result.quantizer,
        result.quantizer_version or "",
        opts.method,
        result.check.summary(),
        out_path,
    )
    return result


# --------------------------------------------------------------------------------------------------
# ONNX Runtime


class _Reader:
    """ONNX Runtime's CalibrationDataReader over our batches."""

    def __init__(self, calib: CalibrationData, static_batch: bool, progress: Any = None) -> None:
        self._calib = calib
        self._static = static_batch
        self._iter: Iterator[dict[str, np.ndarray]] = calib.batches("calib", pad_last=static_batch)
        self._progress = progress
        self._task = progress.add_task("INT8 calibration", total=len(self)) if progress is not None else None

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iter, None)
        if batch is not None and self._progress is not None:
            self._progress.advance(self._task)
        return batch

    def rewind(self) -> None:
        self._iter = self._calib.batches("calib", pad_last=self._static)

    def __len__(self) -> int:
        return self._calib.num_batches("calib")


def _prepared_fp32(source: Path, target: tuple[int, int], tmp: Path) -> Path:
    """The FP32 model at an opset the target parses (TensorRT 8.6: <= 17), saved where ORT can read it."""
    import onnx

    from trtbuild.model.load import load_onnx

    model = load_onnx(source)
    opset = default_opset(model)
    limit = max_opset(target)
    if opset > limit:
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


def _calibration_settings(options: QuantizeOptions) -> tuple[Any, dict[str, Any]]:
    """ORT calibrator and its options. Entropy collects |x| histograms with the percentile calibrator
    and searches the threshold here (:func:`entropy_amax`): ORT's own search is ~1 s per tensor."""
    from onnxruntime.quantization import CalibrationMethod

    if options.method == "entropy":
        return CalibrationMethod.Percentile, {"num_bins": ENTROPY_BINS, "symmetric": True, "percentile": 100.0}
    if options.method == "percentile":
        return CalibrationMethod.Percentile, {"percentile": options.percentile, "symmetric": True}
    return CalibrationMethod.MinMax, {"symmetric": True}


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
) -> QuantizeResult:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import create_calibrator, load_tensors_data, save_tensors_data

    from trtbuild.model.calib import file_sha256

    target = parse_target_trt(opts.target_trt)
    op_types = _op_types(opts)
    if not op_types:
        raise QuantizationError("Every op type is excluded from quantization; nothing would run in INT8.")
    method, calib_options = _calibration_settings(opts)
    cache_path = Path(cache) if cache else default_cache_path(out_path)
    provenance: dict[str, Any] = calib.provenance() if calib is not None else {"model_sha256": file_sha256(source)}
    provenance.update(method=opts.method, percentile=opts.percentile if opts.method == "percentile" else None,
                      op_types=op_types, quantizer="onnxruntime", target_opset=max_opset(target),
                      ranges_version=RANGES_VERSION)  # fmt: skip
    reused = False
    with tempfile.TemporaryDirectory(prefix="trtbuild-quant-") as tmp_name:
        tmp = Path(tmp_name)
        fp32 = _prepared_fp32(source, target, tmp)
        only = () if calib is not None else ("model_sha256", "method", "percentile", "op_types", "ranges_version")
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
                provenance = {**stored, **{k: provenance[k] for k in only}}
        else:
            if calib is None:
                raise QuantizationError(
                    f"No calibration data and no range cache at {cache_path}: pass --calib-data DIR (or --calib-random "
                    "for a smoke test)."
                )
            static_batch = _has_static_batch(fp32)
            from trtbuild.console import progress

            with _quiet(), progress() as bar:
                calibrator = create_calibrator(
                    fp32,
                    op_types,
                    augmented_model_path=str(tmp / "augmented.onnx"),
                    calibrate_method=method,
                    extra_options=calib_options,
                )
                calibrator.collect_data(_Reader(calib, static_batch, bar))
                if opts.method == "entropy":
                    ranges = _entropy_ranges(calibrator.collector.histogram_dict)
                else:
                    ranges = calibrator.compute_data()
            del calibrator
            save_tensors_data(ranges, cache_path)
            write_provenance(cache_path, provenance, format="onnxruntime TensorsData JSON (tensor ranges)")
        ranges_file = tmp / "ranges.json"
        save_tensors_data(ranges, ranges_file)
        staged = tmp / "quantized.onnx"
        method = ranges.calibration_method
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
                calibrate_method=method,
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
    )


def entropy_amax(hist: np.ndarray, edges: np.ndarray, num_quantized_bins: int = ENTROPY_QUANTIZED_BINS) -> float:
    """TensorRT's entropy calibration on an |x| histogram: the threshold whose 128-bin quantization
    loses the least information (KL divergence), as in pytorch-quantization's ``_compute_amax_entropy``."""
    import numpy as np

    counts = np.asarray(hist, dtype=np.float64).copy()
    n = counts.size
    if n > 1:
        counts[0] = counts[1]  # the spike of exact zeros (ReLU outputs) would drag the threshold to ~0
    if n <= num_quantized_bins or not counts.any():
        return float(edges[-1])
    tails = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # tails[i] = sum(counts[i:])
    best_i, best_kl = n, np.inf
    for i in range(num_quantized_bins, n + 1):
        ref = counts[:i].copy()
        ref[-1] += tails[i]  # outliers clip into the last bin
        nonzero = counts[:i] > 0
        # Merge the first i bins into num_quantized_bins groups, spread each group's mass over its
        # non-empty bins: the distribution int8 can represent with threshold edges[i].
        group = np.minimum((np.arange(i) * num_quantized_bins) // i, num_quantized_bins - 1)
        mass = np.bincount(group[nonzero], weights=counts[:i][nonzero], minlength=num_quantized_bins)
        members = np.bincount(group[nonzero], minlength=num_quantized_bins)
        quant = np.where(nonzero, mass[group] / np.maximum(members[group], 1), 0.0)
        p, q = ref / ref.sum(), quant / max(quant.sum(), 1e-300)
        mask = p > 0
        if np.any(q[mask] == 0):
            continue
        kl = float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
        if kl <= best_kl:  # ties go to the larger threshold, as in pytorch-quantization
            best_i, best_kl = i, kl
    return float(edges[best_i])


def _entropy_ranges(histograms: Mapping[str, Any]) -> Any:
    import numpy as np
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import TensorData, TensorsData

    data = {}
    for name, (hist, edges, *_rest) in histograms.items():
        amax = np.float32(entropy_amax(hist, edges))
        data[name] = TensorData(lowest=np.array(-amax, np.float32), highest=np.array(amax, np.float32))
    return TensorsData(CalibrationMethod.Entropy, data)


def _has_static_batch(path: Path) -> bool:
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
        raise QuantizationError(f"The quantized model {path} does not run in ONNX Runtime ({type(exc).__name__}: {exc}).") from None
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
            sys.executable, "-m", "modelopt.onnx.quantization",
            "--onnx_path", str(source), "--output_path", str(staged),
            "--quantize_mode", "int8",
            "--calibration_data_path", str(npz),
            "--calibration_method", "entropy" if opts.method == "entropy" else "max",
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
