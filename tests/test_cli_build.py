"""The build/trtexec/inspect/doctor commands end to end (CPU only; no TensorRT here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trtbuild.cli import main
from trtbuild.spec import BuildSpec

HEAVY = ("torch", "tensorrt", "onnx", "onnxruntime", "pandas", "polygraphy", "numpy")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trtbuild", *args], capture_output=True, text=True, timeout=300)


def test_headline_dry_run_prints_trtexec_shapes(yolo_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", str(yolo_onnx), "--min", "1x3x640x640", "--max", "16x3x640x640", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "--minShapes=images:1x3x640x640 --optShapes=images:16x3x640x640 --maxShapes=images:16x3x640x640" in out


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        (["--min", "1x3x640", "--max", "16x3x640x640"], "4 dimensions"),
        (["--min", "32x3x640x640", "--max", "16x3x640x640"], "min <= opt <= max"),
    ],
)
def test_bad_shapes_exit_with_one_sentence_and_no_traceback(yolo_onnx: Path, shapes: list[str], expected: str) -> None:
    result = run_cli("build", str(yolo_onnx), *shapes, "--dry-run")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("trtbuild: error: ")
    assert expected in " ".join(result.stderr.split())


def test_trtexec_paste_gives_the_same_spec_as_build(resnet_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = [
        "--minShapes=input:1x3x224x224",
        "--optShapes=input:8x3x224x224",
        "--maxShapes=input:16x3x224x224",
        "--fp16",
        "--saveEngine=m.engine",
        "--memPoolSize=workspace:1024M",
    ]
    assert main(["trtexec", f"--onnx={resnet_onnx}", *common, "--dry-run", "--json"]) == 0
    from_trtexec = json.loads(capsys.readouterr().out)["spec"]
    assert main(["build", str(resnet_onnx), *common, "--dry-run", "--json"]) == 0
    from_build = json.loads(capsys.readouterr().out)["spec"]
    assert from_trtexec == from_build
    ours = ["--min", "input:1x3x224x224", "--opt", "input:8x3x224x224", "--max", "input:16x3x224x224",
            "--fp16", "-o", "m.engine", "--workspace", "1G"]  # fmt: skip
    assert main(["build", str(resnet_onnx), *ours, "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"] == from_build
    assert BuildSpec.from_dict(from_build).build.fp16


def test_trtexec_removed_flags_exit_non_zero(resnet_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trtexec", f"--onnx={resnet_onnx}", "--explicitBatch", "--dry-run"]) == 2
    assert "always explicit batch" in capsys.readouterr().err
    assert main(["trtexec", f"--onnx={resnet_onnx}", "--workspace=1024", "--dry-run"]) == 2
    assert "--memPoolSize=workspace:1024" in capsys.readouterr().err


def test_dry_run_in_11_dialect_explains_precision(resnet_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", str(resnet_onnx), "--shapes", "4x3x224x224", "--fp16", "--dry-run", "--trtexec-version", "11"])
    out = capsys.readouterr().out
    assert code == 0
    assert "cast the ONNX to FP16" in out
    assert "--fp16" not in out.split("trtexec 11.x equivalent")[1].splitlines()[1]


def test_several_profiles_from_repeated_flags(two_input_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([
        "build", str(two_input_onnx), "--dry-run", "--json",
        "--min", "image:1x3x64x64,scale:1x1", "--max", "image:2x3x64x64,scale:2x1",
        "--min", "image:4x3x128x128,scale:4x1", "--max", "image:8x3x128x128,scale:8x1",
    ])  # fmt: skip
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    profiles = plan["spec"]["build"]["profiles"]
    assert len(profiles) == 2 and profiles[1]["scale"]["max"] == [8, 1]
    assert "--profile=1" in plan["trtexec"]["args"]


def test_profiles_preset(two_input_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(two_input_onnx), "--profiles", "two_input", "--dry-run"]) == 0
    assert "--maxShapes=image:8x3x256x256,scale:8x1" in capsys.readouterr().out


def test_build_without_tensorrt_says_how_to_get_it(resnet_onnx: Path, tmp_path: Path) -> None:
    result = run_cli("build", str(resnet_onnx), "--shapes", "1x3x224x224", "-o", str(tmp_path / "m.engine"))
    assert result.returncode == 3
    assert "pip install tensorrt" in result.stderr and "--dry-run" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_missing_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(tmp_path / "nope.onnx"), "--dry-run"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_imports_nothing_heavy() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trtbuild", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "trtbuild" in result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_every_subcommand_has_help() -> None:
    from trtbuild.cli import COMMAND_MODULES

    for module in COMMAND_MODULES:
        name = module.rsplit(".", 1)[1]
        result = run_cli(name, "--help")
        assert result.returncode == 0, (name, result.stderr)
        assert "usage: trtbuild" in result.stdout


def test_doctor_json_lists_components(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert {"python", "tensorrt", "pycuda", "onnxruntime", "torch", "gpu"} <= set(checks)
    assert checks["onnxruntime"]["found"]
    if not checks["tensorrt"]["found"]:
        assert "pip install tensorrt" in checks["tensorrt"]["how"]
