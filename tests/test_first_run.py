"""What a newcomer reads first: doctor and the demo's tables at 80 columns, tensorrt-stubs named for what it is."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from trtbuild.console import fit_table


def test_fit_table_drops_in_order_then_wraps_and_never_cuts_a_value() -> None:
    header = ["name", "note", "a number", "extra"]
    rows = [["x", "a long note that can wrap at its spaces", "123456.789", "zzzzzzzzzz"]]
    lines, dropped = fit_table(header, rows, width=40, drop=["extra"], wrap={"note"}, right={"a number"})
    assert dropped == ["extra"] and all(len(line) <= 40 for line in lines), lines
    assert any("123456.789" in line for line in lines)  # whole
    assert " ".join(" ".join(line.split()) for line in lines).count("a long note") == 1
    # a word longer than the room widens the table instead of being cut
    lines, _ = fit_table(["v"], [["unbreakable_value_of_thirty_chars"]], width=10, wrap={"v"})
    assert "unbreakable_value_of_thirty_chars" in lines[2]
    # wide enough: nothing dropped, one line per row
    lines, dropped = fit_table(header, rows, width=200, drop=["extra"], wrap={"note"})
    assert dropped == [] and len(lines) == 3


def test_doctor_fits_80_columns_and_shows_extras_literally(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from trtbuild.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    text = " ".join(" ".join(line.split()) for line in lines)
    assert "tensorrt" in text and "onnxruntime" in text
    if "modelopt missing" in text:
        assert "TRTBUILD_MODELOPT_PYTHON" in text  # not eaten as markup


def test_tensorrt_stubs_are_called_type_stubs(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    doctor = importlib.import_module("trtbuild.doctor")

    versions = {"tensorrt-stubs": "10.13.0.35.1"}
    monkeypatch.setattr(doctor, "_version", lambda dist: versions.get(dist))
    reason = doctor.tensorrt_missing_reason("The 'tensorrt' module found at X is incomplete. Install TensorRT: ...")
    assert "type stubs" in reason and "not TensorRT" in reason and "placeholder" not in reason
    versions["tensorrt"] = "10.13.0"  # a real (or placeholder) tensorrt package besides: its own message stands
    assert doctor.tensorrt_missing_reason("The 'tensorrt' module is incomplete. More.") == (
        "The 'tensorrt' module is incomplete")


def test_demo_cross_check_fits_80_columns(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from trtbuild.cli.demo import CROSS_CHECK_DROP, print_cross_check

    monkeypatch.setenv("COLUMNS", "80")
    result = SimpleNamespace(candidate="ort:CUDAExecutionProvider", reference="torch", feed="min=opt", output="output0",
                             shape=(4, 12, 2100), max_abs=8.94e-08, max_rel=6.52e-07, mean_abs=1.31e-08, cosine=1.0,
                             passed=True)  # fmt: skip
    report = SimpleNamespace(model="demo_out/yolo.onnx", reference="torch", precision="fp32", results=[result],
                             passed=True)  # fmt: skip
    print_cross_check(report)
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "8.94e-08" in out and "1.000000" in out and "PASSED: 1/1" in out
    assert f"left out to fit: {CROSS_CHECK_DROP[0]}" in out


DEFAULT_OUTPUTS = ("bench_results/bench-zoo-yolo-20260101T000000Z-abcdef.csv", "bench_results/nightly/r1/run.json",
                   "bench_results/report/index.html", "bench_results/timing-cache/gpu-trt10.cache",
                   "demo_out/yolo.onnx", "model.engine", "model.engine.json", "model.recipe.tar",
                   "model.recipe/spec.json", "model.fp16.onnx", "model.int8.onnx")  # fmt: skip


def test_gitignore_covers_what_the_tool_writes_by_default() -> None:
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "--no-index", *DEFAULT_OUTPUTS, "bench_results/README.md",
                             "suites/example.toml"], cwd=root, capture_output=True, text=True, timeout=30)  # fmt: skip
    ignored = set(result.stdout.split())
    assert ignored == set(DEFAULT_OUTPUTS), set(DEFAULT_OUTPUTS) ^ ignored


def test_bench_names_tensorrt_stubs_for_what_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from trtbuild.bench.run import tensorrt_unavailable

    if tensorrt_unavailable() is None:
        pytest.skip("TensorRT is usable here")
    doctor = importlib.import_module("trtbuild.doctor")
    monkeypatch.setattr(doctor, "stubs_only", lambda: "10.13.0.35.1")
    message = tensorrt_unavailable()
    assert message is not None and message.startswith("Only tensorrt-stubs 10.13.0.35.1 is installed: the type stubs")
    assert "placeholder" not in message and "pip install tensorrt" in message
