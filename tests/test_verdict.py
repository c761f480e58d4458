"""The accuracy verdict's invariant rules, for outputs of every kind and scale."""

from __future__ import annotations

import numpy as np
import pytest

from trtbuild.errors import SpecError
from trtbuild.verdict import (
    KINDS,
    decode_yolo,
    detection_f1,
    infer_kind,
    judge,
    limits_for,
    parse_output_kinds,
)


def _yolo_head(rng: np.random.Generator, anchors: int = 400, classes: int = 3) -> np.ndarray:
    """[1, 4+C, A]: boxes in pixels, a few confident anchors."""
    head = np.zeros((1, 4 + classes, anchors), np.float32)
    head[0, 0] = rng.uniform(20, 300, anchors)
    head[0, 1] = rng.uniform(20, 300, anchors)
    head[0, 2:4] = rng.uniform(10, 40, (2, anchors))
    head[0, 4:] = rng.uniform(0, 0.1, (classes, anchors))
    hot = rng.choice(anchors, 6, replace=False)
    head[0, 4, hot] = 0.9
    return head


def _outputs(kind: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind == "classify":
        logits = rng.normal(size=(8, 100)).astype(np.float32)
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if kind == "sequence":
        return rng.random((2, 20, 50)).astype(np.float32)
    if kind == "segment":
        return (rng.random((2, 1, 32, 32)) > 0.7).astype(np.float32) * 0.9 + 0.05
    if kind == "detect":
        return _yolo_head(rng)
    return rng.normal(size=(4, 64)).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e4])
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_identical_output_passes_and_dead_output_fails(kind: str, scale: float, precision: str) -> None:
    ref = _outputs(kind) * np.float32(scale)
    limits = limits_for(precision)
    same = judge("y", ref, ref.copy(), limits, kind=kind)
    assert same.passed, same.reason
    if np.abs(ref).max() < 65504:
        rounded = judge("y", ref, ref.astype(np.float16).astype(np.float32), limits, kind=kind)
        assert rounded.passed, rounded.reason  # equal within FP16 rounding never fails on scale
    for dead in (np.zeros_like(ref), np.full_like(ref, ref.mean())):
        verdict = judge("y", ref, dead, limits, kind=kind)
        assert not verdict.passed and "dead output" in verdict.reason
    broken = ref.copy()
    broken.flat[0] = np.inf
    assert "inf/NaN" in judge("y", ref, broken, limits, kind=kind).reason
    shuffled = np.random.default_rng(1).permutation(ref.ravel()).reshape(ref.shape) - ref.mean()
    assert not judge("y", ref, shuffled, limits, kind=kind).passed


def test_task_measure_catches_what_cosine_misses() -> None:
    # A classifier whose logits barely move but whose top-1 flips on close calls.
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(200, 10)).astype(np.float32)
    ref[:, 0] = ref[:, 1:].max(axis=1) + 0.01
    cand = ref.copy()
    cand[:40, 0] -= 0.05
    verdict = judge("logits", ref, cand, limits_for("int8"), kind="classify")
    assert verdict.cosine > 0.99 and verdict.measure == pytest.approx(0.8)
    assert not verdict.passed and "top-1" in verdict.reason


def test_mask_iou_on_probability_maps() -> None:
    ref = np.zeros((1, 1, 64, 64), np.float32)
    ref[0, 0, 10:30, 10:50] = 0.95
    shifted = np.zeros_like(ref)
    shifted[0, 0, 14:34, 10:50] = 0.95
    verdict = judge("prob_map", ref, shifted, limits_for("fp16"))
    assert verdict.kind == "segment" and verdict.measure == pytest.approx(16 / 24)
    assert not verdict.passed


def test_detections_are_matched_after_nms() -> None:
    head = _yolo_head(np.random.default_rng(3))
    f1, counts = detection_f1(head, head)
    assert f1 == 1.0 and counts["reference_detections"] == counts["matched_detections"] > 0
    moved = head.copy()
    moved[0, 0] += 200.0  # every box shifted far right
    f1, _ = detection_f1(head, moved)
    assert f1 == 0.0
    assert infer_kind("output0", head) == "detect"


def _raw_yolox_head(side: int = 64) -> np.ndarray:
    """A YOLOX head exported without its decode step: [1, cells of the stride-8/16/32 grids, 4 + obj + 1 class],
    holding cell offsets and log sizes; two objects, one in the stride-8 grid and one in the stride-16 grid."""
    anchors = sum((side // s) ** 2 for s in (8, 16, 32))
    head = np.zeros((1, anchors, 6), np.float32)
    head[0, :, 2:4] = -1.0  # log sizes: negative, as a raw head has them
    stride8 = 3 * (side // 8) + 5  # cell (x=5, y=3) of the stride-8 grid
    head[0, stride8] = [0.5, 0.5, np.log(2.0), np.log(3.0), 0.9, 0.9]
    stride16 = (side // 8) ** 2 + 1 * (side // 16) + 2  # cell (x=2, y=1) of the stride-16 grid
    head[0, stride16] = [0.25, 0.75, 0.0, 0.0, 0.95, 0.95]
    return head


def test_raw_yolox_heads_are_grid_decoded_before_matching() -> None:
    boxes, scores, _ = decode_yolo(_raw_yolox_head())[0]
    order = np.argsort(boxes[:, 0])
    # (5.5*8, 3.5*8) with size (2*8, 3*8), and (2.25*16, 1.75*16) with size (16, 16): pixels, as YOLOX decodes
    np.testing.assert_allclose(boxes[order], [[28, 20, 44, 36], [36, 16, 52, 40]], atol=1e-4)
    assert scores.min() > 0.8
    # In cell units every raw box overlaps the others; decoded, shifting one object by a cell drops its match.
    head = _raw_yolox_head()
    moved = head.copy()
    moved[0, 3 * 8 + 5, 0] += 1.0
    f1, counts = detection_f1(head, moved)
    assert counts["reference_detections"] == 2 and counts["matched_detections"] == 1 and f1 == 0.5
    decoded = head.copy()
    decoded[0, :, 2:4] = 4.0  # positive sizes: already decoded, taken as they are
    boxes, _, _ = decode_yolo(decoded)[0]
    assert boxes.max() < 8.0


def test_kinds_are_inferred_and_can_be_set() -> None:
    rng = np.random.default_rng(4)
    softmax = np.exp(rng.normal(size=(2, 10)))
    softmax /= softmax.sum(axis=1, keepdims=True)
    assert infer_kind("out", softmax) == "classify"
    assert infer_kind("landmarks", rng.normal(size=(2, 10))) == "regress"
    assert infer_kind("embedding", rng.normal(size=(2, 512))) == "regress"
    assert infer_kind("ctc_probs", rng.random((1, 40, 6625))) == "sequence"
    assert infer_kind("map", rng.random((1, 1, 64, 64))) == "segment"
    assert parse_output_kinds(["out:detect,y:regress"]) == {"out": "detect", "y": "regress"}
    with pytest.raises(SpecError, match="--output-kind"):
        parse_output_kinds(["out:boxes"])


def test_batches_of_different_shapes_are_pooled() -> None:
    rng = np.random.default_rng(5)
    maps = [rng.random((1, 1, 32, 48)).astype(np.float32), rng.random((1, 1, 64, 32)).astype(np.float32)]
    verdict = judge("prob", maps, [m.copy() for m in maps], limits_for("int8"))
    assert verdict.passed and verdict.kind == "segment" and verdict.measure == 1.0
