"""The console summary, shaped like trtexec's "Performance summary" (sampleReporting.cpp's printPerformanceReport).

Lines carry trtexec's ``[I]``/``[W]`` tags (without its timestamps); numbers use C++ ostream's default
format (6 significant digits). CPU backends are timed with the host clock, so their lines say
"Total Host Compute Time", never "GPU Compute Time", and the enqueue/H2D/compute/D2H lines (a host
clock cannot split them) are left out: their Latency line is the time of ``infer``.
"""

from __future__ import annotations

from trtbuild.bench.stats import MetricStats, format_number, format_percentile
from trtbuild.bench.timing import Summary


def metric_line(label: str, stats: MetricStats, percentiles: tuple[float, ...]) -> str:
    """``Latency: min = a ms, max = b ms, mean = c ms, median = d ms, percentile(90%) = e ms, ...``"""
    parts = [
        f"min = {format_number(stats.min)} ms",
        f"max = {format_number(stats.max)} ms",
        f"mean = {format_number(stats.mean)} ms",
        f"median = {format_number(stats.median)} ms",
    ]
    parts += [f"percentile({format_percentile(p)}%) = {format_number(stats.percentiles[p])} ms" for p in percentiles]
    return f"{label}: " + ", ".join(parts)


def summary_lines(summary: Summary, *, title: str = "") -> list[str]:
    """The summary block as ``[I]``/``[W]``-tagged lines."""
    s = summary
    info: list[str] = []
    if title:
        info.append(f"=== {title} ===")
    info.append(f"Timing mode: {s.mode.label()}")
    info.append(f"Warmup completed {s.warmup_queries} queries over {format_number(s.warm_up_ms)} ms")
    info.append(f"Timing trace has {s.queries} queries over {format_number(s.walltime_s)} s")
    info.append("")
    info.append("=== Performance summary ===")
    info.append(f"Throughput: {format_number(s.throughput_qps)} qps")
    if s.batch != 1:
        info.append(f"Throughput (samples): {format_number(s.throughput_samples)} samples/s at batch {s.batch}")
    pct = s.percentiles
    info.append(metric_line("Latency", s.latency, pct))
    if s.mode.is_gpu:
        info.append(metric_line("Enqueue Time", s.enqueue, pct))
        info.append(metric_line("H2D Latency", s.h2d, pct))
        info.append(metric_line("GPU Compute Time", s.compute, pct))
        info.append(metric_line("D2H Latency", s.d2h, pct))
        info.append(f"Total Host Walltime: {format_number(s.walltime_s)} s")
        info.append(f"Total GPU Compute Time: {format_number(s.total_compute_s)} s")
    else:  # CPU backends: Latency is the host-clock time of infer (no enqueue/transfer split exists)
        info.append(f"Total Host Walltime: {format_number(s.walltime_s)} s")
        info.append(f"Total Host Compute Time: {format_number(s.total_compute_s)} s")
    lines = [f"[I] {line}".rstrip() for line in info]
    lines += [f"[W] {line}" for line in s.warnings]
    lines.append("[I] Explanations of the performance metrics are in docs/bench.md (trtexec prints them with --verbose).")
    return lines


def summary_text(summary: Summary, *, title: str = "") -> str:
    return "\n".join(summary_lines(summary, title=title))
