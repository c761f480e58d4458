"""Every statistic trtbuild prints equals trtexec's float arithmetic, on 3000 random GPU-style traces.

The reference below re-states sampleReporting.cpp (``printPerformanceReport``, ``printEpilog``,
``getPerformanceResult``, ``findMedian``, ``findPercentile``, ``findCoeffOfVariance``, TensorRT 10.13)
one C++ expression at a time with NumPy float32 scalars, independently of trtbuild.bench.stats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from trtbuild.bench.report import summary_text
from trtbuild.bench.stats import format_number
from trtbuild.bench.timing import CLOCK_CUDA, TimingMode, Traces, summarize

F = np.float32
TRACES = 3000
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def _performance_result(timings: list[tuple[Any, ...]], getter: Callable[[tuple[Any, ...]], Any]) -> dict[str, Any]:
    ordered = sorted(timings, key=getter)  # std::sort by the metric: ties are equal values, order is moot
    n = len(ordered)
    acc = F(0.0)
    for t in ordered:  # std::accumulate(..., 0.0F, acc + metric)
        acc = F(acc + getter(t))
    mean = F(acc / F(n))  # float / size_t -> float
    m = n // 2
    median = getter(ordered[m]) if n % 2 else F((getter(ordered[m - 1]) + getter(ordered[m])) / F(2))
    percentiles = {}
    for p in PERCENTILES:
        exclude = int((F(1) - F(p) / F(100)) * F(n))  # static_cast<int32_t> truncates
        percentiles[p] = getter(ordered[max(n - 1 - exclude, 0)])
    var_acc = F(0.0)
    for t in ordered:
        diff = F(getter(t) - mean)
        var_acc = F(var_acc + F(diff * diff))
    variance = F(var_acc / F(n))
    cov = F(F(np.sqrt(variance)) / mean * F(100)) if mean != 0 else F(np.inf)
    return {"min": getter(ordered[0]), "max": getter(ordered[-1]), "mean": mean, "median": median,
            "percentiles": percentiles, "cov": cov}  # fmt: skip


def _trtexec(rows: np.ndarray, warm_up_ms: float, batch: int) -> dict[str, Any]:
    """printPerformanceReport on rows sorted by H2D start (the order trtexec's trace is in)."""
    trace = [tuple(F(v) for v in row) for row in rows]  # InferenceTrace holds floats
    warmup = F(warm_up_ms)
    first = next(i for i, t in enumerate(trace) if t[4] >= warmup)  # computeStart >= warmupMs
    bench_time = F(trace[-1][7] - trace[first][2])  # d2hEnd - h2dStart
    timings = [(F(t[1] - t[0]), F(t[3] - t[2]), F(t[5] - t[4]), F(t[7] - t[6])) for t in trace[first:]]
    n = len(timings)
    out: dict[str, Any] = {
        "queries": n,
        "throughput": F(F(1 * n) / bench_time * F(1000)),  # batchSize (1: explicit batch) * size / walltime * 1000
        "samples": F(F(batch * n) / bench_time * F(1000)),  # the same expression with the batch
        "walltime_s": F(bench_time / F(1000)),
    }
    getters = {
        "latency": lambda t: F(F(t[1] + t[2]) + t[3]),  # h2d + compute + d2h
        "enqueue": lambda t: t[0], "h2d": lambda t: t[1], "compute": lambda t: t[2], "d2h": lambda t: t[3],
    }  # fmt: skip
    for name, getter in getters.items():
        out[name] = _performance_result(timings, getter)
    out["total_compute_s"] = F(F(out["compute"]["mean"] * F(n)) / F(1000))
    return out


def _random_rows(rng: np.random.Generator) -> np.ndarray:
    """One run: queries back to back on CUDA-event stamps (float32 ms), with jitter, gaps and spikes."""
    n = int(rng.integers(2, 160))
    scale = float(rng.choice([0.05, 0.8, 3.0, 40.0]))
    compute = rng.gamma(4.0, scale / 4.0, n) * np.where(rng.random(n) < 0.03, 5.0, 1.0)
    h2d = rng.exponential(scale * 0.1, n) * (rng.random() < 0.7)
    d2h = rng.exponential(scale * 0.05, n) * (rng.random() < 0.7)
    gap = rng.exponential(scale * 0.02, n)
    start = float(rng.uniform(0.0, 2000.0))  # late starts: large stamps lose low bits in float32
    rows = []
    t = start
    for i in range(n):
        h_s, h_e = t, t + h2d[i]
        c_s, c_e = h_e, h_e + compute[i]
        d_s, d_e = c_e, c_e + d2h[i]
        enq = c_s - rng.uniform(0, scale * 0.3)
        rows.append((enq, enq + rng.exponential(scale * 0.05), h_s, h_e, c_s, c_e, d_s, d_e))
        t = d_e + gap[i]
    return np.asarray(rows, dtype=np.float32).astype(np.float64)  # stamps as CUDA events return them


def _as_f32(value: float) -> np.float32:
    return F(value)


def test_summaries_equal_trtexecs_float_arithmetic_on_random_traces() -> None:
    rng = np.random.default_rng(2026)
    mode = TimingMode(CLOCK_CUDA, "off", True, True, 11)
    checked = 0
    for _ in range(TRACES):
        rows = _random_rows(rng)
        batch = int(rng.choice([1, 2, 8, 32]))
        order = np.argsort(rows[:, 2], kind="stable")
        warm_up = float(rows[order[int(rng.integers(0, max(1, len(rows) // 4)))], 4])  # cut at a query's start
        want = _trtexec(rows[order], warm_up, batch)
        got = summarize(Traces.from_rows(CLOCK_CUDA, rows[::-1]), mode=mode, warm_up_ms=warm_up, batch=batch,
                        percentiles=PERCENTILES)  # fmt: skip
        assert got.queries == want["queries"]
        pairs = [
            ("throughput", got.throughput_qps, want["throughput"]),
            ("samples/s", got.throughput_samples, want["samples"]),
            ("walltime", got.walltime_s, want["walltime_s"]),
            ("total compute", got.total_compute_s, want["total_compute_s"]),
        ]
        for name, metric in (("latency", got.latency), ("enqueue", got.enqueue), ("h2d", got.h2d),
                             ("compute", got.compute), ("d2h", got.d2h)):  # fmt: skip
            ref = want[name]
            pairs += [(f"{name} min", metric.min, ref["min"]), (f"{name} max", metric.max, ref["max"]),
                      (f"{name} mean", metric.mean, ref["mean"]), (f"{name} median", metric.median, ref["median"]),
                      (f"{name} cov", metric.coeff_var, ref["cov"])]  # fmt: skip
            pairs += [(f"{name} p{p:g}", metric.percentile(p), ref["percentiles"][p]) for p in PERCENTILES]
        for name, value, expected in pairs:
            # bit for bit as float32, hence the same 6 printed digits
            assert _as_f32(value) == expected or (np.isnan(value) and np.isnan(expected)), (name, value, expected)
            assert format_number(value) == format_number(float(expected)), name
        checked += 1
    assert checked == TRACES


def test_printed_summary_uses_the_float_figures() -> None:
    rows = _random_rows(np.random.default_rng(7))
    mode = TimingMode(CLOCK_CUDA, "off", True, True, 11)
    s = summarize(Traces.from_rows(CLOCK_CUDA, rows), mode=mode, warm_up_ms=0.0, batch=4)
    want = _trtexec(rows[np.argsort(rows[:, 2], kind="stable")], 0.0, 4)
    text = summary_text(s)
    assert f"Throughput: {format_number(float(want['throughput']))} qps" in text
    assert f"Total Host Walltime: {format_number(float(want['walltime_s']))} s" in text
    assert f"Total GPU Compute Time: {format_number(float(want['total_compute_s']))} s" in text
    assert f"queries over {format_number(float(want['walltime_s']))} s" in text
