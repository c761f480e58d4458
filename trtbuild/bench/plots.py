"""PNG plots of a LatencyTable: per-query latency distributions, and batch size vs throughput and latency.

matplotlib is optional (``pip install matplotlib``); without it the functions return None and say so
once in the log. The Agg backend is used, so no display is needed. Each figure names its clock: CPU
backends are timed with the host clock and are never labelled as GPU figures.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trtbuild.bench.table import LatencyTable

log = logging.getLogger(__name__)

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        log.warning("matplotlib is not installed, so no plots were drawn (pip install matplotlib).")
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _clock_word(row: Mapping[str, Any]) -> str:
    return "GPU, CUDA events" if row.get("clock") == "cuda-events" else "CPU/host clock"


def _backend_colors(rows: list[dict[str, Any]]) -> dict[str, str]:
    names: list[str] = []
    for row in rows:
        if row["runner"] not in names:
            names.append(row["runner"])
    return {name: _COLORS[i % len(_COLORS)] for i, name in enumerate(names)}


def _save(fig: Any, path: Path) -> Path:
    from trtbuild.fsutil import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_latency_distribution(table: LatencyTable, path: str | Path, *, title: str = "") -> Path | None:
    """Violin + box plot of each row's measured per-query latencies (rows without samples are skipped)."""
    plt = _pyplot()
    rows = [r for r in table.rows if table.samples(str(r["run_id"])) is not None]
    if plt is None or not rows:
        return None
    colors = _backend_colors(rows)
    data = [table.samples(str(r["run_id"])) for r in rows]
    labels = [f"{r['runner']}\n{r['shape']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2.0), 5.0))
    positions = list(range(1, len(rows) + 1))
    violins = ax.violinplot(data, positions=positions, showextrema=False, widths=0.8)
    for body, row in zip(violins["bodies"], rows):
        body.set_facecolor(colors[row["runner"]])
        body.set_alpha(0.35)
    ax.boxplot(data, positions=positions, widths=0.25, showfliers=True, flierprops={"markersize": 2, "alpha": 0.4},
               medianprops={"color": "black"})  # fmt: skip
    ax.set_xticks(positions)
    ax.set_xticklabels(labels, fontsize=8)
    flat = [float(v) for d in data if d is not None for v in d]
    if flat and min(flat) > 0 and max(flat) / min(flat) > 30:
        ax.set_yscale("log")
    ax.set_ylabel("latency per query (ms)")
    ax.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.5) for c in colors.values()]
    clocks = {r["runner"]: _clock_word(r) for r in rows}
    ax.legend(handles, [f"{name} ({clocks[name]})" for name in colors], fontsize=8, loc="best")
    ax.set_title(title or f"Latency distribution: {rows[0]['model']}", fontsize=10)
    fig.tight_layout()
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def plot_batch_sweep(table: LatencyTable, path: str | Path, *, title: str = "") -> Path | None:
    """Batch size vs throughput (samples/s) and vs latency (median, shaded up to p99); one line per
    runner and base shape. Returns None when no series has two or more batch sizes."""
    plt = _pyplot()
    if plt is None:
        return None
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in table.rows:
        key = (str(row["runner"]), str(row.get("base_shape") or row["shape"]))
        series.setdefault(key, []).append(row)
    series = {k: sorted(v, key=lambda r: int(r["batch"])) for k, v in series.items() if len({r["batch"] for r in v}) > 1}
    if not series:
        return None
    colors = _backend_colors([r for rows in series.values() for r in rows])
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(11.0, 4.5))
    p99 = "latency_p99_ms" if "latency_p99_ms" in table.frame.columns else None
    styles = ("-", "--", ":", "-.")
    shapes: list[str] = []
    for (runner, shape), rows in series.items():
        if shape not in shapes:
            shapes.append(shape)
        style = styles[shapes.index(shape) % len(styles)]
        batches = [int(r["batch"]) for r in rows]
        label = f"{runner} {shape} ({_clock_word(rows[0])})"
        ax_t.plot(batches, [float(r["throughput_samples_s"]) for r in rows], style, marker="o",
                  color=colors[runner], label=label)  # fmt: skip
        ax_l.plot(batches, [float(r["latency_median_ms"]) for r in rows], style, marker="o", color=colors[runner],
                  label=label)  # fmt: skip
        if p99:
            ax_l.fill_between(batches, [float(r["latency_median_ms"]) for r in rows], [float(r[p99]) for r in rows],
                              color=colors[runner], alpha=0.15)  # fmt: skip
    for ax in (ax_t, ax_l):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    lat = [float(r[c]) for rows in series.values() for r in rows for c in ("latency_median_ms", p99 or "latency_max_ms")]
    if lat and min(lat) > 0 and max(lat) / min(lat) > 30:
        ax_l.set_yscale("log")
    ax_t.set_ylabel("throughput (samples/s)")
    ax_l.set_ylabel("latency per query (ms): median" + (", shaded to p99" if p99 else ""))
    ax_t.legend(fontsize=8)
    first = next(iter(series.values()))[0]
    fig.suptitle(title or f"Batch sweep: {first['model']}", fontsize=10)
    fig.tight_layout()
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def write_plots(table: LatencyTable, out_dir: str | Path, stem: str, *, title: str = "") -> dict[str, Path]:
    """Both plots beside the tables: ``<stem>-latency.png`` and (with a batch sweep) ``<stem>-batch.png``."""
    folder = Path(out_dir)
    written: dict[str, Path] = {}
    latency = plot_latency_distribution(table, folder / f"{stem}-latency.png", title=title)
    if latency is not None:
        written["latency_png"] = latency
    batch = plot_batch_sweep(table, folder / f"{stem}-batch.png", title=title)
    if batch is not None:
        written["batch_png"] = batch
    return written
