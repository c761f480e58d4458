"""The TensorRT/PyCUDA test double: its API surface against the real one, and the TensorRT contracts
it enforces. Numbers it produces are CPU (ONNX Runtime) figures, never TensorRT ones."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trt_emulator import LEVELS, api_reference, install
from trt_emulator._levels import ABSENT_CLASSES, LEGACY_86_MEMBERS

REF = api_reference.load()  # the real API, as a snapshot in the repo (tests/trt_emulator/api_reference.json)


def _stub_dir() -> Path | None:
    spec = importlib.util.find_spec("tensorrt_bindings")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        if (Path(loc) / "tensorrt.pyi").is_file():
            return Path(loc)
    return None


def emulator_surface(trt: Any) -> dict[str, dict[str, int | None]]:
    """Every public name the fake module exposes: module names, class members, enum members with values."""
    surface: dict[str, dict[str, int | None]] = {"<module>": {}}
    for name in dir(trt):
        if name.startswith("_") or name.startswith("EMULATOR_"):
            continue
        surface["<module>"][name] = None
        obj = getattr(trt, name)
        if isinstance(obj, type) and obj.__module__ == "tensorrt" or name == "Dims":
            surface[name] = _class_members(obj)
    surface["ILogger.Severity"] = _class_members(trt.ILogger.Severity)
    return surface


def _class_members(cls: type) -> dict[str, int | None]:
    names = {n for n in dir(cls) if not n.startswith("_")}
    for klass in cls.__mro__:
        if klass.__module__ == "builtins" and klass is not object:
            names -= set(dir(klass))  # IHostMemory is a bytes subclass: bytes' own methods are not TensorRT's
    members = getattr(cls, "__members__", None)
    return {n: (int(members[n].value) if members and n in members else None) for n in names}


# ------------------------------------------------------------------------------------ conformance


def test_snapshot_matches_the_installed_stubs() -> None:
    """The snapshot holds the reference it claims: its 10.13 part is what tensorrt-stubs says, when installed."""
    assert len(REF.stubs) > 150 and "IExecutionContext" in REF.stubs and "BuilderFlag" in REF.api114
    assert REF.stub_signatures and REF.api114_signatures and REF.legacy_86_documented
    stub_dir = _stub_dir()
    if stub_dir is not None:  # `make setup` installs it; elsewhere the snapshot stands on its own
        classes, bases, module = api_reference.parse_stubs(stub_dir)
        assert classes == REF.stubs and bases == REF.stub_bases and module == REF.stub_module


@pytest.mark.parametrize("level", LEVELS)
def test_every_exposed_name_exists_in_the_real_api(level: str) -> None:
    with install(level) as trt:
        surface = emulator_surface(trt)
    unknown = []
    for cls, members in surface.items():
        if cls == "<module>":
            unknown += [n for n in members if n not in REF.stub_module and n not in REF.module114]
            continue
        real = {**REF.stub_members(cls), **REF.api114.get(cls, {})}
        assert cls in REF.stubs or cls in REF.api114, f"class {cls} exists in neither reference"
        for name in members:
            if name in real:
                continue
            if level == "8.6" and name in LEGACY_86_MEMBERS.get(cls, set()):
                assert f"{cls}.{name}" in REF.legacy_86_documented, f"8.6-only {cls}.{name} is not in the 8.6 notes"
                continue
            unknown.append(f"{cls}.{name}")
    assert not unknown, f"the {level} emulator exposes names the real TensorRT does not have: {unknown}"


@pytest.mark.parametrize("level", LEVELS)
def test_method_parameter_names_match_the_real_api(level: str) -> None:
    """Code under test may pass arguments by keyword, so the emulator's parameter names must be TensorRT's."""
    import inspect

    stubs, api114 = REF.stub_signatures, REF.api114_signatures
    primary, secondary = (api114, stubs) if level == "11.x" else (stubs, api114)
    mismatched, checked = [], 0
    with install(level) as trt:
        for cls_name in dir(trt):
            cls = getattr(trt, cls_name)
            if not isinstance(cls, type) or cls.__module__ != "tensorrt":
                continue
            for name, fn in vars(cls).items():
                if name.startswith("_") or not inspect.isfunction(fn):
                    continue
                ref = primary.get((cls_name, name)) or secondary.get((cls_name, name))
                mine = [p for p in inspect.signature(fn).parameters if p != "self"]
                if ref:
                    checked += 1
                    if mine not in ref:
                        mismatched.append(f"{cls_name}.{name}{mine} vs {ref}")
    assert not mismatched
    assert checked > 50


@pytest.mark.parametrize("level", ["10.x", "11.x"])
def test_enum_values_follow_the_version(level: str) -> None:
    with install(level) as trt:
        surface = emulator_surface(trt)
    ref = REF.stubs if level == "10.x" else REF.api114
    checked = 0
    for cls, members in surface.items():
        for name, value in members.items():
            if value is None:
                continue
            expected = ref.get(cls, {}).get(name)
            if cls == "ILogger.Severity" and expected is None:
                continue  # 11.4 lists Severity members without values; 10.x checks them
            assert expected == value, f"{level} {cls}.{name} = {value}, reference says {expected}"
            checked += 1
    assert checked > 100


def test_levels_expose_exactly_their_names() -> None:
    with install("11.x") as trt:
        for flag in ("FP16", "INT8", "BF16", "FP8", "INT4", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"):
            assert not hasattr(trt.BuilderFlag, flag)
        assert not hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
        assert int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 0
        for name in ("IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator", "IInt8Calibrator", "CalibrationAlgoType"):
            assert not hasattr(trt, name)
        for src in ("CUBLAS", "CUBLAS_LT", "CUDNN"):
            assert not hasattr(trt.TacticSource, src)
        builder = trt.Builder(trt.Logger())
        assert not hasattr(builder, "platform_has_fast_fp16")
        config = builder.create_builder_config()
        with pytest.raises(AttributeError):
            config.int8_calibrator = object()
        with pytest.raises(AttributeError):
            config.set_calibration_profile(builder.create_optimization_profile())
        assert hasattr(trt.IExecutionContext, "execute_async_v3")
        assert not hasattr(trt.ICudaEngine, "device_memory_size") and hasattr(trt.ICudaEngine, "device_memory_size_v2")
        assert trt.__version__ == "11.4.0.106"
    with install("8.6") as trt:
        assert not hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
        assert not hasattr(trt.MemoryPoolType, "TACTIC_SHARED_MEMORY")
        assert not hasattr(trt, "IProgressMonitor")
        assert not hasattr(trt.BuilderFlag, "BF16") and not hasattr(trt.BuilderFlag, "WEIGHT_STREAMING")
        assert not hasattr(trt.ICudaEngine, "device_memory_size_v2")
        assert hasattr(trt.ICudaEngine, "num_bindings") and hasattr(trt.IExecutionContext, "execute_async_v2")
        assert not hasattr(trt.builder_config_placeholder if False else trt.IBuilderConfig, "progress_monitor")
        assert trt.__version__ == "8.6.1.6"
    with install("10.x") as trt:
        assert hasattr(trt, "IInt8EntropyCalibrator2") and hasattr(trt.BuilderFlag, "FP16")
        assert not hasattr(trt.ICudaEngine, "num_bindings") and not hasattr(trt.IExecutionContext, "execute_async_v2")
        assert trt.__version__ == "10.13.0.35"
    for level, absent in ABSENT_CLASSES.items():
        with install(level) as trt:
            assert not any(hasattr(trt, name) for name in absent)


def test_install_restores_sys_modules() -> None:
    before = {n: sys.modules.get(n) for n in ("tensorrt", "pycuda", "pycuda.driver")}
    sys.modules["trtbuild.trt.fake_cached"] = sys  # a stale module bound to an earlier tensorrt
    with install("10.x") as trt:
        import pycuda.autoprimaryctx  # noqa: F401
        import pycuda.driver as cuda
        import tensorrt

        assert tensorrt is trt and trt.EMULATOR_LEVEL == "10.x"
        assert cuda.Device(0).total_memory() > 0
        assert "trtbuild.trt.fake_cached" not in sys.modules
    assert {n: sys.modules.get(n) for n in before} == before


# ------------------------------------------------------------------------------------ helpers


def recording_logger(trt: Any) -> Any:
    class Recorder(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.records: list[tuple[Any, str]] = []

        def log(self, severity: Any, msg: str) -> None:
            self.records.append((severity, msg))

        def errors(self) -> list[str]:
            return [m for s, m in self.records if s == trt.ILogger.Severity.ERROR]

    return Recorder()


def network_flags(trt: Any) -> int:
    if trt.__version__.startswith("8."):
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return 0


def parse(trt: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path)), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    return builder, network


TWO_INPUT_PROFILE = {"image": ((1, 3, 16, 16), (2, 3, 32, 32), (4, 3, 64, 64)), "scale": ((1, 1), (2, 1), (4, 1))}


def build(trt: Any, logger: Any, onnx_path: Path, profile: dict[str, Any] | None = None, configure: Any = None) -> Any:
    builder, network = parse(trt, logger, onnx_path)
    config = builder.create_builder_config()
    if profile is not None:
        p = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile.items():
            p.set_shape(name, lo, opt, hi)
        assert config.add_optimization_profile(p) == 0
    if configure is not None:
        configure(builder, config)
    return builder.build_serialized_network(network, config)


def run_engine(trt: Any, engine: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import pycuda.autoprimaryctx  # noqa: F401 - makes device 0's primary context current
    import pycuda.driver as cuda

    ctx = engine.create_execution_context()
    stream = cuda.Stream()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    host, dev = {}, {}
    for name in names:
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            assert ctx.set_input_shape(name, feeds[name].shape)
    assert ctx.infer_shapes() == []
    for name in names:
        host[name] = cuda.pagelocked_empty(tuple(ctx.get_tensor_shape(name)), trt.nptype(engine.get_tensor_dtype(name)))
        dev[name] = cuda.mem_alloc(host[name].nbytes)
        assert ctx.set_tensor_address(name, int(dev[name]))
        if name in feeds:
            host[name][...] = feeds[name]
            cuda.memcpy_htod_async(dev[name], host[name], stream)
    assert ctx.execute_async_v3(stream.handle)
    outs = {}
    for name in names:
        if name not in feeds:
            cuda.memcpy_dtoh_async(host[name], dev[name], stream)
            outs[name] = host[name]
    stream.synchronize()
    return outs


def two_input_feeds(batch: int = 2, hw: int = 32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "image": rng.standard_normal((batch, 3, hw, hw)).astype(np.float32),
        "scale": rng.standard_normal((batch, 1)).astype(np.float32),
    }


# ------------------------------------------------------------------------------------ contracts


def test_end_to_end_matches_onnxruntime(trt_emulator: Any, two_input_onnx: Path) -> None:
    import onnxruntime as ort

    trt = trt_emulator
    logger = recording_logger(trt)
    plan = build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE)
    assert plan is not None, logger.errors()
    assert bytes(memoryview(plan))[:4] == b"ftrt" and plan.nbytes == len(bytes(plan))
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None and engine.num_optimization_profiles == 1
    assert [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)] == ["image", "scale", "output"]
    assert list(engine.get_tensor_shape("image")) == [-1, 3, -1, -1]
    assert [tuple(d) for d in engine.get_tensor_profile_shape("image", 0)] == list(TWO_INPUT_PROFILE["image"])
    feeds = two_input_feeds()
    outs = run_engine(trt, engine, feeds)
    (ref,) = ort.InferenceSession(str(two_input_onnx), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(outs["output"], ref, rtol=1e-5, atol=1e-6)
    assert not logger.errors()


def test_8_6_parser_needs_explicit_batch(trt86: Any, two_input_onnx: Path) -> None:
    trt = trt86
    logger = recording_logger(trt)
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert not parser.parse_from_file(str(two_input_onnx))
    assert parser.num_errors == 1
    err = parser.get_error(0)
    assert err.code() == trt.ErrorCode.INVALID_VALUE
    assert "explicit batch dimension" in err.desc() and "EXPLICIT_BATCH" in str(err)
    assert logger.errors()


def test_parser_reports_bad_model(trt_emulator: Any, tmp_path: Path) -> None:
    trt = trt_emulator
    logger = recording_logger(trt)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    parser = trt.OnnxParser(trt.Builder(logger).create_network(network_flags(trt)), logger)
    assert not parser.parse_from_file(str(bad))
    assert parser.get_error(0).code() == trt.ErrorCode.MODEL_DESERIALIZE_FAILED
    assert not parser.parse_from_file(str(tmp_path / "missing.onnx"))


def test_build_refuses_bad_profiles(trt_emulator: Any, two_input_onnx: Path) -> None:
    trt = trt_emulator
    logger = recording_logger(trt)
    assert build(trt, logger, two_input_onnx, None) is None  # dynamic inputs, no profile
    assert any("no optimization profile" in e for e in logger.errors())
    logger.records.clear()
    assert build(trt, logger, two_input_onnx, {"image": TWO_INPUT_PROFILE["image"]}) is None  # scale missing
    assert any("scale" in e for e in logger.errors())
    wrong_rank = dict(TWO_INPUT_PROFILE, scale=((1,), (2,), (4,)))
    assert build(trt, logger, two_input_onnx, wrong_rank) is None
    static_mismatch = dict(TWO_INPUT_PROFILE, image=((1, 4, 16, 16), (1, 4, 16, 16), (1, 4, 16, 16)))
    assert build(trt, logger, two_input_onnx, static_mismatch) is None
    profile = trt.Builder(logger).create_optimization_profile()
    with pytest.raises(RuntimeError, match="inconsistent"):
        profile.set_shape("scale", (4, 1), (2, 1), (8, 1))


def test_execution_contract(trt_emulator: Any, two_input_onnx: Path) -> None:
    import pycuda.autoprimaryctx  # noqa: F401 - makes device 0's primary context current
    import pycuda.driver as cuda

    trt = trt_emulator
    logger = recording_logger(trt)
    engine = trt.Runtime(logger).deserialize_cuda_engine(build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE))
    ctx = engine.create_execution_context()
    stream = cuda.Stream()
    assert not ctx.execute_async_v3(stream.handle)  # no shapes
    assert any("dimensions are not specified: image, scale" in e for e in logger.errors())
    assert not ctx.set_input_shape("image", (8, 3, 32, 32))  # batch above the profile max
    assert any("does not satisfy any optimization profiles" in e for e in logger.errors())
    assert not ctx.set_input_shape("image", (2, 4, 32, 32))  # static dim mismatch
    assert not ctx.set_input_shape("output", (2, 6))  # not an input
    assert ctx.set_input_shape("image", (2, 3, 32, 32))
    assert ctx.infer_shapes() == ["scale"] and not ctx.all_binding_shapes_specified
    assert list(ctx.get_tensor_shape("output"))[0] == -1  # unknown until every input shape is set
    assert ctx.set_input_shape("scale", (2, 1))
    assert tuple(ctx.get_tensor_shape("output")) == (2, 6)
    logger.records.clear()
    assert not ctx.execute_async_v3(stream.handle)  # no addresses
    assert any("Address is not set for input tensor image" in e for e in logger.errors())
    image = cuda.mem_alloc(2 * 3 * 32 * 32 * 4)
    scale = cuda.mem_alloc(2 * 4)
    small_out = cuda.mem_alloc(4)
    for name, buf in (("image", image), ("scale", scale)):
        assert ctx.set_tensor_address(name, int(buf))
    assert not ctx.execute_async_v3(stream.handle)
    assert any("output tensor output" in e for e in logger.errors())
    assert ctx.set_tensor_address("output", int(small_out))
    assert not ctx.execute_async_v3(stream.handle)  # output buffer too small: refused, not corrupted
    out = cuda.mem_alloc(2 * 6 * 4)
    assert ctx.set_tensor_address("output", int(out)) and ctx.get_tensor_address("output") == int(out)
    assert ctx.execute_async_v3(stream.handle)
    assert ctx.execute_v2([int(image), int(scale), int(out)])


def test_foreign_truncated_and_garbage_plans_are_rejected(two_input_onnx: Path) -> None:
    with install("10.x") as trt10:
        plan = bytes(build(trt10, recording_logger(trt10), two_input_onnx, TWO_INPUT_PROFILE))
    with install("11.x") as trt:
        logger = recording_logger(trt)
        runtime = trt.Runtime(logger)
        assert runtime.deserialize_cuda_engine(plan) is None
        assert any("expecting library version 11.4.0.106 got 10.13.0.35" in e for e in logger.errors())
        own = bytes(build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE))
        logger.records.clear()
        assert runtime.deserialize_cuda_engine(own[:-10]) is None
        assert logger.errors()
        logger.records.clear()
        assert runtime.deserialize_cuda_engine(b"TRTM" + own) is None
        assert any("Magic tag does not match" in e for e in logger.errors())
        assert runtime.deserialize_cuda_engine(memoryview(own)[0:]) is not None


def test_version_compatible_plan_needs_host_code(two_input_onnx: Path) -> None:
    def vc(trt: Any) -> Any:
        return lambda b, c: c.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)

    with install("10.x") as trt10:
        plan = bytes(build(trt10, recording_logger(trt10), two_input_onnx, TWO_INPUT_PROFILE, vc(trt10)))
    with install("11.x") as trt:
        runtime = trt.Runtime(recording_logger(trt))
        assert runtime.deserialize_cuda_engine(plan) is None
        runtime.engine_host_code_allowed = True
        assert runtime.deserialize_cuda_engine(plan) is not None


def test_progress_monitor_and_cancel(trt11: Any, two_input_onnx: Path) -> None:
    trt = trt11
    calls: list[tuple[str, ...]] = []

    class Monitor(trt.IProgressMonitor):
        def __init__(self, cancel_at: int | None) -> None:
            trt.IProgressMonitor.__init__(self)
            self.cancel_at = cancel_at

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            calls.append(("start", phase_name, str(parent_phase), str(num_steps)))

        def step_complete(self, phase_name: str, step: int) -> bool:
            calls.append(("step", phase_name, str(step)))
            return not (phase_name == "Tactic selection" and step == self.cancel_at)

        def phase_finish(self, phase_name: str) -> None:
            calls.append(("finish", phase_name))

    def with_monitor(cancel_at: int | None) -> Any:
        def configure(builder: Any, config: Any) -> None:
            config.progress_monitor = Monitor(cancel_at)

        return configure

    logger = recording_logger(trt)
    assert build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE, with_monitor(None)) is not None
    assert calls[0][:3] == ("start", "Building engine", "None") and calls[-1] == ("finish", "Building engine")
    assert ("start", "Tactic selection", "Building engine", "9") in calls
    calls.clear()
    assert build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE, with_monitor(2)) is None
    assert calls[-1] == ("finish", "Building engine") and any("cancelled" in e for e in logger.errors())

    class Forgetful(trt.IProgressMonitor):
        def __init__(self) -> None:  # does not call the base __init__: pybind11 refuses it
            pass

    with pytest.raises(TypeError, match="__init__"):
        Forgetful()


@pytest.mark.parametrize("level", ["8.6", "10.x"])
def test_int8_calibration_callbacks(level: str, two_input_onnx: Path) -> None:
    with install(level) as trt:
        import pycuda.autoprimaryctx  # noqa: F401 - makes device 0's primary context current
        import pycuda.driver as cuda

        class Calibrator(trt.IInt8EntropyCalibrator2):
            def __init__(self, batches: int, cache: bytes | None = None) -> None:
                trt.IInt8EntropyCalibrator2.__init__(self)
                self.left, self.cache, self.calls = batches, cache, []
                feeds = two_input_feeds(2, 32)
                self.dev = {k: cuda.to_device(v) for k, v in feeds.items()}

            def get_batch_size(self) -> int:
                self.calls.append("get_batch_size")
                return 2

            def get_batch(self, names: list[str]) -> list[int] | None:
                self.calls.append("get_batch")
                if self.left == 0:
                    return None
                self.left -= 1
                return [int(self.dev[n]) for n in names]

            def read_calibration_cache(self) -> bytes | None:
                self.calls.append("read")
                return self.cache

            def write_calibration_cache(self, cache: Any) -> None:
                self.calls.append("write")
                self.cache = bytes(cache)

        def int8(cal: Any) -> Any:
            def configure(builder: Any, config: Any) -> None:
                config.set_flag(trt.BuilderFlag.INT8)
                config.int8_calibrator = cal

            return configure

        logger = recording_logger(trt)
        cal = Calibrator(batches=3)
        assert build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE, int8(cal)) is not None, logger.errors()
        assert cal.calls == ["read", "get_batch_size"] + ["get_batch"] * 4 + ["write"]
        assert cal.cache is not None and cal.cache.startswith(b"TRT-") and b"EntropyCalibration2" in cal.cache
        again = Calibrator(batches=3, cache=cal.cache)
        assert build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE, int8(again)) is not None
        assert again.calls == ["read"]  # a valid cache means no batches are requested
        assert build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE, int8(Calibrator(batches=0))) is None
        assert any("no scaling factors" in e for e in logger.errors())

        class MinMax(trt.IInt8MinMaxCalibrator):
            def __init__(self) -> None:
                trt.IInt8MinMaxCalibrator.__init__(self)

        assert MinMax().get_algorithm() == trt.CalibrationAlgoType.MINMAX_CALIBRATION
        assert cal.get_algorithm() == trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2


def test_timing_cache_round_trip(trt_emulator: Any, two_input_onnx: Path) -> None:
    trt = trt_emulator
    logger = recording_logger(trt)
    saved: list[bytes] = []

    def with_cache(data: bytes) -> Any:
        def configure(builder: Any, config: Any) -> None:
            cache = config.create_timing_cache(data)
            assert config.set_timing_cache(cache, False)
            saved.append(cache)

        return configure

    assert build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE, with_cache(b"")) is not None
    blob = bytes(saved[-1].serialize())
    assert build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE, with_cache(blob)) is not None
    assert bytes(saved[-1].serialize()) == blob
    builder = trt.Builder(logger)
    fresh = builder.create_builder_config().create_timing_cache(b"")
    assert fresh.combine(saved[-1], False) and bytes(fresh.serialize()) == blob


def test_inspector_detail_follows_profiling_verbosity(trt_emulator: Any, two_input_onnx: Path) -> None:
    import json

    trt = trt_emulator
    logger = recording_logger(trt)

    def detailed(builder: Any, config: Any) -> None:
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED

    runtime = trt.Runtime(logger)
    names_only = runtime.deserialize_cuda_engine(build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE))
    info = json.loads(names_only.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    assert all(isinstance(layer, str) for layer in info["Layers"]) and len(info["Layers"]) == names_only.num_layers
    full = runtime.deserialize_cuda_engine(build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE, detailed))
    info = json.loads(full.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    assert info["Layers"][0]["LayerType"] == "Conv"
    assert ("I/O Tensors" in info) == (trt.EMULATOR_LEVEL == "11.x")


def test_legacy_binding_api_8_6(trt86: Any, two_input_onnx: Path) -> None:
    import pycuda.autoprimaryctx  # noqa: F401 - makes device 0's primary context current
    import pycuda.driver as cuda

    trt = trt86
    logger = recording_logger(trt)
    engine = trt.Runtime(logger).deserialize_cuda_engine(build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE))
    assert engine.num_bindings == 3 and engine.binding_is_input(0) and not engine.binding_is_input(2)
    ctx = engine.create_execution_context()
    feeds = two_input_feeds(1, 16)
    assert ctx.set_binding_shape(0, (1, 3, 16, 16)) and ctx.set_binding_shape(1, (1, 1))
    bufs = [cuda.to_device(feeds["image"]), cuda.to_device(feeds["scale"]), cuda.mem_alloc(6 * 4)]
    assert ctx.execute_async_v2([int(b) for b in bufs], cuda.Stream().handle)
    assert cuda.from_device(bufs[2], (1, 6), np.float32).shape == (1, 6)


def test_fake_pycuda_memory_rules(trt10: Any) -> None:
    import pycuda.autoprimaryctx  # noqa: F401 - makes device 0's primary context current
    import pycuda.driver as cuda

    buf = cuda.mem_alloc(16)
    host = np.arange(4, dtype=np.float32)
    cuda.memcpy_htod(buf, host)
    back = np.empty(4, dtype=np.float32)
    cuda.memcpy_dtoh(back, buf)
    assert back.tolist() == host.tolist()
    with pytest.raises(cuda.LogicError):
        cuda.memcpy_htod(buf, np.zeros(5, dtype=np.float32))  # 20 bytes into a 16-byte allocation
    with pytest.raises(cuda.LogicError):
        cuda.memcpy_dtoh(np.empty(8, dtype=np.float32), buf)
    other = cuda.mem_alloc(16)
    assert int(other) != int(buf)
    cuda.memcpy_dtod_async(other, buf, 16)
    free, total = cuda.mem_get_info()
    assert 0 < free < total
    start, end = cuda.Event(), cuda.Event()
    start.record()
    end.record()
    end.synchronize()
    assert end.time_since(start) >= 0.0 and start.time_till(end) >= 0.0
    with pytest.raises(cuda.LogicError):
        cuda.Event(cuda.event_flags.DISABLE_TIMING).record().time_since(start)
    buf.free()
    with pytest.raises(cuda.LogicError):
        cuda.memcpy_htod(buf, host)


def test_output_allocator_supplies_output_memory(trt_emulator: Any, two_input_onnx: Path) -> None:
    import onnxruntime as ort
    import pycuda.autoprimaryctx  # noqa: F401 - makes device 0's primary context current
    import pycuda.driver as cuda

    trt = trt_emulator
    logger = recording_logger(trt)
    engine = trt.Runtime(logger).deserialize_cuda_engine(build(trt, logger, two_input_onnx, TWO_INPUT_PROFILE))
    ctx = engine.create_execution_context()

    class Allocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.buffers: dict[str, Any] = {}
            self.shapes: dict[str, tuple[int, ...]] = {}

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            self.buffers[tensor_name] = cuda.mem_alloc(size)
            return int(self.buffers[tensor_name])

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shapes[tensor_name] = tuple(shape)

    feeds = two_input_feeds(3, 16)
    dev = {k: cuda.to_device(v) for k, v in feeds.items()}
    for name, arr in feeds.items():
        assert ctx.set_input_shape(name, arr.shape) and ctx.set_tensor_address(name, int(dev[name]))
    alloc = Allocator()
    assert ctx.set_output_allocator("output", alloc) and ctx.get_output_allocator("output") is alloc
    assert not ctx.set_output_allocator("image", alloc)  # inputs have no allocator
    assert ctx.execute_async_v3(cuda.Stream().handle), logger.errors()
    assert alloc.shapes == {"output": (3, 6)}
    got = cuda.from_device(alloc.buffers["output"], (3, 6), np.float32)
    (ref,) = ort.InferenceSession(str(two_input_onnx), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_weak_typing_hints_exist_only_before_11(trt_emulator: Any, two_input_onnx: Path) -> None:
    trt = trt_emulator
    logger = recording_logger(trt)
    builder, network = parse(trt, logger, two_input_onnx)
    layer = network.get_layer(0)
    assert layer.num_outputs == 1 and layer.get_output(0).name
    weak = trt.EMULATOR_LEVEL != "11.x"
    assert hasattr(layer, "set_output_type") == weak and hasattr(layer, "precision") == weak
    if weak:
        layer.precision = trt.DataType.HALF
        assert layer.precision_is_set
    config = builder.create_builder_config()
    config.set_device_type(layer, trt.DeviceType.DLA)  # builder.num_DLA_cores == 0 here
    p = builder.create_optimization_profile()
    for name, (lo, opt, hi) in TWO_INPUT_PROFILE.items():
        p.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(p)
    assert builder.build_serialized_network(network, config) is None
    assert any("DLA" in e for e in logger.errors())
    assert hasattr(network, "mark_debug") == (trt.EMULATOR_LEVEL != "8.6")
