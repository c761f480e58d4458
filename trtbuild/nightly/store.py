"""The results store: one folder per nightly run, written atomically, never shared between runs.

Layout (schema version 1, documented in docs/nightly.md)::

    <results>/nightly/<run_id>/            run_id = 20260102T023000Z-<host>-<6 hex>: never collides
        run.json                           the run record (rewritten atomically as cases finish)
        cases/<case_id>.json               one record per finished case (ok, failed or skipped)
        samples/<case_id>.parquet|.csv     per-iteration times of the case (ms)
        logs/<case_id>.log                 the case process's stdout and stderr
        cases.parquet|.csv                 the per-case table (one LatencyTable-style row per case)
        gate.json                          the regression gate's verdicts
        work/                              inputs and outputs of the case processes (removed at the end)

Several hosts (or concurrent runs on one host) can share one results folder: each writes only its own
run folder, every file goes through trtbuild.fsutil (temporary file + rename). Readers check every
record against the schemas below; one that does not match (or cannot be parsed) is skipped with a
warning that names it, and the gate lists the runs it skipped.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import TrtbuildError
from trtbuild.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
RUN_SCHEMA = "trtbuild.nightly.run"
CASE_SCHEMA = "trtbuild.nightly.case"
GATE_SCHEMA = "trtbuild.nightly.gate"
NIGHTLY_DIR = "nightly"
SAMPLE_COLUMNS = ("latency_ms", "compute_ms", "enqueue_ms", "h2d_ms", "d2h_ms", "cpu_ms")
#: Backends whose numbers depend on the GPU (everything else is keyed by the CPU).
GPU_MARKERS = ("trt", "cuda", "tensorrt", "gpu")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text[:20].rstrip("Z") + "Z", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def new_run_id(host: str | None = None, now: datetime | None = None) -> str:
    """``20260102T023000Z-<host>-<6 hex>``: sortable by time, unique across hosts and concurrent runs."""
    stamp = (now or utc_now()).strftime("%Y%m%dT%H%M%SZ")
    tag = re.sub(r"[^A-Za-z0-9_.]+", "_", host or platform.node() or "host")[:40] or "host"
    return f"{stamp}-{tag}-{secrets.token_hex(3)}"


def is_gpu_backend(backend: str) -> bool:
    text = backend.lower()
    return text.startswith("trt") or any(m in text for m in GPU_MARKERS[1:])


def device_identity(environment: Mapping[str, Any], backend: str) -> dict[str, str]:
    """The hardware a case's numbers belong to: the key baselines are matched by, and a label for reports.

    Host-independent on purpose (a fleet of identical machines shares baselines) and free of software
    versions (a slower TensorRT, driver or onnxruntime is exactly what the gate must catch; the report
    names what changed). GPU backends: platform, GPU name, compute capability, Jetson model and power
    mode. CPU backends: platform and CPU model name.
    """
    plat = str(environment.get("platform") or "")
    if is_gpu_backend(backend):
        jetson = environment.get("jetson") or {}
        parts = [plat, str(environment.get("gpu") or "unknown GPU"), f"sm{environment.get('compute_capability') or '?'}"]
        if jetson:
            parts += [str(jetson.get("model", "")), f"power {jetson.get('power_mode', '?')}"]
        label = str(environment.get("gpu") or "no GPU found") + (f" ({jetson.get('power_mode')})" if jetson.get("power_mode") else "")
        return {"key": "gpu|" + "|".join(parts), "label": label, "kind": "gpu"}
    cpu = str(environment.get("cpu") or "unknown CPU")
    return {"key": f"cpu|{plat}|{cpu}", "label": cpu, "kind": "cpu"}


def have_parquet() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# One run's folder


@dataclass
class RunDir:
    """A run folder and its record; only the process that created (or resumed) it writes to it."""

    path: Path
    record: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])

    @property
    def work(self) -> Path:
        return self.path / "work"

    def case_path(self, case_id: str) -> Path:
        return self.path / "cases" / f"{case_id}.json"

    def log_path(self, case_id: str) -> Path:
        return self.path / "logs" / f"{case_id}.log"

    def save(self) -> None:
        atomic_write_json(self.path / "run.json", self.record)

    # ---- cases

    def finished_cases(self) -> set[str]:
        folder = self.path / "cases"
        return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()

    def save_case(self, record: dict[str, Any], samples: Mapping[str, Any] | None) -> None:
        """Samples first, then the case record (its presence means "finished"), then the run record."""
        case_id = str(record["case_id"])
        if samples:
            record["samples"] = write_samples(self.path / "samples", case_id, samples)
        atomic_write_json(self.case_path(case_id), record)
        self.record.setdefault("cases", {})[case_id] = {
            "status": record.get("status"),
            "reason": record.get("reason"),
            "record": f"cases/{case_id}.json",
            "log": record.get("log"),
        }
        engine = record.get("engine")
        if engine:
            self.record.setdefault("engines", {})[case_id] = engine
        self.save()

    def load_case(self, case_id: str) -> dict[str, Any] | None:
        data = read_checked(self.case_path(case_id), case_schema(), "case record")
        return data if data is not None and data.get("schema") == CASE_SCHEMA else None

    def load_cases(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for path in sorted((self.path / "cases").glob("*.json")):
            data = read_checked(path, case_schema(), "case record")
            if data is not None and data.get("schema") == CASE_SCHEMA:
                out[str(data["case_id"])] = data
        return out

    def load_samples(self, case_id: str, record: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        record = record if record is not None else self.load_case(case_id)
        rel = (record or {}).get("samples")
        return read_samples(self.path / rel) if rel else {}

    def load_gate(self) -> dict[str, Any] | None:
        data = read_checked(self.path / "gate.json", gate_schema(), "gate record")
        return data if data is not None and data.get("schema") == GATE_SCHEMA else None

    def save_gate(self, gate: dict[str, Any]) -> None:
        atomic_write_json(self.path / "gate.json", gate)

    def write_case_table(self) -> str | None:
        """``cases.parquet`` (or ``.csv``): one row per case, the bench table row plus status and gate."""
        rows = []
        gate = (self.load_gate() or {}).get("cases", {})
        for case_id, rec in self.load_cases().items():
            row = dict((rec.get("bench") or {}).get("row") or {})
            row.update({
                "nightly_run": self.run_id, "case_id": case_id, "suite": rec.get("suite"), "model": rec.get("model"),
                "backend": rec.get("backend"), "precision": rec.get("precision"), "shape": rec.get("shape"),
                "status": rec.get("status"), "reason": rec.get("reason"), "device_key": rec.get("device", {}).get("key"),
                "accuracy_passed": (rec.get("accuracy") or {}).get("passed"),
                "gate_verdict": (gate.get(case_id) or {}).get("verdict"),
            })  # fmt: skip
            rows.append(row)
        if not rows:
            return None
        import pandas as pd

        frame = pd.DataFrame(rows)
        for column in frame.columns:  # mixed None/str columns must stay writable as Parquet
            if frame[column].dtype == object:
                frame[column] = frame[column].map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v, default=str))
        return _write_table(frame, self.path / "cases")


def _write_table(frame: Any, stem: Path) -> str:
    import io

    if have_parquet():
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(stem.with_suffix(".parquet"), buffer.getvalue())
        return stem.with_suffix(".parquet").name
    atomic_write_text(stem.with_suffix(".csv"), frame.to_csv(index=False, lineterminator="\n"))
    return stem.with_suffix(".csv").name


def write_samples(folder: Path, case_id: str, samples: Mapping[str, Any]) -> str:
    """Per-iteration times (ms) as Parquet, or CSV without pyarrow; returns the path relative to the run."""
    import numpy as np
    import pandas as pd

    # Times get an _ms suffix; "repeat" (which process of the case took the sample) stays as it is.
    columns = {(k if k == "repeat" else f"{k}_ms"): np.asarray(v, dtype=np.float64)
               for k, v in samples.items() if v is not None and len(v)}  # fmt: skip
    n = max((len(v) for v in columns.values()), default=0)
    frame = pd.DataFrame({"iteration": np.arange(n, dtype=np.int64)})
    for name, values in columns.items():
        if name == "repeat":
            frame[name] = np.pad(values.astype(np.int64), (0, n - len(values)), constant_values=-1)
            continue
        padded = np.full(n, np.nan)
        padded[: len(values)] = values
        frame[name] = padded
    name = _write_table(frame, folder / case_id)
    return f"{folder.name}/{name}"


def read_samples(path: Path) -> dict[str, np.ndarray]:
    """``{"latency": array, "compute": array, ...}`` (NaN-free) from a samples file."""
    import numpy as np
    import pandas as pd

    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError, ImportError) as exc:
        log.warning("Cannot read samples %s (%s); the gate skips them.", path, exc)
        return {}
    out: dict[str, np.ndarray] = {}
    for column in frame.columns:
        if column.endswith("_ms"):
            values = frame[column].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size:
                out[column[:-3]] = values
    return out


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def run_schema() -> Any:
    """The fields of run.json that trtbuild reads back (other keys are kept as they are)."""
    from trtbuild.schema import AnyValue, Bool, Int, ListOf, MapOf, Nullable, Obj, Str

    text = Nullable(Str)
    summary = Obj({"status": text, "reason": Nullable(AnyValue), "record": text, "log": text})
    gate = Obj({"exit_code": Nullable(Int), "counts": Nullable(MapOf(Int)), "baseline": text, "accepted": Nullable(Bool)})
    return Obj({
        "schema": Str, "schema_version": Int, "run_id": Str,
        "suite": Obj({"name": Str, "hash": text, "path": text}),
        "host": text, "shard": text, "started_utc": Str, "finished_utc": text, "status": text,
        "resumed_utc": ListOf(Str), "command": Nullable(ListOf(Str)), "environment": Nullable(MapOf(AnyValue)),
        "gate_settings": Nullable(MapOf(AnyValue)), "timing_cache": text, "planned": ListOf(Str),
        "cases": MapOf(summary), "engines": MapOf(AnyValue), "gate": Nullable(gate), "exit_code": Nullable(Int),
    }, required=("schema", "schema_version", "run_id", "suite", "started_utc"))  # fmt: skip


def case_schema() -> Any:
    """The fields of cases/<id>.json that the gate and the reports read."""
    from trtbuild.schema import AnyValue, Bool, ListOf, MapOf, Nullable, Obj, Real, Str

    text = Nullable(Str)
    summary = Obj({"latency_ms": Nullable(MapOf(AnyValue)), "throughput_qps": Nullable(Real)})
    return Obj({
        "schema": Str, "case_id": Str, "run_id": text, "suite": text, "model": text, "backend": text,
        "precision": text, "shape": text, "status": Str, "reason": Nullable(AnyValue), "failed_step": text,
        "device": Obj({"key": Str, "label": text, "kind": text}),
        "metrics": MapOf(MapOf(Nullable(Real))), "repeat_medians": MapOf(ListOf(Nullable(Real))),
        "samples": text, "thresholds": Nullable(MapOf(AnyValue)), "model_sha256": text,
        "accuracy": Nullable(Obj({"passed": Nullable(Bool), "max_abs": Nullable(Real)})),
        "bench": Nullable(Obj({"row": Nullable(MapOf(AnyValue)), "summary": Nullable(summary)})),
        "test_hooks": Nullable(ListOf(AnyValue)), "started_utc": text, "finished_utc": text, "config_hash": text,
    }, required=("schema", "case_id", "status"))  # fmt: skip


def gate_schema() -> Any:
    from trtbuild.schema import AnyValue, Bool, MapOf, Nullable, Obj, Real, Str

    metric = Obj({"ratio": Nullable(Real), "ci_low": Real, "ci_high": Real})
    verdict = Obj({"verdict": Nullable(Str), "accepted": Nullable(Bool), "reason": Nullable(AnyValue),
                   "metrics": Nullable(MapOf(metric))})  # fmt: skip
    return Obj({"schema": Str, "cases": MapOf(verdict), "settings": Nullable(MapOf(AnyValue))}, required=("schema",))


def read_checked(path: Path, schema: Any, what: str) -> dict[str, Any] | None:
    """``path`` parsed and checked, or None with a warning naming the file and what is wrong with it."""
    from trtbuild.schema import problem

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("Skipping %s: the %s cannot be read (%s).", path, what, exc)
        return None
    why = problem(data, schema)
    if why is not None:
        log.warning("Skipping %s: the %s is malformed (%s).", path, what, why)
        return None
    return data  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------------
# The store: many runs


class ResultsStore:
    """All nightly runs under one results folder (``bench_results/`` by default)."""

    def __init__(self, root: str | Path = "bench_results") -> None:
        self.root = Path(root)
        #: Run folders found but skipped as unreadable or malformed (each already warned about), by path.
        self.skipped: dict[str, str] = {}

    @property
    def runs_dir(self) -> Path:
        return self.root / NIGHTLY_DIR

    def create_run(self, record: dict[str, Any], host: str | None = None) -> RunDir:
        """A fresh run folder; its id is drawn again in the (unlikely) case the folder exists."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        while True:
            run_id = new_run_id(host)
            path = self.runs_dir / run_id
            try:
                path.mkdir()
            except FileExistsError:
                continue
            break
        for sub in ("cases", "samples", "logs", "work"):
            (path / sub).mkdir()
        record = {"schema": RUN_SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": run_id, **record}
        run = RunDir(path, record)
        run.save()
        return run

    def iter_runs(self) -> Iterator[RunDir]:
        """Every readable run under the root (also run folders copied in from other hosts), oldest first."""
        yield from sorted(find_runs([self.root], skipped=self.skipped), key=lambda r: (r.record["started_utc"], r.run_id))

    def open_run(self, ref: str) -> RunDir:
        """A run by id (or unique id prefix) under the root, or by the path of its folder."""
        path = Path(ref)
        if (path / "run.json").is_file():
            run = _read_run(path, self.skipped)
            if run is not None:
                return run
        matches = [r for r in self.iter_runs() if r.run_id == ref] or [r for r in self.iter_runs() if r.run_id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise TrtbuildError(f"No nightly run '{ref}' under {self.root}; give a run id from {self.runs_dir} (or the "
                                "path of a run folder).")  # fmt: skip
        raise TrtbuildError(f"'{ref}' matches {len(matches)} runs under {self.root}; give more of the run id.")


def _read_run(path: Path, skipped: dict[str, str] | None = None) -> RunDir | None:
    """The run in ``path``, or None; a run.json that is not one of ours is ignored, a damaged one of ours
    is skipped with a warning (and noted in ``skipped``) so that a report or gate says what it left out."""
    from trtbuild.schema import problem

    file = path / "run.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        why = f"not readable JSON: {exc}"
    else:
        if isinstance(data, dict) and data.get("schema") not in (RUN_SCHEMA, None):
            return None  # someone else's run.json
        why = problem(data, run_schema()) or ""
        if not why and data.get("schema_version") != SCHEMA_VERSION:
            why = f"run schema version {data.get('schema_version')} (this trtbuild reads {SCHEMA_VERSION})"
        if not why:
            return RunDir(path, data)
    if skipped is None or str(path) not in skipped:  # one warning per run, however often the store is read
        log.warning("Skipping the run in %s: its run.json is malformed (%s).", path, why)
    if skipped is not None:
        skipped[str(path)] = why
    return None


def find_runs(roots: list[Path], max_depth: int = 4, *, skipped: dict[str, str] | None = None) -> list[RunDir]:
    """Run folders under each root: ``root/nightly/<id>``, ``root/<id>``, a run folder itself, or deeper
    (results copied from several hosts into one tree)."""
    found: dict[Path, RunDir] = {}

    def walk(folder: Path, depth: int) -> None:
        if (folder / "run.json").is_file():
            run = _read_run(folder, skipped)
            if run is not None:
                found[folder.resolve()] = run
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            if child.name not in ("cases", "samples", "logs", "work"):
                walk(child, depth + 1)

    for root in roots:
        if root.is_dir():
            walk(root, 0)
    return list(found.values())


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``30d``, ``12h``, ``2w`` or an ISO date -> the earliest start time to include."""
    if not text:
        return None
    now = now or utc_now()
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([hdw])\s*", text)
    if match:
        amount = float(match.group(1))
        unit = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}[match.group(2)]
        try:
            return now - amount * unit
        except (OverflowError, ValueError):  # ages beyond datetime's range (year 1)
            raise TrtbuildError(f"--since '{text[:40]}' reaches back before year 1; give an age like 30d.") from None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TrtbuildError(f"--since '{text}' is neither an age like 30d / 12h / 2w nor a date like 2026-01-31.") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
