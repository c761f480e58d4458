"""The direct (one loop over thresholds) entropy range search that ``entropy_amax`` replaced.

Kept only as the reference the vectorised search is checked against (tests/test_calib_scale.py) and
timed against (benchmarks/calib_scale.py). Same rules as pytorch-quantization's
``_compute_amax_entropy``: bin 0 takes bin 1's count, candidate thresholds at bins 128..n, the tail
clipped into the last kept bin, q spread evenly over each group's non-empty bins, ties to the larger
threshold.
"""

from __future__ import annotations

import numpy as np


def entropy_loop(hist: np.ndarray, edges: np.ndarray, num_quantized_bins: int = 128) -> float:
    counts = np.asarray(hist, dtype=np.float64).copy()
    n = counts.size
    if n > 1:
        counts[0] = counts[1]
    if n <= num_quantized_bins or not counts.any():
        return float(edges[-1])
    tails = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])
    best_i, best_kl = n, np.inf
    for i in range(num_quantized_bins, n + 1):
        ref = counts[:i].copy()
        ref[-1] += tails[i]
        nonzero = counts[:i] > 0
        group = np.minimum((np.arange(i) * num_quantized_bins) // i, num_quantized_bins - 1)
        mass = np.bincount(group[nonzero], weights=counts[:i][nonzero], minlength=num_quantized_bins)
        members = np.bincount(group[nonzero], minlength=num_quantized_bins)
        quant = np.where(nonzero, mass[group] / np.maximum(members[group], 1), 0.0)
        p, q = ref / ref.sum(), quant / max(quant.sum(), 1e-300)
        mask = p > 0
        if np.any(q[mask] == 0):
            continue
        kl = float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
        if kl <= best_kl:
            best_i, best_kl = i, kl
    return float(edges[best_i])
