"""trtexec's statistics (sampleReporting.cpp; docs/bench.md), checked on crafted samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trtbuild.bench import stats
from trtbuild.bench.timing import CLOCK_CUDA, TimingMode, Traces, export_times_text, summarize


def shuffled(values: np.ndarray, seed: int = 1) -> np.ndarray:
    out = np.array(values, dtype=np.float32)
    np.random.default_rng(seed).shuffle(out)
    return out


# ---- percentiles: float32 nearest rank from the top


def test_percentile_indices_match_trtexec_float32_rule() -> None:
    assert stats.percentile_index(99, 1000) == 990  # float64 arithmetic would give 989
    assert stats.percentile_index(90, 1000) == 899  # float64 arithmetic would give 900
    assert stats.percentile_index(99, 100) == 99  # float64: 98
    assert stats.percentile_index(95, 1000) == 949
    assert stats.percentile_index(0, 10) == 0
    assert stats.percentile_index(100, 10) == 9
    assert stats.percentile_index(50, 1) == 0


def test_percentile_values_on_crafted_samples() -> None:
    values = shuffled(np.arange(1000) * 0.5 + 10.0)  # distinct values, index i holds 10 + i/2 once sorted
    ordered = np.sort(values)
    result = stats.metric_stats(values)
    assert result.percentile(99) == float(ordered[990])
    assert result.percentile(90) == float(ordered[899])
    assert result.percentile(95) == float(ordered[949])
    assert result.min == 10.0 and result.max == float(ordered[-1])


def test_percentile_edge_cases() -> None:
    assert stats.percentile([], 99) == math.inf
    with pytest.raises(ValueError):
        stats.percentile([1.0, 2.0], 101)
    with pytest.raises(ValueError):
        stats.percentile_index(-1, 5)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 5000), p=st.sampled_from([50.0, 90.0, 95.0, 99.0, 99.9, 33.3]))
def test_percentile_index_is_the_c_float_expression(n: int, p: float) -> None:
    # (int)((1.0f - p / 100.0f) * (float)N), evaluated step by step in float32.
    exclude = int(np.float32(np.float32(1.0) - np.float32(np.float32(p) / np.float32(100.0))) * np.float32(n))
    assert stats.percentile_index(p, n) == max(n - 1 - exclude, 0)


# ---- median, mean, coefficient of variation


def test_median_of_even_count_averages_the_middle_two() -> None:
    assert stats.median([1.0, 2.0, 3.0, 10.0]) == 2.5
    assert stats.metric_stats(shuffled([4.0, 1.0, 3.0, 2.0, 100.0, 0.5])).median == 2.5  # sorted: .5 1 2 3 4 100
    assert stats.median([1.0, 2.0, 7.0]) == 2.0
    assert stats.median([]) == math.inf


def test_mean_accumulates_in_float32_in_sorted_order() -> None:
    # 1e8 followed by many ones: a float32 running sum never moves (ulp(1e8) = 8), float64 would.
    values = np.array([1e8] + [1.0] * 1000, dtype=np.float32)
    expected = np.float32(1e8) / np.float32(1001)
    assert stats.mean(values[::-1].copy()) != stats.mean(values)  # order matters: ones first do add up
    # metric_stats sorts first (ascending): the ones come first, so the sum reaches 1e8 + 1000.
    sorted_sum = np.float32(0)
    for v in np.sort(values):
        sorted_sum = np.float32(sorted_sum + v)
    assert stats.metric_stats(values).mean == float(sorted_sum / np.float32(1001))
    assert float(expected) != float(sorted_sum / np.float32(1001))


def test_coefficient_of_variation_is_population_std_over_mean() -> None:
    values = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], dtype=np.float32)  # mean 5, population std 2
    result = stats.metric_stats(values)
    assert result.mean == 5.0
    assert result.coeff_var == pytest.approx(40.0, rel=1e-6)
    assert stats.coeff_of_variation([], 0.0) == 0.0
    assert stats.coeff_of_variation([0.0, 0.0], 0.0) == math.inf


def test_number_formatting_is_cpp_ostream_default() -> None:
    assert stats.format_number(0.8122561) == "0.812256"
    assert stats.format_number(1234.5678) == "1234.57"
    assert stats.format_number(0.00001) == "1e-05"
    assert stats.format_number(1234567.0) == "1.23457e+06"
    assert stats.format_number(0.0) == "0"
    assert stats.format_percentile(99.9) == "99.9" and stats.format_percentile(99) == "99"


def test_parse_percentiles() -> None:
    from trtbuild.errors import SpecError

    assert stats.parse_percentiles("90,95,99,99.9") == (90.0, 95.0, 99.0, 99.9)
    with pytest.raises(SpecError, match="outside"):
        stats.parse_percentiles("90,101")
    with pytest.raises(SpecError, match="not a number"):
        stats.parse_percentiles("p99")


# ---- the summary from GPU-style traces


def gpu_traces(compute_ms: list[float], *, start: float = 0.0, gap: float = 0.0, enq_ms: float = 0.01,
               h2d_ms: float = 0.0, d2h_ms: float = 0.0) -> Traces:  # fmt: skip
    rows = []
    t = start
    for c in compute_ms:
        h_s, h_e = t, t + h2d_ms
        c_s, c_e = h_e, h_e + c
        d_s, d_e = c_e, c_e + d2h_ms
        rows.append((c_s, c_s + enq_ms, h_s, h_e, c_s, c_e, d_s, d_e))
        t = d_e + gap
    return Traces.from_rows(CLOCK_CUDA, rows[::-1])  # collected out of order: summarize sorts by H2D start


def test_summary_cuts_warmup_by_compute_start_and_measures_walltime_from_gpu_stamps() -> None:
    traces = gpu_traces([1.0] * 30, start=0.0)  # compute starts at 0, 1, 2, ... ms
    mode = TimingMode(CLOCK_CUDA, "graph", False, True, 11)
    s = summarize(traces, mode=mode, warm_up_ms=10.0, batch=4)
    assert s.warmup_queries == 10  # compute starts 0..9 < 10 ms
    assert s.queries == 20
    assert s.walltime_ms == pytest.approx(20.0)  # last d2hEnd (30) - first measured h2dStart (10)
    assert s.throughput_qps == pytest.approx(1000.0)
    assert s.throughput_samples == pytest.approx(4000.0)
    assert s.total_compute_s == pytest.approx(0.02)
    assert s.h2d.median == 0.0 and s.d2h.median == 0.0
    assert s.latency.mean == pytest.approx(1.0)
    assert s.warnings == []


def test_summary_warnings_follow_trtexec_rules() -> None:
    mode11 = TimingMode(CLOCK_CUDA, "off", True, True, 11)
    enqueue_bound = summarize(gpu_traces([1.0] * 20, enq_ms=0.9), mode=mode11, warm_up_ms=0.0)
    assert any("bound by Enqueue Time" in w for w in enqueue_bound.warnings)
    assert any("--noCudaGraph" in w for w in enqueue_bound.warnings)
    h2d_bound = summarize(gpu_traces([1.0] * 20, h2d_ms=1.0), mode=mode11, warm_up_ms=0.0)
    assert any("host-to-device" in w for w in h2d_bound.warnings)
    d2h_bound = summarize(gpu_traces([1.0] * 20, d2h_ms=2.0), mode=mode11, warm_up_ms=0.0)
    assert any("device-to-host" in w for w in d2h_bound.warnings)
    unstable = summarize(gpu_traces([1.0, 1.2] * 10), mode=mode11, warm_up_ms=0.0)
    assert any("unstable, with coefficient of variance = 9.09091%" in w for w in unstable.warnings)
    mode10 = TimingMode(CLOCK_CUDA, "off", True, False, 10)
    enqueue10 = summarize(gpu_traces([1.0] * 20, enq_ms=0.9), mode=mode10, warm_up_ms=0.0)
    assert any("--useCudaGraph" in w for w in enqueue10.warnings)


def test_host_clock_summaries_never_claim_gpu_figures() -> None:
    from trtbuild.bench.report import summary_text
    from trtbuild.bench.timing import TimingOptions

    traces = Traces.from_host(np.arange(20, dtype=float), np.arange(20, dtype=float) + 0.5)
    s = summarize(traces, mode=TimingMode.host(TimingOptions()), warm_up_ms=5.0)
    text = summary_text(s)
    assert "GPU" not in text
    assert "Total Host Compute Time" in text
    assert s.queries == 15 and s.latency.median == 0.5


def test_export_times_has_trtexecs_exact_keys_and_layout() -> None:
    import json

    traces = gpu_traces([0.8125, 0.5, 0.25], start=0.0, h2d_ms=0.125, d2h_ms=0.0625)
    text = export_times_text(traces, warm_up_ms=0.5)  # the first query (compute start 0.125) is warm-up
    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert lines[1].startswith('  { "startEnqMs" : ') and lines[2].startswith(', { "startEnqMs" : ')
    entries = json.loads(text)
    assert len(entries) == 2
    assert list(entries[0]) == ["startEnqMs", "endEnqMs", "startH2dMs", "endH2dMs", "startComputeMs",
                                "endComputeMs", "startD2hMs", "endD2hMs", "h2dMs", "computeMs", "d2hMs",
                                "latencyMs"]  # fmt: skip
    first = entries[0]
    assert first["computeMs"] == 0.5 and first["h2dMs"] == 0.125 and first["d2hMs"] == 0.0625
    assert first["latencyMs"] == 0.6875
    assert '"computeMs" : 0.5, ' in lines[1]
