"""The corpus's independent verdict on a converted model. Imports nothing from trtbuild.

A converted model passes when:
1. it loads: ``onnx.checker`` (full check) accepts it and plain ONNX Runtime opens it with its defaults;
   INT8 models hold Q/DQ nodes of the form TensorRT's parser takes (int8, zero point 0, no INT32 bias);
2. FP16 models do not overflow: every FP16 tensor of the main graph, exposed as an output (which makes
   ONNX Runtime materialise it in FP16 instead of fusing it away), is finite on the held-out inputs;
3. its outputs agree with the FP32 model's on held-out real inputs by fixed thresholds:
   FP16 cosine >= 0.999 and argmax agreement >= 99 % (classify) or mask IoU >= 0.95 (segment);
   INT8 cosine >= 0.98 and argmax agreement >= 95 % or mask IoU >= 0.85.
   A token classifier's argmax agreement counts only the positions that hold a token: where the
   catalog names the model's padding (input and pad id), padded positions are left out, since the
   model's prediction there is never read (cosine still covers every position).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

THRESHOLDS = {
    "fp16": {"cosine": 0.999, "argmax": 0.99, "iou": 0.95},
    "int8": {"cosine": 0.98, "argmax": 0.95, "iou": 0.85},
}


@dataclass
class Verdict:
    passed: bool
    reason: str
    outputs: dict[str, dict[str, float]] = field(default_factory=dict)

    def cell(self) -> str:
        return "pass" if self.passed else f"FAIL: {self.reason}"

    def worst(self) -> dict[str, float]:
        """The worst value over the outputs of each measure there is: cosine, then argmax and iou if any."""
        stats = list(self.outputs.values())
        return {key: min(s[key] for s in stats if key in s)
                for key in ("cosine", "argmax", "iou") if any(key in s for s in stats)}  # fmt: skip


def _session(path: Path | str, *, disable_optimizations: bool = False) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if disable_optimizations:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def loads(path: Path) -> str | None:
    """None when the file is a valid model that plain ONNX Runtime opens; else why not."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # the checker raises several types
        return f"onnx.checker: {str(exc).strip().splitlines()[0][:200]}"
    try:
        _session(path)
    except Exception as exc:
        return f"ONNX Runtime: {str(exc).strip().splitlines()[0][:200]}"
    return None


def _run(session: Any, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    types = {i.name: i.type for i in session.get_inputs()}
    cast = {"tensor(float16)": np.float16, "tensor(float)": np.float32}
    fed = {k: (v.astype(cast[types[k]]) if types.get(k) in cast else v) for k, v in feed.items()}
    return dict(zip(names, session.run(names, fed)))


def fp16_overflow(path: Path, feeds: Sequence[Mapping[str, np.ndarray]]) -> str | None:
    """None when every FP16 tensor of the main graph stays finite; else the first tensor that does not."""
    import onnx

    model = onnx.load(str(path))
    inferred = onnx.shape_inference.infer_shapes(model)
    fp16 = {v.name for v in inferred.graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16}
    existing = {o.name for o in model.graph.output}
    for name in sorted(fp16 - existing):
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT16, None))
    with tempfile.TemporaryDirectory() as tmp:
        exposed = Path(tmp) / "exposed.onnx"
        onnx.save(model, str(exposed))
        session = _session(exposed, disable_optimizations=True)
        for feed in feeds:
            for name, value in _run(session, feed).items():
                if name in fp16 and np.asarray(value).dtype == np.float16 and not np.all(np.isfinite(value)):
                    return f"FP16 tensor '{name}' holds inf/NaN"
    return None


def qdq_problems(path: Path) -> str | None:
    """None when the model holds Q/DQ nodes TensorRT's ONNX parser takes: int8, zero point 0, no INT32
    (bias) dequantization, QuantizeLinear on float data; else the first problem."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    constants = {t.name: t for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not nodes:
        return "no QuantizeLinear/DequantizeLinear node"
    for node in nodes:
        if len(node.input) > 2 and node.input[2]:
            zero = constants.get(node.input[2])
            if zero is None:
                return f"{node.name}: zero point is not a constant"
            if zero.data_type != onnx.TensorProto.INT8:
                return f"{node.name}: zero point of type {onnx.TensorProto.DataType.Name(zero.data_type)}"
            if np.any(numpy_helper.to_array(zero) != 0):
                return f"{node.name}: non-zero zero point"
        elif node.op_type == "QuantizeLinear":
            return f"{node.name}: no zero point (defaults to uint8)"
        source = constants.get(node.input[0])
        if node.op_type == "DequantizeLinear" and source is not None and source.data_type == onnx.TensorProto.INT32:
            return f"{node.name}: dequantizes an INT32 tensor"
    return None


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a, b) / (na * nb))


def agreement(
    reference: Path,
    candidate: Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    precision: str,
    kinds: Mapping[str, str],
    mask_threshold: float = 0.5,
    padding: Mapping[str, Any] | None = None,
) -> Verdict:
    """Outputs of ``candidate`` vs ``reference`` on ``feeds`` by the fixed thresholds of ``precision``.

    ``padding`` ({"input": name, "token": id}) leaves the positions where that input holds the pad id
    out of the argmax agreement of classify outputs.
    """
    limits = THRESHOLDS[precision]
    ref_session, cand_session = _session(reference), _session(candidate)
    pairs: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for feed in feeds:
        want, got = _run(ref_session, feed), _run(cand_session, feed)
        for name, value in want.items():
            pairs.setdefault(name, ([], []))[0].append(np.asarray(value, np.float64))
            pairs[name][1].append(np.asarray(got[name], np.float64))
    verdict = Verdict(True, "")
    failures = []
    for name, (refs, cands) in pairs.items():
        ref = np.concatenate([r.ravel() for r in refs])
        cand = np.concatenate([c.ravel() for c in cands])
        stats: dict[str, float] = {"cosine": _cosine(ref, cand)}
        if not np.all(np.isfinite(cand[np.isfinite(ref)])):
            failures.append(f"{name}: inf/NaN")
        if stats["cosine"] < limits["cosine"]:
            failures.append(f"{name}: cosine {stats['cosine']:.5f} < {limits['cosine']}")
        kind = kinds.get(name, "regress")
        if kind == "classify":
            agree = [np.argmax(r, axis=-1) == np.argmax(c, axis=-1) for r, c in zip(refs, cands)]
            if padding:
                agree = [a[_holds_token(feed, padding, a.shape)] for a, feed in zip(agree, feeds)]
            stats["argmax"] = float(np.mean(np.concatenate([a.ravel() for a in agree])))
            if stats["argmax"] < limits["argmax"]:
                failures.append(f"{name}: argmax agreement {stats['argmax']:.1%} < {limits['argmax']:.0%}")
        elif kind == "segment":
            mask_r, mask_c = ref > mask_threshold, cand > mask_threshold
            union = np.sum(mask_r | mask_c)
            stats["iou"] = float(np.sum(mask_r & mask_c) / union) if union else 1.0
            if stats["iou"] < limits["iou"]:
                failures.append(f"{name}: mask IoU {stats['iou']:.3f} < {limits['iou']}")
        verdict.outputs[name] = stats
    if failures:
        verdict.passed, verdict.reason = False, "; ".join(failures)
    return verdict


def _holds_token(feed: Mapping[str, np.ndarray], padding: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    """True where ``padding["input"]`` of ``feed`` is not the pad id; it must match the argmax's shape."""
    tokens = np.asarray(feed[padding["input"]])
    if tokens.shape != shape:
        raise ValueError(f"padding input {padding['input']} has shape {tokens.shape}, the output's argmax {shape}")
    if not (tokens != padding["token"]).any():
        raise ValueError(f"every position of {padding['input']} is padding: a sample with no token measures nothing")
    return tokens != padding["token"]


def judge(
    reference: Path,
    candidate: Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    precision: str,
    kinds: Mapping[str, str],
    mask_threshold: float = 0.5,
    padding: Mapping[str, Any] | None = None,
) -> Verdict:
    """Loads, (FP16) no overflow, agrees: the whole independent verdict."""
    problem = loads(candidate)
    if problem is not None:
        return Verdict(False, f"does not load: {problem}")
    if precision == "int8":
        problem = qdq_problems(candidate)
        if problem is not None:
            return Verdict(False, f"not TensorRT-compatible Q/DQ: {problem}")
    if precision == "fp16":
        problem = fp16_overflow(candidate, feeds)
        if problem is not None:
            return Verdict(False, problem)
    return agreement(reference, candidate, feeds, precision, kinds, mask_threshold, padding)
