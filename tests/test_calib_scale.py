"""INT8 calibration at scale: the vectorised entropy search equals the direct loop, and the ranges from
histograms merged batch by batch equal (within 2 %) an entropy search over all samples at once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from entropy_reference import entropy_loop

from trtbuild.model.quantize import ENTROPY_BINS, QuantizeOptions, entropy_amax

#: Done-when tolerance: every tensor's INT8 scale from the batch-by-batch path vs all samples at once
SCALE_TOLERANCE = 0.02


def _random_histograms(count: int, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    for index in range(count):
        bins = int(rng.choice([129, 200, 300, 1000, 2048]))
        kind = index % 5
        size = int(rng.integers(500, 50_000))
        if kind == 0:
            x = np.abs(rng.normal(size=size))
        elif kind == 1:
            x = np.abs(rng.standard_t(2, size=size))  # heavy tail: the search clips
        elif kind == 2:
            x = np.maximum(rng.normal(size=size), 0)  # ReLU: spike of zeros in bin 0
        elif kind == 3:
            x = np.abs(np.concatenate([rng.normal(size=size), rng.normal(50, 1, size=size // 100)]))  # far outliers
        else:
            x = rng.exponential(size=size)
        hist, edges = np.histogram(x, bins=bins)
        if index % 4 == 0:
            hist[rng.integers(0, bins, size=bins // 3)] = 0  # empty bins inside the range
        yield hist, edges


def test_vectorised_entropy_search_equals_the_direct_loop() -> None:
    checked = 0
    for hist, edges in _random_histograms(60):
        assert entropy_amax(hist, edges) == entropy_loop(hist, edges)
        checked += 1
    assert checked == 60


def test_entropy_search_edge_cases_equal_the_loop() -> None:
    edges = np.linspace(0, 1, 2049)
    for hist in (
        np.zeros(2048, np.int64),  # nothing seen
        np.eye(1, 2048, 5, dtype=np.int64)[0] * 7,  # one populated bin
        np.eye(1, 2048, 2047, dtype=np.int64)[0],  # only the last bin
        np.ones(2048, np.int64),  # flat
    ):
        assert entropy_amax(hist, edges) == entropy_loop(hist, edges)
    short = np.arange(100, dtype=np.int64)  # fewer bins than 128 groups: no clipping
    assert entropy_amax(short, np.linspace(0, 3, 101)) == entropy_loop(short, np.linspace(0, 3, 101)) == 3.0


# --------------------------------------------------------------------------------------------------
# batch by batch (AbsHistogram, re-binned when a batch reaches further) vs all samples at once


def _calibrator(model: Path, tmp: Path) -> Any:
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    from trtbuild.model.qdq_check import parse_target_trt
    from trtbuild.model.quantize import DEFAULT_OP_TYPES, _prepared_fp32

    options = QuantizeOptions(method="entropy")
    fp32 = _prepared_fp32(model, parse_target_trt(options.target_trt), tmp, options)  # as quantize prepares it
    return create_calibrator(
        fp32,
        list(DEFAULT_OP_TYPES),
        augmented_model_path=str(tmp / "augmented.onnx"),
        calibrate_method=CalibrationMethod.Percentile,
        extra_options={"symmetric": True},
    )


def _scales_both_ways(
    model: Path, batches: Sequence[dict[str, np.ndarray]], tmp: Path, search: Any
) -> tuple[dict[str, float], dict[str, float]]:
    """(chunked, all at once) INT8 scales per calibrated tensor: amax / 127."""
    from trtbuild.model.quantize import _histogram_ranges

    calibrator = _calibrator(model, tmp)
    ranges = _histogram_ranges(calibrator, lambda: iter(batches), QuantizeOptions(method="entropy"), lambda: None)["entropy"]
    chunked = {name: float(data.range_value[1]) / 127 for name, data in ranges.data.items()}

    # the reference: every activation of every batch kept, one histogram over [0, global max]
    session = calibrator.infer_session
    wanted = set(calibrator.tensors_to_calibrate)
    names = [o.name for o in session.get_outputs()]
    values: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        for name, value in zip(names, session.run(None, batch)):
            if name in wanted:
                flat = np.abs(np.asarray(value, np.float32).ravel())
                values.setdefault(name, []).append(flat[np.isfinite(flat)])
    whole = {}
    for name, parts in values.items():
        data = np.concatenate(parts)
        if data.size == 0 or data.max() == 0:
            continue
        hist, edges = np.histogram(data, bins=ENTROPY_BINS, range=(0.0, float(data.max())))
        whole[name] = search(hist, edges) / 127
    return chunked, whole


def _assert_close(chunked: dict[str, float], whole: dict[str, float]) -> None:
    assert whole, "no tensor was calibrated"
    assert set(whole) <= set(chunked)
    worst = max(whole, key=lambda n: abs(chunked[n] - whole[n]) / whole[n])
    error = abs(chunked[worst] - whole[worst]) / whole[worst]
    assert error <= SCALE_TOLERANCE, f"{worst}: scale {chunked[worst]:.6g} batch by batch vs {whole[worst]:.6g} at once"


def test_batch_by_batch_scales_match_all_at_once_entropy(yolo_onnx: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    # growing input scale: every batch reaches further than the last, so the histograms are re-binned each time
    batches = [
        {"images": (rng.random((2, 3, 64, 64)) * (0.2 + 0.4 * k)).astype(np.float32)} for k in range(6)
    ]
    chunked, whole = _scales_both_ways(yolo_onnx, batches, tmp_path, entropy_loop)
    assert len(whole) >= 6
    _assert_close(chunked, whole)


@pytest.mark.corpus
@pytest.mark.slow
@pytest.mark.parametrize(
    "model_id", ["nudenet_320n_yolov8n", "rapidocr_det_ppocrv4", "magika_standard_v3_3", "oww_embedding", "mtcnn_onet"]
)
def test_batch_by_batch_scales_match_all_at_once_on_the_corpus(model_id: str, tmp_path: Path) -> None:
    from corpus import fetch, inputs

    root = fetch.data_root()
    model = fetch.model(model_id)
    feeds = inputs.real_samples(model_id, root, 10)
    chunked, whole = _scales_both_ways(fetch.model_path(model), feeds, tmp_path, entropy_amax)
    _assert_close(chunked, whole)


def test_two_passes_give_exactly_the_histogram_of_all_samples() -> None:
    from trtbuild.model.histogram import AbsHistogram

    rng = np.random.default_rng(5)
    batches = [rng.standard_normal(5000).astype(np.float32) * scale for scale in (0.1, 3.0, 1.0, 7.5)]
    batches[1][:3] = [np.inf, -np.inf, np.nan]  # dropped, never a range
    histogram = AbsHistogram(bins=512)
    for batch in batches:
        histogram.widen("t", batch)
    for batch in batches:
        histogram.add("t", batch)
    values = np.abs(np.concatenate(batches))
    values = values[np.isfinite(values)]
    assert histogram.amax["t"] == float(values.max())
    expected, _ = np.histogram(values, bins=512, range=(0.0, float(values.max())))
    assert np.array_equal(histogram.counts["t"], expected)

    merged = AbsHistogram(bins=512)  # one pass: re-binned whenever a batch reaches further, so only close
    for batch in batches:
        merged.add("t", batch)
    assert merged.amax["t"] == histogram.amax["t"] and merged.counts["t"].sum() == expected.sum()
    assert not np.array_equal(merged.counts["t"], expected)
