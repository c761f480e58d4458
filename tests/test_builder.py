"""The builder and engine loading against the TensorRT test double (tests/trt_emulator) at 8.6, 10.x, 11.x.

The double runs on the CPU through ONNX Runtime: these tests check which TensorRT API calls trtbuild
makes at each API level and what it writes; no number here is a TensorRT or GPU figure. Tests marked
``gpu`` run only where real TensorRT and a GPU are importable.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from trtbuild.cli import main

TWO_INPUT = ["--min", "image:1x3x64x64,scale:1x1", "--max", "image:4x3x128x128,scale:4x1"]
PROFILE = {
    "image": {"min": [1, 3, 64, 64], "opt": [4, 3, 128, 128], "max": [4, 3, 128, 128]},
    "scale": {"min": [1, 1], "opt": [4, 1], "max": [4, 1]},
}


def build(tmp_path: Path, *extra: str, model: str = "zoo:two_input", name: str = "m.engine") -> tuple[int, Path]:
    out = tmp_path / name
    shapes = TWO_INPUT if model == "zoo:two_input" else []
    return main(["build", model, *shapes, "--output", str(out), *extra]), out


def manifest_of(path: Path) -> dict[str, Any]:
    return json.loads(Path(str(path) + ".json").read_text())


def plan_header(path: Path) -> dict[str, Any]:
    """What the double recorded in its plan: the flags and settings the builder config really had."""
    from trt_emulator import _plan

    return _plan.decode(path.read_bytes())[0]


def err_text(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().err.split())


def tiny_onnx(path: Path, kind: str) -> Path:
    """Small models: an FP16-cast graph (FP32 I/O), a Q/DQ graph, or one with an op no parser knows."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])
    inits = []
    if kind == "fp16":
        nodes = [helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16, name="to_half"),
                 helper.make_node("Relu", ["h"], ["r"], name="relu"),
                 helper.make_node("Cast", ["r"], ["y"], to=TensorProto.FLOAT, name="to_float")]  # fmt: skip
    elif kind == "qdq":
        inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z")]
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
                 helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dequant"),
                 helper.make_node("Relu", ["d"], ["y"], name="relu")]  # fmt: skip
    else:
        nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("FooBar", ["r"], ["y"], name="bad_node")]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    return path


TINY = ["--min", "x:1x4", "--max", "x:8x4"]


# ---------------------------------------------------------------------------------------------- every level


def test_two_input_dynamic_build_and_inspect(trt_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trt = trt_emulator
    rc, engine = build(tmp_path)
    assert rc == 0, capsys.readouterr().err
    manifest = manifest_of(engine)
    assert manifest["tensorrt"]["version"] == trt.__version__
    assert manifest["profiles"] == [PROFILE]
    assert [t["name"] for t in manifest["io"]] == ["image", "scale", "output"]
    assert manifest["gpu"]["name"].startswith("Emulated GPU") and manifest["gpu"]["compute_capability"] == "8.6"
    assert manifest["plan"]["size"] == engine.stat().st_size
    flags = manifest["precision"]["builder_flags"]
    header = plan_header(engine)
    if trt.EMULATOR_LEVEL == "8.6":
        assert "NetworkDefinitionCreationFlag.EXPLICIT_BATCH" in flags
    else:
        assert not any("EXPLICIT_BATCH" in f for f in flags)
    if trt.EMULATOR_LEVEL == "11.x":
        assert header["strongly_typed"] is True and manifest["precision"]["path"].startswith("strongly typed")
    assert not {"FP16", "INT8"} & set(header["flags"])
    capsys.readouterr()

    assert main(["inspect", str(engine), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "engine"  # read back from the deserialized engine, not the manifest
    assert report["profiles"] == [PROFILE]
    assert {t["name"]: t["dtype"] for t in report["io"]} == {"image": "float32", "scale": "float32", "output": "float32"}
    assert report["verdict"]["ok"] is True
    assert main(["inspect", str(engine)]) == 0
    assert "[4, 3, 128, 128]" in capsys.readouterr().out

    from trtbuild import load_engine

    loaded = load_engine(engine)
    assert loaded.num_io_tensors == 3 and loaded.num_optimization_profiles == 1


def test_python_api_builds(trt10: Any, tmp_path: Path) -> None:
    import trtbuild
    from trtbuild.shapes import profile_from_flags

    spec = trtbuild.BuildSpec()
    spec.build.profiles = [profile_from_flags(min="image:1x3x64x64,scale:1x1", max="image:2x3x64x64,scale:2x1")]
    spec.build.save_engine = str(tmp_path / "api.engine")
    path = trtbuild.build_engine("zoo:two_input", spec)
    assert Path(path).is_file() and manifest_of(Path(path))["profiles"][0]["image"]["max"] == [2, 3, 64, 64]


def test_without_tensorrt_the_build_says_how_to_get_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Only tensorrt-stubs is installed on CI: a namespace package without Builder.
    from trtbuild.trt.compat import tensorrt_version

    if tensorrt_version() is not None:
        pytest.skip("TensorRT is installed here")
    rc, engine = build(tmp_path)
    assert rc == 3
    err = err_text(capsys)
    assert "TensorRT" in err and "pip install tensorrt" in err
    assert not engine.exists()


# ---------------------------------------------------------------------------------------------- precision


@pytest.mark.parametrize("level", ["8.6", "10.x"])
def test_fp16_sets_the_builder_flag_up_to_10(level: str, tmp_path: Path) -> None:
    from trt_emulator import install

    with install(level):
        rc, engine = build(tmp_path, "--fp16")
        assert rc == 0
        assert "FP16" in plan_header(engine)["flags"]
        assert "FP16" in manifest_of(engine)["precision"]["builder_flags"]


def test_fp16_and_int8_on_11_go_through_the_onnx_pipeline(
    trt11: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not hasattr(trt11.BuilderFlag, "FP16")  # the double has no such name, as TensorRT 11
    rc, engine = build(tmp_path, "--fp16")
    assert rc == 0, err_text(capsys)
    manifest = manifest_of(engine)
    assert manifest["precision"]["builder_flags"] == []
    pipeline = manifest["precision"]["pipeline"]
    assert pipeline["path"] == "onnx" and pipeline["onnx"].endswith(".fp16.onnx")
    assert plan_header(engine)["flags"] == [] or "FP16" not in str(plan_header(engine)["flags"])

    # INT8 needs calibration data for the Q/DQ conversion; without it, one sentence says what to give.
    rc, engine = build(tmp_path, "--int8", name="i8.engine")
    assert rc != 0 and not engine.exists()
    assert "calib" in err_text(capsys)
    rc, engine = build(tmp_path, "--int8", "--calib-random", name="i8.engine")
    assert rc == 0, err_text(capsys)
    assert manifest_of(engine)["precision"]["pipeline"]["onnx"].endswith(".int8.onnx")

    cast = tiny_onnx(tmp_path / "half.onnx", "fp16")
    rc, engine = build(tmp_path, *TINY, "--fp16", model=str(cast), name="half.engine")
    assert rc == 0, err_text(capsys)
    manifest = manifest_of(engine)
    assert manifest["precision"]["requested"] == ["fp16"] and manifest["precision"]["builder_flags"] == []
    assert "pipeline" not in manifest["precision"]  # already cast: built as is


def test_qdq_model_sets_int8_up_to_10_and_nothing_on_11(tmp_path: Path) -> None:
    from trt_emulator import install

    qdq = tiny_onnx(tmp_path / "qdq.onnx", "qdq")
    with install("10.x"):
        rc, engine = build(tmp_path, *TINY, "--fp16", model=str(qdq), name="q10.engine")
        assert rc == 0
        assert {"INT8", "FP16"} <= set(plan_header(engine)["flags"])
    with install("11.x"):
        rc, engine = build(tmp_path, *TINY, "--int8", model=str(qdq), name="q11.engine")
        assert rc == 0
        assert "explicit Q/DQ" in manifest_of(engine)["precision"]["path"]


def test_calibrators_on_11_are_refused(trt11: Any, tmp_path: Path) -> None:
    from trtbuild.errors import SpecError
    from trtbuild.plan import plan_build
    from trtbuild.spec import BuildSpec
    from trtbuild.trt.builder import build_engine

    spec = BuildSpec.from_pairs([("minShapes", "image:1x3x64x64,scale:1x1"), ("int8", None)], dialect=None)
    spec.build.save_engine = str(tmp_path / "c.engine")
    with pytest.raises(SpecError, match="no calibrators"):  # refused by the plan, before any build
        plan_build(spec, "zoo:two_input", external_calibrator=True)
    spec.build.int8 = False
    with pytest.raises(SpecError, match="no implicit INT8 calibration"):  # and by the builder, which runs plans only
        build_engine(plan_build(spec, "zoo:two_input"), calibrator=object())


def test_int8_up_to_10_needs_calibration(trt10: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = build(tmp_path, "--int8")
    assert rc == 2 and "needs calibration" in err_text(capsys)
    cache = tmp_path / "calib.cache"
    cache.write_text("TRT-101300-EntropyCalibration2\nimage: 3c010204\nscale: 3c010204\noutput: 3c010204\n")
    rc, engine = build(tmp_path, "--int8", "--calib", str(cache))
    assert rc == 0, err_text(capsys)
    assert "INT8" in plan_header(engine)["flags"]
    assert "calibration cache" in manifest_of(engine)["precision"]["path"]
    cache.write_text("TRT-860-EntropyCalibration2\n")  # a cache from another TensorRT: no scales, no data
    rc, engine = build(tmp_path, "--int8", "--calib", str(cache), name="bad.engine")
    assert rc == 2 and "Calibration failure" in err_text(capsys) and not engine.exists()


def test_strongly_typed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trt_emulator import install

    with install("10.x"):
        rc, engine = build(tmp_path, "--stronglyTyped")
        assert rc == 0
        assert plan_header(engine)["strongly_typed"] is True
        assert "NetworkDefinitionCreationFlag.STRONGLY_TYPED" in manifest_of(engine)["precision"]["builder_flags"]
        rc, _ = build(tmp_path, "--stronglyTyped", "--fp16", name="x.engine")
        assert rc == 2 and "cannot be combined with --fp16" in err_text(capsys)
    with install("8.6"):
        rc, _ = build(tmp_path, "--stronglyTyped", name="y.engine")
        assert rc == 2
        err = err_text(capsys)
        assert "--stronglyTyped needs TensorRT 10" in err
    with install("11.x"):
        rc, engine = build(tmp_path, "--stronglyTyped", name="z.engine")  # always on: nothing to set
        assert rc == 0 and manifest_of(engine)["precision"]["builder_flags"] == []


# ---------------------------------------------------------------------------------------------- options


def test_build_options_reach_the_config(trt10: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, engine = build(
        tmp_path, "--memPoolSize=workspace:1G", "--builderOptimizationLevel=5", "--hardwareCompatibilityLevel=ampere+",
        "--tacticSources=-CUDNN,+CUBLAS_LT", "--maxAuxStreams=2", "--profilingVerbosity=detailed", "--noTF32",
        "--versionCompatible", "--sparsity=enable", "--avgTiming=4", "--preview=+aliasedPluginIO1003",
        "--tilingOptimizationLevel=2", "--maxTactics=7", "--refit",
    )  # fmt: skip
    assert rc == 0, err_text(capsys)
    header = plan_header(engine)
    assert header["hardware_compatibility_level"] == "AMPERE_PLUS"
    assert header["profiling_verbosity"] == "DETAILED"
    assert header["num_aux_streams"] == 2
    assert {"VERSION_COMPATIBLE", "SPARSE_WEIGHTS", "REFIT"} <= set(header["flags"]) and "TF32" not in header["flags"]
    cudnn, cublas_lt = 1 << int(trt10.TacticSource.CUDNN), 1 << int(trt10.TacticSource.CUBLAS_LT)
    assert header["tactic_sources"] & cublas_lt and not header["tactic_sources"] & cudnn
    manifest = manifest_of(engine)
    settings = manifest["builder_settings"]
    assert settings["mem_pool.workspace"] == 1 << 30 and settings["builder_optimization_level"] == 5
    assert settings["avg_timing_iterations"] == 4 and settings["max_num_tactics"] == 7
    assert settings["tiling_optimization_level"] == "MODERATE"
    assert manifest["compatibility"] == {"hardware": "ampere+", "version_compatible": True,
                                         "exclude_lean_runtime": False, "runtime_platform": "SameAsBuild"}  # fmt: skip
    capsys.readouterr()
    # A version-compatible plan needs engine_host_code_allowed to load (the double enforces it), and a
    # detailed build shows layer types in inspect.
    assert main(["inspect", str(engine), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "engine" and report["layers"]["detailed"] is True
    assert report["layers"]["schema"] == "Bindings" and report["layers"]["layers"][0]["type"]


@pytest.mark.parametrize(
    ("level", "option", "missing"),
    [
        ("8.6", "--runtimePlatform=WindowsAMD64", "RuntimePlatform"),
        ("8.6", "--tilingOptimizationLevel=1", "TilingOptimizationLevel"),
        ("8.6", "--maxTactics=3", "max_num_tactics"),
        ("8.6", "--stripWeights", "STRIP_PLAN"),
        ("8.6", "--hardwareCompatibilityLevel=sameComputeCapability", "SAME_COMPUTE_CAPABILITY"),
        ("8.6", "--memPoolSize=tacticSharedMem:48K", "TACTIC_SHARED_MEMORY"),
        ("8.6", "--bf16", "BF16"),
        ("8.6", "--enablePluginOverride", "ENABLE_PLUGIN_OVERRIDE"),
        ("11.x", "--tacticSources=-CUDNN", "CUDNN"),
        ("11.x", "--precisionConstraints=obey", "precisionConstraints"),
        ("11.x", "--layerPrecisions=*:fp16", "layerPrecisions"),
        ("11.x", "--inputIOFormats=fp16:chw", "fp16:chw"),
        ("11.x", "--best", "--best"),
        ("11.x", "--preview=+profileSharing0806", "PROFILE_SHARING_0806"),
    ],
)
def test_unsupported_options_name_option_and_version(level: str, option: str, missing: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from trt_emulator import install

    with install(level) as trt:
        rc, engine = build(tmp_path, option)
        assert rc == 2 and not engine.exists()
        err = err_text(capsys)
        assert missing in err and "Traceback" not in err
        assert f"TensorRT {trt.__version__}" in err


def test_layer_options_up_to_10(trt10: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(tiny_onnx(tmp_path / "tiny.onnx", "fp16"))
    rc, engine = build(tmp_path, *TINY, "--layerPrecisions=relu:fp16", "--layerOutputTypes=relu:fp16",
                       "--precisionConstraints=obey", "--markDebug=r", "--layerDeviceTypes=relu:GPU", model=model)  # fmt: skip
    assert rc == 0, err_text(capsys)
    manifest = manifest_of(engine)
    assert "OBEY_PRECISION_CONSTRAINTS" in manifest["precision"]["builder_flags"]
    assert manifest["builder_settings"]["layer_precisions"] == "relu:fp16"
    assert manifest["builder_settings"]["mark_debug"] == "r"
    rc, _ = build(tmp_path, *TINY, "--layerPrecisions=nosuchlayer:fp16", model=model, name="x.engine")
    err = err_text(capsys)
    assert rc == 2 and "no layer named 'nosuchlayer'" in err and "relu" in err
    rc, _ = build(tmp_path, *TINY, "--markDebug=nosuchtensor", model=model, name="y.engine")
    assert rc == 2 and "no tensor named 'nosuchtensor'" in err_text(capsys)


def test_io_formats_and_dla(trt10: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, engine = build(tmp_path, "--inputIOFormats=fp32:chw,fp32:chw", "--outputIOFormats=fp32:chw")
    assert rc == 0, err_text(capsys)
    rc, _ = build(tmp_path, "--inputIOFormats=chw,chw,chw", name="x.engine")
    assert rc == 2 and "has 3 entries but the network has 2" in err_text(capsys)
    rc, _ = build(tmp_path, "--useDLACore=0", "--allowGPUFallback", name="d.engine")
    assert rc == 2 and "this device has 0 DLA cores" in err_text(capsys)


def test_parser_errors_name_the_node(trt_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tiny_onnx(tmp_path / "bad.onnx", "bad")
    rc, engine = build(tmp_path, *TINY, model=str(bad))
    assert rc == 2 and not engine.exists()
    err = err_text(capsys)
    assert f"TensorRT {trt_emulator.__version__} could not parse" in err
    assert "node 1 'bad_node' (FooBar)" in err and "UNSUPPORTED_NODE" in err


def test_shape_tensor_inputs_get_values_not_dims(trt10: Any) -> None:
    from trtbuild.shapes import Profile, ShapeRange
    from trtbuild.trt.builder import _add_profiles
    from trtbuild.trt.logger import get_logger

    calls: list[tuple[Any, ...]] = []

    class Tensor:
        def __init__(self, name: str, shape_tensor: bool) -> None:
            self.name, self.is_shape_tensor = name, shape_tensor

    class Network:  # the double has no shape-tensor inputs, so a minimal network stands in
        num_inputs = 2

        def get_input(self, i: int) -> Tensor:
            return [Tensor("x", False), Tensor("target_shape", True)][i]

    class OptProfile:
        def set_shape(self, *args: Any) -> None:
            calls.append(("set_shape", *args))

        def set_shape_input(self, *args: Any) -> None:
            calls.append(("set_shape_input", *args))

    class Builder:
        def create_optimization_profile(self) -> OptProfile:
            return OptProfile()

    class Config:
        def add_optimization_profile(self, profile: Any) -> int:
            return 0

    rng = ShapeRange((1, 4), (2, 4), (8, 4))
    _add_profiles(Builder(), Network(), Config(), [Profile({"x": rng, "target_shape": rng})], get_logger())
    assert calls == [("set_shape", "x", (1, 4), (2, 4), (8, 4)), ("set_shape_input", "target_shape", [1, 4], [2, 4], [8, 4])]


def test_every_build_option_is_handled(trt10: Any) -> None:
    from trtbuild.spec import BuildOptions
    from trtbuild.trt.builder import HANDLED_OPTIONS

    assert set(HANDLED_OPTIONS) == {f.name for f in dataclasses.fields(BuildOptions)}


# ---------------------------------------------------------------------------------------------- caches, progress, writes


def test_timing_cache_is_merged_under_a_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import filelock
    from trt_emulator import install

    locks: list[str] = []
    real = filelock.FileLock

    def recording_lock(path: str, *args: Any, **kwargs: Any) -> Any:
        locks.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(filelock, "FileLock", recording_lock)
    cache = tmp_path / "trt.cache"
    with install("8.6"):
        assert build(tmp_path, "--timingCacheFile", str(cache), name="a.engine")[0] == 0
    assert b"8.6.1.6" in cache.read_bytes()
    with install("10.x"):
        assert build(tmp_path, "--timingCacheFile", str(cache), name="b.engine")[0] == 0
        assert "warning: [TensorRT] The timing cache is invalid" in capsys.readouterr().err  # TensorRT's, bridged
        assert b"10.13.0.35" in cache.read_bytes() and b"8.6.1.6" not in cache.read_bytes()
        entries = json.loads(cache.read_bytes()[6:])["entries"]
        assert build(tmp_path, "--timingCacheFile", str(cache), name="c.engine")[0] == 0
        assert json.loads(cache.read_bytes()[6:])["entries"] == entries  # merged, nothing lost
    assert locks == [str(cache) + ".lock"] * 3
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_cancelled_build_writes_nothing(trt10: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trtbuild.trt.builder as builder

    real = builder._progress_monitor

    def cancelled_monitor(bar: Any) -> Any:
        monitor = real(bar)
        monitor.cancelled = True  # as if Ctrl-C arrived: the next step_complete returns False
        return monitor

    monkeypatch.setattr(builder, "_progress_monitor", cancelled_monitor)
    rc, engine = build(tmp_path)
    assert rc == 130 and not engine.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("level", ["8.6", "10.x"])
def test_ctrl_c_during_a_build_stops_it_cleanly(level: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    from trt_emulator import install

    with install(level):
        import trtbuild.trt.builder as builder

        real_io = builder._network_io

        def ctrl_c_then_io(network: Any) -> Any:
            os.kill(os.getpid(), signal.SIGINT)  # arrives while TensorRT objects are live
            return real_io(network)

        monkeypatch.setattr(builder, "_network_io", ctrl_c_then_io)
        previous = signal.getsignal(signal.SIGINT)
        rc, engine = build(tmp_path)
        assert rc == 130 and not engine.exists() and list(tmp_path.iterdir()) == []
        assert signal.getsignal(signal.SIGINT) is previous  # the handler is put back


def test_interrupted_write_keeps_the_previous_engine(trt10: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trtbuild import engine_file

    rc, engine = build(tmp_path)
    assert rc == 0
    before = engine.read_bytes(), Path(str(engine) + ".json").read_text()

    def disk_full(handle: Any, data: memoryview) -> None:
        handle.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine_file, "_write_chunks", disk_full)
    rc, _ = build(tmp_path, "--fp16")
    assert rc == 2  # a one-sentence DiskFullError naming the path and the free space (tests/test_faults.py)
    assert (engine.read_bytes(), Path(str(engine) + ".json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.engine.json"]


# ---------------------------------------------------------------------------------------------- loading


def _no_deserialize(trt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(self: Any, data: Any) -> Any:
        raise AssertionError("bytes reached deserialize_cuda_engine")

    monkeypatch.setattr(trt.Runtime, "deserialize_cuda_engine", forbidden)


def test_engine_from_another_tensorrt_is_refused_before_deserializing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from trt_emulator import install

    from trtbuild.errors import EngineFileError

    with install("10.x"):
        assert build(tmp_path)[0] == 0
        assert build(tmp_path, "--versionCompatible", name="vc.engine")[0] == 0
    with install("11.x") as trt:
        capsys.readouterr()
        _no_deserialize(trt, monkeypatch)
        assert main(["engine", "check", str(tmp_path / "m.engine")]) == 2
        err = err_text(capsys)
        assert "built with TensorRT 10.13.0.35 but this host has TensorRT 11.4.0.106" in err
        from trtbuild import load_engine

        with pytest.raises(EngineFileError, match="10.13.0.35"):
            load_engine(tmp_path / "m.engine")
        monkeypatch.undo()
        assert main(["engine", "check", str(tmp_path / "vc.engine")]) == 0  # version-compatible: 10.x -> 11.x
        assert load_engine(tmp_path / "vc.engine").num_io_tensors == 3


def test_manifest_for_another_gpu_is_refused(trt10: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    rc, engine = build(tmp_path)
    assert rc == 0
    meta = Path(str(engine) + ".json")
    manifest = json.loads(meta.read_text())
    manifest["gpu"] = {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "source": "pycuda"}
    meta.write_text(json.dumps(manifest))
    capsys.readouterr()
    _no_deserialize(trt10, monkeypatch)
    assert main(["engine", "check", str(engine)]) == 2
    err = err_text(capsys)
    assert "NVIDIA A100-SXM4-80GB (compute capability 8.0)" in err and "Emulated GPU" in err
    assert main(["inspect", str(engine), "--json"]) == 0  # inspect still describes it, from the manifest
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "manifest" and report["verdict"]["ok"] is False


def test_truncated_and_foreign_plans_never_reach_tensorrt(trt10: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from trtbuild import load_engine
    from trtbuild.errors import EngineFileError

    rc, engine = build(tmp_path)
    assert rc == 0
    _no_deserialize(trt10, monkeypatch)
    engine.write_bytes(engine.read_bytes()[:-100])
    with pytest.raises(EngineFileError, match="truncated"):
        load_engine(engine)
    bare = tmp_path / "foreign.engine"
    bare.write_bytes(b"\x00\x01not a plan" * 10)
    with pytest.raises(EngineFileError, match="not a TensorRT plan"):
        load_engine(bare)
    from trtbuild.trt.inspector import deserialize_engine

    with pytest.raises(EngineFileError, match="not a TensorRT plan"):
        deserialize_engine(b"PK\x03\x04", None)


def test_plan_without_manifest_loads_through_tensorrt(trt10: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, engine = build(tmp_path)
    assert rc == 0
    Path(str(engine) + ".json").unlink()
    capsys.readouterr()
    assert main(["inspect", str(engine), "--json"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["source"] == "engine" and report["profiles"] == [PROFILE] and report["verdict"]["ok"] is True
    assert "has no manifest" in out.err


# ---------------------------------------------------------------------------------------------- pieces


def test_dtype_map(trt_emulator: Any) -> None:
    import numpy as np

    from trtbuild.errors import TrtbuildError
    from trtbuild.trt import dtypes

    trt = trt_emulator
    assert dtypes.to_numpy(trt, trt.DataType.HALF) == np.float16
    assert dtypes.dtype_name(trt, trt.DataType.FLOAT) == "float32"
    assert dtypes.from_numpy(trt, np.int32) == trt.DataType.INT32
    assert dtypes.from_numpy(trt, "bool") == trt.DataType.BOOL
    if hasattr(trt.DataType, "BF16"):
        assert dtypes.dtype_name(trt, trt.DataType.BF16) == "bfloat16"
        with pytest.raises(TrtbuildError, match="no numpy equivalent"):
            dtypes.to_numpy(trt, trt.DataType.BF16)
    else:  # 8.6 has no BF16/INT64
        with pytest.raises(TrtbuildError, match="types are"):
            dtypes.from_trtexec(trt, "bf16", option="--layerPrecisions")


def test_logger_bridges_to_logging(trt10: Any, caplog: pytest.LogCaptureFixture) -> None:
    from trtbuild.trt.logger import get_logger

    logger = get_logger(verbose=False)
    assert get_logger(verbose=True) is logger  # one logger per process, as TensorRT wants
    sev = trt10.ILogger.Severity
    with caplog.at_level(logging.DEBUG, logger="trtbuild.tensorrt"):
        logger.log(sev.ERROR, "boom")
        logger.log(sev.VERBOSE, "chatter")
    assert ("trtbuild.tensorrt", logging.ERROR, "[TensorRT] boom") in caplog.record_tuples
    assert ("trtbuild.tensorrt", logging.DEBUG, "[TensorRT] chatter") in caplog.record_tuples
    assert logger.take_errors() == ["boom"] and logger.take_errors() == []


def test_parse_layer_information_both_schemas() -> None:
    from trtbuild.trt.inspector import parse_layer_information

    old = parse_layer_information(json.dumps({"Layers": ["conv1", "relu1"], "Bindings": ["images", "output0"]}))
    assert old["schema"] == "Bindings" and not old["detailed"] and [la["name"] for la in old["layers"]] == ["conv1", "relu1"]
    new = parse_layer_information(json.dumps({
        "Layers": [{"Name": "conv1", "LayerType": "CaskConvolution", "TacticName": "sm80_xmma",
                    "Outputs": [{"Name": "t0", "Dimensions": [1, 8, 32, 32], "Format/Datatype": "Half"}]}],
        "I/O Tensors": [{"Name": "images", "IOMode": "Input", "DataType": "Float", "Dimensions": [-1, 3, 64, 64],
                         "ProfileInfo": [{"MinShape": [1, 3, 64, 64], "OptShape": [4, 3, 64, 64], "MaxShape": [8, 3, 64, 64]}]}],
    }))  # fmt: skip
    assert new["schema"] == "11.x I/O Tensors" and new["detailed"]
    assert new["layers"][0]["outputs"][0]["type"] == "Half" and new["layers"][0]["tactic"] == "sm80_xmma"
    assert new["io"][0]["mode"] == "input" and new["io"][0]["profiles"][0]["max"] == [8, 3, 64, 64]
    assert parse_layer_information("conv1\nrelu1\n")["schema"] == "text"
    assert parse_layer_information("")["layers"] == []


# ---------------------------------------------------------------------------------------------- real GPU


def _real_tensorrt_with_gpu() -> bool:
    try:
        import tensorrt  # noqa: F401  (real, or the stub namespace package)

        from trtbuild.trt.compat import import_pycuda_driver, import_tensorrt

        trt = import_tensorrt()
        if hasattr(trt, "EMULATOR_LEVEL"):
            return False
        cuda = import_pycuda_driver()
        cuda.init()
        return bool(cuda.Device.count())
    except Exception:
        return False


gpu = pytest.mark.skipif(not _real_tensorrt_with_gpu(), reason="needs real TensorRT, PyCUDA and an NVIDIA GPU")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("precision", [[], ["--fp16"]])
def test_gpu_build_yolo_dynamic(tmp_path: Path, precision: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from trtbuild import load_engine
    from trtbuild.trt.compat import has_precision_flags, import_tensorrt

    trt = import_tensorrt()
    if precision and not has_precision_flags(trt):
        pytest.skip("TensorRT 11 needs the ONNX FP16 pipeline (trtbuild cast) first")
    out = tmp_path / "yolo.engine"
    rc = main(["build", "zoo:yolo", "--min", "images:1x3x320x320", "--opt", "images:4x3x640x640",
               "--max", "images:8x3x640x640", "--output", str(out), "--profilingVerbosity=detailed", *precision])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    engine = load_engine(out)
    assert engine.num_optimization_profiles == 1
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "engine" and report["verdict"]["ok"] is True
    assert report["profiles"][0]["images"] == {"min": [1, 3, 320, 320], "opt": [4, 3, 640, 640], "max": [8, 3, 640, 640]}
    assert report["layers"]["detailed"] is True


def test_int8_on_10_calibrates_from_data_and_onnx_path_on_request(
    trt10: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, engine = build(tmp_path, "--int8", "--calib-random", "--calib-samples", "4")
    assert rc == 0, err_text(capsys)
    manifest = manifest_of(engine)
    assert "INT8" in manifest["precision"]["builder_flags"]
    assert manifest["precision"]["pipeline"]["path"] == "flags"
    assert Path(manifest["precision"]["pipeline"]["calibration_cache"]).is_file()  # written by the calibrator

    rc, engine = build(tmp_path, "--fp16", "--precision-path", "onnx", name="onnx.engine")
    assert rc == 0, err_text(capsys)
    manifest = manifest_of(engine)
    assert manifest["precision"]["pipeline"]["path"] == "onnx"
    assert manifest["onnx"]["path"].endswith(".fp16.onnx")
