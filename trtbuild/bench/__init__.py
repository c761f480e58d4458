"""Benchmarks timed the way trtexec times them, and their tables, reports and plots.

- :mod:`~trtbuild.bench.stats`: trtexec's float32 statistics (percentiles, median, mean, CoV).
- :mod:`~trtbuild.bench.timing`: options, the host-clock loop, traces, the performance summary, --exportTimes.
- :mod:`~trtbuild.bench.report`: the console "Performance summary".
- :mod:`~trtbuild.bench.table`: LatencyTable (CSV, Markdown, JSON, Parquet).
- :mod:`~trtbuild.bench.plots`: latency distributions and batch sweeps (matplotlib, optional).
- :mod:`~trtbuild.bench.run`: ``bench(model, backends, shapes, batch_sweep, ...)``, the orchestration.

Names are imported lazily so that importing this package stays cheap. The package itself is callable:
``trtbuild.bench(model, backends=...)`` is :func:`trtbuild.bench.run.bench` (a function named like the
package would be shadowed by the package as soon as any ``trtbuild.bench.*`` module is imported).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from trtbuild._lazy import lazy_getattr

_API = {
    "bench": "trtbuild.bench.run:bench",
    "LatencyTable": "trtbuild.bench.table:LatencyTable",
    "TimingOptions": "trtbuild.bench.timing:TimingOptions",
    "TimingMode": "trtbuild.bench.timing:TimingMode",
    "Traces": "trtbuild.bench.timing:Traces",
    "Summary": "trtbuild.bench.timing:Summary",
    "summarize": "trtbuild.bench.timing:summarize",
    "time_host": "trtbuild.bench.timing:time_host",
    "metric_stats": "trtbuild.bench.stats:metric_stats",
}

__all__ = list(_API)


__getattr__ = lazy_getattr("trtbuild.bench", _API, globals())


def __dir__() -> list[str]:
    return sorted(__all__)


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``trtbuild.bench(...)``: see :func:`trtbuild.bench.run.bench`."""
        from trtbuild.bench.run import bench

        return bench(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
#: This package (``trtbuild._API`` points ``trtbuild.bench`` here, so it is always the callable package).
_self = sys.modules[__name__]
