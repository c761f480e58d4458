"""Narrowing INT8 activation ranges that calibration left too wide for what the model computes after them.

Min-max and entropy calibration each judge a tensor on its own values. A tensor that spans many decades
before a log (the power spectrum that an audio front end turns into log-mel energies: up to 1e7 in
silence, 1e11 in speech) keeps most of the output only with a range far below its maximum, which neither
method finds: on openwakeword's mel-spectrogram model entropy ranges give cosine 0.83 to FP32 on held-out
speech (and negative on silence); that range x 3.2e-5 gives 0.974 or better on every calibration sample,
silence included, and 0.979-0.985 on held-out ones.

So when the calibrated model misses the INT8 cosine limit on the held-out samples and quantizes at
most :data:`MAX_TENSORS` activations, each one in turn is tried at :data:`FACTORS` of its calibrated
range (the others as found so far), scored by the worst cosine over the first :data:`MAX_BATCHES`
calibration batches, and the best factor is kept (a later one must gain :data:`MIN_GAIN`). Every factor
is tried, not the first that stops improving: silence and speech pull in opposite directions, so the
worst batch is not unimodal in the factor. The narrowed ranges are kept only when held-out samples agree
with FP32 about as well as with the calibrated ones (at most :data:`MIN_GAIN` worse). The ranges only
move; which nodes run in INT8 does not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: part of an ``auto`` range cache's provenance: bump when the search changes so such caches rebuild
SEARCH_VERSION = 1
#: above this many quantized activations the search (14 quantizations each) costs more than it is worth,
#: and is not tried: --repair (nodes kept in float) is the tool there
MAX_TENSORS = 8
#: range factors tried per tensor: 10^-0.5 down to 10^-7 in half decades
FACTORS = tuple(10 ** (-k / 2) for k in range(1, 15))
#: calibration batches the search scores on (each trial runs the model on all of them)
MAX_BATCHES = 8
#: a factor must gain at least this much worst-batch cosine to replace the calibrated range, and held-out
#: samples may lose at most this much for the narrowed ranges to be kept
MIN_GAIN = 1e-3


@dataclass
class RangeSearch:
    """What the search did: factor kept per tensor (only those that moved), cosine before and after."""

    cosine_before: float
    cosine_after: float
    factors: dict[str, float] = field(default_factory=dict)
    trials: int = 0
    seconds: float = 0.0
    #: worst cosine on held-out samples with the calibrated ranges and with the narrowed ones
    held_out_before: float | None = None
    held_out_after: float | None = None

    @property
    def kept(self) -> bool:
        """Narrowed ranges are kept only if held-out samples agree about as well (within :data:`MIN_GAIN`):
        a search on a few calibration batches can fit them and lose elsewhere (a sequence VAD: held-out
        worst 0.995 -> 0.966), while held-out samples that were fine already may move by rounding only."""
        if self.held_out_before is None or self.held_out_after is None:
            return True
        return self.held_out_after >= self.held_out_before - MIN_GAIN

    def confirm(self, before: float, after: float) -> None:
        self.held_out_before, self.held_out_after = before, after
        if self.kept:
            log.info("INT8 range search: kept (held-out worst cosine %.4f -> %.4f).", before, after)
        else:
            log.info(
                "INT8 range search: calibrated ranges kept; the narrowed ones fit the calibration batches but move "
                "held-out samples away from FP32 (worst cosine %.4f -> %.4f).", before, after,
            )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cosine_before": round(self.cosine_before, 6), "cosine_after": round(self.cosine_after, 6),
            "factors": {name: float(f"{factor:.3g}") for name, factor in self.factors.items()},
            "trials": self.trials, "seconds": round(self.seconds, 2), "kept": self.kept,
        }  # fmt: skip
        if self.held_out_before is not None and self.held_out_after is not None:
            out["held_out_before"] = round(self.held_out_before, 6)
            out["held_out_after"] = round(self.held_out_after, 6)
        return out


def scaled(ranges: Any, factors: dict[str, float]) -> Any:
    """A copy of ONNX Runtime ``TensorsData`` with each named tensor's range multiplied by its factor."""
    import numpy as np
    from onnxruntime.quantization.calibrate import TensorData, TensorsData

    data = {}
    for name, value in ranges.data.items():
        factor = factors.get(name)
        if factor is None:
            data[name] = value
            continue
        low, high = (np.asarray(v, np.float32) * np.float32(factor) for v in value.range_value)
        data[name] = TensorData(lowest=low, highest=high)
    return TensorsData(ranges.calibration_method, data)


def narrow_ranges(
    ranges: Any,
    tensors: Sequence[str],
    score: Callable[[Any], float],
    before: float,
    advance: Callable[[], None] = lambda: None,
) -> tuple[Any, RangeSearch] | None:
    """Ranges closer to FP32 by worst-batch cosine, or None when no factor gains :data:`MIN_GAIN`.

    ``tensors`` are the quantized activations (inputs of QuantizeLinear that ``ranges`` holds);
    ``score(ranges)`` quantizes with those ranges and returns the worst cosine to FP32 over the
    calibration batches and outputs; ``before`` is that score for ``ranges`` as calibrated.
    """
    start = time.perf_counter()
    found = RangeSearch(cosine_before=before, cosine_after=before)
    for name in tensors:
        best_factor, best = None, found.cosine_after
        for factor in FACTORS:
            value = score(scaled(ranges, {**found.factors, name: factor}))
            found.trials += 1
            advance()
            if value > best + MIN_GAIN:
                best_factor, best = factor, value
        if best_factor is not None:
            found.factors[name], found.cosine_after = best_factor, best
    found.seconds = time.perf_counter() - start
    if not found.factors:
        return None
    log.info(
        "INT8 range search: worst cosine on the calibration batches %.4f -> %.4f (%s).",
        found.cosine_before, found.cosine_after,
        ", ".join(f"{name} x {factor:.3g}" for name, factor in found.factors.items()),
    )  # fmt: skip
    return scaled(ranges, found.factors), found
