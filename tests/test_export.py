"""trtbuild export / optimize: PyTorch -> ONNX with named dynamic axes, checked against PyTorch; ORT graph saving."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest

from trtbuild.cli import main
from trtbuild.errors import ComparisonFailed, ModelError, SpecError
from trtbuild.model.export import (
    META_REFERENCE,
    META_SOURCE,
    other_shapes,
    parse_dynamic,
    parse_inputs,
)

MODEL_PY = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 5)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    class Baked(nn.Module):
        # Traces the batch size into a constant: wrong for any other batch.
        def forward(self, x):
            return x.reshape(int(x.shape[0]), -1) * 2

    class Branchy(nn.Module):
        # Data-dependent control flow: torch.export refuses it, TorchScript tracing records one branch.
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x):
            if x.sum() > 0:
                return self.lin(x)
            return -self.lin(x)

    def build():
        return Net()

    def baked():
        return Baked()

    def branchy():
        return Branchy()

    def not_a_module():
        return 42
    """
)


def dims(path: Path, which: str = "input") -> dict[str, list[object]]:
    proto = onnx.load(str(path), load_external_data=False)
    values = proto.graph.input if which == "input" else proto.graph.output
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


@pytest.fixture(scope="module")
def model_py(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "net.py"
    path.write_text(MODEL_PY)
    return path


@pytest.fixture(scope="module")
def yolo_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    out = tmp_path_factory.mktemp("yolo") / "m.onnx"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(["export", "zoo:yolo", "-o", str(out), "--dynamic", "images:0,2,3"])
    return out, rc, buffer.getvalue()


# ---- parsing


def test_parse_inputs_and_dynamic() -> None:
    assert parse_inputs(["images:1x3x64x64", "scale:1x1"]) == {"images": (1, 3, 64, 64), "scale": (1, 1)}
    assert parse_inputs("a:1x2,b:3") == {"a": (1, 2), "b": (3,)}
    assert parse_dynamic(["images:0,2,3"]) == {"images": {0: None, 2: None, 3: None}}
    assert parse_dynamic(["images:0=batch,2=h"]) == {"images": {0: "batch", 2: "h"}}
    with pytest.raises(SpecError, match="not an axis number"):
        parse_dynamic(["images:zero"])
    with pytest.raises(SpecError, match="needs a tensor name"):
        parse_dynamic(["0,2"])
    with pytest.raises(SpecError, match="twice"):
        parse_dynamic(["x:0", "x:1"])


def test_other_shapes_change_every_dynamic_axis_and_keep_shared_symbols_equal() -> None:
    shapes = {"image": (1, 3, 320, 320), "scale": (1, 1)}
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "scale": {0: "batch"}}
    other = other_shapes(shapes, axes)
    assert other["image"][0] == other["scale"][0] == 2
    assert other["image"][1] == 3
    assert other["image"][2] != 320 and other["image"][2] % 32 == 0


# ---- zoo export (the acceptance path)


def test_export_zoo_yolo_names_axes_checks_and_saves_reference(yolo_export: tuple[Path, int, str]) -> None:
    out, rc, stdout = yolo_export
    assert rc == 0
    assert dims(out)["images"] == ["batch", 3, "height", "width"]
    assert dims(out, "output")["output0"][0] == "batch" and dims(out, "output")["output0"][2] == "anchors"
    meta = metadata(out)
    assert meta[META_SOURCE] == "zoo:yolo"
    assert meta[META_REFERENCE] == "m.pt2"
    assert (out.parent / "m.pt2").is_file()
    # Nothing half-written or staged is left behind.
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.onnx", "m.pt2"]
    assert "check at other shape (images:2x3x160x160)" in stdout
    onnx.checker.check_model(str(out))


def test_exported_onnx_matches_the_zoo_module(yolo_export: tuple[Path, int, str]) -> None:
    import onnxruntime as ort
    import torch

    from trtbuild import zoo

    out = yolo_export[0]
    x = zoo.example_inputs("yolo", {"images": (2, 3, 96, 128)}, seed=3)["images"]
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    with torch.inference_mode():
        want = zoo.build_module("yolo")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)


def test_saved_reference_runs_without_python_source(yolo_export: tuple[Path, int, str]) -> None:
    from trtbuild.backends.torch_runner import TorchRunner

    out = yolo_export[0]
    runner = TorchRunner(out.parent / "m.pt2")
    with runner:
        assert [t.name for t in runner.input_metadata()] == ["images"]
        result = runner.infer({"images": np.ones((1, 3, 64, 96), np.float32)})
    assert list(result) == ["output0"] and result["output0"].shape == (1, 12, 8 * 12 + 4 * 6 + 2 * 3)
    # torch.export keeps the shape conditions it traced (here: width > 32); breaking one is a clear error.
    with runner, pytest.raises(ModelError, match="torch.export recorded this shape condition"):
        runner.infer({"images": np.ones((1, 3, 32, 32), np.float32)})


def test_python_api_returns_typed_result(tmp_path: Path) -> None:
    import trtbuild

    result = trtbuild.export("zoo:two_input", tmp_path / "two.onnx", dynamic=["image:0", "scale:0"], reference=False)
    assert isinstance(result, trtbuild.ExportResult)
    assert result.reference_path is None and not (tmp_path / "two.pt2").exists()
    # Shared zoo symbol: both inputs' axis 0 is "batch".
    assert {t.name: t.dims for t in result.inputs} == {"image": ("batch", 3, 128, 128), "scale": ("batch", 1)}
    assert [c.label for c in result.checks] == ["export shape", "other shape"]
    assert result.checks[1].shapes == {"image": [3, 3, 128, 128], "scale": [3, 1]}
    assert all(c.passed for c in result.checks)
    assert json.loads(json.dumps(result.to_dict()))["dynamic_axes"]["image"] == {"0": "batch"}


# ---- module:factory


def test_module_factory_default_and_user_axis_names(model_py: Path, tmp_path: Path) -> None:
    a = tmp_path / "a.onnx"
    assert main(["export", f"{model_py}:build", "--input", "x:1x3x16x16", "--dynamic", "x:0,2", "-o", str(a)]) == 0
    assert dims(a)["x"] == ["x_dim0", 3, "x_dim2", 16]
    assert list(dims(a, "output")) == ["output0"]
    b = tmp_path / "b.onnx"
    assert main(["export", f"{model_py}:build", "--input", "x:1x3x16x16", "--dynamic", "x:0=N,3=W", "-o", str(b),
                 "--output-names", "logits", "--no-reference"]) == 0
    assert dims(b)["x"] == ["N", 3, 16, "W"]
    assert list(dims(b, "output")) == ["logits"]


def test_weights_are_loaded_with_weights_only(model_py: Path, tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    from trtbuild.model.export import import_factory

    net = import_factory(f"{model_py}:build")()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "w.onnx"
    assert main(["export", f"{model_py}:build", "--weights", str(tmp_path / "w.pt"), "--input", "x:2x3x8x8",
                 "-o", str(out), "--no-reference"]) == 0
    x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with torch.inference_mode():
        want = net.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


def test_pickled_whole_model_is_refused(model_py: Path, tmp_path: Path) -> None:
    import torch

    from trtbuild.model.export import export, import_factory

    torch.save(import_factory(f"{model_py}:build")(), tmp_path / "whole.pt")  # a pickle, not a state dict
    with pytest.raises(ModelError, match="weights_only=True"):
        export(f"{model_py}:build", tmp_path / "x.onnx", inputs="x:1x3x8x8", weights=tmp_path / "whole.pt")
    assert not (tmp_path / "x.onnx").exists()


def test_bad_sources_are_clear(model_py: Path, tmp_path: Path) -> None:
    from trtbuild.model.export import export

    with pytest.raises(SpecError, match="module:factory"):
        export("no_colon_here", tmp_path / "x.onnx")
    with pytest.raises(SpecError, match="has no callable 'nope'"):
        export(f"{model_py}:nope", tmp_path / "x.onnx", inputs="x:1x3x8x8")
    with pytest.raises(ModelError, match="not a torch.nn.Module"):
        export(f"{model_py}:not_a_module", tmp_path / "x.onnx", inputs="x:1x3x8x8")
    with pytest.raises(SpecError, match="--input"):
        export(f"{model_py}:build", tmp_path / "x.onnx")
    with pytest.raises(SpecError, match="neither an input"):
        export(f"{model_py}:build", tmp_path / "x.onnx", inputs="x:1x3x8x8", dynamic="y:0")
    with pytest.raises(SpecError, match="axes are 0..3"):
        export(f"{model_py}:build", tmp_path / "x.onnx", inputs="x:1x3x8x8", dynamic="x:4")
    assert list(tmp_path.iterdir()) == []


def test_baked_dynamic_axis_fails_the_check_and_writes_nothing(model_py: Path, tmp_path: Path) -> None:
    from trtbuild.model.export import export

    with pytest.raises((ComparisonFailed, ModelError), match="other shape"):
        export(f"{model_py}:baked", tmp_path / "baked.onnx", inputs="x:1x3x4x4", dynamic="x:0")
    assert list(tmp_path.iterdir()) == []


def test_reference_falls_back_to_torchscript(model_py: Path, tmp_path: Path) -> None:
    from trtbuild.model.export import export

    result = export(f"{model_py}:branchy", tmp_path / "br.onnx", inputs="x:2x4", dynamic="x:0")
    assert result.reference_format == "torchscript"
    assert result.reference_path == str(tmp_path / "br.ts")
    assert any("torch.export" in w for w in result.warnings)
    assert metadata(tmp_path / "br.onnx")[META_REFERENCE] == "br.ts"


def test_static_export_and_simplify(model_py: Path, tmp_path: Path) -> None:
    from trtbuild.model.export import export

    result = export(f"{model_py}:build", tmp_path / "s.onnx", inputs="x:1x3x8x8", simplify=True, reference=False)
    assert result.simplified
    assert dims(tmp_path / "s.onnx")["x"] == [1, 3, 8, 8]
    assert [c.label for c in result.checks] == ["export shape"]


def test_dynamo_exporter(model_py: Path, tmp_path: Path) -> None:
    from trtbuild.model.export import export

    result = export(f"{model_py}:build", tmp_path / "d.onnx", inputs="x:1x3x8x8", dynamic="x:0=batch",
                    dynamo=True, reference=False)
    assert result.exporter == "dynamo"
    assert dims(tmp_path / "d.onnx")["x"] == ["batch", 3, 8, 8]
    assert dims(tmp_path / "d.onnx", "output")["output0"][0] == "batch"  # renamed everywhere, not s0
    assert all(c.passed for c in result.checks)


# ---- optimize


def test_optimize_basic_stays_buildable_and_extended_is_ort_only(tmp_path: Path, resnet_onnx: Path) -> None:
    from trtbuild.model.inspect import ORT_ONLY_KEY, inspect_model
    from trtbuild.plan import plan_build
    from trtbuild.spec import BuildSpec

    basic, extended = tmp_path / "basic.onnx", tmp_path / "ext.onnx"
    assert main(["optimize", str(resnet_onnx), "--level", "basic", "-o", str(basic)]) == 0
    assert main(["optimize", str(resnet_onnx), "--level", "extended", "-o", str(extended)]) == 0
    assert ORT_ONLY_KEY not in metadata(basic)
    assert metadata(extended)[ORT_ONLY_KEY] == "true"
    assert not inspect_model(basic).ort_only and inspect_model(extended).ort_only
    assert inspect_model(basic).nonstandard_ops == {}
    assert "com.microsoft::FusedConv" in inspect_model(extended).nonstandard_ops
    spec = BuildSpec.from_pairs([("minShapes", "input:1x3x224x224"), ("maxShapes", "input:2x3x224x224")], dialect=None)
    plan_build(spec, basic)  # accepted
    with pytest.raises(ModelError, match="ONNX Runtime"):
        plan_build(spec, extended)


def test_optimized_graph_computes_the_same(tmp_path: Path, two_input_onnx: Path) -> None:
    import onnxruntime as ort

    from trtbuild.model.optimize import optimize

    result = optimize(two_input_onnx, tmp_path / "o.onnx", level="basic")
    assert not result.ort_only and result.nodes_after <= result.nodes_before
    feed = {"image": np.random.default_rng(1).random((2, 3, 32, 32), dtype=np.float32),
            "scale": np.full((2, 1), 1.5, np.float32)}
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (two_input_onnx, tmp_path / "o.onnx")]
    a, b = (s.run(None, feed)[0] for s in sessions)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
    with pytest.raises(SpecError, match="another file"):
        optimize(tmp_path / "o.onnx", tmp_path / "o.onnx")


def test_output_that_is_a_folder_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "out.onnx").mkdir()
    assert main(["export", "zoo:resnet", "-o", str(tmp_path / "out.onnx")]) == SpecError.exit_code
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"]  # no .pt2 reference beside it
