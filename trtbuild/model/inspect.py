"""Describe an ONNX model: I/O, opset, ops, weights, checker result and ops TensorRT cannot parse."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.model.load import (
    external_data_files,
    load_onnx_structure,
    model_inputs,
    model_outputs,
    resolve_model_path,
)
from trtbuild.shapes import TensorInfo

#: Domains the TensorRT ONNX parser reads. Anything else (com.microsoft fused ops that ONNX Runtime's
#: extended/all optimizations insert, ai.onnx.ml, custom domains) needs a plugin or fails to parse.
TRT_DOMAINS = frozenset({"", "ai.onnx", "trt.plugins"})
#: Set in metadata_props by ``trtbuild optimize`` above the basic level.
ORT_ONLY_KEY = "trtbuild.ort_only"


@dataclass
class ModelReport:
    path: str
    ir_version: int
    opsets: dict[str, int]
    producer: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    node_count: int
    op_histogram: dict[str, int]
    initializer_count: int
    initializer_bytes: int
    external_data: list[str]
    checker: str  # "ok" or the checker's message
    nonstandard_ops: dict[str, int] = field(default_factory=dict)  # "domain::Op" -> count
    ort_only: bool = False

    @property
    def opset(self) -> int:
        return self.opsets.get("", self.opsets.get("ai.onnx", 0))

    @property
    def trt_parsable(self) -> bool:
        return not self.nonstandard_ops and not self.ort_only

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = [t.as_dict() for t in self.inputs]
        data["outputs"] = [t.as_dict() for t in self.outputs]
        data["opset"] = self.opset
        data["trt_parsable"] = self.trt_parsable
        return data


def _initializer_bytes(model: Any) -> int:
    import numpy as np
    import onnx

    total = 0
    for tensor in model.graph.initializer:
        count = int(np.prod(tensor.dims)) if len(tensor.dims) else 1
        try:
            itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            itemsize = 1
        total += count * itemsize
    return total


def _run_checker(path: Path, model: Any, inline: dict[str, int], external: bool) -> str:
    """onnx.checker's verdict on the model as it is on disk.

    A model with external data is checked by path (the checker does not read external files). One
    with inline weights is checked without them, so they are not read a second time: the structure
    loaded without raw_data (``inline``: tensor name -> raw_data length) is saved to a temporary
    folder with those tensors pointing at a sparse file, and raw_data sizes are checked here the way
    the checker does (the checker does not compare an external length with the tensor's shape).
    """
    import tempfile

    import onnx

    try:
        if external or not inline:
            # By path so models over 2 GB and external data are checked as they are on disk.
            onnx.checker.check_model(str(path) if path.stat().st_size > 0 else model, full_check=False)
            return "ok"
        short = _short_raw_data(model, inline)
        if short:
            return short
        from onnx.external_data_helper import _get_all_tensors

        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        for tensor in _get_all_tensors(copy):
            if tensor.name in inline:
                tensor.data_location = onnx.TensorProto.EXTERNAL
                for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", str(inline[tensor.name]))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, value
        with tempfile.TemporaryDirectory(prefix="trtbuild-inspect-") as tmp:
            with open(Path(tmp) / "weights.bin", "wb") as sparse:
                sparse.truncate(max(inline.values()))  # no disk blocks: the checker only needs the file
            onnx.save(copy, str(Path(tmp) / "model.onnx"))
            onnx.checker.check_model(str(Path(tmp) / "model.onnx"), full_check=False)
        return "ok"
    except Exception as exc:  # onnx.checker.ValidationError and friends
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _short_raw_data(model: Any, inline: dict[str, int]) -> str:
    """onnx.checker's raw_data size check, on the lengths left from loading without the bytes."""
    import numpy as np
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    # strings have no fixed size; sub-byte types pack two or more values per byte
    names = ("STRING", "INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2")
    unsized = {getattr(onnx.TensorProto, n) for n in names if hasattr(onnx.TensorProto, n)}
    for tensor in _get_all_tensors(model):
        if tensor.name not in inline:
            continue
        if tensor.data_type in unsized:
            continue
        try:
            itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            continue
        required = int(np.prod(tensor.dims, dtype=np.int64)) * itemsize if len(tensor.dims) else itemsize
        if inline[tensor.name] < required:
            return (
                f"TensorProto (tensor name: {tensor.name}) raw_data size ({inline[tensor.name]} bytes) is too small "
                f"for the declared shape and type ({required} bytes required)."
            )
    return ""


def inspect_model(model: str | os.PathLike[str]) -> ModelReport:
    """Everything ``trtbuild inspect model.onnx`` shows, as a typed report."""
    path = resolve_model_path(model)
    proto, inline = load_onnx_structure(path)  # the inline weights' bytes are never read
    ops: Counter[str] = Counter()
    nonstandard: Counter[str] = Counter()

    def walk(graph: Any) -> None:
        for node in graph.node:
            ops[node.op_type] += 1
            if node.domain not in TRT_DOMAINS:
                nonstandard[f"{node.domain}::{node.op_type}"] += 1
            for attr in node.attribute:  # If/Loop/Scan bodies
                if attr.g is not None and attr.HasField("g"):
                    walk(attr.g)
                for sub in attr.graphs:
                    walk(sub)

    walk(proto.graph)
    external = external_data_files(proto, path.parent)
    meta = {p.key: p.value for p in proto.metadata_props}
    return ModelReport(
        path=str(path),
        ir_version=int(proto.ir_version),
        opsets={imp.domain: int(imp.version) for imp in proto.opset_import},
        producer=" ".join(x for x in (proto.producer_name, proto.producer_version) if x) or "unknown",
        inputs=model_inputs(proto),
        outputs=model_outputs(proto),
        node_count=sum(ops.values()),
        op_histogram=dict(ops.most_common()),
        initializer_count=len(proto.graph.initializer),
        initializer_bytes=_initializer_bytes(proto),
        external_data=[str(p.relative_to(path.parent.resolve())) for p in external],
        checker=_run_checker(path, proto, inline, bool(external)),
        nonstandard_ops=dict(nonstandard.most_common()),
        ort_only=meta.get(ORT_ONLY_KEY, "").lower() in ("1", "true", "yes"),
    )
