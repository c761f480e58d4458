"""Cross-check runners (TensorRT, ONNX Runtime, PyTorch) with Polygraphy's Comparator.

Polygraphy runs every runner on the same feeds (``Comparator.run``) and judges each output with its
simple compare function (``compare_accuracy`` + ``SimpleCompareFunc``, the non-deprecated name of
``CompareFunc.simple``). trtbuild adds what a report needs on top: the feeds are explicit (one per
profile corner, or the user's data), tolerances follow the precision, every output gets error
statistics, and a failure names the output, its shape and the tolerance that would have passed.

Tolerance rule (Polygraphy's, not numpy's): an element fails only if BOTH ``|a - b| > atol`` AND
``|a - b| / |b| > rtol``, where ``b`` is the reference runner's value. Meeting either one passes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.backends.base import Runner
from trtbuild.errors import ComparisonFailed, ShapeError, SpecError, TrtbuildError
from trtbuild.inputs import Feed, load_data, seeded_feeds
from trtbuild.shapes import (
    Profile,
    TensorInfo,
    format_dims,
    profile_from_flags,
    resolve_profile,
    split_name_and_value,
)
from trtbuild.verdict import Limits

log = logging.getLogger(__name__)

STATS = ("elemwise", "max", "mean", "median", "quantile")


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    stat: str = "elemwise"


#: Defaults per precision of the candidate (the engine, or the first runner).
#: fp32: real rounding differences between kernels stay below these; fp16 carries ~3 decimal digits;
#: int8 is judged on the mean error, since single elements may legitimately move by a quantization step.
PRECISION_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-3, stat="elemwise"),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2, stat="elemwise"),
    "int8": Tolerance(atol=5e-2, rtol=5e-2, stat="mean"),
}


@dataclass
class Tolerances:
    """Per-output tolerances; the ``""`` key is the default (Polygraphy's per-output dict convention)."""

    atol: dict[str, float]
    rtol: dict[str, float]
    stat: dict[str, str]

    @classmethod
    def for_precision(cls, precision: str) -> Tolerances:
        if precision not in PRECISION_TOLERANCES:
            raise SpecError(f"--precision must be one of {', '.join(PRECISION_TOLERANCES)}, not '{precision}'.")
        t = PRECISION_TOLERANCES[precision]
        return cls({"": t.atol}, {"": t.rtol}, {"": t.stat})

    def of(self, output: str) -> Tolerance:
        return Tolerance(self.atol.get(output, self.atol[""]), self.rtol.get(output, self.rtol[""]),
                         self.stat.get(output, self.stat[""]))


def parse_overrides(values: float | str | Mapping[str, Any] | Sequence[str] | None, flag: str, kind: type = float
                    ) -> dict[str, Any]:
    """``["1e-3", "output0:1e-2"]`` or ``"1e-3,output0:1e-2"`` -> ``{"": 1e-3, "output0": 1e-2}``."""
    if values is None:
        return {}
    if isinstance(values, (int, float)):
        return {"": float(values)}
    if isinstance(values, Mapping):
        return {str(k): (kind(v) if kind is float else str(v)) for k, v in values.items()}
    items = [values] if isinstance(values, str) else list(values)
    result: dict[str, Any] = {}
    for item in items:
        for pair in str(item).split(","):
            if not pair.strip():
                continue
            name, value = split_name_and_value(pair.strip())
            if kind is float:
                try:
                    parsed: Any = float(value)
                except ValueError:
                    raise SpecError(f"--{flag} '{pair}': expected a number, like --{flag} 1e-3 or --{flag} output0:1e-2.") from None
                if parsed < 0 or math.isnan(parsed):
                    raise SpecError(f"--{flag} '{pair}': a tolerance must be a non-negative number.")
            else:
                parsed = value.strip()
                if parsed not in STATS:
                    raise SpecError(f"--{flag} '{pair}': use one of {', '.join(STATS)}.")
            result[name] = parsed
    return result


# --------------------------------------------------------------------------------------------------
# Results


@dataclass
class OutputComparison:
    """One output of one candidate/reference pair at one feed."""

    candidate: str
    reference: str
    feed: str
    output: str
    shape: list[int]
    dtype: str
    passed: bool
    atol: float
    rtol: float
    stat: str
    max_abs: float = 0.0
    max_rel: float = 0.0
    mean_abs: float = 0.0
    cosine: float | None = None
    rel_l2: float | None = None  # ||got - want|| / ||want||, the verdict's scale check
    top1: float | None = None  # fraction of rows whose argmax agrees (2-D classifier-like outputs)
    topk: float | None = None  # mean overlap of the top-k sets
    k: int | None = None
    required_atol: float = 0.0  # smallest atol that passes with this rtol
    required_rtol: float = 0.0  # smallest rtol that passes with this atol
    error: str | None = None  # a structural problem: missing output, shape mismatch, NaN
    kind: str = ""  # the verdict's output kind (trtbuild.verdict)
    measure_name: str | None = None
    measure: float | None = None
    verdict: str = ""  # why the accuracy verdict passed or failed
    verdict_passed: bool = True
    tolerance_passed: bool = True

    def failure_message(self, atol_needed: float | None = None, rtol_needed: float | None = None) -> str:
        """Why it failed and the tolerances that would pass (``*_needed`` override this entry's own)."""
        atol_needed = self.required_atol if atol_needed is None else atol_needed
        rtol_needed = self.required_rtol if rtol_needed is None else rtol_needed
        where = f"output '{self.output}' (shape {format_dims(self.shape)}, {self.dtype}) of {self.candidate} vs " \
                f"{self.reference} at the {self.feed} feed"
        if self.error:
            return f"{where}: {self.error}"
        verdict = ""
        if not self.verdict_passed:
            kind = self.kind.rstrip("?")
            verdict = (
                f"{where} fails the {kind} verdict: {self.verdict}. If '{self.output}' is not a {kind} "
                f"output, say what it is with --output-kind {self.output}:KIND."
            )
            if self.tolerance_passed:
                return verdict
            where = " It also"
        measure = {"elemwise": "max", "max": "max", "mean": "mean", "median": "median", "quantile": "0.99-quantile"}[self.stat]
        return verdict + (
            f"{where} fails: {measure} abs diff {self.max_abs if self.stat in ('elemwise', 'max') else self.mean_abs:.3g} "
            f"> atol {self.atol:g} and rel diff > rtol {self.rtol:g} (max rel {self.max_rel:.3g}). It would pass with "
            f"--atol {self.output}:{_round_up(atol_needed)} (rtol {self.rtol:g} kept) or "
            f"--rtol {self.output}:{_round_up(rtol_needed)} (atol {self.atol:g} kept)."
        )


def _round_up(value: float) -> str:
    """Two significant digits, rounded up so the printed tolerance really passes."""
    if value <= 0 or not math.isfinite(value):
        return f"{value:g}"
    exponent = math.floor(math.log10(value)) - 1
    scaled = math.ceil(value / 10**exponent * (1 + 1e-9))
    return f"{scaled * 10**exponent:.2g}"


@dataclass
class CompareReport:
    """Everything ``trtbuild compare`` found; ``passed`` is Polygraphy's verdict over all of it."""

    model: str
    runners: list[dict[str, Any]]
    reference: str
    precision: str
    tolerances: Tolerances
    feeds: list[dict[str, Any]]
    results: list[OutputComparison] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[OutputComparison]:
        return [r for r in self.results if not r.passed]

    def failure_message(self) -> str:
        failures = self.failures
        if not failures:
            return "all outputs match"
        worst = max(failures, key=lambda r: (r.error is not None, r.max_abs))
        same = [r for r in failures if r.output == worst.output and r.error is None]
        if worst.error is None and len(same) > 1:
            # One tolerance must cover every feed and pair of this output: suggest the largest needed.
            message = "Comparison failed: " + worst.failure_message(
                max(r.required_atol for r in same), max(r.required_rtol for r in same)
            ) + f" These tolerances cover all {len(same)} failing feeds/pairs of '{worst.output}'."
        else:
            message = f"Comparison failed: {worst.failure_message()}"
        others = sorted({r.output for r in failures} - {worst.output})
        if others:
            message += f" Other failing outputs: {', '.join(others)} (see the report)."
        return message

    def raise_for_failure(self) -> None:
        if not self.passed:
            raise ComparisonFailed(self.failure_message())

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "passed": self.passed,
            "runners": self.runners,
            "reference": self.reference,
            "precision": self.precision,
            "tolerances": asdict(self.tolerances),
            "rule": "an element fails only if abs diff > atol AND rel diff > rtol (rel to the reference)",
            "feeds": self.feeds,
            "results": [asdict(r) for r in self.results],
            "seconds": round(self.seconds, 3),
        }

    def to_markdown(self) -> str:
        lines = [
            f"# trtbuild compare: {Path(self.model).name}",
            "",
            f"**{'PASSED' if self.passed else 'FAILED'}** — reference `{self.reference}`, precision {self.precision}, "
            f"atol {_dict_text(self.tolerances.atol)}, rtol {_dict_text(self.tolerances.rtol)}, "
            f"error stat {_dict_text(self.tolerances.stat)} (an element fails only if it misses both).",
            "",
            "Runners: " + ", ".join(f"`{r['name']}` ({r.get('backend', '?')})" for r in self.runners),
            "",
            "| pair | feed | output | shape | max abs | max rel | mean abs | cosine | top-1 | result |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.results:
            lines.append(
                f"| {r.candidate} vs {r.reference} | {r.feed} | {r.output} | {format_dims(r.shape)} | {r.max_abs:.3g} | "
                f"{r.max_rel:.3g} | {r.mean_abs:.3g} | {_opt(r.cosine, '.6f')} | {_opt(r.top1, '.2%')} | "
                f"{'pass' if r.passed else 'FAIL'} |"
            )
        if not self.passed:
            lines += ["", self.failure_message()]
        feeds = "; ".join(f"{f['label']} " + ",".join(f"{n}:{d}" for n, d in f["shapes"].items()) for f in self.feeds)
        lines += ["", f"Feeds: {feeds}", ""]
        return "\n".join(lines)


def _dict_text(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}:{v}" if k else f"{v}" for k, v in values.items())


def _opt(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


# --------------------------------------------------------------------------------------------------
# Statistics


def error_stats(candidate: Any, reference: Any, tol: Tolerance, top_k: int = 5) -> dict[str, Any]:
    """Error statistics for one output pair (same shape), relative to ``reference``."""
    import numpy as np

    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    absdiff = np.abs(a - b)
    # Polygraphy's denominator: the reference with zeros nudged to the smallest positive double.
    reldiff = absdiff / np.where(b == 0, np.finfo(np.float64).eps, np.abs(b))
    stats: dict[str, Any] = {
        "max_abs": float(np.nanmax(absdiff)) if absdiff.size else 0.0,
        "max_rel": float(np.nanmax(reldiff)) if reldiff.size else 0.0,
        "mean_abs": float(np.nanmean(absdiff)) if absdiff.size else 0.0,
    }
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    stats["cosine"] = 1.0 if na == 0 and nb == 0 else (float(np.dot(a.ravel(), b.ravel()) / (na * nb)) if na and nb else 0.0)
    if a.ndim == 2 and a.shape[1] > 1:
        k = min(top_k, a.shape[1])
        stats["top1"] = float(np.mean(np.argmax(a, 1) == np.argmax(b, 1)))
        ta, tb = np.argsort(-a, 1)[:, :k], np.argsort(-b, 1)[:, :k]
        stats["topk"] = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(ta, tb)]))
        stats["k"] = k
    stats["required_atol"], stats["required_rtol"] = required_tolerances(absdiff, reldiff, tol)
    return stats


def _stat_of(values: Any, stat: str) -> float:
    import numpy as np

    if values.size == 0:
        return 0.0
    if stat == "mean":
        return float(np.mean(values))
    if stat == "median":
        return float(np.median(values))
    if stat == "quantile":
        return float(np.quantile(values, 0.99))
    return float(np.max(values))


def required_tolerances(absdiff: Any, reldiff: Any, tol: Tolerance) -> tuple[float, float]:
    """(atol that passes with tol.rtol, rtol that passes with tol.atol) under the either-passes rule."""
    import numpy as np

    if tol.stat == "elemwise":
        still_abs = absdiff[reldiff > tol.rtol]  # elements the rtol does not already cover
        still_rel = reldiff[absdiff > tol.atol]
        return (float(np.max(still_abs)) if still_abs.size else 0.0, float(np.max(still_rel)) if still_rel.size else 0.0)
    abs_stat, rel_stat = _stat_of(absdiff, tol.stat), _stat_of(reldiff, tol.stat)
    return (abs_stat if rel_stat > tol.rtol else 0.0, rel_stat if abs_stat > tol.atol else 0.0)


# --------------------------------------------------------------------------------------------------
# Polygraphy


@contextlib.contextmanager
def _polygraphy_logging(verbose: bool) -> Iterator[None]:
    # Polygraphy prints several lines per runner and output; trtbuild prints its own table instead.
    from polygraphy.logger import G_LOGGER

    with G_LOGGER.verbosity(G_LOGGER.INFO if verbose else G_LOGGER.CRITICAL + 1):
        yield


#: a swap threshold no array reaches: Polygraphy keeps every output in memory, as with swapping off
_NEVER_SWAP_MB = 1 << 40


@contextlib.contextmanager
def _without_torch_probe() -> Iterator[None]:
    """Keep Polygraphy from importing torch when no runner uses it.

    With array swapping off (POLYGRAPHY_ARRAY_SWAP_THRESHOLD_MB < 0, its default) Polygraphy's
    ``IterationResult`` sums its outputs' sizes for a "very large outputs" hint, filtering them with
    ``util.array.is_torch(arr) or util.array.is_numpy(arr)``: ``is_torch`` comes first and calls
    ``torch.is_importable()``, which imports torch whenever it is installed (about 2 s and 200-300 MB)
    even though every output is a NumPy array. A threshold no array reaches also keeps every array in
    memory but skips that hint, so the probe never runs; the rest of Polygraphy's array code dispatches
    on ``is_numpy`` before ``is_torch``. A threshold the user set is left as it is.
    """
    from polygraphy import config

    saved = config.ARRAY_SWAP_THRESHOLD_MB
    if saved < 0:
        config.ARRAY_SWAP_THRESHOLD_MB = _NEVER_SWAP_MB
    try:
        yield
    finally:
        config.ARRAY_SWAP_THRESHOLD_MB = saved


def _simple_compare_func(tolerances: Tolerances) -> Any:
    import numpy as np
    import polygraphy.comparator as pc

    simple = getattr(pc, "SimpleCompareFunc", None)
    # NumPy scalars, not floats: the elementwise check calls util.array.greater(absdiff, atol), whose
    # dispatch asks is_numpy and then is_torch of the second operand; a Python float fails is_numpy and
    # reaches is_torch, which imports torch (see _without_torch_probe).
    kwargs = {
        "atol": {k: np.float64(v) for k, v in tolerances.atol.items()},
        "rtol": {k: np.float64(v) for k, v in tolerances.rtol.items()},
        "check_error_stat": dict(tolerances.stat),
    }
    if simple is not None:
        return simple(**kwargs)
    return pc.CompareFunc.simple(**kwargs)  # Polygraphy < 0.50


def _first_accuracy(accuracy: Any) -> Any:
    # 0.5x returns AccuracyResults (one per compare function); 0.49 returned the AccuracyResult itself.
    import polygraphy.comparator as pc

    results_type = getattr(pc, "AccuracyResults", None)
    return accuracy[0] if results_type is not None and isinstance(accuracy, results_type) else accuracy


def run_comparison(
    runners: Sequence[Runner],
    feeds: Sequence[Feed],
    tolerances: Tolerances,
    *,
    reference: int = -1,
    top_k: int = 5,
    verbose: bool = False,
    limits: Limits | None = None,
    kinds: Mapping[str, str] | None = None,
    tolerance_gates: bool = False,
) -> list[OutputComparison]:
    """Run every runner on every feed with Polygraphy and compare each runner with the reference runner.

    Each output is judged by :func:`trtbuild.verdict.judge` with ``limits``; the element-wise
    tolerances gate too only when ``tolerance_gates`` (the user gave --atol/--rtol/--check-error-stat).
    """
    from trtbuild.verdict import limits_for

    limits = limits or limits_for("fp32")
    from polygraphy.comparator import Comparator
    from polygraphy.exception import PolygraphyException

    from trtbuild.backends.polygraphy_adapter import as_polygraphy_runner

    ref = reference % len(runners)
    wrapped = [as_polygraphy_runner(r, r.name) for r in runners]
    pairs = [(i, ref) for i in range(len(runners)) if i != ref]
    try:
        with _polygraphy_logging(verbose), _without_torch_probe():
            run_results = Comparator.run(wrapped, data_loader=[dict(f.arrays) for f in feeds])
            accuracy = Comparator.compare_accuracy(
                run_results, comparisons=pairs, compare_func=_simple_compare_func(tolerances)
            )
    except PolygraphyException as exc:
        raise TrtbuildError(f"Polygraphy stopped the comparison: {str(exc).strip() or 'see --verbose'}") from None
    verdicts = _first_accuracy(accuracy)
    results: list[OutputComparison] = []
    for i, j in pairs:
        cand, refr = runners[i].name, runners[j].name
        cand_iters, ref_iters = run_results[cand], run_results[refr]
        # AccuracyResult is Polygraphy's TypedDict: no .get(); look the pair up by iterating.
        per_iter: list[Any] = next((v for pair, v in verdicts.items() if pair == (cand, refr)), [])
        for index, feed in enumerate(feeds):
            got, want = cand_iters[index], ref_iters[index]
            verdict = per_iter[index] if index < len(per_iter) else {}
            for name in want:
                entry = _one_output(cand, refr, feed.label, name, got, want, verdict, tolerances.of(name), top_k)
                _judge(entry, got, want, limits, (kinds or {}).get(name), tolerance_gates)
                results.append(entry)
            for name in got:
                if name not in want:
                    log.info("%s has output '%s' that %s lacks; not compared.", cand, name, refr)
    return results


def _one_output(cand: str, refr: str, label: str, name: str, got: Any, want: Any, verdict: Mapping[str, Any],
                tol: Tolerance, top_k: int) -> OutputComparison:
    import numpy as np

    reference = np.asarray(want[name])
    entry = OutputComparison(cand, refr, label, name, list(reference.shape), str(reference.dtype), False,
                             tol.atol, tol.rtol, tol.stat)
    if name not in got:
        entry.error = f"{cand} has no output '{name}' (it has {', '.join(got.keys())})"
        return entry
    candidate = np.asarray(got[name])
    if candidate.shape != reference.shape:
        entry.error = f"shape {format_dims(candidate.shape)} in {cand} but {format_dims(reference.shape)} in {refr}"
        return entry
    for key, value in error_stats(candidate, reference, tol, top_k).items():
        setattr(entry, key, value)
    polygraphy_ok = bool(verdict.get(name, False))
    if np.isnan(candidate).any() != np.isnan(reference).any():
        entry.error = "NaN in one runner's output only"
    entry.passed = polygraphy_ok and entry.error is None
    return entry


def _judge(entry: OutputComparison, got: Any, want: Any, limits: Limits, kind: str | None, gates: bool) -> None:
    """The accuracy verdict decides; the element-wise tolerances only when the user set them."""
    import numpy as np

    from trtbuild.verdict import judge

    entry.tolerance_passed = entry.passed
    if entry.error is not None:
        return
    name = entry.output
    verdict = judge(name, np.asarray(want[name]), np.asarray(got[name]), limits, kind=kind)
    entry.kind = verdict.kind + ("" if verdict.kind_given else "?")
    entry.measure_name, entry.measure = verdict.measure_name, verdict.measure
    entry.verdict, entry.verdict_passed = verdict.reason, verdict.passed
    entry.rel_l2 = verdict.rel_l2_error
    if entry.cosine is None:
        entry.cosine = verdict.cosine
    entry.passed = verdict.passed and (entry.tolerance_passed or not gates)


# --------------------------------------------------------------------------------------------------
# Profiles and feeds


def _zoo_profile(name: str) -> Profile:
    from trtbuild import zoo
    from trtbuild.shapes import ShapeRange

    return Profile({n: ShapeRange(*corners) for n, corners in zoo.get(name).profile.items()})


def choose_profile(
    inputs: Sequence[TensorInfo],
    *,
    profile: Profile | None = None,
    engine_manifest: Mapping[str, Any] | None = None,
    zoo_name: str | None = None,
) -> tuple[Profile | None, str]:
    """The profile whose corners get seeded feeds, and where it came from."""
    from trtbuild.backends.trt_runner import manifest_profiles

    if profile is not None and profile.shapes:
        return resolve_profile(profile, inputs), "shape flags"
    from_manifest = manifest_profiles(engine_manifest)
    if from_manifest:
        if len(from_manifest) > 1:
            log.info("The engine has %d profiles; comparing at the corners of profile 0.", len(from_manifest))
        return resolve_profile(from_manifest[0], inputs), "engine manifest"
    if zoo_name and any(t.is_dynamic for t in inputs):
        try:
            return resolve_profile(_zoo_profile(zoo_name), inputs), f"zoo:{zoo_name} profile"
        except ShapeError as exc:
            raise ShapeError(f"The zoo profile of '{zoo_name}' does not fit this model ({exc}); give --min/--opt/--max.") from None
    if any(t.is_dynamic for t in inputs):
        return None, "none"  # seeded_feeds raises the clear "give --min/--opt/--max" error
    return None, "static model"


def compare(
    model: str | os.PathLike[str],
    against: str | Sequence[str] = ("ort", "torch"),
    *,
    engine: str | os.PathLike[str] | None = None,
    reference: str | None = None,
    profile: Profile | None = None,
    min: str | None = None,
    opt: str | None = None,
    max: str | None = None,
    shapes: str | None = None,
    data: str | os.PathLike[str] | None = None,
    feeds: Sequence[Mapping[str, Any]] | None = None,
    precision: str = "fp32",
    atol: Any = None,
    rtol: Any = None,
    check_error_stat: Any = None,
    seed: int = 0,
    val_range: tuple[float, float] = (0.0, 1.0),
    top_k: int = 5,
    raise_on_failure: bool = False,
    verbose: bool = False,
    output_kinds: Mapping[str, str] | None = None,
) -> CompareReport:
    """Compare ``model`` across runners; returns the report (raises ComparisonFailed only if asked).

    ``against``: runner specs (see trtbuild.backends.registry), e.g. ``"ort,torch"``; ``engine`` adds a
    TensorRT runner first. The reference is ``reference`` (a runner name) or the last runner; every other
    runner is compared with it. Feeds: ``feeds`` (dicts of arrays), else ``data`` (.npz or image folder),
    else seeded arrays at every corner of the profile (``profile`` or ``min/opt/max/shapes`` flags, else the
    engine manifest's, else a zoo model's own).

    Every output is judged by trtbuild's accuracy verdict for ``precision`` (metrics, a task measure for
    the output's kind, which ``output_kinds`` can set); ``atol``/``rtol``/``check_error_stat``, when given,
    add Polygraphy's element-wise check as a second gate.
    """
    started = time.perf_counter()
    from trtbuild.backends.registry import make_runners
    from trtbuild.backends.trt_runner import TrtRunner
    from trtbuild.inputs import feeds_from_arrays
    from trtbuild.model.export import source_of
    from trtbuild.model.load import load_onnx, model_inputs, model_outputs, resolve_model_path

    model_text = os.fspath(model)
    model_path = resolve_model_path(model_text)
    proto = load_onnx(model_path, load_weights=False)
    inputs, outputs = model_inputs(proto), [o.name for o in model_outputs(proto)]

    tolerances = Tolerances.for_precision(precision)
    tolerances.atol.update(parse_overrides(atol, "atol"))
    tolerances.rtol.update(parse_overrides(rtol, "rtol"))
    tolerances.stat.update(parse_overrides(check_error_stat, "check-error-stat", kind=str))
    unknown = [k for d in (tolerances.atol, tolerances.rtol, tolerances.stat) for k in d if k and k not in outputs]
    if unknown:
        raise SpecError(f"Tolerance given for unknown output(s) {', '.join(sorted(set(unknown)))}; the model's outputs "
                        f"are {', '.join(outputs)}.")

    runners: list[Runner] = []
    if engine is not None:
        runners.append(TrtRunner(engine, name="trt"))
    runners += make_runners(against, model=model_text, inputs=inputs, output_names=outputs)
    if len(runners) < 2:
        raise SpecError("A comparison needs at least two runners, like --against ort,torch (or --engine E --against ort).")
    names = [r.name for r in runners]
    ref_index = len(runners) - 1
    if reference is not None:
        if reference not in names:
            raise SpecError(f"--reference '{reference}' is not one of the runners: {', '.join(names)}.")
        ref_index = names.index(reference)

    if profile is None and any(v is not None for v in (min, opt, max, shapes)):
        profile = profile_from_flags(min=min, opt=opt, max=max, shapes=shapes)
    manifest = runners[0].manifest if isinstance(runners[0], TrtRunner) else None
    zoo_name = model_text[4:] if model_text.startswith("zoo:") else None
    if zoo_name is None:
        recorded = source_of(model_path)
        zoo_name = recorded[4:] if recorded and recorded.startswith("zoo:") else None
    chosen, origin = choose_profile(inputs, profile=profile, engine_manifest=manifest, zoo_name=zoo_name)
    if feeds is not None:
        feed_list = [feeds_from_arrays(f, label=f"feed{i}") for i, f in enumerate(feeds)]
    elif data is not None:
        feed_list = load_data(data, inputs, chosen, enforce_bounds=engine is not None)
    else:
        feed_list = seeded_feeds(inputs, chosen, seed=seed, val_range=val_range)
        log.info("Seeded inputs (seed %d) at %s from the %s.", seed,
                 "; ".join(f"{f.label} {f.describe()}" for f in feed_list), origin)
    if not feed_list:
        raise SpecError("No input data to compare on.")

    from trtbuild.verdict import limits_for

    unknown_kinds = sorted(set(output_kinds or {}) - set(outputs))
    if unknown_kinds:
        raise SpecError(f"--output-kind names unknown output(s) {', '.join(unknown_kinds)}; the model's outputs are "
                        f"{', '.join(outputs)}.")
    gates = any(v is not None for v in (atol, rtol, check_error_stat))
    results = run_comparison(runners, feed_list, tolerances, reference=ref_index, top_k=top_k, verbose=verbose,
                             limits=limits_for(precision), kinds=output_kinds, tolerance_gates=gates)  # fmt: skip
    report = CompareReport(
        model=str(model_path) if not model_text.startswith("zoo:") else model_text,
        runners=[r.describe() for r in runners],
        reference=names[ref_index],
        precision=precision,
        tolerances=tolerances,
        feeds=[{"label": f.label, "shapes": {n: format_dims(s) for n, s in f.shapes().items()}} for f in feed_list],
        results=results,
        seconds=time.perf_counter() - started,
    )
    if raise_on_failure:
        report.raise_for_failure()
    return report


# --------------------------------------------------------------------------------------------------
# ``trtbuild.compare`` names both this module and the function: importing the submodule binds the
# module to the package attribute, so the module itself must be callable for ``trtbuild.compare(...)``
# to work whichever was bound first.


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> CompareReport:
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
#: What ``trtbuild.compare`` resolves to (see trtbuild/__init__.py _API): this callable module.
MODULE = sys.modules[__name__]
