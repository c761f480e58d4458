"""trtexec's statistics, reproduced exactly (sampleReporting.cpp, TensorRT 10.13 and 11.1).

trtexec stores every time as a C++ ``float`` and does its arithmetic in float32: the mean is a
``std::accumulate(..., 0.0F)`` over the sorted values, percentiles take a nearest-rank index computed in
float32 (so N=1000 gives p99 = sorted[990], not the float64 989), the median of an even count averages
the middle two; walltime, throughput and the total compute time are float expressions too (an integer
count meets a float and becomes a float). numpy.float32 reproduces each step bit for bit on x86-64
(no fused multiply-add; a build that fuses ``acc + diff * diff`` could differ in the CoV's last bit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DEFAULT_PERCENTILES: tuple[float, ...] = (90.0, 95.0, 99.0)
#: trtexec's "GPU compute time is unstable" threshold, in percent.
UNSTABLE_COV_PERCENT = 2.5
#: trtexec's "enqueue-bound" factor: enqueue.median > 0.8 * compute.median.
ENQUEUE_BOUND_FACTOR = 0.8


def _f32(values: Any) -> np.ndarray:
    import numpy as np

    return np.asarray(values, dtype=np.float32).ravel()


def percentile_index(p: float, n: int) -> int:
    """The index trtexec reads for percentile ``p`` of ``n`` sorted values (``findPercentile``)."""
    import numpy as np

    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile {p} is not in [0, 100]")
    one, hundred = np.float32(1.0), np.float32(100.0)
    exclude = int((one - np.float32(p) / hundred) * np.float32(n))  # int() truncates toward zero like the C cast
    return max(n - 1 - exclude, 0)


def percentile(sorted_values: Any, p: float) -> float:
    """trtexec's percentile: ``sorted[max(N-1-int((1-p/100)*N), 0)]`` in float32; +inf when empty."""
    values = _f32(sorted_values)
    if values.size == 0:
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile {p} is not in [0, 100]")
        return math.inf
    return float(values[percentile_index(p, int(values.size))])


def median(sorted_values: Any) -> float:
    """Middle element, or the float32 mean of the two middle elements for an even count."""
    import numpy as np

    values = _f32(sorted_values)
    n = int(values.size)
    if n == 0:
        return math.inf
    m = n // 2
    if n % 2:
        return float(values[m])
    return float((values[m - 1] + values[m]) / np.float32(2.0))


def mean(sorted_values: Any) -> float:
    """Float32 running sum in the given (sorted) order, divided by N in float32 (``std::accumulate(0.0F)``)."""
    import numpy as np

    values = _f32(sorted_values)
    if values.size == 0:
        return math.nan
    # cumsum accumulates strictly left to right in the requested dtype (np.sum would use pairwise summation).
    total = np.cumsum(values, dtype=np.float32)[-1]
    return float(total / np.float32(values.size))


def coeff_of_variation(sorted_values: Any, mean_value: float) -> float:
    """Population standard deviation over the mean, in percent (``findCoeffOfVariance``), in float32."""
    import numpy as np

    values = _f32(sorted_values)
    if values.size == 0:
        return 0.0
    m = np.float32(mean_value)
    if m == 0:
        return math.inf
    diff = values - m
    variance = np.cumsum(diff * diff, dtype=np.float32)[-1] / np.float32(values.size)
    return float(np.sqrt(variance) / m * np.float32(100.0))


def walltime_ms(first_h2d_start: float, last_d2h_end: float, *, float_stamps: bool = True) -> float:
    """``trace.back().d2hEnd - noWarmup->h2dStart``: float stamps subtracted in float.

    ``float_stamps=False`` (host-clock stamps in float64 ms) subtracts first and rounds once, the rule
    the per-query durations of host-clock runs follow too.
    """
    import numpy as np

    if float_stamps:
        return float(np.float32(last_d2h_end) - np.float32(first_h2d_start))
    return float(np.float32(last_d2h_end - first_h2d_start))


def throughput(queries: int, walltime: float, batch: int = 1) -> float:
    """``batchSize * timings.size() / walltimeMs * 1000``: the integer product becomes a float, then float
    division and product. trtexec's batch is 1 for explicit-batch engines (queries/s); with ``batch``
    the same expression gives samples/s."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):  # a zero walltime gives inf, as in C++
        return float(np.float32(batch * queries) / np.float32(walltime) * np.float32(1000))


def walltime_s(walltime: float) -> float:
    """``walltimeMs / 1000`` in float ("Total Host Walltime", "Timing trace has N queries over X s")."""
    import numpy as np

    return float(np.float32(walltime) / np.float32(1000))


def total_compute_s(mean_ms: float, queries: int) -> float:
    """``gpuComputeResult.mean * timings.size() / 1000`` in float ("Total GPU Compute Time")."""
    import numpy as np

    return float(np.float32(mean_ms) * np.float32(queries) / np.float32(1000))


@dataclass(frozen=True)
class MetricStats:
    """One line of trtexec's performance summary: min, max, mean, median, percentiles, CoV (all ms but CoV)."""

    min: float
    max: float
    mean: float
    median: float
    percentiles: dict[float, float] = field(default_factory=dict)
    coeff_var: float = 0.0
    count: int = 0

    def percentile(self, p: float) -> float:
        return self.percentiles[float(p)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "median": self.median,
            "percentiles": {format_percentile(p): v for p, v in self.percentiles.items()},
            "coeff_var": self.coeff_var,
            "count": self.count,
        }


def metric_stats(values: Any, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> MetricStats:
    """Statistics of one metric exactly as ``getPerformanceResult`` computes them (on a sorted copy)."""
    import numpy as np

    data = np.sort(_f32(values), kind="stable")
    if data.size == 0:
        return MetricStats(math.inf, math.inf, math.nan, math.inf,
                           {float(p): percentile(data, p) for p in percentiles}, 0.0, 0)  # fmt: skip
    avg = mean(data)
    return MetricStats(
        min=float(data[0]),
        max=float(data[-1]),
        mean=avg,
        median=median(data),
        percentiles={float(p): percentile(data, p) for p in percentiles},
        coeff_var=coeff_of_variation(data, avg),
        count=int(data.size),
    )


def format_number(value: float) -> str:
    """C++ ``ostream`` default formatting: 6 significant digits, general format (``0.812256``, ``1234.57``)."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def format_percentile(p: float) -> str:
    """The percentile label as trtexec prints it: ``99``, ``99.9``."""
    return f"{float(p):.6g}"


def parse_percentiles(text: str) -> tuple[float, ...]:
    """``--percentile=90,95,99`` -> (90.0, 95.0, 99.0); each must lie in [0, 100] (trtexec's check)."""
    from trtbuild.errors import SpecError

    values: list[float] = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise SpecError(f"--percentile takes numbers between 0 and 100 separated by commas, like 90,95,99; "
                            f"'{part}' is not a number.") from None  # fmt: skip
        if not 0.0 <= value <= 100.0:
            raise SpecError(f"--percentile value {part} is outside [0, 100]; 0 means the minimum, 100 the maximum.")
        values.append(value)
    return tuple(values)
