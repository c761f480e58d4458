"""Runners (ONNX Runtime, PyTorch, TensorRT adapter), the spec registry and the Polygraphy wrapper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from trtbuild.backends.base import Runner
from trtbuild.backends.onnxrt import OrtRunner
from trtbuild.backends.registry import make_runner, make_runners, split_specs
from trtbuild.backends.torch_runner import META_FILE, TorchRunner
from trtbuild.backends.trt_runner import TrtRunner, manifest_inputs, manifest_profiles
from trtbuild.errors import EngineFileError, MissingDependencyError, ModelError, SpecError
from trtbuild.shapes import TensorInfo


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.relu(self.lin(x)), x * 2


X = np.arange(8, dtype=np.float32).reshape(2, 4) / 8


def tiny_inputs() -> list[TensorInfo]:
    return [TensorInfo("x", "float32", ("batch", 4))]


# ---- ONNX Runtime


def test_ort_runner_metadata_and_inference(two_input_onnx: Path) -> None:
    runner = OrtRunner(two_input_onnx)
    assert runner.name == "ort"
    with runner:
        meta = {t.name: t for t in runner.input_metadata()}
        assert meta["image"].dims == ("batch", 3, "height", "width") and meta["image"].dtype == "float32"
        out = runner.infer({"image": np.ones((3, 3, 32, 32), np.float32), "scale": np.ones((3, 1), np.float32)})
    assert list(out) == ["output"] and out["output"].shape == (3, 6)
    assert runner.inference_time > 0
    assert runner.describe()["providers"] == ["CPUExecutionProvider"]


def test_ort_provider_by_partial_name_and_unknown_provider(two_input_onnx: Path) -> None:
    with OrtRunner(two_input_onnx, providers=["cpu"]) as runner:
        assert runner.describe()["providers"] == ["CPUExecutionProvider"]
    runner = OrtRunner(two_input_onnx, providers=["NoSuchExecutionProvider"])
    with pytest.raises(MissingDependencyError, match="has: .*CPUExecutionProvider"):
        runner.activate()


def test_ort_runner_error_names_shapes(two_input_onnx: Path) -> None:
    with OrtRunner(two_input_onnx) as runner, pytest.raises(ModelError, match="image:3x32x32"):
        runner.infer({"image": np.ones((3, 32, 32), np.float32), "scale": np.ones((1, 1), np.float32)})


# ---- PyTorch


def test_torch_runner_module_names_and_order() -> None:
    runner = TorchRunner(Tiny(), inputs=tiny_inputs(), output_names=["y", "z"])
    with runner:
        out = runner.infer({"x": X})
    assert list(out) == ["y", "z"]
    np.testing.assert_allclose(out["z"], X * 2)
    assert runner.inference_time > 0
    # Without names the outputs are output0, output1...
    with TorchRunner(Tiny, inputs=tiny_inputs()) as r2:
        assert list(r2.infer({"x": X})) == ["output0", "output1"]
    with pytest.raises(ModelError, match="2 tensor"):
        TorchRunner(Tiny(), inputs=tiny_inputs(), output_names=["only"]).infer({"x": X})


def test_torch_runner_loads_pt2_and_torchscript_with_metadata(tmp_path: Path) -> None:
    meta = json.dumps({"inputs": [{"name": "x", "dtype": "float32", "dims": ["batch", 4]}], "outputs": ["y", "z"]})
    module = Tiny().eval()
    program = torch.export.export(module, (torch.from_numpy(np.tile(X, (2, 1))),),
                                  dynamic_shapes=({0: torch.export.Dim.AUTO},), strict=False)
    torch.export.save(program, tmp_path / "t.pt2", extra_files={META_FILE: meta})
    torch.jit.save(torch.jit.trace(module, (torch.from_numpy(X),)), str(tmp_path / "t.ts"), _extra_files={META_FILE: meta})
    expected = {"y": torch.relu(module.lin(torch.from_numpy(X))).detach().numpy(), "z": X * 2}
    for name in ("t.pt2", "t.ts"):
        runner = TorchRunner(tmp_path / name)
        with runner:
            assert [t.name for t in runner.input_metadata()] == ["x"]
            out = runner.infer({"x": X})
        assert list(out) == ["y", "z"]
        for key, want in expected.items():
            np.testing.assert_allclose(out[key], want, atol=1e-6)


def test_torch_runner_rejects_state_dicts_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        TorchRunner(tmp_path / "missing.pt2").activate()
    (tmp_path / "w.pth").write_bytes(b"x")
    with pytest.raises(ModelError, match="state dicts hold no code"):
        TorchRunner(tmp_path / "w.pth").activate()


def test_torch_runner_missing_input() -> None:
    with pytest.raises(ModelError, match="No data for PyTorch input"):
        TorchRunner(Tiny(), inputs=tiny_inputs()).infer({"y": X})


# ---- registry


def test_split_and_make_runners(two_input_onnx: Path, tmp_path: Path) -> None:
    assert split_specs("ort, torch:m.pt2,") == ["ort", "torch:m.pt2"]
    runners = make_runners("ort,ort:cpu,ort", model=two_input_onnx)
    assert [r.name for r in runners] == ["ort", "ort:cpu", "ort#2"]
    assert isinstance(make_runner("torch:zoo:two_input", model=two_input_onnx), TorchRunner)
    torch_runner = make_runner("torch:zoo:two_input@cpu")
    assert isinstance(torch_runner, TorchRunner) and torch_runner.device == "cpu"
    zoo_torch = make_runner("torch", model="zoo:two_input")  # zoo model: the zoo module itself
    with zoo_torch:
        out = zoo_torch.infer({"image": np.ones((1, 3, 16, 16), np.float32), "scale": np.ones((1, 1), np.float32)})
    assert list(out) == ["output"]
    with pytest.raises(SpecError, match="Unknown runner"):
        make_runner("tensorflow", model=two_input_onnx)
    with pytest.raises(SpecError, match="trt:model.engine"):
        make_runner("trt", model=two_input_onnx)
    with pytest.raises(EngineFileError, match="does not exist"):
        make_runner("trt:missing.engine")
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(two_input_onnx.read_bytes())
    with pytest.raises(ModelError, match="torch:model.pt2"):
        make_runner("torch", model=plain)  # no reference beside it, no zoo source recorded


def test_module_factory_spec(tmp_path: Path) -> None:
    (tmp_path / "tinynet.py").write_text(
        "import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n        return x + 1\n"
        "def make():\n    return M()\n"
    )
    runner = make_runner(f"torch:{tmp_path / 'tinynet.py'}:make", inputs=[TensorInfo("x", "float32", (2,))])
    with runner:
        np.testing.assert_allclose(runner.infer({"x": np.zeros(2, np.float32)})["output0"], [1, 1])


# ---- Polygraphy wrapper


class Constant(Runner):
    """A runner returning fixed outputs (for comparator tests)."""

    backend = "test"

    def __init__(self, name: str, value: float) -> None:
        super().__init__()
        self.name, self.value, self.inference_time = name, value, 0.0

    def activate(self) -> None:
        self.is_active = True

    def input_metadata(self) -> list[TensorInfo]:
        return [TensorInfo("x", "float32", (-1, 2))]

    def infer(self, feed: Any) -> dict[str, np.ndarray]:
        self.inference_time = 0.001
        return {"y": np.full_like(feed["x"], self.value)}


def test_polygraphy_wrapper_runs_in_comparator(two_input_onnx: Path) -> None:
    from polygraphy.comparator import Comparator
    from polygraphy.datatype import DataType

    from trtbuild.backends.polygraphy_adapter import as_polygraphy_runner

    a = as_polygraphy_runner(Constant("a", 1.0))
    b = as_polygraphy_runner(Constant("b", 1.0), name="explicit-b")
    assert (a.name, b.name) == ("a", "explicit-b")
    with a:
        meta = a.get_input_metadata(use_numpy_dtypes=False)
        assert meta["x"].dtype == DataType.FLOAT32 and tuple(meta["x"].shape) == (-1, 2)
    results = Comparator.run([a, b], data_loader=[{"x": np.zeros((3, 2), np.float32)}])
    assert results["explicit-b"][0]["y"].shape == (3, 2)
    assert results["a"][0].runtime == pytest.approx(0.001)
    assert bool(Comparator.compare_accuracy(results))
    ort = as_polygraphy_runner(OrtRunner(two_input_onnx))
    with ort:
        assert list(ort.get_input_metadata(use_numpy_dtypes=False)) == ["image", "scale"]


# ---- TensorRT adapter


def test_trt_runner_without_tensorrt_is_a_clear_error(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not a plan")
    runner = TrtRunner(engine)
    with pytest.raises((MissingDependencyError, EngineFileError)):
        runner.activate()


def test_manifest_profiles_and_inputs() -> None:
    manifest = {
        "profiles": [{"images": {"min": [1, 3, 32, 32], "opt": [1, 3, 64, 64], "max": [2, 3, 64, 64]}}],
        "io": [{"name": "images", "mode": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},
               {"name": "output0", "mode": "output", "dtype": "float32", "shape": [-1, 12, -1]}],
    }
    (profile,) = manifest_profiles(manifest)
    assert profile.shapes["images"].max == (2, 3, 64, 64)
    assert manifest_inputs(manifest) == [TensorInfo("images", "float32", (-1, 3, -1, -1))]
    assert manifest_profiles(None) == [] and manifest_inputs({}) == []


def test_trt_runner_with_emulated_engine(trt10: Any, yolo_onnx: Path, tmp_path: Path) -> None:
    """Through the TensorRT test double (no GPU): adapter plumbing only, no TensorRT figures."""
    pytest.importorskip("trtbuild.trt.builder")
    from trtbuild.build import build_from_plan
    from trtbuild.plan import plan_build
    from trtbuild.spec import BuildSpec

    engine = tmp_path / "y.engine"
    spec = BuildSpec.from_pairs([("minShapes", "images:1x3x64x64"), ("maxShapes", "images:2x3x96x96"),
                                 ("saveEngine", str(engine))], dialect=None)
    build_from_plan(plan_build(spec, yolo_onnx))
    runner = TrtRunner(engine)
    assert [t.name for t in runner.input_metadata()] == ["images"]  # from the manifest, before activation
    with runner:
        out = runner.infer({"images": np.ones((2, 3, 64, 96), np.float32)})
    with OrtRunner(yolo_onnx) as ort:
        want = ort.infer({"images": np.ones((2, 3, 64, 96), np.float32)})
    np.testing.assert_allclose(out["output0"], want["output0"], atol=1e-5)
    assert runner.describe()["engine"] == str(engine)

