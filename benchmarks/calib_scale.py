"""Does INT8 calibration stay flat in memory and fast as the number of calibration samples grows?

Runs ``trtbuild quantize`` (ONNX Runtime quantizer) on a YOLOv8-style detector for every point of
samples x input size x calibration method, each point in its own child process, and reads that
child's peak resident memory (``ru_maxrss`` from ``wait4``) and wall time. Calibration images are
synthetic JPEGs (smooth blobs plus noise, 4 more held out for the accuracy report) letterboxed to
the size, one sample per batch. Then it times the entropy range search per tensor on the histograms
of the first 10 samples (the vectorised search that quantize uses, and the direct loop it replaced).

The model is the corpus's nudenet 320n (Ultralytics YOLOv8n, dynamic height and width, fetched by
tests/corpus/fetch.py into its cache) or, with --model zoo:yolo or a path, another detector with a
dynamic input size.

These are CPU figures (ONNX Runtime on this host), not TensorRT ones.

    python benchmarks/calib_scale.py                 # 10, 40, 160 samples at 320 and 640, every method
    python benchmarks/calib_scale.py --large         # also 640 samples (slow on 2 cores: ~5 min per point at 640)
    python benchmarks/calib_scale.py --samples 10,40 --sizes 320 --methods minmax,entropy
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "tests"))  # the corpus fetcher and the reference entropy loop
sys.path.insert(0, str(Path(__file__).resolve().parent))

EVAL_SAMPLES = 4
LARGE_SAMPLES = 640
#: Done-when targets of the issue this benchmark answers
RSS_TARGET = 1.5
ENTROPY_TIME_TARGET = 3.0


@dataclass
class Point:
    size: int
    samples: int
    method: str
    seconds: float = 0.0
    rss_mb: float = 0.0
    status: int = 0
    tail: str = ""


def corpus_yolo() -> Path:
    from corpus import fetch  # tests/corpus/fetch.py: pinned PyPI archive, checked by sha256

    return fetch.model_path(fetch.model("nudenet_320n_yolov8n"))


def resolve_model(name: str | None) -> Path:
    if name is None:
        return corpus_yolo()
    if name.startswith("zoo:"):
        from trtbuild import zoo

        return zoo.onnx_path(name[4:])
    return Path(name)


def input_name(model: Path) -> str:
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    inits = {t.name for t in graph.initializer}
    return next(v.name for v in graph.input if v.name not in inits)


def run_point(model: Path, images: Path, name: str, point: Point, out: Path, timeout: float) -> Point:
    """One ``trtbuild quantize`` in a fresh process; its own peak RSS from wait4 (not the parent's)."""
    cmd = [
        sys.executable, "-m", "trtbuild", "quantize", str(model),
        "--quantizer", "onnxruntime",
        "--calib-data", str(images),
        "--calib-shape", f"{name}:1x3x{point.size}x{point.size}",
        "--calib-samples", str(point.samples),
        "--calib-method", point.method,
        "--eval-samples", str(EVAL_SAMPLES),
        "--no-accuracy-check",
        "-o", str(out / f"q-{point.size}-{point.samples}-{point.method}.onnx"),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.05)
        child.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
        point.seconds = time.perf_counter() - started
        point.rss_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
        point.status = child.returncode
        if point.status:
            log.seek(0)
            point.tail = log.read().decode(errors="replace")[-600:]
    return point


def entropy_search_times(model: Path, images: Path, size: int, name: str, samples: int = 10) -> dict[str, float]:
    """ms per tensor of the entropy search over the histograms of ``samples`` calibration samples."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    from trtbuild.model.calib import CalibOptions, open_calibration
    from trtbuild.model.histogram import AbsHistogram
    from trtbuild.model.quantize import DEFAULT_OP_TYPES, ENTROPY_BINS, entropy_amax

    data = open_calibration(
        CalibOptions(data=str(images), shape=f"{name}:1x3x{size}x{size}", samples=samples, eval_samples=EVAL_SAMPLES),
        model,
    )
    assert data is not None
    with tempfile.TemporaryDirectory(prefix="trtbuild-bench-") as tmp:
        calibrator = create_calibrator(
            model,
            list(DEFAULT_OP_TYPES),
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"symmetric": True},
        )
        session = calibrator.infer_session
        wanted = set(calibrator.tensors_to_calibrate)
        names = [o.name for o in session.get_outputs()]
        histogram = AbsHistogram(bins=ENTROPY_BINS)
        for batch in data.batches("calib"):
            for out, value in zip(names, session.run(None, batch)):
                if out in wanted:
                    histogram.add(out, value)
        del calibrator, session
    tensors = list(histogram.counts)
    fast: list[float] = []
    for tensor in tensors:
        counts, edges = histogram.counts[tensor], histogram.edges(tensor)
        started = time.perf_counter()
        entropy_amax(counts, edges)
        fast.append(time.perf_counter() - started)
    result = {"tensors": float(len(tensors)), "fast_ms": 1000 * statistics.mean(fast)}
    try:
        from entropy_reference import entropy_loop
    except ImportError:  # benchmarks copied without tests/
        return result
    loop: list[float] = []
    for tensor in tensors[:: max(1, len(tensors) // 8)]:  # a sample of tensors: the loop takes ~0.1 s each
        counts, edges = histogram.counts[tensor], histogram.edges(tensor)
        started = time.perf_counter()
        entropy_loop(counts, edges)
        loop.append(time.perf_counter() - started)
    result["loop_ms"] = 1000 * statistics.mean(loop)
    result["loop_tensors"] = float(len(loop))
    return result


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="ONNX detector with a dynamic input size (default: corpus nudenet 320n)")
    parser.add_argument("--samples", default="10,40,160", help="calibration sample counts (default: 10,40,160)")
    parser.add_argument("--large", action="store_true", help=f"also {LARGE_SAMPLES} samples (slow)")
    parser.add_argument("--sizes", default="320,640", help="input sizes (default: 320,640)")
    parser.add_argument("--methods", default="minmax,entropy,auto", help="calibration methods (default: all three)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per point before it is killed")
    parser.add_argument("--images", help="folder of calibration images to reuse (default: written to a temp folder)")
    args = parser.parse_args(argv)
    samples = parse_ints(args.samples) + ([LARGE_SAMPLES] if args.large else [])
    sizes = parse_ints(args.sizes)
    methods = [m for m in args.methods.split(",") if m]

    import onnxruntime
    from quantize_time import write_images

    model = resolve_model(args.model)
    name = input_name(model)
    print(f"{model.name}: trtbuild quantize --quantizer onnxruntime, batch 1, one child process per point; "
          f"ONNX Runtime {onnxruntime.__version__} on the CPU ({os.cpu_count()} cores)", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="trtbuild-calib-scale-") as tmp_name:
        tmp = Path(tmp_name)
        images = Path(args.images) if args.images else tmp / "images"
        needed = max(samples) + EVAL_SAMPLES
        if not args.images:
            images.mkdir()
        have = len(list(images.glob("*.jpg")))
        if have < needed:
            write_images(images, needed)
        points: list[Point] = []
        print(f"{'size':>5} {'samples':>7} {'method':<8} {'wall s':>8} {'peak MB':>8}", flush=True)
        for size in sizes:
            for count in samples:
                for method in methods:
                    point = run_point(model, images, name, Point(size, count, method), tmp, args.timeout)
                    points.append(point)
                    note = f"  FAILED ({point.status}): {point.tail.strip().splitlines()[-1:]}" if point.status else ""
                    print(f"{size:>5} {count:>7} {method:<8} {point.seconds:>8.1f} {point.rss_mb:>8.0f}{note}", flush=True)
        searches = {size: entropy_search_times(model, images, size, name) for size in sizes}
    print_table(points, samples, sizes, methods, searches)
    return 0 if all(p.status == 0 for p in points) else 1


def print_table(
    points: list[Point], samples: list[int], sizes: list[int], methods: list[str], searches: dict[int, dict[str, float]]
) -> None:
    by = {(p.size, p.samples, p.method): p for p in points}
    first = min(samples)
    print()
    print(f"Ratios: RSS x = peak RSS / the {first}-sample run (same size, method); "
          "time x = wall time / min-max's (same size, samples).")  # fmt: skip
    print(f"{'size':>5} {'samples':>7} {'method':<8} {'wall s':>8} {'time x':>7} {'peak MB':>8} {'RSS x':>6}")
    for size in sizes:
        for count in samples:
            for method in methods:
                p = by[(size, count, method)]
                base = by.get((size, first, method))
                ref = by.get((size, count, "minmax"))
                rss_x = p.rss_mb / base.rss_mb if base and base.rss_mb else float("nan")
                time_x = p.seconds / ref.seconds if ref and ref.seconds else float("nan")
                print(f"{size:>5} {count:>7} {method:<8} {p.seconds:>8.1f} {time_x:>7.2f} {p.rss_mb:>8.0f} {rss_x:>6.2f}"
                      + ("  FAILED" if p.status else ""))  # fmt: skip
    print()
    print("Entropy range search per tensor (histograms of 10 samples, 2048 bins):")
    for size, found in searches.items():
        line = f"  {size}x{size}: {int(found['tensors'])} tensors, vectorised {found['fast_ms']:.1f} ms/tensor"
        if "loop_ms" in found:
            line += (f", direct loop {found['loop_ms']:.1f} ms/tensor (on {int(found['loop_tensors'])} of them), "
                     f"{found['loop_ms'] / found['fast_ms']:.0f}x faster")  # fmt: skip
        print(line)
    print()
    top, mid = max(samples), (160 if 160 in samples else max(samples))
    for size in sizes:
        for method in methods:
            hi, lo = by.get((size, top, method)), by.get((size, first, method))
            if hi and lo and top != first and lo.rss_mb:
                ratio = hi.rss_mb / lo.rss_mb
                verdict = "meets" if ratio <= RSS_TARGET else "MISSES"
                print(f"peak RSS {top} vs {first} samples at {size} ({method}): {ratio:.2f}x, {verdict} <= {RSS_TARGET}x")
        ent, mm = by.get((size, mid, "entropy")), by.get((size, mid, "minmax"))
        if ent and mm and mm.seconds:
            ratio = ent.seconds / mm.seconds
            verdict = "meets" if ratio <= ENTROPY_TIME_TARGET else "MISSES"
            print(f"entropy vs min-max quantize time, {mid} samples at {size}: {ratio:.2f}x, {verdict} <= {ENTROPY_TIME_TARGET}x")


if __name__ == "__main__":
    raise SystemExit(main())
