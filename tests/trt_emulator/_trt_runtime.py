"""Runtime side of the fake ``tensorrt``: Runtime, ICudaEngine, IExecutionContext, EngineInspector.

Execution reads the inputs from emulated device memory at the tensor addresses, runs the ONNX model with
ONNX Runtime on the CPU and writes the outputs back; TensorRT's preconditions are checked first.
"""

from __future__ import annotations

import json
import os
import weakref
from typing import Any

import numpy as np

from . import _formats, _plan
from ._onnx_exec import TRT_TO_NUMPY, Executor, ort_dtype
from ._trt_common import Attr, Dims, TrtObject, check_enum, log, to_dims

_DESERIALIZE_FAILED = _plan._DESERIALIZE_FAILED
# A version-compatible plan loads on a newer runtime of the same major, or the next major (8 -> 9/10, 10 -> 11).
_NEXT_MAJORS = {8: {8, 9, 10}, 9: {9, 10}, 10: {10, 11}, 11: {11}}


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


class Runtime(TrtObject):
    DLA_core = Attr(-1)
    max_threads = Attr(1)
    error_recorder = Attr(None)
    engine_host_code_allowed = Attr(False)
    temporary_directory = Attr("")

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._lean_runtime: str | None = None

    @property
    def num_DLA_cores(self) -> int:  # noqa: N802 - TensorRT's name
        return int(self._M._device_memory.dla_cores)

    @property
    def logger(self) -> Any:
        return self._logger

    def load_runtime(self, path: str) -> Any:
        if not os.path.isfile(path):
            log(self, "ERROR", f"Error Code 1: Internal Error (Could not load the lean runtime library {path})")
            return None
        self._lean_runtime = path
        return self

    def deserialize_cuda_engine(self, serialized_engine: Any) -> Any:
        L = self._L
        try:
            data = bytes(memoryview(serialized_engine))
        except TypeError:
            raise TypeError("deserialize_cuda_engine(): incompatible function arguments (expected a buffer)") from None
        try:
            header, onnx_bytes = _plan.decode(data)
        except _plan.PlanError as exc:
            for line in exc.lines:
                log(self, "ERROR", line)
            return None
        built = header.get("trt_version", "?")
        if built != L.version:
            ok = (
                header.get("version_compatible")
                and _vtuple(built) < L.version_tuple
                and L.major in _NEXT_MAJORS.get(_vtuple(built)[0], set())
            )
            if not ok:
                log(self, "ERROR", f"6: The engine plan file is not compatible with this version of TensorRT, "
                                   f"expecting library version {L.version} got {built}, please rebuild.")  # fmt: skip
                log(self, "ERROR", _DESERIALIZE_FAILED)
                return None
            if header.get("exclude_lean_runtime") and self._lean_runtime is None:
                log(self, "ERROR", "Error Code 1: Serialization (The engine was built with EXCLUDE_LEAN_RUNTIME; "
                                   "load a lean runtime with runtime.load_runtime(path) first.)")  # fmt: skip
                return None
        if header.get("version_compatible") and not header.get("exclude_lean_runtime") and not self.engine_host_code_allowed:
            log(self, "ERROR", "1: [runtime.cpp::deserializeCudaEngine::...] Error Code 1: Serialization (Serialization "
                               "assertion engineHostCodeAllowed failed. Cannot deserialize a version-compatible engine "
                               "with an embedded lean runtime unless runtime.engine_host_code_allowed is True.)")  # fmt: skip
            return None
        # Plugin layers find their creator in the process's plugin registry, which only
        # init_libnvinfer_plugins (TensorRT's own plugins) and load_library (user libraries) fill.
        registry = self._M.get_plugin_registry()
        for plugin in header.get("plugins", []):
            if plugin not in registry._creators:
                log(self, "ERROR", f"1: [pluginV2Runner.cpp::load::303] Error Code 1: Serialization (Serialization "
                                   f"assertion creator failed.Cannot deserialize plugin since corresponding "
                                   f"IPluginCreator not found in Plugin Registry) [{plugin}]")  # fmt: skip
                log(self, "ERROR", _DESERIALIZE_FAILED)
                return None
        mem = self._M._device_memory
        device = mem.current_device()
        engine = self._M.ICudaEngine(header, onnx_bytes, data, self._logger)
        engine._device = 0 if device is None else device  # the CUDA runtime falls back to device 0's primary context
        if header.get("device_type") == "DLA":
            engine._dla_core = self.DLA_core if self.DLA_core >= 0 else 0
        return engine


class ICudaEngine(TrtObject):
    error_recorder = Attr(None)

    def __init__(self, header: dict[str, Any], onnx_bytes: bytes, plan: bytes, logger: Any) -> None:
        self._h = header
        self._onnx = onnx_bytes
        self._plan = plan
        self._logger = logger
        self._executor: Executor | None = None
        self._io = [dict(t, mode="INPUT") for t in header["inputs"]] + [dict(t, mode="OUTPUT") for t in header["outputs"]]
        self._by_name = {t["name"]: t for t in self._io}
        self._device = 0
        self._dla_core: int | None = None
        self._refitted = False
        self._contexts: weakref.WeakSet[Any] = weakref.WeakSet()

    def _exec(self) -> Executor:
        if self._executor is None:
            self._executor = Executor(self._onnx)
        return self._executor

    # --- engine properties
    @property
    def name(self) -> str:
        return str(self._h.get("name", ""))

    @property
    def num_io_tensors(self) -> int:
        return len(self._io)

    @property
    def num_layers(self) -> int:
        return len(self._h["layers"])

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._h["profiles"])

    @property
    def num_aux_streams(self) -> int:
        return int(self._h.get("num_aux_streams", 0))

    @property
    def refittable(self) -> bool:
        return "REFIT" in self._h["flags"]

    @property
    def tactic_sources(self) -> int:
        return int(self._h["tactic_sources"])

    @property
    def profiling_verbosity(self) -> Any:
        return getattr(self._M.ProfilingVerbosity, self._h["profiling_verbosity"])

    @property
    def hardware_compatibility_level(self) -> Any:
        return getattr(self._M.HardwareCompatibilityLevel, self._h["hardware_compatibility_level"])

    @property
    def engine_capability(self) -> Any:
        return self._M.EngineCapability.STANDARD

    @property
    def has_implicit_batch_dimension(self) -> bool:
        return False

    @property
    def device_memory_size(self) -> int:
        total = 0
        for t in self._io:
            itemsize = np.dtype(TRT_TO_NUMPY.get(t["dtype"], np.float32)).itemsize
            shapes = [p[t["name"]][2] for p in self._h["profiles"] if t["name"] in p] or [t["shape"]]
            total += max(int(np.prod([max(d, 1) for d in s])) for s in shapes) * itemsize
        return -(-total // 256) * 256

    @property
    def device_memory_size_v2(self) -> int:
        return self.device_memory_size

    def __getitem__(self, index: int) -> str | None:
        # pyCore.cpp (10.13, engine_getitem): negative indices count from the end; PY_ASSERT_INDEX_ERROR past it.
        i = len(self._io) + index if index < 0 else index
        if i >= len(self._io):
            raise IndexError("Out of bounds")
        return self.get_tensor_name(i)

    # --- name-based tensor API
    def get_tensor_name(self, index: int) -> str | None:
        return self._io[index]["name"] if 0 <= index < len(self._io) else None

    def get_tensor_mode(self, name: str) -> Any:
        t = self._by_name.get(name)
        return getattr(self._M.TensorIOMode, t["mode"] if t else "NONE")

    def get_tensor_shape(self, name: str) -> Dims:
        t = self._by_name.get(name)
        return Dims(t["shape"]) if t else Dims(())

    def get_tensor_dtype(self, name: str) -> Any:
        t = self._by_name.get(name)
        return getattr(self._M.DataType, t["dtype"]) if t else self._M.DataType.FLOAT

    def get_tensor_location(self, name: str) -> Any:
        return self._M.TensorLocation.DEVICE

    def _format(self, name: str) -> str:
        t = self._by_name.get(name)
        if t is None:
            return "LINEAR"
        members = {k: int(v) for k, v in self._M.TensorFormat.__members__.items()}
        return _formats.chosen_format(int(t.get("format", 0)), members)

    def get_tensor_format(self, name: str, profile_index: int = 0) -> Any:
        return getattr(self._M.TensorFormat, self._format(name))

    def get_tensor_format_desc(self, name: str, profile_index: int = 0) -> str:
        t = self._by_name.get(name)
        dt = {"FLOAT": "FP32", "HALF": "FP16"}.get(t["dtype"], t["dtype"]) if t else "FP32"
        fmt = self._format(name)
        if fmt == "LINEAR":
            return f"Row major linear {dt} format"
        return f"{dt} format {fmt} (vectorized, channels padded to {_formats.components(fmt)})"

    def get_tensor_vectorized_dim(self, name: str, profile_index: int = 0) -> int:
        t = self._by_name.get(name)
        return _formats.vectorized_dim(self._format(name), len(t["shape"])) if t else -1

    def get_tensor_components_per_element(self, name: str, profile_index: int = 0) -> int:
        return _formats.components(self._format(name))

    def get_tensor_bytes_per_component(self, name: str, profile_index: int = 0) -> int:
        t = self._by_name.get(name)
        return int(np.dtype(TRT_TO_NUMPY.get(t["dtype"], np.float32)).itemsize) if t else -1

    def is_shape_inference_io(self, name: str) -> bool:
        return False

    def is_debug_tensor(self, name: str) -> bool:
        return name in self._h.get("debug_tensors", [])

    def get_tensor_profile_values(self, name: int, profile_index: str) -> list[list[int]]:
        # pyCore.cpp (10.13, get_tensor_profile_values): the lambda takes (profileIndex, tensorName) but is
        # bound with the labels "name"_a, "profile_index"_a, so the first argument is the profile index.
        profile, tensor = name, profile_index
        if not isinstance(profile, int) or isinstance(profile, bool) or not isinstance(tensor, str):
            raise TypeError("get_tensor_profile_values(): incompatible function arguments. The following argument "
                            "types are supported:\n    1. (self: tensorrt.tensorrt.ICudaEngine, name: int, "
                            f"profile_index: str) -> list[list[int]]\n\nInvoked with: {profile!r}, {tensor!r}")  # fmt: skip
        raise RuntimeError("Binding index does not correspond to an input shape tensor.")  # PY_ASSERT_RUNTIME_ERROR

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        t = self._by_name.get(name)
        if t is None or t["mode"] != "INPUT" or not 0 <= profile_index < self.num_optimization_profiles:
            log(self, "ERROR", f"ICudaEngine::getProfileShape: Error Code 3: API Usage Error (Parameter check failed, "
                               f"condition: tensor {name!r} is an input tensor and profile index {profile_index} is "
                               f"valid.)")  # fmt: skip
            return []
        return [Dims(s) for s in self._h["profiles"][profile_index][name]]

    # --- legacy binding API (8.x)
    @property
    def num_bindings(self) -> int:
        return len(self._io) * self.num_optimization_profiles

    @property
    def max_batch_size(self) -> int:
        return 1

    def get_binding_name(self, index: int) -> str | None:
        return self.get_tensor_name(index % len(self._io)) if 0 <= index < self.num_bindings else None

    def get_binding_index(self, name: str) -> int:
        names = [t["name"] for t in self._io]
        return names.index(name) if name in names else -1

    def binding_is_input(self, index: Any) -> bool:
        name = index if isinstance(index, str) else str(self.get_binding_name(index))
        return self.get_tensor_mode(name) == self._M.TensorIOMode.INPUT

    def get_binding_shape(self, index: Any) -> Dims:
        name = index if isinstance(index, str) else str(self.get_binding_name(index))
        return self.get_tensor_shape(name)

    def get_binding_dtype(self, index: Any) -> Any:
        name = index if isinstance(index, str) else str(self.get_binding_name(index))
        return self.get_tensor_dtype(name)

    def get_profile_shape(self, profile_index: int, binding: Any) -> list[Dims]:
        name = binding if isinstance(binding, str) else str(self.get_binding_name(binding))
        return self.get_tensor_profile_shape(name, profile_index)

    # --- objects
    def serialize(self) -> Any:
        return self._M.IHostMemory(self._plan)

    def _capture_unsafe(self) -> bool:
        """Whether enqueueV3 fails under stream capture: tests name op types in EMULATOR_CAPTURE_UNSAFE_OPS."""
        unsafe = getattr(self._M, "EMULATOR_CAPTURE_UNSAFE_OPS", set())
        return any(layer["type"] in unsafe for layer in self._h["layers"])

    def _free_profile(self) -> int:
        """8.6 without PROFILE_SHARING_0806: a new context takes the first profile no other context uses."""
        used = {c._profile for c in self._contexts}
        return next((p for p in range(self.num_optimization_profiles) if p not in used), 0)

    def _profile_in_use(self, context: Any, profile: int) -> bool:
        if self._L.major >= 10:  # profile sharing is always on from 10.0
            return False
        return any(c is not context and c._profile == profile for c in self._contexts)

    def create_execution_context(self, strategy: Any = None) -> Any:
        if strategy is not None:
            check_enum(self, strategy, "ExecutionContextAllocationStrategy", "create_execution_context")
        return self._M.IExecutionContext(self, strategy.name if strategy is not None else "STATIC")

    def create_execution_context_without_device_memory(self) -> Any:
        return self._M.IExecutionContext(self, "USER_MANAGED")

    def create_engine_inspector(self) -> Any:
        return self._M.EngineInspector(self)


class Refitter(TrtObject):
    """Refits an engine's weights. The double's plans keep the ONNX, so a refit checks that the weights come
    from the same graph (initializer names and shapes) and then marks a weight-stripped engine runnable."""

    error_recorder = Attr(None)
    max_threads = Attr(1)
    weights_validation = Attr(True)

    def __init__(self, engine: Any, logger: Any) -> None:
        self._engine = engine
        self._logger = logger
        self._weights: dict[str, tuple[int, ...]] | None = None

    @property
    def logger(self) -> Any:
        return self._logger

    def get_all_weights(self) -> list[str]:
        return sorted(_initializers(self._engine._onnx))

    def get_missing_weights(self) -> list[str]:
        have = self._weights or {}
        return [n for n in self.get_all_weights() if n not in have]

    def refit_cuda_engine(self) -> bool:
        expected = _initializers(self._engine._onnx)
        if self._weights != expected:
            missing = sorted(set(expected) - set(self._weights or {}))
            log(self, "ERROR", f"IRefitter::refitCudaEngine: Error Code 3: API Usage Error (refit failed: missing or "
                               f"mismatched weights {missing[:5]})")  # fmt: skip
            return False
        self._engine._refitted = True
        return True

    def refit_cuda_engine_async(self, stream_handle: int) -> bool:
        return self.refit_cuda_engine()


def _initializers(onnx_bytes: bytes) -> dict[str, tuple[int, ...]]:
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    return {i.name: tuple(int(d) for d in i.dims) for i in model.graph.initializer}


class OnnxParserRefitter(TrtObject):
    def __init__(self, refitter: Any, logger: Any) -> None:
        self._refitter = refitter
        self._logger = logger
        self._errors: list[str] = []

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> Any:
        return self._errors[index] if 0 <= index < len(self._errors) else None

    def clear_errors(self) -> None:
        self._errors.clear()

    def refit_from_file(self, model: str) -> bool:
        try:
            with open(model, "rb") as f:
                weights = _initializers(f.read())
        except Exception as exc:
            self._errors.append(f"Failed to parse the ONNX model {model}: {exc}")
            log(self, "ERROR", self._errors[-1])
            return False
        self._refitter._weights = weights
        return True


class IExecutionContext(TrtObject):
    debug_sync = Attr(False)
    name = Attr("")
    profiler = Attr(None)
    error_recorder = Attr(None)
    persistent_cache_limit = Attr(0)
    enqueue_emits_profile = Attr(True)

    def __init__(self, engine: Any, strategy: str) -> None:
        self._engine = engine
        self._logger = engine._logger
        self._profile = 0
        if engine._L.major < 10:
            self._profile = engine._free_profile()
        engine._contexts.add(self)
        self._shapes: dict[str, list[int]] = {}
        self._addrs: dict[str, int] = {}
        self._strategy = strategy
        self._device_memory: int | None = None
        self._consumed_event: Any = None
        self._allocators: dict[str, Any] = {}

    @property
    def engine(self) -> Any:
        return self._engine

    @property
    def active_optimization_profile(self) -> int:
        return self._profile

    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:
        # pyCore.cpp (8.6 and 10.13, context_set_optimization_profile_async): the binding wraps the C++ call in
        # PY_ASSERT_RUNTIME_ERROR, so a failure raises RuntimeError and success always returns True.
        if not 0 <= profile_index < self._engine.num_optimization_profiles:
            log(self, "ERROR", f"IExecutionContext::setOptimizationProfileAsync: Error Code 3: API Usage Error "
                               f"(Parameter check failed, condition: profileIndex >= 0 && profileIndex < "
                               f"mEngine.getNbOptimizationProfiles(). profileIndex={profile_index})")  # fmt: skip
            raise RuntimeError("Error in set optimization profile async.")
        if self._engine._profile_in_use(self, profile_index):
            log(self, "ERROR", f"IExecutionContext::setOptimizationProfileAsync: Error Code 3: API Usage Error "
                               f"(Parameter check failed, condition: !mEngine.isProfileInUse(profileIndex). Profile "
                               f"{profile_index} is used by another execution context.)")  # fmt: skip
            raise RuntimeError("Error in set optimization profile async.")
        if profile_index != self._profile:
            self._shapes.clear()  # input shapes must be set again for the new profile
        self._profile = profile_index
        return True

    # --- shapes
    def _inputs(self) -> list[dict[str, Any]]:
        return [t for t in self._engine._io if t["mode"] == "INPUT"]

    def _input_shape(self, t: dict[str, Any]) -> list[int] | None:
        if t["name"] in self._shapes:
            return self._shapes[t["name"]]
        return list(t["shape"]) if all(d >= 0 for d in t["shape"]) else None

    def set_input_shape(self, name: str, shape: Any) -> bool:
        t = self._engine._by_name.get(name)
        if not isinstance(shape, Dims) and len(list(shape)) > Dims.MAX_DIMS:  # pyCore.cpp castDimsFromPyIterable
            raise RuntimeError("The number of input dims exceeds the maximum allowed number of dimensions")
        dims = to_dims(shape)
        prefix = "IExecutionContext::setInputShape: Error Code 3: API Usage Error (Parameter check failed, condition: "
        if t is None or t["mode"] != "INPUT":
            log(self, "ERROR", f"{prefix}mEngine.bindingIsInput(bindingIndex). The given tensor name {name!r} is not "
                               f"an input tensor.)")  # fmt: skip
            return False
        if len(dims) != len(t["shape"]):
            log(self, "ERROR", f"{prefix}engineDims.nbDims == dims.nbDims. Dimensions mismatch for {name}: got "
                               f"{len(dims)} dimensions, expected {len(t['shape'])}.)")  # fmt: skip
            return False
        for e, d in zip(t["shape"], dims):
            if e >= 0 and e != d:
                log(self, "ERROR", f"{prefix}engineDims.d[i] == dims.d[i]. Static dimension mismatch while setting "
                                   f"input shape for {name}. Set dimensions are {_fmt(dims)}. Expected dimensions are "
                                   f"{_fmt(t['shape'])}.)")  # fmt: skip
                return False
        lo, _opt, hi = self._engine._h["profiles"][self._profile][name]
        if any(d < a or d > b for d, a, b in zip(dims, lo, hi)):
            log(self, "ERROR", f"{prefix}satisfyProfile. Set dimension {_fmt(dims)} for tensor {name} does not satisfy "
                               f"any optimization profiles. Valid range for profile {self._profile}: {_fmt(lo)}.."
                               f"{_fmt(hi)}.)")  # fmt: skip
            return False
        self._shapes[name] = dims
        return True

    def infer_shapes(self) -> list[str]:
        return [t["name"] for t in self._inputs() if self._input_shape(t) is None]

    @property
    def all_binding_shapes_specified(self) -> bool:
        return not self.infer_shapes()

    @property
    def all_shape_inputs_specified(self) -> bool:
        return True

    def _output_shapes(self) -> dict[str, tuple[int, ...] | None]:
        shapes = {t["name"]: tuple(self._input_shape(t) or ()) for t in self._inputs()}
        return self._engine._exec().output_shapes(shapes)

    def get_tensor_shape(self, name: str) -> Dims:
        t = self._engine._by_name.get(name)
        if t is None:
            log(self, "ERROR", f"IExecutionContext::getTensorShape: Error Code 3: API Usage Error (Given invalid "
                               f"tensor name: {name})")  # fmt: skip
            return Dims(())
        if t["mode"] == "INPUT":
            shape = self._input_shape(t)
            return Dims(shape if shape is not None else t["shape"])
        if self.infer_shapes():
            return Dims(t["shape"])
        resolved = self._output_shapes().get(name)
        return Dims(resolved if resolved is not None else t["shape"])

    def get_tensor_strides(self, name: str) -> Dims:
        shape = list(self.get_tensor_shape(name))
        return Dims(_formats.strides(shape, self._engine._format(name)))

    # --- addresses
    def set_tensor_address(self, name: str, memory: int) -> bool:
        if name not in self._engine._by_name:
            log(self, "ERROR", f"IExecutionContext::setTensorAddress: Error Code 3: API Usage Error (Given invalid "
                               f"tensor name: {name})")  # fmt: skip
            return False
        self._addrs[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addrs.get(name, 0)

    def set_output_allocator(self, name: str, output_allocator: Any) -> bool:
        t = self._engine._by_name.get(name)
        if t is None or t["mode"] != "OUTPUT":
            log(self, "ERROR", f"IExecutionContext::setOutputAllocator: Error Code 3: API Usage Error ({name} "
                               "is not an output tensor.)")  # fmt: skip
            return False
        self._allocators[name] = output_allocator
        return True

    def get_output_allocator(self, name: str) -> Any:
        return self._allocators.get(name)

    def set_input_consumed_event(self, event: int) -> bool:
        self._consumed_event = event
        return True

    def get_input_consumed_event(self) -> Any:
        return self._consumed_event

    def set_device_memory(self, memory: int, size: int) -> None:
        self._device_memory = int(memory)

    def update_device_memory_size_for_shapes(self) -> int:
        return int(self._engine.device_memory_size)

    def set_aux_streams(self, aux_streams: list[int]) -> None:
        return None

    # --- execution
    def execute_async_v3(self, stream_handle: int) -> bool:
        mem = self._M._device_memory
        handle = int(stream_handle)
        if handle in mem.capturing:
            # Under stream capture the work is recorded. An engine with operations CUDA graphs cannot hold makes
            # enqueueV3 return False (sampleInference.cpp 10.13, createEnqueueFunction); the capture itself stays
            # valid, so cudaStreamEndCapture hands back a graph without the engine's work in it, one that "should
            # not be used" (sampleDevice.h, TrtCudaGraph::endCaptureOnError, case 2).
            if self._engine._capture_unsafe():
                log(self, "ERROR", "1: [executionContext.cpp::enqueueV3] Error Code 1: Cuda Runtime (operation not "
                                   "permitted when stream is capturing)")  # fmt: skip
                return False
            if not self._check_enqueue(dict(self._addrs), "enqueueV3"):
                return False
            addrs = dict(self._addrs)
            mem.capturing[handle].append(lambda: self._execute(addrs, "enqueueV3"))
            return True
        return self._execute(dict(self._addrs), "enqueueV3")

    def execute_v2(self, bindings: list[int]) -> bool:
        return self._execute(self._bindings_to_addrs(bindings), "executeV2")

    def execute_async_v2(self, bindings: list[int], stream_handle: int) -> bool:
        return self._execute(self._bindings_to_addrs(bindings), "enqueueV2")

    def _bindings_to_addrs(self, bindings: list[int]) -> dict[str, int]:
        io = self._engine._io
        base = self._profile * len(io) if len(bindings) >= (self._profile + 1) * len(io) else 0
        return {t["name"]: int(bindings[base + i]) for i, t in enumerate(io) if base + i < len(bindings) and bindings[base + i]}

    def set_binding_shape(self, binding: int, shape: Any) -> bool:
        name = self._engine.get_binding_name(binding)
        return name is not None and self.set_input_shape(name, shape)

    def get_binding_shape(self, binding: int) -> Dims:
        return self.get_tensor_shape(str(self._engine.get_binding_name(binding)))

    def _check_enqueue(self, addrs: dict[str, int], api: str) -> bool:
        """The device checks of an enqueue: the engine's device is current and every address is on it."""
        mem = self._M._device_memory
        current = mem.current_device()
        current = 0 if current is None else current
        if current != self._engine._device:
            log(self, "ERROR", f"1: [executionContext.cpp::{api}] Error Code 1: Cuda Runtime (invalid device context: "
                               f"the engine was deserialized on device {self._engine._device} but device {current} "
                               "is current)")  # fmt: skip
            return False
        for name, ptr in addrs.items():
            owner = mem.device_at(ptr)
            if owner is not None and owner != self._engine._device:
                log(self, "ERROR", f"1: [executionContext.cpp::{api}] Error Code 1: Cuda Runtime (an illegal memory "
                                   f"access was encountered: tensor {name} is in device {owner}'s memory, the engine "
                                   f"runs on device {self._engine._device})")  # fmt: skip
                return False
        return True

    def _execute(self, addrs: dict[str, int], api: str) -> bool:
        if not self._check_enqueue(addrs, api):
            return False
        if "STRIP_PLAN" in self._engine._h["flags"] and not self._engine._refitted:
            log(self, "ERROR", f"IExecutionContext::{api}: Error Code 3: API Usage Error (The engine was built with "
                               "kSTRIP_PLAN and has not been refitted; refit its weights before inference.)")  # fmt: skip
            return False
        prefix = f"IExecutionContext::{api}: Error Code 3: API Usage Error (Parameter check failed, condition: "
        missing_shapes = self.infer_shapes()
        if missing_shapes:
            log(self, "ERROR", f"{prefix}inputDimensionSpecified && inputShapesSpecified. Not all shapes are "
                               f"specified. Following input tensors' dimensions are not specified: "
                               f"{', '.join(missing_shapes)}.)")  # fmt: skip
            return False
        for t in self._engine._io:
            if not addrs.get(t["name"]) and t["name"] in self._allocators:
                continue  # allocated through the IOutputAllocator once the shape is known
            if not addrs.get(t["name"]):
                if t["mode"] == "INPUT":
                    what = (f"Address is not set for input tensor {t['name']}. Call setInputTensorAddress or "
                            "setTensorAddress before enqueue/execute.")  # fmt: skip
                else:
                    what = (f"Neither address or allocator is set for output tensor {t['name']}. Call "
                            "setOutputTensorAddress, setTensorAddress or setOutputAllocator before enqueue/execute.")  # fmt: skip
                log(self, "ERROR", f"{prefix}mContext.profileObliviousBindings.at(profileObliviousIndex) || "
                                   f"getPtrOrNull(mOutputAllocators, profileObliviousIndex). {what})")  # fmt: skip
                return False
        if self._strategy == "USER_MANAGED" and self._device_memory is None:
            log(self, "ERROR", f"{prefix}mDeviceMemory != nullptr. The execution context was created without device "
                               "memory; call set_device_memory() before executing.)")  # fmt: skip
            return False
        mem = self._M._device_memory
        ex = self._engine._exec()
        feeds = {}
        try:
            for t in self._inputs():
                shape = self._input_shape(t) or []
                dtype = np.dtype(TRT_TO_NUMPY[t["dtype"]])
                fmt = self._engine._format(t["name"])
                nbytes = _formats.nbytes(shape, fmt, dtype.itemsize)  # vectorized formats read padded channels
                raw = bytes(mem.view(addrs[t["name"]], nbytes, api)) if nbytes else b""
                arr = _formats.from_layout(np.frombuffer(raw, dtype=dtype), shape, fmt)
                feeds[t["name"]] = arr.astype(ort_dtype(ex.input_types[t["name"]]), copy=False)
            results = ex.run(feeds)
            expected = self._output_shapes()
            writes = []
            for t in self._engine._io:
                if t["mode"] != "OUTPUT":
                    continue
                arr = results[t["name"]]
                want = expected.get(t["name"])
                if want is not None and tuple(arr.shape) != tuple(want):
                    raise RuntimeError(f"output {t['name']} has shape {arr.shape}, expected {want}")
                data = _formats.to_layout(arr.astype(TRT_TO_NUMPY[t["dtype"]], copy=False), self._engine._format(t["name"]))
                allocator = self._allocators.get(t["name"])
                if allocator is not None:
                    addrs[t["name"]] = self._allocate(allocator, t["name"], addrs.get(t["name"], 0), data)
                writes.append((mem.view(addrs[t["name"]], data.nbytes, api) if data.nbytes else None, data))
        except Exception as exc:
            log(self, "ERROR", f"1: [executionContext.cpp::{api}] Error Code 1: Cuda Runtime (an illegal memory access "
                               f"was encountered) [emulator: {exc}]")  # fmt: skip
            return False
        for view, data in writes:
            if view is not None:
                view[:] = memoryview(data).cast("B")  # type: ignore[arg-type]
        for name, allocator in self._allocators.items():
            allocator.notify_shape(name, Dims(results[name].shape))
        return True

    def _allocate(self, allocator: Any, name: str, current: int, data: np.ndarray) -> int:
        """TensorRT asks the allocator for memory once it knows an output's size (async variant from 10.x)."""
        size = max(int(data.nbytes), 1)
        if self._L.major >= 10 and hasattr(allocator, "reallocate_output_async"):
            ptr = allocator.reallocate_output_async(name, current, size, 256, 0)
        else:
            ptr = allocator.reallocate_output(name, current, size, 256)
        if not ptr:
            raise RuntimeError(f"the output allocator returned no memory for {name}")
        return int(ptr)


def _fmt(dims: Any) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


class EngineInspector(TrtObject):
    execution_context = Attr(None)
    error_recorder = Attr(None)

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def _layer(self, i: int) -> Any:
        lay = self._engine._h["layers"][i]
        verbosity = self._engine._h["profiling_verbosity"]
        if verbosity == "DETAILED":
            return {"Name": lay["name"], "LayerType": lay["type"], "Inputs": [], "Outputs": [],
                    "TacticName": "emulated_onnxruntime_cpu", "StreamId": 0, "Metadata": ""}  # fmt: skip
        return lay["name"]

    def get_layer_information(self, layer_index: int, format: Any) -> str:  # noqa: A002
        check_enum(self, format, "LayerInformationFormat", "get_layer_information")
        info = self._layer(layer_index)
        if format == self._M.LayerInformationFormat.JSON:
            return json.dumps(info)
        return info if isinstance(info, str) else ", ".join(f"{k}: {v}" for k, v in info.items())

    def get_engine_information(self, format: Any) -> str:  # noqa: A002
        check_enum(self, format, "LayerInformationFormat", "get_engine_information")
        eng = self._engine
        n = 0 if eng._h["profiling_verbosity"] == "NONE" else eng.num_layers
        if format == self._M.LayerInformationFormat.ONELINE:
            return "\n".join(self.get_layer_information(i, format) for i in range(n)) + "\n"
        doc: dict[str, Any] = {"Layers": [self._layer(i) for i in range(n)]}
        if self._L.major >= 11:
            doc["I/O Tensors"] = [
                {"Name": t["name"], "IOMode": t["mode"].capitalize(), "DataType": t["dtype"], "Dimensions": t["shape"],
                 "Location": "Device", "IsShapeInferenceIO": False,
                 "ProfileInfo": [{"MinShape": p[t["name"]][0], "OptShape": p[t["name"]][1], "MaxShape": p[t["name"]][2],
                                  "Format": "Row major linear"} for p in eng._h["profiles"]] if t["mode"] == "INPUT" else []}
                for t in eng._io
            ]  # fmt: skip
        else:
            doc["Bindings"] = [t["name"] for t in eng._io]
        return json.dumps(doc)
