"""GPU acceptance, part 1: needs an NVIDIA GPU and CUDA, not TensorRT.

    python scripts/gpu_acceptance_cuda.py [--tolerance 0.15]

Checks trtbuild's trtexec-style timing loop (TrtRuntime.time_trtexec) on real CUDA work, each against a
plain CUDA-event measurement of the same work:

1. PyCUDA (built here with pip when the CUDA headers exist and it is missing);
2. the timing loop without graphs, then with a CUDA graph captured through cuda-python;
3. the capture fallback: an enqueue that fails under capture is timed without a graph (trtexec's rule);
4. pinned host buffers and the H2D/D2H stamps of --includeDataTransfers;
5. the PyTorch CUDA backend of `bench` (torch@cuda).

The "engine" is a stand-in execution context whose execute_async_v3 enqueues a device-to-device copy of
a large buffer on the stream it is given: real GPU work with a known cost, no TensorRT needed. Each
piece whose library is missing is skipped with one line. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time
from typing import Any

FAILURES: list[str] = []


def say(piece: str, text: str) -> None:
    print(f"[{piece}] {text}", flush=True)


def check(piece: str, ok: bool, text: str) -> None:
    say(piece, ("ok: " if ok else "FAIL: ") + text)
    if not ok:
        FAILURES.append(f"{piece}: {text}")


def cuda_headers() -> str | None:
    roots = [os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", ""), "/usr/local/cuda", *glob.glob("/usr/local/cuda-*")]
    for root in roots:
        if root and os.path.isfile(os.path.join(root, "include", "cuda.h")):
            return root
    return None


def import_pycuda() -> Any:
    try:
        import pycuda.driver as cuda

        return cuda
    except ImportError:
        pass
    root = cuda_headers()
    if root is None:
        say("pycuda", "skip: PyCUDA is not installed and no CUDA headers (cuda.h) were found to build it")
        return None
    say("pycuda", f"building PyCUDA against {root} (pip install pycuda)")
    env = {**os.environ, "CUDA_ROOT": root, "PATH": f"{root}/bin:{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pycuda"], env=env, check=False)
    if done.returncode != 0:
        check("pycuda", False, "pip install pycuda failed")
        return None
    import pycuda.driver as cuda

    return cuda


class CopyContext:
    """Stands in for IExecutionContext: execute_async_v3 copies ``nbytes`` device-to-device on the stream."""

    def __init__(self, cuda: Any, stream: Any, nbytes: int, fail_under_capture: bool = False) -> None:
        self.cuda, self.stream, self.nbytes = cuda, stream, nbytes
        self.src, self.dst = cuda.mem_alloc(nbytes), cuda.mem_alloc(nbytes)
        self.fail_under_capture = fail_under_capture
        self.shapes: dict[str, tuple[int, ...]] = {}

    def _capturing(self, handle: int) -> bool:
        import importlib

        try:
            cudart = importlib.import_module("cuda.bindings.runtime")
        except ImportError:
            cudart = importlib.import_module("cuda.cudart")
        err, status = cudart.cudaStreamIsCapturing(handle)
        return int(status) != 0

    def execute_async_v3(self, stream_handle: int) -> bool:
        assert stream_handle == self.stream.handle
        if self.fail_under_capture and self._capturing(stream_handle):
            return False  # as TensorRT does for an engine CUDA graphs cannot hold
        self.cuda.memcpy_dtod_async(self.dst, self.src, self.nbytes, self.stream)
        return True

    # the few calls prepare() makes for an engine with no I/O tensors
    def set_input_shape(self, name: str, shape: Any) -> bool:
        self.shapes[name] = tuple(shape)
        return True


def runtime_shell(cuda: Any, context_factory: Any) -> Any:
    """A TrtRuntime whose engine is the stand-in context (no I/O tensors, one profile)."""
    from trtbuild.trt.runtime import ProfileInfo, TrtRuntime

    rt = TrtRuntime(b"", name="cuda-copy")
    rt.cuda = cuda
    rt.stream = cuda.Stream()
    rt.context = context_factory(rt.stream)
    rt.profiles = [ProfileInfo(0)]
    rt.is_active = True
    return rt


def plain_copy_ms(cuda: Any, nbytes: int, repeats: int = 50) -> float:
    src, dst = cuda.mem_alloc(nbytes), cuda.mem_alloc(nbytes)
    stream = cuda.Stream()
    for _ in range(5):
        cuda.memcpy_dtod_async(dst, src, nbytes, stream)
    start, end = cuda.Event(), cuda.Event()
    start.record(stream)
    for _ in range(repeats):
        cuda.memcpy_dtod_async(dst, src, nbytes, stream)
    end.record(stream)
    end.synchronize()
    return float(start.time_till(end)) / repeats


def have_cuda_python() -> bool:
    import importlib

    for module in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            importlib.import_module(module)
            return True
        except ImportError:
            continue
    return False


def timing_pieces(cuda: Any, tolerance: float, nbytes: int = 256 << 20) -> None:
    from trtbuild.bench.timing import TimingOptions, summarize

    plain = plain_copy_ms(cuda, nbytes)
    say("timing", f"plain CUDA events: {plain:.3f} ms per {nbytes >> 20} MiB device copy")
    graphs = have_cuda_python()
    graph_modes = [False] + ([True] if graphs else [])
    if not graphs:
        say("graph", "skip: cuda-python is not installed (pip install cuda-python); graph capture untested")
    for graph in graph_modes:
        options = TimingOptions(warm_up_ms=50, iterations=50, duration_s=0.5, cuda_graph=graph)
        rt = runtime_shell(cuda, lambda s: CopyContext(cuda, s, nbytes))
        traces, mode = rt.time_trtexec({}, options)
        median = summarize(traces, mode=mode, warm_up_ms=options.warm_up_ms, batch=1).compute.median
        label = "graph" if graph else "no graph"
        check("timing", mode.cuda_graph == ("graph" if graph else "off"), f"{label}: mode {mode.cuda_graph} {mode.note}")
        check("timing", abs(median - plain) <= tolerance * plain,
              f"{label}: trtbuild median GPU compute {median:.3f} ms vs plain {plain:.3f} ms (ratio {median / plain:.3f})")  # fmt: skip
    if graphs:
        options = TimingOptions(warm_up_ms=50, iterations=50, duration_s=0.5, cuda_graph=True)
        rt = runtime_shell(cuda, lambda s: CopyContext(cuda, s, nbytes, fail_under_capture=True))
        traces, mode = rt.time_trtexec({}, options)
        median = summarize(traces, mode=mode, warm_up_ms=options.warm_up_ms, batch=1).compute.median
        check("fallback", mode.cuda_graph == "no-graph" and "capture" in mode.note, f"mode {mode.cuda_graph}: {mode.note}")
        check("fallback", abs(median - plain) <= tolerance * plain,
              f"fallback median {median:.3f} ms vs plain {plain:.3f} ms: the real work was timed, not an empty graph")  # fmt: skip


def pinned_piece(cuda: Any, tolerance: float) -> None:
    import numpy as np

    nbytes = 64 << 20
    pinned = cuda.pagelocked_empty(nbytes, np.uint8)
    pageable = np.empty(nbytes, np.uint8)
    check("pinned", isinstance(pinned.base, cuda.HostAllocation), "pagelocked_empty gives page-locked memory")
    dev = cuda.mem_alloc(nbytes)
    stream = cuda.Stream()

    def h2d_ms(host: Any) -> float:
        start, end = cuda.Event(), cuda.Event()
        start.record(stream)
        for _ in range(10):
            cuda.memcpy_htod_async(dev, host, stream)
        end.record(stream)
        end.synchronize()
        return float(start.time_till(end)) / 10

    fast, slow = h2d_ms(pinned), h2d_ms(pageable)
    say("pinned", f"H2D {nbytes >> 20} MiB: pinned {fast:.3f} ms ({nbytes / fast / 1e6:.1f} GB/s), pageable {slow:.3f} ms")
    check("pinned", fast <= slow * (1 + tolerance), "pinned copies are not slower than pageable ones")


def torch_piece(tolerance: float) -> None:
    try:
        import torch
    except ImportError:
        say("torch", "skip: PyTorch is not installed")
        return
    if not torch.cuda.is_available():
        say("torch", "skip: this PyTorch build has no CUDA (pip install a CUDA build of torch)")
        return
    from trtbuild import zoo
    from trtbuild.bench.run import bench
    from trtbuild.bench.timing import TimingOptions

    table = bench("zoo:yolo", "torch@cuda", shapes="images:1x3x640x640", out_dir=None, plots=False,
                  timing=TimingOptions(warm_up_ms=200, iterations=50, duration_s=1.0))  # fmt: skip
    median = float(table.rows[0]["latency_median_ms"])
    module = zoo.build_module("yolo").cuda().eval()
    x = torch.rand(1, 3, 640, 640, device="cuda")
    with torch.inference_mode():
        for _ in range(10):
            module(x)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(50):
            module(x)
        end.record()
        torch.cuda.synchronize()
    plain = start.elapsed_time(end) / 50
    say("torch", f"bench torch@cuda median {median:.3f} ms (host clock, with copies); plain CUDA events {plain:.3f} ms")
    check("torch", plain * (1 - tolerance) <= median <= plain * 3 + 1.0,
          "bench's host-clock latency brackets the event-timed forward (copies and sync add at most 3x + 1 ms)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tolerance", type=float, default=0.15, help="relative agreement required (default 0.15)")
    args = parser.parse_args()
    started = time.time()
    if subprocess.run(["nvidia-smi", "-L"], check=False, capture_output=True).returncode != 0:
        print("gpu-acceptance part 1: skip: no NVIDIA GPU (nvidia-smi -L failed)")
        return 0
    cuda = import_pycuda()
    if cuda is not None:
        cuda.init()
        context = cuda.Device(0).retain_primary_context()
        context.push()
        try:
            say("pycuda", f"{cuda.Device(0).name()}, PyCUDA {getattr(sys.modules.get('pycuda'), 'VERSION_TEXT', '?')}")
            timing_pieces(cuda, args.tolerance)
            pinned_piece(cuda, args.tolerance)
        finally:
            context.pop()
    else:
        say("timing", "skip: trtbuild's timing loop needs PyCUDA")
    torch_piece(args.tolerance)
    print(f"gpu-acceptance part 1: {len(FAILURES)} failure(s) in {time.time() - started:.0f} s")
    for failure in FAILURES:
        print("  " + failure)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
