"""Run a TensorRT engine with PyCUDA, and time it the way trtexec does (samples/common/sampleInference.cpp; docs/bench.md).

Only the name-based tensor API is used (``num_io_tensors``, ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``): it is the one API TensorRT 8.5 through 11.x share.

- The CUDA context is the *primary* context of the engine's device (``--device``, else the device the
  manifest says it was built on, else 0): the one the CUDA runtime inside TensorRT uses. It is pushed on
  ``activate`` and popped on ``deactivate`` after every buffer, context and engine is gone
  (``pycuda.autoprimaryctx`` would always take device 0; ``pycuda.autoinit`` a second context).
- Before deserializing, TensorRT's own plugins are registered (``init_libnvinfer_plugins``, as Polygraphy's
  ``EngineFromBytes`` and trtexec do) and the user's plugin libraries, if named, are loaded. Libraries come
  only from the caller (command-line flags), never from a manifest.
- Buffers (page-locked host + device) are sized for the largest shape of the profile in use and allocated
  once; a later profile with larger maxima grows them. Shapes and tensor addresses are set only when the
  input shapes change.
- The profile is chosen per query: the first one whose [min, max] holds every input's shape
  (Polygraphy always uses profile 0), unless ``profile_index`` pins one. A shape no profile covers is a
  ShapeError that lists the profiles' ranges.
- Outputs whose shape depends on the data (``-1`` after the input shapes are set) go through an
  ``IOutputAllocator``; all others use the preallocated buffers.
- ``time_trtexec`` is trtexec's loop: CUDA events around H2D/compute/D2H, the host clock around
  ``execute_async_v3`` (or the CUDA graph launch) only, two queries in flight, warm-up and duration judged
  on GPU time. CUDA graphs are captured through cuda-python (``cuda-bindings``; no released PyCUDA binds
  stream capture). An engine whose enqueue fails under capture is timed without a graph, as trtexec does;
  without cuda-python the mode says "no-graph" and why.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from trtbuild.backends.base import Runner
from trtbuild.errors import EngineFileError, MissingDependencyError, ShapeError, TrtbuildError
from trtbuild.shapes import Dims, TensorInfo, format_dims

if TYPE_CHECKING:
    import numpy as np

    from trtbuild.bench.timing import TimingMode, TimingOptions, Traces

log = logging.getLogger(__name__)


#: Lets ``bench``/``compare`` deserialize a version-compatible engine that has no manifest (trtexec's
#: ``--versionCompatible`` at load time): such a plan carries host code (its lean runtime) that runs here.
ALLOW_HOST_CODE_ENV = "TRTBUILD_ALLOW_ENGINE_HOST_CODE"


def import_pycuda() -> ModuleType:
    """``pycuda.driver``, initialized, with at least one CUDA device (no context is made current here)."""
    import importlib

    try:
        driver = importlib.import_module("pycuda.driver")
        driver.init()
        if int(driver.Device.count()) < 1:
            raise RuntimeError("no CUDA device is visible")
        return driver
    except ImportError as exc:
        raise MissingDependencyError(
            f"Running a TensorRT engine needs PyCUDA ({exc}): pip install pycuda (it needs the CUDA toolkit and "
            "an NVIDIA driver; on a Jetson build it on the device)."
        ) from None
    except Exception as exc:  # pycuda.driver.Error / OSError: no driver, no device
        raise MissingDependencyError(f"PyCUDA could not initialize CUDA ({exc}); check the NVIDIA driver "
                                     "(nvidia-smi) and that a GPU is visible.") from None  # fmt: skip


def push_device_context(cuda: ModuleType, device: int) -> Any:
    """Make ``device``'s primary context current (the context TensorRT's CUDA runtime uses) and return it.

    trtexec selects the device with ``cudaSetDevice`` (samples/common/sampleDevice.h, setCudaDevice), which
    binds the device's primary context; PyCUDA reaches the same context through ``retain_primary_context``.
    """
    count = int(cuda.Device.count())
    if not 0 <= device < count:
        raise TrtbuildError(f"--device={device}: this machine has {count} CUDA device(s) (0..{count - 1}); pick one "
                            "of them (nvidia-smi lists them).")  # fmt: skip
    try:
        context = cuda.Device(device).retain_primary_context()
        context.push()
    except Exception as exc:  # pycuda.driver.Error
        raise MissingDependencyError(f"PyCUDA could not open the primary CUDA context of device {device} ({exc}); "
                                     "check the NVIDIA driver (nvidia-smi).") from None  # fmt: skip
    return context


def read_plan(engine: str | os.PathLike[str], device: int | None = None) -> tuple[bytes, dict[str, Any] | None]:
    """The plan bytes and manifest, checked against this host (``device``: the GPU it will run on)."""
    from trtbuild.engine_file import host_info, load_engine_bytes

    host = host_info(device) if device is not None else None
    data, manifest = load_engine_bytes(engine, host=host)
    return bytes(data) if not isinstance(data, bytes) else data, manifest


def register_plugins(trt: Any, logger: Any, libraries: Sequence[str] = ()) -> None:
    """TensorRT's own plugins, then the user's plugin libraries, before any engine is deserialized.

    Polygraphy's ``EngineFromBytes`` (backend/trt/loader.py) calls ``init_libnvinfer_plugins(logger, "")``
    before ``deserialize_cuda_engine``; trtexec loads ``--dynamicPlugins`` through the plugin registry's
    ``loadLibrary`` (samples/common/sampleEngines.cpp, RuntimeImpl) and ``--staticPlugins`` with dlopen.
    """
    init = getattr(trt, "init_libnvinfer_plugins", None)
    if init is not None:
        init(logger, "")
    if not libraries:
        return
    registry = trt.get_plugin_registry()
    for path in libraries:
        if not Path(path).is_file():
            raise EngineFileError(f"Plugin library {path} does not exist; pass the path of the .so that holds the "
                                  "engine's plugins.")  # fmt: skip
        if hasattr(registry, "load_library"):
            if registry.load_library(str(path)) is None:
                raise EngineFileError(f"TensorRT {trt.__version__} could not load the plugin library {path}; check "
                                      "that it was built for this TensorRT version.")  # fmt: skip
        else:  # older bindings: dlopen it globally so its static registration runs (Polygraphy's LoadPlugins)
            import ctypes

            try:
                _LOADED_LIBRARIES.append(ctypes.CDLL(str(path), mode=getattr(ctypes, "RTLD_GLOBAL", 0)))
            except OSError as exc:
                raise EngineFileError(f"Cannot load the plugin library {path} ({exc}).") from None


_LOADED_LIBRARIES: list[Any] = []  # plugin libraries stay loaded for the process


@dataclass
class _Buffer:
    """One I/O tensor's page-locked host buffer and device buffer, both ``capacity`` bytes."""

    host: Any  # 1-D uint8 numpy array in page-locked memory
    device: Any  # pycuda DeviceAllocation
    capacity: int

    @property
    def address(self) -> int:
        return int(self.device)


@dataclass
class _Slot:
    """One of trtexec's two in-flight queries: 6 events and the host enqueue stamps."""

    events: dict[str, Any]
    active: bool = False
    enq_start_ns: int = 0
    enq_end_ns: int = 0


@dataclass
class ProfileInfo:
    index: int
    ranges: dict[str, tuple[Dims, Dims, Dims]] = field(default_factory=dict)

    def covers(self, shapes: Mapping[str, Dims]) -> bool:
        for name, (lo, _opt, hi) in self.ranges.items():
            shape = shapes.get(name)
            if shape is None or len(shape) != len(lo):
                return False
            if not all(a <= d <= b for a, d, b in zip(lo, shape, hi)):
                return False
        return True

    def describe(self) -> str:
        parts = [f"{n} min {format_dims(lo)} opt {format_dims(opt)} max {format_dims(hi)}"
                 for n, (lo, opt, hi) in self.ranges.items()]  # fmt: skip
        return f"profile {self.index}: " + "; ".join(parts)


def _make_output_allocator(trt: Any, cuda: ModuleType) -> Any:
    """An ``IOutputAllocator`` that keeps one growing device buffer per data-dependent output."""

    class OutputAllocator(trt.IOutputAllocator):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.buffers: dict[str, Any] = {}
            self.sizes: dict[str, int] = {}
            self.shapes: dict[str, tuple[int, ...]] = {}

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            size = max(int(size), 1)
            if self.sizes.get(tensor_name, 0) < size:
                old = self.buffers.pop(tensor_name, None)
                if old is not None:
                    old.free()
                self.buffers[tensor_name] = cuda.mem_alloc(size)
                self.sizes[tensor_name] = size
            return int(self.buffers[tensor_name])

        def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int,
                                    stream: int) -> int:  # fmt: skip
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

        def free(self) -> None:
            for buf in self.buffers.values():
                buf.free()
            self.buffers.clear()
            self.sizes.clear()

    return OutputAllocator()


class TrtRuntime(Runner):
    """A deserialized engine, one execution context, one stream and reusable buffers.

    Use as a context manager (or call ``activate``/``deactivate``). ``infer`` takes and returns host numpy
    arrays; ``time_trtexec`` times one input feed with trtexec's method and returns its traces and mode.
    """

    name = "trt"
    backend = "tensorrt"

    def __init__(
        self,
        engine: str | os.PathLike[str] | bytes,
        *,
        profile_index: int | None = None,
        name: str = "trt",
        verbose: bool = False,
        device: int | None = None,
        dla_core: int | None = None,
        plugin_libraries: Sequence[str] = (),
        allow_host_code: bool | None = None,
    ) -> None:
        super().__init__()
        self.engine_source = engine
        self.requested_device = device
        self.requested_dla_core = dla_core
        self.plugin_libraries = list(plugin_libraries)
        self.allow_host_code = allow_host_code
        self.device_index: int | None = None  # the CUDA device the engine runs on, once active
        self._cuda_context: Any = None
        self.engine_path = None if isinstance(engine, (bytes, bytearray, memoryview)) else Path(engine)
        self.requested_profile = profile_index
        self.name = name
        self.verbose = verbose
        self.manifest: dict[str, Any] | None = None
        self.trt: Any = None
        self.cuda: Any = None
        self.engine: Any = None
        self.context: Any = None
        self.stream: Any = None
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self.dtypes: dict[str, Any] = {}
        self.profiles: list[ProfileInfo] = []
        self.active_profile: int | None = None
        self.buffers: dict[str, _Buffer] = {}
        self.allocations = 0  # device allocations made (tests check that buffers are reused)
        self.shape_changes = 0  # times input shapes were (re)set on the context
        self.output_shapes: dict[str, tuple[int, ...]] = {}
        self.dynamic_outputs: set[str] = set()
        self._allocator: Any = None
        self._current: tuple[Dims, ...] | None = None
        self._runtime: Any = None
        self._logger: Any = None

    # ---- lifecycle

    def activate(self) -> None:
        from trtbuild.trt.compat import import_tensorrt

        trt = import_tensorrt()
        cuda = import_pycuda()
        if isinstance(self.engine_source, (bytes, bytearray, memoryview)):
            plan = bytes(self.engine_source)
        else:
            plan, self.manifest = read_plan(self.engine_source, self.requested_device)
        device = self.requested_device
        if device is None:
            from trtbuild.engine_file import manifest_device

            device = manifest_device(self.manifest or {}) or 0
        self._cuda_context = push_device_context(cuda, device)
        self.device_index = device
        try:
            self._load(trt, cuda, plan)
        except BaseException:
            self.deactivate()
            raise
        self.is_active = True

    def _load(self, trt: Any, cuda: Any, plan: bytes) -> None:
        from trtbuild.trt.logger import get_logger

        logger = get_logger(self.verbose)
        self._logger = logger
        register_plugins(trt, logger, self.plugin_libraries)
        runtime = trt.Runtime(logger)
        dla_core = self.requested_dla_core
        if dla_core is None and isinstance((self.manifest or {}).get("dla_core"), int):
            dla_core = int(self.manifest["dla_core"])  # type: ignore[index]
        if dla_core is not None and dla_core >= 0:
            # trtexec: runtime->setDLACore before deserializing (samples/common/sampleEngines.cpp, RuntimeImpl).
            cores = int(getattr(runtime, "num_DLA_cores", 0))
            if dla_core >= cores:
                raise TrtbuildError(f"The engine runs on DLA core {dla_core}, but this device has {cores} DLA core(s); "
                                    "run it on the Jetson it was built for, or pass --useDLACore with a core it has.")  # fmt: skip
            runtime.DLA_core = dla_core
        compat = (self.manifest or {}).get("compatibility") or {}
        allow = self.allow_host_code
        if allow is None:
            allow = bool(compat.get("version_compatible")) or os.environ.get(ALLOW_HOST_CODE_ENV, "") == "1"
        if allow and hasattr(runtime, "engine_host_code_allowed"):
            # Version-compatible plans embed the lean runtime (host code). trtexec allows it only with
            # --versionCompatible (sampleEngines.cpp: setEngineHostCodeAllowed); Polygraphy's EngineFromBytes
            # always does. trtbuild follows trtexec: an engine file may come from someone else, and its host
            # code runs on load, so it needs the manifest trtbuild wrote or the user's explicit opt-in.
            runtime.engine_host_code_allowed = True
        engine = runtime.deserialize_cuda_engine(plan)
        if engine is None:
            errors: list[str] = getattr(logger, "take_errors", list)()
            where = str(self.engine_path) if self.engine_path else "the plan"
            detail = f" ({'; '.join(errors)})" if errors else ""
            if any("engineHostCodeAllowed" in e or "host code" in e.lower() for e in errors):
                raise EngineFileError(
                    f"TensorRT {trt.__version__} refused to deserialize {where}: it is a version-compatible engine whose "
                    f"embedded runtime is host code{detail}. Allow it only for an engine you trust: set "
                    f"{ALLOW_HOST_CODE_ENV}=1 (trtexec's --versionCompatible at load time)."
                )
            if any("plugin" in e.lower() for e in errors):
                raise EngineFileError(
                    f"TensorRT {trt.__version__} could not deserialize {where}: it uses a plugin that is not "
                    f"registered{detail}. TensorRT's own plugins are registered already; load the library that holds "
                    "the others (trtexec's --dynamicPlugins/--staticPlugins)."
                )
            raise EngineFileError(
                f"TensorRT {trt.__version__} could not deserialize {where}{detail}. It was probably built by another "
                "TensorRT version or for another GPU; rebuild it here with `trtbuild build`."
            )
        self.trt, self.cuda, self._runtime, self.engine = trt, cuda, runtime, engine
        self.stream = cuda.Stream()
        self._refit_if_stripped(trt, logger)
        self.context = engine.create_execution_context()
        if self.context is None:
            raise TrtbuildError("TensorRT could not create an execution context (out of GPU memory?).")
        self._read_io()
        if self.requested_profile is not None:
            if not 0 <= self.requested_profile < len(self.profiles):
                raise ShapeError(f"The engine has {len(self.profiles)} optimization profile(s) (0.."
                                 f"{len(self.profiles) - 1}); --useProfile={self.requested_profile} is not one "
                                 "of them.")  # fmt: skip
            self._switch_profile(self.requested_profile)

    def _refit_if_stripped(self, trt: Any, logger: Any) -> None:
        """A weight-stripped engine (--stripWeights) gets its weights back from its ONNX before it runs.

        trtexec's ``--refitFromOnnx`` (samples/common/sampleEngines.cpp, refitFromOnnx, main branch):
        ``createRefitter`` -> ``createONNXRefitter`` -> ``refitFromFile`` -> ``refitCudaEngineAsync`` + sync.
        The ONNX is the one the manifest names, used only when its sha256 is the manifest's.
        """
        manifest = self.manifest or {}
        build = (manifest.get("build_options") or {}).get("build") or {}
        if not build.get("strip_weights"):
            return
        where = str(self.engine_path) if self.engine_path else "the engine"
        onnx = manifest.get("onnx") or {}
        path = onnx.get("path")
        if not isinstance(path, str) or not Path(path).is_file():
            raise EngineFileError(f"{where} was built with --stripWeights: it needs the weights of its ONNX ({path}), "
                                  "which is not there; put the ONNX back at that path or rebuild without "
                                  "--stripWeights.")  # fmt: skip
        from trtbuild.engine_file import sha256_file

        if onnx.get("sha256") and sha256_file(path) != onnx["sha256"]:
            raise EngineFileError(f"{where} was built with --stripWeights from an ONNX whose sha256 differs from "
                                  f"{path} now; refit only with the weights it was built from (or rebuild).")  # fmt: skip
        if not hasattr(trt, "OnnxParserRefitter"):
            raise TrtbuildError(f"{where} was built with --stripWeights, and TensorRT {trt.__version__} here has no ONNX "
                                "refitter to restore its weights; run it with TensorRT 10 or later.")  # fmt: skip
        refitter = trt.Refitter(self.engine, logger)
        parser = trt.OnnxParserRefitter(refitter, logger)
        if not parser.refit_from_file(path):
            raise EngineFileError(f"TensorRT could not read the weights of {path} for {where}{self._trt_errors()}.")
        done = (refitter.refit_cuda_engine_async(self.stream.handle) if hasattr(refitter, "refit_cuda_engine_async")
                else refitter.refit_cuda_engine())  # fmt: skip
        self.stream.synchronize()
        if not done:
            raise EngineFileError(f"TensorRT could not refit {where} with the weights of {path}{self._trt_errors()}.")
        log.info("Refitted the weight-stripped engine %s from %s.", where, path)

    def deactivate(self) -> None:
        if self.stream is not None:
            try:
                self.stream.synchronize()
            except Exception:  # a failed kernel must not hide the original error
                pass
        for buf in self.buffers.values():
            buf.device.free()
        self.buffers.clear()
        if self._allocator is not None:
            self._allocator.free()
            self._allocator = None
        self.context = None
        self.engine = None
        self._runtime = None
        self.stream = None
        self._current = None
        self.active_profile = None
        if self._cuda_context is not None:
            # Popped last: the TensorRT objects and PyCUDA buffers dropped above are released (reference
            # counting frees them at once) while their context is still current.
            try:
                self._cuda_context.pop()
            except Exception:  # a context already gone must not hide the original error
                pass
            self._cuda_context = None
        self.is_active = False

    close = deactivate

    def _read_io(self) -> None:
        from trtbuild.trt.dtypes import to_numpy

        trt, engine = self.trt, self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        linear = trt.TensorFormat.LINEAR
        for n in names:
            fmt = engine.get_tensor_format(n)
            if fmt != linear:
                # Buffers here are sized and filled as row-major data; a vectorized or channel-last layout
                # (e.g. --inputIOFormats=fp16:hwc8) pads and reorders the tensor, so refuse it rather than read
                # past the buffer or feed mis-ordered data. (Polygraphy's TrtRunner converts CHW16 and HWC only
                # and passes other layouts through unconverted; trtbuild would rather say so than time them.)
                raise TrtbuildError(
                    f"Engine tensor '{n}' uses the I/O format {getattr(fmt, 'name', fmt)} "
                    f"({engine.get_tensor_format_desc(n)}); trtbuild's runtime feeds linear (chw) buffers only. "
                    "Rebuild without that --inputIOFormats/--outputIOFormats layout (e.g. fp16:chw), or run the "
                    "engine with trtexec."
                )
            if engine.is_shape_inference_io(n):
                raise TrtbuildError(f"Engine tensor '{n}' is a shape tensor (its values set shapes); trtbuild's "
                                    "runtime does not feed shape tensors. Fold it into the ONNX (onnxslim) or run "
                                    "the engine with trtexec.")  # fmt: skip
            self.dtypes[n] = to_numpy(trt, engine.get_tensor_dtype(n))
        count = max(int(engine.num_optimization_profiles), 1)
        self.profiles = []
        for p in range(count):
            info = ProfileInfo(p)
            for n in self.input_names:
                lo, opt, hi = engine.get_tensor_profile_shape(n, p)
                info.ranges[n] = (_dims(lo), _dims(opt), _dims(hi))
            self.profiles.append(info)

    # ---- metadata

    def input_metadata(self) -> list[TensorInfo]:
        self._require()
        return [TensorInfo(n, self.dtypes[n].name, tuple(int(d) for d in self.engine.get_tensor_shape(n)))
                for n in self.input_names]  # fmt: skip

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "backend": self.backend}
        if self.engine_path is not None:
            info["engine"] = str(self.engine_path)
        if self.trt is not None:
            info["tensorrt"] = str(self.trt.__version__)
        if self.cuda is not None:
            info["device"] = self.device_name()
        if self.manifest:
            for key in ("precision", "gpu", "tensorrt_version"):
                if key in self.manifest:
                    info[key] = self.manifest[key]
        return info

    def device_name(self) -> str:
        """The CUDA device's name as PyCUDA reports it (a test double says so in its name)."""
        try:
            return str(self.cuda.Context.get_device().name())
        except Exception:  # cosmetic: never fail over a name
            return ""

    def _trt_errors(self) -> str:
        """TensorRT's logged errors since the last call, as a clause for an error message."""
        take = getattr(self._logger, "take_errors", None)
        errors = take() if callable(take) else []
        return f" ({'; '.join(errors)})" if errors else " (run with --verbose to see TensorRT's log)"

    def _require(self) -> None:
        if not self.is_active:
            raise TrtbuildError("TrtRuntime is not active: use it as a context manager or call activate() first.")

    # ---- profiles and buffers

    def choose_profile(self, shapes: Mapping[str, Dims]) -> int:
        """The pinned profile, or the first one whose ranges hold ``shapes``; a ShapeError naming every range."""
        candidates = self.profiles if self.requested_profile is None else [self.profiles[self.requested_profile]]
        if self.active_profile is not None and self.requested_profile is None:
            # Prefer the profile in use: switching profiles costs a set_optimization_profile_async + sync.
            active = self.profiles[self.active_profile]
            candidates = [active] + [p for p in candidates if p is not active]
        for profile in candidates:
            if profile.covers(shapes):
                return profile.index
        asked = ", ".join(f"{n}:{format_dims(s)}" for n, s in shapes.items())
        ranges = " | ".join(p.describe() for p in sorted(candidates, key=lambda p: p.index))
        pinned = f" (profile {self.requested_profile} was requested)" if self.requested_profile is not None else ""
        raise ShapeError(
            f"No optimization profile of the engine covers the shapes {asked}{pinned}. The engine's ranges: "
            f"{ranges}. Use shapes inside one range, or rebuild the engine with a profile that covers them."
        )

    def _switch_profile(self, index: int) -> None:
        if self.active_profile == index:
            return
        if len(self.profiles) > 1 or index != 0:
            # The binding raises RuntimeError when setOptimizationProfileAsync fails and returns True otherwise
            # (python/src/infer/pyCore.cpp, context_set_optimization_profile_async, 8.6 and 10.13).
            try:
                self.context.set_optimization_profile_async(index, self.stream.handle)
            except RuntimeError as exc:
                raise TrtbuildError(f"TensorRT refused to switch the execution context to optimization profile "
                                    f"{index}{self._trt_errors()} [{exc}]. On TensorRT 8.x a profile serves one "
                                    "execution context at a time; pin another with --useProfile.") from None  # fmt: skip
            self.stream.synchronize()
        self.active_profile = index
        self._current = None  # shapes must be set again under the new profile
        self._size_for_profile(index)

    def _size_for_profile(self, index: int) -> None:
        """Grow buffers to the profile's largest shapes (inputs at max; outputs as TensorRT infers them)."""
        profile = self.profiles[index]
        need: dict[str, int] = {}
        for n in self.input_names:
            hi = profile.ranges[n][2]
            if not self.context.set_input_shape(n, hi):
                raise TrtbuildError(f"TensorRT rejected the profile {index} maximum {format_dims(hi)} for '{n}'.")
            need[n] = _nbytes(hi, self.dtypes[n])
        for n in self.output_names:
            shape = tuple(int(d) for d in self.context.get_tensor_shape(n))
            if any(d < 0 for d in shape):
                self.dynamic_outputs.add(n)
                continue
            need[n] = _nbytes(shape, self.dtypes[n])
        for n, nbytes in need.items():
            self._ensure_capacity(n, nbytes)

    def _ensure_capacity(self, name: str, nbytes: int) -> bool:
        """Allocate or grow ``name``'s buffers to ``nbytes``; True when the device address changed."""
        buf = self.buffers.get(name)
        if buf is not None and buf.capacity >= nbytes:
            return False
        cuda = self.cuda
        if buf is not None:
            self.stream.synchronize()
            buf.device.free()
        size = max(int(nbytes), 1)
        import numpy as np

        self.buffers[name] = _Buffer(cuda.pagelocked_empty(size, np.uint8), cuda.mem_alloc(size), size)
        self.allocations += 1
        return True

    def prepare(self, shapes: Mapping[str, Sequence[int]]) -> None:
        """Select the profile and set input shapes and tensor addresses, only when the shapes changed."""
        self._require()
        wanted = {n: tuple(int(d) for d in shapes[n]) for n in self.input_names}
        key = tuple(wanted[n] for n in self.input_names)
        if key == self._current:
            return
        self._switch_profile(self.choose_profile(wanted))
        for n in self.input_names:
            if not self.context.set_input_shape(n, wanted[n]):
                raise ShapeError(f"TensorRT rejected the shape {format_dims(wanted[n])} for input '{n}' "
                                 f"({self.profiles[self.active_profile or 0].describe()}){self._trt_errors()}.")  # fmt: skip
            self._ensure_capacity(n, _nbytes(wanted[n], self.dtypes[n]))
        self.output_shapes = {}
        for n in self.output_names:
            shape = tuple(int(d) for d in self.context.get_tensor_shape(n))
            if any(d < 0 for d in shape):
                self.dynamic_outputs.add(n)
                continue
            self.output_shapes[n] = shape
            self._ensure_capacity(n, _nbytes(shape, self.dtypes[n]))
        for n in [*self.input_names, *self.output_names]:
            if n in self.dynamic_outputs:
                continue
            if not self.context.set_tensor_address(n, self.buffers[n].address):
                raise TrtbuildError(f"TensorRT refused the device address for '{n}'.")
        if self.dynamic_outputs and self._allocator is None:
            self._allocator = _make_output_allocator(self.trt, self.cuda)
            for n in self.dynamic_outputs:
                self.context.set_output_allocator(n, self._allocator)
        self._current = key
        self.shape_changes += 1

    def _host_view(self, name: str, shape: Sequence[int]) -> np.ndarray:
        dtype = self.dtypes[name]
        nbytes = _nbytes(shape, dtype)
        return self.buffers[name].host[:nbytes].view(dtype).reshape(tuple(shape))  # type: ignore[no-any-return]

    def _arrays(self, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        import numpy as np

        missing = [n for n in self.input_names if n not in feed]
        if missing:
            raise ShapeError(f"No data for engine input(s) {', '.join(missing)}; the engine's inputs are "
                             f"{', '.join(self.input_names)}.")  # fmt: skip
        return {n: np.asarray(feed[n]) for n in self.input_names}

    def _stage_inputs(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy the inputs into the page-locked host buffers (converted to the engine's dtypes)."""
        for n in self.input_names:
            self._host_view(n, arrays[n].shape)[...] = arrays[n]

    # ---- inference

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._require()
        arrays = self._arrays(feed)
        self.prepare({n: a.shape for n, a in arrays.items()})
        self._stage_inputs(arrays)
        cuda, stream = self.cuda, self.stream
        for n in self.input_names:
            cuda.memcpy_htod_async(self.buffers[n].device, self._host_view(n, arrays[n].shape), stream)
        if not self.context.execute_async_v3(stream.handle):
            raise TrtbuildError(f"TensorRT's execute_async_v3 failed{self._trt_errors()}.")
        if self.dynamic_outputs:
            stream.synchronize()  # data-dependent shapes are known once the query ran
        views = {}
        for n in self.output_names:
            if n in self.dynamic_outputs:
                shape = self._allocator.shapes[n]
                self._ensure_host_capacity(n, _nbytes(shape, self.dtypes[n]))
                device = self._allocator.buffers[n]
            else:
                shape = self.output_shapes[n]
                device = self.buffers[n].device
            views[n] = self._host_view(n, shape)
            cuda.memcpy_dtoh_async(views[n], device, stream)
        stream.synchronize()
        return {n: v.copy() for n, v in views.items()}

    def _ensure_host_capacity(self, name: str, nbytes: int) -> None:
        import numpy as np

        buf = self.buffers.get(name)
        if buf is None or buf.capacity < nbytes:
            size = max(int(nbytes), 1)
            device = buf.device if buf is not None else self.cuda.mem_alloc(1)
            self.buffers[name] = _Buffer(self.cuda.pagelocked_empty(size, np.uint8), device, size)

    # ---- trtexec timing

    def time_trtexec(
        self,
        feed: Mapping[str, np.ndarray],
        options: TimingOptions,
        *,
        on_iteration: Callable[[float], None] | None = None,
    ) -> tuple[Traces, TimingMode]:
        """Time ``feed`` with trtexec's inference loop (sampleInference.cpp, 11.1; docs/bench.md).

        Inputs are copied to the device once before the loop; with ``options.transfers`` every query
        also copies them in and the outputs out on their own streams. Two queries are kept in flight:
        query N+1 is enqueued before waiting for query N. The loop runs while fewer than
        ``iterations`` post-warm-up queries ran or the latest retired query started less than
        ``warmUp + duration`` ms of GPU time after the start event.
        """
        from trtbuild.bench.timing import CLOCK_CUDA, TimingMode, Traces

        self._require()
        cuda = self.cuda
        arrays = self._arrays(feed)
        self.prepare({n: a.shape for n, a in arrays.items()})
        self._stage_inputs(arrays)
        if self.dynamic_outputs:
            raise TrtbuildError(f"Output(s) {', '.join(sorted(self.dynamic_outputs))} have data-dependent shapes; "
                                "time this engine with trtexec (trtbuild's timing loop needs fixed output "
                                "shapes).")  # fmt: skip
        in_views = {n: self._host_view(n, arrays[n].shape) for n in self.input_names}
        out_views = {n: self._host_view(n, self.output_shapes[n]) for n in self.output_names}
        compute = self.stream
        in_stream, out_stream, main = cuda.Stream(), cuda.Stream(), cuda.Stream()
        for n in self.input_names:  # transfers off: inputs go to the device once, synchronously
            cuda.memcpy_htod(self.buffers[n].device, in_views[n])

        graph, graph_note = (None, "")
        if options.cuda_graph:
            graph, graph_note = _capture_graph(cuda, self.context, compute)
        if graph is not None:
            launch = graph.launch
        else:
            context, handle = self.context, compute.handle

            def launch() -> bool:
                return bool(context.execute_async_v3(handle))

        flags = 0 if options.spin_wait else cuda.event_flags.BLOCKING_SYNC
        kinds = ("INPUT_S", "INPUT_E", "COMPUTE_S", "COMPUTE_E", "OUTPUT_S", "OUTPUT_E")
        slots = [_Slot({k: cuda.Event(flags) for k in kinds}) for _ in range(2)]
        transfers = options.transfers
        rows: list[tuple[float, ...]] = []
        clock = time.perf_counter_ns

        gpu_start = cuda.Event(flags)
        cpu_start = clock()
        gpu_start.record(main)
        for s in (in_stream, compute, out_stream):
            s.wait_for_event(gpu_start)

        def query(slot: _Slot) -> None:
            ev = slot.events
            if transfers:
                ev["INPUT_S"].record(in_stream)
                for n in self.input_names:
                    cuda.memcpy_htod_async(self.buffers[n].device, in_views[n], in_stream)
                ev["INPUT_E"].record(in_stream)
                compute.wait_for_event(ev["INPUT_E"])
            ev["COMPUTE_S"].record(compute)
            slot.enq_start_ns = clock()
            ok = launch()
            slot.enq_end_ns = clock()
            if ok is False:
                raise TrtbuildError(f"TensorRT's execute_async_v3 failed during timing{self._trt_errors()}.")
            ev["COMPUTE_E"].record(compute)
            if transfers:
                out_stream.wait_for_event(ev["COMPUTE_E"])
                ev["OUTPUT_S"].record(out_stream)
                for n in self.output_names:
                    cuda.memcpy_dtoh_async(out_views[n], self.buffers[n].device, out_stream)
                ev["OUTPUT_E"].record(out_stream)
            slot.active = True

        def sync(slot: _Slot) -> float:
            if not slot.active:
                return 0.0
            ev = slot.events
            (ev["OUTPUT_E"] if transfers else ev["COMPUTE_E"]).synchronize()
            c_s, c_e = gpu_start.time_till(ev["COMPUTE_S"]), gpu_start.time_till(ev["COMPUTE_E"])
            if transfers:
                h_s, h_e = gpu_start.time_till(ev["INPUT_S"]), gpu_start.time_till(ev["INPUT_E"])
                d_s, d_e = gpu_start.time_till(ev["OUTPUT_S"]), gpu_start.time_till(ev["OUTPUT_E"])
            else:  # trtexec: without transfers the H2D stamps are COMPUTE_S and the D2H stamps COMPUTE_E
                h_s = h_e = c_s
                d_s = d_e = c_e
            rows.append(((slot.enq_start_ns - cpu_start) / 1e6, (slot.enq_end_ns - cpu_start) / 1e6,
                         h_s, h_e, c_s, c_e, d_s, d_e))  # fmt: skip
            slot.active = False
            return float(c_s)

        max_duration = options.duration_s * 1000.0 + options.warm_up_ms
        duration = 0.0
        skip = 0
        i = 0
        nxt = 0
        next_report = 50.0
        try:
            while i < options.iterations + skip or duration < max_duration:
                query(slots[nxt])
                nxt = 1 - nxt
                duration = max(duration, sync(slots[nxt]))
                i += 1
                if duration < options.warm_up_ms:
                    if duration:
                        skip += 1
                    continue
                if on_iteration is not None and duration >= next_report:
                    on_iteration(duration)
                    next_report = duration + 50.0
                if options.idle_time_ms:
                    time.sleep(options.idle_time_ms / 1000.0)
            for _ in range(2):  # drain: the in-flight queries are traced too
                sync(slots[nxt])
                nxt = 1 - nxt
        finally:
            compute.synchronize()
            if graph is not None:
                graph.close()
        traces = Traces.from_rows(CLOCK_CUDA, rows)
        if options.cuda_graph:
            graph_state = "graph" if graph is not None else "no-graph"
        else:
            graph_state = "off"
        mode = TimingMode(CLOCK_CUDA, graph_state, options.transfers, options.spin_wait, options.defaults,
                          note=graph_note if graph is None else "", device=self.device_name())  # fmt: skip
        return traces, mode


# --------------------------------------------------------------------------------------------------
# CUDA graphs


class _Graph:
    """A captured ``execute_async_v3``: ``launch()`` replays it on the capture stream."""

    def __init__(self, launch: Callable[[], Any], close: Callable[[], None]) -> None:
        self._launch = launch
        self._close = close

    def launch(self) -> bool:
        self._launch()
        return True

    def close(self) -> None:
        try:
            self._close()
        except Exception:  # freeing a graph must never hide a timing result or error
            pass


def _capture_graph(cuda: ModuleType, context: Any, stream: Any) -> tuple[_Graph | None, str]:
    """trtexec's capture: one plain enqueue (synchronized), then capture a second one. (graph, why-not).

    Through cuda-python's runtime bindings: no released PyCUDA binds stream capture (src/wrapper/
    wrap_cudadrv.cpp has no cuStreamBeginCapture up to 2026.1), and PyCUDA streams are plain CUstream
    handles cuda-python accepts.
    """
    if not context.execute_async_v3(stream.handle):
        return None, "the warm-up enqueue before capture failed"
    stream.synchronize()
    return _capture_cuda_python(context, stream)


def _import_cudart() -> Any:
    import importlib

    for module in ("cuda.bindings.runtime", "cuda.cudart"):  # cuda-python 12.6+ / older releases
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    return None


def _capture_cuda_python(context: Any, stream: Any) -> tuple[_Graph | None, str]:
    cudart = _import_cudart()
    if cudart is None:
        return None, "cuda-python is not installed (pip install cuda-python); PyCUDA cannot capture CUDA graphs"
    handle = stream.handle

    def code(result: Any) -> int:
        return int(result[0] if isinstance(result, tuple) else result)

    def check(result: Any, what: str) -> Any:
        if code(result) != 0:
            raise RuntimeError(f"{what} returned {result[0] if isinstance(result, tuple) else result}")
        return result[1] if isinstance(result, tuple) and len(result) > 1 else None

    try:
        check(cudart.cudaStreamBeginCapture(handle, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
              "cudaStreamBeginCapture")  # fmt: skip
    except Exception as exc:
        log.warning("CUDA graph capture could not start (%s); timing plain execute_async_v3.", exc)
        return None, f"capture could not start: {exc}"
    try:
        ok = bool(context.execute_async_v3(handle))
    except Exception:
        ok = False
    if not ok:
        # sampleInference.cpp (10.13, createEnqueueFunction): "the enqueue call may return false if the current CUDA
        # graph capture fails" -> TrtCudaGraph::endCaptureOnError ends the capture, destroys any graph it returns,
        # clears the error and runs without a graph.
        ended = cudart.cudaStreamEndCapture(handle)
        graph = ended[1] if isinstance(ended, tuple) and len(ended) > 1 else None
        if code(ended) == 0 and graph is not None:
            cudart.cudaGraphDestroy(graph)
        cudart.cudaGetLastError()
        log.warning("The engine cannot run under CUDA graph capture (execute_async_v3 failed while capturing); "
                    "timing plain execute_async_v3, as trtexec does.")  # fmt: skip
        return None, "execute_async_v3 failed under stream capture; timed without a CUDA graph (as trtexec)"
    try:
        graph = check(cudart.cudaStreamEndCapture(handle), "cudaStreamEndCapture")
        try:
            exe = check(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        finally:
            cudart.cudaGraphDestroy(graph)  # the executable graph keeps what it needs (sampleDevice.h endCapture)
    except Exception as exc:
        cudart.cudaGetLastError()
        log.warning("CUDA graph capture failed (%s); timing plain execute_async_v3 (trtexec does the same).", exc)
        return None, f"capture failed: {exc}"

    def close() -> None:
        cudart.cudaGraphExecDestroy(exe)

    return _Graph(lambda: check(cudart.cudaGraphLaunch(exe, handle), "cudaGraphLaunch"), close), ""


# --------------------------------------------------------------------------------------------------


def _dims(value: Any) -> Dims:
    return tuple(int(d) for d in value)


def _nbytes(shape: Sequence[int], dtype: Any) -> int:
    return int(math.prod(int(d) for d in shape)) * int(dtype.itemsize)
