"""ONNX inspection: I/O with symbolic dims, ops, external data safety, ops TensorRT cannot parse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtbuild.cli import main
from trtbuild.errors import ModelError
from trtbuild.model.inspect import ORT_ONLY_KEY, inspect_model
from trtbuild.plan import plan_build
from trtbuild.spec import BuildSpec


def _add_model(domain: str = "", op: str = "Add") -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    weight = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    node = helper.make_node(op, ["x", "w"], ["y"], domain=domain)
    imports = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(helper.make_graph([node], "g", [x], [y], [weight]), opset_imports=imports)


def test_inspect_reports_io_ops_and_checker(yolo_onnx: Path) -> None:
    report = inspect_model(yolo_onnx)
    assert report.inputs[0].dims == ("batch", 3, "height", "width")
    assert report.opset == 17 and report.checker == "ok" and report.trt_parsable
    assert report.op_histogram["Conv"] == 8 and report.node_count == sum(report.op_histogram.values())
    assert report.initializer_bytes > 0 and report.external_data == []


def test_zoo_names_work_wherever_a_model_does() -> None:
    assert inspect_model("zoo:two_input").inputs[1].name == "scale"
    with pytest.raises(ModelError, match="no zoo model 'nope'.*yolo"):
        inspect_model("zoo:nope")


def test_external_data_loads_from_the_model_folder(tmp_path: Path) -> None:
    model = _add_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="m.data", size_threshold=0)
    report = inspect_model(path)
    assert report.external_data == ["m.data"]


def test_external_data_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    model = _add_model()
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="m.data", size_threshold=0)
    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../../etc/passwd"
    onnx.save(proto, path)
    with pytest.raises(ModelError, match="outside the model's folder"):
        inspect_model(path)


def test_missing_external_data_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_add_model(), path, save_as_external_data=True, location="m.data", size_threshold=0)
    (tmp_path / "m.data").unlink()
    with pytest.raises(ModelError, match="m.data.*missing"):
        inspect_model(path)


def test_nonstandard_ops_are_flagged_and_build_refuses(tmp_path: Path) -> None:
    path = tmp_path / "fused.onnx"
    onnx.save(_add_model("com.microsoft", "FusedGemm"), path)
    report = inspect_model(path)
    assert report.nonstandard_ops == {"com.microsoft::FusedGemm": 1} and not report.trt_parsable
    spec = BuildSpec.from_trtexec_args(["--shapes=x:1x4"])
    with pytest.raises(ModelError, match="com.microsoft::FusedGemm"):
        plan_build(spec, path)


def test_ort_only_marker_refused_by_build(tmp_path: Path) -> None:
    model = _add_model()
    helper.set_model_props(model, {ORT_ONLY_KEY: "true"})
    path = tmp_path / "opt.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelError, match="only ONNX Runtime can run it"):
        plan_build(BuildSpec.from_trtexec_args(["--shapes=x:1x4"]), path)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\x01 not protobuf at all \xff" * 10)
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        inspect_model(path)


def test_inspect_cli_json_and_text(two_input_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(two_input_onnx), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [i["name"] for i in data["inputs"]] == ["image", "scale"]
    assert data["inputs"][0]["dims"] == ["batch", 3, "height", "width"]
    assert main(["inspect", str(two_input_onnx)]) == 0
    text = capsys.readouterr().out
    assert "[batch, 3, height, width]" in text and "onnx.checker: ok" in text
