"""Precision repair (``--repair``): the search, INT8 and FP16 repairs on models with one known culprit, the
build path, and refusals."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtbuild.cli import main
from trtbuild.model.repair import DEAD_BADNESS, RepairError, Score, badness, quantized_nodes, search
from trtbuild.verdict import judge, limits_for

WIDTH = 64


def run_cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--log-level", "error", *args])
    return code, err.getvalue()


def save(nodes: list[onnx.NodeProto], inits: list[np.ndarray], names: list[str], path: Path, out_width: int) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out_width])],
        [numpy_helper.from_array(a.astype(np.float32), n) for a, n in zip(inits, names)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def one_culprit_int8_model(path: Path, *, only_culprit: bool = False) -> Path:
    """x -> A -> *scale -> B -> C -> y. The scale makes channel 0 of B's input 1000x the others, so a
    per-tensor INT8 range for it flattens every other channel: B is the one node INT8 cannot run."""
    rng = np.random.default_rng(0)
    scale = np.ones(WIDTH)
    scale[0] = 1000.0
    w_b = rng.normal(0, 0.3, (WIDTH, 16))
    w_b[0] = 1e-3  # channel 0 matters no more than the others in FP32
    if only_culprit:
        nodes = [helper.make_node("Mul", ["x", "scale"], ["g"], name="S"),
                 helper.make_node("MatMul", ["g", "w_b"], ["y"], name="B")]  # fmt: skip
        return save(nodes, [scale, w_b], ["scale", "w_b"], path, 16)
    nodes = [
        helper.make_node("MatMul", ["x", "w_a"], ["h"], name="A"),
        helper.make_node("Mul", ["h", "scale"], ["g"], name="S"),
        helper.make_node("MatMul", ["g", "w_b"], ["b"], name="B"),
        helper.make_node("MatMul", ["b", "w_c"], ["y"], name="C"),
    ]
    inits = [rng.normal(0, 0.15, (WIDTH, WIDTH)), scale, w_b, rng.normal(0, 0.3, (16, 16))]
    return save(nodes, inits, ["w_a", "scale", "w_b", "w_c"], path, 16)


def cancelling_fp16_model(path: Path) -> Path:
    """x -> Relu -> (r * 1.0001 - r) * 1e4 -> Sigmoid -> y. In FP16, 1.0001 rounds to 1, the difference
    to 0 and the output to a constant 0.5: the verdict sees it even where ONNX Runtime computes in FP32."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="R"),
        helper.make_node("Mul", ["r", "c"], ["u"], name="Scale"),
        helper.make_node("Sub", ["u", "r"], ["d"], name="Diff"),
        helper.make_node("Mul", ["d", "gain"], ["g"], name="Gain"),
        helper.make_node("Sigmoid", ["g"], ["y"], name="Sig"),
    ]
    return save(nodes, [np.array(1.0001), np.array(1e4)], ["c", "gain"], path, WIDTH)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("repair") / "calib"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(20):
        np.save(folder / f"{index:02d}.npy", rng.uniform(0.5, 1.5, (1, WIDTH)).astype(np.float32))
    return folder


def cosine_on_fresh_inputs(fp32: Path, converted: Path) -> float:
    import onnxruntime as ort

    x = np.random.default_rng(7).uniform(0.5, 1.5, (32, WIDTH)).astype(np.float32)
    want = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0].ravel()
    got = ort.InferenceSession(str(converted), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0].ravel()
    return float(np.dot(want, got) / (np.linalg.norm(want) * np.linalg.norm(got)))


# --------------------------------------------------------------------------------------------------
# INT8


def test_int8_without_repair_fails_and_names_the_flag(samples: Path, tmp_path: Path) -> None:
    model = one_culprit_int8_model(tmp_path / "m.onnx")
    out = tmp_path / "m.int8.onnx"
    code, err = run_cli("quantize", str(model), "-o", str(out), "--calib-data", str(samples))
    assert code == 1 and "--repair" in err and not out.exists()


def test_int8_repair_keeps_only_the_culprit_in_float(samples: Path, tmp_path: Path) -> None:
    model = one_culprit_int8_model(tmp_path / "m.onnx")
    out = tmp_path / "m.int8.onnx"
    code, err = run_cli("quantize", str(model), "-o", str(out), "--calib-data", str(samples), "--repair")
    assert code == 0, err
    repair = json.loads(Path(str(out) + ".accuracy.json").read_text())["repair"]
    assert repair["kept_nodes"] == ["B"]
    assert repair["candidate_nodes"] == 3 and repair["kept_node_share"] == pytest.approx(1 / 3)
    # B's weights are 1024 of the 64*64 + 64*16 + 16*16 quantized weight elements
    assert repair["kept_weight_share"] == pytest.approx(1024 / (4096 + 1024 + 256))
    assert repair["before"]["passed"] is False and repair["after"]["passed"] is True
    assert repair["reproduce_with"] == "--exclude-nodes B"
    assert set(quantized_nodes(onnx.load(str(out)))) == {"A", "C"}  # the rest is still INT8
    assert cosine_on_fresh_inputs(model, out) >= 0.98  # judged on inputs the search never saw


def test_repair_is_the_same_as_naming_the_kept_nodes(samples: Path, tmp_path: Path) -> None:
    model = one_culprit_int8_model(tmp_path / "m.onnx")
    code, err = run_cli("quantize", str(model), "-o", str(tmp_path / "named.onnx"), "--calib-data", str(samples),
                        "--exclude-nodes", "B")  # fmt: skip
    assert code == 0, err
    assert set(quantized_nodes(onnx.load(str(tmp_path / "named.onnx")))) == {"A", "C"}


def test_repair_refuses_when_the_only_quantized_node_is_the_culprit(samples: Path, tmp_path: Path) -> None:
    model = one_culprit_int8_model(tmp_path / "m.onnx", only_culprit=True)
    out = tmp_path / "m.int8.onnx"
    code, err = run_cli("quantize", str(model), "-o", str(out), "--calib-data", str(samples), "--repair")
    assert code == 1 and "Traceback" not in err
    assert "Repair cannot help" in err and "Nothing was written" in err
    assert not out.exists() and not list(tmp_path.glob(".m.int8*staging*"))


def test_repair_with_modelopt_is_refused(samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trtbuild.model.quantize as quantize

    monkeypatch.setattr(quantize, "modelopt_available", lambda: True)
    model = one_culprit_int8_model(tmp_path / "m.onnx")
    code, err = run_cli("quantize", str(model), "-o", str(tmp_path / "o.onnx"), "--calib-data", str(samples),
                        "--quantizer", "modelopt", "--repair")  # fmt: skip
    assert code != 0 and "--quantizer onnxruntime" in err


# --------------------------------------------------------------------------------------------------
# FP16


def test_fp16_repair_keeps_the_cancelling_nodes(samples: Path, tmp_path: Path) -> None:
    model = cancelling_fp16_model(tmp_path / "c.onnx")
    out = tmp_path / "c.fp16.onnx"
    code, err = run_cli("cast", str(model), "-o", str(out), "--calib-data", str(samples))
    assert code == 1 and "--repair" in err and not out.exists(), err
    code, err = run_cli("cast", str(model), "-o", str(out), "--calib-data", str(samples), "--repair")
    assert code == 0, err
    repair = json.loads(Path(str(out) + ".accuracy.json").read_text())["repair"]
    assert "Scale" in repair["kept_nodes"] and set(repair["kept_nodes"]) <= {"R", "Scale", "Diff", "Gain"}
    assert repair["reproduce_with"].startswith("--fp16-block-nodes ")
    converted = onnx.load(str(out))
    assert any(n.op_type == "Sigmoid" for n in converted.graph.node)
    assert cosine_on_fresh_inputs(model, out) >= 0.999


# --------------------------------------------------------------------------------------------------
# The search, on a synthetic judge


class KeepsJudge:
    """Passes when every node of ``needed`` is kept; badness = how many needed nodes are converted."""

    samples = 4

    def __init__(self, needed: set[str]) -> None:
        self.needed = needed
        self.evaluations = 0

    def score(self, path: Path) -> Score:
        self.evaluations += 1
        converted = self.needed - set(json.loads(path.read_text()))
        return Score(not converted, 2.0 * len(converted), 1.0 - 0.1 * len(converted), sorted(converted))


def write_keep(keep: list[str], path: Path) -> Path:
    path.write_text(json.dumps(keep))
    return path


@pytest.mark.parametrize("needed", [{"n3"}, {"n3", "n17"}, {"n0", "n9", "n30", "n31"}])
def test_search_finds_exactly_the_needed_units(needed: set[str], tmp_path: Path) -> None:
    units = [[f"n{i}"] for i in range(32)]
    fake: Any = KeepsJudge(needed)
    path, report = search(units, write_keep, fake, tmp_path, precision="int8", flag="--exclude-nodes",
                          weights={f"n{i}": 1 for i in range(32)})  # fmt: skip
    assert set(report.kept_nodes) == needed and set(json.loads(path.read_text())) == needed
    assert report.after.passed and not report.before.passed
    # sensitivity (one per unit) + bisection (log2) + pruning + the first attempt
    assert fake.evaluations <= 1 + 32 + 6 + len(needed)
    assert report.kept_weight_share == pytest.approx(len(needed) / 32)


def test_search_refuses_when_nothing_short_of_everything_passes(tmp_path: Path) -> None:
    class Never(KeepsJudge):
        def score(self, path: Path) -> Score:
            self.evaluations += 1
            return Score(False, 5.0, 0.3, ["'y' (regress): cosine 0.3 < 0.5"])

    never: Any = Never(set())
    with pytest.raises(RepairError, match="found no INT8 model that passes"):
        search([["a"], ["b"], ["c"]], write_keep, never, tmp_path, precision="int8", flag="--exclude-nodes", weights={})


def test_badness_is_zero_for_identical_and_huge_for_dead_outputs() -> None:
    limits = limits_for("int8")
    ref = [np.random.default_rng(0).normal(size=(2, 50))]
    assert badness(judge("y", ref, [ref[0].copy()], limits), limits) == 0.0
    assert badness(judge("y", ref, [np.zeros_like(ref[0])], limits), limits) == DEAD_BADNESS
    noisy = [ref[0] + np.random.default_rng(1).normal(0, 0.05, ref[0].shape)]
    value = badness(judge("y", ref, noisy, limits), limits)
    assert 0.0 < value < 1.0  # passes, with a margin the ranking can use


# --------------------------------------------------------------------------------------------------
# build and pack


def test_build_repair_needs_a_conversion(tmp_path: Path) -> None:
    model = one_culprit_int8_model(tmp_path / "m.onnx")
    code, err = run_cli("build", str(model), "--shapes=x:1x64", "--fp16", "--repair", "--dry-run", "--trtexec-version", "10")
    assert code != 0 and "--precision-path onnx" in err


def test_build_repair_on_the_onnx_path_records_the_kept_nodes(samples: Path, tmp_path: Path, trt11: Any) -> None:
    model = one_culprit_int8_model(tmp_path / "m.onnx")
    shapes = ["--minShapes=x:1x64", "--optShapes=x:1x64", "--maxShapes=x:4x64"]
    code, err = run_cli("build", str(model), *shapes, "--int8", "--calib-data", str(samples), "--repair", "--dry-run")
    assert code == 0, err
    engine = tmp_path / "m.engine"
    code, err = run_cli("build", str(model), *shapes, "--int8", "--calib-data", str(samples), "--repair",
                        "--output", str(engine))  # fmt: skip
    assert code == 0, err
    pipeline = json.loads(Path(str(engine) + ".json").read_text())["precision"]["pipeline"]
    assert pipeline["details"]["repair"]["kept_nodes"] == ["B"]
    assert pipeline["accuracy"]["passed"] is True and pipeline["accuracy"]["repair"]["kept_nodes"] == ["B"]


def test_pack_records_repair_for_the_device(samples: Path, tmp_path: Path, trt11: Any) -> None:
    from trtbuild.recipe import plan_from_recipe

    model = one_culprit_int8_model(tmp_path / "m.onnx")
    recipe = tmp_path / "m.recipe.tar"
    code, err = run_cli("pack", str(model), "--minShapes=x:1x64", "--optShapes=x:1x64", "--maxShapes=x:4x64", "--int8",
                        "--calib-data", str(samples), "--repair", "-o", str(recipe), "--trtexec-version", "11")  # fmt: skip
    assert code == 0, err
    plan = plan_from_recipe(recipe, recipe_dir=tmp_path / "unpacked")
    assert [step.repair for step in plan.conversions] == [True]
