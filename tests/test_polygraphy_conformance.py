"""NVIDIA's own client through the double: Polygraphy's TensorRT backend, unmodified, at 8.6, 10.x and 11.x.

Each level runs in its own process (tests/trt_emulator/polygraphy_conformance.py: Polygraphy caches the
``tensorrt`` module on first use), the three at once. Polygraphy builds (two profiles; FP16 and an INT8
Calibrator where the level has them), saves, loads and runs its engine with TrtRunner switching profiles,
and its outputs must equal ONNX Runtime's; trtbuild's runtime runs Polygraphy's engine and Polygraphy's
TrtRunner runs trtbuild's. Then `trtbuild bench` and `trtbuild compare` run the Polygraphy-built engine,
which has no manifest, with a warning saying so. The double computes with ONNX Runtime on the CPU:
this checks API use, never TensorRT numerics or speed.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trt_emulator import LEVELS, install

SCRIPT = Path(__file__).parent / "trt_emulator" / "polygraphy_conformance.py"


@pytest.fixture(scope="module")
def polygraphy_runs(yolo_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    work = tmp_path_factory.mktemp("polygraphy")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    procs = {
        level: subprocess.Popen([sys.executable, str(SCRIPT), level, str(yolo_onnx), str(work)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        for level in LEVELS
    }
    results = {}
    for level, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, f"Polygraphy at {level} failed:\n{out[-4000:]}"
        results[level] = json.loads(lines[-1][len("RESULT "):])
    return results


@pytest.mark.parametrize("level", LEVELS)
def test_polygraphy_builds_and_runs_through_the_double(polygraphy_runs: dict[str, dict[str, object]], level: str) -> None:
    run = polygraphy_runs[level]
    assert run["polygraphy_errors"] == [0.0, 0.0]  # profile 0, then set_profile(1): equal to ONNX Runtime
    if level == "11.x":
        assert run["options"] == []  # no FP16/INT8 flags or calibrators in 11.x
    else:
        assert run["options"] == ["calibrator", "fp16", "int8"] and run["calibration_batches"] == 2
    assert run["trtbuild_runs_polygraphy_engine_error"] == 0.0 and run["trtbuild_profiles"] == 2
    assert run["polygraphy_runs_trtbuild_engine_error"] == 0.0


def test_trtbuild_cli_runs_a_polygraphy_engine_without_manifest(
    polygraphy_runs: dict[str, dict[str, object]], yolo_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trtbuild.cli import main

    engine = Path(str(polygraphy_runs["10.x"]["engine"]))
    assert engine.is_file() and not Path(str(engine) + ".json").exists()
    with install("10.x"):
        assert main(["bench", str(engine), "--backends", "trt", "--warmUp", "1", "--iterations", "2",
                     "--duration", "0.01", "--shapes", "images:2x3x96x96", "--out", str(tmp_path / "bench")]) == 0  # fmt: skip
        report = tmp_path / "compare.json"
        assert main(["compare", str(yolo_onnx), "--engine", str(engine), "--against", "ort",
                     "--shapes", "images:2x3x96x96", "--json", str(report)]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "PASSED: 1/1" in captured.out
    # The printed table may leave the clock column out at 80 columns; the written table keeps it.
    (written,) = (tmp_path / "bench").glob("*.csv")
    with open(written, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["clock"] == "cuda-events"
    warnings = [ln for ln in captured.err.splitlines() if ln.startswith("warning:") and "has no manifest" in ln]
    assert len(warnings) >= 2  # bench and compare both say the engine could not be checked before loading
    assert json.loads(report.read_text())
