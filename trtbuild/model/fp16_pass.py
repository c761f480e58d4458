"""trtbuild's own FP32 → FP16 graph pass: per-node precision, Casts only at precision boundaries.

Why not a library: onnxconverter-common 1.16 retypes tensors without fixing ``Cast(to=FLOAT)`` nodes,
leaves stale ``value_info`` behind, breaks graph outputs that are also consumed inside the graph and
can loop forever on some block lists; ModelOpt AutoCast fails on common exports as shipped (see
docs/precision.md for the measurements). This pass is small and follows one rule the ONNX schemas
give: a node computes in FP16 when every float type parameter it binds allows ``tensor(float16)``;
inputs whose type is fixed (``Resize`` scales, ...) stay FP32.

Naming keeps the model's interface and scoping intact: a tensor's original name always holds its
FP32 value (its FP16 value with ``keep_io_types=False`` for graph inputs/outputs); an FP16 node writes
``NAME__fp16`` and a Cast restores ``NAME`` only where an FP32 consumer, a graph output or an
``If``/``Loop``/``Scan`` body still reads it. Subgraphs are converted with the same rule.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

FLOAT = 1
FLOAT16 = 10
FP16_MAX = 65504.0

#: ops kept FP32 by default: index/shape arithmetic whose float values exceed FP16's integer range
#: (Range, CumSum), sort/selection ops whose ties move under rounding (TopK, NonMaxSuppression) and RoiAlign.
DEFAULT_OP_BLOCK_LIST = ("Range", "CumSum", "TopK", "NonMaxSuppression", "RoiAlign")
#: ops whose float output type is set by an attribute, not by an input: they stay as they are
_ATTRIBUTE_TYPED = {
    "ConstantOfShape", "EyeLike", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
    "Multinomial", "Bernoulli", "Constant",
}  # fmt: skip
_SUBGRAPH_OPS = {"If", "Loop", "Scan"}
QUANTIZED_OPS = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger",
    "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool",
    "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat", "QGemm", "QAttention", "MatMulNBits", "DequantizeBFP", "QuantizeBFP",
}  # fmt: skip


@dataclass
class PassStats:
    fp16_nodes: list[str] = field(default_factory=list)
    fp32_nodes: dict[str, str] = field(default_factory=dict)  # node -> why it stayed FP32
    casts_added: int = 0
    constants_converted: int = 0

    @property
    def converted(self) -> int:
        return len(self.fp16_nodes)


def quantized_ops(model: onnx.ModelProto) -> list[str]:
    """Op types that mark an already-quantized model, wherever they sit (subgraphs included)."""
    return sorted({node.op_type for node in iter_nodes(model.graph) if node.op_type in QUANTIZED_OPS})


def iter_nodes(graph: onnx.GraphProto) -> Iterable[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for sub in subgraphs(node):
            yield from iter_nodes(sub)


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    import onnx

    found: list[onnx.GraphProto] = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            found.append(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            found.extend(attr.graphs)
    return found


def outer_references(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph reads from enclosing scopes."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.name for t in graph.sparse_initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(n for n in node.input if n)
        for sub in subgraphs(node):
            used |= outer_references(sub)
        defined.update(node.output)
    used.update(o.name for o in graph.output)
    return used - defined


def tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor shape inference can type, subgraphs included (names are unique in ONNX)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    types: dict[str, int] = {}

    def visit(graph: onnx.GraphProto) -> None:
        for value in [*graph.input, *graph.output, *graph.value_info]:
            if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
                types[value.name] = value.type.tensor_type.elem_type
        for tensor in graph.initializer:
            types[tensor.name] = tensor.data_type
        for node in graph.node:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                        types[node.output[0]] = attr.t.data_type
            for sub in subgraphs(node):
                visit(sub)

    visit(inferred.graph)
    return types


def _default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def convert_to_fp16(
    model: onnx.ModelProto,
    *,
    keep_io_types: bool = True,
    op_block_list: Collection[str] = DEFAULT_OP_BLOCK_LIST,
    node_block_list: Collection[str] = (),
    known_types: Mapping[str, int] | None = None,
) -> tuple[onnx.ModelProto, PassStats]:
    """Return an FP16 copy of ``model`` and what was converted; ``model`` is not modified.

    ``known_types`` adds element types for tensors shape inference cannot type (e.g. measured by
    running the model); a node touching a tensor of unknown type stays FP32.
    """
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    types = tensor_types(out)
    if known_types:
        for name, elem in known_types.items():
            types.setdefault(name, elem)
    state = _PassState(
        opset=_default_opset(out),
        types=types,
        op_block=set(op_block_list),
        node_block=set(node_block_list),
        taken=_all_names(out.graph),
    )
    _convert_graph(out.graph, state, main=True, keep_io_types=keep_io_types)
    _refresh_types(out, keep_io_types)
    return out, state.stats


@dataclass
class _PassState:
    opset: int
    types: dict[str, int]
    op_block: set[str]
    node_block: set[str]
    taken: set[str]
    stats: PassStats = field(default_factory=PassStats)

    def fresh(self, base: str) -> str:
        name = base
        index = 1
        while name in self.taken:
            name = f"{base}_{index}"
            index += 1
        self.taken.add(name)
        return name


def _all_names(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {o.name for o in graph.output}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
        for sub in subgraphs(node):
            names |= _all_names(sub)
    return names


class _Scope:
    """Per graph: where each float tensor's FP32 and FP16 values live, and the nodes emitted so far."""

    def __init__(self, graph: onnx.GraphProto, state: _PassState, fp16_home: set[str]) -> None:
        self.state = state
        self.fp16_home = fp16_home  # names whose original name holds FP16 (graph I/O with --fp16-io)
        self.produced16: dict[str, str] = {}  # tensor -> name holding its FP16 value
        self.produced32: dict[str, str] = {}  # tensor -> name holding its FP32 value
        self.initializers = {t.name: t for t in graph.initializer}
        self.constants: dict[str, onnx.NodeProto] = {}
        self.emitted: list[onnx.NodeProto] = []
        self.new_initializers: list[onnx.TensorProto] = []
        for value in graph.input:
            if state.types.get(value.name) == FLOAT:
                (self.produced16 if value.name in fp16_home else self.produced32)[value.name] = value.name
        for tensor in graph.initializer:
            self.produced32.setdefault(tensor.name, tensor.name)

    def version(self, name: str, want16: bool) -> str:
        """The name holding ``name``'s value in the wanted precision, adding a Cast or a constant if needed."""
        import onnx

        have = self.produced16 if want16 else self.produced32
        if name in have:
            return have[name]
        if want16:
            converted = self._constant16(name)
            if converted is not None:
                have[name] = converted
                self.produced32.setdefault(name, name)
                return converted
        # Not registered: an outer-scope tensor, which holds FP32 under its own name.
        source = (self.produced32 if want16 else self.produced16).get(name, name)
        home = want16 == (name in self.fp16_home)
        target = name if home and source != name else self.state.fresh(f"{name}__fp16" if want16 else f"{name}__fp32")
        cast = onnx.helper.make_node(
            "Cast", [source], [target], name=self.state.fresh(f"{target}_cast"), to=FLOAT16 if want16 else FLOAT
        )
        self.emitted.append(cast)
        self.state.stats.casts_added += 1
        have[name] = target
        (self.produced16 if not want16 else self.produced32).setdefault(name, source)
        return target

    def _constant16(self, name: str) -> str | None:
        """An FP16 copy of an initializer or Constant output (no run-time Cast for weights)."""
        import numpy as np
        import onnx
        from onnx import numpy_helper

        tensor = self.initializers.get(name)
        if tensor is None and name in self.constants:
            tensor = next((a.t for a in self.constants[name].attribute if a.name == "value"), None)
        if tensor is None or tensor.data_type != FLOAT:
            return None
        array = numpy_helper.to_array(tensor)
        half = np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)
        target = self.state.fresh(f"{name}__fp16")
        if name in self.initializers:
            self.new_initializers.append(numpy_helper.from_array(half, target))
        else:
            self.emitted.append(
                onnx.helper.make_node(
                    "Constant", [], [target], name=self.state.fresh(f"{target}_const"),
                    value=numpy_helper.from_array(half, target),
                )  # fmt: skip
            )
        self.state.stats.constants_converted += 1
        return target


def _convert_graph(graph: onnx.GraphProto, state: _PassState, *, main: bool, keep_io_types: bool) -> None:
    fp16_home: set[str] = set()
    if main and not keep_io_types:
        fp16_home = {v.name for v in [*graph.input, *graph.output] if state.types.get(v.name) == FLOAT}
    scope = _Scope(graph, state, fp16_home)
    for node in list(graph.node):
        if node.op_type == "Constant":
            scope.constants[node.output[0]] = node
        for sub in subgraphs(node):
            _convert_graph(sub, state, main=False, keep_io_types=True)
        plan = _fp16_positions(node, state, scope)
        if isinstance(plan, str):
            state.stats.fp32_nodes[node.name or node.op_type] = plan
            _wire_fp32(node, scope, state)
        else:
            _wire_fp16(node, plan, scope, state)
        scope.emitted.append(node)
    # Graph outputs (and, for subgraph bodies, their outputs) read their home precision.
    for value in graph.output:
        if state.types.get(value.name) != FLOAT:
            continue
        holder = scope.version(value.name, value.name in fp16_home)
        if holder != value.name:
            raise AssertionError(f"graph output '{value.name}' lost its name in the FP16 pass")
    del graph.node[:]
    graph.node.extend(scope.emitted)
    graph.initializer.extend(scope.new_initializers)
    _drop_unused_initializers(graph)


def _wire_fp32(node: onnx.NodeProto, scope: _Scope, state: _PassState) -> None:
    """An FP32 node (or If/Loop/Scan) reads FP32 values, including those its bodies read from outside."""
    for index, name in enumerate(node.input):
        if name and state.types.get(name) == FLOAT:
            node.input[index] = scope.version(name, False)
    for sub in subgraphs(node):
        for name in sorted(outer_references(sub)):
            if state.types.get(name) == FLOAT and name not in scope.fp16_home:
                holder = scope.version(name, False)
                assert holder == name, "the FP32 value of a tensor keeps its name"
    for index, name in enumerate(node.output):
        if name in scope.fp16_home:  # an FP16 graph output computed in FP32: cast at the end
            node.output[index] = scope.produced32[name] = state.fresh(f"{name}__fp32")
        elif name:
            scope.produced32[name] = name


def _wire_fp16(node: onnx.NodeProto, plan: tuple[set[int], set[int]], scope: _Scope, state: _PassState) -> None:
    inputs16, outputs16 = plan
    for index, name in enumerate(node.input):
        if not name or state.types.get(name) != FLOAT:
            continue
        node.input[index] = scope.version(name, index in inputs16)
    if node.op_type == "Cast":
        for attr in node.attribute:
            if attr.name == "to":
                attr.i = FLOAT16
    for index, name in enumerate(node.output):
        if not name:
            continue
        if index in outputs16:
            holder = name if name in scope.fp16_home else state.fresh(f"{name}__fp16")
            node.output[index] = holder
            scope.produced16[name] = holder
        elif name in scope.fp16_home:
            node.output[index] = scope.produced32[name] = state.fresh(f"{name}__fp32")
        else:
            scope.produced32[name] = name
    state.stats.fp16_nodes.append(node.name or node.op_type)


def _fp16_positions(node: onnx.NodeProto, state: _PassState, scope: _Scope) -> tuple[set[int], set[int]] | str:
    """(inputs, outputs) that become FP16 if the node can compute in FP16, else why it stays FP32."""
    import onnx

    if node.domain not in ("", "ai.onnx"):
        return f"op domain '{node.domain}'"
    if node.op_type in _SUBGRAPH_OPS:
        return "control flow (its bodies are converted on their own)"
    if node.op_type in _ATTRIBUTE_TYPED:
        return "output type set by an attribute"
    if node.op_type in state.op_block:
        return "op type kept FP32"
    if node.name in state.node_block:
        return "node kept FP32"
    if node.op_type == "Cast":
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        source = state.types.get(node.input[0]) if node.input else None
        if to != FLOAT or source is None:
            return "Cast to a non-float type"  # float → int keeps FP32's integer range
        return ({0} if source == FLOAT else set(), {0})
    try:
        schema = onnx.defs.get_schema(node.op_type, state.opset, "")
    except onnx.defs.SchemaError:
        return "no ONNX schema"
    formal_in = list(schema.inputs)
    formal_out = list(schema.outputs)
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}

    def formal(params: list[Any], index: int) -> Any:
        if index < len(params):
            return params[index]
        last = params[-1] if params else None
        return last if last is not None and last.option == onnx.defs.OpSchema.FormalParameterOption.Variadic else None

    bound: dict[str, int] = {}
    float_in: dict[int, str] = {}
    for index, name in enumerate(node.input):
        if not name:
            continue
        param = formal(formal_in, index)
        elem = state.types.get(name)
        if param is None:
            return "more inputs than its schema"
        if elem is None:
            return f"input '{name}' has an unknown type"
        if param.type_str in allowed:
            bound.setdefault(param.type_str, elem)
            if elem == FLOAT:
                float_in[index] = param.type_str
            constant = name in scope.initializers or name in scope.constants
            if elem == FLOAT and constant and _constant_peak(scope, name) > FP16_MAX:
                return f"constant '{name}' holds values beyond FP16's range"
    convertible = {p for p, e in bound.items() if e == FLOAT and "tensor(float16)" in allowed[p]}
    outputs16: set[int] = set()
    for index, name in enumerate(node.output):
        if not name:
            continue
        param = formal(formal_out, index)
        elem = state.types.get(name)
        if param is None:
            return "more outputs than its schema"
        if elem is None:
            return f"output '{name}' has an unknown type"
        if param.type_str in convertible and elem == FLOAT:
            outputs16.add(index)
        elif elem == FLOAT and param.type_str in allowed and param.type_str not in bound:
            return "float output type not fixed by its inputs"
    inputs16 = {i for i, p in float_in.items() if p in convertible}
    if not inputs16 and not outputs16:
        return "no float tensor to convert"
    return inputs16, outputs16


def _constant_peak(scope: _Scope, name: str) -> float:
    import numpy as np
    from onnx import numpy_helper

    tensor = scope.initializers.get(name)
    if tensor is None:
        node = scope.constants[name]
        tensor = next((a.t for a in node.attribute if a.name == "value"), None)
    if tensor is None:
        return 0.0
    array = numpy_helper.to_array(tensor)
    return float(np.max(np.abs(array))) if array.size else 0.0


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used: set[str] = set(o.name for o in graph.output)
    for node in graph.node:
        used.update(node.input)
        for sub in subgraphs(node):
            used |= outer_references(sub)
    keep = [t for t in graph.initializer if t.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


def clear_value_info(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop every ``value_info`` (subgraphs included): stale FP32 entries make a converted model invalid."""

    def clear(graph: onnx.GraphProto) -> None:
        del graph.value_info[:]
        for node in graph.node:
            for sub in subgraphs(node):
                clear(sub)

    clear(model.graph)
    return model


def _refresh_types(model: onnx.ModelProto, keep_io_types: bool) -> None:
    """Drop stale value_info (inferred again on save) and retype graph I/O for --fp16-io."""
    clear_value_info(model)
    if not keep_io_types:
        for value in [*model.graph.input, *model.graph.output]:
            if value.type.tensor_type.elem_type == FLOAT:
                value.type.tensor_type.elem_type = FLOAT16
