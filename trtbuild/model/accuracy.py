"""How far a converted (FP16 / INT8 Q/DQ) model is from its FP32 original, on held-out samples.

Metrics per output, over every held-out sample:
* max abs error, and the relative max error = max |y - y_ref| / max |y_ref| (the gate metric);
* mean relative error = sum |y - y_ref| / sum |y_ref| (an L1 ratio: stable where y_ref is near 0);
* cosine similarity of the flattened outputs;
* top-k agreement for classifier outputs ([batch, classes]): top-1 is the share of rows whose
  argmax matches, top-k (k > 1) the mean overlap of the two top-k sets.
Both models run in ONNX Runtime on the CPU (with the optimizer that corrupts FP16 Q/DQ models
disabled, see shared/reference/precision.md §6). These are CPU figures, not TensorRT's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from trtbuild.errors import TrtbuildError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


class AccuracyError(TrtbuildError):
    """The converted model's outputs are further from FP32 than the threshold allows."""

    exit_code = 1


@dataclass(frozen=True)
class Thresholds:
    max_error: float  # bound on the relative max error (max abs error / max |FP32|)
    min_cosine: float


#: Defaults catch broken conversions without failing healthy ones: FP16 is near-exact, INT8 is not.
DEFAULT_THRESHOLDS = {
    "fp16": Thresholds(max_error=1e-2, min_cosine=0.999),
    "int8": Thresholds(max_error=0.25, min_cosine=0.98),
    "int8+fp16": Thresholds(max_error=0.25, min_cosine=0.98),
}


def thresholds_for(precision: str, max_error: float | None = None, min_cosine: float | None = None) -> Thresholds:
    base = DEFAULT_THRESHOLDS.get(precision, DEFAULT_THRESHOLDS["int8"])
    return Thresholds(
        max_error=base.max_error if max_error is None else float(max_error),
        min_cosine=base.min_cosine if min_cosine is None else float(min_cosine),
    )


@dataclass
class OutputAccuracy:
    name: str
    shape: list[int]
    max_abs_error: float
    max_abs_reference: float
    rel_max_error: float
    mean_rel_error: float
    cosine: float
    topk: dict[str, float] | None = None
    nonfinite_reference: int = 0
    nonfinite_candidate: int = 0


@dataclass
class AccuracyReport:
    precision: str
    reference: str
    candidate: str
    samples: int
    held_out: bool
    thresholds: Thresholds
    outputs: list[OutputAccuracy] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    note: str = "ONNX Runtime CPU vs ONNX Runtime CPU (not a TensorRT figure)"

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "reference": self.reference,
            "candidate": self.candidate,
            "samples": self.samples,
            "held_out": self.held_out,
            "thresholds": asdict(self.thresholds),
            "passed": self.passed,
            "failures": self.failures,
            "outputs": [asdict(o) for o in self.outputs],
            "note": self.note,
        }

    def raise_if_failed(self) -> None:
        if self.passed:
            return
        raise AccuracyError(
            f"The {self.precision.upper()} model {self.candidate} (written, with its report beside it in "
            f".accuracy.json) is too far from FP32 on {self.samples} "
            f"{'held-out ' if self.held_out else ''}sample(s): {'; '.join(self.failures)}. Keep sensitive layers in "
            "higher precision (--fp16-block-nodes/--fp16-block-ops for FP16; --exclude-nodes/--exclude-op-types "
            "for INT8), calibrate with more representative data, or loosen --max-error/--min-cosine if this is "
            "expected."
        )


# --------------------------------------------------------------------------------------------------
# Running models


def session(path: str | os.PathLike[str]) -> Any:
    """A CPU session; WeightBiasQuantization is disabled because it corrupts FP16 Q/DQ models."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        os.fspath(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=["WeightBiasQuantization"]
    )


def _feed_for(sess: Any, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cast each input to the type the model declares (an --fp16-io model takes float16)."""
    import numpy as np

    dtypes = {
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
    }
    out: dict[str, np.ndarray] = {}
    for meta in sess.get_inputs():
        if meta.name not in feed:
            raise TrtbuildError(f"No data for the model input '{meta.name}' (have: {', '.join(feed)}).")
        value = np.asarray(feed[meta.name])
        target = dtypes.get(meta.type)
        out[meta.name] = value.astype(target, copy=False) if target is not None else value
    return out


def run_model(path: str | os.PathLike[str], feed: Mapping[str, np.ndarray], sess: Any | None = None) -> dict[str, np.ndarray]:
    sess = sess or session(path)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, _feed_for(sess, feed))))


# --------------------------------------------------------------------------------------------------
# Comparing


def compare_models(
    reference: str | os.PathLike[str],
    candidate: str | os.PathLike[str],
    feeds: Iterable[Mapping[str, np.ndarray]],
    *,
    precision: str,
    thresholds: Thresholds | None = None,
    held_out: bool = True,
    classifier: bool | None = None,
    topk: Sequence[int] = (1, 5),
) -> AccuracyReport:
    """Run both models on ``feeds`` and measure the candidate against the reference (FP32)."""
    import numpy as np

    limits = thresholds or thresholds_for(precision)
    ref_sess, cand_sess = session(reference), session(candidate)
    collected: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    samples = 0
    for feed in feeds:
        want = run_model(reference, feed, ref_sess)
        got = run_model(candidate, feed, cand_sess)
        samples += int(next(iter(feed.values())).shape[0]) if feed else 1
        for name, ref in want.items():
            if name not in got:
                raise TrtbuildError(f"The converted model has no output '{name}' (it has {', '.join(got)}).")
            refs, cands = collected.setdefault(name, ([], []))
            refs.append(np.asarray(ref, dtype=np.float64))
            cands.append(np.asarray(got[name], dtype=np.float64))
    if not collected:
        raise TrtbuildError("The accuracy check got no samples to compare.")
    report = AccuracyReport(
        precision=precision,
        reference=os.fspath(reference),
        candidate=os.fspath(candidate),
        samples=samples,
        held_out=held_out,
        thresholds=limits,
    )
    for name, (refs, cands) in collected.items():
        ref = np.concatenate([r.reshape(r.shape[0], -1) if r.ndim else r.reshape(1, 1) for r in refs])
        cand = np.concatenate([c.reshape(c.shape[0], -1) if c.ndim else c.reshape(1, 1) for c in cands])
        shape = list(refs[0].shape)
        is_classifier = classifier if classifier is not None else (len(shape) == 2 and shape[1] > 1)
        report.outputs.append(_measure(name, shape, ref, cand, topk if is_classifier else ()))
    report.failures = _failures(report)
    return report


def _measure(name: str, shape: list[int], ref: np.ndarray, cand: np.ndarray, topk: Sequence[int]) -> OutputAccuracy:
    import numpy as np

    ref_ok, cand_ok = np.isfinite(ref), np.isfinite(cand)
    both = ref_ok & cand_ok
    diff = np.abs(np.where(both, cand, 0.0) - np.where(both, ref, 0.0))
    max_abs_ref = float(np.max(np.abs(np.where(ref_ok, ref, 0.0)))) if ref.size else 0.0
    max_abs = float(np.max(diff)) if diff.size else 0.0
    ref_l1 = float(np.sum(np.abs(np.where(both, ref, 0.0))))
    mean_rel = float(np.sum(diff)) / ref_l1 if ref_l1 > 0 else float(np.sum(diff) > 0)
    a, b = np.where(both, ref, 0.0).ravel(), np.where(both, cand, 0.0).ravel()
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(np.dot(a, b) / norms) if norms > 0 else (1.0 if not np.any(a) and not np.any(b) else 0.0)
    result = OutputAccuracy(
        name=name,
        shape=shape,
        max_abs_error=max_abs,
        max_abs_reference=max_abs_ref,
        rel_max_error=max_abs / max_abs_ref if max_abs_ref > 0 else max_abs,
        mean_rel_error=mean_rel,
        cosine=cosine,
        nonfinite_reference=int(np.sum(~ref_ok)),
        nonfinite_candidate=int(np.sum(~cand_ok & ref_ok)),
    )
    classes = ref.shape[1] if ref.ndim == 2 else 0
    if topk and classes > 1:
        result.topk = {}
        ref_order = np.argsort(-ref, axis=1, kind="stable")
        cand_order = np.argsort(-cand, axis=1, kind="stable")
        for k in sorted(set(topk)):
            if k >= classes:
                continue
            if k == 1:
                agree = float(np.mean(ref_order[:, 0] == cand_order[:, 0]))
            else:
                overlaps = [len(set(r[:k]) & set(c[:k])) / k for r, c in zip(ref_order, cand_order)]
                agree = float(np.mean(overlaps))
            result.topk[f"top{k}"] = agree
    return result


def _failures(report: AccuracyReport) -> list[str]:
    failures: list[str] = []
    limits = report.thresholds
    for out in report.outputs:
        if out.nonfinite_candidate:
            failures.append(f"'{out.name}' has {out.nonfinite_candidate} inf/NaN value(s) where FP32 has none")
        if out.rel_max_error > limits.max_error:
            failures.append(
                f"'{out.name}' relative max error {out.rel_max_error:.3g} > {limits.max_error:.3g} (--max-error)"
            )
        if out.cosine < limits.min_cosine:
            failures.append(f"'{out.name}' cosine similarity {out.cosine:.5f} < {limits.min_cosine:.5f} (--min-cosine)")
    return failures


# --------------------------------------------------------------------------------------------------
# Output


def print_accuracy_table(report: AccuracyReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from trtbuild.console import get_console

    console = get_console()
    title = (
        f"{report.precision.upper()} vs FP32 on {report.samples} {'held-out' if report.held_out else 'calibration'} "
        f"sample(s) (ONNX Runtime, CPU)"
    )
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in ("output", "shape", "max abs", "rel max", "mean rel", "cosine", "top-1", "top-5"):
        table.add_column(column, justify="left" if column in ("output", "shape") else "right")
    for out in report.outputs:
        topk = out.topk or {}
        table.add_row(
            escape(out.name),
            "x".join(str(d) for d in out.shape),
            f"{out.max_abs_error:.3g}",
            f"{out.rel_max_error:.3g}",
            f"{out.mean_rel_error:.3g}",
            f"{out.cosine:.6f}",
            f"{topk['top1']:.1%}" if "top1" in topk else "-",
            f"{topk['top5']:.1%}" if "top5" in topk else "-",
        )
    console.print(table)
    limits = report.thresholds
    verdict = "[green]passed[/green]" if report.passed else "[red]FAILED[/red]"
    console.print(
        f"  accuracy {verdict} (rel max = max abs error / max |FP32| <= {limits.max_error:g}, "
        f"cosine >= {limits.min_cosine:g})"
        + ("" if report.held_out else "; [yellow]samples were not held out[/yellow]")
    )


def write_report_json(report: AccuracyReport, path: str | os.PathLike[str]) -> None:
    from trtbuild.fsutil import atomic_write_json

    atomic_write_json(path, report.to_dict())
