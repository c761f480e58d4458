"""Cast an FP32 ONNX model to FP16 (mixed precision) for TensorRT 11's strongly typed builds.

ONNX Runtime on the CPU runs many FP16 ops in FP32 and so hides FP16 overflow; TensorRT's FP16
kernels would not. The range scan is the guard: run the FP32 model on calibration data with every
intermediate tensor exposed, record each tensor's largest magnitude, and keep the nodes that
produce (or consume) a tensor beyond the FP16 range, with a safety margin, in FP32.

Converters: trtbuild's own graph pass (:mod:`trtbuild.model.fp16_pass`, the default: it holds on the
third-party exports where the others fail, see docs/precision.md), NVIDIA ModelOpt's AutoCast, or
onnxconverter-common's float16 converter (run in a child process with a time limit: it can loop
forever on some graphs). Whatever the converter, stale ``value_info`` is dropped and types are
inferred again, and the result must load and run in ONNX Runtime, with no inf/NaN where the FP32
model has none, before the caller publishes it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import MissingDependencyError, ModelError, TrtbuildError

if TYPE_CHECKING:
    import numpy as np
    import onnx

log = logging.getLogger(__name__)

FP16_MAX = 65504.0
#: tensors whose calibration maximum exceeds FP16_MAX / margin stay FP32 (data can exceed calibration)
DEFAULT_RANGE_MARGIN = 4.0
#: initializers below this magnitude flush to it (the smallest FP16 subnormal)
FP16_MIN_POSITIVE = 5.96e-08
CONVERTERS = ("auto", "trtbuild", "modelopt", "onnxconverter-common")
#: seconds a converter may take before it is stopped (onnxconverter-common can loop forever)
DEFAULT_CONVERTER_TIMEOUT = 600.0


class Fp16Error(TrtbuildError):
    """An FP16 cast that failed or produced a model that does not run correctly."""


@dataclass
class Fp16Options:
    keep_io_types: bool = True  # inputs/outputs stay FP32 unless --fp16-io
    op_block_list: list[str] = field(default_factory=list)  # op types kept FP32
    node_block_list: list[str] = field(default_factory=list)  # node names kept FP32
    range_scan: bool = True
    range_margin: float = DEFAULT_RANGE_MARGIN
    converter: str = "auto"
    timeout: float = DEFAULT_CONVERTER_TIMEOUT


@dataclass
class RangeScan:
    """Largest magnitude of every float tensor over the scan data, and what must stay FP32."""

    limit: float
    batches: int = 0
    tensor_max: dict[str, float] = field(default_factory=dict)
    overflow_tensors: list[str] = field(default_factory=list)
    blocked_nodes: dict[str, str] = field(default_factory=dict)  # node name -> why

    def to_dict(self) -> dict[str, Any]:
        top = sorted(self.tensor_max.items(), key=lambda kv: -kv[1])[:10]
        return {
            "limit": self.limit,
            "batches": self.batches,
            "tensors_scanned": len(self.tensor_max),
            "largest": {name: value for name, value in top},
            "overflow_tensors": self.overflow_tensors,
            "blocked_nodes": self.blocked_nodes,
        }


@dataclass
class CastResult:
    path: Path
    converter: str
    converter_version: str | None
    blocked_nodes: list[str]
    scan: RangeScan | None
    fp16_nodes: int
    fp32_nodes: int
    keep_io_types: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "converter": self.converter,
            "converter_version": self.converter_version,
            "blocked_nodes": self.blocked_nodes,
            "range_scan": self.scan.to_dict() if self.scan else None,
            "fp16_nodes": self.fp16_nodes,
            "fp32_nodes": self.fp32_nodes,
            "keep_io_types": self.keep_io_types,
        }


# --------------------------------------------------------------------------------------------------
# Range scan


def _float_tensors(model: onnx.ModelProto) -> dict[str, int]:
    """Name -> element type of every float tensor a node produces (types from shape inference)."""
    import onnx

    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]
        if v.type.HasField("tensor_type")
    }
    out: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.output:
            if name and types.get(name) in float_types:
                out[name] = types[name]
    return out


def scan_ranges(
    model: onnx.ModelProto | str | os.PathLike[str],
    feeds: Iterable[Mapping[str, np.ndarray]] | None,
    *,
    margin: float = DEFAULT_RANGE_MARGIN,
) -> RangeScan:
    """Run the FP32 model in ONNX Runtime with every float tensor exposed; find what overflows FP16.

    Without ``feeds`` only the initializers are checked (no activation can be seen).
    """
    import onnx

    from trtbuild.model.load import load_onnx

    proto = named_nodes(model if isinstance(model, onnx.ModelProto) else load_onnx(model))
    scan = RangeScan(limit=FP16_MAX / max(margin, 1.0))
    if feeds is not None:
        _scan_activations(proto, feeds, scan)
        if scan.batches == 0:
            raise Fp16Error("The FP16 range scan got no data; give calibration samples (--calib-data).")
    _block_overflows(proto, scan)
    return scan


def _scan_activations(proto: onnx.ModelProto, feeds: Iterable[Mapping[str, np.ndarray]], scan: RangeScan) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort

    exposed = onnx.ModelProto()
    exposed.CopyFrom(proto)
    existing = {o.name for o in exposed.graph.output}
    for name, elem_type in _float_tensors(proto).items():
        if name not in existing:
            exposed.graph.output.append(onnx.helper.make_tensor_value_info(name, elem_type, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="trtbuild-scan-") as tmp:
        # Save to a file so models above 2 GiB (external data) work the same way.
        path = Path(tmp) / "scan.onnx"
        onnx.save(exposed, str(path), save_as_external_data=exposed.ByteSize() > (1 << 30))
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        for feed in feeds:
            for name, value in zip(names, session.run(names, dict(feed))):
                array = np.asarray(value)
                if array.dtype.kind != "f" or array.size == 0:
                    continue
                peak = float(np.max(np.abs(array.astype(np.float32, copy=False))))
                if np.isnan(peak):
                    peak = float("inf")
                scan.tensor_max[name] = max(scan.tensor_max.get(name, 0.0), peak)
            scan.batches += 1


def _block_overflows(model: onnx.ModelProto, scan: RangeScan) -> None:
    """Producers and consumers of out-of-range tensors stay FP32, as do users of huge initializers."""
    import numpy as np
    from onnx import numpy_helper

    consumers: dict[str, list[Any]] = {}
    producers: dict[str, Any] = {}
    for node in model.graph.node:
        for inp in node.input:
            consumers.setdefault(inp, []).append(node)
        for out in node.output:
            producers[out] = node
    for name, peak in sorted(scan.tensor_max.items()):
        if peak <= scan.limit:
            continue
        scan.overflow_tensors.append(name)
        shown = "inf/NaN" if not np.isfinite(peak) else f"{peak:.4g}"
        producer = producers.get(name)
        if producer is not None:
            scan.blocked_nodes.setdefault(producer.name, f"its output '{name}' reaches {shown} (limit {scan.limit:.4g})")
        for user in consumers.get(name, []):
            scan.blocked_nodes.setdefault(user.name, f"its input '{name}' reaches {shown} (limit {scan.limit:.4g})")
    for tensor in model.graph.initializer:
        if tensor.data_type not in (1, 10, 11):  # float, float16, double
            continue
        array = numpy_helper.to_array(tensor)
        peak = float(np.max(np.abs(array))) if array.size else 0.0
        if peak > FP16_MAX:
            for user in consumers.get(tensor.name, []):
                scan.blocked_nodes.setdefault(user.name, f"its initializer '{tensor.name}' holds {peak:.4g} > {FP16_MAX:g}")


def named_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give unnamed nodes names (block lists and reports refer to nodes by name)."""
    if all(n.name for n in model.graph.node):
        return model
    import onnx

    named = onnx.ModelProto()
    named.CopyFrom(model)
    taken = {n.name for n in named.graph.node if n.name}
    for index, node in enumerate(named.graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{index}"
            while candidate in taken:
                candidate += "_"
            node.name = candidate
            taken.add(candidate)
    return named


# --------------------------------------------------------------------------------------------------
# Conversion


#: a Python of ModelOpt's own environment (nvidia-modelopt pins onnx and its own onnxruntime build, so it
#: is best kept apart from trtbuild's); ModelOpt then runs with that interpreter
MODELOPT_PYTHON_ENV = "TRTBUILD_MODELOPT_PYTHON"


def modelopt_python() -> str:
    """The interpreter that runs ModelOpt: $TRTBUILD_MODELOPT_PYTHON, else this one."""
    return os.environ.get(MODELOPT_PYTHON_ENV) or sys.executable


def modelopt_available() -> bool:
    if os.environ.get(MODELOPT_PYTHON_ENV):
        return os.access(os.environ[MODELOPT_PYTHON_ENV], os.X_OK)
    try:
        return importlib.util.find_spec("modelopt") is not None
    except (ImportError, ValueError):
        return False


def package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def choose_converter(requested: str) -> str:
    if requested not in CONVERTERS:
        raise Fp16Error(f"Unknown FP16 converter '{requested}'; choose one of {', '.join(CONVERTERS)}.")
    if requested == "auto":
        return "trtbuild"
    if requested == "modelopt" and not modelopt_available():
        raise MissingDependencyError(
            "--converter modelopt needs NVIDIA ModelOpt: install it in an environment of its own and point "
            f"{MODELOPT_PYTHON_ENV} at its python (docs/precision.md), or use the default converter."
        )
    return requested


def cast_fp16(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: Fp16Options | None = None,
    *,
    scan_feeds: Iterable[Mapping[str, np.ndarray]] | None = None,
    validate_feed: Mapping[str, np.ndarray] | None = None,
    calibration_npz: str | os.PathLike[str] | None = None,
) -> CastResult:
    """Write an FP16 copy of ``model`` to ``output``; nodes the range scan flags stay FP32.

    ``scan_feeds`` are FP32 input batches for the range scan (calibration data); without them the
    scan is skipped with a warning. ``validate_feed`` is one batch the result must run on.
    ``calibration_npz`` (samples per input name) is handed to modelopt AutoCast's own range check.
    """
    import onnx

    from trtbuild.model.fp16_pass import clear_value_info, quantized_ops
    from trtbuild.model.load import load_onnx, resolve_model_path

    opts = options or Fp16Options()
    source = resolve_model_path(model)
    proto = named_nodes(load_onnx(source))
    quantized = quantized_ops(proto)
    if quantized:
        raise Fp16Error(
            f"{source} is already quantized ({', '.join(quantized)}): casting it to FP16 would retype its scales. "
            "Cast the FP32 model it was made from, or build the quantized model as it is."
        )
    if any(
        v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for v in [*proto.graph.input, *proto.graph.output]
    ) or any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer):
        raise Fp16Error(f"{source} already holds FP16 tensors; cast the FP32 model instead.")
    scan: RangeScan | None = None
    if opts.range_scan:
        scan = scan_ranges(proto, scan_feeds, margin=opts.range_margin)
        for node, why in scan.blocked_nodes.items():
            log.info("Keeping node '%s' in FP32: %s.", node, why)
    if opts.range_scan and scan_feeds is None:
        log.warning(
            "No calibration data for the FP16 range scan: activations that overflow FP16 (> %g) cannot be found, "
            "and ONNX Runtime on the CPU will not show them either. Pass --calib-data to scan real inputs.",
            FP16_MAX,
        )
    unknown = sorted(set(opts.node_block_list) - {n.name for n in proto.graph.node})
    if unknown:
        raise Fp16Error(f"--fp16-block-nodes names nodes the model does not have: {', '.join(unknown)}.")
    blocked = sorted(set(opts.node_block_list) | set(scan.blocked_nodes if scan else ()))
    converter = choose_converter(opts.converter)
    out_path = Path(output)
    log.info("Casting %s to FP16 with %s (%d node(s) kept FP32)...", source.name, converter, len(blocked))
    if converter == "modelopt":
        converted = _cast_modelopt(proto, opts, blocked, calibration_npz)
        version = package_version("nvidia-modelopt")
    elif converter == "onnxconverter-common":
        converted = _cast_onnxconverter(proto, opts, blocked)
        version = package_version("onnxconverter-common")
    else:
        converted = _cast_own(proto, opts, blocked)
        version = package_version("trtbuild")
    _save(clear_value_info(converted), out_path)
    fp16_nodes, fp32_nodes = _count_precisions(converted)
    result = CastResult(
        path=out_path,
        converter=converter,
        converter_version=version,
        blocked_nodes=blocked,
        scan=scan,
        fp16_nodes=fp16_nodes,
        fp32_nodes=fp32_nodes,
        keep_io_types=opts.keep_io_types,
    )
    if validate_feed is not None:
        validate_runs(source, out_path, validate_feed)
    log.info(
        "FP16 cast with %s %s: %d node(s) compute in FP16, %d kept in FP32.",
        converter,
        version or "",
        fp16_nodes,
        len(blocked),
    )
    return result


def _cast_own(proto: onnx.ModelProto, opts: Fp16Options, blocked: Sequence[str]) -> onnx.ModelProto:
    from trtbuild.model.fp16_pass import DEFAULT_OP_BLOCK_LIST, convert_to_fp16

    converted, stats = convert_to_fp16(
        proto,
        keep_io_types=opts.keep_io_types,
        op_block_list=sorted(set(DEFAULT_OP_BLOCK_LIST) | set(opts.op_block_list)),
        node_block_list=blocked,
    )
    if not stats.converted:
        raise Fp16Error(
            "No node of the model can compute in FP16 (every float op is blocked, typed by an attribute or outside "
            "the ONNX domain); there is nothing to cast."
        )
    log.info("FP16 pass: %d node(s) in FP16, %d Cast(s) added at precision boundaries.", stats.converted, stats.casts_added)
    return converted


def _cast_onnxconverter(proto: onnx.ModelProto, opts: Fp16Options, blocked: Sequence[str]) -> onnx.ModelProto:
    """onnxconverter-common in a child process: some graphs make it loop forever, so it gets a time limit."""
    import json

    import onnx

    if importlib.util.find_spec("onnxconverter_common") is None:
        raise MissingDependencyError("--converter onnxconverter-common needs it installed: pip install onnxconverter-common.")
    with tempfile.TemporaryDirectory(prefix="trtbuild-occ-") as tmp:
        src, dst = Path(tmp) / "model.onnx", Path(tmp) / "model.fp16.onnx"
        onnx.save(proto, str(src))
        settings = {
            "keep_io_types": opts.keep_io_types,
            "op_block_list": sorted(set(opts.op_block_list)),
            "node_block_list": list(blocked),
            "min_positive_val": FP16_MIN_POSITIVE,
            "max_finite_val": FP16_MAX,
        }
        cmd = [sys.executable, "-m", "trtbuild.model._occ_worker", str(src), str(dst), json.dumps(settings)]
        try:
            run_subprocess(cmd, "onnxconverter-common's FP16 converter", timeout=opts.timeout)
        except TrtbuildError as exc:
            raise Fp16Error(f"{exc} Use the default converter (--converter trtbuild).") from None
        return onnx.load(str(dst))


def _cast_modelopt(
    proto: onnx.ModelProto, opts: Fp16Options, blocked: Sequence[str], calibration_npz: str | os.PathLike[str] | None
) -> onnx.ModelProto:
    """modelopt AutoCast through its CLI, in a subprocess (it patches ONNX Runtime when it runs)."""
    import re

    import onnx

    with tempfile.TemporaryDirectory(prefix="trtbuild-autocast-") as tmp:
        src = Path(tmp) / "model.onnx"
        dst = Path(tmp) / "model.fp16.onnx"
        onnx.save(proto, str(src))
        cmd = [
            modelopt_python(), "-m", "modelopt.onnx.autocast",
            "--onnx_path", str(src), "--output_path", str(dst), "--low_precision_type", "fp16",
        ]  # fmt: skip
        if opts.keep_io_types:
            cmd.append("--keep_io_types")
        if blocked:
            cmd += ["--nodes_to_exclude", *(f"^{re.escape(n)}$" for n in blocked)]
        if opts.op_block_list:
            cmd += ["--op_types_to_exclude", *opts.op_block_list]
        if calibration_npz:
            cmd += ["--calibration_data", os.fspath(calibration_npz)]
        run_subprocess(cmd, "modelopt AutoCast")
        if not dst.exists():
            raise Fp16Error("modelopt AutoCast finished without writing its output model.")
        return onnx.load(str(dst))


def run_subprocess(cmd: Sequence[str], what: str, timeout: float | None = None) -> str:
    log.debug("Running %s", " ".join(cmd))
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TrtbuildError(f"{what} did not finish within {timeout:.0f} s.") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
        raise TrtbuildError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _save(model: onnx.ModelProto, path: Path) -> None:
    import onnx

    from trtbuild.fsutil import atomic_write_bytes

    if model.ByteSize() > (1 << 31) - (1 << 20):
        raise ModelError(f"The converted model is over 2 GiB; external data output is not supported yet ({path}).")
    atomic_write_bytes(path, onnx.shape_inference.infer_shapes(model, strict_mode=False).SerializeToString())


def _count_precisions(model: onnx.ModelProto) -> tuple[int, int]:
    """Compute nodes whose float outputs are FP16 vs FP32 (Cast/Constant/shape plumbing not counted)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.graph.value_info, *inferred.graph.output]}
    fp16 = fp32 = 0
    for node in model.graph.node:
        if node.op_type in ("Cast", "Constant", "Shape", "Identity"):
            continue
        kinds = {types.get(o) for o in node.output}
        if onnx.TensorProto.FLOAT16 in kinds:
            fp16 += 1
        elif onnx.TensorProto.FLOAT in kinds:
            fp32 += 1
    return fp16, fp32


def validate_runs(
    reference: str | os.PathLike[str], candidate: str | os.PathLike[str], feed: Mapping[str, np.ndarray]
) -> None:
    """The converted model loads and runs in ONNX Runtime, with no inf/NaN where FP32 has none."""
    import numpy as np

    from trtbuild.model.accuracy import run_model

    try:
        got = run_model(candidate, feed)
    except Exception as exc:
        raise Fp16Error(f"The FP16 model does not run in ONNX Runtime ({type(exc).__name__}: {str(exc)[:300]}).") from None
    want = run_model(reference, feed)
    for name, ref in want.items():
        ref_bad = ~np.isfinite(ref)
        cand_bad = ~np.isfinite(np.asarray(got[name], dtype=np.float32))
        if np.any(cand_bad & ~ref_bad):
            raise Fp16Error(
                f"The FP16 model's output '{name}' has inf/NaN where the FP32 model has none; a tensor overflows "
                "FP16. Keep its nodes in FP32 (--fp16-block-nodes / --fp16-block-ops) or scan with more representative "
                "--calib-data."
            )
