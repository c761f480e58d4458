"""What one nightly case does, inside its own child process: prepare, build, compare, bench.

``python -m trtbuild.nightly.case CASE.json RESULT.json [--parent-pid PID]`` reads the case (written by
the parent, see trtbuild.nightly.suite.Case.to_dict) and writes RESULT.json atomically. A case that
fails in Python (a bad model, a TensorRT build error) writes a "failed" result with the reason; a crash,
a hang or a memory overrun leaves no result and the parent records the signal, the timeout or the RSS.

Steps (each one isolated in one function, so that the layer it calls is easy to swap):
  prepare   resolve zoo:NAME / the ONNX path / export a ``module:factory`` recipe; convert the ONNX to
            FP16 or INT8 Q/DQ when the case asks for it (ONNX Runtime cases; INT8 for TensorRT too)
  build     TensorRT only: plan_build + build_from_plan with the shared timing cache (skipped with the
            reason when TensorRT is not usable here)
  compare   accuracy against ONNX Runtime FP32 (or PyTorch, for ONNX Runtime FP32 itself) with the
            suite's tolerances, through trtbuild.compare
  bench     trtexec's timing loop (trtbuild.bench.run.time_runner); per-iteration times go to the parent

TEST-ONLY HOOKS. ``TRTBUILD_TEST_HOOKS`` is read here and nowhere else, to prove that the runner survives
broken cases. Comma-separated entries:
  abort:GLOB           os.abort() (SIGABRT, like a segfault in native code) in cases whose id matches GLOB
  hang:GLOB            sleep forever (the parent's timeout must end it)
  oom:GLOB             allocate and touch memory until killed (the parent's RSS watch must end it)
  fail:GLOB            raise a Python exception (a "failed" result, not a crash)
  delay:PATTERN=FRAC   after every timed inference, spin for FRAC x its duration (0.10 = 10% slower) in
                       cases whose backend or id matches PATTERN; host-clock backends only
Results of a case that a hook touched carry ``"test_hooks"``; never set the variable on a real run.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import fnmatch
import hashlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import TrtbuildError
from trtbuild.fsutil import atomic_write_json

if TYPE_CHECKING:
    import numpy as np

    from trtbuild.backends.base import Runner
    from trtbuild.shapes import TensorInfo

log = logging.getLogger("trtbuild.nightly.case")

HOOK_ENV = "TRTBUILD_TEST_HOOKS"
RESULT_SCHEMA = "trtbuild.nightly.case-result"


class SkipCase(Exception):
    """The case cannot run here (no TensorRT, an unsupported precision): recorded as skipped, not failed."""


class StepFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason


# --------------------------------------------------------------------------------------------------
# Test hooks (read only in this child process)


@dataclass
class Hooks:
    abort: list[str] = field(default_factory=list)
    hang: list[str] = field(default_factory=list)
    oom: list[str] = field(default_factory=list)
    fail: list[str] = field(default_factory=list)
    delay: list[tuple[str, float]] = field(default_factory=list)


def parse_hooks(text: str | None) -> Hooks:
    hooks = Hooks()
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        kind, _, arg = entry.partition(":")
        if kind == "delay":
            pattern, _, frac = arg.rpartition("=")
            try:
                hooks.delay.append((pattern or "*", float(frac)))
            except ValueError:
                raise TrtbuildError(f"{HOOK_ENV}: '{entry}' must look like delay:ort=0.10.") from None
        elif kind in ("abort", "hang", "oom", "fail"):
            getattr(hooks, kind).append(arg or "*")
        else:
            raise TrtbuildError(f"{HOOK_ENV}: unknown hook '{entry}'; use abort:, hang:, oom:, fail: or delay:.")
    return hooks


def _matches(case: Mapping[str, Any], pattern: str, *, backend_too: bool = False) -> bool:
    names = [case["id"]] + ([case["backend"], case["backend_kind"]] if backend_too else [])
    return any(fnmatch.fnmatchcase(n, pattern) for n in names)


def fire_crash_hooks(hooks: Hooks, case: Mapping[str, Any]) -> list[str]:
    """Abort, hang or eat memory when a hook names this case; returns the hooks that apply (for the record)."""
    applied = []
    if any(_matches(case, p) for p in hooks.abort):
        print(f"[test hook] abort: {case['id']}", flush=True)
        os.abort()
    if any(_matches(case, p) for p in hooks.hang):
        print(f"[test hook] hang: {case['id']}", flush=True)
        while True:
            time.sleep(3600)
    if any(_matches(case, p) for p in hooks.oom):
        print(f"[test hook] oom: {case['id']}", flush=True)
        hog = []
        while True:
            block = bytearray(32 << 20)
            block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page: it must become resident
            hog.append(block)
            time.sleep(0.01)
    if any(_matches(case, p) for p in hooks.fail):
        applied.append("fail")
        raise RuntimeError("test hook: fail")
    for pattern, fraction in hooks.delay:
        if _matches(case, pattern, backend_too=True):
            applied.append(f"delay={fraction:g}")
    return applied


def delay_fraction(hooks: Hooks, case: Mapping[str, Any]) -> float:
    return sum(f for p, f in hooks.delay if _matches(case, p, backend_too=True))


def record_cpu_time(runner: Runner) -> list[int]:
    """Wrap ``runner.infer`` to append the process CPU time (ns, all threads) of every call to the list returned.

    Wall-clock latency on a shared CPU host measures the neighbours as much as the model; CPU time does not
    (with threads = 1 it is the model's own work), which is what the ``cpu`` gate metric compares.
    """
    calls: list[int] = []
    inner = runner.infer

    def timed(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.process_time_ns()
        out = inner(feed)
        calls.append(time.process_time_ns() - start)
        return out

    runner.infer = timed  # type: ignore[method-assign]
    return calls


def slow_down(runner: Runner, fraction: float) -> None:
    """Make each ``runner.infer`` take (1 + fraction) times as long, in wall time and in CPU time alike, by
    spinning (sleep is too coarse, and would add no CPU time)."""
    inner = runner.infer

    def delayed(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = inner(feed)
        wall_until = wall + (time.perf_counter() - wall) * (1.0 + fraction)
        cpu_until = cpu + (time.process_time() - cpu) * (1.0 + fraction)
        while time.perf_counter() < wall_until or time.process_time() < cpu_until:
            pass
        return out

    runner.infer = delayed  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------------
# The steps


@dataclass
class Prepared:
    """The model as the case runs it."""

    model_arg: str  # what ort/torch runner specs refer to: zoo:NAME or an ONNX path
    onnx: Path  # the FP32 ONNX file
    candidate_onnx: Path  # the ONNX this case runs or builds (converted when the precision asks)
    inputs: list[TensorInfo]
    outputs: list[str]
    zoo: str | None
    sha256: str
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_recipe(case: Mapping[str, Any], work: Path) -> Path:
    """``module:factory`` -> ONNX (+ PyTorch reference beside it), once per run (trtbuild.model.export)."""
    from trtbuild.model.export import export

    out = work / "models" / f"{case['model']}.onnx"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        export(case["source"], out, inputs=case["export_inputs"] or None, dynamic=case["export_dynamic"] or None)
    return out


def convert_precision(onnx: Path, precision: str, out: Path, shapes: Mapping[str, tuple[int, ...]],
                      calib_data: str | None = None) -> Path:  # fmt: skip
    """FP16 cast or INT8 Q/DQ of the ONNX (trtbuild.precision.convert_onnx), once per run.

    INT8 calibrates on ``calib_data`` (the model's ``calib_data`` key) or, without it, on seeded random
    data at the case's shapes: fine for timing, meaningless for accuracy (hence the loose default int8
    tolerance). The conversion's own accuracy report is kept beside the file; the compare step judges.
    """
    if out.exists():
        return out
    if precision not in ("fp16", "int8"):
        raise SkipCase(f"no ONNX conversion to {precision} for this backend")
    from trtbuild.model.calib import CalibOptions
    from trtbuild.precision import convert_onnx
    from trtbuild.trt.compat import installed_tensorrt_version, major_version

    out.parent.mkdir(parents=True, exist_ok=True)
    calib = CalibOptions(data=calib_data) if calib_data else CalibOptions(random=True, samples=8, seed=0)
    target = major_version(installed_tensorrt_version()) or 10
    convert_onnx(onnx, out, fp16=precision == "fp16", int8=precision == "int8", calib=calib, target_trt=target,
                 profile_opt=dict(shapes), check_accuracy=False)  # fmt: skip
    return out


def prepare(case: Mapping[str, Any], work: Path) -> Prepared:
    from trtbuild.model.load import load_onnx, model_inputs, model_outputs, resolve_model_path

    kind, source = case["source_kind"], case["source"]
    known = case.get("prepared") or {}  # what the first repeat of this case prepared (later repeats reuse it)
    if known.get("onnx") and Path(known["onnx"]).is_file():
        onnx = Path(known["onnx"])
        model_arg = source if kind == "zoo" else str(onnx)
    elif kind == "export":
        onnx = export_recipe(case, work)
        model_arg = str(onnx)
    else:
        onnx = resolve_model_path(source)  # exports zoo models once into the zoo cache
        model_arg = source if kind == "zoo" else str(onnx)
    proto = load_onnx(onnx, load_weights=False)
    inputs, outputs = model_inputs(proto), [o.name for o in model_outputs(proto)]
    zoo_name = source[4:] if kind == "zoo" else None
    digest = known.get("sha256") or _sha256(Path(onnx))
    prepared = Prepared(model_arg, Path(onnx), Path(onnx), inputs, outputs, zoo_name, digest)
    if known.get("shapes"):
        prepared.shapes = {n: tuple(d) for n, d in known["shapes"].items()}
    else:
        prepared.shapes = resolve_shapes(case, inputs, zoo_name)
    precision, backend = case["precision"], case["backend_kind"]
    if backend == "torch" and precision != "fp32":
        raise SkipCase(f"the torch backend runs fp32 only; time {precision} with ort or trt")
    if precision != "fp32" and (backend == "ort" or (backend == "trt" and precision == "int8")):
        if precision == "bf16":
            raise SkipCase("bf16 is a TensorRT build option; ONNX Runtime cases run fp32, fp16 or int8")
        out = work / "models" / f"{case['model']}-{prepared.sha256[:8]}-{precision}.onnx"
        prepared.candidate_onnx = convert_precision(prepared.onnx, precision, out, prepared.shapes, case.get("calib_data"))
    return prepared


def resolve_shapes(case: Mapping[str, Any], inputs: list[TensorInfo], zoo_name: str | None) -> dict[str, tuple[int, ...]]:
    """The case's input shapes: explicit ones; else a batch sweep over a template (the ``shape`` key, the
    first profile's opt shapes, the zoo's example shapes or the static dims); dynamic batch -> 1."""
    from trtbuild.errors import ShapeError
    from trtbuild.shapes import input_named

    point = case["shape"]
    names = [t.name for t in inputs]
    if point.get("shapes"):
        given = {k: tuple(v) for k, v in point["shapes"].items()}
    elif case.get("template"):
        given = {k: tuple(v) for k, v in case["template"].items()}
    elif case.get("profiles"):
        given = {n: tuple(r["opt"]) for n, r in case["profiles"][0].items()}
    elif zoo_name is not None:
        from trtbuild import zoo

        given = {n: tuple(s) for n, s in zoo.get(zoo_name).inputs.items()}
    else:
        given = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, dims in given.items():
        shapes[input_named(name, inputs, naming_hint='shape = "a:1x3x64x64,b:1x1" in the suite')] = dims
    for t in inputs:
        if t.name in shapes:
            continue
        fill: list[int] = []
        for axis, d in enumerate(t.dims):
            if isinstance(d, int) and d >= 0:
                fill.append(d)
            elif axis == 0:
                fill.append(1)
            else:
                raise ShapeError(f"Input {t.describe()} has dynamic dimensions and the suite gives no shape for it; add "
                                 f"shape = \"{t.name}:...\" (or shapes = [...]) to the model's table.")  # fmt: skip
        shapes[t.name] = tuple(fill)
    batch = point.get("batch")
    if batch:
        shapes = {n: ((int(batch), *d[1:]) if d else d) for n, d in shapes.items()}
    return {n: shapes[n] for n in names}


def make_feed(prepared: Prepared, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs at the case's shapes, the same in every repeat: floats uniform in [0, 1) (image-like,
    and positive for scale inputs), integers and booleans as trtbuild.inputs.random_array draws them."""
    import numpy as np

    from trtbuild.inputs import random_array

    rng = np.random.default_rng(seed)
    dtypes = {t.name: t.dtype for t in prepared.inputs}
    return {n: random_array(s, dtypes.get(n, "float32"), rng, (0.0, 1.0)) for n, s in prepared.shapes.items()}


def build_engine(case: Mapping[str, Any], prepared: Prepared, work: Path) -> dict[str, Any]:
    """TensorRT engine for the case (plan_build + build_from_plan), reused by cases that need the same one."""
    from trtbuild.bench.run import tensorrt_unavailable

    missing = tensorrt_unavailable()
    if missing:
        raise SkipCase("TensorRT is not usable here (" + missing.split(". ")[0].rstrip(".") + ")")
    from trtbuild.build import build_from_plan
    from trtbuild.plan import plan_build
    from trtbuild.shapes import Profile, ShapeRange
    from trtbuild.spec import BuildSpec

    pairs: list[tuple[str, str | None]] = []
    if case["precision"] in ("fp16", "bf16", "int8"):
        pairs.append((case["precision"], None))
    cache = case.get("timing_cache")
    if cache:
        pairs.append(("timingCacheFile", str(cache)))
    spec = BuildSpec.from_pairs(pairs, dialect=None, onnx=str(prepared.candidate_onnx))
    if case.get("profiles"):
        spec.build.profiles = [Profile.from_dict(p, source=f"case {case['id']} profile") for p in case["profiles"]]
    else:
        spec.build.profiles = [Profile({n: ShapeRange.fixed(d) for n, d in prepared.shapes.items()})]
    key = hashlib.sha256(json.dumps([str(prepared.candidate_onnx), prepared.sha256, case["precision"],
                                     [p.as_dict() for p in spec.build.profiles]]).encode()).hexdigest()[:12]  # fmt: skip
    engine = work / "engines" / f"{case['model']}-{case['precision']}-{key}.engine"
    engine.parent.mkdir(parents=True, exist_ok=True)
    spec.build.save_engine = str(engine)
    reused = engine.exists() and Path(str(engine) + ".json").exists()
    if not reused:
        plan = plan_build(spec, str(prepared.candidate_onnx))
        build_from_plan(plan)
    manifest = Path(str(engine) + ".json")
    return {"path": str(engine), "sha256": _sha256(engine), "manifest_sha256": _sha256(manifest) if manifest.exists() else None,
            "reused": reused, "timing_cache": cache}  # fmt: skip


def _torch_spec(case: Mapping[str, Any]) -> str:
    if case.get("reference"):
        return f"torch:{case['reference']}"
    if case["source_kind"] == "export":
        return f"torch:{case['source']}"
    return "torch"


def backend_spec(case: Mapping[str, Any], prepared: Prepared) -> str:
    """The registry spec (trtbuild.backends.registry) that runs this case's candidate."""
    backend, kind = case["backend"], case["backend_kind"]
    if kind == "ort":
        # A converted model is named in the spec; its provider (if any) is set on the runner by make_runner.
        return f"ort:{prepared.candidate_onnx}" if prepared.candidate_onnx != prepared.onnx else backend
    if kind == "torch":
        device = backend.partition("@")[2]
        spec = _torch_spec(case)
        return f"{spec}@{device}" if device else spec
    return backend


def make_runner(case: Mapping[str, Any], prepared: Prepared, engine: Mapping[str, Any] | None) -> Runner:
    """The candidate runner (trtbuild.backends.registry), with the suite's thread count for CPU backends."""
    from trtbuild.backends.registry import make_runner as registry_runner

    kind = case["backend_kind"]
    if kind == "trt":
        assert engine is not None
        return registry_runner(f"trt:{engine['path']}", name="trt")
    spec = backend_spec(case, prepared)
    # ONNX Runtime runs the file (no zoo lookup, so no torch import); torch needs zoo:NAME to find the module.
    model = str(prepared.onnx) if kind == "ort" else prepared.model_arg
    runner = registry_runner(spec, model=model, inputs=prepared.inputs, output_names=prepared.outputs,
                             name=case["backend"])  # fmt: skip
    provider = case["backend"].partition(":")[2] if kind == "ort" else ""
    if provider and prepared.candidate_onnx != prepared.onnx:
        runner.requested_providers = [p for p in provider.split("+") if p]  # type: ignore[attr-defined]
    threads = int(case["timing"].get("threads") or 0)
    if threads and kind == "ort":
        runner.threads = threads  # type: ignore[attr-defined]
    return runner


def reference_spec(case: Mapping[str, Any]) -> str:
    """What the case is checked against: ONNX Runtime FP32 (CPU), or PyTorch for ONNX Runtime FP32 itself."""
    if case["backend_kind"] == "ort" and case["precision"] == "fp32":
        return _torch_spec(case)
    return "ort"


def compare_step(case: Mapping[str, Any], prepared: Prepared, engine: Mapping[str, Any] | None,
                 feed: Mapping[str, np.ndarray]) -> dict[str, Any]:  # fmt: skip
    """Accuracy of the candidate against the reference on the case's feed (trtbuild.compare.compare)."""
    from trtbuild.compare import compare

    reference = reference_spec(case) or "ort"
    tol = case["tolerance"]
    precision = {"bf16": "fp16"}.get(case["precision"], case["precision"])
    if case["backend_kind"] == "trt":
        against = [reference]
        engine_path = engine["path"] if engine else None
    else:
        against = [backend_spec(case, prepared), reference]
        engine_path = None
    if against[0] == reference:
        return {"skipped": "the candidate is the reference"}
    try:
        report = compare(prepared.model_arg, against=against, engine=engine_path, reference=reference, feeds=[dict(feed)],
                         precision=precision, atol=tol.get("atol"), rtol=tol.get("rtol"))  # fmt: skip
    except TrtbuildError as exc:
        if reference.startswith("torch") and "reference" in str(exc).lower():
            return {"skipped": f"no PyTorch reference for this model ({str(exc).split(';')[0]})"}
        raise
    worst = max(report.results, key=lambda r: r.max_abs) if report.results else None
    return {
        "reference": reference,
        "passed": report.passed,
        "atol": tol.get("atol"),
        "rtol": tol.get("rtol"),
        "max_abs": worst.max_abs if worst else None,
        "max_rel": worst.max_rel if worst else None,
        "message": None if report.passed else report.failure_message(),
        # every metric and the verdict's reason per output, so accuracy can be tracked run over run
        "outputs": {r.output: {"max_abs": r.max_abs, "max_rel": r.max_rel, "cosine": r.cosine, "rel_l2": r.rel_l2,
                               "kind": r.kind, "measure_name": r.measure_name, "measure": r.measure,
                               "verdict": r.verdict, "passed": r.passed, "error": r.error}
                    for r in report.results},  # fmt: skip
    }


def bench_step(case: Mapping[str, Any], runner: Runner, feed: Mapping[str, np.ndarray],
               delay: float) -> tuple[dict[str, Any], dict[str, list[float]]]:  # fmt: skip
    """trtexec's loop on the case's feed: the summary, a LatencyTable row and per-iteration times."""
    from trtbuild.bench.run import time_runner
    from trtbuild.bench.table import make_row
    from trtbuild.bench.timing import TimingOptions, summarize, warmup_cut

    t = case["timing"]
    options = TimingOptions.trtexec(int(t["trtexec_defaults"]), warm_up_ms=float(t["warmup_ms"]),
                                    iterations=int(t["iterations"]), duration_s=float(t["duration_s"]))  # fmt: skip
    if delay:
        slow_down(runner, delay)
    cpu_ns = record_cpu_time(runner)
    traces, mode = time_runner(runner, feed, options)
    batch = int(next(iter(feed.values())).shape[0]) if feed and next(iter(feed.values())).ndim else 1
    summary = summarize(traces, mode=mode, warm_up_ms=options.warm_up_ms, batch=batch, percentiles=options.percentiles)
    ordered = traces.sorted_by_h2d_start()
    measured = ordered.take(slice(warmup_cut(ordered, options.warm_up_ms), None)).durations()
    metrics = ("latency", "compute", "enqueue", "h2d", "d2h") if mode.is_gpu else ("latency", "compute")
    key = {"enqueue": "enq"}
    samples = {m: [float(x) for x in measured[key.get(m, m)]] for m in metrics}
    if not mode.is_gpu and len(cpu_ns) >= len(traces):
        # Host loop: one infer per trace, in start order; the warm-up cut drops the same leading calls.
        first = len(traces) - len(measured["latency"])
        samples["cpu"] = [x / 1e6 for x in cpu_ns[len(cpu_ns) - len(traces) + first :]]
    row = make_row(summary, model=case["source"], backend=runner.backend, runner=runner.name,
                   precision=case["precision"], shape=case["shape"]["label"], options=options,
                   environment=case.get("environment") or {}, run_id=f"{case.get('run_id', '')}:{case['id']}",
                   extra={"case_id": case["id"]})  # fmt: skip
    return {"summary": summary.to_dict(), "row": _jsonable(row)}, samples


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    import math

    out: dict[str, Any] = {}
    for k, v in row.items():
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()
        out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
    return out


# --------------------------------------------------------------------------------------------------
# The child process


@contextlib.contextmanager
def _step(name: str, result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    info: dict[str, Any] = {}
    start = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] step {name}", flush=True)
    try:
        yield info
    except (SkipCase, StepFailed):
        raise
    except TrtbuildError as exc:
        raise StepFailed(name, str(exc)) from exc
    except Exception as exc:
        traceback.print_exc()
        raise StepFailed(name, f"{type(exc).__name__}: {exc}") from exc
    finally:
        info["seconds"] = round(time.perf_counter() - start, 3)
        result["steps"][name] = info


def run_case(case: Mapping[str, Any], work: Path, hooks: Hooks) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """All steps of one case; raises SkipCase or StepFailed. Returns (result fields, samples)."""
    result: dict[str, Any] = {"steps": {}}
    samples: dict[str, list[float]] = {}
    threads = int(case["timing"].get("threads") or 0)
    if case["backend_kind"] == "torch" and case["precision"] != "fp32":
        raise SkipCase(f"the torch backend runs fp32 only; time {case['precision']} with ort or trt")
    if case["backend_kind"] == "trt":
        from trtbuild.bench.run import tensorrt_unavailable

        missing = tensorrt_unavailable()  # before any work: a skipped TensorRT case costs nothing
        if missing:
            raise SkipCase("TensorRT is not usable here (" + missing.split(". ")[0].rstrip(".") + ")")
    with _step("prepare", result) as info:
        prepared = prepare(case, work)
        info.update({"onnx": str(prepared.onnx), "candidate": str(prepared.candidate_onnx), "sha256": prepared.sha256,
                     "shapes": {n: list(s) for n, s in prepared.shapes.items()}})  # fmt: skip
        result["model_sha256"] = prepared.sha256
        result["shapes"] = info["shapes"]
        if threads and (case["backend_kind"] == "torch" or "torch" in sys.modules):
            import torch

            torch.set_num_threads(threads)
    engine = None
    if case["backend_kind"] == "trt":
        with _step("build", result) as info:
            engine = build_engine(case, prepared, work)
            info.update(engine)
            result["engine"] = {k: engine[k] for k in ("sha256", "manifest_sha256")} | {"file": Path(engine["path"]).name}
    feed = make_feed(prepared, seed=int(case.get("seed", 0)))
    if case.get("compare", True) and not case.get("repeat"):  # accuracy does not change between repeats
        with _step("compare", result) as info:
            info.update(compare_step(case, prepared, engine, feed))
            result["accuracy"] = None if "skipped" in info else {k: v for k, v in info.items() if k != "seconds"}
    with _step("bench", result) as info:
        runner = make_runner(case, prepared, engine)
        with runner:
            result["runner"] = runner.describe()
            bench, samples = bench_step(case, runner, feed, delay_fraction(hooks, case))
        result["bench"] = bench
        latency = bench["summary"]["latency_ms"]
        info.update({"queries": bench["summary"]["queries"], "median_ms": latency["median"]})
    return result, samples


def _harden(parent_pid: int | None) -> None:
    """No core files, Python stacks on fatal signals (and on SIGUSR1 from the parent before a timeout kill),
    and die with the parent."""
    with contextlib.suppress(Exception):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    faulthandler.enable(all_threads=True)
    with contextlib.suppress(AttributeError, ValueError):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: a parent killed with -9 takes its case along
    if parent_pid and os.getppid() != parent_pid:
        os._exit(70)  # the parent is already gone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtbuild.nightly.case", description="Run one nightly case.")
    parser.add_argument("case_file")
    parser.add_argument("result_file")
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    _harden(args.parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    case = json.loads(Path(args.case_file).read_text(encoding="utf-8"))
    work = Path(case["work_dir"])
    result: dict[str, Any] = {"schema": RESULT_SCHEMA, "case_id": case["id"], "status": "failed", "reason": None,
                              "steps": {}}  # fmt: skip
    samples: dict[str, list[float]] = {}
    started = time.perf_counter()
    try:
        hooks = parse_hooks(os.environ.get(HOOK_ENV))
        applied = fire_crash_hooks(hooks, case)
        if applied:
            result["test_hooks"] = applied
        fields, samples = run_case(case, work, hooks)
        result.update(fields)
        result["status"] = "ok"
    except SkipCase as exc:
        result.update(status="skipped", reason=str(exc))
    except StepFailed as exc:
        result.update(status="failed", reason=exc.reason, failed_step=exc.step)
        if exc.__cause__ is not None and not isinstance(exc.__cause__, TrtbuildError):
            pass  # the traceback is in the log already
    except TrtbuildError as exc:
        result.update(status="failed", reason=str(exc), failed_step="setup")
    except Exception as exc:
        traceback.print_exc()
        result.update(status="failed", reason=f"{type(exc).__name__}: {exc}", failed_step="setup")
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["samples"] = samples
    print(f"[{time.strftime('%H:%M:%S')}] {result['status']}" + (f": {result['reason']}" if result["reason"] else ""),
          flush=True)  # fmt: skip
    atomic_write_json(args.result_file, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
