"""How far a converted (FP16 / INT8 Q/DQ) model is from its FP32 original, on held-out samples.

Both models run in ONNX Runtime on the CPU (with the ``WeightBiasQuantization`` optimizer disabled:
it corrupts FP16 Q/DQ models, see docs/precision.md); every output is judged by
:mod:`trtbuild.verdict` (metrics, a task measure for the output's kind, the invariant rules). These
are CPU figures, not TensorRT's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from trtbuild.errors import TrtbuildError
from trtbuild.verdict import Limits, OutputVerdict, judge, limits_for

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


class AccuracyError(TrtbuildError):
    """The converted model's outputs are further from FP32 than the threshold allows."""

    exit_code = 1


Thresholds = Limits  # the name the rest of trtbuild and the manifest used first


def thresholds_for(precision: str, max_error: float | None = None, min_cosine: float | None = None) -> Limits:
    return limits_for(precision, min_cosine=min_cosine, max_error=max_error)


@dataclass
class AccuracyReport:
    precision: str
    reference: str
    candidate: str
    samples: int
    held_out: bool
    thresholds: Limits
    outputs: list[OutputVerdict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    note: str = "ONNX Runtime CPU vs ONNX Runtime CPU (not a TensorRT figure)"
    repair: dict[str, Any] | None = None  # what precision repair kept (trtbuild.model.repair)

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
            "outputs": [o.to_dict() for o in self.outputs],
            "note": self.note,
            **({"repair": self.repair} if self.repair is not None else {}),
        }

    def raise_if_failed(self) -> None:
        if self.passed:
            return
        raise AccuracyError(
            f"The {self.precision.upper()} conversion is too far from FP32 on {self.samples} "
            f"{'held-out ' if self.held_out else ''}sample(s): {'; '.join(self.failures)}. Add --repair to find the "
            "fewest nodes to keep in higher precision, or name them yourself (--fp16-block-nodes/--fp16-block-ops for "
            "FP16; --exclude-nodes/--exclude-op-types for INT8), calibrate with more representative data, set the output's kind with --output-kind if it "
            "was guessed wrong, or write it anyway with --no-accuracy-check."
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
    thresholds: Limits | None = None,
    held_out: bool = True,
    kinds: Mapping[str, str] | None = None,
    topk: Sequence[int] = (1, 5),
) -> AccuracyReport:
    """Run both models on ``feeds`` and judge the candidate against the reference (FP32) per output."""
    import numpy as np

    limits = thresholds or thresholds_for(precision)
    ref_sess, cand_sess = session(reference), session(candidate)
    collected: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    samples = 0
    for feed in feeds:
        want = run_model(reference, feed, ref_sess)
        got = run_model(candidate, feed, cand_sess)
        samples += next((int(v.shape[0]) for v in map(np.asarray, feed.values()) if v.ndim), 1)
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
        report.outputs.append(judge(name, refs, cands, limits, kind=(kinds or {}).get(name), topk=tuple(topk)))
    report.failures = [f"'{o.name}' ({o.kind}): {o.reason}" for o in report.outputs if not o.passed]
    return report


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
    for column in ("output", "kind", "cosine", "rel max", "task measure", "verdict"):
        table.add_column(column, justify="right" if column in ("cosine", "rel max") else "left")
    for out in report.outputs:
        verdict = "[green]pass[/green]" if out.passed else "[red]FAIL[/red]"
        table.add_row(
            escape(out.name),
            out.kind + ("" if out.kind_given else "?"),
            f"{out.cosine:.6f}",
            f"{out.rel_max_error:.3g}",
            escape(out.measure_text()),
            f"{verdict} {escape(out.reason)}",
        )
    console.print(table)
    limits = report.thresholds
    verdict = "[green]passed[/green]" if report.passed else "[red]FAILED[/red]"
    console.print(
        f"  accuracy {verdict} (cosine >= {limits.min_cosine:g}; top-1 >= {limits.min_top1:.0%}, mask IoU >= "
        f"{limits.min_iou:.0%}, detection F1 >= {limits.min_detect_f1:.0%}; '?' = kind inferred, --output-kind sets it)"
        + ("" if report.held_out else "; [yellow]samples were not held out[/yellow]")
    )


def write_report_json(report: AccuracyReport, path: str | os.PathLike[str]) -> None:
    from trtbuild.fsutil import atomic_write_json

    atomic_write_json(path, report.to_dict())
