"""The timing loop and the performance summary, as trtexec does them (sampleInference.cpp and sampleReporting.cpp; docs/bench.md).

A run yields :class:`Traces`: per query, the enqueue, H2D, compute and D2H start/end timestamps in ms.
GPU runs (``TrtRuntime.time_trtexec``) take them from CUDA events (enqueue from the host clock around
``execute_async_v3`` only). CPU backends have no events: a host clock (``time.perf_counter_ns``) around
``runner.infer`` gives compute start/end, and H2D = D2H = 0. :func:`summarize` then applies trtexec's rules:
warm-up cut by ``computeStart >= warmUp``, walltime from the first measured start to the last end,
throughput in queries/s, float32 statistics and the enqueue-, transfer- and stability warnings.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.bench import stats as reporting  # trtexec float expressions (summarize has a local "stats")
from trtbuild.bench.stats import (
    DEFAULT_PERCENTILES,
    ENQUEUE_BOUND_FACTOR,
    UNSTABLE_COV_PERCENT,
    MetricStats,
    format_number,
    metric_stats,
)
from trtbuild.errors import SpecError

if TYPE_CHECKING:
    import numpy as np

CLOCK_CUDA = "cuda-events"
CLOCK_HOST = "host"


# --------------------------------------------------------------------------------------------------
# Options and mode


@dataclass(frozen=True)
class TimingOptions:
    """How long and how to time: trtexec's ``--warmUp``, ``--iterations``, ``--duration`` and mode flags.

    The defaults are trtexec 11's (§5): warm-up 200 ms, at least 10 iterations **and** at least 3 s,
    CUDA graph on, no per-iteration transfers, spin-wait. ``defaults=10`` starts from trtexec 10's
    instead (no graph, transfers on, blocking sync), whose tables are not comparable with 11's.
    """

    warm_up_ms: float = 200.0
    iterations: int = 10
    duration_s: float = 3.0
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
    cuda_graph: bool = True
    transfers: bool = False
    spin_wait: bool = True
    defaults: int = 11
    idle_time_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise SpecError(f"--iterations must be at least 1, not {self.iterations}.")
        if self.duration_s < 0 or not math.isfinite(self.duration_s):
            raise SpecError(f"--duration must be a non-negative number of seconds, not {self.duration_s} "
                            "(trtbuild does not run forever; trtexec's --duration=-1 is not supported).")  # fmt: skip
        if self.warm_up_ms < 0:
            raise SpecError(f"--warmUp must be a non-negative number of milliseconds, not {self.warm_up_ms}.")
        if self.defaults not in (10, 11):
            raise SpecError(f"trtexec defaults must be 10 or 11, not {self.defaults}.")
        for p in self.percentiles:
            if not 0.0 <= p <= 100.0:
                raise SpecError(f"--percentile value {p} is outside [0, 100].")

    @classmethod
    def trtexec(cls, version: int = 11, **overrides: Any) -> TimingOptions:
        """trtexec ``version``'s defaults (10 or 11), then ``overrides``."""
        base = cls(defaults=version) if version == 11 else cls(cuda_graph=False, transfers=True, spin_wait=False,
                                                                defaults=version)  # fmt: skip
        return replace(base, **overrides)

    @classmethod
    def quick(cls, version: int = 11, **overrides: Any) -> TimingOptions:
        """CI-size runs: 50 ms warm-up, at least 10 iterations and 0.5 s (numbers are noisier)."""
        return cls.trtexec(version, **{"warm_up_ms": 50.0, "iterations": 10, "duration_s": 0.5, **overrides})

    @classmethod
    def from_spec(cls, spec: Any, version: int = 11) -> TimingOptions:
        """From a BuildSpec's inference/reporting options (trtexec flags); unset fields keep ``version``'s defaults."""
        from trtbuild.bench.stats import parse_percentiles

        inf, rep = spec.inference, spec.reporting
        overrides: dict[str, Any] = {}
        for attr, key, convert in (("warm_up", "warm_up_ms", float), ("iterations", "iterations", int),
                                   ("duration", "duration_s", float), ("idle_time", "idle_time_ms", float),
                                   ("cuda_graph", "cuda_graph", bool), ("data_transfers", "transfers", bool),
                                   ("spin_wait", "spin_wait", bool)):  # fmt: skip
            value = getattr(inf, attr, None)
            if value is not None:
                overrides[key] = convert(value)
        if getattr(rep, "percentile", None):
            overrides["percentiles"] = parse_percentiles(rep.percentile)
        return cls.trtexec(version, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return {
            "warm_up_ms": self.warm_up_ms,
            "iterations": self.iterations,
            "duration_s": self.duration_s,
            "percentiles": list(self.percentiles),
            "cuda_graph": self.cuda_graph,
            "transfers": self.transfers,
            "spin_wait": self.spin_wait,
            "defaults": self.defaults,
            "idle_time_ms": self.idle_time_ms,
        }


@dataclass(frozen=True)
class TimingMode:
    """How a run was actually timed (printed and stored: trtexec 10 and 11 tables are not comparable).

    ``cuda_graph`` is "graph" (replayed a captured CUDA graph), "no-graph" (asked for, but this PyCUDA
    or engine could not capture one), "off" (not asked for) or "n/a" (CPU backend).
    """

    clock: str
    cuda_graph: str = "n/a"
    transfers: bool | None = None
    spin_wait: bool | None = None
    defaults: int = 11
    note: str = ""
    device: str = ""

    @classmethod
    def host(cls, options: TimingOptions) -> TimingMode:
        return cls(CLOCK_HOST, "n/a", None, None, options.defaults)

    @property
    def is_gpu(self) -> bool:
        return self.clock == CLOCK_CUDA

    def label(self) -> str:
        """One line, e.g. ``cuda-events, graph, transfers out, spin-wait, trtexec 11 defaults``."""
        if not self.is_gpu:
            return f"host clock around infer (inputs and outputs in host memory), trtexec {self.defaults} loop"
        parts = [
            self.clock,
            self.cuda_graph + (f" ({self.note})" if self.note else ""),
            "transfers in" if self.transfers else "transfers out",
            "spin-wait" if self.spin_wait else "blocking-sync",
            f"trtexec {self.defaults} defaults",
        ]
        return ", ".join(parts) + (f", on {self.device}" if self.device else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.label(),
            "clock": self.clock,
            "cuda_graph": self.cuda_graph,
            "transfers": self.transfers,
            "spin_wait": self.spin_wait,
            "trtexec_defaults": self.defaults,
            "timing_device": self.device,
        }


# --------------------------------------------------------------------------------------------------
# Traces


_FIELDS = ("enq_start", "enq_end", "h2d_start", "h2d_end", "compute_start", "compute_end", "d2h_start", "d2h_end")


@dataclass
class Traces:
    """Per-query timestamps in ms, like trtexec's ``InferenceTrace``, in the order they were collected.

    With ``clock == "cuda-events"`` the H2D/compute/D2H stamps are ``cudaEventElapsedTime`` since the start
    event (float32, as CUDA returns them) and the enqueue stamps are host ms since the host start. With
    ``clock == "host"`` every stamp is host ms since the loop started.
    """

    clock: str
    enq_start: np.ndarray
    enq_end: np.ndarray
    h2d_start: np.ndarray
    h2d_end: np.ndarray
    compute_start: np.ndarray
    compute_end: np.ndarray
    d2h_start: np.ndarray
    d2h_end: np.ndarray

    @classmethod
    def from_rows(cls, clock: str, rows: Sequence[Sequence[float]]) -> Traces:
        """From rows of the 8 stamps in ``_FIELDS`` order."""
        import numpy as np

        table = np.asarray(rows, dtype=np.float64).reshape(-1, len(_FIELDS))
        return cls(clock, *(table[:, i].copy() for i in range(len(_FIELDS))))

    @classmethod
    def from_host(cls, starts_ms: Any, ends_ms: Any) -> Traces:
        """A CPU run: one host interval per query; enqueue = compute = the infer call, H2D = D2H = 0."""
        import numpy as np

        s = np.asarray(starts_ms, dtype=np.float64)
        e = np.asarray(ends_ms, dtype=np.float64)
        return cls(CLOCK_HOST, s, e.copy(), s.copy(), s.copy(), s.copy(), e.copy(), e.copy(), e.copy())

    def __len__(self) -> int:
        return int(self.compute_start.size)

    def take(self, index: Any) -> Traces:
        return Traces(self.clock, *(getattr(self, f)[index] for f in _FIELDS))

    def sorted_by_h2d_start(self) -> Traces:
        import numpy as np

        return self.take(np.argsort(self.h2d_start, kind="stable"))

    def durations(self) -> dict[str, np.ndarray]:
        """float32 enq/h2d/compute/d2h/latency per query (``traceToTiming``; latency = h2d + compute + d2h)."""
        import numpy as np

        def span(start: np.ndarray, end: np.ndarray) -> np.ndarray:
            if self.clock == CLOCK_CUDA:  # trtexec subtracts float stamps in float
                return end.astype(np.float32) - start.astype(np.float32)
            return (end - start).astype(np.float32)  # host stamps: subtract first, keep the ns resolution

        out = {
            "enq": span(self.enq_start, self.enq_end),
            "h2d": span(self.h2d_start, self.h2d_end),
            "compute": span(self.compute_start, self.compute_end),
            "d2h": span(self.d2h_start, self.d2h_end),
        }
        out["latency"] = out["h2d"] + out["compute"] + out["d2h"]
        return out


# --------------------------------------------------------------------------------------------------
# The host-clock loop (CPU backends)


def time_host(
    call: Callable[[], Any],
    options: TimingOptions,
    *,
    on_iteration: Callable[[float], None] | None = None,
) -> Traces:
    """Time ``call`` with trtexec's loop on the host clock.

    Loop (sampleInference.cpp ``inferenceLoop``): run while ``i < iterations + skip`` or the start of the
    latest query is before ``warmUp + duration``; a query that starts inside the warm-up adds to ``skip``,
    so at least ``iterations`` queries *and* at least ``duration`` seconds are measured after the warm-up.
    ``on_iteration`` gets the elapsed ms (for progress), at most every 50 ms.
    """
    import numpy as np

    clock = time.perf_counter_ns
    warm_ns = options.warm_up_ms * 1e6
    max_ns = options.duration_s * 1e9 + warm_ns
    idle_s = options.idle_time_ms / 1000.0
    starts: list[int] = []
    ends: list[int] = []
    skip = 0
    i = 0
    elapsed = 0.0
    next_report = 50e6
    origin = clock()
    while i < options.iterations + skip or elapsed < max_ns:
        begin = clock()
        call()
        end = clock()
        starts.append(begin)
        ends.append(end)
        elapsed = begin - origin
        i += 1
        if elapsed < warm_ns:
            if elapsed:
                skip += 1
            continue
        if on_iteration is not None and elapsed >= next_report:
            on_iteration(elapsed / 1e6)
            next_report = elapsed + 50e6
        if idle_s:
            time.sleep(idle_s)
    s = (np.asarray(starts, dtype=np.int64) - origin) / 1e6
    e = (np.asarray(ends, dtype=np.int64) - origin) / 1e6
    return Traces.from_host(s, e)


# --------------------------------------------------------------------------------------------------
# Summary


@dataclass
class Summary:
    """trtexec's "Performance summary" for one run, plus what trtbuild adds (batch, samples/s, mode)."""

    mode: TimingMode
    queries: int  # N measured queries (after the warm-up cut)
    warmup_queries: int  # W
    warm_up_ms: float
    batch: int
    walltime_ms: float
    throughput_qps: float
    latency: MetricStats
    enqueue: MetricStats
    h2d: MetricStats
    compute: MetricStats
    d2h: MetricStats
    percentiles: tuple[float, ...]
    warnings: list[str] = field(default_factory=list)
    inf_streams: int = 1

    @property
    def throughput_samples(self) -> float:
        """Samples per second: trtexec's throughput expression with the batch (its qps counts queries only)."""
        return reporting.throughput(self.queries, self.walltime_ms, self.batch)

    @property
    def total_compute_s(self) -> float:
        """trtexec's "Total GPU Compute Time": compute.mean * N / 1000 in float."""
        return reporting.total_compute_s(self.compute.mean, self.queries)

    @property
    def walltime_s(self) -> float:
        """trtexec's "Total Host Walltime": walltime / 1000 in float."""
        return reporting.walltime_s(self.walltime_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.to_dict(),
            "queries": self.queries,
            "warmup_queries": self.warmup_queries,
            "warm_up_ms": self.warm_up_ms,
            "batch": self.batch,
            "walltime_s": self.walltime_s,
            "throughput_qps": self.throughput_qps,
            "throughput_samples_per_s": self.throughput_samples,
            "total_compute_s": self.total_compute_s,
            "latency_ms": self.latency.to_dict(),
            "enqueue_ms": self.enqueue.to_dict(),
            "h2d_ms": self.h2d.to_dict(),
            "compute_ms": self.compute.to_dict(),
            "d2h_ms": self.d2h.to_dict(),
            "warnings": list(self.warnings),
        }


def warmup_cut(traces: Traces, warm_up_ms: float) -> int:
    """Index of the first query (sorted by H2D start) whose compute starts at or after ``warm_up_ms``."""
    import numpy as np

    hits = np.flatnonzero(traces.compute_start >= warm_up_ms)
    return int(hits[0]) if hits.size else len(traces)


def summarize(
    traces: Traces,
    *,
    mode: TimingMode,
    warm_up_ms: float,
    batch: int = 1,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    inf_streams: int = 1,
) -> Summary:
    """The performance summary of a run (sampleReporting.cpp ``printEpilog``)."""
    from trtbuild.errors import TrtbuildError

    ordered = traces.sorted_by_h2d_start()
    first = warmup_cut(ordered, warm_up_ms)
    measured = ordered.take(slice(first, None))
    n = len(measured)
    if n == 0:
        raise TrtbuildError(
            f"No query ran after the {warm_up_ms:g} ms warm-up ({len(traces)} warm-up queries); raise --iterations "
            "or --duration."
        )
    walltime_ms = reporting.walltime_ms(
        measured.h2d_start[0], measured.d2h_end[-1], float_stamps=measured.clock == CLOCK_CUDA
    )
    throughput = reporting.throughput(n, walltime_ms) if walltime_ms > 0 else math.inf
    d = measured.durations()
    stats = {name: metric_stats(values, percentiles) for name, values in d.items()}
    summary = Summary(
        mode=mode,
        queries=n,
        warmup_queries=first,
        warm_up_ms=warm_up_ms,
        batch=batch,
        walltime_ms=walltime_ms,
        throughput_qps=throughput,
        latency=stats["latency"],
        enqueue=stats["enq"],
        h2d=stats["h2d"],
        compute=stats["compute"],
        d2h=stats["d2h"],
        percentiles=tuple(float(p) for p in percentiles),
        inf_streams=inf_streams,
    )
    summary.warnings = performance_warnings(summary)
    return summary


def performance_warnings(s: Summary) -> list[str]:
    """trtexec's summary warnings (§7.1), with hints in the flags of the trtexec version whose defaults ran."""
    lines: list[str] = []
    v11 = s.mode.defaults >= 11
    if s.mode.is_gpu:
        if s.enqueue.median > ENQUEUE_BOUND_FACTOR * s.compute.median:
            lines.append("* Throughput may be bound by Enqueue Time rather than GPU Compute and the GPU may be "
                         "under-utilized.")  # fmt: skip
            lines.append("  If you are using --noCudaGraph, removing it may increase throughput." if v11 else
                         "  If not already in use, --useCudaGraph (utilize CUDA graphs where possible) may increase "
                         "the throughput.")  # fmt: skip
        transfer_hint = ("  Remove --includeDataTransfers to time the GPU compute alone." if v11 else
                         "  Add --noDataTransfers to time the GPU compute alone.")  # fmt: skip
        if s.h2d.median >= s.compute.median:
            lines.append("* Throughput may be bound by host-to-device transfers for the inputs rather than GPU "
                         "Compute and the GPU may be under-utilized.")  # fmt: skip
            lines.append(transfer_hint)
        if s.d2h.median >= s.compute.median:
            lines.append("* Throughput may be bound by device-to-host transfers for the outputs rather than GPU "
                         "Compute and the GPU may be under-utilized.")  # fmt: skip
            lines.append(transfer_hint)
        if s.compute.coeff_var > UNSTABLE_COV_PERCENT:
            lines.append(f"* GPU compute time is unstable, with coefficient of variance = "
                         f"{format_number(s.compute.coeff_var)}%.")  # fmt: skip
            lines.append("  If not already in use, locking GPU clock frequency may improve the stability." if v11
                         else "  If not already in use, locking GPU clock frequency or adding --useSpinWait may "
                         "improve the stability.")  # fmt: skip
        if s.inf_streams > 1:
            lines.append("* Multiple inference streams are used. Latencies may not be accurate since inferences may "
                         "run in   parallel. Please use \"Throughput\" as the performance metric instead.")  # fmt: skip
    elif s.compute.coeff_var > UNSTABLE_COV_PERCENT:
        lines.append(f"* Compute time (host clock) is unstable, with coefficient of variance = "
                     f"{format_number(s.compute.coeff_var)}%.")  # fmt: skip
        lines.append("  Other processes and CPU frequency scaling add noise: close other work, and set --threads N "
                     "(with taskset, N = the pinned cores: ONNX Runtime's default pool is sized for every core and "
                     "oversubscribes a pinned set).")  # fmt: skip
    return lines


# --------------------------------------------------------------------------------------------------
# --exportTimes


_EXPORT_KEYS = (
    ("startEnqMs", "enq_start"), ("endEnqMs", "enq_end"),
    ("startH2dMs", "h2d_start"), ("endH2dMs", "h2d_end"),
    ("startComputeMs", "compute_start"), ("endComputeMs", "compute_end"),
    ("startD2hMs", "d2h_start"), ("endD2hMs", "d2h_end"),
)  # fmt: skip


def export_times_text(traces: Traces, warm_up_ms: float) -> str:
    """trtexec's ``--exportTimes`` JSON (``exportJSONTrace``): measured queries sorted by H2D start, its exact
    keys, order and separators, numbers with 6 significant digits."""
    ordered = traces.sorted_by_h2d_start()
    first = warmup_cut(ordered, warm_up_ms)
    measured = ordered.take(slice(first, None))
    d = measured.durations()
    lines = ["["]
    sep = "  "
    for i in range(len(measured)):
        parts = [f'"{key}" : {format_number(float(getattr(measured, attr)[i]))}' for key, attr in _EXPORT_KEYS]
        parts += [
            f'"h2dMs" : {format_number(float(d["h2d"][i]))}',
            f'"computeMs" : {format_number(float(d["compute"][i]))}',
            f'"d2hMs" : {format_number(float(d["d2h"][i]))}',
            f'"latencyMs" : {format_number(float(d["latency"][i]))}',
        ]
        lines.append(f"{sep}{{ " + ", ".join(parts) + " }")
        sep = ", "
    lines.append("]")
    return "\n".join(lines) + "\n"


def write_export_times(path: str | Path, traces: Traces, warm_up_ms: float) -> Path:
    from trtbuild.fsutil import atomic_write_text

    text = export_times_text(traces, warm_up_ms)
    json.loads(text)  # the format is trtexec's, but it must stay valid JSON
    atomic_write_text(path, text)
    return Path(path)
