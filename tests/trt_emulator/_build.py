"""``Builder.build_serialized_network`` for the emulator: TensorRT's build-time checks, progress
monitor and INT8 calibration callbacks, timing cache entries, then the plan bytes."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from . import _plan
from ._trt_common import log
from ._trt_core import gpu_id


def _err(builder: Any, msg: str) -> None:
    log(builder, "ERROR", msg)


def _profile_errors(network: Any, config: Any) -> list[str]:
    """TensorRT's checks of the network's inputs against every optimization profile."""
    errors: list[str] = []
    dynamic = [t for t in network._inputs if any(d < 0 for d in t.shape)]
    if dynamic and not config._profiles:
        return ["4: [network.cpp::validate::3162] Error Code 4: Internal Error (Network has dynamic or shape inputs, "
                "but no optimization profile has been defined.)"]  # fmt: skip
    for p_idx, profile in enumerate(config._profiles):
        for t in network._inputs:
            net_dims = list(t.shape)
            if t.name not in profile._shapes:
                if any(d < 0 for d in net_dims):
                    errors.append(f"4: [network.cpp::validate::3221] Error Code 4: Internal Error ({t.name}: dynamic "
                                  f"input is missing dimensions in profile {p_idx}.)")  # fmt: skip
                continue
            lo, opt, hi = profile._shapes[t.name]
            if len(lo) != len(net_dims):
                errors.append(f"4: [network.cpp::validate::3200] Error Code 4: Internal Error ({t.name}: number of "
                              f"dimensions is {len(lo)} in profile {p_idx} but {len(net_dims)} in network definition.)")  # fmt: skip
                continue
            for axis, d in enumerate(net_dims):
                if d >= 0 and not lo[axis] == opt[axis] == hi[axis] == d:
                    errors.append(
                        f"4: [network.cpp::validate::3243] Error Code 4: Internal Error ({t.name}: for dimension "
                        f"number {axis} in profile {p_idx} does not match network definition (got min={lo[axis]}, "
                        f"opt={opt[axis]}, max={hi[axis]}), expected min=opt=max={d}).)"
                    )
            if any(a > b for a, b in zip(lo, opt)) or any(a > b for a, b in zip(opt, hi)):
                errors.append(f"4: [network.cpp::validate::3250] Error Code 4: Internal Error ({t.name}: "
                              f"min <= opt <= max violated in profile {p_idx}.)")  # fmt: skip
    return errors


def _has(M: Any, flag: str) -> bool:
    return hasattr(M.BuilderFlag, flag)


def _flag_set(config: Any, flag: str) -> bool:
    M = config._M
    return _has(M, flag) and config.get_flag(getattr(M.BuilderFlag, flag))


class _Cancelled(Exception):
    pass


class _Monitor:
    """Drives a user IProgressMonitor the way TensorRT does (nested phases, cancellable steps)."""

    def __init__(self, mon: Any) -> None:
        self.mon = mon
        self.open: list[str] = []

    def start(self, name: str, parent: str | None, steps: int) -> None:
        if self.mon is not None:
            self.mon.phase_start(name, parent, steps)
            self.open.append(name)

    def step(self, name: str, i: int) -> None:
        if self.mon is not None and self.mon.step_complete(name, i) is False:
            raise _Cancelled(name)

    def finish(self, name: str) -> None:
        if self.mon is not None and name in self.open:
            self.open.remove(name)
            self.mon.phase_finish(name)

    def finish_all(self) -> None:
        for name in list(reversed(self.open)):
            self.finish(name)


def build_plan(builder: Any, network: Any, config: Any) -> bytes | None:
    M, L = builder._M, builder._L
    if network is None or network._onnx is None or not network._outputs:
        _err(builder, "4: [network.cpp::validate::2789] Error Code 4: Internal Error (Network must have at least one output)")
        return None
    for msg in _profile_errors(network, config):
        _err(builder, msg)
        return None
    strongly_typed = L.major >= 11 or (
        hasattr(M.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
        and network.get_flag(M.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    )
    if strongly_typed and L.major == 10:
        for flag in ("FP16", "BF16", "INT8", "FP8", "INT4", "FP4"):
            if _flag_set(config, flag):
                _err(builder, f"4: [network.cpp::validate::2925] Error Code 4: API Usage Error (Setting builder flag "
                              f"BuilderFlag::k{flag} is not allowed for a strongly typed network.)")  # fmt: skip
                return None
    wants_dla = config.default_device_type == M.DeviceType.DLA or any(
        d == M.DeviceType.DLA for d in config._device_types.values()
    )
    if wants_dla and builder.num_DLA_cores == 0:
        _err(builder, "2: [dlaUtils.cpp::getDLAcore::...] Error Code 2: Internal Error (DLA was requested "
                      f"(default_device_type=DLA, DLA_core={config.DLA_core}) but this platform has 0 DLA cores.)")  # fmt: skip
        return None
    if _flag_set(config, "OBEY_PRECISION_CONSTRAINTS") and _flag_set(config, "PREFER_PRECISION_CONSTRAINTS"):
        # NvInfer.h (10.13, ILayer::setPrecision): "set exactly one of" kOBEY_/kPREFER_PRECISION_CONSTRAINTS.
        _err(builder, "3: [builderConfig.cpp::validate] Error Code 3: API Usage Error (Parameter check failed, condition: "
                      "!(obeyPrecisionConstraints && preferPrecisionConstraints). kOBEY_PRECISION_CONSTRAINTS and "
                      "kPREFER_PRECISION_CONSTRAINTS cannot both be set.)")  # fmt: skip
        return None
    if config.get_memory_pool_limit(M.MemoryPoolType.WORKSPACE) == 0:
        log(builder, "WARNING", "Workspace memory pool limit is 0; tactics needing scratch memory are skipped.")

    from ._onnx_exec import Executor

    try:
        executor = Executor(network._onnx)
    except Exception as exc:
        _err(builder, f"10: [optimizer.cpp::computeCosts::4131] Error Code 10: Internal Error (Could not find any "
                      f"implementation for the network: ONNX Runtime rejected it: {exc})")  # fmt: skip
        return None

    mon = _Monitor(getattr(config, "progress_monitor", None) if hasattr(M, "IProgressMonitor") else None)
    calibration: dict[str, float] | None = None
    try:
        mon.start("Building engine", None, 3)
        mon.step("Building engine", 0)
        if _flag_set(config, "INT8") and getattr(config, "int8_calibrator", None) is not None:
            calibration = _calibrate(builder, network, config, executor)
            if calibration is None:
                mon.finish_all()
                return None
        elif _flag_set(config, "INT8"):
            log(builder, "WARNING", "Calibrator is not being used. Users must provide dynamic range for all tensors "
                                    "that are not Int32 or Bool.")  # fmt: skip
        layers = network._layers
        mon.start("Tactic selection", "Building engine", len(layers))
        cache = config.get_timing_cache()
        use_cache = cache is not None and not _flag_set(config, "DISABLE_TIMING_CACHE")
        for i, layer in enumerate(layers):
            if use_cache:
                key = f"{gpu_id(builder)}|{layer._op_type}:{layer.name}"  # entries are per GPU
                if key not in cache._entries and _flag_set(config, "ERROR_ON_TIMING_CACHE_MISS"):
                    mon.finish_all()
                    _err(builder, f"Error Code 10: Internal Error (timing cache miss for layer {layer.name} and "
                                  "ERROR_ON_TIMING_CACHE_MISS is set)")  # fmt: skip
                    return None
                cache._entries.setdefault(key, f"emulated_tactic_{i}")
            mon.step("Tactic selection", i)
        mon.finish("Tactic selection")
        mon.step("Building engine", 1)
        mon.step("Building engine", 2)
        mon.finish("Building engine")
    except _Cancelled:
        mon.finish_all()
        _err(builder, "Error Code 1: Internal Error (Engine build was cancelled: IProgressMonitor.step_complete "
                      "returned False)")  # fmt: skip
        return None

    flags = [name for name, member in M.BuilderFlag.__members__.items() if config.get_flag(member)]
    header = {
        "trt_version": L.version,
        "level": L.name,
        "flags": flags,
        "version_compatible": _flag_set(config, "VERSION_COMPATIBLE"),
        "exclude_lean_runtime": _flag_set(config, "EXCLUDE_LEAN_RUNTIME"),
        "hardware_compatibility_level": config.hardware_compatibility_level.name,
        "profiling_verbosity": config.profiling_verbosity.name,
        "tactic_sources": config.get_tactic_sources(),
        "device_type": config.default_device_type.name,
        "dla_core": config.DLA_core,
        "num_aux_streams": max(config.max_aux_streams, 0),
        "strongly_typed": bool(strongly_typed),
        "inputs": [_tensor_meta(t) for t in network._inputs],
        "outputs": [_tensor_meta(t) for t in network._outputs],
        "profiles": [_profile_meta(network, p) for p in (config._profiles or [None])],
        "layers": [{"name": lay.name, "type": lay._op_type} for lay in network._layers],
        "calibration": calibration,
        "name": network.name,
        "debug_tensors": sorted(network._debug),
        "plugins": list(network._plugins),
    }
    log(builder, "INFO", f"[emulator] built plan for {len(network._layers)} layers (ONNX Runtime on CPU, no GPU).")
    if config.engine_capability == M.EngineCapability.DLA_STANDALONE:
        return b"NVDLA-loadable(emulated)" + _plan.encode(header, network._onnx)  # a cuDLA loadable, not a plan
    return _plan.encode(header, network._onnx)


def _tensor_meta(t: Any) -> dict[str, Any]:
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.name, "format": int(t.allowed_formats)}


def _profile_meta(network: Any, profile: Any) -> dict[str, list[list[int]]]:
    out = {}
    for t in network._inputs:
        if profile is not None and t.name in profile._shapes:
            out[t.name] = [list(s) for s in profile._shapes[t.name]]
        else:
            out[t.name] = [list(t.shape)] * 3
    return out


_ALGO_NAMES = {
    "LEGACY_CALIBRATION": "LegacyCalibration", "ENTROPY_CALIBRATION": "EntropyCalibration",
    "ENTROPY_CALIBRATION_2": "EntropyCalibration2", "MINMAX_CALIBRATION": "MinMaxCalibration",
}  # fmt: skip


def _cache_header(L: Any, algo: str) -> str:
    major, minor, patch = L.version_tuple[:3]
    code = f"{major}{minor:02d}{patch}" if major < 10 else f"{major}{minor:02d}{patch:02d}"
    return f"TRT-{code}-{_ALGO_NAMES[algo]}"


def _calibrate(builder: Any, network: Any, config: Any, executor: Any) -> dict[str, float] | None:
    """INT8 calibration through the user's calibrator, in TensorRT's call order."""
    from ._trt_core import calibration_arrays

    M, L = builder._M, builder._L
    cal = config.int8_calibrator
    algo = cal.get_algorithm().name
    header = _cache_header(L, algo)
    # pyInt8.cpp (pyCalibratorTrampoline): an exception in a Python override is printed and the call
    # returns what a failure returns (no cache, no batch, batch size -1); it never reaches TensorRT.
    cached = _trampoline("read_calibration_cache", cal.read_calibration_cache, None)
    if cached:
        text = bytes(memoryview(cached)).decode("latin-1")
        lines = text.splitlines()
        if lines and lines[0] == header:
            log(builder, "INFO", "Calibration table read from the calibration cache; no calibration batches needed.")
            return {ln.split(": ")[0]: struct.unpack(">f", bytes.fromhex(ln.split(": ")[1]))[0] for ln in lines[1:] if ": " in ln}
        log(builder, "WARNING", f"Calibration cache header {lines[0] if lines else ''!r} does not match {header!r}; "
                                "the cache is ignored and calibration runs again.")  # fmt: skip
    profile = config.get_calibration_profile() or (config._profiles[0] if config._profiles else None)
    names = [t.name for t in network._inputs]
    shapes = {}
    for t in network._inputs:
        if profile is not None and t.name in profile._shapes:
            shapes[t.name] = list(profile._shapes[t.name][1])
        else:
            shapes[t.name] = list(t.shape)
        if any(d < 0 for d in shapes[t.name]):
            _err(builder, f"Error Code 4: Internal Error (Calibration profile has no shape for dynamic input {t.name}; "
                          "call config.set_calibration_profile(profile).)")  # fmt: skip
            return None
    dtypes = {t.name: t.dtype.name for t in network._inputs}
    mem = M._device_memory
    amax: dict[str, float] = {}
    batches = 0
    try:
        _trampoline("get_batch_size", cal.get_batch_size, -1)
        while True:
            ptrs = _trampoline("get_batch", lambda: cal.get_batch(names), None)
            if ptrs is None or len(ptrs) == 0:
                break
            if len(ptrs) != len(names):
                _err(builder, f"Calibrator.get_batch returned {len(ptrs)} pointers for {len(names)} inputs {names}")
                return None
            feeds = calibration_arrays(mem, list(ptrs), names, shapes, dtypes)
            outs = executor.run({k: v.astype(executor_type(executor, k)) for k, v in feeds.items()})
            _record_batch(builder, feeds)
            for name, arr in list(feeds.items()) + list(outs.items()):
                if arr.size and np.issubdtype(arr.dtype, np.floating):
                    amax[name] = max(amax.get(name, 0.0), float(np.abs(arr).max()))
            batches += 1
    except Exception as exc:
        _err(builder, f"Error Code 1: Internal Error (calibration failed: {exc!r})")
        return None
    if batches == 0:
        _err(builder, "2: [calibrator.cpp::calibrateEngine::1181] Error Code 2: Internal Error (Assertion "
                      "context->executeV2(&bindings[0]) failed. Calibration failure occurred with no scaling factors "
                      "detected. This could be due to no int8 calibrator or insufficient custom scales for network "
                      "layers.)")  # fmt: skip
        return None
    scales = {k: (v / 127.0 if v else 1.0) for k, v in amax.items()}
    table = header + "\n" + "".join(f"{k}: {struct.pack('>f', v).hex()}\n" for k, v in sorted(scales.items()))
    _trampoline("write_calibration_cache", lambda: cal.write_calibration_cache(memoryview(table.encode())), None)
    return scales


def _trampoline(name: str, call: Any, failed: Any) -> Any:
    import sys

    try:
        return call()
    except Exception as exc:
        print(f"[ERROR] Exception caught in {name}(): {exc}", file=sys.stderr)
        return failed


def _record_batch(builder: Any, feeds: dict[str, np.ndarray]) -> None:
    """Keep what calibration read (tests check the values TensorRT saw)."""
    seen = getattr(builder._M, "EMULATOR_CALIBRATION_READS", None)
    if seen is not None:
        seen.append({k: v.copy() for k, v in feeds.items()})


def executor_type(executor: Any, name: str) -> Any:
    from ._onnx_exec import ort_dtype

    return ort_dtype(executor.input_types[name])
