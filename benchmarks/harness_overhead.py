"""How much does trtbuild's timing harness add around ONNX Runtime?

Times the same ONNX Runtime session on the same inputs two ways, interleaved in one process:

- bare:    ``for _ in range(K): session.run(None, feed)`` between two ``perf_counter_ns`` calls;
- harness: ``trtbuild.bench.timing.time_host`` (trtexec's loop: two clock reads and two list appends per
  query, the warm-up/iteration/duration bookkeeping) around ``OrtRunner.infer`` (name lookup, dict
  building), with warm-up and duration 0 so both loops run exactly K queries.

Each repeat runs both blocks (the order alternates between repeats, so drift and cache effects hit both
sides alike) and records harness_time / bare_time. The printed ratio is the median over repeats; the
target is <= 1.03 on the demo detector (zoo yolo). These are CPU/host-clock figures, not TensorRT ones.

    python benchmarks/harness_overhead.py                    # zoo:yolo at 1x3x320x320
    python benchmarks/harness_overhead.py --repeats 30 --iterations 300 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zoo:yolo", help="ONNX file or zoo:NAME (default zoo:yolo)")
    parser.add_argument("--shapes", default=None, help="shape spec, e.g. images:1x3x320x320 (default: the zoo's)")
    parser.add_argument("--iterations", type=int, default=100, help="queries per block (default 100)")
    parser.add_argument("--repeats", type=int, default=41, help="interleaved bare/harness block pairs (default 41)")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime intra-op threads (default 1: steadier on a shared machine)")
    parser.add_argument("--target", type=float, default=1.03, help="ratio to report against (default 1.03)")
    args = parser.parse_args(argv)

    from trtbuild.backends.onnxrt import OrtRunner
    from trtbuild.bench.run import _make_feed, _Model, _normalize_shapes
    from trtbuild.bench.timing import TimingOptions, time_host
    from trtbuild.model.load import load_onnx, model_inputs

    model = args.model
    zoo_name = model[4:] if model.startswith("zoo:") else None
    info = _Model(model, model, None, zoo_name)
    info.inputs = model_inputs(load_onnx(model, load_weights=False))
    if args.shapes:
        shapes = _normalize_shapes(args.shapes, info.inputs)
    elif zoo_name:
        from trtbuild import zoo

        shapes = {n: tuple(s) for n, s in zoo.get(zoo_name).inputs.items()}
    else:
        parser.error("--shapes is needed for a non-zoo model")
    feed = _make_feed(info, shapes, seed=0)
    runner = OrtRunner(model, threads=args.threads)
    runner.activate()
    session = runner.session
    k = args.iterations
    options = TimingOptions(warm_up_ms=0.0, iterations=k, duration_s=0.0)

    def bare() -> float:
        start = time.perf_counter_ns()
        for _ in range(k):
            session.run(None, feed)
        return float(time.perf_counter_ns() - start)

    def harness() -> float:
        start = time.perf_counter_ns()
        traces = time_host(lambda: runner.infer(feed), options)
        elapsed = float(time.perf_counter_ns() - start)
        assert len(traces) == k
        return elapsed

    for _ in range(20):  # warm ONNX Runtime up (allocator arenas, caches) before anything is measured
        session.run(None, feed)
    ratios: list[float] = []
    bare_ns: list[float] = []
    harness_ns: list[float] = []
    for r in range(args.repeats):
        if r % 2 == 0:
            b, h = bare(), harness()
        else:
            h, b = harness(), bare()
        bare_ns.append(b)
        harness_ns.append(h)
        ratios.append(h / b)
    # The harness's own cost, free of ONNX Runtime noise: its loop and runner.infer's wrapping around a
    # session whose run() does nothing, against the same no-op called bare.
    outputs = [None] * len(runner.output_names())

    class _NoopSession:
        def run(self, names: object, feed: object) -> list[object]:
            return outputs

        def get_outputs(self) -> object:
            return session.get_outputs()

    runner.session = _NoopSession()
    noop = runner.session
    n = 20000
    start = time.perf_counter_ns()
    for _ in range(n):
        noop.run(None, feed)
    noop_bare = (time.perf_counter_ns() - start) / n
    start = time.perf_counter_ns()
    time_host(lambda: runner.infer(feed), TimingOptions(warm_up_ms=0.0, iterations=n, duration_s=0.0))
    noop_harness = (time.perf_counter_ns() - start) / n
    runner.session = session
    runner.deactivate()

    median_ratio = statistics.median(ratios)
    per_query_bare = statistics.median(bare_ns) / k / 1e6
    per_query_harness = statistics.median(harness_ns) / k / 1e6
    shape_text = ",".join(f"{n}:" + "x".join(map(str, s)) for n, s in shapes.items())
    print(f"model {model} {shape_text}; "
          f"{args.repeats} interleaved repeats x {k} queries; ORT intra-op threads {args.threads} (CPU, host clock)")
    print(f"bare session.run loop:   median {per_query_bare:.4f} ms/query")
    print(f"trtbuild harness loop:   median {per_query_harness:.4f} ms/query "
          f"(+{(per_query_harness - per_query_bare) * 1000:.2f} us/query)")
    print(f"ratio harness/bare: median {median_ratio:.4f} (min {min(ratios):.4f}, max {max(ratios):.4f}); "
          f"ratio of totals {sum(harness_ns) / sum(bare_ns):.4f}")
    print(f"harness bookkeeping alone (no-op model): {(noop_harness - noop_bare) / 1000:.2f} us/query "
          f"= {(noop_harness - noop_bare) / 1e6 / per_query_bare * 100:.2f}% of a bare query")
    verdict = "within" if median_ratio <= args.target else "ABOVE"
    print(f"overhead ratio {median_ratio:.4f}: {verdict} the {args.target:.2f} target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
