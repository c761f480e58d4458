"""What the plan refuses, it refuses for `build --dry-run`, `pack` and `build` alike, in one sentence, and a
recipe carries the plan to the device, which refuses a re-plan that builds differently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_plan_agrees import tiny_model

from trtbuild.cli import main

SHAPES = ["--shapes", "8x4"]

REFUSALS = [
    (["--int8"], "needs calibration"),
    (["--int8", "--calib-data", "nowhere/"], "--calib-data nowhere/: no such file or folder"),
    (["--int8", "--calib=missing.cache"], "--calib missing.cache: no such calibration cache"),
    (["--noBuilderCache", "--timingCacheFile=t.cache"], "--noBuilderCache disables the timing cache"),
    (["--sparsity=force"], "--sparsity=force"),
    (["--useDLACore=0", "--buildDLAStandalone"], "--buildDLAStandalone builds a cuDLA loadable"),
    (["--pluginInstanceNorm", "--versionCompatible"], "--pluginInstanceNorm cannot be combined"),
    (["--fp16", "--precision-path", "flags", "--trtexec-version", "11"], "impossible on TensorRT 11"),
    (["--stripWeights", "--trtexec-version", "8"], "--stripWeights needs TensorRT 10 or later"),
    (["--bf16", "--trtexec-version", "8"], "--bf16 needs TensorRT 9 or later"),
]


@pytest.mark.parametrize("options,message", REFUSALS, ids=[" ".join(r[0]) for r in REFUSALS])
def test_dry_run_and_pack_refuse_at_plan_time(options: list[str], message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    model, _ = tiny_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    for command in (["build", str(model), *SHAPES, *options, "--dry-run"],
                    ["pack", str(model), *SHAPES, *options, "-o", "r.tar"]):  # fmt: skip
        assert main(command) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert err.strip().count("\n") == 0, err  # one paragraph
    assert not (tmp_path / "r.tar").exists()


def _model_with(tmp_path: Path, name: str, nodes: list, inits: list, opset: int = 17) -> Path:  # type: ignore[type-arg]
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])
    model = helper.make_model(helper.make_graph(nodes, "m", [x], [y], initializer=inits),
                              opset_imports=[helper.make_opsetid("", opset)], ir_version=8)  # fmt: skip
    path = tmp_path / name
    onnx.save(model, path)
    return path


def test_model_the_target_cannot_parse_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import numpy as np
    from onnx import helper, numpy_helper

    monkeypatch.chdir(tmp_path)
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    opset18 = _model_with(tmp_path, "o18.onnx", relu, [], opset=18)
    assert main(["pack", str(opset18), *SHAPES, "--trtexec-version", "8", "-o", "a.tar"]) == 2
    assert "TensorRT 8.6's ONNX parser reads up to opset 17" in capsys.readouterr().err
    assert main(["pack", str(opset18), *SHAPES, "--trtexec-version", "10", "-o", "b.tar"]) == 0
    capsys.readouterr()
    # uint8, asymmetric Q/DQ (ONNX Runtime's default) is what `quantize --check-only` refuses: so does the plan
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(128, np.uint8), "z")]
    qdq = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]), helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    bad = _model_with(tmp_path, "u8.onnx", qdq, inits)
    for command in (["build", str(bad), *SHAPES, "--int8", "--dry-run"], ["pack", str(bad), *SHAPES, "-o", "c.tar"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "zero point" in err or "uint8" in err, err
    assert main(["quantize", str(bad), "--check-only"]) != 0
    capsys.readouterr()
    integer = [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "qs", "qz"]),
               helper.make_node("DequantizeLinear", ["q", "qs", "qz"], ["y"])]  # fmt: skip
    dyn = _model_with(tmp_path, "dyn.onnx", integer, [])
    assert main(["build", str(dyn), *SHAPES, "--dry-run"]) == 2
    assert "DynamicQuantizeLinear x1" in capsys.readouterr().err


def test_bare_shapes_are_named_in_the_trtexec_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, _ = tiny_model(tmp_path)
    assert main(["build", str(model), "--shapes", "8x4", "--dry-run", "--json"]) == 0
    args = json.loads(capsys.readouterr().out)["trtexec"]["args"]
    assert "--shapes=x:8x4" in args


def test_recipe_carries_the_plan_and_its_calibration_data(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from trt_emulator import install

    model, data = tiny_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    with install("10.x"):
        assert main(["pack", str(model), *SHAPES, "--int8", "--calib-data", str(data), "-o", "int8.tar"]) == 0
        assert main(["pack", str(model), *SHAPES, "--best", "-o", "best.tar"]) == 0
        capsys.readouterr()
        import tarfile

        with tarfile.open(tmp_path / "int8.tar") as tar:
            member = tar.extractfile("plan.json")
            assert member is not None
            stored = member.read().decode()
        assert str(tmp_path) not in stored and json.loads(stored)["calibration"]["data"] == "calib/data/calib.npz"
        assert main(["build", str(model), *SHAPES, "--int8", "--calib-data", str(data), "--dry-run", "--json"]) == 0
        planned = json.loads(capsys.readouterr().out)["decisions"]
        device = tmp_path / "device"
        device.mkdir()
        monkeypatch.chdir(device)
        assert main(["build", "--recipe", str(tmp_path / "int8.tar"), "-o", "m.engine"]) == 0, capsys.readouterr().err
        recorded = json.loads((device / "m.engine.json").read_text())["build_plan"]
        for key in ("precision_path", "precision_flags", "builder_flags", "network_flags"):
            assert recorded[key] == planned[key]
        assert recorded["calibrator"]["data"]["source"].endswith("calib/data/calib.npz")
        assert main(["build", "--recipe", str(tmp_path / "int8.tar"), "--calib-data", str(data)]) == 2
        assert "carries its calibration data" in capsys.readouterr().err
    with install("8.6"):  # BuilderFlag.BF16 does not exist there: --best would build differently
        assert main(["build", "--recipe", str(tmp_path / "best.tar"), "-o", "b.engine"]) == 2
        err = capsys.readouterr().err
        assert "would build it differently" in err and "BF16" in err and not (device / "b.engine").exists()


def test_target_problems_reports_without_raising(tmp_path: Path) -> None:
    """The checks the plan refuses with, as a list (for reports such as inspect's)."""
    import numpy as np
    from onnx import helper, numpy_helper

    from trtbuild.model.inspect import inspect_model
    from trtbuild.plan import target_problems

    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(128, np.uint8), "z")]
    qdq = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]), helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    report = inspect_model(_model_with(tmp_path, "u8.onnx", qdq, inits, opset=18))
    assert [kind for kind, _ in target_problems(report, 8)] == ["opset", "qdq"]
    assert [kind for kind, _ in target_problems(report, 10)] == ["qdq"]
    model, _ = tiny_model(tmp_path)
    assert target_problems(inspect_model(model), 8) == []
