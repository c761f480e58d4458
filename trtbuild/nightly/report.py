"""``trtbuild report``: the nightly history as Markdown and one self-contained HTML page.

Reads every run folder under the given results folders (several hosts and shards merge: each case
record names its device), keeps the runs started within ``--since``, and writes:

  index.html   latest results per device, regressions, trend plots (PNG embedded as base64), runs
  report.md    the same tables, with the plots as files in plots/
  plots/*.png  one trend figure per model: one panel per device, one line per backend/precision/shape

Plots need matplotlib (Agg backend, no display); without it the report has tables only.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from trtbuild.errors import TrtbuildError
from trtbuild.nightly.store import RunDir, find_runs, iso, parse_iso, parse_since, utc_now

log = logging.getLogger(__name__)

BAD = ("regression", "accuracy", "failed")
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


@dataclass
class CaseRow:
    """One case of one run, flattened for tables and plots."""

    run_id: str
    started: datetime
    host: str
    shard: str | None
    suite: str
    case_id: str
    model: str
    backend: str
    precision: str
    shape: str
    device_key: str
    device: str
    status: str
    reason: str
    metric: str  # the gated metric shown in trends (the first threshold's)
    median_ms: float | None
    p10_ms: float | None
    p90_ms: float | None
    latency_median_ms: float | None
    throughput_qps: float | None
    accuracy: str
    verdict: str
    verdict_detail: str
    ratio: float | None = None
    ci: tuple[float, float] | None = None
    test_hooks: list[str] = field(default_factory=list)
    statistic: str = "median"  # which statistic median_ms holds: the gate's (median, p25 or p10)

    @property
    def metric_label(self) -> str:
        return self.metric if self.statistic == "median" else f"{self.metric} {self.statistic}"

    @property
    def series(self) -> str:
        return f"{self.backend} {self.precision} {self.shape}"


@dataclass
class History:
    runs: list[RunDir]
    rows: list[CaseRow]
    since: datetime | None
    #: run folders left out because their run.json is malformed: path -> what is wrong
    skipped: dict[str, str] = field(default_factory=dict)

    def latest(self) -> list[CaseRow]:
        """The newest row of every (suite, device, case)."""
        best: dict[tuple[str, str, str], CaseRow] = {}
        for row in self.rows:
            key = (row.suite, row.device_key, row.case_id)
            if key not in best or row.started >= best[key].started:
                best[key] = row
        return sorted(best.values(), key=lambda r: (r.device, r.suite, r.model, r.backend, r.precision, r.shape))

    def flagged(self) -> list[CaseRow]:
        return sorted((r for r in self.rows if r.verdict in BAD), key=lambda r: (r.started, r.case_id), reverse=True)


# --------------------------------------------------------------------------------------------------
# Loading


def load_history(roots: Sequence[str | os.PathLike[str]], *, since: str | None = None,
                 suite: str | None = None) -> History:  # fmt: skip
    paths = [Path(r) for r in roots]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise TrtbuildError(f"{', '.join(missing)} does not exist; give the results folder(s) that `trtbuild nightly` "
                            "wrote (bench_results/ by default).")  # fmt: skip
    cutoff = parse_since(since)
    runs = []
    skipped: dict[str, str] = {}
    for run in find_runs(paths, skipped=skipped):
        started = parse_iso(run.record.get("started_utc"))
        if started is None or (cutoff is not None and started < cutoff):
            continue
        if suite is not None and run.record.get("suite", {}).get("name") != suite:
            continue
        runs.append(run)
    runs.sort(key=lambda r: (r.record.get("started_utc") or "", r.run_id))
    rows = [row for run in runs for row in _rows(run)]
    return History(runs, rows, cutoff, skipped)


def _rows(run: RunDir) -> Iterable[CaseRow]:
    rec = run.record
    started = parse_iso(rec.get("started_utc")) or utc_now()
    gate = (run.load_gate() or {}).get("cases", {})
    for case_id, case in run.load_cases().items():
        thresholds = case.get("thresholds") or {"latency": 1.05}
        metrics = case.get("metrics") or {}
        metric = next((m for m in thresholds if m in metrics), "latency")
        statistic = str((rec.get("gate_settings") or {}).get("statistic") or "median")
        stats = metrics.get(metric) or {}
        summary = (case.get("bench") or {}).get("summary") or {}
        verdict = gate.get(case_id) or {}
        m = (verdict.get("metrics") or {}).get(metric) or {}
        acc = case.get("accuracy") or {}
        accuracy = "" if not acc else ("pass" if acc.get("passed") else "FAIL")
        if acc and acc.get("max_abs") is not None:
            accuracy += f" ({acc['max_abs']:.1g})"
        device = case.get("device") or {}
        yield CaseRow(
            run_id=run.run_id, started=started, host=str(rec.get("host", "?")), shard=rec.get("shard"),
            suite=str(case.get("suite") or rec.get("suite", {}).get("name", "?")), case_id=case_id,
            model=str(case.get("model", "?")), backend=str(case.get("backend", "?")),
            precision=str(case.get("precision", "?")), shape=str(case.get("shape", "?")),
            device_key=str(device.get("key", "?")), device=str(device.get("label", "?")),
            status=str(case.get("status", "?")), reason=str(case.get("reason") or ""), metric=metric,
            median_ms=stats.get(statistic, stats.get("median")), p10_ms=stats.get("p10"), p90_ms=stats.get("p90"),
            statistic=statistic,
            latency_median_ms=(summary.get("latency_ms") or {}).get("median"),
            throughput_qps=summary.get("throughput_qps"), accuracy=accuracy,
            verdict=str(verdict.get("verdict") or ("failed" if case.get("status") == "failed" else "not gated")),
            verdict_detail=str(verdict.get("reason") or ""),
            ratio=m.get("ratio"), ci=(m["ci_low"], m["ci_high"]) if "ci_low" in m else None,
            test_hooks=list(case.get("test_hooks") or []),
        )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Plots


def trend_figures(history: History) -> dict[str, bytes]:
    """model -> PNG bytes: one panel per device, one line per backend/precision/shape (median, p10-p90 band),
    red crosses where the gate flagged a regression. Empty without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed: the report has no trend plots (pip install matplotlib).")
        return {}
    out: dict[str, bytes] = {}
    models = sorted({r.model for r in history.rows})
    for model in models:
        rows = [r for r in history.rows if r.model == model and r.median_ms is not None and r.status == "ok"]
        if not rows:
            continue
        devices = sorted({r.device_key for r in rows})
        cols = min(len(devices), 2)
        nrows = (len(devices) + cols - 1) // cols
        fig = Figure(figsize=(6.2 * cols, 3.6 * nrows), dpi=100)
        FigureCanvasAgg(fig)
        series_names = sorted({r.series for r in rows})
        colors = {s: _COLORS[i % len(_COLORS)] for i, s in enumerate(series_names)}
        for i, key in enumerate(devices):
            ax = fig.add_subplot(nrows, cols, i + 1)
            dev_rows = [r for r in rows if r.device_key == key]
            hosts = sorted({r.host for r in dev_rows})
            for name in series_names:
                pts = sorted((r for r in dev_rows if r.series == name), key=lambda r: r.started)
                if not pts:
                    continue
                xs: list[Any] = [r.started for r in pts]
                ys: list[Any] = [r.median_ms for r in pts]
                lo = [r.p10_ms if r.p10_ms is not None else r.median_ms for r in pts]
                hi = [r.p90_ms if r.p90_ms is not None else r.median_ms for r in pts]
                ax.fill_between(xs, lo, hi, color=colors[name], alpha=0.12, linewidth=0)  # type: ignore[arg-type]
                ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.4, color=colors[name],
                        label=f"{name} [{pts[-1].metric_label}]")  # fmt: skip
                bad = [r for r in pts if r.verdict in ("regression", "accuracy")]
                if bad:
                    bx: list[Any] = [r.started for r in bad]
                    by: list[Any] = [r.median_ms for r in bad]
                    ax.scatter(bx, by, marker="x", s=70, linewidths=2,
                               color="#d62728", zorder=5)  # fmt: skip
            label = dev_rows[0].device
            ax.set_title(f"{label}\n({', '.join(hosts)})", fontsize=9)
            ax.set_ylabel("ms: gated statistic (p10-p90 band)", fontsize=8)
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            locator = AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=7, loc="best", framealpha=0.85)
        fig.suptitle(f"{model}: nightly trend (red x: flagged by the gate)", fontsize=11)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        out[model] = buffer.getvalue()
    return out


# --------------------------------------------------------------------------------------------------
# Text


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def _ratio_text(row: CaseRow) -> str:
    if row.ratio is None:
        return ""
    ci = f" [{row.ci[0]:.3f}, {row.ci[1]:.3f}]" if row.ci else ""
    return f"x{row.ratio:.3f}{ci}"


def _status_text(row: CaseRow) -> str:
    text = row.verdict if row.status == "ok" else row.status
    if row.status != "ok" and row.reason:
        text += f": {row.reason}"
    return text


LATEST_COLUMNS = ("suite", "model", "backend", "precision", "shape", "metric", "time ms", "p90 ms", "throughput qps",
                  "accuracy", "verdict", "vs baseline", "run")  # fmt: skip
#: Long cells (skip reasons, failure messages) are cut in tables; the HTML keeps the whole text as a tooltip.
CELL_LIMIT = 64


def _short(text: str, limit: int = CELL_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _run_label(row: CaseRow) -> str:
    return f"{row.started.strftime('%m-%d %H:%M')} {row.host}" + (f" [{row.shard}]" if row.shard else "")


def _latest_cells(r: CaseRow) -> list[str]:
    return [r.suite, r.model, r.backend, r.precision, r.shape, r.metric_label, _fmt(r.median_ms), _fmt(r.p90_ms),
            _fmt(r.throughput_qps, 5), r.accuracy, _status_text(r), _ratio_text(r), _run_label(r)]  # fmt: skip


def _by_device(rows: Sequence[CaseRow]) -> list[tuple[str, list[str], list[CaseRow]]]:
    """(device label, hosts, rows) per device key, in label order."""
    groups: dict[str, list[CaseRow]] = {}
    for row in rows:
        groups.setdefault(row.device_key, []).append(row)
    out = [(g[0].device, sorted({r.host for r in g}), g) for g in groups.values()]
    return sorted(out, key=lambda item: item[0])


FLAGGED_COLUMNS = ("started (UTC)", "host", "device", "case", "verdict", "vs baseline", "detail")


def _flagged_cells(r: CaseRow) -> list[str]:
    detail = r.verdict_detail or r.reason
    if r.test_hooks:
        detail += f" (test hooks: {', '.join(r.test_hooks)})"
    return [iso(r.started), r.host, r.device, r.case_id, r.verdict, _ratio_text(r), detail]


RUN_COLUMNS = ("run", "started (UTC)", "host", "shard", "suite", "status", "ok", "failed", "skipped", "exit code")


def _run_cells(run: RunDir) -> list[str]:
    rec = run.record
    cases = rec.get("cases") or {}
    count = {k: sum(1 for c in cases.values() if c.get("status") == k) for k in ("ok", "failed", "skipped")}
    exit_code = rec.get("exit_code")
    return [run.run_id, str(rec.get("started_utc", "")), str(rec.get("host", "")), str(rec.get("shard") or ""),
            str(rec.get("suite", {}).get("name", "")), str(rec.get("status", "")), str(count["ok"]), str(count["failed"]),
            str(count["skipped"]), "" if exit_code is None else str(exit_code)]  # fmt: skip


def _md_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def _overview(history: History) -> dict[str, Any]:
    hosts = sorted({str(r.record.get("host")) for r in history.runs})
    devices = sorted({r.device for r in history.rows})
    starts = [str(r.record.get("started_utc") or "") for r in history.runs]
    return {"runs": len(history.runs), "hosts": hosts, "devices": devices,
            "first": min(starts) if starts else None, "last": max(starts) if starts else None}  # fmt: skip


def markdown_report(history: History, plots: Mapping[str, str], title: str) -> str:
    o = _overview(history)
    lines = [f"# {title}", "", f"Generated {iso(utc_now())} from {o['runs']} run(s) on {len(o['hosts'])} host(s) "
             f"({', '.join(o['hosts'])}), {o['first']} .. {o['last']}"
             + (f" (since {iso(history.since)})" if history.since else "") + ".", ""]  # fmt: skip
    flagged = history.flagged()
    lines += ["## Regressions and failures", ""]
    lines += _md_table(FLAGGED_COLUMNS, ([_short(c, 160) for c in _flagged_cells(r)] for r in flagged)) if flagged \
        else ["None in this window."]  # fmt: skip
    lines += ["", "## Latest results", "", "The newest run of every case on every device. time: the gate's statistic "
              "(the median unless the suite says p25/p10) of the per-iteration times of the gated metric (cpu: CPU time "
              "per inference; latency: trtexec's latency).", ""]
    for device, hosts, rows in _by_device(history.latest()):
        lines += [f"### {device} ({', '.join(hosts)})", ""]
        lines += _md_table(LATEST_COLUMNS, ([_short(c) for c in _latest_cells(r)] for r in rows))
        lines.append("")
    lines += ["", "## Trends", ""]
    lines += [f"![{model}]({path})" for model, path in plots.items()] or ["(no plots: matplotlib is missing or no case ran)"]
    lines += ["", "## Runs", ""]
    lines += _md_table(RUN_COLUMNS, (_run_cells(r) for r in reversed(history.runs)))
    lines += ["", "Exit codes: 0 pass, 1 regression, 2 usage error, 3 broken run. Format: docs/nightly.md.", ""]
    return "\n".join(lines)


_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:24px 32px;color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
.meta{color:#5b6475;font-size:13px}.cards{display:flex;gap:12px;margin:14px 0;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d8dde6;border-radius:8px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:20px}.card span{font-size:12px;color:#5b6475}
table{border-collapse:collapse;background:#fff;font-size:12.5px;width:100%}
th,td{border:1px solid #e1e5ec;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f0f2f6;font-weight:600;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fdecec}tr.skip td{color:#7a8191}tr.good td.verdict{color:#1b7f3b}
.verdict{font-weight:600}.bad .verdict{color:#b42318}.plot{background:#fff;border:1px solid #d8dde6;border-radius:8px;
padding:8px;margin:10px 0;max-width:100%}.plot img{max-width:100%;height:auto}.small{font-size:12px;color:#5b6475}
.wrap{overflow-x:auto}h3{font-size:14px;margin:18px 0 6px}td{white-space:nowrap}td.wide{white-space:normal;min-width:320px}td[title]{cursor:help}
"""


def _html_table(columns: Sequence[str], rows: Iterable[tuple[Sequence[str], str]], numeric: Sequence[str] = (),
                limit: int = CELL_LIMIT) -> str:  # fmt: skip
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for cells, css in rows:
        tds = []
        for col, text in zip(columns, cells):
            klass = ' class="num"' if col in numeric else (' class="verdict"' if col == "verdict" else
                                                            (' class="wide"' if col == "detail" else ""))  # fmt: skip
            full = str(text)
            shown = _short(full, limit)
            title = f' title="{html.escape(full)}"' if shown != full else ""
            tds.append(f"<td{klass}{title}>{html.escape(shown)}</td>")
        body.append(f'<tr class="{css}">' + "".join(tds) + "</tr>")
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _row_class(row: CaseRow) -> str:
    if row.verdict in BAD or row.status == "failed":
        return "bad"
    if row.status == "skipped":
        return "skip"
    return "good"


def html_report(history: History, pngs: Mapping[str, bytes], title: str) -> str:
    o = _overview(history)
    latest = history.latest()
    flagged = history.flagged()
    latest_bad = sum(1 for r in latest if r.verdict in BAD or r.status == "failed")
    cards = [(o["runs"], "runs"), (len(o["hosts"]), "hosts"), (len(o["devices"]), "devices"),
             (len(latest), "cases (latest)"), (latest_bad, "flagged now"), (len(flagged), "flagged in window")]  # fmt: skip
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<div class="meta">Generated {iso(utc_now())}; runs from {html.escape(str(o["first"]))} to '
        f'{html.escape(str(o["last"]))}{" (since " + iso(history.since) + ")" if history.since else ""}; hosts: '
        f'{html.escape(", ".join(o["hosts"]))}</div>',
        '<div class="cards">' + "".join(f"<div class=\"card\"><b>{n}</b><span>{html.escape(label)}</span></div>"
                                        for n, label in cards) + "</div>",  # fmt: skip
        "<h2>Regressions and failures</h2>",
        _html_table(FLAGGED_COLUMNS, ((_flagged_cells(r), "bad") for r in flagged), limit=200) if flagged
        else '<p class="small">None in this window.</p>',
        "<h2>Latest results</h2>",
        '<p class="small">The newest run of every case on every device. time: the gate\'s statistic (the median '
        "unless the suite says p25/p10) of the per-iteration times of the gated metric (cpu: CPU time per inference "
        "on host-clock backends; latency: trtexec's latency). "
        "vs baseline: median ratio and its confidence interval. Hover a cut cell for its whole text.</p>",
    ]
    for device, hosts, rows in _by_device(latest):
        parts.append(f'<h3>{html.escape(device)} <span class="small">({html.escape(", ".join(hosts))})</span></h3>')
        parts.append(_html_table(LATEST_COLUMNS, ((_latest_cells(r), _row_class(r)) for r in rows),
                                 numeric=("time ms", "p90 ms", "throughput qps")))  # fmt: skip
    parts.append("<h2>Trends</h2>")
    if pngs:
        for model, data in pngs.items():
            b64 = base64.b64encode(data).decode("ascii")
            parts.append(f'<div class="plot"><img alt="{html.escape(model)} trend" src="data:image/png;base64,{b64}"></div>')
    else:
        parts.append('<p class="small">No plots (matplotlib is missing, or no case ran).</p>')
    parts += [
        "<h2 id=\"runs\">Runs</h2>",
        _html_table(RUN_COLUMNS, ((_run_cells(r), "bad" if r.record.get("exit_code") not in (0, None) else "good")
                                  for r in reversed(history.runs))),  # fmt: skip
        '<p class="small">Exit codes: 0 pass, 1 regression, 2 usage error, 3 broken run. Record format: '
        "docs/nightly.md.</p></body></html>",
    ]
    return "\n".join(parts) + "\n"


@dataclass
class ReportFiles:
    html: Path
    markdown: Path
    plots: dict[str, Path]
    history: History


def write_report(
    results: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = "bench_results",
    out_dir: str | os.PathLike[str] | None = None,
    *,
    since: str | None = None,
    suite: str | None = None,
    title: str = "trtbuild nightly report",
) -> ReportFiles:
    """Write ``index.html``, ``report.md`` and ``plots/*.png`` for the runs under ``results``."""
    import re

    from trtbuild.fsutil import atomic_write_bytes, atomic_write_text

    roots = [results] if isinstance(results, (str, os.PathLike)) else list(results)
    history = load_history(roots, since=since, suite=suite)
    if not history.runs:
        window = f" since {since}" if since else ""
        raise TrtbuildError(f"No nightly runs{window} under {', '.join(map(str, roots))}; run `trtbuild nightly "
                            "SUITE.toml` first, or widen --since.")  # fmt: skip
    out = Path(out_dir) if out_dir is not None else Path(roots[0]) / "report"
    if out.exists() and not out.is_dir():
        raise TrtbuildError(f"The report folder {out} is a file; give a folder with -o (it is created if missing).")
    pngs = trend_figures(history)
    plot_paths: dict[str, Path] = {}
    for model, data in pngs.items():
        path = out / "plots" / f"trend-{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)}.png"
        atomic_write_bytes(path, data)
        plot_paths[model] = path
    md = markdown_report(history, {m: f"plots/{p.name}" for m, p in plot_paths.items()}, title)
    atomic_write_text(out / "report.md", md)
    atomic_write_text(out / "index.html", html_report(history, pngs, title))
    return ReportFiles(out / "index.html", out / "report.md", plot_paths, history)
