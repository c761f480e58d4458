"""LatencyTable: one row per timed run (backend x shape x batch), written as CSV, Markdown, JSON, Parquet.

The columns are documented, with the schema version, in bench_results/README.md. Every row carries the
environment fingerprint, so rows from different machines can share one table. Per-query latencies
(the measured ones) travel in the JSON file only, keyed by ``run_id``, for plots and later re-analysis.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.bench.stats import MetricStats, format_number, format_percentile
from trtbuild.bench.timing import Summary, TimingOptions

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Bump when a column changes meaning or is removed (adding columns keeps the version).
SCHEMA_VERSION = 1

ENV_KEYS = ("host", "platform", "cpu", "python", "gpu", "compute_capability", "driver", "cuda", "tensorrt",
            "onnxruntime", "torch", "trtbuild")  # fmt: skip
METRICS = ("latency", "compute", "enqueue", "h2d", "d2h")

#: Columns shown in the Markdown summary (the CSV/JSON/Parquet files hold every column).
MARKDOWN_COLUMNS = ("runner", "backend", "precision", "shape", "batch", "cuda_graph", "throughput_qps", "throughput_samples_s",
                    "latency_mean_ms", "latency_median_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
                    "latency_cv_pct", "queries", "clock")  # fmt: skip


def percentile_column(metric: str, p: float) -> str:
    return f"{metric}_p{format_percentile(p)}_ms"


def _metric_columns(prefix: str, stats: MetricStats | None, percentiles: Sequence[float]) -> dict[str, Any]:
    nan = math.nan
    cols: dict[str, Any] = {
        f"{prefix}_min_ms": stats.min if stats else nan,
        f"{prefix}_max_ms": stats.max if stats else nan,
        f"{prefix}_mean_ms": stats.mean if stats else nan,
        f"{prefix}_median_ms": stats.median if stats else nan,
    }
    for p in percentiles:
        cols[percentile_column(prefix, p)] = stats.percentiles[float(p)] if stats else nan
    cols[f"{prefix}_cv_pct"] = stats.coeff_var if stats else nan
    return cols


def make_row(
    summary: Summary,
    *,
    model: str,
    backend: str,
    runner: str,
    precision: str,
    shape: str,
    options: TimingOptions,
    environment: Mapping[str, Any],
    run_id: str | None = None,
    created_utc: str | None = None,
    device: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One table row: identity, mode, statistics, environment. Unmeasured metrics (CPU backends have no
    enqueue or transfer times) are NaN, never zeros that could pass for measurements."""
    gpu = summary.mode.is_gpu
    row: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id or new_run_id(),
        "created_utc": created_utc or utc_now(),
        "model": model,
        "backend": backend,
        "runner": runner,
        "device": device,
        "precision": precision,
        "shape": shape,
        "batch": summary.batch,
        **summary.mode.to_dict(),
        "warm_up_ms": options.warm_up_ms,
        "min_iterations": options.iterations,
        "min_duration_s": options.duration_s,
        "queries": summary.queries,
        "warmup_queries": summary.warmup_queries,
        "walltime_s": summary.walltime_s,
        "throughput_qps": summary.throughput_qps,
        "throughput_samples_s": summary.throughput_samples,
        "total_compute_s": summary.total_compute_s,
    }
    pct = summary.percentiles
    row.update(_metric_columns("latency", summary.latency, pct))
    row.update(_metric_columns("compute", summary.compute, pct))
    row.update(_metric_columns("enqueue", summary.enqueue if gpu else None, pct))
    row.update(_metric_columns("h2d", summary.h2d if gpu else None, pct))
    row.update(_metric_columns("d2h", summary.d2h if gpu else None, pct))
    row["warnings"] = " | ".join(w.strip() for w in summary.warnings if w.startswith("*"))
    for key in ENV_KEYS:
        row[f"env_{key}"] = environment.get(key)
    jetson = environment.get("jetson")
    row["env_jetson"] = json.dumps(jetson, sort_keys=True) if jetson else None
    if extra:
        row.update(extra)
    return row


def new_run_id() -> str:
    return secrets.token_hex(6)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LatencyTable:
    """A pandas DataFrame of benchmark rows, plus the per-query latency samples of each row."""

    def __init__(self, rows: Iterable[Mapping[str, Any]] = (), samples: Mapping[str, Any] | None = None) -> None:
        self._rows: list[dict[str, Any]] = [dict(r) for r in rows]
        self._samples: dict[str, Any] = dict(samples or {})
        self._frame: pd.DataFrame | None = None
        #: Files written by :meth:`write` / ``bench`` (format -> path).
        self.files: dict[str, Path] = {}
        #: Backends ``bench`` skipped, each with the reason.
        self.skipped: list[str] = []
        #: Runs ``bench`` could not measure (runner, shape, batch: the error); the other rows stand.
        self.failed: list[str] = []

    # ---- content

    def append(self, row: Mapping[str, Any], samples_ms: Any = None) -> None:
        self._rows.append(dict(row))
        if samples_ms is not None:
            import numpy as np

            self._samples[str(row["run_id"])] = np.asarray(samples_ms, dtype=np.float32)
        self._frame = None

    def extend(self, other: LatencyTable) -> None:
        for row in other.rows:
            self.append(row, other.samples(str(row["run_id"])))

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (columns in first-seen order)."""
        if self._frame is None:
            import pandas as pd

            columns: list[str] = []
            for row in self._rows:
                columns += [c for c in row if c not in columns]
            self._frame = pd.DataFrame(self._rows, columns=columns)
        return self._frame

    def samples(self, run_id: str) -> np.ndarray | None:
        """Measured per-query latencies (ms) of one row, when they were kept."""
        return self._samples.get(run_id)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"LatencyTable({len(self)} rows)"

    # ---- formats

    def to_csv(self) -> str:
        return str(self.frame.to_csv(index=False, lineterminator="\n"))

    def to_json_obj(self, *, include_samples: bool = True) -> dict[str, Any]:
        rows = [{k: _json_value(v) for k, v in row.items()} for row in self._rows]
        obj: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "created_utc": utc_now(), "rows": rows}
        if include_samples:
            obj["samples_ms"] = {k: [float(x) for x in v] for k, v in self._samples.items()}
        return obj

    def to_json(self, *, include_samples: bool = True) -> str:
        return json.dumps(self.to_json_obj(include_samples=include_samples), indent=1, allow_nan=False) + "\n"

    def to_markdown(self, *, title: str = "") -> str:
        """A readable summary: key columns per row, then the environment of the first row."""
        lines = [f"# {title}", ""] if title else []
        columns = [c for c in MARKDOWN_COLUMNS if c in self.frame.columns]
        for row in self._rows:  # custom percentile lists add their columns after the defaults
            columns += [c for c in row if re.fullmatch(r"latency_p[\d.]+_ms", c) and c not in columns]
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "|".join("---:" if _numeric_column(c) else "---" for c in columns) + "|")
        for row in self._rows:
            lines.append("| " + " | ".join(_md_cell(row.get(c)) for c in columns) + " |")
        warned = [r for r in self._rows if r.get("warnings")]
        if warned:
            lines += ["", "Warnings:", ""]
            lines += [f"- {r['backend']} {r['shape']} batch {r['batch']}: {r['warnings']}" for r in warned]
        if self._rows:
            first = self._rows[0]
            lines += ["", f"Model: `{first.get('model')}`; mode: {first.get('mode')}", "", "Environment:", ""]
            lines += [f"- {c[4:]}: {first[c]}" for c in first if c.startswith("env_") and first[c] not in (None, "")]
            lines += ["", f"Schema version {SCHEMA_VERSION} (see bench_results/README.md). Times in ms; "
                          "throughput in queries/s and samples/s."]  # fmt: skip
        return "\n".join(lines) + "\n"

    def to_parquet_bytes(self) -> bytes | None:
        """Parquet bytes, or None when pyarrow is not installed."""
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return None
        import io

        buffer = io.BytesIO()
        self.frame.to_parquet(buffer, index=False)
        return buffer.getvalue()

    # ---- files

    def write(self, out_dir: str | Path, *, stem: str | None = None, model: str = "model",
              title: str = "") -> dict[str, Path]:  # fmt: skip
        """Write ``<stem>.csv/.md/.json`` (and ``.parquet`` with pyarrow) atomically into ``out_dir``.

        The stem defaults to ``bench-<model>-<UTC timestamp>-<random>`` and never overwrites a file.
        Returns format -> path.
        """
        from trtbuild.fsutil import atomic_write_bytes, atomic_write_text

        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stem = stem or unique_stem(folder, model)
        paths = {fmt: folder / f"{stem}.{fmt}" for fmt in ("csv", "md", "json")}
        atomic_write_text(paths["csv"], self.to_csv())
        atomic_write_text(paths["md"], self.to_markdown(title=title or stem))
        atomic_write_text(paths["json"], self.to_json())
        parquet = self.to_parquet_bytes()
        if parquet is not None:
            paths["parquet"] = folder / f"{stem}.parquet"
            atomic_write_bytes(paths["parquet"], parquet)
        return paths

    @classmethod
    def read(cls, path: str | Path) -> LatencyTable:
        """Read a table written by :meth:`write` (JSON keeps the samples; CSV and Parquet do not)."""
        from trtbuild.errors import TrtbuildError

        p = Path(path)
        if p.suffix == ".json":
            obj = json.loads(p.read_text(encoding="utf-8"))
            version = obj.get("schema_version") if isinstance(obj, dict) else None
            if version != SCHEMA_VERSION:
                raise TrtbuildError(f"{p} has benchmark schema version {version!r}; this trtbuild reads version "
                                    f"{SCHEMA_VERSION} (see bench_results/README.md).")  # fmt: skip
            return cls(obj.get("rows", []), obj.get("samples_ms", {}))
        import pandas as pd

        if p.suffix == ".csv":
            frame = pd.read_csv(p)
        elif p.suffix == ".parquet":
            frame = pd.read_parquet(p)
        else:
            raise TrtbuildError(f"{p}: benchmark tables are read from .json, .csv or .parquet files.")
        records = [{k: (None if _is_nan(v) else v) for k, v in r.items()} for r in frame.to_dict("records")]
        return cls(records)


def unique_stem(folder: Path, model: str) -> str:
    """``bench-<model>-<YYYYmmddTHHMMSSZ>-<6 hex>``, re-drawn until no file in ``folder`` uses it."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model.replace("zoo:", "zoo-")).stem)[:40] or "model"
    while True:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        stem = f"bench-{tag}-{stamp}-{secrets.token_hex(3)}"
        if not any(folder.glob(f"{glob_escape(stem)}.*")):
            return stem


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; null means "not measured"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _json_value(value.item())
    return value


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _numeric_column(name: str) -> bool:
    return name.endswith(("_ms", "_s", "_pct", "_qps")) or name in ("batch", "queries")


def _md_cell(value: Any) -> str:
    if value is None or _is_nan(value):
        return ""
    if isinstance(value, float):
        return format_number(value)
    return str(value).replace("|", "\\|")
