"""The TensorRT Q/DQ checker: every rule fires on a model built to break it, and only then."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtbuild.model.qdq_check import QdqCheckError, check_qdq, max_opset, parse_target_trt


def conv_model(
    *,
    act_zp: int = 0,
    act_type: int = TensorProto.INT8,
    domain: str = "",
    opset: int = 17,
    bias_int32: bool = False,
    scale_from_input: bool = False,
    per_channel_act: bool = False,
    unpaired: bool = False,
    int4_weight: bool = False,
) -> onnx.ModelProto:
    """x -> Q -> DQ -> Conv(w: Q/DQ or int8 + DQ) -> y, with one rule broken on request."""
    np_type = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8}[act_type]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])]
    inits = [
        numpy_helper.from_array(np.full(4 if per_channel_act else (), 0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.full(4 if per_channel_act else (), act_zp, np_type), "x_zp"),
        numpy_helper.from_array(np.full((4,), 0.01, np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(4, np.int8), "w_zp"),
    ]
    q_attrs = {"axis": 1} if per_channel_act else {}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q_x", domain=domain, **q_attrs),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xd"], name="dq_x", domain=domain, **q_attrs),
    ]
    if int4_weight:
        inits.append(helper.make_tensor("w_q", TensorProto.INT4, [4, 4, 3, 3], np.ones(144, np.int8).tolist()))
        inits[3] = helper.make_tensor("w_zp", TensorProto.INT4, [4], [0, 0, 0, 0])
        nodes.append(helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["wd"], name="dq_w", axis=0))
    else:
        inits.append(numpy_helper.from_array(np.ones((4, 4, 3, 3), np.int8), "w_q"))
        nodes.append(helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["wd"], name="dq_w", axis=0))
    conv_inputs = ["xd", "wd"]
    if bias_int32:
        inits += [numpy_helper.from_array(np.ones(4, np.int32), "b_q"),
                  numpy_helper.from_array(np.full((4,), 2e-4, np.float32), "b_scale"),
                  numpy_helper.from_array(np.zeros(4, np.int32), "b_zp")]  # fmt: skip
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zp"], ["bd"], name="dq_b", axis=0))
        conv_inputs.append("bd")
    nodes.append(helper.make_node("Conv", conv_inputs, ["y"], name="conv", pads=[1, 1, 1, 1]))
    if scale_from_input:
        inputs.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, []))
        nodes[0].input[1] = "s"
    if unpaired:
        nodes.append(helper.make_node("Relu", ["xq"], ["r"], name="relu_on_int8"))
        outputs.append(helper.make_tensor_value_info("r", act_type, [1, 4, 8, 8]))
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph(nodes, "qdq", inputs, outputs, inits), opset_imports=opsets)
    model.ir_version = 8 if opset <= 17 else 10
    return model


def rules(model: onnx.ModelProto, target: str = "10") -> dict[str, int]:
    return check_qdq(model, target).rules_broken


def test_a_trt_style_model_passes() -> None:
    report = check_qdq(conv_model(), "8.6")
    assert report.ok and report.quantize_nodes == 1 and report.dequantize_nodes == 2
    assert "TensorRT-compatible" in report.summary()
    report.raise_if_failed()


def test_nonzero_zero_point_is_asymmetric() -> None:
    report = check_qdq(conv_model(act_zp=3), "10")
    assert report.rules_broken == {"zero-point": 2}
    assert "asymmetric" in report.violations[0].message and report.violations[0].node == "q_x"
    with pytest.raises(QdqCheckError, match=r"zero-point.*q_x"):
        report.raise_if_failed()


def test_uint8_is_named() -> None:
    assert rules(conv_model(act_type=TensorProto.UINT8, act_zp=128)) == {"type": 2, "zero-point": 2}


def test_int32_bias_dequantization() -> None:
    assert rules(conv_model(bias_int32=True)) == {"int32-bias": 1}


def test_contrib_domain() -> None:
    assert rules(conv_model(domain="com.microsoft")) == {"domain": 2}


def test_scale_must_be_a_constant() -> None:
    assert rules(conv_model(scale_from_input=True)) == {"scale": 1}


def test_per_channel_activation() -> None:
    assert rules(conv_model(per_channel_act=True)) == {"per-channel-activation": 1}


def test_quantize_must_feed_dequantize() -> None:
    assert rules(conv_model(unpaired=True)) == {"unpaired": 1}


def test_opset_beyond_the_target() -> None:
    model = conv_model(opset=19)
    assert rules(model, "8.6") == {"opset": 1}
    assert rules(model, "10") == {}
    assert "up to opset 17" in check_qdq(model, "8.6").violations[0].message


def test_int4_weights_need_trt10() -> None:
    model = conv_model(int4_weight=True, opset=21)
    assert rules(model, "11") == {}
    assert rules(model, "10.15") == {}
    assert rules(model, "8.6") == {"opset": 1, "type": 1}


def test_dequantize_of_a_graph_input() -> None:
    model = conv_model()
    model.graph.input.append(helper.make_tensor_value_info("xi", TensorProto.INT8, [1, 4, 8, 8]))
    model.graph.node[1].input[0] = "xi"
    assert rules(model) == {"dq-input": 1, "unpaired": 1}


def test_float16_qdq_below_opset_19() -> None:
    model = conv_model()
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    assert rules(model)["fp16-qdq-opset"] == 1


def test_onnxruntime_default_quantization_is_rejected(resnet_onnx: Path, tmp_path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{"input": np.random.default_rng(i).random((1, 3, 224, 224), dtype=np.float32)} for i in range(2)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    path = tmp_path / "default.onnx"
    quantize_static(str(resnet_onnx), str(path), Reader())
    broken = check_qdq(path, "10").rules_broken
    assert broken["zero-point"] > 0 and broken["int32-bias"] > 0
    path_u8 = tmp_path / "u8.onnx"
    quantize_static(str(resnet_onnx), str(path_u8), Reader(), activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QUInt8)  # fmt: skip
    assert check_qdq(path_u8, "10").rules_broken["type"] > 0


def test_target_parsing() -> None:
    assert parse_target_trt("8.6") == (8, 6)
    assert parse_target_trt(10) == (10, 0)
    assert parse_target_trt("10.15") == (10, 15)
    assert parse_target_trt("11") == (11, 0)
    assert parse_target_trt("TensorRT 10.x") == (10, 0)
    assert (max_opset("8.6"), max_opset("10"), max_opset("10.8"), max_opset("10.15"), max_opset("11")) == (17, 20, 20, 24, 24)
    for bad in ("nine", "7", "9.1"):
        with pytest.raises(QdqCheckError):
            parse_target_trt(bad)
