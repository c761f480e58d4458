"""Nightly suite files (TOML): what to run, how long, and what counts as a regression.

A suite lists models and the precisions, backends and shapes to run them at; its cases are the cross
product model x precision x backend x shape, each with a stable id ``model-precision-backend-shape``.
The format is documented in suites/README.md; every mistake raises a TrtbuildError naming the key and the fix.
Parsing is light (no numpy/torch/onnx): the parent process of a nightly run stays small.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.errors import TrtbuildError

SUITE_SCHEMA = 1
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
BACKEND_KINDS = ("ort", "torch", "trt")
#: Per-iteration metrics the gate can compare (all times: larger is slower). ``cpu`` is the case process's
#: CPU time per inference, measured for host-clock backends only (ort, torch).
GATE_METRICS = ("latency", "compute", "enqueue", "h2d", "d2h", "cpu")

DEFAULT_TIMING = {"warmup_ms": 200.0, "duration_s": 3.0, "iterations": 10, "trtexec_defaults": 11, "threads": 0,
                  "repeats": 1}  # fmt: skip
DEFAULT_LIMITS = {"timeout_s": 900.0, "memory_mib": "auto"}
DEFAULT_ACCURACY = {
    "fp32": {"atol": 1e-4, "rtol": 1e-3},
    "fp16": {"atol": 1e-2, "rtol": 1e-2},
    "bf16": {"atol": 5e-2, "rtol": 5e-2},
    "int8": {"atol": 0.25, "rtol": 0.25},
}
DEFAULT_GATE: dict[str, Any] = {
    "thresholds": {"latency": 1.05},
    "confidence": 0.95,
    "resamples": 2000,
    "seed": 0,
    "rank_test": True,
    "alpha": 0.01,
    "min_samples": 10,
    "max_samples": 10000,
    "baseline_runs": 5,
    "min_history": 3,
    "run_noise": 0.01,
    "statistic": "median",
}

_TOP_KEYS = {"schema", "name", "description", "precisions", "backends", "timing", "limits", "accuracy", "gate", "model"}
_MODEL_KEYS = {"name", "model", "export", "inputs", "dynamic", "shape", "shapes", "batches", "profile", "precisions",
               "backends", "timeout_s", "memory_mib", "accuracy", "thresholds", "compare", "reference", "calib_data"}  # fmt: skip
_ID_SAFE = re.compile(r"[^A-Za-z0-9_.+=x]+")


def suite_error(source: str, key: str, problem: str, fix: str) -> TrtbuildError:
    """One message shape for every suite mistake: where, which key, what is wrong, what to write instead."""
    return TrtbuildError(f"{source}: '{key}' {problem}; {fix} (the format is in suites/README.md).")


@dataclass(frozen=True)
class ShapePoint:
    """One point of a shape sweep: a label for the case id, explicit shapes, or a batch size."""

    label: str
    shapes: dict[str, tuple[int, ...]] | None = None  # input name ("" = the only input) -> dims
    batch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "shapes": {k: list(v) for k, v in self.shapes.items()} if self.shapes else None,
                "batch": self.batch}  # fmt: skip


@dataclass
class ModelEntry:
    name: str
    source_kind: str  # "onnx" | "zoo" | "export"
    source: str  # resolved path, zoo:NAME or module:factory
    export_inputs: list[str] = field(default_factory=list)
    export_dynamic: list[str] = field(default_factory=list)
    template: dict[str, tuple[int, ...]] | None = None  # `shape`: the template of a batch sweep
    points: list[ShapePoint] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)  # Profile.as_dict() each
    precisions: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)  # metric -> ratio, or backend kind -> {metric: ratio}
    compare: bool = True
    reference: str | None = None  # a .pt2/.ts or module:factory for the torch backend
    calib_data: str | None = None  # INT8 calibration samples (folder or .npy/.npz); random data without


@dataclass
class Case:
    """One isolated run: everything the child process needs, as plain JSON-able data."""

    id: str
    suite: str
    model: str
    source_kind: str
    source: str
    precision: str
    backend: str  # as written in the suite: ort, ort:cuda, torch, torch@cuda, trt
    backend_kind: str  # ort | torch | trt
    shape: ShapePoint
    template: dict[str, tuple[int, ...]] | None
    profiles: list[dict[str, Any]]
    export_inputs: list[str]
    export_dynamic: list[str]
    timing: dict[str, Any]
    limits: dict[str, Any]
    tolerance: dict[str, float]
    thresholds: dict[str, float]
    compare: bool
    reference: str | None
    calib_data: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "suite": self.suite,
            "model": self.model,
            "source_kind": self.source_kind,
            "source": self.source,
            "precision": self.precision,
            "backend": self.backend,
            "backend_kind": self.backend_kind,
            "shape": self.shape.to_dict(),
            "template": {k: list(v) for k, v in self.template.items()} if self.template else None,
            "profiles": self.profiles,
            "export_inputs": self.export_inputs,
            "export_dynamic": self.export_dynamic,
            "timing": self.timing,
            "limits": self.limits,
            "tolerance": self.tolerance,
            "thresholds": self.thresholds,
            "compare": self.compare,
            "reference": self.reference,
            "calib_data": self.calib_data,
        }

    def config_hash(self) -> str:
        """What the numbers depend on (not the limits): a changed hash is noted beside a gate verdict."""
        data = self.to_dict()
        data.pop("limits")
        data.pop("thresholds")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Suite:
    name: str
    path: str
    description: str
    file_sha256: str
    content_hash: str
    timing: dict[str, Any]
    limits: dict[str, Any]
    gate: dict[str, Any]
    models: list[ModelEntry]
    raw: dict[str, Any] = field(default_factory=dict)

    def cases(self) -> list[Case]:
        """The cross product model x precision x backend x shape, in suite order, ids checked unique."""
        cases: list[Case] = []
        seen: dict[str, str] = {}
        for m in self.models:
            for precision in m.precisions:
                for backend in m.backends:
                    for point in m.points:
                        case_id = make_case_id(m.name, precision, backend, point.label)
                        where = f"model '{m.name}' {precision} {backend} {point.label}"
                        if case_id in seen:
                            raise TrtbuildError(
                                f"{self.path}: two cases get the id '{case_id}' ({seen[case_id]} and {where}); give "
                                "the models distinct names or the shapes distinct labels."
                            )
                        seen[case_id] = where
                        limits = {**self.limits, **m.limits}
                        cases.append(Case(
                            id=case_id, suite=self.name, model=m.name, source_kind=m.source_kind, source=m.source,
                            precision=precision, backend=backend, backend_kind=backend_kind(backend), shape=point,
                            template=m.template, profiles=m.profiles, export_inputs=m.export_inputs,
                            export_dynamic=m.export_dynamic, timing=dict(self.timing), limits=limits,
                            tolerance=dict(m.accuracy[precision]),
                            thresholds=resolve_thresholds(self.gate["thresholds"], m.thresholds, backend_kind(backend)),
                            compare=m.compare, reference=m.reference, calib_data=m.calib_data,
                        ))  # fmt: skip
        return cases

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "description": self.description,
                "file_sha256": self.file_sha256, "hash": self.content_hash}  # fmt: skip


def resolve_thresholds(suite_level: Mapping[str, Any], model_level: Mapping[str, Any], kind: str) -> dict[str, float]:
    """The metric -> ratio table of one case: a backend table (``ort = { cpu = 1.05 }``) replaces the general
    metrics for that backend kind; the model's thresholds override the suite's at each level."""
    for level in (model_level, suite_level):
        table = level.get(kind)
        if isinstance(table, Mapping):
            merged = dict(suite_level.get(kind) or {}) if level is model_level else {}
            merged.update(table)
            return {k: float(v) for k, v in merged.items()}
    general = {k: v for k, v in {**suite_level, **model_level}.items() if not isinstance(v, Mapping)}
    return {k: float(v) for k, v in general.items()}


def make_case_id(model: str, precision: str, backend: str, shape_label: str) -> str:
    """``resnet-fp32-ort-b1``: filename-safe, stable while the suite entry is unchanged."""
    parts = [model, precision, backend.replace(":", "_").replace("@", "_"), shape_label]
    return "-".join(_ID_SAFE.sub("_", p).strip("_") or "_" for p in parts)


def backend_kind(backend: str) -> str:
    return re.split(r"[:@]", backend, maxsplit=1)[0].strip().lower()


def select_cases(cases: Sequence[Case], only: Iterable[str] | None = None) -> list[Case]:
    """Cases whose id matches any of the globs in ``only`` (all when empty)."""
    patterns = [p for p in (only or []) if p]
    if not patterns:
        return list(cases)
    chosen = [c for c in cases if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
    if not chosen:
        raise TrtbuildError(f"--only {' '.join(patterns)} matches none of the suite's cases; list them with --list.")
    return chosen


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4): shard index counts from 1. ``"auto"`` (or ``"auto/N"``) reads the index, and
    the count where the scheduler gives one, from the environment (trtbuild.nightly.shard)."""
    auto = re.fullmatch(r"\s*auto\s*(?:/\s*([0-9]{1,9})\s*)?", text or "")
    if auto:
        from trtbuild.nightly.shard import shard_from_environment

        index, count, _ = shard_from_environment(count=int(auto.group(1)) if auto.group(1) else None)
        return index, count
    match = re.fullmatch(r"\s*([0-9]{1,9})\s*/\s*([0-9]{1,9})\s*", text or "")
    if not match:
        raise TrtbuildError(f"--shard '{text}' is not I/N or auto; write e.g. --shard 1/4 (shards count from 1 to N), "
                            "or --shard auto to take it from the scheduler (Kubernetes, Slurm, GitLab, TRTBUILD_SHARD).")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise TrtbuildError(f"--shard {text}: the index must lie in 1..{max(count, 1)}; write e.g. --shard 1/{max(count, 1)}.")
    return index, count


def shard_cases(cases: Sequence[Case], index: int, count: int) -> list[Case]:
    """Shard ``index`` (1-based) of ``count``: round robin over the ids in sorted order.

    Every host that runs the same suite with the same N gets a disjoint, deterministic share, and the
    shares together are the whole suite.
    """
    ordered = sorted(cases, key=lambda c: c.id)
    return ordered[index - 1 :: count]


# --------------------------------------------------------------------------------------------------
# Loading and validation


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file (trtbuild._toml.load_toml); errors name the key and the fix."""
    from trtbuild._toml import load_toml

    file = Path(path)
    data = load_toml(file)
    return suite_from_dict(data, source=str(file), base_dir=file.parent,
                           file_sha256=hashlib.sha256(file.read_bytes()).hexdigest())  # fmt: skip


def suite_from_dict(data: Mapping[str, Any], *, source: str = "suite", base_dir: Path | None = None,
                    file_sha256: str = "") -> Suite:  # fmt: skip
    src = source
    _unknown(data, _TOP_KEYS, src, "")
    schema = data.get("schema", SUITE_SCHEMA)
    if schema != SUITE_SCHEMA:
        raise suite_error(src, "schema", f"is {schema!r}, but this trtbuild reads suite schema {SUITE_SCHEMA}",
                          f"write schema = {SUITE_SCHEMA} or upgrade trtbuild")  # fmt: skip
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise suite_error(src, "name", f"is {name!r}", 'give the suite a short name like name = "gpu-nightly" '
                          "(letters, digits, '.', '_' and '-'; baselines are matched by it)")  # fmt: skip
    precisions = _str_list(data.get("precisions", ["fp32"]), src, "precisions", PRECISIONS)
    backends = _backends(data.get("backends", ["ort"]), src, "backends")
    timing = _timing(data.get("timing", {}), src)
    limits = _limits(data.get("limits", {}), src, "limits")
    accuracy = _accuracy(data.get("accuracy", {}), src, "accuracy", DEFAULT_ACCURACY)
    gate = _gate(data.get("gate", {}), src)
    models_raw = data.get("model")
    if not isinstance(models_raw, list) or not models_raw:
        raise suite_error(src, "model", "is missing or empty", 'add at least one [[model]] table with model = "zoo:resnet" '
                          'or model = "path/to/model.onnx"')  # fmt: skip
    base = base_dir or Path.cwd()
    models: list[ModelEntry] = []
    names: set[str] = set()
    for i, entry in enumerate(models_raw):
        model = _model(entry, i, src, base, precisions, backends, accuracy)
        if model.name in names:
            raise suite_error(src, f"model[{i}].name", f"repeats '{model.name}'", "give every [[model]] a distinct name")
        names.add(model.name)
        models.append(model)
    content_hash = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
    suite = Suite(name=name, path=source, description=str(data.get("description", "")), file_sha256=file_sha256,
                  content_hash=content_hash, timing=timing, limits=limits, gate=gate, models=models, raw=dict(data))
    suite.cases()  # ids unique
    return suite


def _unknown(table: Mapping[str, Any], allowed: set[str], src: str, prefix: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        import difflib

        key = extra[0]
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"the keys here are: {', '.join(sorted(allowed))}"
        raise suite_error(src, prefix + key, "is not a known key", hint)


def _str_list(value: Any, src: str, key: str, allowed: Sequence[str] | None = None) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise suite_error(src, key, f"is {value!r}", 'give a non-empty list of strings like ["fp32", "fp16"]')
    if allowed is not None:
        for v in items:
            if v.lower() not in allowed:
                raise suite_error(src, key, f"has '{v}'", f"use some of: {', '.join(allowed)}")
        items = [v.lower() for v in items]
    if len(set(items)) != len(items):
        raise suite_error(src, key, f"repeats an entry in {items}", "list each entry once")
    return list(items)


def _backends(value: Any, src: str, key: str) -> list[str]:
    items = _str_list(value, src, key)
    for item in items:
        if backend_kind(item) not in BACKEND_KINDS:
            raise suite_error(src, key, f"has '{item}'", "use ort (or ort:cuda, ort:tensorrt), torch (or torch@cuda) "
                              "or trt")  # fmt: skip
    return items


def _number(value: Any, src: str, key: str, *, minimum: float = 0.0, integer: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= minimum
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "a whole number" if integer else "a number"
        raise suite_error(src, key, f"is {value!r}", f"give {kind} >= {minimum:g}")
    return int(value) if integer else float(value)


def _timing(table: Any, src: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise suite_error(src, "timing", "is not a table", "write [timing] with warmup_ms, duration_s, iterations")
    _unknown(table, set(DEFAULT_TIMING), src, "timing.")
    out = dict(DEFAULT_TIMING)
    for key in ("warmup_ms", "duration_s"):
        if key in table:
            out[key] = _number(table[key], src, f"timing.{key}")
    if "iterations" in table:
        out["iterations"] = _number(table["iterations"], src, "timing.iterations", minimum=1, integer=True)
    if "threads" in table:
        out["threads"] = _number(table["threads"], src, "timing.threads", integer=True)
    if "repeats" in table:
        out["repeats"] = _number(table["repeats"], src, "timing.repeats", minimum=1, integer=True)
    if "trtexec_defaults" in table and table["trtexec_defaults"] not in (10, 11):
        raise suite_error(src, "timing.trtexec_defaults", f"is {table['trtexec_defaults']!r}", "use 10 or 11")
    out["trtexec_defaults"] = int(table.get("trtexec_defaults", out["trtexec_defaults"]))
    return out


def _limits(table: Any, src: str, prefix: str, defaults: Mapping[str, Any] = DEFAULT_LIMITS) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise suite_error(src, prefix, "is not a table", "write timeout_s and memory_mib under [limits]")
    _unknown(table, {"timeout_s", "memory_mib"}, src, prefix + ".")
    out = dict(defaults)
    if "timeout_s" in table:
        out["timeout_s"] = _number(table["timeout_s"], src, f"{prefix}.timeout_s", minimum=0.1)
    if "memory_mib" in table:
        value = table["memory_mib"]
        if value != "auto":
            value = _number(value, src, f"{prefix}.memory_mib", integer=True)
        out["memory_mib"] = value
    return out


def _tolerance(value: Any, src: str, key: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not set(value) <= {"atol", "rtol"} or not value:
        raise suite_error(src, key, f"is {value!r}", "write a table like { atol = 1e-3, rtol = 1e-3 }")
    return {k: _number(v, src, f"{key}.{k}") for k, v in value.items()}


def _accuracy(table: Any, src: str, prefix: str, base: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    if not isinstance(table, Mapping):
        raise suite_error(src, prefix, "is not a table", "write per-precision tolerances like fp16 = { atol = 1e-2 }")
    _unknown(table, set(PRECISIONS), src, prefix + ".")
    out = {p: dict(v) for p, v in base.items()}
    for precision, value in table.items():
        out[precision] = {**out[precision], **_tolerance(value, src, f"{prefix}.{precision}")}
    return out


def _thresholds(table: Any, src: str, key: str, *, nested: bool = True) -> dict[str, Any]:
    """``{ latency = 1.05, ort = { cpu = 1.05 } }``: metric ratios, optionally per backend kind."""
    if not isinstance(table, Mapping):
        raise suite_error(src, key, "is not a table", "write e.g. thresholds = { latency = 1.05 }")
    out: dict[str, Any] = {}
    for metric, value in table.items():
        if nested and metric in BACKEND_KINDS and isinstance(value, Mapping):
            out[metric] = _thresholds(value, src, f"{key}.{metric}", nested=False)
            if not out[metric]:
                raise suite_error(src, f"{key}.{metric}", "is empty", "gate at least one metric, e.g. { cpu = 1.05 }")
            continue
        if metric not in GATE_METRICS:
            hint = f"use some of: {', '.join(GATE_METRICS)}" + (f", or a backend table ({', '.join(BACKEND_KINDS)}) "
                                                                 "like ort = { cpu = 1.05 }" if nested else "")  # fmt: skip
            raise suite_error(src, f"{key}.{metric}", "is not a gated metric", hint)
        number = _number(value, src, f"{key}.{metric}", minimum=1.0)
        if number <= 1.0:
            raise suite_error(src, f"{key}.{metric}", f"is {value!r}", "give a ratio above 1, e.g. 1.05 for 5% slower")
        out[metric] = number
    return out


def _gate(table: Any, src: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise suite_error(src, "gate", "is not a table", "write [gate] with thresholds, confidence, resamples")
    _unknown(table, set(DEFAULT_GATE), src, "gate.")
    out = dict(DEFAULT_GATE)
    if "thresholds" in table:
        out["thresholds"] = _thresholds(table["thresholds"], src, "gate.thresholds")
        if not out["thresholds"]:
            raise suite_error(src, "gate.thresholds", "is empty", "gate at least one metric, e.g. { latency = 1.05 }")
    if "confidence" in table:
        conf = _number(table["confidence"], src, "gate.confidence")
        if not 0.5 <= conf < 1.0:
            raise suite_error(src, "gate.confidence", f"is {conf}", "give a level in [0.5, 1), e.g. 0.95")
        out["confidence"] = conf
    if "alpha" in table:
        alpha = _number(table["alpha"], src, "gate.alpha")
        if not 0.0 < alpha < 0.5:
            raise suite_error(src, "gate.alpha", f"is {alpha}", "give a significance level in (0, 0.5), e.g. 0.01")
        out["alpha"] = alpha
    if "run_noise" in table:
        noise = _number(table["run_noise"], src, "gate.run_noise")
        if noise > 0.5:
            raise suite_error(src, "gate.run_noise", f"is {noise}", "give the run-to-run spread as a fraction, e.g. 0.01 "
                              "for 1%")  # fmt: skip
        out["run_noise"] = noise
    for key, minimum in (("resamples", 100), ("seed", 0), ("min_samples", 2), ("max_samples", 100),
                         ("baseline_runs", 1), ("min_history", 1)):  # fmt: skip
        if key in table:
            out[key] = _number(table[key], src, f"gate.{key}", minimum=minimum, integer=True)
    if "statistic" in table:
        if table["statistic"] not in ("median", "p25", "p10"):
            raise suite_error(src, "gate.statistic", f"is {table['statistic']!r}", 'use "median" (default), "p25" or '
                              '"p10" (steadier on shared CPU hosts)')  # fmt: skip
        out["statistic"] = table["statistic"]
    if int(out["min_history"]) > int(out["baseline_runs"]):
        raise suite_error(src, "gate.min_history", f"is {out['min_history']}, more than baseline_runs = "
                          f"{out['baseline_runs']}", "make min_history <= baseline_runs")  # fmt: skip
    if "rank_test" in table:
        if not isinstance(table["rank_test"], bool):
            raise suite_error(src, "gate.rank_test", f"is {table['rank_test']!r}", "write true or false")
        out["rank_test"] = table["rank_test"]
    return out


def _model(entry: Any, i: int, src: str, base: Path, precisions: list[str], backends: list[str],
           accuracy: Mapping[str, Mapping[str, float]]) -> ModelEntry:  # fmt: skip
    p = f"model[{i}]"
    if not isinstance(entry, Mapping):
        raise suite_error(src, p, "is not a table", "write each model as a [[model]] table")
    _unknown(entry, _MODEL_KEYS, src, p + ".")
    has_model, has_export = "model" in entry, "export" in entry
    if has_model == has_export:
        raise suite_error(src, p, "needs exactly one of 'model' and 'export'",
                          'write model = "zoo:resnet" / "models/net.onnx", or export = "models/net.py:build"')  # fmt: skip
    export_inputs: list[str] = []
    export_dynamic: list[str] = []
    if has_model:
        value = entry["model"]
        if not isinstance(value, str) or not value:
            raise suite_error(src, f"{p}.model", f"is {value!r}", 'give an ONNX path or "zoo:NAME"')
        if value.startswith("zoo:"):
            kind, source = "zoo", value
        else:
            kind, source = "onnx", str(_relative(value, base))
            if not source.lower().endswith(".onnx"):
                raise suite_error(src, f"{p}.model", f"is '{value}', not an .onnx file",
                                  'give an .onnx path, "zoo:NAME", or use export = "module:factory"')  # fmt: skip
        for key in ("inputs", "dynamic"):
            if key in entry:
                raise suite_error(src, f"{p}.{key}", "only applies to export recipes", "remove it, or use export = ... instead of model = ...")
        default_name = value[4:] if kind == "zoo" else Path(value).stem
    else:
        value = entry["export"]
        if not isinstance(value, str) or ":" not in value:
            raise suite_error(src, f"{p}.export", f"is {value!r}",
                              'give module:factory, like "models/net.py:build" or "mypkg.models:build"')  # fmt: skip
        module_text, _, attr = value.rpartition(":")
        if module_text.endswith(".py"):
            value = f"{_relative(module_text, base)}:{attr}"
        kind, source = "export", value
        export_inputs = _str_list(entry.get("inputs", []), src, f"{p}.inputs") if "inputs" in entry else []
        export_dynamic = _str_list(entry.get("dynamic", []), src, f"{p}.dynamic") if "dynamic" in entry else []
        default_name = attr
    name = entry.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.]*", name):
        raise suite_error(src, f"{p}.name", f"is {name!r}", "give a name of letters, digits, '_' and '.' (no '-': it "
                          "separates the parts of case ids)")  # fmt: skip
    template, points = _shape_points(entry, src, p)
    profiles = _profiles(entry.get("profile"), src, f"{p}.profile", base) if "profile" in entry else []
    m_limits = _limits({k: entry[k] for k in ("timeout_s", "memory_mib") if k in entry}, src, p, {})
    m_accuracy = _accuracy(entry.get("accuracy", {}), src, f"{p}.accuracy", accuracy)
    compare = entry.get("compare", True)
    if not isinstance(compare, bool):
        raise suite_error(src, f"{p}.compare", f"is {compare!r}", "write true or false")
    reference = entry.get("reference")
    if reference is not None:
        if not isinstance(reference, str) or not reference:
            raise suite_error(src, f"{p}.reference", f"is {reference!r}", 'give a .pt2/.ts file or "module.py:factory"')
        ref_path = reference.rpartition(":")[0] if ":" in reference else reference
        if ref_path.endswith((".pt2", ".ts", ".py")):
            reference = reference.replace(ref_path, str(_relative(ref_path, base)), 1)
    calib_data = entry.get("calib_data")
    if calib_data is not None:
        if not isinstance(calib_data, str) or not calib_data:
            raise suite_error(src, f"{p}.calib_data", f"is {calib_data!r}", "give a folder of images or a .npy/.npz file")
        calib_data = str(_relative(calib_data, base))
    return ModelEntry(
        name=name, calib_data=calib_data, source_kind=kind, source=source, export_inputs=export_inputs, export_dynamic=export_dynamic,
        template=template, points=points, profiles=profiles,
        precisions=_str_list(entry["precisions"], src, f"{p}.precisions", PRECISIONS) if "precisions" in entry else precisions,
        backends=_backends(entry["backends"], src, f"{p}.backends") if "backends" in entry else backends,
        limits=m_limits, accuracy=m_accuracy,
        thresholds=_thresholds(entry.get("thresholds", {}), src, f"{p}.thresholds"),
        compare=compare, reference=reference,
    )  # fmt: skip


def _relative(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _shape_list(value: Any, src: str, key: str) -> dict[str, tuple[int, ...]]:
    from trtbuild.shapes import parse_shape_list

    if not isinstance(value, str):
        raise suite_error(src, key, f"is {value!r}", 'give a shape list like "images:1x3x640x640" (or "1x3x640x640")')
    try:
        return parse_shape_list(value, flag=key)
    except TrtbuildError as exc:
        raise suite_error(src, key, f"cannot be read ({exc})", 'write it like "images:1x3x640x640,scale:1x1"') from None


def _shape_label(shapes: Mapping[str, tuple[int, ...]]) -> str:
    from trtbuild.shapes import format_dims

    return "+".join(format_dims(d) for d in shapes.values())


def _shape_points(entry: Mapping[str, Any], src: str, p: str) -> tuple[dict[str, tuple[int, ...]] | None, list[ShapePoint]]:
    template = _shape_list(entry["shape"], src, f"{p}.shape") if "shape" in entry else None
    if "shapes" in entry and "batches" in entry:
        raise suite_error(src, p, "has both 'shapes' and 'batches'", "sweep either explicit shapes or batch sizes")
    if "shapes" in entry:
        if template is not None:
            raise suite_error(src, f"{p}.shape", "is given beside 'shapes'", "put every shape in the 'shapes' list")
        raw = entry["shapes"]
        if not isinstance(raw, list) or not raw:
            raise suite_error(src, f"{p}.shapes", f"is {raw!r}", 'give a list like ["1x3x64x64", {label = "big", '
                              'shape = "1x3x640x640"}]')  # fmt: skip
        points = []
        for j, item in enumerate(raw):
            key = f"{p}.shapes[{j}]"
            if isinstance(item, Mapping):
                _unknown(item, {"label", "shape"}, src, key + ".")
                shapes = _shape_list(item.get("shape"), src, f"{key}.shape")
                label = item.get("label") or _shape_label(shapes)
                if not isinstance(label, str):
                    raise suite_error(src, f"{key}.label", f"is {label!r}", "give a short text label")
            else:
                shapes = _shape_list(item, src, key)
                label = _shape_label(shapes)
            points.append(ShapePoint(_ID_SAFE.sub("_", label), shapes))
        labels = [pt.label for pt in points]
        if len(set(labels)) != len(labels):
            raise suite_error(src, f"{p}.shapes", f"gives two shapes the label of {labels}", "give each a distinct label")
        return None, points
    if "batches" in entry:
        raw = entry["batches"]
        if not isinstance(raw, list) or not raw or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1
                                                           for b in raw):  # fmt: skip
            raise suite_error(src, f"{p}.batches", f"is {raw!r}", "give a list of batch sizes like [1, 8, 16]")
        if len(set(raw)) != len(raw):
            raise suite_error(src, f"{p}.batches", f"repeats a batch in {raw}", "list each batch size once")
        return template, [ShapePoint(f"b{b}", None, b) for b in raw]
    if template is not None:
        return template, [ShapePoint(_ID_SAFE.sub("_", _shape_label(template)), template)]
    return None, [ShapePoint("default")]


def _profiles(value: Any, src: str, key: str, base: Path) -> list[dict[str, Any]]:
    from trtbuild.shapes import Profile, load_profiles_file

    try:
        if isinstance(value, str):
            path = _relative(value, base)
            found = load_profiles_file(str(path) if path.exists() else value)
        elif isinstance(value, Mapping):
            found = [Profile.from_dict(value, source=f"{src} {key}")]
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            found = [Profile.from_dict(v, source=f"{src} {key}[{j}]") for j, v in enumerate(value)]
        else:
            raise suite_error(src, key, f"is {value!r}", 'give a preset name ("imagenet224"), a TOML file, or an inline '
                              'table like { input = { min = "1x3x224x224", max = "8x3x224x224" } }')  # fmt: skip
    except TrtbuildError as exc:
        if str(exc).startswith(src):
            raise
        raise suite_error(src, key, f"cannot be used ({exc})", "fix the profile") from None
    return [p.as_dict() for p in found]
