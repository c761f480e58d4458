"""trtbuild compare: Polygraphy over ORT/PyTorch/TensorRT(double) at every profile corner, reports and failures."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from trtbuild.backends.base import Runner
from trtbuild.cli import main
from trtbuild.compare import (
    CompareReport,
    Tolerances,
    compare,
    parse_overrides,
    run_comparison,
)
from trtbuild.errors import ComparisonFailed, ShapeError, SpecError
from trtbuild.inputs import Feed, corner_shapes, seeded_feeds
from trtbuild.shapes import Profile, ShapeRange, TensorInfo

SHAPES = ["--min", "images:1x3x64x64", "--opt", "images:1x3x128x160", "--max", "images:2x3x160x160"]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """export zoo:yolo -o m.onnx --dynamic images:0,2,3 (with m.pt2 beside it)."""
    out = tmp_path_factory.mktemp("exported") / "m.onnx"
    rc, _, err = run_cli(["export", "zoo:yolo", "-o", str(out), "--dynamic", "images:0,2,3"])
    assert rc == 0, err
    return out


@pytest.fixture(scope="module")
def shifted(exported: Path) -> Path:
    """The same model with one head bias shifted by 1e-2 (the PyTorch reference stays the original)."""
    proto = onnx.load(str(exported))
    for init in proto.graph.initializer:
        if init.name.endswith("bias"):
            array = numpy_helper.to_array(init).copy()
            array[0] += 1e-2
            init.CopyFrom(numpy_helper.from_array(array, init.name))
            break
    else:  # pragma: no cover - the zoo model has biased heads
        raise AssertionError("no bias found")
    path = exported.parent / "shifted.onnx"
    onnx.save(proto, str(path))
    return path


# ---- the acceptance path


def test_exported_model_passes_at_min_opt_max(exported: Path, tmp_path: Path) -> None:
    rc, out, err = run_cli(["compare", str(exported), "--against", "ort,torch", *SHAPES,
                            "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")])
    assert rc == 0, err
    assert "PASSED: 3/3" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] and report["reference"] == "torch" and report["precision"] == "fp32"
    assert [f["label"] for f in report["feeds"]] == ["min", "opt", "max"]
    assert [f["shapes"]["images"] for f in report["feeds"]] == ["1x3x64x64", "1x3x128x160", "2x3x160x160"]
    shapes = [r["shape"] for r in report["results"]]
    assert shapes == [[1, 12, 84], [1, 12, 420], [2, 12, 525]]  # anchors follow height x width
    for r in report["results"]:
        assert r["candidate"] == "ort" and r["output"] == "output0"
        assert r["max_abs"] < 1e-4 and r["cosine"] > 0.999999
    assert report["tolerances"]["atol"] == {"": 1e-4} and report["tolerances"]["rtol"] == {"": 1e-3}
    markdown = (tmp_path / "r.md").read_text()
    assert "**PASSED**" in markdown and "| ort vs torch | max | output0 | 2x12x525 |" in markdown


def test_shifted_bias_fails_naming_output_shape_and_measure(exported: Path, shifted: Path) -> None:
    against = ["--against", "ort,torch:" + str(exported.with_suffix(".pt2")), *SHAPES]
    rc, out, err = run_cli(["compare", str(shifted), *against])
    assert rc == ComparisonFailed.exit_code == 1
    assert "FAILED" in out
    message = " ".join(err.split())
    assert "output 'output0'" in message and "shape 2x12x525" in message and "cosine" in message
    assert "--output-kind output0:KIND" in message
    # The same difference is within what FP16 allows: the verdict's limits follow --precision.
    rc2, _, err2 = run_cli(["compare", str(shifted), *against, "--precision", "fp16"])
    assert rc2 == 0, err2
    # Element-wise tolerances, when given, gate as well.
    rc3, _, _ = run_cli(["compare", str(shifted), *against, "--precision", "fp16", "--atol", "output0:1e-9"])
    assert rc3 == 1


def test_python_api_report(shifted: Path, exported: Path) -> None:
    import trtbuild

    kwargs: dict[str, Any] = {"min": "images:1x3x64x64", "max": "images:1x3x96x96"}
    report = trtbuild.compare(shifted, ["ort", f"torch:{exported.with_suffix('.pt2')}"], **kwargs)
    assert isinstance(report, trtbuild.CompareReport) and not report.passed
    assert [f["label"] for f in report.feeds] == ["min", "opt=max"]  # min+max: opt = max (trtexec's rule)
    assert {r.output for r in report.failures} == {"output0"}
    with pytest.raises(ComparisonFailed, match="output0"):
        report.raise_for_failure()
    with pytest.raises(ComparisonFailed):
        trtbuild.compare(shifted, ["ort", f"torch:{exported.with_suffix('.pt2')}"], raise_on_failure=True, **kwargs)
    assert trtbuild.compare(shifted, "ort,ort:cpu", **kwargs).passed  # the same ONNX twice agrees exactly


# ---- user data


def test_two_input_with_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "in.npz", image=rng.random((3, 3, 48, 64), dtype=np.float32),
             scale=rng.random((3, 1)).astype(np.float64))  # float64 is cast to the model's float32
    rc, out, err = run_cli(["compare", "zoo:two_input", "--against", "ort,torch", "--data", str(tmp_path / "in.npz"),
                            "--json", str(tmp_path / "r.json")])
    assert rc == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["feeds"] == [{"label": "data", "shapes": {"image": "3x3x48x64", "scale": "3x1"}}]
    assert report["results"][0]["shape"] == [3, 6]
    assert report["results"][0]["top1"] == 1.0  # [batch, 6] looks like a classifier: top-k is reported


def test_npz_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "partial.npz", image=np.zeros((1, 3, 32, 32), np.float32))
    rc, _, err = run_cli(["compare", "zoo:two_input", "--against", "ort,torch", "--data", str(tmp_path / "partial.npz")])
    assert rc == SpecError.exit_code
    message = " ".join(err.split())
    assert "no array for input(s) 'scale'" in message and "scale=..." in message
    assert "Traceback" not in err


def test_npz_shape_outside_profile_and_wrong_rank(tmp_path: Path) -> None:
    from trtbuild.inputs import load_npz

    inputs = [TensorInfo("x", "float32", ("batch", 4))]
    np.savez(tmp_path / "a.npz", x=np.zeros((8, 4), np.float32))
    profile = Profile({"x": ShapeRange((1, 4), (2, 4), (4, 4))})
    with pytest.raises(SpecError, match="outside the profile"):
        load_npz(tmp_path / "a.npz", inputs, profile)
    np.savez(tmp_path / "b.npz", x=np.zeros((4,), np.float32))
    with pytest.raises(SpecError, match="1 dimensions"):
        load_npz(tmp_path / "b.npz", inputs)


def test_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    report = compare("zoo:resnet", "ort,torch", opt="input:2x3x224x224", data=folder)
    assert [f["label"] for f in report.feeds] == ["images[0:2]", "images[2:3]"]
    assert report.feeds[0]["shapes"] == {"input": "2x3x224x224"}
    assert report.passed
    assert all(r.top1 == 1.0 and r.k == 5 for r in report.results)


# ---- profiles and feeds


def test_corners_merge_when_equal() -> None:
    profile = Profile({"x": ShapeRange((1, 4), (4, 4), (4, 4))})
    assert [label for label, _ in corner_shapes(profile)] == ["min", "opt=max"]
    inputs = [TensorInfo("x", "float32", ("batch", 4)), TensorInfo("k", "int64", (3,))]
    feeds = seeded_feeds(inputs, profile, seed=7)
    assert [f.shapes() for f in feeds] == [{"x": (1, 4), "k": (3,)}, {"x": (4, 4), "k": (3,)}]
    assert feeds[1].arrays["k"].dtype == np.int64
    again = seeded_feeds(inputs, profile, seed=7)
    np.testing.assert_array_equal(feeds[0].arrays["x"], again[0].arrays["x"])  # seeded: reproducible


def test_dynamic_model_without_shapes_asks_for_them(exported: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.onnx"
    proto = onnx.load(str(exported))
    del proto.metadata_props[:]  # no zoo source: no profile to fall back on
    onnx.save(proto, str(plain))
    with pytest.raises(ShapeError, match="--min"):
        compare(plain, "ort,ort:cpu")


def test_zoo_profile_is_used_without_flags() -> None:
    report = compare("zoo:two_input", "ort,torch")
    assert [f["label"] for f in report.feeds] == ["min", "opt", "max"]
    assert report.feeds[2]["shapes"] == {"image": "8x3x256x256", "scale": "8x1"}
    assert report.passed


# ---- tolerances: Polygraphy's either-passes rule


class Fixed(Runner):
    backend = "test"

    def __init__(self, name: str, value: float) -> None:
        super().__init__()
        self.name, self.value = name, value

    def activate(self) -> None:
        self.is_active = True

    def input_metadata(self) -> list[TensorInfo]:
        return [TensorInfo("x", "float32", (2,))]

    def infer(self, feed: Any) -> dict[str, np.ndarray]:
        return {"y": np.full(2, self.value, np.float32)}


@pytest.mark.parametrize(
    ("atol", "rtol", "passed"),
    [(0.05, 0.2, True), (0.2, 0.05, True), (0.05, 0.05, False)],
)
def test_either_tolerance_passes(atol: float, rtol: float, passed: bool) -> None:
    tol = Tolerances({"": atol}, {"": rtol}, {"": "elemwise"})
    feeds = [Feed("f", {"x": np.zeros(2, np.float32)})]
    (result,) = run_comparison([Fixed("candidate", 1.1), Fixed("reference", 1.0)], feeds, tol, tolerance_gates=True)
    assert result.passed is (passed and result.verdict_passed)
    assert result.tolerance_passed is passed
    assert result.max_abs == pytest.approx(0.1, rel=1e-5) and result.max_rel == pytest.approx(0.1, rel=1e-5)
    if not passed:
        assert result.required_atol == pytest.approx(0.1, rel=1e-5)
        assert "--atol y:0.11" in result.failure_message()


def test_reference_choice_and_stat_overrides() -> None:
    feeds = [Feed("f", {"x": np.zeros(2, np.float32)})]
    runners = [Fixed("a", 1.0), Fixed("b", 1.5), Fixed("c", 1.0)]
    results = run_comparison(runners, feeds, Tolerances.for_precision("fp32"), reference=0)
    assert [(r.candidate, r.reference, r.passed) for r in results] == [("b", "a", False), ("c", "a", True)]


def test_parse_overrides() -> None:
    assert parse_overrides(["1e-3", "output0:1e-2"], "atol") == {"": 1e-3, "output0": 1e-2}
    assert parse_overrides("a:1,b:2", "rtol") == {"a": 1.0, "b": 2.0}
    assert parse_overrides(["max", "logits:mean"], "check-error-stat", kind=str) == {"": "max", "logits": "mean"}
    with pytest.raises(SpecError, match="expected a number"):
        parse_overrides(["output0:big"], "atol")
    with pytest.raises(SpecError, match="non-negative"):
        parse_overrides(["-1"], "atol")
    with pytest.raises(SpecError, match="elemwise"):
        parse_overrides(["p99"], "check-error-stat", kind=str)
    with pytest.raises(SpecError, match="unknown output"):
        compare("zoo:two_input", "ort,ort:cpu", atol=["logits:1e-3"])
    assert Tolerances.for_precision("fp16").of("x").atol == 1e-2
    with pytest.raises(SpecError, match="--precision"):
        Tolerances.for_precision("fp64")


def test_report_round_trips_to_json(exported: Path) -> None:
    report = compare(exported, "ort,torch", shapes="images:1x3x64x64")
    assert isinstance(report, CompareReport)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] and data["runners"][1]["model"].endswith("m.pt2")
    assert "AND" in data["rule"]


def test_help_explains_the_tolerance_rule() -> None:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
        main(["compare", "--help"])
    text = " ".join(buffer.getvalue().split())
    assert "FAILS only if |a-b| > atol AND |a-b|/|b| > rtol" in text
    assert "either tolerance passes" in text


# ---- TensorRT through the test double


def test_compare_engine_with_trt_double(trt10: Any, exported: Path, tmp_path: Path) -> None:
    """build_from_plan + compare --engine on the emulator: checks plumbing only; no TensorRT numbers."""
    pytest.importorskip("trtbuild.trt.builder")
    from trtbuild.build import build_from_plan
    from trtbuild.plan import plan_build
    from trtbuild.spec import BuildSpec

    engine = tmp_path / "m.engine"
    spec = BuildSpec.from_pairs([("minShapes", "images:1x3x64x64"), ("optShapes", "images:1x3x96x96"),
                                 ("maxShapes", "images:2x3x128x128"), ("saveEngine", str(engine))], dialect=None)
    build_from_plan(plan_build(spec, exported))
    rc, out, err = run_cli(["compare", str(exported), "--engine", str(engine), "--against", "ort,torch",
                            "--json", str(tmp_path / "r.json")])
    assert rc == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["name"] for r in report["runners"]] == ["trt", "ort", "torch"]
    # The profile came from the engine manifest.
    assert [f["shapes"]["images"] for f in report["feeds"]] == ["1x3x64x64", "1x3x96x96", "2x3x128x128"]
    assert {(r["candidate"], r["feed"]) for r in report["results"]} == {
        (c, f) for c in ("trt", "ort") for f in ("min", "opt", "max")
    }
