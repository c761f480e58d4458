"""`compare` with ONNX-Runtime-only runners never imports torch (Polygraphy probes for it otherwise)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _conv_model(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 16, 16])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _imported(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_compare_with_onnxruntime_runners_never_imports_torch(tmp_path: Path) -> None:
    model = _conv_model(tmp_path / "a.onnx", 0)
    other = _conv_model(tmp_path / "b.onnx", 0)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trtbuild", "compare", str(model),
         "--against", f"ort,ort:{other}", "--opt", "x:2x3x16x16"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PASSED" in result.stdout
    modules = _imported(result.stderr)
    assert "polygraphy.comparator" in modules and "onnxruntime" in modules  # the comparison ran through both
    torch = sorted(m for m in modules if m == "torch" or m.startswith("torch."))
    assert not torch, f"compare imported {torch[:5]}"


def test_a_failing_tolerance_still_fails_with_numpy_scalar_tolerances(tmp_path: Path) -> None:
    """The tolerances reach Polygraphy as NumPy scalars: a real difference must still fail the check."""
    model = _conv_model(tmp_path / "a.onnx", 0)
    other = _conv_model(tmp_path / "b.onnx", 1)
    result = subprocess.run(
        [sys.executable, "-m", "trtbuild", "compare", str(model), "--against", f"ort,ort:{other}",
         "--opt", "x:2x3x16x16", "--atol", "1e-3", "--rtol", "1e-3"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout + result.stderr
