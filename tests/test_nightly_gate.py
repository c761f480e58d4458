"""The regression gate on synthetic per-iteration samples: statistics, verdicts, baselines, exit codes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trtbuild.errors import TrtbuildError
from trtbuild.nightly.gate import (
    EXIT_BROKEN,
    EXIT_PASS,
    EXIT_REGRESSION,
    bootstrap_ratio_ci,
    compare_metric,
    exit_code_for,
    gate_run,
    noise_aware_ratio_ci,
    rank_test_p,
    settings_from,
)
from trtbuild.nightly.store import CASE_SCHEMA, SCHEMA_VERSION, ResultsStore, RunDir, iso

T0 = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)
CPU = {"host": "hostA", "platform": "Linux-x86_64", "cpu": "Test CPU", "tensorrt": None, "driver": None}


def samples(median: float, n: int = 300, seed: int = 0, spread: float = 0.04) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return median * rng.lognormal(0.0, spread, n)


def fake_run(store: ResultsStore, night: int, cases: dict[str, Any], *, env: dict[str, Any] | None = None,
             suite: str = "s", thresholds: dict[str, float] | None = None) -> RunDir:  # fmt: skip
    """A run started ``night`` days after T0 whose cases are ``{id: latency samples | "failed" | "skipped" |
    ("accuracy", samples)}``; written through the store like a real run."""
    env = dict(env or CPU)
    run = store.create_run({"suite": {"name": suite, "hash": "x"}, "host": env["host"], "shard": None,
                            "started_utc": iso(T0 + timedelta(days=night)), "status": "complete",
                            "environment": env, "cases": {}}, host=env["host"])  # fmt: skip
    for case_id, value in cases.items():
        record: dict[str, Any] = {"schema": CASE_SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": run.run_id,
                                  "case_id": case_id, "suite": suite, "model": case_id.split("-")[0], "backend": "ort",
                                  "precision": "fp32", "shape": "b1", "config_hash": "c", "log": "logs/x.log",
                                  "thresholds": thresholds or {"latency": 1.05},
                                  "device": {"key": f"cpu|{env['platform']}|{env['cpu']}", "label": env["cpu"]}}  # fmt: skip
        data = None
        if isinstance(value, str):
            record.update(status=value, reason=f"synthetic {value}")
        elif isinstance(value, tuple):
            record.update(status="ok", accuracy={"passed": False, "message": "max abs 0.3 > atol"})
            data = {"latency": list(value[1])}
        else:
            record["status"] = "ok"
            data = {"latency": list(value)}
        run.save_case(record, data)
    return run


def nightly(store: ResultsStore, night: int, cases: dict[str, Any], **kwargs: Any) -> tuple[RunDir, Any]:
    run = fake_run(store, night, cases, **kwargs)
    return run, gate_run(store, run)


# --------------------------------------------------------------------------------------------------
# Statistics


def test_bootstrap_is_deterministic_and_covers_the_true_ratio() -> None:
    base, cur = samples(1.0, seed=1), samples(1.10, seed=2)
    first = bootstrap_ratio_ci(base, cur, seed=7)
    assert first == bootstrap_ratio_ci(base, cur, seed=7)
    ratio, low, high = first
    assert low < ratio < high
    assert low < 1.10 < high
    assert low > 1.05  # 300 samples at 4% spread resolve a 10% shift


def test_bootstrap_subsamples_huge_inputs_without_running_out_of_memory() -> None:
    ratio, low, high = bootstrap_ratio_ci(samples(1.0, 200_000), samples(1.0, 200_000, seed=3), resamples=300,
                                          max_samples=5000)  # fmt: skip
    assert low < 1.0 < high and abs(ratio - 1.0) < 0.01


def test_noise_aware_interval_widens_with_the_run_to_run_spread_seen_in_history() -> None:
    cur = samples(1.0, seed=9)
    quiet = [samples(1.0 * f, seed=i) for i, f in enumerate((1.0, 1.005, 0.995, 1.0))]
    noisy = [samples(1.0 * f, seed=i) for i, f in enumerate((1.0, 1.08, 0.93, 1.05))]
    _, lo_q, hi_q, noise_q = noise_aware_ratio_ci(quiet, cur, run_noise=0.01)
    _, lo_n, hi_n, noise_n = noise_aware_ratio_ci(noisy, cur, run_noise=0.01)
    assert noise_q == pytest.approx(0.01)  # the floor: the history is quieter than that
    assert noise_n > 0.05
    assert hi_n - lo_n > 2 * (hi_q - lo_q)


def test_one_baseline_run_uses_the_noise_floor_only() -> None:
    base, cur = samples(1.0, seed=1), samples(1.0, seed=2)
    _, low0, high0, _ = noise_aware_ratio_ci([base], cur, run_noise=0.0)
    plain = bootstrap_ratio_ci(base, cur)
    assert (low0, high0) == pytest.approx(plain[1:], abs=0.01)
    _, low1, high1, noise = noise_aware_ratio_ci([base], cur, run_noise=0.02)
    assert noise == 0.02 and low1 < low0 and high1 > high0


def test_rank_test_sees_a_shift_and_not_its_absence() -> None:
    pytest.importorskip("scipy")
    p_shift = rank_test_p(samples(1.0, seed=1), samples(1.1, seed=2))
    p_same = rank_test_p(samples(1.0, seed=1), samples(1.0, seed=2))
    assert p_shift is not None and p_shift < 1e-6
    assert p_same is not None and p_same > 0.01


def test_metric_verdicts() -> None:
    settings = settings_from(None)
    slow = compare_metric("latency", [samples(1.0, seed=1)], samples(1.10, seed=2), 1.05, settings)
    same = compare_metric("latency", [samples(1.0, seed=1)], samples(1.0, seed=2), 1.05, settings)
    fast = compare_metric("latency", [samples(1.0, seed=1)], samples(0.85, seed=2), 1.05, settings)
    small = compare_metric("latency", [samples(1.0, seed=1)], samples(1.03, seed=2), 1.05, settings)
    assert slow.regression and not slow.faster and slow.ci_low > 1.05
    assert not same.regression and not same.faster
    assert fast.faster and not fast.regression
    assert not small.regression  # 3% slower is below the 5% threshold: not a regression however sure


# --------------------------------------------------------------------------------------------------
# Runs, baselines, verdicts


def test_five_unchanged_nights_raise_nothing_and_a_10_percent_slowdown_is_flagged_alone(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    jitter = (1.0, 1.006, 0.995, 1.004, 0.998)  # run-to-run drift of a quiet GPU host
    for night, f in enumerate(jitter):
        run, gate = nightly(store, night, {"a-fp32-ort-b1": samples(2.0 * f, seed=night),
                                           "b-fp32-ort-b1": samples(0.5 * f, seed=100 + night)})  # fmt: skip
        assert not gate.by_verdict("regression"), gate.summary_lines()
        assert gate.exit_code == EXIT_PASS
        assert set(gate.counts()) <= ({"no-baseline", "learning"} if night < 3 else {"pass"})
    run, gate = nightly(store, 5, {"a-fp32-ort-b1": samples(2.0 * 1.10, seed=50),
                                   "b-fp32-ort-b1": samples(0.5, seed=150)})  # fmt: skip
    assert [v.case_id for v in gate.by_verdict("regression")] == ["a-fp32-ort-b1"]
    assert gate.cases["b-fp32-ort-b1"].verdict == "pass"
    verdict = gate.cases["a-fp32-ort-b1"]
    assert verdict.metrics[0].baseline_runs == 5 and verdict.metrics[0].ratio == pytest.approx(1.10, abs=0.02)
    assert gate.exit_code == EXIT_REGRESSION
    saved = run.load_gate()
    assert saved is not None and saved["cases"]["a-fp32-ort-b1"]["verdict"] == "regression"
    assert run.record["exit_code"] == EXIT_REGRESSION


def test_noisy_history_makes_the_gate_quieter_not_louder(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    for night, f in enumerate((1.0, 1.03, 0.97, 1.04, 0.96)):  # a host that drifts +-4% from night to night
        _, gate = nightly(store, night, {"a-fp32-ort-b1": samples(1.0 * f, seed=night)})
        assert not gate.by_verdict("regression")
    _, gate = nightly(store, 5, {"a-fp32-ort-b1": samples(1.10, seed=9)})
    verdict = gate.cases["a-fp32-ort-b1"]
    assert verdict.verdict == "pass"  # a 10% step is within what this host does anyway: not confirmed
    assert verdict.metrics[0].run_noise > 0.03
    assert verdict.metrics[0].ci_low < 1.05 < verdict.metrics[0].ratio


def test_a_declared_noise_floor_quiets_a_host_without_history(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    nightly(store, 0, {"a-fp32-ort-b1": samples(1.0, seed=0)})
    run = fake_run(store, 1, {"a-fp32-ort-b1": samples(1.10, seed=1)})
    assert gate_run(store, run, settings={"min_history": 1}, save=False).cases["a-fp32-ort-b1"].verdict == "regression"
    quiet = gate_run(store, run, settings={"min_history": 1, "run_noise": 0.05}, save=False).cases["a-fp32-ort-b1"]
    assert quiet.verdict == "pass" and quiet.metrics[0].run_noise == 0.05


def history(store: ResultsStore, nights: int = 3, median: float = 1.0, case: str = "a-fp32-ort-b1") -> None:
    for night in range(nights):
        nightly(store, night, {case: samples(median, seed=1000 + night)})


def test_the_gate_learns_before_it_fails_and_a_persistent_regression_stays_flagged(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    _, gate = nightly(store, 0, {"a-fp32-ort-b1": samples(1.0, seed=0)})
    assert gate.cases["a-fp32-ort-b1"].verdict == "no-baseline"
    _, gate = nightly(store, 1, {"a-fp32-ort-b1": samples(1.3, seed=1)})
    verdict = gate.cases["a-fp32-ort-b1"]
    assert verdict.verdict == "learning" and "1 of 3 baseline runs" in verdict.reason
    assert verdict.metrics[0].ratio == pytest.approx(1.3, abs=0.03) and gate.exit_code == EXIT_PASS
    store = ResultsStore(tmp_path / "b")
    history(store)
    for night in range(3, 8):  # the same 25% regression, night after night: flagged every time
        _, gate = nightly(store, night, {"a-fp32-ort-b1": samples(1.25, seed=night)})
        assert gate.cases["a-fp32-ort-b1"].verdict == "regression", night


def test_one_odd_first_night_does_not_cascade_into_alarms(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    medians = [0.8, 1.0, 1.01, 0.99, 1.0, 1.005, 0.995]  # the very first night ran 20% fast
    for night, m in enumerate(medians):
        _, gate = nightly(store, night, {"a-fp32-ort-b1": samples(m, seed=night)})
        assert gate.cases["a-fp32-ort-b1"].verdict in ("no-baseline", "learning", "pass"), (night, gate.summary_lines())


def test_a_regressed_run_is_not_the_next_baseline_unless_accepted(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    history(store)
    bad, gate = nightly(store, 3, {"a-fp32-ort-b1": samples(1.3, seed=1)})
    assert gate.cases["a-fp32-ort-b1"].verdict == "regression"
    _, gate = nightly(store, 4, {"a-fp32-ort-b1": samples(1.3, seed=2)})
    assert gate.cases["a-fp32-ort-b1"].verdict == "regression"  # still against nights 0-2
    assert gate.cases["a-fp32-ort-b1"].baseline_run != bad.run_id
    accepted = fake_run(store, 5, {"a-fp32-ort-b1": samples(1.3, seed=3)})
    gate = gate_run(store, accepted, accept=True)
    assert gate.cases["a-fp32-ort-b1"].accepted and gate.exit_code == EXIT_PASS
    _, gate = nightly(store, 6, {"a-fp32-ort-b1": samples(1.3, seed=4)})
    assert gate.cases["a-fp32-ort-b1"].baseline_run == accepted.run_id
    assert gate.cases["a-fp32-ort-b1"].verdict != "regression"


def test_pinned_baseline(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    first, _ = nightly(store, 0, {"a-fp32-ort-b1": samples(1.0, seed=0)})
    nightly(store, 1, {"a-fp32-ort-b1": samples(1.2, seed=1)})
    run = fake_run(store, 2, {"a-fp32-ort-b1": samples(1.2, seed=2)})  # a pinned baseline gates at once
    with pytest.raises(TrtbuildError, match="give more of the run id"):
        gate_run(store, run, baseline=first.run_id[:4])  # all three runs share the year
    with pytest.raises(TrtbuildError, match="No nightly run"):
        gate_run(store, run, baseline="nope")
    gate = gate_run(store, run, baseline=first.run_id[:-1])
    assert gate.baseline == first.run_id
    assert gate.cases["a-fp32-ort-b1"].verdict == "regression"
    assert gate.cases["a-fp32-ort-b1"].baseline_run == first.run_id


def test_other_devices_and_suites_are_not_baselines(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    nightly(store, 0, {"a-fp32-ort-b1": samples(1.0, seed=0)}, env={**CPU, "cpu": "Other CPU"})
    nightly(store, 1, {"a-fp32-ort-b1": samples(1.0, seed=0)}, suite="other")
    _, gate = nightly(store, 2, {"a-fp32-ort-b1": samples(1.5, seed=1)})
    assert gate.cases["a-fp32-ort-b1"].verdict == "no-baseline"
    # Another host with the same CPU does share the baseline (keys are host-independent).
    _, gate = nightly(store, 3, {"a-fp32-ort-b1": samples(1.5, seed=2)}, env={**CPU, "host": "hostB"})
    assert gate.cases["a-fp32-ort-b1"].verdict == "learning"
    assert gate.cases["a-fp32-ort-b1"].metrics[0].ratio == pytest.approx(1.0, abs=0.02)


def test_failed_accuracy_skipped_and_short_cases(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    for night in range(3):
        nightly(store, night, {"ok-fp32-ort-b1": samples(1.0, seed=night), "acc-fp32-ort-b1": samples(1.0)})
    _, gate = nightly(store, 3, {"ok-fp32-ort-b1": samples(1.0, seed=1), "acc-fp32-ort-b1": ("accuracy", samples(1.0)),
                                 "skip-fp32-trt-b1": "skipped"})  # fmt: skip
    assert gate.cases["acc-fp32-ort-b1"].verdict == "accuracy"
    assert gate.cases["skip-fp32-trt-b1"].verdict == "skipped"
    assert gate.exit_code == EXIT_REGRESSION
    _, gate = nightly(store, 4, {"ok-fp32-ort-b1": samples(1.5, seed=2), "crash-fp32-ort-b1": "failed"})
    assert gate.cases["ok-fp32-ort-b1"].verdict == "regression"
    assert gate.cases["crash-fp32-ort-b1"].verdict == "failed"
    assert gate.exit_code == EXIT_BROKEN  # a broken run wins over a regression
    _, gate = nightly(store, 5, {"ok-fp32-ort-b1": samples(1.0, n=4, seed=3)})
    assert gate.cases["ok-fp32-ort-b1"].verdict == "insufficient"


def test_metrics_not_measured_by_a_backend_are_not_compared(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    thresholds = {"latency": 1.05, "enqueue": 1.05}  # host-clock backends have no enqueue samples
    nightly(store, 0, {"a-fp32-ort-b1": samples(1.0)}, thresholds=thresholds)
    _, gate = nightly(store, 1, {"a-fp32-ort-b1": samples(1.0, seed=1)}, thresholds=thresholds)
    assert [m.metric for m in gate.cases["a-fp32-ort-b1"].metrics] == ["latency"]


def test_environment_changes_are_named_beside_the_verdict(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    for night in range(3):
        nightly(store, night, {"a-fp32-ort-b1": samples(1.0, seed=night)}, env={**CPU, "onnxruntime": "1.20"})
    _, gate = nightly(store, 3, {"a-fp32-ort-b1": samples(1.3, seed=9)}, env={**CPU, "onnxruntime": "1.21"})
    assert gate.cases["a-fp32-ort-b1"].verdict == "regression"
    assert "onnxruntime 1.20 -> 1.21" in gate.cases["a-fp32-ort-b1"].notes
    assert any("onnxruntime 1.20 -> 1.21" in line for line in gate.summary_lines())


def test_exit_codes() -> None:
    assert exit_code_for(["pass", "no-baseline", "learning", "skipped", "faster", "insufficient"]) == EXIT_PASS
    assert exit_code_for(["pass", "regression"]) == EXIT_REGRESSION
    assert exit_code_for(["accuracy"]) == EXIT_REGRESSION
    assert exit_code_for(["regression", "failed"]) == EXIT_BROKEN
