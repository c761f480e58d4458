"""Precision repair: the fewest nodes to keep in higher precision so a failing conversion passes its verdict.

A conversion (FP16 cast or INT8 Q/DQ) that misses its verdict is usually hurt by a few nodes. The
search finds them with ONNX Runtime on the user's samples:

1. **Sensitivity**: for every candidate *unit* (one quantized node for INT8; a run of consecutive
   nodes for FP16, whose graphs have hundreds), convert the model with only that unit in low
   precision and score how far it lands from FP32 (:func:`badness`: 1.0 is the verdict's limit).
2. **Bisection** over the units sorted by sensitivity, most sensitive first: the smallest prefix kept
   in high precision that makes the verdict pass with room to spare (every metric at most
   ``REPAIR_TARGET`` of the way to its limit, and each batch's cosine on its own too, so the result
   holds on inputs the search did not see). Polygraphy's ``debug precision`` bisects the same
   way over TensorRT layers in network order; ordering by measured sensitivity instead lets a
   single harmful node deep in the network be found without keeping everything before it.
3. **Pruning**: each kept unit, least sensitive first, is put back in low precision if the model
   stays on target without it.

Every step calls the converter the user asked for with a longer keep list (``--exclude-nodes`` /
``--fp16-block-nodes``), so the repaired model is exactly what those flags would produce, and the
report says which flag reproduces it. Figures are ONNX Runtime on the CPU, not TensorRT.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import TrtbuildError
from trtbuild.verdict import DEAD_COSINE, Limits, OutputVerdict, judge, plain_cosine

if TYPE_CHECKING:
    import numpy as np
    import onnx

log = logging.getLogger(__name__)

#: FP16 graphs are searched in runs of consecutive nodes: at most this many units
MAX_FP16_UNITS = 48
#: units kept after bisection that pruning still tries one by one (each try is one conversion + run)
MAX_PRUNE = 64
#: what a dead or non-finite output scores, far beyond any limit
DEAD_BADNESS = 1e3
#: the search accepts a model only this far inside every limit (badness 1.0 is at the limit), so that
#: what passes on its 8 batches still passes on inputs it has not seen
REPAIR_TARGET = 0.8


class RepairError(TrtbuildError):
    """Repair found no conversion that passes, or cannot run on this request."""

    exit_code = 1


@dataclass
class Score:
    """One candidate model judged on the repair samples."""

    passed: bool
    badness: float  # max over outputs of the worst metric relative to its limit (> 1: fails)
    worst_cosine: float
    failures: list[str] = field(default_factory=list)
    worst_measure: float | None = None  # the lowest task measure (top-1, IoU, detection F1) over the outputs

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "badness": round(self.badness, 6), "worst_cosine": self.worst_cosine,
                "worst_measure": self.worst_measure, "failures": self.failures}  # fmt: skip

    @property
    def on_target(self) -> bool:
        """Passes with room to spare: every metric at most REPAIR_TARGET of the way to its limit."""
        return self.passed and self.badness <= REPAIR_TARGET

    def text(self) -> str:
        measure = f", task measure {self.worst_measure:.1%}" if self.worst_measure is not None else ""
        return f"{'passes' if self.passed else 'fails'} (worst cosine {self.worst_cosine:.5f}{measure})"


@dataclass
class RepairReport:
    """What the search did and kept; goes into the accuracy JSON and the manifest."""

    precision: str
    flag: str  # the option that reproduces the repair: --exclude-nodes (INT8) | --fp16-block-nodes (FP16)
    candidate_nodes: int
    units: int
    kept_nodes: list[str]
    kept_weight_share: float  # of the candidate nodes' weight elements
    samples: int
    before: Score
    after: Score
    sensitivity: dict[str, float]  # unit label -> badness with only that unit converted (most sensitive first)
    evaluations: int
    seconds: float

    @property
    def kept_node_share(self) -> float:
        return len(self.kept_nodes) / self.candidate_nodes if self.candidate_nodes else 0.0

    def summary(self) -> str:
        return (
            f"repair kept {len(self.kept_nodes)} of {self.candidate_nodes} {self.precision.upper()} node(s) in higher "
            f"precision ({self.kept_node_share:.1%} of nodes, {self.kept_weight_share:.1%} of their weights); on "
            f"{self.samples} batch(es) it {self.before.text()} before and {self.after.text()} after; "
            f"{self.evaluations} conversions in {self.seconds:.0f} s"
        )

    def reproduce(self) -> str:
        return f"{self.flag} {','.join(self.kept_nodes)}" if self.kept_nodes else ""

    def to_dict(self) -> dict[str, Any]:
        top = dict(list(self.sensitivity.items())[:20])
        return {
            "precision": self.precision,
            "kept_nodes": self.kept_nodes,
            "kept_node_share": round(self.kept_node_share, 6),
            "kept_weight_share": round(self.kept_weight_share, 6),
            "candidate_nodes": self.candidate_nodes,
            "units": self.units,
            "samples": self.samples,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "most_sensitive": {k: round(v, 6) for k, v in top.items()},
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 2),
            "reproduce_with": self.reproduce(),
            "note": "ONNX Runtime CPU vs ONNX Runtime CPU (not a TensorRT figure)",
        }


# --------------------------------------------------------------------------------------------------
# Judging candidates


def badness(verdict: OutputVerdict, limits: Limits) -> float:
    """How far one output is from passing: the worst of its metrics relative to its limit (1.0 = at the limit)."""
    import math

    if verdict.within_rounding:
        return 0.0
    dead = verdict.nonfinite_candidate > verdict.nonfinite_reference or not math.isfinite(verdict.cosine)
    if dead or verdict.cosine < DEAD_COSINE:
        return DEAD_BADNESS
    terms = [
        (1.0 - verdict.cosine) / max(1.0 - limits.min_cosine, 1e-12),
        verdict.rel_l2_error / max(limits.max_rel_l2, 1e-12),
    ]
    limit = limits.measure_limit(verdict.kind)
    if limit is not None and verdict.measure is not None:
        terms.append((1.0 - verdict.measure) / max(1.0 - limit, 1e-12))
    return max(terms)


class RepairJudge:
    """Scores candidate models against FP32 outputs computed once.

    ``feeds`` start with the ``held_out`` batches the accuracy report uses; the rest are calibration
    batches, which make the search see more inputs. A candidate passes only when the verdict passes on
    the held-out batches and on all of them together.
    """

    def __init__(
        self,
        reference: str | os.PathLike[str],
        feeds: Sequence[Mapping[str, np.ndarray]],
        held_out: int,
        limits: Limits,
        kinds: Mapping[str, str] | None = None,
    ) -> None:
        import numpy as np

        from trtbuild.model.accuracy import run_model, session

        if not feeds:
            raise RepairError("Repair needs samples to judge candidates on; pass --calib-data.")
        self.feeds = list(feeds)
        self.held_out = max(1, min(held_out, len(self.feeds)))
        self.limits = limits
        self.kinds = dict(kinds or {})
        sess = session(reference)
        self._want = [{k: np.asarray(v, np.float64) for k, v in run_model(reference, f, sess).items()} for f in self.feeds]
        self.evaluations = 0

    @property
    def samples(self) -> int:
        return len(self.feeds)

    def score(self, candidate: str | os.PathLike[str]) -> Score:
        import numpy as np

        from trtbuild.model.accuracy import run_model, session

        self.evaluations += 1
        sess = session(candidate)
        got = [run_model(candidate, feed, sess) for feed in self.feeds]
        passed, worst_badness, worst_cosine, failures = True, 0.0, 1.0, []
        measures: list[float] = []
        subsets = [("held-out", slice(0, self.held_out))]
        if self.held_out < len(self.feeds):
            subsets.append((f"all {len(self.feeds)} batches", slice(None)))
        for label, subset in subsets:
            for name in self._want[0]:
                refs = [w[name] for w in self._want[subset]]
                cands = [np.asarray(g[name], np.float64) for g in got[subset]]
                verdict = judge(name, refs, cands, self.limits, kind=self.kinds.get(name))
                worst_badness = max(worst_badness, badness(verdict, self.limits))
                worst_cosine = min(worst_cosine, verdict.cosine if np.isfinite(verdict.cosine) else -1.0)
                if verdict.measure is not None:
                    measures.append(verdict.measure)
                if not verdict.passed:
                    passed = False
                    failures.append(f"{label} '{name}' ({verdict.kind}): {verdict.reason}")
        # Every batch on its own too, by cosine, held to the limit itself (not the margin): a pooled cosine
        # hides one bad sample among good ones (an OCR recogniser: per-sample 0.94 to 1.00 under a pooled 0.99).
        for want, have in zip(self._want, got):
            for name, ref in want.items():
                cosine = plain_cosine(ref, np.asarray(have[name], np.float64))
                share = (1.0 - cosine) / max(1.0 - self.limits.min_cosine, 1e-12)
                worst_badness = max(worst_badness, share * REPAIR_TARGET)
        return Score(passed, worst_badness, worst_cosine, failures, min(measures) if measures else None)


# --------------------------------------------------------------------------------------------------
# The search


Convert = Callable[[list[str], Path], Path]  # (nodes to keep in high precision, output path) -> written model


def search(
    units: Sequence[Sequence[str]],
    convert: Convert,
    repair_judge: RepairJudge,
    workdir: Path,
    *,
    precision: str,
    flag: str,
    weights: Mapping[str, int],
    labels: Sequence[str] | None = None,
    before: Score | None = None,
) -> tuple[Path, RepairReport]:
    """Find the fewest ``units`` to keep in high precision for the verdict to pass; return the model and report.

    ``convert(keep, path)`` writes the conversion with the nodes ``keep`` in high precision. Raises
    :class:`RepairError` when keeping every unit but one still fails (nothing worth calling a
    conversion would be left).
    """
    from trtbuild.console import progress

    start = time.monotonic()
    unit_list = [list(u) for u in units if u]
    names = list(labels or [u[0] if len(u) == 1 else f"{u[0]} .. {u[-1]}" for u in unit_list])
    every = [n for u in unit_list for n in u]
    counter = iter(range(1_000_000))

    def attempt(kept: Sequence[int]) -> tuple[Path, Score]:
        keep = [n for i in sorted(kept) for n in unit_list[i]]
        path = convert(keep, workdir / f"repair-{next(counter)}.onnx")
        return path, repair_judge.score(path)

    if before is None:
        first, before = attempt([])
        if before.passed:
            return first, _report(precision, flag, every, unit_list, [], weights, repair_judge, before, before, {},
                                  start)  # fmt: skip
    sensitivity: list[float] = []
    with progress() as bar:
        task = bar.add_task(f"repair: sensitivity of {len(unit_list)} unit(s)", total=len(unit_list))
        for index in range(len(unit_list)):
            # Only this unit converted: its own damage, without the rest of the model's.
            others = [i for i in range(len(unit_list)) if i != index]
            _, score = attempt(others)
            sensitivity.append(score.badness)
            bar.advance(task)
    order = sorted(range(len(unit_list)), key=lambda i: -sensitivity[i])
    log.info("Most sensitive: %s.", ", ".join(f"{names[i]} ({sensitivity[i]:.3g})" for i in order[:5]))

    # Bisection on the number of most-sensitive units kept: `bad` fails, `good` passes (keeping all = FP32).
    bad, good = 0, len(order)
    best: tuple[Path, Score] | None = None
    while good - bad > 1:
        middle = (bad + good) // 2
        path, score = attempt(order[:middle])
        log.info("Keeping the %d most sensitive unit(s): %s.", middle, "on target" if score.on_target else "short")
        if score.on_target:
            good, best = middle, (path, score)
        else:
            bad = middle
    if best is None:
        failing = "; ".join(before.failures) or "the verdict"
        if len(order) == 1:
            raise RepairError(
                f"Repair cannot help: the {precision.upper()} conversion touches one unit ({names[0]}) and it alone "
                f"fails ({failing}); keeping it in higher precision would leave nothing in {precision.upper()}. Keep "
                "this model in FP32 (or FP16), or calibrate on samples closer to the real inputs."
            )
        raise RepairError(
            f"Repair found no {precision.upper()} model that passes: even with the {len(order) - 1} most sensitive of "
            f"{len(order)} units kept in higher precision it fails ({failing}). The samples may not represent the "
            f"inputs, or the model does not suit {precision.upper()}; keep it in higher precision."
        )
    kept = list(order[:good])
    # Pruning: drop kept units (least sensitive first) that the verdict does not need.
    for index in sorted(kept, key=lambda i: sensitivity[i])[:MAX_PRUNE]:
        if len(kept) == 1:
            break
        trial = [i for i in kept if i != index]
        path, score = attempt(trial)
        if score.on_target:
            kept, best = trial, (path, score)
    path, after = best
    report = _report(
        precision, flag, every, unit_list, kept, weights, repair_judge, before, after,
        {names[i]: sensitivity[i] for i in order}, start,
    )  # fmt: skip
    return path, report


def _report(
    precision: str,
    flag: str,
    every: list[str],
    units: list[list[str]],
    kept: Sequence[int],
    weights: Mapping[str, int],
    repair_judge: RepairJudge,
    before: Score,
    after: Score,
    sensitivity: dict[str, float],
    start: float,
) -> RepairReport:
    kept_nodes = [n for i in sorted(kept) for n in units[i]]
    total = sum(weights.get(n, 0) for n in every)
    share = sum(weights.get(n, 0) for n in kept_nodes) / total if total else 0.0
    return RepairReport(
        precision=precision, flag=flag, candidate_nodes=len(every), units=len(units), kept_nodes=kept_nodes,
        kept_weight_share=share, samples=repair_judge.samples, before=before, after=after, sensitivity=sensitivity,
        evaluations=repair_judge.evaluations, seconds=time.monotonic() - start,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Units and weights


def node_weights(model: onnx.ModelProto) -> dict[str, int]:
    """Weight elements per node: the initializers and Constant tensors among its inputs."""
    sizes: dict[str, int] = {}
    for init in model.graph.initializer:
        count = 1
        for d in init.dims:
            count *= int(d)
        sizes[init.name] = count
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    count = 1
                    for d in attr.t.dims:
                        count *= int(d)
                    sizes[node.output[0]] = count
    return {n.name: sum(sizes.get(i, 0) for i in n.input) for n in model.graph.node}


def quantized_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes of a Q/DQ model that run in INT8: those reading a DequantizeLinear output (graph order)."""
    dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [
        n.name
        for n in model.graph.node
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and any(i in dq_outputs for i in n.input)
    ]


def fp16_units(model: onnx.ModelProto, skip: set[str]) -> list[list[str]]:
    """Runs of consecutive main-graph nodes that hold float compute (at most MAX_FP16_UNITS runs)."""
    shape_ops = {"Shape", "Size", "Constant", "ConstantOfShape", "Cast", "Reshape", "Unsqueeze", "Squeeze",
                 "Gather", "Concat", "Slice", "Range", "NonZero", "Identity"}  # fmt: skip
    nodes = [n.name for n in model.graph.node if n.op_type not in shape_ops and n.name and n.name not in skip]
    if not nodes:
        return []
    size = -(-len(nodes) // MAX_FP16_UNITS)
    return [nodes[i : i + size] for i in range(0, len(nodes), size)]
