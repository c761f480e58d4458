"""``trtbuild report`` over a fleet history: two hosts, several nights, a regression and a crash."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trtbuild.cli import main
from trtbuild.errors import TrtbuildError
from trtbuild.nightly import metric_summaries
from trtbuild.nightly.gate import gate_run
from trtbuild.nightly.report import load_history, write_report
from trtbuild.nightly.store import CASE_SCHEMA, SCHEMA_VERSION, ResultsStore, device_identity, iso

NOW = datetime.now(timezone.utc).replace(microsecond=0)
HOSTS = {
    "gpu01": {"host": "gpu01", "platform": "Linux-x86_64", "cpu": "Xeon", "gpu": "NVIDIA L4", "compute_capability": "8.9",
              "driver": "550.54", "tensorrt": "10.13.0", "jetson": None},
    "orin01": {"host": "orin01", "platform": "Linux-aarch64", "cpu": "ARMv8", "gpu": "Jetson AGX Orin",
               "compute_capability": "8.7", "driver": None, "tensorrt": "10.3.0",
               "jetson": {"model": "Jetson AGX Orin", "power_mode": "MAXN"}},
}  # fmt: skip
CASES = {"yolo-fp16-trt-b1": ("yolo", "trt", "fp16", 1.6), "yolo-fp32-ort-b1": ("yolo", "ort", "fp32", 9.0),
         "resnet-fp16-trt-b8": ("resnet", "trt", "fp16", 0.9)}  # fmt: skip


def night(store: ResultsStore, host: str, day: int, *, slow: str | None = None, crash: str | None = None) -> None:
    env = HOSTS[host]
    run = store.create_run({"suite": {"name": "fleet", "hash": "h"}, "host": host, "shard": None,
                            "started_utc": iso(NOW - timedelta(days=day)), "status": "complete", "environment": env,
                            "gate_settings": {}, "cases": {}}, host=host)  # fmt: skip
    rng = np.random.default_rng(day * 7 + len(host))
    for case_id, (model, backend, precision, base) in CASES.items():
        scale = base * (0.9 if host == "orin01" and backend == "ort" else 1.0) * (3.0 if host == "orin01" else 1.0)
        record: dict[str, Any] = {"schema": CASE_SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": run.run_id,
                                  "case_id": case_id, "suite": "fleet", "model": model, "backend": backend,
                                  "precision": precision, "shape": case_id.rsplit("-", 1)[1], "config_hash": "c",
                                  "thresholds": {"latency": 1.05}, "device": device_identity(env, backend),
                                  "log": f"logs/{case_id}.log"}  # fmt: skip
        samples = None
        if case_id == crash:
            record.update(status="failed", reason="crashed: killed by SIGSEGV (signal 11)")
        else:
            factor = 1.25 if case_id == slow else 1.0
            values = scale * factor * rng.lognormal(0, 0.03, 400)
            samples = {"latency": values.tolist()}
            record.update(status="ok", metrics=metric_summaries(samples),
                          accuracy={"passed": True, "max_abs": 1e-3, "reference": "ort"},
                          bench={"summary": {"latency_ms": {"median": float(np.median(values))},
                                             "throughput_qps": 1000.0 / float(np.median(values))}})  # fmt: skip
        run.save_case(record, samples)
    gate_run(store, run)


#: The fleet fixture builds and gates 20 nights (about 8 s on two cores): the tests that read it are slow.
@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two results folders, as two hosts write them (merged by the report)."""
    a, b = tmp_path_factory.mktemp("hostA"), tmp_path_factory.mktemp("hostB")
    for day in range(9, -1, -1):
        night(ResultsStore(a), "gpu01", day, slow="yolo-fp16-trt-b1" if day == 0 else None)
        night(ResultsStore(b), "orin01", day, crash="resnet-fp16-trt-b8" if day == 3 else None)
    return a, b


@pytest.mark.slow
def test_history_merges_hosts_and_devices(fleet: tuple[Path, Path]) -> None:
    history = load_history(list(fleet))
    assert len(history.runs) == 20 and len(history.rows) == 60
    latest = history.latest()
    assert len(latest) == 6  # 3 cases x 2 devices
    assert {r.device for r in latest} >= {"NVIDIA L4", "Jetson AGX Orin (MAXN)"}
    flagged = history.flagged()
    assert [(r.case_id, r.verdict, r.host) for r in flagged] == [
        ("yolo-fp16-trt-b1", "regression", "gpu01"), ("resnet-fp16-trt-b8", "failed", "orin01")]  # fmt: skip
    assert flagged[0].ratio == pytest.approx(1.25, abs=0.03)
    assert all(f"-{r.record['host']}-" in r.run_id for r in history.runs)  # run ids name their host
    assert len(load_history(list(fleet), since="2d").runs) == 4  # days 0 and 1 on both hosts


@pytest.mark.slow
def test_html_and_markdown(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    files = write_report(list(fleet), tmp_path / "out", since="30d", title="Fleet nightly")
    page = files.html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>Fleet nightly</title>" in page
    # self-contained: no external scripts, styles or images
    assert not re.search(r'(src|href)="(?!data:)', page)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2  # one trend figure per model
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    for text in ("yolo-fp16-trt-b1", "regression", "crashed: killed by SIGSEGV", "gpu01", "orin01", "NVIDIA L4",
                 "Jetson AGX Orin (MAXN)", "x1.2"):  # fmt: skip
        assert text in page, text
    md = files.markdown.read_text()
    assert "## Regressions and failures" in md and "## Latest results" in md and "### NVIDIA L4 (gpu01)" in md
    for model, path in files.plots.items():
        assert f"![{model}](plots/{path.name})" in md and path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_cli(fleet: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(fleet[0]), str(fleet[1]), "-o", str(tmp_path / "r"), "--since", "30d"]) == 0
    out = capsys.readouterr().out
    assert "20 run(s), 60 case result(s), 2 flagged" in out and f"html: {tmp_path / 'r' / 'index.html'}" in out
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "No nightly runs" in capsys.readouterr().err
    assert main(["report", str(fleet[0]), "--since", "yesterday"]) == 2
    assert "--since 'yesterday'" in capsys.readouterr().err


@pytest.mark.slow
def test_default_output_folder_and_suite_filter(fleet: tuple[Path, Path]) -> None:
    files = write_report(fleet[0], since="3d")
    assert files.html == fleet[0] / "report" / "index.html" and files.html.exists()
    with pytest.raises(TrtbuildError, match="No nightly runs"):
        write_report(fleet[0], suite="other")
