"""Nightly benchmark suites: isolated cases, a results history, a noise-aware regression gate, reports.

``run_suite("suites/example.toml")`` runs every case of the suite in its own child process
(trtbuild.nightly.case) under a timeout and a memory watch, saves each case as it finishes
(trtbuild.nightly.store), gates the run against the last good one (trtbuild.nightly.gate) and returns
the outcome; ``trtbuild report`` (trtbuild.nightly.report) turns the history into Markdown and HTML.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import TrtbuildError
from trtbuild.fsutil import sigterm_cleanup

if TYPE_CHECKING:
    from trtbuild.nightly.gate import GateResult
    from trtbuild.nightly.store import ResultsStore, RunDir
    from trtbuild.nightly.suite import Case, Suite

log = logging.getLogger(__name__)

__all__ = ["RunOutcome", "run_suite", "plan_cases"]


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    exit_code: int
    gate: GateResult | None
    ran: list[str] = field(default_factory=list)  # cases run by this invocation
    skipped_resume: list[str] = field(default_factory=list)  # cases already recorded (--resume)
    statuses: dict[str, str] = field(default_factory=dict)


class _Terminated(Exception):
    """SIGTERM (cron or CI timeout): stop like Ctrl-C, marking the run interrupted."""


def plan_cases(suite: Suite, *, only: Sequence[str] | None = None, shard: str | tuple[int, int] | None = None) -> list[Case]:
    """The cases this invocation owns: the suite's cross product, filtered by ``only`` globs and ``shard``."""
    from trtbuild.nightly.suite import parse_shard, select_cases, shard_cases

    cases = select_cases(suite.cases(), only)
    if shard is not None:
        index, count = parse_shard(shard) if isinstance(shard, str) else shard
        cases = shard_cases(cases, index, count)
    return cases


def _timing_cache_path(store: ResultsStore, environment: Mapping[str, Any]) -> str:
    import re

    gpu = re.sub(r"[^A-Za-z0-9_.]+", "_", str(environment.get("gpu") or "nogpu"))
    trt = environment.get("tensorrt") or "notrt"
    return str((store.root / "timing-cache" / f"{gpu}-trt{trt}.cache").resolve())


def _find_resumable(store: ResultsStore, suite: Suite, host: str, shard: str | None, ref: str) -> RunDir:
    if ref not in ("", "latest"):
        run = store.open_run(ref)
        if run.record.get("suite", {}).get("name") != suite.name:
            raise TrtbuildError(f"Run {run.run_id} is of suite '{run.record.get('suite', {}).get('name')}', not "
                                f"'{suite.name}'; resume it with its own suite file.")  # fmt: skip
        return run
    candidates = [r for r in store.iter_runs() if r.record.get("suite", {}).get("name") == suite.name
                  and r.record.get("host") == host and r.record.get("shard") == shard]  # fmt: skip
    if not candidates:
        raise TrtbuildError(f"--resume: no earlier run of suite '{suite.name}' from host {host}"
                            f"{' shard ' + shard if shard else ''} under {store.runs_dir}; run without --resume.")  # fmt: skip
    return candidates[-1]


def run_suite(
    suite: str | os.PathLike[str] | Suite,
    *,
    results: str | os.PathLike[str] = "bench_results",
    resume: str | None = None,
    shard: str | None = None,
    only: Sequence[str] | None = None,
    baseline: str | None = None,
    accept: bool = False,
    gate: bool = True,
    keep_work: bool = False,
    timing_cache: str | None = None,
    environment: Mapping[str, Any] | None = None,
    child_env: Mapping[str, str] | None = None,
    show_progress: bool = False,
    command: Sequence[str] | None = None,
) -> RunOutcome:
    """Run a nightly suite and gate it; see docs/nightly.md.

    ``resume``: "latest" (the newest run of this suite from this host and shard) or a run id: cases that
    already have a record are not run again. ``baseline``: a run id to compare with instead of the last
    good run. ``accept``: this run becomes the baseline even where it regressed (after an intended change).
    ``environment`` replaces trtbuild.doctor.environment_fingerprint() (fleet simulations, tests);
    ``child_env`` adds variables to the case processes' environment.
    """
    from trtbuild.nightly.store import ResultsStore
    from trtbuild.nightly.suite import Suite, load_suite, parse_shard

    if not isinstance(suite, Suite):
        suite = load_suite(os.fspath(suite))
    shard_text = None
    if shard:
        index, count = parse_shard(shard)
        shard_text = f"{index}/{count}"
    cases = plan_cases(suite, only=only, shard=shard_text)
    if environment is None:
        from trtbuild.doctor import environment_fingerprint

        environment = environment_fingerprint()
    env = dict(environment)
    host = str(env.get("host") or "host")
    store = ResultsStore(os.fspath(results))
    cache = timing_cache or _timing_cache_path(store, env)
    # Everything a user can get wrong is checked before the first case runs (exit 2, nothing recorded).
    check_inputs(cases)
    if store.root.exists() and not store.root.is_dir():
        raise TrtbuildError(f"--results {store.root} is a file; give a folder (it is created if missing).")
    if baseline and gate:
        pinned = store.open_run(baseline)
        if pinned.record["suite"].get("name") != suite.name:
            raise TrtbuildError(f"--baseline {baseline} is a run of suite '{pinned.record['suite'].get('name')}', not "
                                f"'{suite.name}'; give a run of this suite (or drop --baseline).")  # fmt: skip
    with contextlib.ExitStack() as stack:
        return _run_locked(stack, store, suite, cases, env, host, shard_text, cache, resume=resume, only=only,
                           baseline=baseline, accept=accept, gate=gate, keep_work=keep_work, child_env=child_env,
                           show_progress=show_progress, command=command)  # fmt: skip


def check_inputs(cases: Sequence[Case]) -> None:
    """Refuse, before anything runs, suite models and data files that do not exist."""
    missing: dict[str, str] = {}
    for case in cases:
        paths = []
        if case.source_kind == "onnx":
            paths.append(("model", case.source))
        elif case.source_kind == "export" and case.source.rpartition(":")[0].endswith(".py"):
            paths.append(("export module", case.source.rpartition(":")[0]))
        if case.calib_data:
            paths.append(("calib_data", case.calib_data))
        if case.reference and case.reference.rpartition(":")[0].endswith(".py"):
            paths.append(("reference module", case.reference.rpartition(":")[0]))
        elif case.reference and ":" not in case.reference:
            paths.append(("reference", case.reference))
        for what, path in paths:
            if not Path(path).exists():
                missing.setdefault(path, f"{what} of {case.model}")
    if missing:
        listed = "; ".join(f"{path} ({what})" for path, what in missing.items())
        raise TrtbuildError(f"The suite names files that do not exist: {listed}; fix the paths in the suite file "
                            "(relative paths are read from the suite file's folder). Nothing was run.")  # fmt: skip


def _lock_run(stack: contextlib.ExitStack, run: RunDir) -> None:
    """Hold ``run``'s lock until the run ends: two processes must never run (or resume) the same run."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(run.path / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TrtbuildError(f"Run {run.run_id} is in use by another `trtbuild nightly` process (lock {run.path / '.lock'}); "
                            "wait for it to finish, or resume another run.") from None  # fmt: skip
    stack.callback(lock.release)


def _run_locked(stack: contextlib.ExitStack, store: ResultsStore, suite: Suite, cases: list[Case], env: dict[str, Any],
                host: str, shard_text: str | None, cache: str, *, resume: str | None, only: Sequence[str] | None,
                baseline: str | None, accept: bool, gate: bool, keep_work: bool, child_env: Mapping[str, str] | None,
                show_progress: bool, command: Sequence[str] | None) -> RunOutcome:  # fmt: skip
    from trtbuild import __version__
    from trtbuild.nightly.gate import EXIT_BROKEN, exit_code_for, gate_run
    from trtbuild.nightly.store import device_identity, iso, utc_now

    if resume is not None:
        run = _find_resumable(store, suite, host, shard_text, resume)
        _lock_run(stack, run)
        run = store.open_run(str(run.path))  # read again under the lock: another process may have just finished
        if run.record.get("suite", {}).get("hash") != suite.content_hash:
            log.warning("The suite file changed since run %s started; its recorded cases are kept as they are.", run.run_id)
        run.record.setdefault("resumed_utc", []).append(iso(utc_now()))
        run.record["status"] = "running"
        (run.path / "work").mkdir(exist_ok=True)
    else:
        record = {
            "suite": suite.to_dict(),
            "trtbuild": __version__,
            "host": host,
            "shard": shard_text,
            "only": list(only or []),
            "started_utc": iso(utc_now()),
            "finished_utc": None,
            "status": "running",
            "command": list(command) if command else None,
            "environment": env,
            "gate_settings": suite.gate,
            "timing_cache": cache,
            "planned": [c.id for c in cases],
            "cases": {},
            "engines": {},
        }
        run = store.create_run(record, host=host)
        _lock_run(stack, run)
    run.record["planned"] = sorted(set(run.record.get("planned", [])) | {c.id for c in cases})
    run.save()
    done = run.finished_cases()
    todo = [c for c in cases if c.id not in done]
    outcome = RunOutcome(run.run_id, run.path, 0, None, skipped_resume=[c.id for c in cases if c.id in done])
    if outcome.skipped_resume:
        log.info("Resuming %s: %d case(s) already recorded, %d to run.", run.run_id, len(outcome.skipped_resume), len(todo))
    log.info("Nightly run %s: suite %s, %d case(s) -> %s", run.run_id, suite.name, len(todo), run.path)
    extra_env = dict(child_env or {})
    threads = int(suite.timing.get("threads") or 0)
    if threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            extra_env.setdefault(name, str(threads))
    try:
        with sigterm_cleanup(_Terminated), _progress(show_progress, len(todo)) as advance:
            for i, case in enumerate(todo, 1):
                advance(case.id)
                record = _run_one(run, case, env, cache, extra_env, device_identity(env, case.backend))
                outcome.ran.append(case.id)
                _log_case(i, len(todo), record)
    except (KeyboardInterrupt, _Terminated):
        run.record["status"] = "interrupted"
        run.record["finished_utc"] = iso(utc_now())
        run.save()
        log.warning("Run %s interrupted; `trtbuild nightly %s --resume` finishes it.", run.run_id, suite.path)
        raise KeyboardInterrupt from None
    run.record["status"] = "complete"
    run.record["finished_utc"] = iso(utc_now())
    run.save()
    statuses = {cid: str(info.get("status")) for cid, info in run.record.get("cases", {}).items()}
    outcome.statuses = statuses
    if gate:
        outcome.gate = gate_run(store, run, baseline=baseline, settings=suite.gate, accept=accept)
        outcome.exit_code = outcome.gate.exit_code
    else:
        outcome.exit_code = EXIT_BROKEN if exit_code_for(statuses.values()) == EXIT_BROKEN else 0
        run.record["exit_code"] = outcome.exit_code
        run.save()
    run.write_case_table()
    if not keep_work:
        shutil.rmtree(run.work, ignore_errors=True)
    return outcome


def _run_one(run: RunDir, case: Case, env: Mapping[str, Any], cache: str, extra_env: Mapping[str, str],
             device: Mapping[str, str]) -> dict[str, Any]:  # fmt: skip
    """One case in its child process(es); the record is saved whatever happened to the children.

    With ``repeats = N`` the case is timed in N fresh processes one after another (the first also
    prepares, builds and compares; the others reuse its files) and their iterations are pooled: one
    process's median carries its own process-level offset, N of them average it out.
    """
    from trtbuild.fsutil import atomic_write_json
    from trtbuild.nightly.isolate import case_command, python_child_env, resolve_memory_limit, run_isolated
    from trtbuild.nightly.store import CASE_SCHEMA, SCHEMA_VERSION, iso, utc_now

    work = run.work
    case_file = work / "cases" / f"{case.id}.json"
    result_file = work / "results" / f"{case.id}.json"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    data = case.to_dict()
    data.update({"work_dir": str(work.resolve()), "timing_cache": cache, "environment": dict(env), "run_id": run.run_id})
    log_path = run.log_path(case.id)
    with contextlib.suppress(FileNotFoundError):
        log_path.unlink()  # a re-run (after --resume) starts a fresh log; repeats append to it
    started = utc_now()
    timeout = float(case.limits.get("timeout_s") or 900.0)
    memory = resolve_memory_limit(case.limits.get("memory_mib", "auto"))
    repeats = max(1, int(case.timing.get("repeats") or 1))
    processes: list[dict[str, Any]] = []
    first: dict[str, Any] = {}
    failure: str | None = None
    merged: dict[str, list[float]] = {}
    per_repeat: dict[str, list[float]] = {}
    for repeat in range(repeats):
        if repeat:
            prep = (first.get("steps") or {}).get("prepare") or {}
            data.update(repeat=repeat, prepared={k: prep.get(k) for k in ("onnx", "candidate", "sha256", "shapes")})
        atomic_write_json(case_file, data)
        with contextlib.suppress(FileNotFoundError):
            result_file.unlink()
        child = run_isolated(case_command(case_file, result_file), timeout_s=timeout, memory_mib=memory,
                             log_path=log_path, env=python_child_env(extra_env))  # fmt: skip
        processes.append({**child.to_dict(), "repeat": repeat})
        result = _read_result(result_file)
        where = f"repeat {repeat + 1}/{repeats}: " if repeats > 1 else ""
        if not child.ok or not result:
            failure = where + (child.reason or "the case process exited without writing a result")
            break
        if repeat == 0:
            first = result
        if result.get("status") != "ok":
            if repeat:  # the first repeat ran, a later one did not: the case is broken, not skipped
                failure = where + str(result.get("reason") or result.get("status"))
            break
        for metric, values in (result.get("samples") or {}).items():
            merged.setdefault(metric, []).extend(values)
            per_repeat.setdefault(metric, []).append(_median(values))
        if repeats > 1:
            count = len(next(iter((result.get("samples") or {"x": []}).values())))
            merged.setdefault("repeat", []).extend([float(repeat)] * count)
    record: dict[str, Any] = {
        "schema": CASE_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run_id": run.run_id,
        "case_id": case.id,
        "suite": case.suite,
        "model": case.model,
        "source": case.source,
        "backend": case.backend,
        "precision": case.precision,
        "shape": case.shape.label,
        "config_hash": case.config_hash(),
        "thresholds": case.thresholds,
        "device": dict(device),
        "started_utc": iso(started),
        "finished_utc": iso(utc_now()),
        "process": processes[-1],
        "log": f"logs/{case.id}.log",
    }
    if repeats > 1:
        record["processes"] = processes
    for key in ("status", "reason", "failed_step", "steps", "shapes", "model_sha256", "engine", "accuracy", "bench",
                "runner", "test_hooks"):  # fmt: skip
        if key in first:
            record[key] = first[key]
    samples = None
    if failure is not None:
        record.update(status="failed", reason=failure, failed_step=_last_step(log_path))
    elif first.get("status") == "ok" and merged:
        samples = merged
        record["metrics"] = metric_summaries({k: v for k, v in merged.items() if k != "repeat"})
        if repeats > 1:
            record["repeat_medians"] = per_repeat
    run.save_case(record, samples)
    return record


def _read_result(path: Path) -> dict[str, Any]:
    """The case process's result, or {} (the case then fails with "exited without writing a result")."""
    from trtbuild.schema import AnyValue, ListOf, MapOf, Nullable, Obj, Real, Str, problem

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    schema = Obj({"status": Str, "reason": Nullable(AnyValue), "samples": Nullable(MapOf(ListOf(Nullable(Real)))),
                  "steps": Nullable(MapOf(AnyValue))}, required=("status",))  # fmt: skip
    why = problem(data, schema)
    if why is not None:
        log.warning("Ignoring the malformed case result %s (%s).", path, why)
        return {}
    return data  # type: ignore[no-any-return]


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return float("nan")
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2.0


def metric_summaries(samples: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """min / p10 / p25 / median / mean / p90 / p99 / max / count per sampled metric (ms), for reports and trends."""
    import numpy as np

    out: dict[str, dict[str, float]] = {}
    for metric, values in samples.items():
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        p10, p25, p50, p90, p99 = np.percentile(v, [10, 25, 50, 90, 99])
        out[metric] = {"min": float(v.min()), "p10": float(p10), "p25": float(p25), "median": float(p50),
                       "mean": float(v.mean()), "p90": float(p90), "p99": float(p99), "max": float(v.max()),
                       "count": int(v.size)}  # fmt: skip
    return out


def _last_step(log_path: Path) -> str | None:
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    steps = [ln.rsplit("step ", 1)[1].strip() for ln in lines if "] step " in ln]
    return steps[-1] if steps else "start"


def _log_case(i: int, total: int, record: Mapping[str, Any]) -> None:
    status = record.get("status")
    processes = record.get("processes") or [record.get("process") or {}]
    seconds = sum(float(p.get("wall_s") or 0.0) for p in processes)
    reason = str(record.get("reason") or "")
    short = reason if len(reason) <= 110 else reason[:109] + "…"
    if status == "ok":
        metrics = record.get("metrics") or {}
        times = ", ".join(f"{m} {metrics[m]['median']:.4g} ms" for m in ("latency", "cpu") if m in metrics)
        acc = record.get("accuracy") or {}
        acc_text = "" if not acc else (", accuracy ok" if acc.get("passed") else ", ACCURACY FAILED")
        log.info("[%d/%d] %s: ok, median %s%s (%.1f s)", i, total, record["case_id"], times, acc_text, seconds)
    elif status == "skipped":
        log.info("[%d/%d] %s: skipped: %s", i, total, record["case_id"], short)
    else:
        log.warning("[%d/%d] %s: FAILED%s: %s (log: %s)", i, total, record["case_id"],
                    f" in {record['failed_step']}" if record.get("failed_step") else "", short,
                    record.get("log"))  # fmt: skip


class _progress:
    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.total = total
        self.bar: Any = None
        self.task: Any = None
        self.count = 0

    def __enter__(self) -> Any:
        if self.enabled:
            from trtbuild.console import progress

            self.bar = progress()
            self.bar.__enter__()
            self.task = self.bar.add_task("nightly", total=self.total)
        return self.advance

    def advance(self, label: str) -> None:
        if self.bar is not None:
            if self.count:
                self.bar.advance(self.task)
            self.bar.update(self.task, description=f"nightly {label}")
        self.count += 1

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            if exc[0] is None and self.count:
                self.bar.advance(self.task)
            self.bar.__exit__(*exc)
