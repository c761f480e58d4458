"""INT8 Q/DQ: accuracy on the zoo models, TensorRT compatibility, opset for 8.6, caches, exclusions, CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from test_calib import make_images

from trtbuild.cli import main
from trtbuild.model.accuracy import run_model
from trtbuild.model.calib import CalibOptions, CalibrationError, open_calibration
from trtbuild.model.qdq_check import check_qdq, default_opset
from trtbuild.model.quantize import QuantizationError, QuantizeOptions, choose_quantizer, quantize_int8
from trtbuild.precision import convert_onnx

YOLO_SHAPE = "images:2x3x160x160"


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_images(tmp_path_factory.mktemp("quant") / "images", count=12)


def qdq_inputs(path: Path) -> dict[str, set[str]]:
    """op type -> names of nodes that read a DequantizeLinear output."""
    model = onnx.load(str(path))
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    fed: dict[str, set[str]] = {}
    for node in model.graph.node:
        if any(i in dq_outputs for i in node.input):
            fed.setdefault(node.op_type, set()).add(node.name)
    return fed


@pytest.mark.parametrize(("name", "shape"), [("resnet", "input:4x3x224x224"), ("yolo", YOLO_SHAPE)])
def test_int8_qdq_is_close_to_fp32_and_trt_compatible(name: str, shape: str, image_dir: Path, tmp_path: Path) -> None:
    from trtbuild import zoo

    out = tmp_path / f"{name}.int8.onnx"
    calib = CalibOptions(data=str(image_dir), shape=shape, samples=8, eval_samples=4)
    prepared = convert_onnx(zoo.onnx_path(name), out, int8=True, calib=calib)  # default: entropy calibration
    report = prepared.accuracy_report
    assert report is not None and report.passed and report.held_out
    assert all(o.cosine >= 0.99 for o in report.outputs)
    if name == "resnet":
        assert report.outputs[0].topk is not None and report.outputs[0].topk["top1"] >= 0.75
    check = check_qdq(out, "10")
    assert check.ok and check.quantize_nodes > 0 and check.quantize_nodes == check.dequantize_nodes
    assert prepared.qdq_check is not None and prepared.qdq_check.ok
    assert prepared.converter == "onnxruntime"
    # Q/DQ sits on the inputs of every Conv (activation + weight), nowhere else.
    model = onnx.load(str(out))
    convs = {n.name for n in model.graph.node if n.op_type == "Conv"}
    assert qdq_inputs(out) == {"Conv": convs} if name == "yolo" else qdq_inputs(out)["Conv"] == convs
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    feed = {model.graph.input[0].name: next(open_calibration(calib, zoo.onnx_path(name)).batches())[  # type: ignore[union-attr]
        model.graph.input[0].name]}
    assert all(np.all(np.isfinite(v)) for v in run_model(out, feed).values())


def test_entropy_and_percentile_calibration(image_dir: Path, yolo_onnx: Path, tmp_path: Path) -> None:
    data = open_calibration(CalibOptions(data=str(image_dir), shape="images:4x3x64x64", samples=8), yolo_onnx)
    scales: dict[str, dict[str, float]] = {}
    for method in ("entropy", "percentile", "minmax"):
        out = tmp_path / f"{method}.onnx"
        result = quantize_int8(yolo_onnx, out, data, QuantizeOptions(method=method))
        assert result.check.ok and result.calibration["method"] == method
        model = onnx.load(str(out))
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        scales[method] = {
            n.input[0]: float(inits[n.input[1]]) for n in model.graph.node
            if n.op_type == "QuantizeLinear" and inits[n.input[1]].size == 1
        }  # fmt: skip
    # Entropy clips at least one activation range below min/max (it really searches, unlike quantize_static's default).
    assert any(scales["entropy"][t] < scales["minmax"][t] * 0.99 for t in scales["minmax"])
    assert scales["percentile"] != scales["minmax"]


def test_range_cache_is_reused_and_rebuilt_when_an_image_changes(resnet_onnx: Path, tmp_path: Path) -> None:
    images = make_images(tmp_path / "imgs", count=6)
    options = CalibOptions(data=str(images), shape="input:2x3x224x224", samples=4)
    out = tmp_path / "m.int8.onnx"
    first = quantize_int8(resnet_onnx, out, open_calibration(options, resnet_onnx), QuantizeOptions(method="minmax"))
    assert not first.cache_reused and Path(first.cache or "").exists()
    assert json.loads(Path(str(first.cache) + ".json").read_text())["provenance"]["files_sha256"]
    second = quantize_int8(resnet_onnx, out, open_calibration(options, resnet_onnx), QuantizeOptions(method="minmax"))
    assert second.cache_reused
    # Another method is another cache entry.
    third = quantize_int8(resnet_onnx, out, open_calibration(options, resnet_onnx), QuantizeOptions(method="percentile"))
    assert not third.cache_reused
    quantize_int8(resnet_onnx, out, open_calibration(options, resnet_onnx), QuantizeOptions(method="minmax"))

    Image.new("RGB", (40, 40), (9, 9, 9)).save(images / "img00.jpg")  # one calibration image changes
    data = open_calibration(options, resnet_onnx)
    rebuilt = quantize_int8(resnet_onnx, out, data, QuantizeOptions(method="minmax"))
    assert not rebuilt.cache_reused
    # A cache named explicitly is refused when stale, not rebuilt...
    Image.new("RGB", (40, 40), (7, 7, 7)).save(images / "img00.jpg")
    with pytest.raises(CalibrationError, match="stale: the calibration files changed"):
        quantize_int8(resnet_onnx, out, open_calibration(options, resnet_onnx), QuantizeOptions(method="minmax"),
                      cache=rebuilt.cache, explicit_cache=True)  # fmt: skip
    # ...and it stands in for the data when none is given.
    alone = quantize_int8(resnet_onnx, tmp_path / "alone.onnx", None, QuantizeOptions(method="minmax"),
                          cache=rebuilt.cache, explicit_cache=True)  # fmt: skip
    assert alone.cache_reused and alone.check.ok


def test_exclusions_keep_nodes_float(image_dir: Path, resnet_onnx: Path, tmp_path: Path) -> None:
    data = open_calibration(CalibOptions(data=str(image_dir), shape="input:2x3x224x224", samples=4), resnet_onnx)
    model = onnx.load(str(resnet_onnx))
    first_conv = next(n.name for n in model.graph.node if n.op_type == "Conv")
    out = tmp_path / "ex.onnx"
    quantize_int8(resnet_onnx, out, data,
                  QuantizeOptions(method="minmax", exclude_nodes=[first_conv], exclude_op_types=["Gemm"]))  # fmt: skip
    fed = qdq_inputs(out)
    assert "Gemm" not in fed and first_conv not in fed["Conv"] and len(fed["Conv"]) >= 1
    with pytest.raises(QuantizationError, match="Every op type is excluded"):
        quantize_int8(resnet_onnx, out, data, QuantizeOptions(op_types=["Conv"], exclude_op_types=["Conv"]))


def test_target_86_keeps_opset_17(image_dir: Path, tmp_path: Path) -> None:
    from trtbuild import zoo

    source = zoo.onnx_path("resnet", opset=18)
    assert check_qdq(source, "8.6").rules_broken == {"opset": 1}
    data = open_calibration(CalibOptions(data=str(image_dir), shape="input:2x3x224x224", samples=4), source)
    result = quantize_int8(source, tmp_path / "86.onnx", data, QuantizeOptions(method="minmax", target_trt="8.6"))
    assert result.opset == 17 and result.check.ok and result.check.target_trt == "8.6"
    assert default_opset(onnx.load(str(tmp_path / "86.onnx"))) == 17


def test_quantizer_choice() -> None:
    assert choose_quantizer(QuantizeOptions()) == "onnxruntime"  # modelopt is not installed here
    with pytest.raises(QuantizationError, match="needs NVIDIA ModelOpt"):
        choose_quantizer(QuantizeOptions(high_precision="fp16"))
    with pytest.raises(Exception, match="TRTBUILD_MODELOPT_PYTHON"):
        choose_quantizer(QuantizeOptions(quantizer="modelopt"))


FAKE_MODELOPT = '''\
import json, os, shutil, sys
args = sys.argv[1:]
json.dump(args, open(os.environ["FAKE_MODELOPT_LOG"], "w"))
out = args[args.index("--output_path") + 1]
shutil.copy(os.environ["FAKE_MODELOPT_RESULT"], out)
'''


def test_modelopt_runs_in_a_subprocess_with_the_documented_cli(
    image_dir: Path, resnet_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in `modelopt` package: records its command line, returns a known-good Q/DQ model.
    root = tmp_path / "fake"
    pkg = root / "modelopt" / "onnx" / "quantization"
    pkg.mkdir(parents=True)
    for folder in (root / "modelopt", root / "modelopt" / "onnx", pkg):
        (folder / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(FAKE_MODELOPT)
    data = open_calibration(CalibOptions(data=str(image_dir), shape="input:4x3x224x224", samples=6), resnet_onnx)
    good = tmp_path / "good.onnx"
    quantize_int8(resnet_onnx, good, data, QuantizeOptions(method="minmax"))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), *sys.path]))
    monkeypatch.setenv("FAKE_MODELOPT_LOG", str(tmp_path / "argv.json"))
    monkeypatch.setenv("FAKE_MODELOPT_RESULT", str(good))

    # auto keeps ONNX Runtime (it matched ModelOpt on the corpus); ModelOpt for INT8 + FP16 in one ONNX
    assert choose_quantizer(QuantizeOptions()) == "onnxruntime"
    assert choose_quantizer(QuantizeOptions(high_precision="fp16")) == "modelopt"
    assert choose_quantizer(QuantizeOptions(quantizer="modelopt")) == "modelopt"
    with pytest.raises(QuantizationError, match="opset"):  # modelopt writes opset >= 19
        choose_quantizer(QuantizeOptions(quantizer="modelopt", target_trt="8.6"))
    result = quantize_int8(resnet_onnx, tmp_path / "mo.onnx", data, QuantizeOptions(exclude_nodes=["a"], quantizer="modelopt"))
    assert result.quantizer == "modelopt" and result.check.ok
    argv = json.loads((tmp_path / "argv.json").read_text())
    pairs = dict(zip(argv[::2], argv[1::2]))
    assert pairs["--quantize_mode"] == "int8" and pairs["--calibration_method"] == "entropy"
    assert pairs["--calibration_shapes"] == "input:4x3x224x224" and pairs["--calibration_eps"] == "cpu"
    assert pairs["--high_precision_dtype"] == "fp32" and "--nodes_to_exclude" in argv
    # 6 samples were padded to a whole number of batches of 4.
    assert not Path(pairs["--calibration_data_path"]).exists()  # the temporary npz is gone


def test_quantize_cli_and_check_only(image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "y.int8.onnx"
    code = main(["quantize", "zoo:yolo", "--int8", "--calib-data", str(image_dir), "--calib-shape", YOLO_SHAPE,
                 "--calib-samples", "4", "--calib-method", "minmax", "-o", str(out), "--target-trt", "8.6"])  # fmt: skip
    assert code == 0 and out.exists()
    text = capsys.readouterr().out
    assert "TensorRT-compatible" in text and "accuracy passed" in text
    assert main(["quantize", "--check-only", str(out), "--target-trt", "8.6"]) == 0
    assert "TensorRT-compatible" in capsys.readouterr().out


def test_check_only_rejects_onnxruntime_defaults(resnet_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{"input": np.random.default_rng(i).random((1, 3, 224, 224), dtype=np.float32)} for i in range(2)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    bad = tmp_path / "ort_default.onnx"
    quantize_static(str(resnet_onnx), str(bad), Reader())  # ORT defaults: asymmetric activations, INT32 bias
    code = main(["quantize", "--check-only", str(bad)])
    text = capsys.readouterr().out
    assert code == 1
    assert "zero-point" in text and "int32-bias" in text and "asymmetric" in text


def test_entropy_threshold_clips_outliers_but_not_the_bulk() -> None:
    from trtbuild.model.quantize import entropy_amax

    rng = np.random.default_rng(0)
    bulk = np.abs(rng.normal(0, 1, 200_000))
    outliers = rng.uniform(20, 40, 20)
    hist, edges = np.histogram(np.concatenate([bulk, outliers]), bins=2048, range=(0, 40))
    amax = entropy_amax(hist, edges)
    assert 3.0 < amax < 20.0  # outliers clipped, the Gaussian bulk kept
    # ReLU-like data: half exact zeros must not pull the threshold towards 0.
    relu = np.concatenate([np.zeros(100_000), rng.uniform(0, 1, 100_000)])
    hist, edges = np.histogram(relu, bins=2048, range=(0, 1))
    assert entropy_amax(hist, edges) > 0.8


def test_static_batch_model_with_a_short_held_out_batch_quantizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model fixed at batch 4 with 2 held-out samples: the held-out batch is filled by repeating a
    sample (auto compares its candidates on it, the accuracy report runs on it); unfilled, ONNX Runtime
    refused the batch of 2."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="Dense")],
        "static4",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
        [numpy_helper.from_array(rng.normal(0, 0.3, (16, 8)).astype(np.float32), "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "static4.onnx"
    onnx.save(model, str(path))
    calib = tmp_path / "calib"
    calib.mkdir()
    for index in range(10):  # 8 calibrate (two full batches), 2 are held out
        np.save(calib / f"{index:02d}.npy", rng.uniform(0, 1, (1, 16)).astype(np.float32))
    out = tmp_path / "static4.int8.onnx"
    code = main(["quantize", str(path), "-o", str(out), "--calib-data", str(calib)])
    assert code == 0, capsys.readouterr().err
    assert out.exists()
