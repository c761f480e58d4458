"""Save ONNX Runtime's optimized graph (``SessionOptions.optimized_model_filepath``).

``basic`` keeps standard ONNX ops (constant folding, BatchNorm folding, Identity removal) and stays
buildable by TensorRT. ``extended`` and ``all`` insert ONNX-Runtime-only fused ops (com.microsoft,
NCHWc layouts tied to this CPU), so their output is stamped ``trtbuild.ort_only=true`` and ``build``
refuses it. Running ORT's optimizer on a Q/DQ model changes the quantization pattern in ways
TensorRT rejects, so such output is stamped ORT-only too (docs/precision.md).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.errors import ModelError, SpecError
from trtbuild.model.inspect import ORT_ONLY_KEY, TRT_DOMAINS

log = logging.getLogger(__name__)

LEVELS = ("basic", "extended", "all")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class OptimizeResult:
    input_path: str
    output_path: str
    level: str
    nodes_before: int
    nodes_after: int
    ort_only: bool
    nonstandard_ops: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _ops(proto: Any) -> tuple[int, Counter[str]]:
    nonstandard: Counter[str] = Counter()
    for node in proto.graph.node:
        if node.domain not in TRT_DOMAINS:
            nonstandard[f"{node.domain}::{node.op_type}"] += 1
    return len(proto.graph.node), nonstandard


def optimize(model: str | os.PathLike[str], output: str | os.PathLike[str], *, level: str = "basic") -> OptimizeResult:
    """Optimize ``model`` with ONNX Runtime at ``level`` and save the graph to ``output`` (atomically)."""
    import onnx
    import onnxruntime as ort

    from trtbuild.fsutil import atomic_write_bytes
    from trtbuild.model.load import load_onnx, resolve_model_path

    if level not in LEVELS:
        raise SpecError(f"--level must be one of {', '.join(LEVELS)}, not '{level}'.")
    source = resolve_model_path(model)
    out_path = Path(output).expanduser()
    if out_path.resolve() == source.resolve():
        raise SpecError(f"-o {out_path} is the input model; write the optimized graph to another file.")
    original = load_onnx(source, load_weights=False)
    nodes_before, _ = _ops(original)
    has_qdq = any(n.op_type in QDQ_OPS for n in original.graph.node)

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    with tempfile.TemporaryDirectory(prefix="trtbuild-optimize-") as tmp:
        staged = Path(tmp) / out_path.name
        options.optimized_model_filepath = str(staged)
        try:
            ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"ONNX Runtime cannot load {source}: {exc}") from None
        proto = onnx.load(str(staged))

    nodes_after, nonstandard = _ops(proto)
    warnings: list[str] = []
    reasons = []
    if level != "basic":
        reasons.append(f"level '{level}' adds ONNX-Runtime-only ops and layouts")
    if has_qdq:
        reasons.append("ONNX Runtime rewrote the Q/DQ pattern of a quantized model")
    if nonstandard:
        reasons.append("the graph has ops outside the standard ONNX domain")
    ort_only = bool(reasons)
    if ort_only:
        entry = proto.metadata_props.add()
        entry.key, entry.value = ORT_ONLY_KEY, "true"
        warnings.append(
            f"{out_path} is for ONNX Runtime only ({'; '.join(reasons)}); trtbuild build refuses it. For TensorRT, "
            "use --level basic on the FP32 model before any FP16/INT8 conversion (or onnxslim)."
        )
    atomic_write_bytes(out_path, proto.SerializeToString())
    for w in warnings:
        log.warning("%s", w)
    return OptimizeResult(
        input_path=str(source),
        output_path=str(out_path),
        level=level,
        nodes_before=nodes_before,
        nodes_after=nodes_after,
        ort_only=ort_only,
        nonstandard_ops=dict(nonstandard.most_common()),
        warnings=warnings,
    )
