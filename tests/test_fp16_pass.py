"""trtbuild's FP16 graph pass on the graph shapes that broke converters on third-party exports."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtbuild.errors import TrtbuildError
from trtbuild.model.fp16 import Fp16Error, cast_fp16, run_subprocess
from trtbuild.model.fp16_pass import convert_to_fp16

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _model(nodes: list, inputs: list, outputs: list, inits: list | None = None, opset: int = 17) -> onnx.ModelProto:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits or []),
                              opset_imports=[helper.make_opsetid("", opset)])  # fmt: skip
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def _valid_and_close(model: onnx.ModelProto, feed: dict[str, np.ndarray], tolerance: float = 2e-3) -> onnx.ModelProto:
    converted, stats = convert_to_fp16(model)
    assert stats.converted > 0
    onnx.checker.check_model(onnx.shape_inference.infer_shapes(converted, strict_mode=True), full_check=True)
    for want, got in zip(_run(model, feed), _run(converted, feed)):
        assert got.dtype == want.dtype  # the interface keeps its FP32 types
        assert np.max(np.abs(got - want)) <= tolerance * max(1.0, float(np.max(np.abs(want))))
    return converted


def test_cast_to_float_in_anchor_code_is_retargeted() -> None:
    # YOLOv8's anchors: Range (int) -> Cast(to=FLOAT) -> arithmetic with activations.
    nodes = [
        helper.make_node("Range", ["start", "limit", "delta"], ["grid_i"]),
        helper.make_node("Cast", ["grid_i"], ["grid"], to=F),
        helper.make_node("Add", ["grid", "half"], ["centre"]),
        helper.make_node("Mul", ["x", "centre"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("start", 0), ("limit", 8), ("delta", 1))]
    inits.append(numpy_helper.from_array(np.array(0.5, np.float32), "half"))
    model = _model(nodes, [helper.make_tensor_value_info("x", F, [2, 8])], [helper.make_tensor_value_info("y", F, [2, 8])], inits)
    converted = _valid_and_close(model, {"x": np.random.default_rng(0).random((2, 8), dtype=np.float32)})
    cast = next(n for n in converted.graph.node if n.name == "" and n.op_type == "Cast" and "grid_i" in n.input)
    assert cast.attribute[0].i == TensorProto.FLOAT16


def test_graph_output_read_inside_the_graph_keeps_its_name_and_type() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Mul", ["a", "a"], ["b"])]
    outputs = [helper.make_tensor_value_info("a", F, [4]), helper.make_tensor_value_info("b", F, [4])]
    model = _model(nodes, [helper.make_tensor_value_info("x", F, [4])], outputs)
    converted = _valid_and_close(model, {"x": np.linspace(-1, 1, 4, dtype=np.float32)})
    assert [o.name for o in converted.graph.output] == ["a", "b"]


def test_fixed_float_inputs_stay_fp32() -> None:
    # Resize's `scales` is tensor(float) in every opset, whatever the data type.
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")]
    inits = [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    model = _model(nodes, [helper.make_tensor_value_info("x", F, [1, 1, 4, 4])],
                   [helper.make_tensor_value_info("y", F, [1, 1, 8, 8])], inits)  # fmt: skip
    converted = _valid_and_close(model, {"x": np.random.default_rng(1).random((1, 1, 4, 4), dtype=np.float32)})
    assert next(t for t in converted.graph.initializer if t.name == "scales").data_type == F


def test_if_bodies_are_converted_and_read_outer_values_in_fp32() -> None:
    def branch(name: str, factor: float) -> onnx.GraphProto:
        const = numpy_helper.from_array(np.array(factor, np.float32), f"{name}_k")
        node = helper.make_node("Mul", ["h", f"{name}_k"], [f"{name}_out"])
        return helper.make_graph([node], name, [], [helper.make_tensor_value_info(f"{name}_out", F, [3])], [const])

    nodes = [
        helper.make_node("Relu", ["x"], ["h"]),
        helper.make_node("If", ["flag"], ["y"], then_branch=branch("then", 2.0), else_branch=branch("else", 3.0)),
    ]
    inputs = [helper.make_tensor_value_info("x", F, [3]), helper.make_tensor_value_info("flag", TensorProto.BOOL, [])]
    model = _model(nodes, inputs, [helper.make_tensor_value_info("y", F, [3])])
    for flag in (True, False):
        _valid_and_close(model, {"x": np.array([0.5, -1, 2], np.float32), "flag": np.array(flag)})


def test_constant_node_beyond_fp16_keeps_its_consumer_fp32(tmp_path: Path) -> None:
    # Paddle exports hold BatchNorm statistics in Constant nodes; a variance of 9.8e7 is inf in FP16.
    consts = {"scale": 1.0, "bias": 0.0, "mean": 0.0, "var": 9.8e7}
    nodes = [helper.make_node("Constant", [], [n], value=numpy_helper.from_array(np.full(2, v, np.float32), n))
             for n, v in consts.items()]  # fmt: skip
    nodes += [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["bn"], name="bn"),
              helper.make_node("Relu", ["bn"], ["y"], name="relu")]  # fmt: skip
    model = _model(nodes, [helper.make_tensor_value_info("x", F, [1, 2, 4, 4])], [helper.make_tensor_value_info("y", F, [1, 2, 4, 4])])
    converted, stats = convert_to_fp16(model)
    assert "bn" in stats.fp32_nodes and "relu" in stats.fp16_nodes
    x = np.random.default_rng(2).random((1, 2, 4, 4), dtype=np.float32) * 1e4
    (want,), (got,) = _run(model, {"x": x}), _run(converted, {"x": x})
    assert np.all(np.isfinite(got)) and np.max(np.abs(got - want)) < 1e-3 * np.max(np.abs(want))


def test_already_quantized_models_are_refused(tmp_path: Path) -> None:
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]  # fmt: skip
    model = _model(nodes, [helper.make_tensor_value_info("x", F, [4])], [helper.make_tensor_value_info("y", F, [4])])
    path = tmp_path / "q.onnx"
    onnx.save(model, str(path))
    with pytest.raises(Fp16Error, match="already quantized"):
        cast_fp16(path, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_a_converter_that_hangs_is_stopped() -> None:
    with pytest.raises(TrtbuildError, match="did not finish within 1 s"):
        run_subprocess([sys.executable, "-c", "import time; time.sleep(30)"], "the converter", timeout=1)
