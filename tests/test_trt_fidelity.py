"""trtbuild's TensorRT/PyCUDA paths held to NVIDIA's own code, through the test double (tests/trt_emulator).

Each test pins one behaviour the bindings (python/src/infer/pyCore.cpp, pyInt8.cpp), trtexec
(samples/common/*.cpp) or Polygraphy (backend/trt/*.py) have, and that trtbuild once got wrong. The double
runs engines through ONNX Runtime on the CPU: nothing here is a TensorRT or GPU figure, and what only a
GPU can confirm is listed in docs/tensorrt-runtime.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trt_emulator import install

from trtbuild.bench.timing import TimingOptions
from trtbuild.errors import EngineFileError, ShapeError, TrtbuildError

PROFILES = (
    {"min": "images:1x3x64x64", "opt": "images:2x3x96x96", "max": "images:2x3x128x128"},
    {"min": "images:3x3x160x160", "opt": "images:4x3x192x192", "max": "images:4x3x256x256"},
)
TINY = TimingOptions(warm_up_ms=2.0, iterations=4, duration_s=0.02)


def build(onnx: Path, out: Path, *, profiles: Any = PROFILES, calibrator: Any = None, **options: Any) -> Path:
    """An engine built through trtbuild's plan -> builder path; ``options`` are BuildOptions/SystemOptions fields."""
    from trtbuild.build import build_from_plan
    from trtbuild.plan import plan_build
    from trtbuild.shapes import profile_from_flags
    from trtbuild.spec import BuildSpec

    spec = BuildSpec(onnx=str(onnx))
    spec.build.profiles = [profile_from_flags(**p) for p in profiles]
    spec.build.save_engine = str(out)
    for key, value in options.items():
        setattr(spec.system if hasattr(spec.system, key) else spec.build, key, value)
    plan = plan_build(spec, str(onnx), external_calibrator=calibrator is not None)
    return Path(build_from_plan(plan, calibrator=calibrator))


def images(batch: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    return {"images": np.random.default_rng(seed).random((batch, 3, size, size), dtype=np.float32)}


def ort(onnx: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime

    return list(onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).run(None, feed))


# ------------------------------------------------------------------------------------------------ 1, 10 graphs


def test_enqueue_failing_under_capture_falls_back_to_plain_enqueue(yolo_onnx: Path, tmp_path: Path) -> None:
    """Item 1: execute_async_v3 returning False while capturing means no graph (sampleInference.cpp 10.13)."""
    from trtbuild.trt.runtime import TrtRuntime

    with install("10.x") as trt:
        engine = build(yolo_onnx, tmp_path / "yolo.engine")
        trt.EMULATOR_CAPTURE_UNSAFE_OPS = {"Conv"}  # this engine's enqueue fails under capture
        with TrtRuntime(engine) as rt:
            traces, mode = rt.time_trtexec(images(2, 96), TINY)
        assert mode.cuda_graph == "no-graph" and "capture" in mode.note
        assert not trt.EMULATOR_CAPTURE.execs  # the capture's graph was destroyed, never instantiated
        assert len(traces.compute_start) >= TINY.iterations


def test_graphs_need_cuda_python_and_say_so(yolo_onnx: Path, tmp_path: Path) -> None:
    """Item 10: no released PyCUDA binds stream capture; without cuda-python the mode says how to get graphs."""
    from trtbuild.trt.runtime import TrtRuntime

    with install("10.x", cuda_python=False):
        import pycuda.driver as cuda

        assert not hasattr(cuda.Stream, "begin_capture")  # PyCUDA 2026.1 has no capture API either
        engine = build(yolo_onnx, tmp_path / "yolo.engine")
        with TrtRuntime(engine) as rt:
            _, mode = rt.time_trtexec(images(2, 96), TINY)
    assert mode.cuda_graph == "no-graph" and "pip install cuda-python" in mode.note


def test_trt_extra_installs_cuda_python() -> None:
    """Item 10: graphs are the default timing mode, so ``[trt]`` brings what captures them."""
    from trtbuild._toml import load_toml

    extras = load_toml(Path(__file__).parents[1] / "pyproject.toml")["project"]["optional-dependencies"]
    assert any(req.startswith("cuda-python") for req in extras["trt"])


# ------------------------------------------------------------------------------------------------ 2 formats


@pytest.mark.parametrize("level", ["8.6", "10.x"])
def test_vectorized_io_format_is_refused_before_any_copy(level: str, yolo_onnx: Path, tmp_path: Path) -> None:
    """Item 2: an fp16:hwc8 input pads channels to 8; linear buffers would be read past and mis-ordered."""
    from trtbuild.trt.runtime import TrtRuntime

    with install(level) as trt:
        engine = build(yolo_onnx, tmp_path / "hwc8.engine", input_io_formats="fp16:hwc8")
        with pytest.raises(TrtbuildError, match=r"'images' uses the I/O format HWC8.*--inputIOFormats"), TrtRuntime(engine):
            pass
        assert not trt._device_memory.context_stack  # the device context was popped on the way out
        linear = build(yolo_onnx, tmp_path / "fp16.engine", input_io_formats="fp16:chw")
        with TrtRuntime(linear) as rt:
            feed = images(1, 64)
            out = rt.infer(feed)["output0"]
        np.testing.assert_allclose(out, ort(yolo_onnx, feed)[0], rtol=1e-2, atol=1e-2)


def test_double_lays_out_hwc8_like_tensorrt() -> None:
    """The double's HWC8: channels padded to 8 and innermost, strides as getTensorStrides gives them."""
    from trt_emulator import _formats

    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    flat = _formats.to_layout(x, "HWC8")
    assert flat.size == 2 * 8 * 2 * 2 and _formats.nbytes(x.shape, "HWC8", 4) == flat.nbytes
    assert flat[:8].tolist() == [0, 4, 8, 0, 0, 0, 0, 0]  # pixel (0,0): 3 channels then 5 zeros of padding
    assert _formats.strides(x.shape, "HWC8") == [32, 1, 16, 8]
    np.testing.assert_array_equal(_formats.from_layout(flat, x.shape, "HWC8"), x)
    for fmt in ("CHW4", "CHW32", "HWC", "HWC16"):
        np.testing.assert_array_equal(_formats.from_layout(_formats.to_layout(x, fmt), x.shape, fmt), x)


# ------------------------------------------------------------------------------------------------ 3 plugins


def instance_norm_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("InstanceNormalization", ["x", "scale", "bias"], ["y"], epsilon=1e-5)],
        "instnorm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor("scale", TensorProto.FLOAT, [3], [1.0, 2.0, 0.5]),
         helper.make_tensor("bias", TensorProto.FLOAT, [3], [0.0, 1.0, -1.0])],  # fmt: skip
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_plugin_engine_runs_in_a_fresh_process(tmp_path: Path) -> None:
    """Item 3: 8.6's parser imports InstanceNormalization as a plugin; a new process must register TensorRT's
    plugins (init_libnvinfer_plugins) before deserializing, as Polygraphy's EngineFromBytes does."""
    from trtbuild.trt.runtime import TrtRuntime

    onnx = instance_norm_model(tmp_path / "norm.onnx")
    profiles = [{"min": "x:1x3x8x8", "opt": "x:2x3x8x8", "max": "x:4x3x8x8"}]
    with install("8.6"):
        engine = build(onnx, tmp_path / "norm.engine", profiles=profiles)
    with install("8.6") as trt:  # a fresh registry: nothing registered yet, as in a new process
        assert not trt.get_plugin_registry()._creators
        feed = {"x": np.random.default_rng(1).random((2, 3, 8, 8), dtype=np.float32)}
        with TrtRuntime(engine) as rt:
            out = rt.infer(feed)["y"]
        np.testing.assert_allclose(out, ort(onnx, feed)[0], rtol=1e-4, atol=1e-5)
        from trtbuild.engine_file import inspect_engine

        assert inspect_engine(engine)  # trtbuild inspect deserializes it too


def test_user_plugin_libraries_come_from_the_caller(tmp_path: Path) -> None:
    from trtbuild.trt.runtime import register_plugins

    library = tmp_path / "libmyplugin.so"
    library.write_text("EMULATED_TRT_PLUGIN_LIBRARY:MyPlugin_TRT")
    with install("10.x") as trt:
        register_plugins(trt, trt.Logger(), [str(library)])
        assert {"MyPlugin_TRT", "InstanceNormalization_TRT"} <= trt.get_plugin_registry()._creators
        with pytest.raises(EngineFileError, match="does not exist"):
            register_plugins(trt, trt.Logger(), [str(tmp_path / "missing.so")])
        (tmp_path / "junk.so").write_text("not a library")
        with pytest.raises(EngineFileError, match="could not load the plugin library"):
            register_plugins(trt, trt.Logger(), [str(tmp_path / "junk.so")])


# ------------------------------------------------------------------------------------------------ 4 devices


def test_engine_runs_on_the_device_it_was_built_for(yolo_onnx: Path, tmp_path: Path) -> None:
    """Item 4: --device 1 builds on GPU 1; running must use GPU 1's primary context, not autoprimaryctx's 0."""
    from trtbuild.trt.runtime import TrtRuntime

    with install("10.x", devices=2) as trt:
        engine = build(yolo_onnx, tmp_path / "yolo.engine", device=1)
        mem = trt._device_memory
        with TrtRuntime(engine) as rt:
            assert rt.device_index == 1 and "GPU 1" in rt.device_name()
            out = rt.infer(images(1, 64))["output0"]
            assert {mem.device_at(b.address) for b in rt.buffers.values()} == {1}
        assert out.shape[0] == 1 and not mem.context_stack  # popped again
        with TrtRuntime(engine, device=0) as rt:  # an explicit --device wins over the manifest
            assert "GPU 0" in rt.device_name()
        with pytest.raises(TrtbuildError, match="--device=2: this machine has 2 CUDA device"), TrtRuntime(engine, device=2):
            pass


def test_double_refuses_memory_of_another_device(yolo_onnx: Path, tmp_path: Path) -> None:
    with install("10.x", devices=2) as trt:
        engine_path = build(yolo_onnx, tmp_path / "yolo.engine")
        import pycuda.driver as cuda

        ctx0 = cuda.Device(0).retain_primary_context()
        ctx0.push()
        engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine_path.read_bytes())
        context = engine.create_execution_context()
        ctx0.pop()
        cuda.Device(1).retain_primary_context().push()
        buf = cuda.mem_alloc(4 * 3 * 64 * 64)
        assert trt._device_memory.device_at(int(buf)) == 1
        context.set_input_shape("images", (1, 3, 64, 64))
        context.set_tensor_address("images", int(buf))
        assert context.execute_async_v3(0) is False  # device 1 is current, the engine lives on device 0
        cuda.Context.pop()
        with pytest.raises(cuda.LogicError, match="invalid device context"):
            cuda.mem_alloc(16)  # no context is current any more


# ------------------------------------------------------------------------------------------------ 5, 6 calibration


class ArrayCalibrationData:
    """The part of trtbuild's CalibrationData the calibrator uses, over fixed arrays (one batch)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.batch_shapes = {n: tuple(a.shape) for n, a in arrays.items()}

    def provenance(self) -> dict[str, Any]:
        return {"arrays": sorted(self.arrays)}

    def num_batches(self, which: str = "calib") -> int:
        return 1

    def batches(self, which: str = "calib", *, pad_last: bool = False) -> Any:
        yield dict(self.arrays)


def test_calibration_runs_at_the_batch_shape(yolo_onnx: Path, tmp_path: Path) -> None:
    """Item 5: TensorRT reads the calibration profile's OPT shape; a batch of 8 must not be cut to profile 0's 1."""
    from trtbuild.trt.calibrator import make_calibrator

    batch = np.random.default_rng(2).random((8, 3, 64, 64), dtype=np.float32)
    profiles = [{"min": "images:1x3x64x64", "opt": "images:1x3x64x64", "max": "images:8x3x64x64"}]
    with install("10.x") as trt:
        calibrator = make_calibrator(ArrayCalibrationData({"images": batch}), tmp_path / "c.calib", trt=trt)
        build(yolo_onnx, tmp_path / "int8.engine", profiles=profiles, calibrator=calibrator, int8=True)
        calibrator.raise_if_failed()
        (read,) = trt.EMULATOR_CALIBRATION_READS
        np.testing.assert_array_equal(read["images"], batch)  # all 8 images, not the first one
        with pytest.raises(ShapeError, match="--calibProfile=0 has the OPT shape 1x3x64x64"):
            calibrator = make_calibrator(ArrayCalibrationData({"images": batch}), tmp_path / "d.calib", trt=trt)
            build(yolo_onnx, tmp_path / "int8b.engine", profiles=profiles, calibrator=calibrator, int8=True,
                  calib_profile=0)  # fmt: skip


def mixed_types_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["idx"], ["idx_f"], to=TensorProto.FLOAT),
         helper.make_node("Cast", ["img"], ["img_f"], to=TensorProto.FLOAT),
         helper.make_node("Add", ["x", "idx_f"], ["s"]),
         helper.make_node("Add", ["s", "img_f"], ["y"])],  # fmt: skip
        "mixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]),
         helper.make_tensor_value_info("idx", TensorProto.INT64, [2, 4]),
         helper.make_tensor_value_info("img", TensorProto.UINT8, [2, 4])],  # fmt: skip
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


@pytest.mark.parametrize("level", ["8.6", "10.x"])
def test_calibration_feeds_each_input_in_the_type_tensorrt_reads(level: str, tmp_path: Path) -> None:
    """Item 6: index inputs in the network's type (8.x: int64 -> int32), everything else float32 (Polygraphy)."""
    from trtbuild.trt.calibrator import make_calibrator

    onnx = mixed_types_model(tmp_path / "mixed.onnx")
    arrays = {"x": np.full((2, 4), 0.5, np.float32), "idx": np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.int64),
              "img": np.array([[0, 10, 200, 255], [1, 2, 3, 4]], np.uint8)}  # fmt: skip
    with install(level) as trt:
        calibrator = make_calibrator(ArrayCalibrationData(arrays), tmp_path / "m.calib", trt=trt)
        build(onnx, tmp_path / "m.engine", profiles=[], calibrator=calibrator, int8=True)
        calibrator.raise_if_failed()
        (read,) = trt.EMULATOR_CALIBRATION_READS
    assert read["idx"].dtype == (np.int32 if level == "8.6" else np.int64)
    assert read["idx"].tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert read["img"].dtype == np.float32 and read["img"].tolist() == arrays["img"].astype(np.float32).tolist()


# ------------------------------------------------------------------------------------------------ 7, 12 DLA


def test_dla_engine_runs_on_its_core_and_obey_drops_prefer(yolo_onnx: Path, tmp_path: Path) -> None:
    """Item 7: runtime.DLA_core is set before deserializing (trtexec). Item 12: OBEY without PREFER."""
    import json

    from trtbuild.trt.runtime import TrtRuntime

    fixed = [{"min": "images:1x3x64x64", "opt": "images:1x3x64x64", "max": "images:1x3x64x64"}]
    with install("10.x", dla_cores=2):
        engine = build(yolo_onnx, tmp_path / "dla.engine", profiles=fixed, use_dla_core=1, precision_constraints="obey")
        flags = json.loads(Path(str(engine) + ".json").read_text())["precision"]["builder_flags"]
        assert "OBEY_PRECISION_CONSTRAINTS" in flags and "PREFER_PRECISION_CONSTRAINTS" not in flags
        with TrtRuntime(engine) as rt:
            assert rt._runtime.DLA_core == 1 and rt.engine._dla_core == 1
            assert rt.infer(images(1, 64))["output0"].shape[0] == 1
        build(yolo_onnx, tmp_path / "dla2.engine", profiles=fixed, use_dla_core=0)
        assert "PREFER_PRECISION_CONSTRAINTS" in json.loads(Path(str(tmp_path / "dla2.engine.json")).read_text())["precision"]["builder_flags"]


# ------------------------------------------------------------------------------------------------ 8 timing cache


def test_timing_cache_shared_by_two_gpus_keeps_both(yolo_onnx: Path, tmp_path: Path) -> None:
    """Item 8: load and merge with ignore_mismatch=True (NvInfer.h ITimingCache::combine; Polygraphy, trtexec)."""
    import json

    cache = tmp_path / "shared.cache"
    with install("10.x") as trt:
        trt.EMULATOR_GPU_ID = "GPU-A"
        build(yolo_onnx, tmp_path / "a.engine", timing_cache_file=str(cache))
        trt.EMULATOR_GPU_ID = "GPU-B"
        build(yolo_onnx, tmp_path / "b.engine", timing_cache_file=str(cache))
    entries = json.loads(cache.read_bytes()[len(b"EMUTC1"):])["entries"]
    assert {key.split("|")[0] for key in entries} == {"GPU-A", "GPU-B"}


# ------------------------------------------------------------------------------------------------ 9 profiles


def test_profile_switch_failure_is_a_clear_error(yolo_onnx: Path, tmp_path: Path) -> None:
    """Item 9: set_optimization_profile_async raises RuntimeError on failure (pyCore.cpp); 8.6 gives each
    profile to one execution context at a time."""
    from trtbuild.trt.runtime import TrtRuntime

    with install("8.6"):
        engine = build(yolo_onnx, tmp_path / "yolo.engine")
        with TrtRuntime(engine) as rt:
            rt.infer(images(1, 64))
            other = rt.engine.create_execution_context()  # takes profile 1, the first free one
            assert other.active_optimization_profile == 1
            with pytest.raises(TrtbuildError, match="optimization profile 1.*--useProfile"):
                rt.infer(images(3, 160))
            del other


def test_double_binding_raises_as_pycore(yolo_onnx: Path, tmp_path: Path) -> None:
    with install("10.x") as trt:
        engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(build(yolo_onnx, tmp_path / "e.engine").read_bytes())
        context = engine.create_execution_context()
        with pytest.raises(RuntimeError, match="Error in set optimization profile async"):
            context.set_optimization_profile_async(5, 0)
        assert context.set_optimization_profile_async(1, 0) is True
        # The binding labels its (profileIndex, tensorName) lambda "name", "profile_index": call it positionally.
        with pytest.raises(RuntimeError, match="does not correspond to an input shape tensor"):
            engine.get_tensor_profile_values(0, "images")
        with pytest.raises(TypeError, match="incompatible function arguments"):
            engine.get_tensor_profile_values("images", 0)
        assert engine[-1] == "output0" and engine[0] == "images"
        with pytest.raises(IndexError):
            engine[2]
        with pytest.raises(RuntimeError, match="maximum allowed number of dimensions"):
            context.set_input_shape("images", [1] * 9)


# ------------------------------------------------------------------------------------------------ 11 host code


def test_version_compatible_engine_without_manifest_loads_on_request(
    yolo_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 11: a trtexec/Polygraphy-built version-compatible engine has no manifest; trtexec allows its host
    code with --versionCompatible at load time, trtbuild with TRTBUILD_ALLOW_ENGINE_HOST_CODE=1."""
    from trtbuild.trt.runtime import ALLOW_HOST_CODE_ENV, TrtRuntime

    with install("10.x"):
        engine = build(yolo_onnx, tmp_path / "vc.engine", version_compatible=True)
        Path(str(engine) + ".json").unlink()
        monkeypatch.delenv(ALLOW_HOST_CODE_ENV, raising=False)
        with pytest.raises(EngineFileError, match=ALLOW_HOST_CODE_ENV), TrtRuntime(engine):
            pass
        monkeypatch.setenv(ALLOW_HOST_CODE_ENV, "1")
        with TrtRuntime(engine) as rt:
            assert rt.infer(images(1, 64))["output0"].shape[0] == 1
        with pytest.raises(EngineFileError, match="version-compatible"), TrtRuntime(engine, allow_host_code=False):
            pass


def test_cuda_python_stand_in_is_gone_after_install() -> None:
    before = sys.modules.get("cuda.bindings.runtime")
    with install("10.x"):
        import cuda.bindings.runtime as cudart

        assert "Emulated" in (cudart.__doc__ or "")
    assert sys.modules.get("cuda.bindings.runtime") is before


# ------------------------------------------------------------------------------------------------ stripped weights


@pytest.mark.parametrize("level", ["10.x", "11.x"])
def test_weight_stripped_engine_is_refitted_from_its_onnx(level: str, yolo_onnx: Path, tmp_path: Path) -> None:
    """A --stripWeights plan cannot run until refitted; trtexec's --refitFromOnnx (refitter + ONNX refitter +
    refit_cuda_engine_async). trtbuild refits from the ONNX its manifest names, checked by sha256."""
    import shutil

    from trtbuild.trt.runtime import TrtRuntime

    onnx = tmp_path / "yolo.onnx"
    shutil.copy(yolo_onnx, onnx)
    with install(level):
        engine = build(onnx, tmp_path / "stripped.engine", strip_weights=True)
        feed = images(2, 96)
        with TrtRuntime(engine) as rt:
            np.testing.assert_allclose(rt.infer(feed)["output0"], ort(onnx, feed)[0], rtol=1e-4, atol=1e-5)
        onnx.unlink()
        with pytest.raises(EngineFileError, match="--stripWeights"), TrtRuntime(engine):
            pass


def test_dla_standalone_loadable_is_refused_before_building(yolo_onnx: Path, tmp_path: Path) -> None:
    """--buildDLAStandalone makes a cuDLA loadable (trtexec's help), which is no TensorRT plan: refuse it up front
    instead of failing to write it after the build."""
    from trtbuild.errors import SpecError

    fixed = [{"min": "images:1x3x64x64", "opt": "images:1x3x64x64", "max": "images:1x3x64x64"}]
    with install("10.x", dla_cores=1), pytest.raises(SpecError, match="cuDLA loadable"):
        build(yolo_onnx, tmp_path / "dla.engine", profiles=fixed, use_dla_core=0, build_dla_standalone=True,
              input_io_formats="fp16:chw16", output_io_formats="fp16:chw16")  # fmt: skip
    assert not (tmp_path / "dla.engine").exists()
