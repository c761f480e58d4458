"""FP16 cast: accuracy on the zoo models, I/O types, block lists, the overflow range scan, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from test_calib import make_images

from trtbuild.cli import main
from trtbuild.errors import TrtbuildError
from trtbuild.model.accuracy import AccuracyError, run_model
from trtbuild.model.calib import CalibOptions
from trtbuild.model.fp16 import Fp16Error, Fp16Options, cast_fp16, scan_ranges
from trtbuild.precision import convert_onnx

YOLO_SHAPE = "images:2x3x160x160"


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_images(tmp_path_factory.mktemp("fp16") / "images", count=8)


def io_types(path: Path) -> list[int]:
    model = onnx.load(str(path))
    return [v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]]


@pytest.mark.parametrize(("name", "shape"), [("resnet", "input:2x3x224x224"), ("yolo", YOLO_SHAPE)])
def test_fp16_cast_stays_within_1e3_of_fp32(name: str, shape: str, image_dir: Path, tmp_path: Path) -> None:
    from trtbuild import zoo

    source = zoo.onnx_path(name)
    out = tmp_path / f"{name}.fp16.onnx"
    calib = CalibOptions(data=str(image_dir), shape=shape, samples=4, eval_samples=4)
    prepared = convert_onnx(source, out, fp16=True, calib=calib)
    report = prepared.accuracy_report
    assert report is not None and report.passed and report.held_out and report.samples == 4
    for output in report.outputs:
        # relative error measured as max abs error / max abs FP32 value
        assert output.rel_max_error < 1e-3, output
        assert output.cosine > 0.9999
    if name == "resnet":
        assert report.outputs[0].topk == {"top1": 1.0, "top5": 1.0}
    assert io_types(out) == [TensorProto.FLOAT, TensorProto.FLOAT]  # I/O kept FP32
    model = onnx.load(str(out))
    assert any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer)
    assert prepared.converter == "trtbuild" and prepared.converter_version
    assert json.loads(Path(str(out) + ".accuracy.json").read_text())["passed"] is True
    # It runs in ONNX Runtime and gives finite outputs.
    feed = {model.graph.input[0].name: np.random.default_rng(0).random(
        [2, 3, 224, 224] if name == "resnet" else [1, 3, 160, 160], dtype=np.float32)}  # fmt: skip
    assert all(np.all(np.isfinite(v)) for v in run_model(out, feed).values())


def test_fp16_io_makes_inputs_and_outputs_half(resnet_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "io.onnx"
    result = cast_fp16(resnet_onnx, out, Fp16Options(keep_io_types=False))
    assert io_types(out) == [TensorProto.FLOAT16, TensorProto.FLOAT16]
    assert not result.keep_io_types
    got = run_model(out, {"input": np.ones((1, 3, 224, 224), np.float32)})  # the runner casts the feed
    assert got["logits"].dtype == np.float16


def test_block_lists_keep_nodes_in_fp32(resnet_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(str(resnet_onnx))
    gemm = next(n.name for n in model.graph.node if n.op_type == "Gemm")
    out = tmp_path / "blocked.onnx"
    result = cast_fp16(resnet_onnx, out, Fp16Options(op_block_list=["Add"], node_block_list=[gemm]), scan_feeds=None)
    assert gemm in result.blocked_nodes
    cast = onnx.load(str(out))
    # Blocked nodes read FP32 initializers and get Casts around them.
    gemm_node = next(n for n in cast.graph.node if n.name == gemm)
    inits = {t.name: t.data_type for t in cast.graph.initializer}
    assert inits[gemm_node.input[1]] == TensorProto.FLOAT
    types = {v.name: v.type.tensor_type.elem_type for v in cast.graph.value_info}
    for node in cast.graph.node:
        if node.op_type == "Add":
            assert types[node.output[0]] == TensorProto.FLOAT
        if node.op_type == "Conv":
            assert types[node.output[0]] == TensorProto.FLOAT16
    with pytest.raises(Fp16Error, match="does not have: nope"):
        cast_fp16(resnet_onnx, tmp_path / "x.onnx", Fp16Options(node_block_list=["nope"]))


def overflow_model(path: Path) -> Path:
    """y = relu((x @ w) * 4e4 / 4e4): the middle tensor (~1e5) overflows FP16, the output does not.

    The constant itself fits FP16, so only the activation range scan can see the overflow.
    """
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="mm"),
        helper.make_node("Mul", ["a", "big"], ["b"], name="scale_up"),
        helper.make_node("Div", ["b", "big"], ["c"], name="scale_down"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    inits = [numpy_helper.from_array(np.full((8, 8), 0.3, np.float32), "w"),
             numpy_helper.from_array(np.array(4e4, np.float32), "big")]  # fmt: skip
    model = helper.make_model(helper.make_graph(nodes, "overflow", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_range_scan_catches_fp16_overflow(tmp_path: Path) -> None:
    source = overflow_model(tmp_path / "overflow.onnx")
    feeds = [{"x": np.random.default_rng(i).random((4, 8), dtype=np.float32) + 0.5} for i in range(3)]
    scan = scan_ranges(source, feeds)
    assert scan.overflow_tensors == ["b"] and scan.tensor_max["b"] > 65504
    assert set(scan.blocked_nodes) == {"scale_up", "scale_down"}

    guarded = cast_fp16(source, tmp_path / "guarded.onnx", scan_feeds=feeds, validate_feed=feeds[0])
    naive = cast_fp16(source, tmp_path / "naive.onnx", Fp16Options(range_scan=False))
    assert set(guarded.blocked_nodes) == {"scale_up", "scale_down"} and naive.blocked_nodes == []
    assert guarded.fp16_nodes == 2  # MatMul and Relu

    # ONNX Runtime on the CPU hides FP16 overflow; the reference evaluator does real FP16 math.
    want = ReferenceEvaluator(str(source)).run(None, feeds[0])[0]
    got = ReferenceEvaluator(str(guarded.path)).run(None, feeds[0])[0]
    assert np.all(np.isfinite(want)) and np.all(np.isfinite(got))
    assert np.max(np.abs(got - want)) / np.max(np.abs(want)) < 1e-3
    with np.errstate(over="ignore"):
        bad = ReferenceEvaluator(str(naive.path)).run(None, feeds[0])[0]
    assert not np.all(np.isfinite(bad))  # the unguarded cast really overflows


def test_cast_cli_writes_model_and_report(tmp_path: Path, image_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.fp16.onnx"
    code = main(["cast", "zoo:resnet", "--fp16", "-o", str(out), "--calib-data", str(image_dir),
                 "--calib-shape", "input:2x3x224x224", "--calib-samples", "4"])  # fmt: skip
    assert code == 0 and out.exists()
    text = capsys.readouterr().out
    assert "cast to FP16 with trtbuild" in text and "passed" in text
    report = json.loads(Path(str(out) + ".accuracy.json").read_text())
    assert report["precision"] == "fp16" and report["outputs"][0]["name"] == "logits"


def test_cast_cli_guards_the_overflow_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = overflow_model(tmp_path / "overflow.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).random((6, 8), dtype=np.float32) + 0.5)
    out = tmp_path / "o.fp16.onnx"
    code = main(["cast", str(source), "-o", str(out), "--calib-data", str(tmp_path / "calib.npy"),
                 "--calib-shape", "x:2x8", "--eval-samples", "2", "--json"])  # fmt: skip
    assert code == 0
    manifest = json.loads(capsys.readouterr().out)
    assert set(manifest["details"]["fp16"]["blocked_nodes"]) == {"scale_up", "scale_down"}
    assert manifest["accuracy"]["passed"] is True


def test_accuracy_threshold_fails_the_command(tmp_path: Path, image_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "strict.onnx"
    code = main(["cast", "zoo:resnet", "-o", str(out), "--calib-data", str(image_dir), "--calib-shape",
                 "input:2x3x224x224", "--calib-samples", "4", "--max-error", "1e-9"])  # fmt: skip
    assert code == AccuracyError.exit_code == 1
    assert "relative max error" in capsys.readouterr().err
    assert not out.exists()  # a conversion that fails its check is not published
    with pytest.raises(AccuracyError):
        convert_onnx("zoo:resnet", tmp_path / "again.onnx", fp16=True, max_error=1e-9,
                     calib=CalibOptions(random=True, samples=2, shape="input:2x3x224x224"))  # fmt: skip


FAKE_AUTOCAST = '''\
import json, os, shutil, sys
args = sys.argv[1:]
json.dump(args, open(os.environ["FAKE_AUTOCAST_LOG"], "w"))
shutil.copy(os.environ["FAKE_AUTOCAST_RESULT"], args[args.index("--output_path") + 1])
'''


def test_modelopt_autocast_gets_the_scan_exclusions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys

    # A stand-in `modelopt` package that records its command line and returns a known FP16 model.
    root = tmp_path / "fake"
    pkg = root / "modelopt" / "onnx" / "autocast"
    pkg.mkdir(parents=True)
    for folder in (root / "modelopt", root / "modelopt" / "onnx", pkg):
        (folder / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(FAKE_AUTOCAST)
    source = overflow_model(tmp_path / "overflow.onnx")
    feeds = [{"x": np.random.default_rng(0).random((4, 8), dtype=np.float32) + 0.5}]
    known = cast_fp16(source, tmp_path / "known.onnx", scan_feeds=feeds)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), *sys.path]))
    monkeypatch.setenv("FAKE_AUTOCAST_LOG", str(tmp_path / "argv.json"))
    monkeypatch.setenv("FAKE_AUTOCAST_RESULT", str(known.path))

    result = cast_fp16(source, tmp_path / "mo.onnx", Fp16Options(op_block_list=["Relu"], converter="modelopt"), scan_feeds=feeds,
                       calibration_npz=tmp_path / "calib.npz")  # fmt: skip
    assert result.converter == "modelopt"
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[argv.index("--low_precision_type") + 1] == "fp16" and "--keep_io_types" in argv
    excluded = argv[argv.index("--nodes_to_exclude") + 1 : argv.index("--op_types_to_exclude")]
    assert sorted(excluded) == ["^scale_down$", "^scale_up$"]
    assert argv[argv.index("--op_types_to_exclude") + 1] == "Relu"
    assert argv[argv.index("--calibration_data") + 1] == str(tmp_path / "calib.npz")
    # TensorRT 8.6 cannot parse AutoCast's opset >= 19: asking for it there is refused; the default keeps the opset.
    with pytest.raises(TrtbuildError, match="opset"):
        convert_onnx(source, tmp_path / "86.onnx", fp16=True, target_trt="8.6", fp16_options=Fp16Options(converter="modelopt"),
                     calib=CalibOptions(data=None, random=True, samples=2, shape="x:2x8"))  # fmt: skip
    assert not (tmp_path / "86.onnx").exists()
    prepared = convert_onnx(source, tmp_path / "86.onnx", fp16=True, target_trt="8.6",
                            calib=CalibOptions(data=None, random=True, samples=2, shape="x:2x8"))  # fmt: skip
    assert prepared.converter == "trtbuild"
