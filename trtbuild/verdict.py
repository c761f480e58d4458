"""One accuracy verdict per output, for every comparison trtbuild makes.

Plain metrics (max abs, relative max, relative L2, mean relative, cosine) say how far two outputs
are apart; a task measure says whether that distance matters for what the output is:

| kind     | output                                         | measure                                    |
|----------|------------------------------------------------|--------------------------------------------|
| classify | ``[N, C]`` logits or probabilities             | top-1 agreement along the class axis        |
| sequence | ``[N, T, C]`` per-step class scores (OCR, ASR) | per-step argmax agreement                   |
| segment  | ``[N, 1, H, W]`` / ``[N, H, W]`` maps          | IoU of the thresholded maps (C > 1: argmax) |
| detect   | YOLO heads ``[N, 4+C, A]`` / ``[N, A, 4+C(+1)]`` | F1 of detections matched after NMS        |
| regress  | anything else (embeddings, features, audio)    | none: cosine decides                        |

Rules that hold whatever the thresholds: an output with inf/NaN where the reference has none, a
constant or all-zero output where the reference is not, or a cosine below 0.5 never passes; an
output equal to the reference within FP16 rounding (4 ulps at the output's scale; probability
outputs use scale 1) never fails. Otherwise the cosine, the relative L2 error (the cosine cannot see
a wrong scale) and the task measure must all reach the precision's limits (docs/precision.md lists
them and the data behind them).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

KINDS = ("classify", "sequence", "segment", "detect", "regress")
#: below this cosine an output is treated as unrelated to its reference, whatever else is said
DEAD_COSINE = 0.5
#: "equal within FP16 rounding": 4 FP16 ulps at the output's scale
ROUNDING = 2.0**-8
#: detections: score threshold, NMS IoU and the IoU a match needs (Ultralytics' predict defaults)
DETECT_SCORE = 0.25
DETECT_NMS_IOU = 0.7
DETECT_MATCH_IOU = 0.5
MAX_DETECTIONS = 300
MAP_THRESHOLD = 0.5
#: an unnamed [N, C] output with at least this many columns is read as class scores
MIN_CLASSES = 20

_EMBEDDING_NAME = re.compile(r"emb|feat|vec|hidden|pool|encod|descr|latent|state", re.IGNORECASE)
_CLASS_NAME = re.compile(r"logit|prob|class|cls|score|softmax|pred|label|ctc", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """What an output must reach to pass, per precision."""

    min_cosine: float
    min_top1: float  # classify and sequence
    min_iou: float  # segment
    min_detect_f1: float  # detect
    max_rel_l2: float  # ||y - y_ref|| / ||y_ref||: what the scale-blind cosine cannot see
    max_error: float | None = None  # optional extra gate on max|y - y_ref| / max|y_ref| (--max-error)

    def measure_limit(self, kind: str) -> float | None:
        return {"classify": self.min_top1, "sequence": self.min_top1, "segment": self.min_iou}.get(
            kind, self.min_detect_f1 if kind == "detect" else None
        )


#: Defaults, at least as strict as the independent corpus thresholds (docs/precision.md).
DEFAULT_LIMITS = {
    # FP32 kernels differ by rounding only (1 - cosine ~ 1e-10): anything past 1e-5 is a different model.
    "fp32": Limits(min_cosine=0.99999, min_top1=0.999, min_iou=0.99, min_detect_f1=0.99, max_rel_l2=0.005),
    "fp16": Limits(min_cosine=0.999, min_top1=0.99, min_iou=0.95, min_detect_f1=0.97, max_rel_l2=0.05),
    "int8": Limits(min_cosine=0.98, min_top1=0.95, min_iou=0.85, min_detect_f1=0.90, max_rel_l2=0.2),
}


def plain_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two outputs as flat vectors: 1 for two all-zero ones, 0 when one is, -1 when not finite."""
    import numpy as np

    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    norms = float(np.linalg.norm(x) * np.linalg.norm(y))
    if norms == 0.0:
        return 1.0 if not x.any() and not y.any() else 0.0
    value = float(np.dot(x, y) / norms)
    return value if np.isfinite(value) else -1.0


def limits_for(precision: str, *, min_cosine: float | None = None, max_error: float | None = None) -> Limits:
    """The default limits of ``precision`` (``int8+fp16`` counts as int8), with the user's overrides."""
    base = DEFAULT_LIMITS["int8" if "int8" in precision else precision if precision in DEFAULT_LIMITS else "fp16"]
    return Limits(
        min_cosine=base.min_cosine if min_cosine is None else float(min_cosine),
        min_top1=base.min_top1,
        min_iou=base.min_iou,
        min_detect_f1=base.min_detect_f1,
        max_rel_l2=base.max_rel_l2,
        max_error=max_error if max_error is not None else base.max_error,
    )


@dataclass
class OutputVerdict:
    name: str
    shape: list[int]
    kind: str
    kind_given: bool
    max_abs_error: float
    max_abs_reference: float
    rel_max_error: float
    rel_l2_error: float
    mean_rel_error: float
    cosine: float
    measure_name: str | None = None
    measure: float | None = None
    topk: dict[str, float] | None = None
    nonfinite_reference: int = 0
    nonfinite_candidate: int = 0
    within_rounding: bool = False
    passed: bool = True
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def measure_text(self) -> str:
        if self.measure_name is None:
            return "-"
        if self.measure is None:
            return f"{self.measure_name} n/a"
        return f"{self.measure_name} {self.measure:.1%}"


def parse_output_kinds(items: list[str] | None) -> dict[str, str]:
    """``--output-kind NAME:KIND`` (repeatable, comma-separated) as {name: kind}."""
    from trtbuild.errors import SpecError

    kinds: dict[str, str] = {}
    for value in items or []:
        for item in value.split(","):
            name, sep, kind = item.strip().rpartition(":")
            if not sep or not name or kind not in KINDS:
                raise SpecError(f"--output-kind takes NAME:KIND with KIND one of {', '.join(KINDS)}, not '{item}'.")
            kinds[name] = kind
    return kinds


# --------------------------------------------------------------------------------------------------
# Kinds


def _probability_rows(ref: np.ndarray) -> bool:
    """Rows that are probability distributions (a softmax output)."""
    import numpy as np

    return _probability_like(ref) and bool(np.allclose(ref.sum(axis=-1), 1.0, atol=1e-3))


def _probability_like(ref: np.ndarray) -> bool:
    import numpy as np

    finite = ref[np.isfinite(ref)]
    return bool(finite.size) and float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0


def infer_kind(name: str, ref: np.ndarray) -> str:
    """The output's kind from its shape, value range and name (``--output-kind`` overrides it)."""
    shape = ref.shape
    if ref.ndim == 2 and shape[1] > 1:
        if _CLASS_NAME.search(name) or _probability_rows(ref):
            return "classify"
        # Unnamed logits: many columns read as classes; a few (boxes, landmarks) or an embedding do not.
        return "classify" if shape[1] >= MIN_CLASSES and not _EMBEDDING_NAME.search(name) else "regress"
    if ref.ndim == 3:
        small, large = sorted(shape[1:])
        # Box coordinates are pixels, so a detection head is never a probability tensor.
        detect_shape = 5 <= small <= 400 and large >= 100 and large >= 4 * small
        if detect_shape and not _probability_like(ref) and not _EMBEDDING_NAME.search(name):
            return "detect"
        scores = _probability_like(ref) or _CLASS_NAME.search(name) or shape[2] >= MIN_CLASSES
        if shape[2] > 1 and not _EMBEDDING_NAME.search(name) and scores:
            return "sequence"
        if min(shape[1:]) >= 8 and _probability_like(ref):
            return "segment"  # [N, H, W] maps
    if ref.ndim == 4 and min(shape[2:]) >= 8 and (_probability_like(ref) or (shape[1] > 1 and _CLASS_NAME.search(name))):
        return "segment"
    return "regress"


# --------------------------------------------------------------------------------------------------
# Judging


def judge(
    name: str,
    refs: np.ndarray | list[np.ndarray],
    cands: np.ndarray | list[np.ndarray],
    limits: Limits,
    *,
    kind: str | None = None,
    topk: tuple[int, ...] = (1, 5),
) -> OutputVerdict:
    """Metrics, task measure and verdict for one output.

    ``refs`` / ``cands`` are one array (samples on axis 0) or one array per batch; batches may differ
    in shape (dynamic axes): metrics pool every value, the task measure pools every batch.
    """
    import numpy as np

    ref_list = [np.asarray(r, dtype=np.float64) for r in (refs if isinstance(refs, list) else [refs])]
    cand_list = [np.asarray(c, dtype=np.float64) for c in (cands if isinstance(cands, list) else [cands])]
    for r, c in zip(ref_list, cand_list):
        if r.shape != c.shape:
            raise ValueError(f"output '{name}': shapes differ ({list(r.shape)} vs {list(c.shape)})")
    chosen = kind or infer_kind(name, ref_list[0])
    ref = np.concatenate([r.ravel() for r in ref_list])
    cand = np.concatenate([c.ravel() for c in cand_list])
    ref_ok, cand_ok = np.isfinite(ref), np.isfinite(cand)
    both = ref_ok & cand_ok
    r, c = np.where(both, ref, 0.0), np.where(both, cand, 0.0)
    diff = np.abs(c - r)
    max_ref = float(np.max(np.abs(r))) if r.size else 0.0
    max_abs = float(np.max(diff)) if diff.size else 0.0
    norm_r, norm_c = float(np.linalg.norm(r)), float(np.linalg.norm(c))
    if norm_r > 0 and norm_c > 0:
        cosine = float(np.dot(r.ravel(), c.ravel()) / (norm_r * norm_c))
    else:
        cosine = 1.0 if norm_r == norm_c == 0 else 0.0
    ref_l1 = float(np.sum(np.abs(r)))
    verdict = OutputVerdict(
        name=name,
        shape=list(ref_list[0].shape),
        kind=chosen,
        kind_given=kind is not None,
        max_abs_error=max_abs,
        max_abs_reference=max_ref,
        rel_max_error=max_abs / max_ref if max_ref > 0 else max_abs,
        rel_l2_error=float(np.linalg.norm(c - r)) / norm_r if norm_r > 0 else float(norm_c > 0),
        mean_rel_error=float(np.sum(diff)) / ref_l1 if ref_l1 > 0 else float(np.sum(diff) > 0),
        cosine=cosine,
        nonfinite_reference=int(np.sum(~ref_ok)),
        nonfinite_candidate=int(np.sum(~cand_ok & ref_ok)),
    )
    clean = [(np.nan_to_num(a), np.nan_to_num(b)) for a, b in zip(ref_list, cand_list)]
    _task_measure(verdict, clean, topk)
    scale = max(max_ref, 1.0 if chosen in ("segment", "classify", "sequence") and _probability_like(r) else 0.0)
    verdict.within_rounding = bool(diff.size) and max_abs <= ROUNDING * scale
    verdict.passed, verdict.reason = _decide(verdict, r, c, limits)
    return verdict


def _decide(v: OutputVerdict, ref: np.ndarray, cand: np.ndarray, limits: Limits) -> tuple[bool, str]:
    import numpy as np

    if v.nonfinite_candidate:
        return False, f"{v.nonfinite_candidate} inf/NaN value(s) where the reference has none"
    ref_spread = float(np.ptp(ref)) if ref.size else 0.0
    if ref.size and float(np.ptp(cand)) == 0.0 and ref_spread > 0.0:
        what = "all zero" if not np.any(cand) else f"constant ({float(cand.flat[0]):.4g})"
        return False, f"the output is {what} where the reference varies (a dead output)"
    if v.cosine < DEAD_COSINE:
        return False, f"cosine {v.cosine:.4f} < {DEAD_COSINE} (unrelated to the reference)"
    if v.within_rounding and (limits.max_error is None or v.rel_max_error <= limits.max_error):
        return True, "equal within FP16 rounding"
    if v.cosine < limits.min_cosine:
        return False, f"cosine {v.cosine:.6f} < {limits.min_cosine:g}"
    if v.rel_l2_error > limits.max_rel_l2:
        return False, f"relative L2 error {v.rel_l2_error:.3g} > {limits.max_rel_l2:g} (a scale the cosine does not see)"
    needed = limits.measure_limit(v.kind)
    if v.measure is not None and needed is not None and v.measure < needed:
        return False, f"{v.measure_name} {v.measure:.1%} < {needed:.0%}"
    if limits.max_error is not None and v.rel_max_error > limits.max_error:
        return False, f"relative max error {v.rel_max_error:.3g} > {limits.max_error:g} (--max-error)"
    measure = f", {v.measure_name} {v.measure:.1%}" if v.measure is not None else ""
    return True, f"cosine {v.cosine:.6f}{measure}"


def _task_measure(v: OutputVerdict, pairs: list[tuple[np.ndarray, np.ndarray]], topk: tuple[int, ...]) -> None:
    import numpy as np

    ref0 = pairs[0][0]
    if v.kind in ("classify", "sequence") and ref0.ndim >= 2 and ref0.shape[-1] > 1:
        if any(r.shape[-1] != ref0.shape[-1] for r, _ in pairs):
            return
        flat_r = np.concatenate([r.reshape(-1, r.shape[-1]) for r, _ in pairs])
        flat_c = np.concatenate([c.reshape(-1, c.shape[-1]) for _, c in pairs])
        v.measure_name = "top-1" if v.kind == "classify" else "per-step argmax"
        v.measure = float(np.mean(np.argmax(flat_r, axis=1) == np.argmax(flat_c, axis=1)))
        if v.kind == "classify":
            v.topk = _topk(flat_r, flat_c, topk)
    elif v.kind == "segment" and ref0.ndim >= 3:
        if ref0.ndim == 4 and ref0.shape[1] > 1:
            v.measure_name = "pixel argmax"
            agree = [np.argmax(r, axis=1) == np.argmax(c, axis=1) for r, c in pairs]
            v.measure = float(np.mean(np.concatenate([a.ravel() for a in agree])))
        else:
            threshold = MAP_THRESHOLD if all(_probability_like(r) for r, _ in pairs) else 0.0
            inter = union = pixels = 0
            for r, c in pairs:
                mask_r, mask_c = r > threshold, c > threshold
                inter += int(np.sum(mask_r & mask_c))
                union += int(np.sum(mask_r | mask_c))
                pixels += int(np.sum(mask_r))
            v.measure_name = "mask IoU"
            v.measure = inter / union if union else None
            v.details["mask_pixels"] = pixels
    elif v.kind == "detect" and ref0.ndim == 3:
        v.measure_name = "detection F1"
        totals = {"reference_detections": 0, "candidate_detections": 0, "matched_detections": 0}
        for r, c in pairs:
            _f1, counts = detection_f1(r, c)
            for key in totals:
                totals[key] += counts[key]
        fired = totals["reference_detections"] + totals["candidate_detections"]
        v.measure = 2.0 * totals["matched_detections"] / fired if fired else None
        v.details.update(totals)


def _topk(ref: np.ndarray, cand: np.ndarray, topk: tuple[int, ...]) -> dict[str, float]:
    import numpy as np

    out: dict[str, float] = {}
    classes = ref.shape[1]
    ref_order = np.argsort(-ref, axis=1, kind="stable")
    cand_order = np.argsort(-cand, axis=1, kind="stable")
    for k in sorted(set(topk)):
        if k >= classes:
            continue
        if k == 1:
            out["top1"] = float(np.mean(ref_order[:, 0] == cand_order[:, 0]))
        else:
            overlaps = [len(set(a[:k]) & set(b[:k])) / k for a, b in zip(ref_order, cand_order)]
            out[f"top{k}"] = float(np.mean(overlaps))
    return out


# --------------------------------------------------------------------------------------------------
# Detections


def decode_yolo(head: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image: boxes (x1, y1, x2, y2), scores and classes after the score threshold and NMS.

    Takes ``[N, 4+C, A]`` (YOLOv8) or ``[N, A, 4+C]`` / ``[N, A, 5+C]`` (YOLOv5, with objectness).
    """
    import numpy as np

    channels_first = head.shape[1] < head.shape[2]  # YOLOv8: [N, 4+C, A], no objectness column
    if channels_first:
        head = head.transpose(0, 2, 1)  # -> [N, A, channels]
    else:
        head = _decode_raw_yolox(head)
    results = []
    for rows in head:
        objectness = rows[:, 4]
        if not channels_first and rows.shape[1] >= 6 and objectness.min() >= 0 and objectness.max() <= 1:
            scores_all = rows[:, 5:] * rows[:, 4:5]  # YOLOv5: score = objectness x class probability
        else:
            scores_all = rows[:, 4:]
        classes = np.argmax(scores_all, axis=1)
        scores = scores_all[np.arange(len(rows)), classes]
        keep = (scores > DETECT_SCORE) & (rows[:, 2] > 0) & (rows[:, 3] > 0)  # boxes with an area
        cx, cy, w, h = (rows[keep, i] for i in range(4))
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        chosen = _nms(boxes, scores[keep], classes[keep])
        results.append((boxes[chosen], scores[keep][chosen], classes[keep][chosen]))
    return results


#: YOLOX's output strides: a head exported without its decode step has one row per cell of these grids
YOLOX_STRIDES = (8, 16, 32)


def _decode_raw_yolox(head: np.ndarray) -> np.ndarray:
    """Grid-decode a YOLOX head exported without its decode step (``decode_in_inference=False``).

    Such a head holds per-cell offsets and log sizes: negative widths and ``A`` rows equal to the cells of
    a square input's stride-8/16/32 grids. Boxes in those units overlap across cells, so NMS and matching
    on them measure nothing; YOLOX's own ``demo_postprocess`` applies ``(xy + grid) * stride`` and
    ``exp(wh) * stride``, and so does this. Any other head is returned as it is.
    """
    import numpy as np

    anchors = head.shape[1]
    cells_per_side_sq = anchors / sum(1.0 / s**2 for s in YOLOX_STRIDES)  # side**2 for a square input
    side = int(round(float(np.sqrt(cells_per_side_sq))))
    if head.shape[2] < 6 or side % max(YOLOX_STRIDES) or sum((side // s) ** 2 for s in YOLOX_STRIDES) != anchors:
        return head
    if not (head[..., 2:4] < 0).any():  # decoded heads have positive sizes everywhere
        return head
    grids, strides = [], []
    for stride in YOLOX_STRIDES:
        cells = side // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        strides.append(np.full((cells * cells, 1), stride))
    grid, stride_column = np.concatenate(grids), np.concatenate(strides)
    decoded = head.astype(np.float64, copy=True)
    decoded[..., :2] = (decoded[..., :2] + grid) * stride_column
    decoded[..., 2:4] = np.exp(np.clip(decoded[..., 2:4], None, 30.0)) * stride_column
    return decoded


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    import numpy as np

    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    import numpy as np

    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < MAX_DETECTIONS:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        overlap = _iou(boxes[best], boxes[rest])
        order = rest[(overlap <= DETECT_NMS_IOU) | (classes[rest] != classes[best])]
    return np.asarray(keep, dtype=np.int64)


def detection_f1(ref: np.ndarray, cand: np.ndarray) -> tuple[float | None, dict[str, int]]:
    """F1 of candidate detections matched to reference ones (same class, IoU >= 0.5); None if neither fires."""
    import numpy as np

    matched = total_ref = total_cand = 0
    for (rb, _rs, rc), (cb, _cs, cc) in zip(decode_yolo(ref), decode_yolo(cand)):
        total_ref += len(rb)
        total_cand += len(cb)
        used = np.zeros(len(cb), dtype=bool)
        for box, cls in zip(rb, rc):
            if not len(cb):
                break
            overlap = np.where((cc == cls) & ~used, _iou(box, cb), 0.0)
            best = int(np.argmax(overlap))
            if overlap[best] >= DETECT_MATCH_IOU:
                used[best] = True
                matched += 1
    counts = {"reference_detections": total_ref, "candidate_detections": total_cand, "matched_detections": matched}
    if total_ref + total_cand == 0:
        return None, counts
    return 2.0 * matched / (total_ref + total_cand), counts
