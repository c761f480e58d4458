"""A CPU stand-in for ``pycuda.driver``: device memory is a registry of address -> bytearray.

Copies are done at once (streams are always idle), events read the host clock. Out-of-range copies,
freed or unknown pointers raise ``pycuda.driver.LogicError`` the way a failing CUDA call does.

Like the CUDA driver, there is a per-thread *context stack* (PyCUDA's ``Context.push``/``Context.pop``,
src/wrapper/wrap_cudadrv.cpp) and one primary context per device; every allocation belongs to the device
of the context current when it was made, and allocating with no current context fails as
``cuMemAlloc`` does ("invalid device context"). ``pycuda.autoprimaryctx`` pushes device 0's primary
context when it is first imported (pycuda/autoprimaryctx.py), not before. A stream being captured
(cuda-python's ``cudaStreamBeginCapture``, see ``_cudart``) records its work instead of running it.
"""

from __future__ import annotations

import bisect
import importlib.abc
import importlib.machinery
import itertools
import sys
import time
import types
from typing import Any

import numpy as np

_BASE_ADDRESS = 0x7F00_0000_0000
_ALIGN = 512
TOTAL_MEMORY = 24 * 1024**3


class DeviceMemory:
    """All emulated device allocations (address -> bytearray, address -> device) and the CUDA state the
    fake tensorrt, pycuda and cuda-python share: devices, the context stack, streams under capture."""

    def __init__(self, devices: int = 1) -> None:
        self.blocks: dict[int, bytearray] = {}
        self.device_of: dict[int, int] = {}
        self._starts: list[int] = []
        self._next = _BASE_ADDRESS
        self.num_devices = devices
        self.context_stack: list[Any] = []  # PyCUDA Context objects, top last
        self.capturing: dict[int, list[Any]] = {}  # stream handle -> recorded work (callables)
        self.invalidated: set[int] = set()  # captures an illegal call invalidated
        self.dla_cores = 0

    def current_device(self) -> int | None:
        return self.context_stack[-1].device_ordinal if self.context_stack else None

    def alloc(self, nbytes: int, device: int | None = None) -> int:
        if nbytes < 0:
            raise ValueError("negative allocation size")
        if device is None:
            device = self.current_device()
        if device is None:  # cuda.hpp: CUDAPP_CALL_GUARDED(cuMemAlloc) with no current context
            raise LogicError("cuMemAlloc failed: invalid device context")
        addr = self._next
        self._next += max(_ALIGN, -(-nbytes // _ALIGN) * _ALIGN) + _ALIGN  # gap: neighbours never touch
        self.blocks[addr] = bytearray(nbytes)
        self.device_of[addr] = device
        bisect.insort(self._starts, addr)
        return addr

    def free(self, addr: int) -> None:
        if addr not in self.blocks:
            raise LogicError("cuMemFree failed: invalid argument")
        del self.blocks[addr]
        del self.device_of[addr]
        self._starts.remove(addr)

    def device_at(self, ptr: int) -> int | None:
        """The device owning the allocation that holds ``ptr`` (None: not device memory)."""
        i = bisect.bisect_right(self._starts, int(ptr)) - 1
        if i < 0:
            return None
        start = self._starts[i]
        return self.device_of[start] if int(ptr) - start <= len(self.blocks[start]) else None

    def size_at(self, ptr: int) -> int:
        """Bytes from ``ptr`` to the end of its allocation (0 when it is not device memory)."""
        i = bisect.bisect_right(self._starts, int(ptr)) - 1
        if i < 0:
            return 0
        start = self._starts[i]
        return max(len(self.blocks[start]) - (int(ptr) - start), 0)

    def on_stream(self, stream: Any, work: Any) -> None:
        """Run ``work`` now, or record it when ``stream`` is being captured into a CUDA graph."""
        handle = int(getattr(stream, "handle", stream) or 0)
        if handle in self.capturing:
            self.capturing[handle].append(work)
        else:
            work()

    def used(self) -> int:
        return sum(len(b) for b in self.blocks.values())

    def view(self, ptr: int, nbytes: int, what: str = "cuMemcpy") -> memoryview:
        """The ``nbytes`` of device memory at ``ptr`` (which may point inside an allocation)."""
        ptr = int(ptr)
        i = bisect.bisect_right(self._starts, ptr) - 1
        if i < 0:
            raise LogicError(f"{what} failed: invalid argument (0x{ptr:x} is not device memory)")
        start = self._starts[i]
        block = self.blocks[start]
        off = ptr - start
        if off + nbytes > len(block) or off > len(block):
            raise LogicError(
                f"{what} failed: invalid argument ({nbytes} bytes at 0x{ptr:x} run past the end of the "
                f"{len(block)}-byte allocation at 0x{start:x})"
            )
        return memoryview(block)[off : off + nbytes]


class Error(Exception):
    pass


class LogicError(Error):
    pass


class RuntimeError_(Error):
    pass


class MemoryError_(Error):
    pass


def _host_bytes(src: Any) -> memoryview:
    if isinstance(src, np.ndarray):
        if not src.flags.c_contiguous:
            raise TypeError("expected a contiguous host buffer")
        return memoryview(src).cast("B")  # type: ignore[arg-type]
    return memoryview(src).cast("B")


def build_driver(mem: DeviceMemory) -> types.ModuleType:
    """A fresh ``pycuda.driver`` module working on ``mem``."""
    drv = types.ModuleType("pycuda.driver")
    drv.__doc__ = "Emulated pycuda.driver (tests/trt_emulator): host memory, no GPU."
    handles = itertools.count(0x5000)

    class DeviceAllocation:
        def __init__(self, nbytes: int) -> None:
            self._ptr = mem.alloc(nbytes)
            self.size = nbytes
            self._freed = False

        def __int__(self) -> int:
            return self._ptr

        def __index__(self) -> int:
            return self._ptr

        def __repr__(self) -> str:
            return f"<DeviceAllocation 0x{self._ptr:x} {self.size} bytes>"

        def free(self) -> None:
            if not self._freed:
                mem.free(self._ptr)
                self._freed = True

        def __del__(self) -> None:  # pycuda frees allocations when they are garbage collected
            try:
                self.free()
            except Exception:
                pass

    class Stream:
        def __init__(self, flags: int = 0) -> None:
            if not mem.context_stack:  # cuStreamCreate needs a current context
                raise LogicError("cuStreamCreate failed: invalid device context")
            self.handle = next(handles)
            self.flags = flags

        def synchronize(self) -> None:
            if self.handle in mem.capturing:  # not permitted while capturing; it invalidates the capture
                mem.invalidated.add(self.handle)
                raise LogicError("cuStreamSynchronize failed: operation not permitted when stream is capturing")

        def is_done(self) -> bool:
            return True

        def wait_for_event(self, event: Any) -> None:
            return None

    class event_flags:  # noqa: N801 - pycuda's spelling
        DEFAULT = 0
        BLOCKING_SYNC = 1
        DISABLE_TIMING = 2
        INTERPROCESS = 4

    class Event:
        def __init__(self, flags: int = 0) -> None:
            self.flags = flags
            self.handle = next(handles)
            self._t: float | None = None

        def record(self, stream: Any = None) -> Event:
            self._t = time.perf_counter()
            return self

        def synchronize(self) -> Event:
            return self

        def query(self) -> bool:
            return True

        def _check(self, other: Event) -> tuple[float, float]:
            for ev in (self, other):
                if ev.flags & event_flags.DISABLE_TIMING:
                    raise LogicError("cuEventElapsedTime failed: invalid resource handle")
                if ev._t is None:
                    raise LogicError("cuEventElapsedTime failed: resource not ready (event never recorded)")
            return self._t, other._t  # type: ignore[return-value]

        def time_since(self, earlier: Event) -> float:
            mine, theirs = self._check(earlier)
            return (mine - theirs) * 1000.0

        def time_till(self, later: Event) -> float:
            mine, theirs = self._check(later)
            return (theirs - mine) * 1000.0

    class Context:
        """A CUDA context of one device; ``push``/``pop`` work on the shared context stack."""

        def __init__(self, ordinal: int) -> None:
            self.device_ordinal = ordinal

        def push(self) -> None:
            mem.context_stack.append(self)

        @staticmethod
        def pop() -> None:  # PyCUDA: a static method popping whatever context is current
            if not mem.context_stack:
                raise LogicError("cuCtxPopCurrent failed: invalid device context")
            mem.context_stack.pop()

        def detach(self) -> None:
            return None

        @staticmethod
        def synchronize() -> None:
            if not mem.context_stack:
                raise LogicError("cuCtxSynchronize failed: invalid device context")

        @staticmethod
        def get_device() -> Device:
            if not mem.context_stack:
                raise LogicError("cuCtxGetDevice failed: invalid device context")
            return Device(mem.context_stack[-1].device_ordinal)

        @staticmethod
        def get_current() -> Context | None:
            return mem.context_stack[-1] if mem.context_stack else None

    class Device:
        def __init__(self, ordinal: int = 0) -> None:
            if not 0 <= ordinal < mem.num_devices:
                raise LogicError("cuDeviceGet failed: invalid device ordinal")
            self.ordinal = ordinal

        @staticmethod
        def count() -> int:
            return mem.num_devices

        def name(self) -> str:
            suffix = f" {self.ordinal}" if mem.num_devices > 1 else ""
            return f"Emulated GPU{suffix} (tests/trt_emulator, CPU only)"

        def compute_capability(self) -> tuple[int, int]:
            return (8, 6)

        def total_memory(self) -> int:
            return TOTAL_MEMORY

        def pci_bus_id(self) -> str:
            return "0000:00:00.0"

        def get_attributes(self) -> dict[str, int]:
            return {}

        def make_context(self, flags: int = 0) -> Context:
            ctx = Context(self.ordinal)
            ctx.push()  # cuCtxCreate makes the new context current
            return ctx

        def retain_primary_context(self) -> Context:
            return _primaries[self.ordinal]

    _primaries = [Context(i) for i in range(mem.num_devices)]

    def mem_alloc(nbytes: int) -> DeviceAllocation:
        return DeviceAllocation(int(nbytes))

    def mem_get_info() -> tuple[int, int]:
        return TOTAL_MEMORY - mem.used(), TOTAL_MEMORY

    def pagelocked_empty(shape: Any, dtype: Any, order: str = "C", mem_flags: int = 0) -> np.ndarray:
        return np.empty(shape, dtype=dtype, order=order)  # type: ignore[call-overload,no-any-return]

    def pagelocked_zeros(shape: Any, dtype: Any, order: str = "C", mem_flags: int = 0) -> np.ndarray:
        return np.zeros(shape, dtype=dtype, order=order)  # type: ignore[call-overload,no-any-return]

    def memcpy_htod(dest: Any, src: Any) -> None:
        data = _host_bytes(src)
        mem.view(int(dest), data.nbytes, "cuMemcpyHtoD")[:] = data

    def memcpy_dtoh(dest: Any, src: Any) -> None:
        if isinstance(dest, np.ndarray) and not dest.flags.c_contiguous:
            raise TypeError("expected a contiguous host buffer")
        out = memoryview(dest).cast("B")
        if out.readonly:
            raise TypeError("memcpy_dtoh needs a writable host buffer")
        out[:] = mem.view(int(src), out.nbytes, "cuMemcpyDtoH")

    def memcpy_dtod(dest: Any, src: Any, size: int) -> None:
        data = bytes(mem.view(int(src), int(size), "cuMemcpyDtoD"))
        mem.view(int(dest), int(size), "cuMemcpyDtoD")[:] = data

    def memcpy_htod_async(dest: Any, src: Any, stream: Any = None) -> None:
        mem.on_stream(stream, lambda: memcpy_htod(dest, src))

    def memcpy_dtoh_async(dest: Any, src: Any, stream: Any = None) -> None:
        mem.on_stream(stream, lambda: memcpy_dtoh(dest, src))

    def memcpy_dtod_async(dest: Any, src: Any, size: int, stream: Any = None) -> None:
        mem.on_stream(stream, lambda: memcpy_dtod(dest, src, size))

    def memset_d8(dest: Any, data: int, size: int) -> None:
        mem.view(int(dest), int(size), "cuMemsetD8")[:] = bytes([data & 0xFF]) * int(size)

    def to_device(arr: Any) -> DeviceAllocation:
        data = _host_bytes(np.ascontiguousarray(arr))
        alloc = mem_alloc(data.nbytes)
        memcpy_htod(alloc, data)
        return alloc

    def from_device(ptr: Any, shape: Any, dtype: Any, order: str = "C") -> np.ndarray:
        out = np.empty(shape, dtype=dtype, order=order)  # type: ignore[call-overload]
        memcpy_dtoh(out, ptr)
        return out  # type: ignore[no-any-return]

    def init(flags: int = 0) -> None:
        return None

    def get_driver_version() -> int:
        return 12080

    def get_version() -> tuple[int, int, int]:
        return (12, 8, 0)

    for cls in (DeviceAllocation, Stream, Event, Context, Device):
        cls.__module__ = "pycuda._driver"  # where PyCUDA's compiled classes live
    for name, obj in dict(locals()).items():
        if not name.startswith("_") and name not in ("mem", "drv", "handles", "_primaries", "cls"):
            setattr(drv, name, obj)
    drv.Error = Error  # type: ignore[attr-defined]
    drv.LogicError = LogicError  # type: ignore[attr-defined]
    drv.RuntimeError = RuntimeError_  # type: ignore[attr-defined]
    drv.MemoryError = MemoryError_  # type: ignore[attr-defined]
    drv.EMULATOR_MEMORY = mem  # type: ignore[attr-defined]
    return drv


def _auto_context_module(drv: types.ModuleType, name: str, mem: DeviceMemory) -> types.ModuleType:
    """``pycuda.autoprimaryctx``/``pycuda.autoinit`` as executed on import: device 0's primary context
    (autoinit: a new context) is pushed and stays current (pycuda/autoprimaryctx.py)."""
    m = types.ModuleType(f"pycuda.{name}")
    device = drv.Device(0)  # type: ignore[attr-defined]
    context = device.retain_primary_context() if name == "autoprimaryctx" else drv.Context(0)  # type: ignore[attr-defined]
    context.push()
    m.device = device  # type: ignore[attr-defined]
    m.context = context  # type: ignore[attr-defined]
    return m


class _AutoContextFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Creates ``pycuda.autoprimaryctx``/``pycuda.autoinit`` when they are imported, as PyCUDA does."""

    def __init__(self, drv: types.ModuleType, mem: DeviceMemory, pkg: types.ModuleType) -> None:
        self.drv, self.mem, self.pkg = drv, mem, pkg

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname in ("pycuda.autoprimaryctx", "pycuda.autoinit") and sys.modules.get("pycuda") is self.pkg:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        return _auto_context_module(self.drv, spec.name.rsplit(".", 1)[1], self.mem)

    def exec_module(self, module: types.ModuleType) -> None:
        setattr(self.pkg, module.__name__.rsplit(".", 1)[1], module)


def build_modules(mem: DeviceMemory) -> tuple[dict[str, types.ModuleType], Any]:
    """``pycuda``, ``pycuda.driver`` over ``mem`` and the finder that makes ``pycuda.autoprimaryctx`` /
    ``pycuda.autoinit`` on import (to put in ``sys.meta_path``)."""
    drv = build_driver(mem)
    pkg = types.ModuleType("pycuda")
    pkg.__path__ = []  # a package, so ``import pycuda.driver`` works
    pkg.VERSION = (2025, 1)  # type: ignore[attr-defined]
    pkg.VERSION_TEXT = "2025.1"  # type: ignore[attr-defined]
    pkg.driver = drv  # type: ignore[attr-defined]
    return {"pycuda": pkg, "pycuda.driver": drv}, _AutoContextFinder(drv, mem, pkg)
