"""The regression gate: is tonight's case slower than its baseline, beyond noise and beyond a threshold?

For every gated metric (``latency`` by default) the gate compares the per-iteration samples of the
case with those of its baseline:

  ratio     median(tonight) / median(baseline) (or the p25 / p10 quantile: ``statistic``)
  CI        a percentile-bootstrap confidence interval of that ratio (both samples resampled with
            replacement, ``resamples`` times, fixed seed: the same data always gives the same verdict)
  rank test one-sided Mann-Whitney U (tonight > baseline), when scipy is installed and ``rank_test``

A metric regresses only when the CI's *lower* end is above the threshold (1.05 = "at least 5% slower,
with confidence") and, if the rank test ran, its p-value is below ``alpha``. Noise widens the CI and so
makes the gate quieter, never louder. Cases that failed to run and cases whose accuracy check failed
gate too. Exit codes: 0 pass, 1 regression (speed or accuracy), 2 usage or configuration error,
3 broken run (a case crashed, hung, ran out of memory or raised) -- 3 wins over 1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from trtbuild.nightly.store import GATE_SCHEMA, SCHEMA_VERSION, ResultsStore, RunDir, iso, utc_now
from trtbuild.nightly.suite import DEFAULT_GATE, backend_kind, resolve_thresholds

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

EXIT_PASS = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_BROKEN = 3

#: Verdicts a case can get, and which of them make a run a valid baseline for that case later.
VERDICTS = ("pass", "faster", "regression", "accuracy", "failed", "skipped", "no-baseline", "learning", "insufficient")
BASELINE_OK = ("pass", "faster", "no-baseline", "learning")
#: Environment fields whose change is named beside a verdict (software: the likely cause of a shift).
ENV_NOTES = ("tensorrt", "driver", "onnxruntime", "torch", "trtbuild", "python", "cuda")

# One definition of the gate's defaults: the suite file's [gate] table starts from it.
DEFAULT_SETTINGS: dict[str, Any] = DEFAULT_GATE


# --------------------------------------------------------------------------------------------------
# Statistics


def _subsample(values: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    # Beyond ``limit`` samples the bootstrap gets slow; a random subset keeps its CI honest (only wider).
    if values.size <= limit:
        return values
    return rng.choice(values, size=limit, replace=False)


#: Statistics the gate can compare: the median (default) or a low quantile, which contention on a shared
#: CPU host moves far less than the median (it slows some iterations, not the fastest ones).
STATISTICS = {"median": 50.0, "p25": 25.0, "p10": 10.0}


def _stat(values: np.ndarray, statistic: str, axis: int | None = None) -> Any:
    import numpy as np

    q = STATISTICS[statistic]
    return np.median(values, axis=axis) if q == 50.0 else np.percentile(values, q, axis=axis)


def bootstrap_ratio_ci(
    baseline: Any,
    current: Any,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    max_samples: int = 10000,
    statistic: str = "median",
) -> tuple[float, float, float]:
    """``(ratio, low, high)``: median(current) / median(baseline) and its percentile-bootstrap CI
    (``statistic`` "p25" or "p10" compares that quantile instead of the median)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = _subsample(np.asarray(baseline, dtype=np.float64), max_samples, rng)
    cur = _subsample(np.asarray(current, dtype=np.float64), max_samples, rng)
    if base.size == 0 or cur.size == 0:
        raise ValueError("bootstrap_ratio_ci needs samples on both sides")
    ratio = float(_stat(cur, statistic) / _stat(base, statistic))
    ratios = np.empty(resamples, dtype=np.float64)
    chunk = max(1, int(2_000_000 // max(base.size, cur.size)))  # bounded memory for long GPU runs
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        b = _stat(base[rng.integers(0, base.size, size=(n, base.size))], statistic, axis=1)
        c = _stat(cur[rng.integers(0, cur.size, size=(n, cur.size))], statistic, axis=1)
        ratios[start : start + n] = c / b
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return ratio, float(low), float(high)


def noise_aware_ratio_ci(
    baselines: list[Any],
    current: Any,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    max_samples: int = 10000,
    run_noise: float = 0.01,
    statistic: str = "median",
) -> tuple[float, float, float, float]:
    """``(ratio, low, high, noise)`` for tonight's samples against one or more baseline runs.

    Per-iteration samples only show the noise *within* a run; a process started on another night also
    differs by a run-level factor (clocks, memory layout, neighbours). The model: log(run median) =
    log(true median) + e, e ~ N(0, noise^2). ``noise`` is the spread of the log medians of the baseline
    runs (1.4826 x their median absolute deviation, robust to one odd run) when there are at least 3,
    never less than ``run_noise`` (the floor, also used when the history is shorter). Each bootstrap replicate resamples the iterations of every run, takes
    the median of the baseline run medians, and multiplies the ratio by exp(e'), e' ~ N(0, noise^2 (1 + 1/K)):
    tonight's own run effect plus the uncertainty of the baseline's mean over K runs. ``statistic`` "p25" or
    "p10" puts that quantile in place of each run's median.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    runs = [_subsample(np.asarray(b, dtype=np.float64), max_samples, rng) for b in baselines]
    cur = _subsample(np.asarray(current, dtype=np.float64), max_samples, rng)
    if not runs or any(r.size == 0 for r in runs) or cur.size == 0:
        raise ValueError("noise_aware_ratio_ci needs samples in every baseline run and in the current run")
    medians = np.array([_stat(r, statistic) for r in runs])
    center = float(np.median(medians))
    ratio = float(_stat(cur, statistic) / center)
    k = len(runs)
    noise = float(run_noise)
    if k >= 3:
        # Robust spread (1.4826 x MAD): one odd night in the history neither hides nor fakes a change.
        logs = np.log(medians)
        noise = max(noise, 1.4826 * float(np.median(np.abs(logs - np.median(logs)))))
    spread = noise * math.sqrt(1.0 + 1.0 / k)
    ratios = np.empty(resamples, dtype=np.float64)
    largest = max(max(r.size for r in runs), cur.size)
    chunk = max(1, int(2_000_000 // (largest * (k + 1))))
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        base_medians = np.stack([_stat(r[rng.integers(0, r.size, size=(n, r.size))], statistic, axis=1) for r in runs])
        base = np.median(base_medians, axis=0)
        now = _stat(cur[rng.integers(0, cur.size, size=(n, cur.size))], statistic, axis=1)
        ratios[start : start + n] = now / base * np.exp(rng.normal(0.0, spread, size=n) if spread else 0.0)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return ratio, float(low), float(high), noise


def rank_test_p(baseline: Any, current: Any, *, max_samples: int = 10000, seed: int = 0) -> float | None:
    """One-sided Mann-Whitney U p-value for "current is slower", or None without scipy."""
    try:
        from scipy.stats import mannwhitneyu
    except ImportError:
        return None
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    base = _subsample(np.asarray(baseline, dtype=np.float64), max_samples, rng)
    cur = _subsample(np.asarray(current, dtype=np.float64), max_samples, rng)
    return float(mannwhitneyu(cur, base, alternative="greater").pvalue)


@dataclass
class MetricVerdict:
    metric: str
    threshold: float
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float | None
    n_baseline: int
    n_current: int
    baseline_ms: float  # the statistic of the baseline (median over its runs)
    current_ms: float
    regression: bool
    faster: bool
    baseline_runs: int = 1
    run_noise: float = 0.0
    statistic: str = "median"

    def describe(self) -> str:
        p = f", p={self.p_value:.2g}" if self.p_value is not None else ""
        stat = "" if self.statistic == "median" else f" {self.statistic}"
        return (f"{self.metric}{stat} x{self.ratio:.3f} (CI {self.ci_low:.3f}-{self.ci_high:.3f}{p}; "
                f"{self.baseline_ms:.4g} -> {self.current_ms:.4g} ms over {self.baseline_runs} baseline "
                f"run(s), run noise {self.run_noise:.1%}, threshold {self.threshold:g})")  # fmt: skip


def compare_metric(metric: str, baselines: list[Any] | Any, current: Any, threshold: float,
                   settings: Mapping[str, Any]) -> MetricVerdict:  # fmt: skip
    """One metric of one case: noise-aware CI of the median ratio, rank test, verdict."""
    import numpy as np

    runs = [np.asarray(b, dtype=np.float64) for b in baselines] if isinstance(baselines, list) else \
        [np.asarray(baselines, dtype=np.float64)]  # fmt: skip
    cur = np.asarray(current, dtype=np.float64)
    statistic = str(settings.get("statistic", "median"))
    ratio, low, high, noise = noise_aware_ratio_ci(
        runs, cur, resamples=int(settings["resamples"]), confidence=float(settings["confidence"]),
        seed=int(settings["seed"]), max_samples=int(settings["max_samples"]), run_noise=float(settings["run_noise"]),
        statistic=statistic)
    p_value = rank_test_p(runs[0], cur, max_samples=int(settings["max_samples"]), seed=int(settings["seed"])) \
        if settings.get("rank_test", True) else None  # fmt: skip
    significant = p_value is None or p_value < float(settings["alpha"])
    regression = low > threshold and significant
    faster = high < 1.0 / threshold
    base_value = float(np.median([_stat(r, statistic) for r in runs]))
    return MetricVerdict(metric, threshold, ratio, low, high, p_value, int(sum(r.size for r in runs)), int(cur.size),
                         base_value, float(_stat(cur, statistic)), regression, faster, len(runs), noise,
                         statistic)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Verdicts


@dataclass
class CaseVerdict:
    case_id: str
    verdict: str
    reason: str = ""
    baseline_run: str | None = None
    metrics: list[MetricVerdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    accepted: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = {m.metric: {k: v for k, v in asdict(m).items() if k != "metric"} for m in self.metrics}
        return data


@dataclass
class GateResult:
    run_id: str
    cases: dict[str, CaseVerdict]
    baseline: str  # "auto" or the pinned run id
    settings: dict[str, Any]
    accepted: bool = False
    #: the history the gate read: runs considered, and run folders skipped as malformed (path -> why)
    history_runs: int = 0
    skipped_runs: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return exit_code_for(v.verdict for v in self.cases.values()) if not self.accepted else \
            (EXIT_BROKEN if any(v.verdict == "failed" for v in self.cases.values()) else EXIT_PASS)  # fmt: skip

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.cases.values():
            out[v.verdict] = out.get(v.verdict, 0) + 1
        return out

    def by_verdict(self, *verdicts: str) -> list[CaseVerdict]:
        return [v for v in self.cases.values() if v.verdict in verdicts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": GATE_SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "created_utc": iso(utc_now()),
            "baseline": self.baseline,
            "settings": self.settings,
            "accepted": self.accepted,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "history_runs": self.history_runs,
            "skipped_runs": self.skipped_runs,
            "cases": {k: v.to_dict() for k, v in self.cases.items()},
        }

    def summary_lines(self) -> list[str]:
        lines = []
        for v in self.cases.values():
            if v.verdict in ("regression", "accuracy", "failed", "faster"):
                detail = "; ".join(m.describe() for m in v.metrics if m.regression or m.faster) or v.reason
                extra = f" [{'; '.join(v.notes)}]" if v.notes else ""
                base = f" vs {v.baseline_run}" if v.baseline_run else ""
                lines.append(f"{v.verdict.upper():10s} {v.case_id}{base}: {detail}{extra}")
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        source = f"pinned baseline {self.baseline}" if self.baseline != "auto" else f"{self.history_runs} earlier run(s) read"
        if self.skipped_runs:
            source += f"; SKIPPED {len(self.skipped_runs)} malformed run(s): " + "; ".join(
                f"{path} ({why})" for path, why in self.skipped_runs.items())
        lines.append(f"gate: history: {source}")
        lines.append(f"gate: {counts or 'no cases'} -> exit {self.exit_code} ({EXIT_MEANING[self.exit_code]})")
        return lines


EXIT_MEANING = {EXIT_PASS: "pass", EXIT_REGRESSION: "regression", EXIT_USAGE: "usage error", EXIT_BROKEN: "broken run"}


def exit_code_for(verdicts: Iterable[str]) -> int:
    found = set(verdicts)
    if "failed" in found:
        return EXIT_BROKEN
    if found & {"regression", "accuracy"}:
        return EXIT_REGRESSION
    return EXIT_PASS


def settings_from(gate: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULT_SETTINGS, **(dict(gate) if gate else {})}


# --------------------------------------------------------------------------------------------------
# Baselines


def _eligible(run: RunDir, case_id: str) -> bool:
    gate = run.load_gate()
    if gate is None:
        return False  # a run that never finished its gate is nobody's baseline
    verdict = (gate.get("cases") or {}).get(case_id) or {}
    return verdict.get("verdict") in BASELINE_OK or bool(verdict.get("accepted"))


def find_baselines(store: ResultsStore, current: RunDir, record: Mapping[str, Any], *, limit: int = 5,
                   runs: list[RunDir] | None = None) -> list[tuple[RunDir, dict[str, Any]]]:  # fmt: skip
    """Up to ``limit`` earlier runs (newest first) of the same suite on the same device key where this case
    ran and passed the gate: its baseline and the history its run-to-run noise is measured on."""
    suite = current.record.get("suite", {}).get("name")
    key = (record.get("device") or {}).get("key")
    started = current.record.get("started_utc") or ""
    found: list[tuple[RunDir, dict[str, Any]]] = []
    for run in reversed(runs if runs is not None else list(store.iter_runs())):
        if len(found) >= limit:
            break
        if run.run_id == current.run_id or (run.record.get("started_utc") or "") > started:
            continue
        if run.record.get("suite", {}).get("name") != suite:
            continue
        summary = (run.record.get("cases") or {}).get(record["case_id"])
        if not summary or summary.get("status") != "ok":
            continue
        other = run.load_case(record["case_id"])
        if other is None or other.get("status") != "ok" or (other.get("device") or {}).get("key") != key:
            continue
        if _eligible(run, record["case_id"]):
            found.append((run, other))
            if _accepted(run, record["case_id"]):
                break  # an accepted change starts a new history: older runs no longer describe this case
    return found


def _accepted(run: RunDir, case_id: str) -> bool:
    gate = run.load_gate() or {}
    return bool(((gate.get("cases") or {}).get(case_id) or {}).get("accepted"))


def _notes(current: RunDir, record: Mapping[str, Any], base_run: RunDir, base: Mapping[str, Any]) -> list[str]:
    notes = []
    env_now = current.record.get("environment") or {}
    env_then = base_run.record.get("environment") or {}
    for key in ENV_NOTES:
        if env_now.get(key) != env_then.get(key):
            notes.append(f"{key} {env_then.get(key)} -> {env_now.get(key)}")
    if record.get("model_sha256") and base.get("model_sha256") and record["model_sha256"] != base["model_sha256"]:
        notes.append("the model file changed")
    if record.get("config_hash") != base.get("config_hash"):
        notes.append("the case's suite settings changed")
    if (record.get("device") or {}).get("key") != (base.get("device") or {}).get("key"):
        notes.append("baseline ran on another device")
    return notes


def gate_case(current: RunDir, record: Mapping[str, Any], settings: Mapping[str, Any], *,
              baselines: list[tuple[RunDir, dict[str, Any]]], pinned: bool = False) -> CaseVerdict:  # fmt: skip
    """The verdict of one case against its baseline runs (newest first; empty: none).

    Until ``min_history`` good runs exist the gate is *learning*: it computes and reports the ratios but
    does not fail, because it cannot yet tell this case's run-to-run noise (a pinned baseline is the
    user's explicit choice and gates at once)."""
    case_id = str(record["case_id"])
    status = record.get("status")
    if status == "failed":
        return CaseVerdict(case_id, "failed", str(record.get("reason") or "failed"))
    if status == "skipped":
        return CaseVerdict(case_id, "skipped", str(record.get("reason") or ""))
    accuracy = record.get("accuracy") or {}
    if accuracy and accuracy.get("passed") is False:
        verdict = CaseVerdict(case_id, "accuracy", str(accuracy.get("message") or "accuracy check failed"))
    else:
        verdict = CaseVerdict(case_id, "pass")
    if not baselines:
        if verdict.verdict == "pass":
            verdict.verdict, verdict.reason = "no-baseline", "no earlier good run of this case on this device"
        return verdict
    base_run, base_record = baselines[0]
    verdict.baseline_run = base_run.run_id
    verdict.notes = _notes(current, record, base_run, base_record)
    now_samples = current.load_samples(case_id, record)
    history = [run.load_samples(case_id, rec) for run, rec in baselines]
    thresholds = record.get("thresholds") or resolve_thresholds(settings["thresholds"], {},
                                                                backend_kind(str(record.get("backend", ""))))
    minimum = int(settings["min_samples"])
    short = []
    for metric, threshold in thresholds.items():
        b = now_samples.get(metric)
        past = [h[metric] for h in history if metric in h and h[metric].size >= minimum]
        if b is None or not any(metric in h for h in history):
            continue  # not measured by this backend (host-clock backends have no enqueue or transfers)
        if b.size < minimum or not past:
            short.append(f"{metric}: fewer than min_samples = {minimum} samples")
            continue
        verdict.metrics.append(compare_metric(metric, past, b, float(threshold), settings))
    if verdict.verdict == "accuracy":
        return verdict
    learning = not pinned and len(baselines) < int(settings.get("min_history", 3))
    if learning and verdict.metrics:
        verdict.verdict = "learning"
        verdict.reason = (f"{len(baselines)} of {int(settings.get('min_history', 3))} baseline runs: not gated yet; "
                          + "; ".join(m.describe() for m in verdict.metrics))  # fmt: skip
    elif any(m.regression for m in verdict.metrics):
        verdict.verdict = "regression"
        verdict.reason = "; ".join(m.describe() for m in verdict.metrics if m.regression)
    elif not verdict.metrics:
        verdict.verdict = "insufficient"
        verdict.reason = "; ".join(short) or "no gated metric was measured on both sides"
    elif all(m.faster for m in verdict.metrics):
        verdict.verdict = "faster"
        verdict.reason = "; ".join(m.describe() for m in verdict.metrics)
    return verdict


def gate_run(store: ResultsStore, run: RunDir, *, baseline: str | None = None, settings: Mapping[str, Any] | None = None,
             accept: bool = False, save: bool = True) -> GateResult:  # fmt: skip
    """Gate every case of ``run`` against its baseline (auto, or the pinned run ``baseline``); save gate.json."""
    chosen = settings_from(settings if settings is not None else run.record.get("gate_settings"))
    pinned = store.open_run(baseline) if baseline else None
    runs = list(store.iter_runs()) if pinned is None else []
    verdicts: dict[str, CaseVerdict] = {}
    for case_id, record in sorted(run.load_cases().items()):
        bases: list[tuple[RunDir, dict[str, Any]]] = []
        if pinned is not None:
            other = pinned.load_case(case_id)
            if other is not None and other.get("status") == "ok":
                bases = [(pinned, other)]
        elif record.get("status") == "ok":
            bases = find_baselines(store, run, record, limit=int(chosen["baseline_runs"]), runs=runs)
        verdict = gate_case(run, record, chosen, baselines=bases, pinned=pinned is not None)
        if accept and verdict.verdict in ("regression", "accuracy"):
            verdict.accepted = True
        verdicts[case_id] = verdict
    result = GateResult(run.run_id, verdicts, pinned.run_id if pinned else "auto", chosen, accept,
                        history_runs=max(len(runs) - 1, 0) if pinned is None else 1, skipped_runs=dict(store.skipped))
    if save:
        run.save_gate(result.to_dict())
        run.record["gate"] = {"exit_code": result.exit_code, "counts": result.counts(), "baseline": result.baseline,
                              "accepted": accept}  # fmt: skip
        run.record["exit_code"] = result.exit_code
        run.save()
    return result
