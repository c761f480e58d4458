"""The build plan is the one record of every build decision: what `build --dry-run` prints is what the
build does and what its manifest records, at every emulated TensorRT level and for a table of option sets.
Refusals come from the plan, so --dry-run, pack and build refuse the same options in the same words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trtbuild.cli import main

TINY = ["--min", "x:1x4", "--opt", "x:4x4", "--max", "x:8x4"]
DATA = "@data"  # replaced by the calibration .npz of the tiny model


def tiny_model(folder: Path) -> tuple[Path, Path]:
    """An FP32 MatMul + Relu on x[n, 4] (opset 17) and 16 calibration samples for it."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"), helper.make_node("Relu", ["m"], ["y"], name="relu")]
    model = helper.make_model(helper.make_graph(nodes, "tiny", [x], [y], initializer=[w]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)  # fmt: skip
    path = folder / "tiny.onnx"
    onnx.save(model, path)
    data = folder / "calib.npz"
    np.savez(data, x=rng.random((16, 4)).astype(np.float32))
    return path, data


#: (id, options, {level: expected}) where expected is "ok" or the start of the refusal.
TABLE: list[tuple[str, list[str], dict[str, str]]] = [
    ("fp32", [], {}),
    ("fp16", ["--fp16"], {}),
    ("best", ["--best"], {"11.x": "TensorRT 11"}),
    ("best-data", ["--best", "--calib-data", DATA], {"11.x": "TensorRT 11"}),
    ("fp16-onnx", ["--fp16", "--precision-path", "onnx"], {}),
    ("int8-no-data", ["--int8"], {"8.6": "--int8 on tiny.onnx", "10.x": "--int8 on tiny.onnx",
                                  "11.x": "--int8 on the ONNX path"}),  # fmt: skip
    ("int8-data", ["--int8", "--calib-data", DATA], {}),
    ("int8-data-onnx", ["--int8", "--fp16", "--calib-data", DATA, "--precision-path", "onnx"], {}),
    ("int8-missing-data", ["--int8", "--calib-data", "nowhere/"], {"*": "--calib-data nowhere/: no such"}),
    ("dla", ["--useDLACore=0", "--allowGPUFallback", "--int8", "--calib-data", DATA], {}),
    ("version-compatible", ["--versionCompatible", "--fp16"], {}),
    ("strongly-typed", ["--stronglyTyped"], {"8.6": "--stronglyTyped needs TensorRT 10"}),
]


def _expected(level: str, table: dict[str, str]) -> str:
    return table.get("*", table.get(level, "ok"))


def _args(options: list[str], data: Path) -> list[str]:
    return [str(data) if o == DATA else o for o in options]


@pytest.mark.parametrize("case", TABLE, ids=[c[0] for c in TABLE])
def test_dry_run_plan_is_what_the_build_records(case: tuple[str, list[str], dict[str, str]], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from trt_emulator import install

    name, options, expectations = case
    model, data = tiny_model(tmp_path)
    args = ["build", str(model), *TINY, *_args(options, data)]
    for level in ("8.6", "10.x", "11.x"):
        expected = _expected(level, expectations)
        with install(level, dla_cores=2) as trt:
            out = tmp_path / level / "m.engine"
            out.parent.mkdir(exist_ok=True)
            rc = main([*args, "-o", str(out), "--dry-run", "--json"])
            captured = capsys.readouterr()
            if expected != "ok":
                # refused at plan time, in one sentence; the build refuses the same way and writes nothing
                assert rc == 2, (level, captured.out)
                assert expected in captured.err, (level, captured.err)
                assert main([*args, "-o", str(out)]) == 2 and not out.exists()
                capsys.readouterr()
                continue
            assert rc == 0, (level, captured.err)
            planned = json.loads(captured.out)["decisions"]
            rc = main([*args, "-o", str(out)])
            assert rc == 0, (level, capsys.readouterr().err)
            capsys.readouterr()
            manifest = json.loads(Path(str(out) + ".json").read_text())
            assert manifest["build_plan"] == planned, level
            # the double's own record of the builder config (set_flag calls), independent of trtbuild's
            from trt_emulator import _plan

            header = _plan.decode(out.read_bytes())[0]
            assert set(planned["builder_flags"]) <= set(header["flags"]), (level, header["flags"])
            assert not ({"FP16", "BF16", "INT8"} - set(planned["builder_flags"])) & set(header["flags"]), level
            if level == "11.x":
                assert planned["precision_flags"] == [] and header["strongly_typed"] is True
            for step in planned["conversions"]:
                assert Path(step["output"]).is_file(), step
            del trt


def test_table_covers_the_decisions_that_differ_by_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Spot checks of the table's plans: --best without data plans no INT8, --precision-path onnx plans a cast."""
    from trt_emulator import install

    model, data = tiny_model(tmp_path)

    def plan(level: str, *options: str) -> dict[str, Any]:
        with install(level):
            assert main(["build", str(model), *TINY, *options, "--dry-run", "--json"]) == 0
            return json.loads(capsys.readouterr().out)

    best = plan("10.x", "--best")
    assert best["decisions"]["precision_flags"] == ["FP16", "BF16"] and best["decisions"]["calibrator"] is None
    assert any("INT8 left off" in w for w in best["warnings"])
    assert plan("8.6", "--best")["decisions"]["precision_flags"] == ["FP16"]  # no BF16 on 8.6
    cal = plan("10.x", "--best", "--calib-data", str(data))["decisions"]
    assert cal["precision_flags"] == ["FP16", "BF16", "INT8"] and cal["calibrator"]["kind"] == "IInt8EntropyCalibrator2"
    onnx = plan("10.x", "--fp16", "--precision-path", "onnx")["decisions"]
    assert onnx["precision_path"] == "onnx" and onnx["conversions"][0]["converter"] == "trtbuild"
    q = plan("11.x", "--int8", "--calib-data", str(data))["decisions"]
    assert q["conversions"][0]["kind"] == "int8-qdq" and q["conversions"][0]["converter"] in ("onnxruntime", "modelopt")
    assert plan("8.6", "--fp16")["decisions"]["network_flags"] == ["EXPLICIT_BATCH"]
