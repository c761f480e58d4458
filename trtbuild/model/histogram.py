"""|x| histograms of activations, merged batch by batch in bounded memory, for INT8 range search.

ONNX Runtime's histogram collector keeps the first batch's bin width and appends bins when a later
batch reaches further: one quiet first batch (silence in audio, a blank page) followed by a loud one
makes millions of bins and a range search that never ends. Here every tensor keeps a fixed number of
bins over ``[0, max seen]``; when a batch reaches further, the old counts are re-binned onto the wider
range (each old bin's count goes to the new bin holding its centre), so memory and search time do not
depend on the data. Only one batch of activations is held at a time.

Re-binning is approximate, and the entropy threshold is sensitive to it: its KL curve is often flat,
so one bin more or less moves the minimum by up to 10 % on a detector and 40 % on the corpus. Range
searches therefore call :meth:`AbsHistogram.widen` on every batch first and :meth:`AbsHistogram.add`
in a second pass: the ranges are final before anything is counted, and the counts equal one
histogram over all samples at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DEFAULT_BINS = 2048


@dataclass
class AbsHistogram:
    bins: int = DEFAULT_BINS
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    amax: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, values: np.ndarray) -> None:
        import numpy as np

        flat, peak = _finite_abs(values)
        if flat.size == 0:
            return
        old = self.counts.get(name)
        top = self.amax.get(name, 0.0)
        if old is None or peak > top:  # a range set by widen() is kept: binned once, never re-binned
            new_top = max(peak, top, float(np.finfo(np.float32).tiny))
            counts = np.zeros(self.bins, dtype=np.int64)
            if old is not None and top > 0:
                centres = (np.arange(self.bins) + 0.5) * (top / self.bins)
                index = np.minimum((centres / new_top * self.bins).astype(np.int64), self.bins - 1)
                counts += np.bincount(index, weights=old, minlength=self.bins).astype(np.int64)
            self.counts[name], self.amax[name], top = counts, new_top, new_top
        hist, _ = np.histogram(flat, bins=self.bins, range=(0.0, top))
        self.counts[name] += hist

    def widen(self, name: str, values: np.ndarray) -> None:
        """Extend ``name``'s range to cover ``values`` without counting them: a first pass over all batches
        fixes every range, so the counting pass bins each batch once, over the final range."""
        import numpy as np

        flat, peak = _finite_abs(values)
        if flat.size:
            self.amax[name] = max(self.amax.get(name, 0.0), peak, float(np.finfo(np.float32).tiny))

    def edges(self, name: str) -> np.ndarray:
        import numpy as np

        return np.linspace(0.0, self.amax[name], self.bins + 1, dtype=np.float64)

    def percentile(self, name: str, percent: float) -> float:
        """The |x| below which ``percent`` % of the values fall (upper bin edge)."""
        import numpy as np

        counts = self.counts[name]
        total = counts.sum()
        if total == 0:
            return 0.0
        index = int(np.searchsorted(np.cumsum(counts), total * percent / 100.0))
        return float(self.edges(name)[min(index + 1, self.bins)])


def _finite_abs(values: np.ndarray) -> tuple[np.ndarray, float]:
    """|values| as a flat float32 array without inf/NaN, and its maximum (0 when empty)."""
    import numpy as np

    flat = np.abs(np.asarray(values, dtype=np.float32).ravel())
    peak = float(flat.max()) if flat.size else 0.0
    if not np.isfinite(peak):  # filtering copies the tensor: only when there is something to drop
        flat = flat[np.isfinite(flat)]
        peak = float(flat.max()) if flat.size else 0.0
    return flat, peak
