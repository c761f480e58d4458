"""Does a Q/DQ model follow TensorRT's explicit-quantization rules? Every violation is named.

The rules come from the onnx-tensorrt parser (docs/operators.md) and TensorRT's explicit
quantization guide: QuantizeLinear/DequantizeLinear in the standard domain, INT8 (or FP8; INT4
for weight-only DequantizeLinear on TensorRT >= 10) with zero point 0, constant scales, per-channel
scales only for weights, Q followed by DQ, no INT32 (bias) dequantization, and an opset the target
TensorRT parses. ONNX Runtime's default quantize_static settings (asymmetric uint8 activations,
INT32 bias) break several of them.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trtbuild.errors import TrtbuildError

if TYPE_CHECKING:
    import onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
STANDARD_DOMAINS = ("", "ai.onnx")

#: highest ONNX opset each TensorRT release's parser documents (onnx-tensorrt operators.md);
#: a target between two entries gets the lower one
MAX_OPSET: dict[tuple[int, int], int] = {
    (8, 5): 17,
    (8, 6): 17,
    (10, 0): 20,
    (10, 15): 24,
    (11, 0): 24,
    (11, 5): 25,
}

RULES = {
    "domain": "Q/DQ op outside the standard ONNX domain (TensorRT's parser has no com.microsoft ops)",
    "opset": "opset beyond what the target TensorRT's ONNX parser documents",
    "zero-point": "non-zero zero point (asymmetric quantization); TensorRT needs zero point 0",
    "type": "quantized type TensorRT does not take (uint8, int16, ...); use int8 (or fp8)",
    "int32-bias": "INT32 DequantizeLinear (bias quantization); TensorRT dequantizes only INT8/FP8",
    "scale": "scale or zero point that is not a constant initializer, or a scale that is not positive",
    "per-channel-activation": "per-channel scale on an activation; TensorRT takes per-channel scales only for weights",
    "unpaired": "QuantizeLinear whose output does not feed a DequantizeLinear",
    "dq-input": "DequantizeLinear whose input is neither a QuantizeLinear output nor a constant",
    "fp16-qdq-opset": "Q/DQ on a float16 tensor below opset 19 (invalid ONNX)",
}


class QdqCheckError(TrtbuildError):
    """A Q/DQ model that TensorRT would reject or misread."""


@dataclass(frozen=True)
class Violation:
    rule: str
    node: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.node}: {self.message}"


@dataclass
class QdqReport:
    """The checker's verdict on one model for one target TensorRT."""

    target_trt: str
    opset: int
    quantize_nodes: int = 0
    dequantize_nodes: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def rules_broken(self) -> dict[str, int]:
        return dict(Counter(v.rule for v in self.violations))

    def summary(self) -> str:
        head = (
            f"{self.quantize_nodes} QuantizeLinear + {self.dequantize_nodes} DequantizeLinear, opset {self.opset}, "
            f"target TensorRT {self.target_trt}"
        )
        if self.ok:
            return f"{head}: TensorRT-compatible"
        broken = ", ".join(f"{rule} x{n}" for rule, n in self.rules_broken.items())
        return f"{head}: {len(self.violations)} violation(s) ({broken})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_trt": self.target_trt,
            "opset": self.opset,
            "quantize_nodes": self.quantize_nodes,
            "dequantize_nodes": self.dequantize_nodes,
            "ok": self.ok,
            "rules_broken": self.rules_broken,
            "violations": [v.__dict__ for v in self.violations],
        }

    def raise_if_failed(self, what: str = "The model") -> None:
        if self.ok:
            return
        shown = "; ".join(str(v) for v in self.violations[:8])
        more = f" (and {len(self.violations) - 8} more)" if len(self.violations) > 8 else ""
        raise QdqCheckError(
            f"{what} is not TensorRT-compatible Q/DQ for TensorRT {self.target_trt}: {shown}{more}. "
            "Quantize it again with `trtbuild quantize` (symmetric int8, zero point 0, no bias quantization), or "
            "with ONNX Runtime's quantize_static using ActivationSymmetric=True, WeightSymmetric=True, "
            "QuantizeBias=False and QuantType.QInt8."
        )


def parse_target_trt(target: str | int | float | tuple[int, int] | None) -> tuple[int, int]:
    """``"8.6"``, ``10``, ``"11"``, ``"10.15"`` or ``(10, 3)`` -> (major, minor); None means 10."""
    if target is None:
        return (10, 0)
    if isinstance(target, tuple):
        return (int(target[0]), int(target[1]))
    text = str(target).strip().lower().removeprefix("trt").removeprefix("tensorrt").strip()
    parts = text.split(".")
    try:
        major = int(parts[0])
        minor = int(parts[1]) if len(parts) > 1 and parts[1] not in ("", "x") else 0
    except ValueError:
        raise QdqCheckError(f"Cannot read the TensorRT version '{target}'; use 8.6, 10 or 11 (or 10.15).") from None
    if major < 8 or major == 9:
        raise QdqCheckError(f"TensorRT {target} is not a supported target; use 8.6, 10 or 11.")
    return (major, minor)


def format_target(target: tuple[int, int]) -> str:
    return f"{target[0]}.{target[1]}" if target[0] == 8 or target[1] else str(target[0])


def max_opset(target: str | int | tuple[int, int] | None) -> int:
    version = parse_target_trt(target)
    best = min(MAX_OPSET.values())
    for key in sorted(MAX_OPSET):
        if key <= version:
            best = MAX_OPSET[key]
    return best


def default_opset(model: onnx.ModelProto) -> int:
    return next((int(o.version) for o in model.opset_import if o.domain in STANDARD_DOMAINS), 0)


def check_qdq(model: onnx.ModelProto | str | os.PathLike[str], target_trt: str | int | tuple[int, int] | None = None) -> QdqReport:
    """Check a Q/DQ model against TensorRT's rules for ``target_trt`` (8.6, 10 or 11)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    if not isinstance(model, onnx.ModelProto):
        from trtbuild.model.load import load_onnx

        model = load_onnx(model)
    target = parse_target_trt(target_trt)
    graph = model.graph
    opset = default_opset(model)
    report = QdqReport(target_trt=format_target(target), opset=opset)

    constants: dict[str, Any] = {t.name: t for t in graph.initializer}
    producers: dict[str, Any] = {}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for out in node.output:
            producers[out] = node
        for inp in node.input:
            consumers.setdefault(inp, []).append(node)
        if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS:
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = attr.t
    graph_outputs = {o.name for o in graph.output}
    value_types = _value_types(model)

    limit = max_opset(target)
    if opset > limit:
        report.violations.append(
            Violation(
                "opset",
                "(model)",
                f"opset {opset} is beyond TensorRT {report.target_trt}'s parser (up to opset {limit}); "
                "export with a lower opset or keep the quantizer from raising it (modelopt always writes >= 19).",
            )
        )

    def add(rule: str, node: Any, message: str) -> None:
        report.violations.append(Violation(rule, node.name or f"{node.op_type}({node.output[0]})", message))

    def const_array(name: str) -> Any:
        tensor = constants.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)

    int4_ok = target[0] >= 10
    for node in graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        if node.op_type == "QuantizeLinear":
            report.quantize_nodes += 1
        else:
            report.dequantize_nodes += 1
        if node.domain not in STANDARD_DOMAINS:
            add("domain", node, f"{node.op_type} is in the domain '{node.domain}'; TensorRT reads only the standard one.")
            continue
        data_input = node.input[0]
        scale_name = node.input[1] if len(node.input) > 1 else ""
        zp_name = node.input[2] if len(node.input) > 2 else ""
        scale = const_array(scale_name) if scale_name else None
        zero_point = const_array(zp_name) if zp_name else None

        if scale is None:
            add("scale", node, f"scale '{scale_name}' is not a constant initializer.")
        elif not np.all(np.asarray(scale, dtype=np.float64) > 0):
            add("scale", node, f"scale '{scale_name}' has values <= 0.")
        if zp_name and zero_point is None:
            add("scale", node, f"zero point '{zp_name}' is not a constant initializer.")

        # The quantized type: the zero point's type, else the DQ input's / Q output's declared type.
        quant_type = _elem_type_of(constants.get(zp_name)) if zp_name in constants else None
        if quant_type is None:
            probe = data_input if node.op_type == "DequantizeLinear" else node.output[0]
            quant_type = value_types.get(probe)
        if quant_type is None and not zp_name:
            quant_type = onnx.TensorProto.UINT8 if opset < 19 else None  # ONNX default for a missing zero point
        is_weight = node.op_type == "DequantizeLinear" and data_input in constants
        if quant_type == onnx.TensorProto.INT32:
            add("int32-bias", node, f"dequantizes the INT32 tensor '{data_input}' (bias quantization); keep the bias float.")
        elif quant_type is not None and not _allowed_type(quant_type, is_weight=is_weight, int4_ok=int4_ok):
            type_name = onnx.TensorProto.DataType.Name(quant_type).lower()
            add("type", node, f"quantizes to {type_name}; TensorRT takes int8 (or fp8) here.")
        if zero_point is not None and zero_point.size and np.any(np.asarray(zero_point).astype(np.float64) != 0):
            values = np.unique(np.asarray(zero_point).astype(np.float64))[:4].tolist()
            add(
                "zero-point",
                node,
                f"zero point '{zp_name}' is {values} (asymmetric); TensorRT needs 0: quantize symmetrically "
                "(ActivationSymmetric=True, WeightSymmetric=True).",
            )

        per_channel = scale is not None and np.asarray(scale).size > 1
        source_is_constant = data_input in constants or _is_weight_chain(data_input, producers, constants)
        if per_channel and node.op_type == "QuantizeLinear" and not source_is_constant:
            add("per-channel-activation", node, f"per-channel scale on the activation '{data_input}'.")

        if node.op_type == "QuantizeLinear":
            users = consumers.get(node.output[0], [])
            bad = [u for u in users if u.op_type != "DequantizeLinear"]
            if bad or node.output[0] in graph_outputs or not users:
                others = ", ".join(f"{u.op_type} '{u.name}'" for u in bad) or "a graph output"
                add("unpaired", node, f"its output feeds {others}, not a DequantizeLinear.")
        else:
            source = producers.get(data_input)
            from_q = source is not None and source.op_type == "QuantizeLinear"
            if not from_q and data_input not in constants:
                add("dq-input", node, f"input '{data_input}' comes from {source.op_type if source else 'a graph input'}.")

        float_type = value_types.get(data_input if node.op_type == "QuantizeLinear" else node.output[0])
        if float_type == onnx.TensorProto.FLOAT16 and opset < 19:
            add("fp16-qdq-opset", node, f"float16 {node.op_type} needs opset 19 (the model has {opset}).")
    return report


def _allowed_type(elem_type: int, *, is_weight: bool, int4_ok: bool) -> bool:
    import onnx

    allowed = {onnx.TensorProto.INT8, onnx.TensorProto.FLOAT8E4M3FN}
    if int4_ok and is_weight:
        allowed.add(onnx.TensorProto.INT4)
    return elem_type in allowed


def _elem_type_of(tensor: Any) -> int | None:
    return None if tensor is None else int(tensor.data_type)


def _is_weight_chain(name: str, producers: dict[str, Any], constants: dict[str, Any]) -> bool:
    """A tensor computed only from constants (e.g. a Transpose of a weight) counts as a weight."""
    seen: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen or current in constants:
            continue
        seen.add(current)
        node = producers.get(current)
        if node is None:
            return False
        stack.extend(i for i in node.input if i)
    return True


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every typed tensor (declared, or from shape inference when it succeeds)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # inference is a help here, never a requirement
        inferred = model
    types: dict[str, int] = {}
    for value in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
            types[value.name] = int(value.type.tensor_type.elem_type)
    for tensor in model.graph.initializer:
        types[tensor.name] = int(tensor.data_type)
    return types


def has_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QDQ_OPS for n in model.graph.node)
