"""A CPU stand-in for cuda-python's CUDA runtime bindings (``cuda.bindings.runtime``, older ``cuda.cudart``)
and for the ``libcudart`` functions Polygraphy calls through ctypes (``polygraphy.cuda``).

Only what stream capture and Polygraphy need. cuda-python returns a tuple whose first item is a
``cudaError_t`` member, then the results (cuda/bindings/runtime.pyx); the ctypes stand-in returns the
bare error code and writes results through pointers, as the C functions do. Work enqueued on a stream
under capture is recorded, not run; ``cudaGraphLaunch`` replays it. An illegal call during capture
(a synchronize, or an enqueue TensorRT cannot capture) invalidates it: ``cudaStreamEndCapture`` then
returns ``cudaErrorStreamCaptureInvalidated`` and no graph (sampleDevice.h ``endCaptureOnError``).
"""

from __future__ import annotations

import enum
import itertools
import types
from typing import Any

from ._pycuda import DeviceMemory

SUCCESS = 0
ERROR_INVALID_VALUE = 1
ERROR_ILLEGAL_STATE = 401
ERROR_CAPTURE_INVALIDATED = 901


class cudaError_t(enum.IntEnum):  # noqa: N801 - cuda-python's names
    cudaSuccess = SUCCESS
    cudaErrorInvalidValue = ERROR_INVALID_VALUE
    cudaErrorIllegalState = ERROR_ILLEGAL_STATE
    cudaErrorStreamCaptureUnsupported = 900
    cudaErrorStreamCaptureInvalidated = ERROR_CAPTURE_INVALIDATED


class cudaStreamCaptureMode(enum.IntEnum):  # noqa: N801
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1
    cudaStreamCaptureModeRelaxed = 2


class cudaStreamCaptureStatus(enum.IntEnum):  # noqa: N801
    cudaStreamCaptureStatusNone = 0
    cudaStreamCaptureStatusActive = 1
    cudaStreamCaptureStatusInvalidated = 2


class Graph:
    def __init__(self, work: list[Any]) -> None:
        self.work = list(work)
        self.destroyed = False


class GraphExec:
    def __init__(self, graph: Graph) -> None:
        self.work = list(graph.work)
        self.destroyed = False
        self.launches = 0


class CaptureApi:
    """The capture and graph calls over one DeviceMemory; shared by the cuda-python and ctypes faces."""

    def __init__(self, mem: DeviceMemory) -> None:
        self.mem = mem
        self.graphs: dict[int, Graph] = {}
        self.execs: dict[int, GraphExec] = {}
        self._ids = itertools.count(0x6000)
        self.captures = 0  # captures begun (tests read it)

    def begin(self, stream: int, mode: int) -> int:
        if stream == 0 or stream in self.mem.capturing:  # the legacy default stream cannot be captured
            return ERROR_ILLEGAL_STATE
        self.mem.capturing[stream] = []
        self.captures += 1
        return SUCCESS

    def end(self, stream: int) -> tuple[int, int]:
        if stream not in self.mem.capturing:
            return ERROR_ILLEGAL_STATE, 0
        work = self.mem.capturing.pop(stream)
        if stream in self.mem.invalidated:
            self.mem.invalidated.discard(stream)
            return ERROR_CAPTURE_INVALIDATED, 0
        gid = next(self._ids)
        self.graphs[gid] = Graph(work)
        return SUCCESS, gid

    def status(self, stream: int) -> int:
        if stream in self.mem.invalidated:
            return int(cudaStreamCaptureStatus.cudaStreamCaptureStatusInvalidated)
        return int(stream in self.mem.capturing)

    def instantiate(self, graph: int) -> tuple[int, int]:
        g = self.graphs.get(int(graph))
        if g is None or g.destroyed:
            return ERROR_INVALID_VALUE, 0
        eid = next(self._ids)
        self.execs[eid] = GraphExec(g)
        return SUCCESS, eid

    def launch(self, exe: int, stream: int) -> int:
        e = self.execs.get(int(exe))
        if e is None or e.destroyed:
            return ERROR_INVALID_VALUE
        e.launches += 1
        for work in e.work:
            self.mem.on_stream(stream, work)
        return SUCCESS

    def destroy_graph(self, graph: int) -> int:
        g = self.graphs.get(int(graph))
        if g is None or g.destroyed:
            return ERROR_INVALID_VALUE
        g.destroyed = True
        return SUCCESS

    def destroy_exec(self, exe: int) -> int:
        e = self.execs.get(int(exe))
        if e is None or e.destroyed:
            return ERROR_INVALID_VALUE
        e.destroyed = True
        return SUCCESS


def _handle(value: Any) -> int:
    """cuda-python accepts a cudaStream_t, a CUstream or a plain int for a stream (runtime.pyx)."""
    return int(getattr(value, "handle", value) or 0)


def build_cuda_python(api: CaptureApi) -> dict[str, types.ModuleType]:
    """``cuda``, ``cuda.bindings``, ``cuda.bindings.runtime`` and the older alias ``cuda.cudart``."""
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.__doc__ = "Emulated cuda-python runtime bindings (tests/trt_emulator): graphs replay on the CPU."

    def err(code: int) -> cudaError_t:
        return cudaError_t(code)

    def cudaStreamBeginCapture(stream: Any, mode: Any) -> tuple[cudaError_t]:  # noqa: N802
        return (err(api.begin(_handle(stream), int(mode))),)

    def cudaStreamEndCapture(stream: Any) -> tuple[cudaError_t, Any]:  # noqa: N802
        code, graph = api.end(_handle(stream))
        return err(code), (graph or None)

    def cudaStreamIsCapturing(stream: Any) -> tuple[cudaError_t, cudaStreamCaptureStatus]:  # noqa: N802
        return err(SUCCESS), cudaStreamCaptureStatus(api.status(_handle(stream)))

    def cudaGraphInstantiate(graph: Any, flags: int = 0) -> tuple[cudaError_t, Any]:  # noqa: N802
        code, exe = api.instantiate(int(graph or 0))
        return err(code), (exe or None)

    def cudaGraphLaunch(graphExec: Any, stream: Any) -> tuple[cudaError_t]:  # noqa: N802,N803
        return (err(api.launch(int(graphExec or 0), _handle(stream))),)

    def cudaGraphDestroy(graph: Any) -> tuple[cudaError_t]:  # noqa: N802
        return (err(api.destroy_graph(int(graph or 0))),)

    def cudaGraphExecDestroy(graphExec: Any) -> tuple[cudaError_t]:  # noqa: N802,N803
        return (err(api.destroy_exec(int(graphExec or 0))),)

    def cudaGetLastError() -> tuple[cudaError_t]:  # noqa: N802
        return (err(SUCCESS),)

    for obj in (cudaStreamBeginCapture, cudaStreamEndCapture, cudaStreamIsCapturing, cudaGraphInstantiate,
                cudaGraphLaunch, cudaGraphDestroy, cudaGraphExecDestroy, cudaGetLastError, cudaError_t,
                cudaStreamCaptureMode, cudaStreamCaptureStatus):  # fmt: skip
        setattr(rt, obj.__name__, obj)
    rt.EMULATOR_CAPTURE = api  # type: ignore[attr-defined]
    cuda = types.ModuleType("cuda")
    cuda.__path__ = []  # type: ignore[attr-defined]
    bindings = types.ModuleType("cuda.bindings")
    bindings.__path__ = []  # type: ignore[attr-defined]
    bindings.runtime = rt  # type: ignore[attr-defined]
    cudart = types.ModuleType("cuda.cudart")
    cudart.__dict__.update({k: v for k, v in rt.__dict__.items() if not k.startswith("__")})
    cuda.bindings = bindings  # type: ignore[attr-defined]
    cuda.cudart = cudart  # type: ignore[attr-defined]
    return {"cuda": cuda, "cuda.bindings": bindings, "cuda.bindings.runtime": rt, "cuda.cudart": cudart}



class CtypesCudart:
    """The ``libcudart`` functions Polygraphy's ``polygraphy.cuda.Cuda`` wrapper calls through ctypes.

    Same calling convention as the C API: ctypes arguments in, a ``cudaError_t`` code out, results written
    through ``byref`` pointers. Host pointers are real process addresses (numpy buffers); device pointers
    are the double's. Without a current context the CUDA runtime uses device 0's primary context.
    """

    def __init__(self, mem: DeviceMemory) -> None:
        self.mem = mem
        self._streams = itertools.count(0x7000)
        self.live_streams: set[int] = set()

    @staticmethod
    def _int(value: Any) -> int:
        value = getattr(value, "value", value)
        return int(value or 0)

    @staticmethod
    def _out(ref: Any, value: int) -> None:
        ref._obj.value = value  # ctypes.byref(c_void_p) -> CArgObject wrapping the c_void_p

    def _device(self) -> int:
        current = self.mem.current_device()
        return 0 if current is None else current

    def cudaStreamCreate(self, pstream: Any) -> int:  # noqa: N802
        handle = next(self._streams)
        self.live_streams.add(handle)
        self._out(pstream, handle)
        return SUCCESS

    def cudaStreamDestroy(self, stream: Any) -> int:  # noqa: N802
        handle = self._int(stream)
        if handle not in self.live_streams:
            return ERROR_INVALID_VALUE
        self.live_streams.discard(handle)
        return SUCCESS

    def cudaStreamSynchronize(self, stream: Any) -> int:  # noqa: N802
        handle = self._int(stream)
        if handle in self.mem.capturing:
            self.mem.invalidated.add(handle)
            return 900  # cudaErrorStreamCaptureUnsupported
        return SUCCESS

    def cudaMalloc(self, pptr: Any, nbytes: Any) -> int:  # noqa: N802
        self._out(pptr, self.mem.alloc(self._int(nbytes), device=self._device()))
        return SUCCESS

    def cudaFree(self, ptr: Any) -> int:  # noqa: N802
        addr = self._int(ptr)
        if addr == 0:
            return SUCCESS
        if addr not in self.mem.blocks:
            return ERROR_INVALID_VALUE
        self.mem.free(addr)
        return SUCCESS

    def _copy(self, dst: int, src: int, nbytes: int, kind: int) -> int:
        import ctypes

        try:
            if kind == 1:  # HostToDevice
                self.mem.view(dst, nbytes, "cudaMemcpy")[:] = ctypes.string_at(src, nbytes)
            elif kind == 2:  # DeviceToHost
                ctypes.memmove(dst, bytes(self.mem.view(src, nbytes, "cudaMemcpy")), nbytes)
            elif kind == 3:  # DeviceToDevice
                self.mem.view(dst, nbytes, "cudaMemcpy")[:] = bytes(self.mem.view(src, nbytes, "cudaMemcpy"))
            elif kind == 0:
                ctypes.memmove(dst, src, nbytes)
            else:  # cudaMemcpyDefault: infer from the pointers
                d_dev, s_dev = self.mem.device_at(dst) is not None, self.mem.device_at(src) is not None
                return self._copy(dst, src, nbytes, {(True, False): 1, (False, True): 2, (True, True): 3}.get((d_dev, s_dev), 0))
        except Exception:
            return ERROR_INVALID_VALUE
        return SUCCESS

    def cudaMemcpy(self, dst: Any, src: Any, nbytes: Any, kind: Any) -> int:  # noqa: N802
        return self._copy(self._int(dst), self._int(src), self._int(nbytes), self._int(kind))

    def cudaMemcpyAsync(self, dst: Any, src: Any, nbytes: Any, kind: Any, stream: Any) -> int:  # noqa: N802
        args = (self._int(dst), self._int(src), self._int(nbytes), self._int(kind))
        result = [SUCCESS]

        def work() -> None:
            result[0] = self._copy(*args)

        self.mem.on_stream(self._int(stream), work)
        return result[0]
