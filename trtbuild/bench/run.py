"""``bench``: time a model on several backends, shapes and batch sizes; collect a LatencyTable.

MODEL is an ONNX file, ``zoo:NAME`` or an engine (``.engine``/``.plan``/``.trt``). Backends are runner
specs (see trtbuild.backends.registry): ``ort`` and ``torch`` run the ONNX (torch: the zoo module or the
``.pt2``/``.ts`` saved beside the ONNX by export), ``trt`` runs the engine (MODEL itself, or the
``.engine`` that ``trtbuild build`` wrote for the ONNX, or ``trt:path.engine``).

TensorRT runs are timed on the GPU with CUDA events (trtbuild.trt.runtime); ONNX Runtime and PyTorch
runs with the host clock around ``infer`` (their numbers include their own host<->device copies and are
labelled as host-clock figures everywhere).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.bench.table import LatencyTable, make_row, new_run_id, utc_now
from trtbuild.bench.timing import (
    TimingMode,
    TimingOptions,
    Traces,
    summarize,
    time_host,
    warmup_cut,
    write_export_times,
)
from trtbuild.errors import MissingDependencyError, ShapeError, SpecError, TrtbuildError
from trtbuild.shapes import Dims, TensorInfo, format_dims, format_shape_list, input_named, parse_shape_list

if TYPE_CHECKING:
    import numpy as np

    from trtbuild.backends.base import Runner

log = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
DEFAULT_OUT_DIR = "bench_results"


@dataclass
class _Case:
    """One timed configuration: the shapes of every input and its batch label."""

    shapes: dict[str, Dims]
    batch: int
    base: str  # the shape set before the batch sweep, for grouping in plots
    axes: dict[str, int] = field(default_factory=dict)  # input -> its batch axis (swept inputs only)

    @property
    def label(self) -> str:
        return format_shape_list(self.shapes)


@dataclass
class _Backend:
    spec: str
    kind: str
    runner: Runner | None = None
    skipped: str = ""
    engine: Path | None = None


@dataclass
class _Model:
    text: str  # as the user gave it
    onnx: str | None  # an ONNX path or zoo:NAME that ort/torch can run
    engine: Path | None
    zoo: str | None
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    precision: str = "fp32"


# --------------------------------------------------------------------------------------------------
# Public API


def bench(
    model: str | os.PathLike[str],
    backends: str | Sequence[str] = ("ort",),
    shapes: str | Mapping[str, Sequence[int]] | Sequence[str | Mapping[str, Sequence[int]]] | None = None,
    batch_sweep: Sequence[int] | None = None,
    *,
    timing: TimingOptions | None = None,
    out_dir: str | os.PathLike[str] | None = DEFAULT_OUT_DIR,
    plots: bool = True,
    export_times: str | os.PathLike[str] | None = None,
    profile_index: int | None = None,
    seed: int = 0,
    precision: str | None = None,
    data: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    show_progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> LatencyTable:
    """Time ``model`` on each backend, shape set and batch size; return (and write) a LatencyTable.

    ``backends``: ``"trt,ort,torch"`` or a list of runner specs. ``shapes``: one or more shape sets in
    trtexec's grammar (``"images:1x3x640x640"``) or dicts; by default the zoo model's example shapes, an
    engine's opt shapes (trtexec's rule) or an ONNX's static shapes. ``batch_sweep``: batch sizes that
    set each input's batch axis (the symbolic dim the inputs share, e.g. ``batch`` in ``state [2, batch, 128]``;
    axis 0 when the dims have no names). ``data``: real inputs, an ``.npz`` keyed by input name or a folder
    (images, or .npy/.npz samples), read by the readers compare and calibration use; its arrays set the
    shapes (a sweep repeats its samples along the batch axis). ``threads``: intra- and inter-op threads for
    ONNX Runtime and PyTorch (default: theirs); every row records the thread settings, the CPU affinity and
    ONNX Runtime's optimization level. ``timing``: trtexec 11's defaults unless given.
    ``out_dir``: where the CSV/Markdown/JSON(/Parquet) tables and PNG plots go (None: write nothing).
    ``export_times``: trtexec's ``--exportTimes`` JSON (one file per run; several runs add a suffix).
    ``echo``: called with each run's trtexec-style summary (the CLI prints them).
    The written paths are in ``table.files``; backends that were skipped are in ``table.skipped``. A run
    that fails (a sweep point past memory, a shape the model refuses) is listed in ``table.failed`` and the
    runs already measured are kept and written; only when nothing could be measured does ``bench`` raise.
    """
    if threads is not None and int(threads) < 1:
        raise SpecError(f"--threads takes a whole number of threads >= 1, not {threads}.")
    options = timing or TimingOptions()
    info = _resolve_model(model)
    plan = _resolve_backends(info, backends, shapes)
    active = [b for b in plan if b.runner is not None]
    if not active:
        raise SpecError("No backend is left to time.")
    _fill_io(info, active, profile_index)
    real: dict[str, np.ndarray] | None = None
    if data is not None:
        real = _data_arrays(info, data, shapes)
        shapes = {n: tuple(int(d) for d in a.shape) for n, a in real.items()}
    cases = _cases(info, shapes, batch_sweep, lambda: _default_shapes(info, active, profile_index))
    environment = _environment()
    table = LatencyTable()
    table.skipped = [f"{b.spec}: {b.skipped}" for b in plan if b.skipped]
    for line in table.skipped:
        _say(echo, f"[I] Skipping {line}")
    feeds = {case.label: (_batched(real, case) if real is not None else _make_feed(info, case.shapes, seed))
             for case in cases}  # fmt: skip
    for b in active:
        if b.kind == "ort" and threads is not None:
            b.runner.threads = int(threads)  # type: ignore[union-attr]
    total = len(active) * len(cases)
    export_index = 0
    with _progress(show_progress, total) as advance:
        for backend in active:
            runner = backend.runner
            assert runner is not None
            with runner, _torch_threads(threads if backend.kind == "torch" else None):
                described = _describe(runner)
                settings = thread_settings(backend.kind, runner, threads)
                for case in cases:
                    advance(f"{runner.name} {case.label}")
                    try:
                        traces, mode = time_runner(runner, feeds[case.label], options)
                    except TrtbuildError as exc:  # keep what was measured; say what failed and go on
                        failure = f"{runner.name} {case.label} (batch {case.batch}): {exc}"
                        table.failed.append(failure)
                        log.warning("bench: %s", failure)
                        continue
                    summary = summarize(traces, mode=mode, warm_up_ms=options.warm_up_ms, batch=case.batch,
                                        percentiles=options.percentiles)  # fmt: skip
                    extra: dict[str, Any] = {"base_shape": case.base, **settings,
                                             "data": os.fspath(data) if data is not None else None}  # fmt: skip
                    if export_times is not None:
                        export_index += 1
                        path = _export_path(export_times, export_index, total, runner.name, case)
                        write_export_times(path, traces, options.warm_up_ms)
                        extra["export_times"] = str(path)
                    row = make_row(
                        summary,
                        model=info.text,
                        backend=runner.backend,
                        runner=runner.name,
                        precision=precision or _precision_of(backend, described, info),
                        shape=case.label,
                        options=options,
                        environment=environment,
                        run_id=new_run_id(),
                        created_utc=utc_now(),
                        device=str(mode.device or described.get("device") or _providers(described)),
                        extra=extra,
                    )
                    table.append(row, measured_latencies(traces, options.warm_up_ms))
                    from trtbuild.bench.report import summary_text

                    title = f"{runner.name} | {info.text} | {case.label} | batch {case.batch}"
                    _say(echo, summary_text(summary, title=title))
    if table.failed and not len(table):
        raise SpecError("Nothing could be measured: " + "; ".join(table.failed))
    if out_dir is not None:
        from trtbuild.bench.table import unique_stem

        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stem = unique_stem(folder, info.text)
        files = table.write(folder, stem=stem, title=f"Benchmark of {info.text}")
        if plots:
            from trtbuild.bench.plots import write_plots

            files.update(write_plots(table, folder, stem, title=f"{info.text}"))
        table.files = files
    return table


def time_runner(runner: Runner, feed: Mapping[str, np.ndarray], options: TimingOptions,
                on_iteration: Callable[[float], None] | None = None) -> tuple[Traces, TimingMode]:  # fmt: skip
    """Traces and mode for one feed: trtexec's GPU loop when the runner has one (TensorRT), else the
    host-clock loop around ``runner.infer``. One untimed ``infer`` first checks the feed and loads lazily."""
    timer = getattr(runner, "time_trtexec", None) or getattr(getattr(runner, "runtime", None), "time_trtexec", None)
    if timer is not None:
        result: tuple[Traces, TimingMode] = timer(feed, options, on_iteration=on_iteration)
        return result
    runner.infer(feed)  # surface shape/input errors once, outside the timed loop

    infer = runner.infer

    def call() -> None:
        infer(feed)

    return time_host(call, options, on_iteration=on_iteration), TimingMode.host(options)


def measured_latencies(traces: Traces, warm_up_ms: float) -> np.ndarray:
    """The per-query latencies (ms, float32) that the summary's statistics cover, in start order."""
    ordered = traces.sorted_by_h2d_start()
    return ordered.take(slice(warmup_cut(ordered, warm_up_ms), None)).durations()["latency"]


# --------------------------------------------------------------------------------------------------
# Model, backends, shapes


def _resolve_model(model: str | os.PathLike[str]) -> _Model:
    text = os.fspath(model)
    if text.startswith("zoo:"):
        from trtbuild import zoo

        zoo.get(text[4:])  # a clear error for an unknown name
        return _Model(text, text, None, text[4:])
    path = Path(text).expanduser()
    if not path.exists():
        raise SpecError(f"{path} does not exist; give an .onnx file, an .engine file or zoo:NAME.")
    if path.suffix.lower() in ENGINE_SUFFIXES:
        onnx = _manifest_onnx(path)
        return _Model(text, onnx, path, None)
    return _Model(text, str(path), None, None)


def _manifest_onnx(engine: Path) -> str | None:
    from trtbuild.backends.trt_runner import read_manifest

    manifest = read_manifest(engine) or {}
    source = manifest.get("onnx")
    onnx_path = source.get("path") if isinstance(source, dict) else source
    if onnx_path and (str(onnx_path).startswith("zoo:") or Path(onnx_path).exists()):
        return str(onnx_path)
    return None


def _kind(spec: str) -> str:
    kind = spec.partition(":")[0].strip().lower()
    return kind.split("@", 1)[0]


def tensorrt_unavailable() -> str | None:
    """Why TensorRT runs are impossible here (TensorRT or PyCUDA missing), or None."""
    try:
        from trtbuild.trt.compat import import_tensorrt

        import_tensorrt()
        from trtbuild.trt.runtime import import_pycuda

        import_pycuda()
    except MissingDependencyError as exc:
        from trtbuild.doctor import stubs_only

        stubs = stubs_only()
        if stubs is not None:  # not a broken install: the type stubs the Makefile installs for mypy
            how = str(exc).split(". ", 1)[1] if ". " in str(exc) else ""  # compat's how-to, after its diagnosis
            return (f"Only tensorrt-stubs {stubs} is installed: the type stubs mypy checks trtbuild against, not "
                    f"TensorRT itself. {how}").strip()  # fmt: skip
        return str(exc)
    return None


def _resolve_backends(info: _Model, backends: str | Sequence[str], shapes: Any = None) -> list[_Backend]:
    from trtbuild.backends.registry import make_runner, split_specs

    specs = split_specs(backends)
    if not specs:
        raise SpecError("No backends given; use --backends trt,ort,torch (any of them).")
    plan: list[_Backend] = []
    for spec in specs:
        kind = _kind(spec)
        if kind not in ("trt", "ort", "torch"):
            raise SpecError(f"Unknown backend '{spec}'; use trt[:ENGINE], ort[:PROVIDER] or torch[@DEVICE].")
        plan.append(_Backend(spec, kind))
    trt_missing: str | None = None
    if any(b.kind == "trt" for b in plan):
        trt_missing = tensorrt_unavailable()
        if trt_missing and all(b.kind == "trt" for b in plan):
            raise MissingDependencyError(f"Benchmarking a TensorRT engine needs TensorRT and PyCUDA here. {trt_missing}")
    names = [b.spec for b in plan]
    for b in plan:
        name = b.spec if names.count(b.spec) == 1 else f"{b.spec}#{plan.index(b) + 1}"
        if b.kind == "trt":
            if trt_missing:
                b.skipped = "TensorRT is not usable here (" + trt_missing.split(". ")[0].rstrip(".") + ")"
                continue
            engine = b.spec.partition(":")[2] or (str(info.engine) if info.engine else _default_engine(info, shapes))
            b.engine = Path(engine)
            b.runner = make_runner(f"trt:{engine}", name=name)
            continue
        if info.onnx is None:
            raise SpecError(f"Backend '{b.spec}' runs the ONNX model, but {info.text} is an engine whose manifest "
                            "names no ONNX file that exists here; pass the .onnx as MODEL (with trt:ENGINE) "
                            "or give the ONNX path in the spec, like ort:model.onnx.")  # fmt: skip
        b.runner = make_runner(b.spec, model=info.onnx, name=name)
    return plan


def _default_engine(info: _Model, shapes: Any = None) -> str:
    from trtbuild.plan import default_engine_path

    engine = default_engine_path(info.text)
    if not Path(engine).exists():
        raise SpecError(f"Backend 'trt' needs an engine for {info.text}, and {engine} does not exist; build it "
                        f"with `{build_hint(info, engine, shapes)}` or name one: --backends trt:ENGINE,ort.")  # fmt: skip
    return engine


def build_hint(info: _Model, engine: str, shapes: Any = None) -> str:
    """A ``trtbuild build`` command for the missing engine, with shapes when the model has dynamic inputs:
    the first --shapes set, the zoo's example shapes, else 1 for each dynamic dim."""
    command = f"trtbuild build {info.text} -o {engine}"
    first: Any = shapes if isinstance(shapes, (str, Mapping)) or not shapes else shapes[0]
    if isinstance(first, Mapping):
        first = format_shape_list({str(k): tuple(int(d) for d in v) for k, v in first.items()})
    if first:
        return f"{command} --shapes {first}"
    if info.zoo:
        from trtbuild import zoo

        example = {n: tuple(s) for n, s in zoo.get(info.zoo).inputs.items()}
        return f"{command} --shapes {format_shape_list(example)}"
    try:
        from trtbuild.model.load import load_onnx, model_inputs

        inputs = model_inputs(load_onnx(info.onnx or info.text, load_weights=False))
    except TrtbuildError:
        return command
    dynamic = [t for t in inputs if t.is_dynamic]
    if dynamic:
        ones = ",".join(f"{t.name}:" + "x".join(str(d) if isinstance(d, int) and d >= 0 else "1" for d in t.dims)
                        for t in dynamic)  # fmt: skip
        command += f" --shapes {ones}"
    return command


def _fill_io(info: _Model, backends: list[_Backend], profile_index: int | None) -> None:
    """Input/output metadata, from the ONNX when there is one, else from the engine; tell runners."""
    if info.onnx is not None:
        from trtbuild.model.load import load_onnx, model_inputs, model_outputs

        proto = load_onnx(info.onnx, load_weights=False)
        info.inputs = model_inputs(proto)
        info.outputs = [o.name for o in model_outputs(proto)]
        info.precision = _onnx_precision(proto)
    for b in backends:
        runner = b.runner
        if runner is None:
            continue
        if profile_index is not None and b.kind == "trt":
            runner.profile_index = profile_index  # type: ignore[attr-defined]
        # The registry made torch runners before the ONNX was read: give them its I/O order and names.
        if b.kind == "torch" and info.inputs:
            if getattr(runner, "_inputs", "missing") is None:
                runner._inputs = list(info.inputs)  # type: ignore[attr-defined]
            if getattr(runner, "_output_names", "missing") is None and info.outputs:
                runner._output_names = list(info.outputs)  # type: ignore[attr-defined]
    if not info.inputs:
        engine = next((b.runner for b in backends if b.kind == "trt" and b.runner is not None), None)
        if engine is not None:
            with engine:
                info.inputs = list(engine.input_metadata())


def _onnx_precision(proto: Any) -> str:
    """``int8`` for Q/DQ models, ``fp16`` when weights or inputs are float16, else ``fp32``."""
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node):
        return "int8"
    float16 = 10  # onnx.TensorProto.FLOAT16
    if any(t.data_type == float16 for t in proto.graph.initializer) or any(
        v.type.tensor_type.elem_type == float16 for v in proto.graph.input
    ):
        return "fp16"
    return "fp32"


def _default_shapes(info: _Model, backends: list[_Backend], profile_index: int | None) -> dict[str, Dims]:
    """No --shapes: the zoo's example shapes; else an engine's opt shapes (trtexec's rule, profile
    ``--useProfile`` or 0); else the ONNX's static dims with a dynamic batch of 1 (trtexec's override)."""
    if info.zoo:
        from trtbuild import zoo

        return {n: tuple(s) for n, s in zoo.get(info.zoo).inputs.items()}
    engine = next((b for b in backends if b.engine is not None and b.runner is not None), None)
    if engine is not None:
        opt = _engine_opt_shapes(engine, profile_index or 0)
        if opt:
            return opt
    shapes: dict[str, Dims] = {}
    for t in info.inputs:
        dims: list[int] = []
        for axis, d in enumerate(t.dims):
            if isinstance(d, int) and d >= 0:
                dims.append(d)
            elif axis == 0:
                dims.append(1)  # trtexec overrides a missing dynamic dimension with 1
            else:
                raise ShapeError(
                    f"Input {t.describe()} has dynamic dimensions besides the batch and no shape was given; pass "
                    f"--shapes {t.name}:{'x'.join(str(x) if isinstance(x, int) and x >= 0 else '1' for x in t.dims)} "
                    "(with real sizes)."
                )
        shapes[t.name] = tuple(dims)
    return shapes


def _engine_opt_shapes(backend: _Backend, profile_index: int) -> dict[str, Dims] | None:
    from trtbuild.backends.trt_runner import manifest_profiles, read_manifest

    assert backend.engine is not None and backend.runner is not None
    profiles = manifest_profiles(read_manifest(backend.engine))
    if len(profiles) > profile_index:
        return {n: r.opt for n, r in profiles[profile_index].shapes.items()}
    with backend.runner as runner:  # no manifest: ask the engine itself
        runtime = getattr(runner, "runtime", runner)
        found = getattr(runtime, "profiles", None)
        if found and len(found) > profile_index:
            return {n: rng[1] for n, rng in found[profile_index].ranges.items()}
    return None


def _normalize_shapes(spec: str | Mapping[str, Sequence[int]], inputs: list[TensorInfo]) -> dict[str, Dims]:
    given = parse_shape_list(spec, flag="shapes") if isinstance(spec, str) else {
        str(k): tuple(int(d) for d in v) for k, v in spec.items()}  # fmt: skip
    names = [t.name for t in inputs]
    out: dict[str, Dims] = {}
    for name, dims in given.items():
        out[input_named(name, inputs, naming_hint="--shapes a:1x3,b:1x4")] = dims
    for t in inputs:
        if t.name not in out:
            if t.is_dynamic:
                raise ShapeError(f"--shapes gives no shape for the dynamic input {t.describe()}; add it, like "
                                 f"{format_shape_list(out)},{t.name}:...")  # fmt: skip
            out[t.name] = tuple(int(d) for d in t.dims)  # type: ignore[arg-type]
    return {n: out[n] for n in names} if names else out


def _cases(info: _Model, shapes: Any, batch_sweep: Sequence[int] | None,
           default: Callable[[], dict[str, Dims]]) -> list[_Case]:  # fmt: skip
    if shapes is None:
        sets = [default()]
    elif isinstance(shapes, (str, Mapping)):
        sets = [_normalize_shapes(shapes, info.inputs)]
    else:
        sets = [_normalize_shapes(s, info.inputs) for s in shapes]
    if not sets or not sets[0]:
        raise ShapeError(f"Cannot tell the input shapes of {info.text}; pass --shapes name:AxBxC.")
    cases: list[_Case] = []
    for base in sets:
        axes = batch_axes(info.inputs, base)
        if not batch_sweep:
            label = next(((base[n][a]) for n, a in axes.items()), None)
            first = next(iter(base.values()))
            batch = label if label is not None else (int(first[0]) if first else 1)
            cases.append(_Case(dict(base), int(batch), format_shape_list(base), axes))
            continue
        if not axes:
            raise ShapeError(f"--batch-sweep needs an input with a dynamic batch axis; {info.text} has "
                             f"{'; '.join(t.describe() for t in info.inputs)}.")  # fmt: skip
        # The series label shows each swept axis as N: images:Nx3x640x640,state:2xNx128.
        series = ",".join(f"{n}:" + "x".join(["N" if axes.get(n) == i else str(v) for i, v in enumerate(d)])
                          for n, d in base.items())  # fmt: skip
        for batch in batch_sweep:
            if int(batch) < 1:
                raise SpecError(f"--batch-sweep sizes must be positive, not {batch}.")
            swept = {n: (tuple(int(batch) if axes.get(n) == i else v for i, v in enumerate(d))) for n, d in base.items()}
            cases.append(_Case(swept, int(batch), series, axes))
    return cases


def batch_axes(inputs: Sequence[TensorInfo], shapes: Mapping[str, Dims]) -> dict[str, int]:
    """Input name -> its batch axis: where the symbolic dim the inputs share sits in each input.

    The batch symbol is one named like a batch (``batch``, ``batch_size``, ``N``), else the symbol on axis 0
    of the first input that has one, else the symbol most inputs share. ``state [2, batch, 128]`` then
    sweeps axis 1 beside ``x [batch, 16]``. Inputs whose dims carry no names (engines, ``-1``) sweep a
    dynamic axis 0; a fixed axis never changes.
    """
    declared = {t.name: t for t in inputs}
    named = [(t, axis, d) for t in inputs if t.name in shapes for axis, d in enumerate(t.dims)
             if isinstance(d, str) and d]  # fmt: skip
    axes: dict[str, int] = {}
    if named:
        symbols = [d for _, _, d in named]
        symbol = next((d for d in symbols if d.lower() in ("n", "b") or "batch" in d.lower()), None)
        symbol = symbol or next((d for _, axis, d in named if axis == 0), None)
        symbol = symbol or max(dict.fromkeys(symbols), key=symbols.count)
        axes = {t.name: list(t.dims).index(symbol) for t in inputs if t.name in shapes and symbol in t.dims}
    for name, dims in shapes.items():
        if name in axes or not dims:
            continue
        tensor = declared.get(name)
        axis0 = tensor.dims[0] if tensor is not None and tensor.dims else None
        if tensor is None or axis0 is None or (isinstance(axis0, int) and axis0 < 0):
            axes[name] = 0  # an unnamed dynamic axis 0 (or no metadata): the batch, as trtexec assumes
    return axes


def _data_arrays(info: _Model, data: str | os.PathLike[str], shapes: Any) -> dict[str, np.ndarray]:
    """``--data``: one query of real inputs, read by the readers compare (.npz, image folder) and
    calibration (folder of .npy/.npz samples) use; with --shapes only to size images or samples."""
    from trtbuild.inputs import IMAGE_SUFFIXES, load_data
    from trtbuild.shapes import Profile, ShapeRange

    if not info.inputs:
        raise SpecError(f"--data needs the model's input names, and {info.text} gives none; pass the ONNX as MODEL.")
    path = Path(data).expanduser()
    given: dict[str, Dims] | None = None
    if shapes is not None:
        sets = [shapes] if isinstance(shapes, (str, Mapping)) else list(shapes)
        if len(sets) != 1 or not path.is_dir():
            raise SpecError(f"--data {data} sets the input shapes itself; drop --shapes (with a folder of images or "
                            "samples, one --shapes set gives the size to read them at).")  # fmt: skip
        given = _normalize_shapes(sets[0], info.inputs)
    files = sorted(path.iterdir()) if path.is_dir() else []
    if files and not any(f.suffix.lower() in IMAGE_SUFFIXES for f in files) and any(
            f.suffix.lower() in (".npy", ".npz") for f in files):  # fmt: skip
        if info.onnx is None:
            raise SpecError(f"--data {data}: a folder of .npy/.npz samples is read against the ONNX model; pass it.")
        from trtbuild.model.calib import CalibOptions, open_calibration

        samples = open_calibration(CalibOptions(data=str(path)), info.onnx, profile_opt=given)
        assert samples is not None
        return next(iter(samples.batches("calib")))
    profile = Profile({n: ShapeRange(d, d, d) for n, d in given.items()}) if given else None
    feeds = load_data(path, info.inputs, profile, enforce_bounds=False)
    if len(feeds) > 1:
        log.info("--data %s: timing the first of %d batches (%s)", data, len(feeds), feeds[0].label)
    return dict(feeds[0].arrays)


def _batched(arrays: Mapping[str, np.ndarray], case: _Case) -> dict[str, np.ndarray]:
    """Real inputs at a sweep point: samples taken in turn along each input's batch axis (repeated to fill it)."""
    import numpy as np

    out: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        axis = case.axes.get(name)
        want = case.shapes[name][axis] if axis is not None else None
        if axis is None or array.shape[axis] == want:
            out[name] = array
        else:
            out[name] = np.ascontiguousarray(np.take(array, np.arange(int(want or 1)) % array.shape[axis], axis=axis))
    return out


def _make_feed(info: _Model, shapes: Mapping[str, Dims], seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs: the zoo's own example data, else trtexec's random fill per dtype."""
    import numpy as np

    if info.zoo:
        from trtbuild import zoo

        return dict(zoo.example_inputs(info.zoo, dict(shapes), seed=seed))
    dtypes = {t.name: t.dtype for t in info.inputs}
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        dtype = np.dtype(dtypes.get(name, "float32"))
        if dtype.kind == "f":  # trtexec: floats in [-1, 1]; int8/int32/int64 in [-128, 127]; uint8 in [0, 255]
            feed[name] = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
        elif dtype.kind == "b":
            feed[name] = rng.integers(0, 2, size=shape).astype(bool)
        elif dtype.kind == "u":
            feed[name] = rng.integers(0, 256, size=shape).astype(dtype)
        else:
            feed[name] = rng.integers(-128, 128, size=shape).astype(dtype)
    return feed


# --------------------------------------------------------------------------------------------------
# Small helpers


def cpu_affinity() -> str | None:
    """The CPUs this process may run on, as ranges ("0-3,8"), or None where the OS does not say."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    spans: list[str] = []
    start = prev = cpus[0] if cpus else 0
    for cpu in cpus[1:] + [None]:  # type: ignore[list-item]
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        spans.append(f"{start}-{prev}" if prev > start else str(start))
        if cpu is not None:
            start = prev = cpu
    return ",".join(spans) if cpus else None


def thread_settings(kind: str, runner: Runner, threads: int | None) -> dict[str, Any]:
    """What every row records about threads: the request, the CPU affinity, the runtime's intra/inter-op
    thread counts (0: the runtime's default) and ONNX Runtime's graph optimization level."""
    row: dict[str, Any] = {"threads": threads, "cpu_affinity": cpu_affinity(), "intra_op_threads": None,
                           "inter_op_threads": None, "ort_optimization_level": None}  # fmt: skip
    if kind == "ort":
        session = getattr(runner, "session", None)
        options = session.get_session_options() if session is not None else None
        row["intra_op_threads"] = int(options.intra_op_num_threads) if options is not None else (threads or 0)
        row["inter_op_threads"] = int(options.inter_op_num_threads) if options is not None else 0
        row["ort_optimization_level"] = getattr(runner, "graph_optimization_level", None)
    elif kind == "torch":
        import torch

        row["intra_op_threads"] = int(torch.get_num_threads())
        row["inter_op_threads"] = int(torch.get_num_interop_threads())
    return row


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's thread counts for one backend's runs, restored after (they are process-wide)."""
    if threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(int(threads))
    except RuntimeError:  # settable once, before the first inter-op work; the row records what is in force
        log.debug("torch inter-op threads already fixed at %d", torch.get_num_interop_threads())
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _describe(runner: Runner) -> dict[str, Any]:
    try:
        return dict(runner.describe())
    except Exception:  # describing is cosmetic: never fail a benchmark over it
        return {"name": runner.name, "backend": runner.backend}


def _providers(described: Mapping[str, Any]) -> str:
    providers = described.get("providers")
    return "+".join(providers) if isinstance(providers, (list, tuple)) else str(providers or "")


def _precision_of(backend: _Backend, described: Mapping[str, Any], info: _Model) -> str:
    if backend.kind != "trt":
        return info.precision
    value = described.get("precision")
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        for key in ("label", "name", "requested", "mode"):
            if isinstance(value.get(key), str) and value[key]:
                return str(value[key])
        flags = [k for k, v in value.items() if v is True]
        if flags:
            return "+".join(flags)
    return "unknown"


def _environment() -> dict[str, Any]:
    from trtbuild.doctor import environment_fingerprint

    env = dict(environment_fingerprint())
    if not env.get("cuda"):
        env["cuda"] = _cuda_version()
    if not env.get("tensorrt"):
        from trtbuild.trt.compat import installed_tensorrt_version

        env["tensorrt"] = installed_tensorrt_version()
    return env


def _cuda_version() -> str | None:
    """The CUDA version the driver supports (nvidia-smi's header), or None without a driver."""
    import re
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"CUDA Version:\s*([\d.]+)", out)
    return match.group(1) if match else None


def _export_path(target: str | os.PathLike[str], index: int, total: int, runner: str, case: _Case) -> Path:
    path = Path(target)
    if total == 1:
        return path
    import re

    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{runner}-{'_'.join(format_dims(s) for s in case.shapes.values())}")
    return path.with_name(f"{path.stem}-{index:02d}-{tag}{path.suffix or '.json'}")


def _say(echo: Callable[[str], None] | None, text: str) -> None:
    if echo is not None:
        echo(text)
    else:
        log.debug("%s", text)


class _progress:
    """A progress bar over the runs (rich, on stderr when it is a terminal); ``advance(label)`` per run."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self._bar: Any = None
        self._task: Any = None
        self._started = False

    def __enter__(self) -> Callable[[str], None]:
        if self.enabled:
            from trtbuild.console import progress

            self._bar = progress()
            self._bar.__enter__()
            self._task = self._bar.add_task("bench", total=self.total)
        return self.advance

    def advance(self, label: str) -> None:
        if self._bar is None:
            return
        if self._started:
            self._bar.advance(self._task)
        self._started = True
        self._bar.update(self._task, description=f"bench {label}")

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            if self._started and exc[0] is None:
                self._bar.advance(self._task)
            self._bar.__exit__(*exc)
