"""PyTorch -> ONNX export, checked against PyTorch before anything is written.

Steps (each logs one progress line):
  1. load the module (``zoo:NAME`` or ``module:factory`` + optional ``--weights`` state dict)
  2. torch.onnx.export (TorchScript exporter unless ``dynamo=True``), named dynamic axes, constant folding
  3. optional onnxslim, then onnx.checker
  4. ONNX Runtime vs PyTorch at the export shape and one other shape (every dynamic axis changed)
  5. a PyTorch reference beside the ONNX (``torch.export`` .pt2, or TorchScript .ts if that fails), so
     later comparisons need no Python source
  6. atomic writes: a failed export leaves no file behind
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.errors import ComparisonFailed, MissingDependencyError, ModelError, ShapeError, SpecError
from trtbuild.shapes import Dims, TensorInfo, format_dims, parse_shape_list, split_name_and_value

log = logging.getLogger(__name__)

ZOO_PREFIX = "zoo:"
#: metadata_props written into exported ONNX files
META_SOURCE = "trtbuild.source"
META_REFERENCE = "trtbuild.torch_reference"
META_EXPORTER = "trtbuild.exporter"
META_EXPORT_SHAPES = "trtbuild.export_shapes"
#: default export-check tolerances: fp32 ONNX Runtime vs fp32 PyTorch (either-passes rule, as Polygraphy)
CHECK_ATOL = 1e-4
CHECK_RTOL = 1e-3

DynamicAxes = dict[str, dict[int, str]]


@dataclass
class ExportCheck:
    """ONNX Runtime vs PyTorch at one set of shapes."""

    label: str
    shapes: dict[str, list[int]]
    #: output name -> {"shape", "max_abs", "max_rel", "passed"}
    outputs: dict[str, dict[str, Any]]

    @property
    def passed(self) -> bool:
        return all(o["passed"] for o in self.outputs.values())


@dataclass
class ExportResult:
    """What ``export`` wrote and how it checked it."""

    onnx_path: str
    source: str
    exporter: str  # "torchscript" or "dynamo"
    opset: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    dynamic_axes: DynamicAxes
    reference_path: str | None = None
    reference_format: str | None = None  # "torch.export" or "torchscript"
    simplified: bool = False
    checks: list[ExportCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "onnx": self.onnx_path,
            "source": self.source,
            "exporter": self.exporter,
            "opset": self.opset,
            "inputs": [t.as_dict() for t in self.inputs],
            "outputs": [t.as_dict() for t in self.outputs],
            "dynamic_axes": {k: {str(a): n for a, n in v.items()} for k, v in self.dynamic_axes.items()},
            "reference": self.reference_path,
            "reference_format": self.reference_format,
            "simplified": self.simplified,
            "checks": [
                {"label": c.label, "shapes": c.shapes, "outputs": c.outputs, "passed": c.passed} for c in self.checks
            ],
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------------------------------
# Parsing the CLI-style specs


def parse_inputs(values: Sequence[str] | str | None) -> dict[str, Dims]:
    """``["images:1x3x640x640"]`` or ``"a:1x3x64x64,b:1x1"`` -> ordered name -> dims."""
    if values is None:
        return {}
    items = [values] if isinstance(values, str) else list(values)
    shapes: dict[str, Dims] = {}
    for item in items:
        for name, dims in parse_shape_list(item, flag="input").items():
            if name in shapes:
                raise ShapeError(f"--input names '{name}' twice; give each input once.")
            shapes[name] = dims
    return shapes


def parse_dynamic(values: Sequence[str] | str | None) -> dict[str, dict[int, str | None]]:
    """``images:0,2,3`` or ``images:0=batch,2=height`` (one flag per tensor) -> name -> {axis: name or None}."""
    if values is None:
        return {}
    items = [values] if isinstance(values, str) else list(values)
    result: dict[str, dict[int, str | None]] = {}
    for item in items:
        name, axes_text = split_name_and_value(item)
        if not name or not axes_text.strip():
            raise SpecError(
                f"--dynamic '{item}' needs a tensor name and axes, like images:0,2,3 or images:0=batch,2=height "
                "(repeat --dynamic for each tensor)."
            )
        axes: dict[int, str | None] = {}
        for part in axes_text.split(","):
            axis_text, _, label = part.partition("=")
            try:
                axis = int(axis_text.strip())
            except ValueError:
                raise SpecError(
                    f"--dynamic '{item}': '{part}' is not an axis number; write images:0,2,3 or images:0=batch."
                ) from None
            axes[axis] = label.strip() or None
        if name in result:
            raise SpecError(f"--dynamic gives '{name}' twice; list all of its axes in one flag, like {name}:0,2,3.")
        result[name] = axes
    return result


# --------------------------------------------------------------------------------------------------
# Loading the PyTorch module


@dataclass
class SourceModel:
    """A module to export plus what is known about its I/O (from the zoo, or nothing)."""

    module: Any
    label: str
    input_shapes: dict[str, Dims] = field(default_factory=dict)
    zoo_axes: DynamicAxes = field(default_factory=dict)
    zoo_output_axes: DynamicAxes = field(default_factory=dict)
    output_names: list[str] = field(default_factory=list)
    zoo_name: str | None = None


@contextlib.contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    # Lets a model file import its siblings (models/common.py next to models/yolo.py).
    text = str(folder)
    added = text not in sys.path
    if added:
        sys.path.insert(0, text)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(text)


def import_factory(spec: str) -> Callable[[], Any]:
    """``path/to/model.py:make`` or ``package.module:make`` -> the callable ``make``."""
    module_text, sep, attr = spec.rpartition(":")
    if not sep or not module_text or not attr or "/" in attr or "\\" in attr:
        raise SpecError(
            f"'{spec}' is not a model source; give module:factory (a .py path or dotted module name and a function "
            "returning an nn.Module, like models/net.py:build or mypkg.models:build) or zoo:NAME."
        )
    path = Path(module_text).expanduser()
    try:
        if module_text.endswith(".py") or path.exists():
            if not path.is_file():
                raise SpecError(f"{path} does not exist; give the .py file that defines {attr}().")
            unique = f"_trtbuild_export_{abs(hash(str(path.resolve())))}"
            module_spec = importlib.util.spec_from_file_location(unique, path)
            if module_spec is None or module_spec.loader is None:
                raise SpecError(f"Cannot import {path} as a Python module.")
            module = importlib.util.module_from_spec(module_spec)
            with _on_sys_path(path.parent.resolve()):
                sys.modules[unique] = module
                module_spec.loader.exec_module(module)
        else:
            with _on_sys_path(Path.cwd()):
                module = importlib.import_module(module_text)
    except (SpecError, ModelError):
        raise
    except ImportError as exc:
        raise SpecError(f"Cannot import '{module_text}' for {spec}: {exc}.") from None
    except Exception as exc:  # the user's module raised while importing: show what and where
        raise ModelError(f"Importing '{module_text}' failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))[:12]
        raise SpecError(f"'{module_text}' has no callable '{attr}'; it defines: {', '.join(names) or 'nothing callable'}.")
    return factory  # type: ignore[no-any-return]


def load_state_dict(module: Any, weights: str | os.PathLike[str]) -> None:
    """Load a state dict with ``torch.load(weights_only=True)``: no pickle code runs."""
    import torch

    path = Path(weights).expanduser()
    if not path.is_file():
        raise SpecError(f"--weights {path} does not exist.")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"{path} cannot be loaded with torch.load(weights_only=True) ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); save a plain state dict with "
            "torch.save(model.state_dict(), path). Whole pickled models are refused on purpose."
        ) from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ModelError(f"{path} holds a {type(state).__name__}, not a state dict.")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(
            f"The weights in {path} do not fit the module: {' '.join(first[:3])}. Check that the factory builds the "
            "same architecture the weights were saved from."
        ) from None


def load_source(source: Any, weights: str | os.PathLike[str] | None = None) -> SourceModel:
    """``zoo:NAME``, ``module:factory``, an nn.Module or a factory -> SourceModel (module in eval mode)."""
    import torch

    if isinstance(source, str) and source.startswith(ZOO_PREFIX):
        from trtbuild import zoo

        name = source[len(ZOO_PREFIX) :]
        zm = zoo.get(name)
        src = SourceModel(
            zm.factory(),
            source,
            input_shapes=dict(zm.inputs),
            zoo_axes={k: dict(v) for k, v in zm.dynamic_axes.items()},
            zoo_output_axes={k: dict(v) for k, v in zm.output_dynamic_axes.items()},
            output_names=list(zm.outputs),
            zoo_name=name,
        )
    elif isinstance(source, str):
        factory = import_factory(source)
        try:
            module = factory()
        except Exception as exc:
            raise ModelError(f"Calling {source}() failed: {type(exc).__name__}: {exc}") from None
        src = SourceModel(module, source)
    elif isinstance(source, torch.nn.Module):
        src = SourceModel(source, type(source).__name__)
    elif callable(source):
        src = SourceModel(source(), getattr(source, "__name__", "factory"))
    else:
        raise SpecError(f"Cannot export {source!r}: give zoo:NAME, module:factory or an nn.Module.")
    if not isinstance(src.module, torch.nn.Module):
        raise ModelError(f"{src.label} returned a {type(src.module).__name__}, not a torch.nn.Module.")
    if weights is not None:
        load_state_dict(src.module, weights)
    src.module.eval()
    return src


# --------------------------------------------------------------------------------------------------
# Shapes


def resolve_dynamic_axes(
    requested: Mapping[str, Mapping[int, str | None]],
    shapes: Mapping[str, Dims],
    output_names: Sequence[str],
    src: SourceModel,
) -> tuple[DynamicAxes, DynamicAxes]:
    """(input axes, output axes), every axis named: user name, else the zoo's symbol, else ``<input>_dim<axis>``."""
    inputs: DynamicAxes = {}
    outputs: DynamicAxes = {}
    for tensor, axes in requested.items():
        if tensor in shapes:
            rank = len(shapes[tensor])
            target = inputs
        elif tensor in output_names:
            rank = None
            target = outputs
        else:
            raise SpecError(
                f"--dynamic names '{tensor}', which is neither an input ({', '.join(shapes)}) nor an output "
                f"({', '.join(output_names)})."
            )
        named: dict[int, str] = {}
        for axis, label in axes.items():
            if rank is not None and not -rank <= axis < rank:
                raise SpecError(
                    f"--dynamic {tensor}:{axis}: '{tensor}' has {rank} dimensions "
                    f"({format_dims(shapes[tensor])}); axes are 0..{rank - 1}."
                )
            axis = axis % rank if rank is not None else axis
            named[axis] = label or src.zoo_axes.get(tensor, {}).get(axis) or src.zoo_output_axes.get(tensor, {}).get(axis) or f"{tensor}_dim{axis}"
        target[tensor] = dict(sorted(named.items()))
    if src.zoo_name and inputs:
        # Zoo outputs: name an output axis when its symbol is dynamic in the inputs, or when it is derived
        # ("anchors") and every zoo input axis was made dynamic.
        chosen = {n for axes in inputs.values() for n in axes.values()}
        everything = all(
            axis in inputs.get(t, {}) for t, axes in src.zoo_axes.items() for axis in axes
        )
        input_symbols = {n for axes in src.zoo_axes.values() for n in axes.values()}
        for out, axes in src.zoo_output_axes.items():
            for axis, symbol in axes.items():
                if symbol in chosen or (symbol not in input_symbols and everything):
                    outputs.setdefault(out, {}).setdefault(axis, symbol)
    return inputs, outputs


def other_shapes(shapes: Mapping[str, Dims], dynamic: DynamicAxes) -> dict[str, Dims]:
    """A second check shape: every dynamic axis changed (shared symbols changed alike)."""
    new_size: dict[str, int] = {}
    result: dict[str, Dims] = {}
    for name, dims in shapes.items():
        out = list(dims)
        for axis, symbol in dynamic.get(name, {}).items():
            if symbol not in new_size:
                d = dims[axis]
                if d <= 1:
                    new_size[symbol] = 2
                elif axis == 0:
                    new_size[symbol] = d + 1
                elif d >= 64:
                    new_size[symbol] = max(32, (d // 2) // 32 * 32)  # keeps a multiple of the usual stride
                else:
                    new_size[symbol] = d * 2
            out[axis] = new_size[symbol]
        result[name] = tuple(out)
    return result


def example_args(shapes: Mapping[str, Dims], dtypes: Mapping[str, str] | None = None, seed: int = 0) -> dict[str, Any]:
    """Seeded numpy example inputs (floats in [0, 1], positive for inputs named 'scale')."""
    import numpy as np

    from trtbuild.inputs import random_array

    rng = np.random.default_rng(seed)
    return {n: random_array(s, (dtypes or {}).get(n, "float32"), rng) for n, s in shapes.items()}


# --------------------------------------------------------------------------------------------------
# Running and comparing


def run_torch(module: Any, feed: Mapping[str, Any]) -> list[Any]:
    import torch

    from trtbuild.backends.torch_runner import _flatten

    with torch.inference_mode():
        result = module(*[torch.from_numpy(a) for a in feed.values()])
    return [t.detach().cpu().numpy() for t in _flatten(result)]


def either_passes(a: Any, b: Any, atol: float, rtol: float) -> tuple[bool, float, float]:
    """Polygraphy's rule: an element fails only if abs diff > atol AND rel diff (vs b) > rtol."""
    import numpy as np

    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    absdiff = np.abs(a64 - b64)
    reldiff = absdiff / np.maximum(np.abs(b64), np.finfo(np.float64).eps)
    ok = bool(np.all((absdiff <= atol) | (reldiff <= rtol)) and not np.isnan(absdiff).any())
    max_abs = float(absdiff.max()) if absdiff.size else 0.0
    max_rel = float(reldiff.max()) if reldiff.size else 0.0
    return ok, max_abs, max_rel


def check_against_torch(
    module: Any,
    onnx_file: Path,
    checks: Sequence[tuple[str, dict[str, Dims]]],
    output_names: Sequence[str],
    dtypes: Mapping[str, str],
    atol: float,
    rtol: float,
) -> list[ExportCheck]:
    import numpy as np

    from trtbuild.backends.onnxrt import OrtRunner
    from trtbuild.verdict import judge, limits_for

    results: list[ExportCheck] = []
    with OrtRunner(onnx_file, name="ort") as ort:
        for index, (label, shapes) in enumerate(checks):
            feed = example_args(shapes, dtypes, seed=index)
            shape_text = ", ".join(f"{n}:{format_dims(s)}" for n, s in shapes.items())
            try:
                expected = run_torch(module, feed)
            except Exception as exc:
                raise ModelError(
                    f"The PyTorch module itself fails at the {label} ({shape_text}): {type(exc).__name__}: {exc}. "
                    "Pick export/dynamic shapes the model supports (--check-shape sets the second check shape)."
                ) from None
            try:
                got = ort.infer(feed)
            except ModelError as exc:
                raise ModelError(
                    f"The exported ONNX fails in ONNX Runtime at the {label} ({shape_text}): {exc}. The export probably "
                    "baked a dynamic size into a constant (int(x.shape[0]), x.view(1, -1), ...); make that code "
                    "shape-generic or export with fewer dynamic axes."
                ) from None
            outputs: dict[str, dict[str, Any]] = {}
            for name, ref in zip(output_names, expected):
                value = got[name]
                if tuple(value.shape) != tuple(ref.shape):
                    raise ComparisonFailed(
                        f"Export check at the {label} ({shape_text}): output '{name}' has shape "
                        f"{format_dims(value.shape)} in ONNX Runtime but {format_dims(ref.shape)} in PyTorch; the "
                        "export baked a shape into the graph. Make that axis dynamic (--dynamic) or the code "
                        "shape-generic."
                    )
                ok, max_abs, max_rel = either_passes(value, ref, atol, rtol)
                # The accuracy verdict every comparison uses (FP32 limits), and the element-wise tolerances too.
                verdict = judge(name, np.asarray(ref), np.asarray(value), limits_for("fp32"))
                outputs[name] = {
                    "shape": list(ref.shape), "max_abs": max_abs, "max_rel": max_rel, "cosine": verdict.cosine,
                    "kind": verdict.kind, "verdict": verdict.reason, "within_tolerance": ok,
                    "passed": ok and verdict.passed,
                }  # fmt: skip
            results.append(ExportCheck(label, {n: list(s) for n, s in shapes.items()}, outputs))
            bad = {n: o for n, o in outputs.items() if not o["passed"]}
            if bad:
                name, o = next(iter(bad.items()))
                why = (
                    f"max abs diff {o['max_abs']:.3g} > atol {atol:g} and max rel diff {o['max_rel']:.3g} > rtol {rtol:g}"
                    if not o["within_tolerance"] else f"the {o['kind']} verdict fails: {o['verdict']}"
                )
                raise ComparisonFailed(
                    f"Export check at the {label} ({shape_text}): ONNX Runtime and PyTorch disagree on output "
                    f"'{name}' (shape {format_dims(o['shape'])}): {why}. Nothing was written. The model may use an "
                    "op the exporter translates differently (try --dynamo or another --opset), or run "
                    "non-deterministically; --no-check skips this check."
                )
    return results


# --------------------------------------------------------------------------------------------------
# ONNX post-processing


def _rename_dims(proto: Any, input_axes: DynamicAxes) -> None:
    """Give the requested names to input dims (the dynamo exporter calls them s0, s34...) everywhere."""
    mapping: dict[str, str] = {}
    for value in proto.graph.input:
        for axis, want in input_axes.get(value.name, {}).items():
            dims = value.type.tensor_type.shape.dim
            if axis < len(dims) and dims[axis].dim_param and dims[axis].dim_param != want:
                mapping.setdefault(dims[axis].dim_param, want)
    if not mapping:
        return
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)) + r")\b")
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = pattern.sub(lambda m: mapping[m.group(1)], dim.dim_param)


def _set_metadata(proto: Any, props: Mapping[str, str]) -> None:
    keep = [p for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    for p in keep:
        proto.metadata_props.add(key=p.key, value=p.value)
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)


def _save_onnx(proto: Any, path: Path) -> None:
    import onnx

    if proto.ByteSize() > (1 << 31) - (1 << 26):  # protobuf's 2 GB limit (with headroom): weights go beside it
        onnx.save_model(proto, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save_model(proto, str(path))


# --------------------------------------------------------------------------------------------------
# PyTorch reference


def _reference_meta(inputs: Sequence[TensorInfo], outputs: Sequence[str], source: str) -> str:
    return json.dumps({"inputs": [t.as_dict() for t in inputs], "outputs": list(outputs), "source": source})


def _save_reference(
    module: Any,
    shapes: Mapping[str, Dims],
    dynamic: DynamicAxes,
    checks: Sequence[tuple[str, dict[str, Dims]]],
    dtypes: Mapping[str, str],
    meta: str,
    stem: Path,
) -> tuple[Path | None, str | None, list[str]]:
    """Try torch.export (.pt2), then TorchScript tracing (.ts); keep the first that reproduces eager outputs."""
    import torch

    warnings: list[str] = []
    # torch.export specializes sizes 0/1: trace dynamic axes at >= 2 so they stay symbolic.
    bumped = {n: tuple(max(d, 2) if a in dynamic.get(n, {}) else d for a, d in enumerate(s)) for n, s in shapes.items()}

    def verify(loaded: Any) -> None:
        for index, (label, check_shapes) in enumerate(checks):
            feed = example_args(check_shapes, dtypes, seed=100 + index)
            want, got = run_torch(module, feed), run_torch(loaded, feed)
            for w, g in zip(want, got):
                if w.shape != g.shape or not either_passes(g, w, 1e-6, 1e-5)[0]:
                    raise ValueError(f"differs from the module at the {label}")

    def via_export() -> bytes:
        args = tuple(torch.from_numpy(a) for a in example_args(bumped, dtypes).values())
        dynamic_shapes = (
            tuple({a: torch.export.Dim.AUTO for a in dynamic.get(n, {})} or None for n in shapes) if dynamic else None
        )
        program = torch.export.export(module, args, dynamic_shapes=dynamic_shapes, strict=False)
        buffer = io.BytesIO()
        torch.export.save(program, buffer, extra_files={"trtbuild.json": meta})
        buffer.seek(0)
        verify(torch.export.load(buffer).module())
        return buffer.getvalue()

    def via_torchscript() -> bytes:
        args = tuple(torch.from_numpy(a) for a in example_args(shapes, dtypes).values())
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(module, args, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"trtbuild.json": meta})
        buffer.seek(0)
        verify(torch.jit.load(buffer, map_location="cpu"))
        return buffer.getvalue()

    for suffix, kind, make in ((".pt2", "torch.export", via_export), (".ts", "torchscript", via_torchscript)):
        try:
            with _quiet_torch():
                data = make()
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            warnings.append(f"{kind} reference not saved: {type(exc).__name__}: {first[:300]}")
            log.info("  %s did not work (%s); %s", kind, type(exc).__name__, "trying TorchScript" if suffix == ".pt2" else "no reference")
            continue
        path = stem.with_suffix(suffix)
        path.write_bytes(data)  # into the private staging folder; export() publishes it with a rename
        return path, kind, warnings
    return None, None, warnings


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    # torch.export and tracing print long warnings for ordinary models; they are not the user's problem.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------------------------------
# The export


class _Steps:
    def __init__(self, total: int) -> None:
        self.total, self.index, self.start = total, 0, time.perf_counter()

    def __call__(self, message: str) -> None:
        self.index += 1
        log.info("[%d/%d] %s (%.1f s)", self.index, self.total, message, time.perf_counter() - self.start)


def export(
    source: Any,
    output: str | os.PathLike[str],
    *,
    inputs: Mapping[str, Dims] | Sequence[str] | str | None = None,
    dynamic: Mapping[str, Mapping[int, str | None]] | Sequence[str] | str | None = None,
    output_names: Sequence[str] | None = None,
    opset: int = 17,
    dynamo: bool = False,
    simplify: bool = False,
    weights: str | os.PathLike[str] | None = None,
    check: bool = True,
    check_shapes: Mapping[str, Dims] | Sequence[str] | str | None = None,
    atol: float = CHECK_ATOL,
    rtol: float = CHECK_RTOL,
    reference: bool = True,
) -> ExportResult:
    """Export a PyTorch model to ONNX and check it against PyTorch with ONNX Runtime.

    ``source``: ``"zoo:NAME"``, ``"module.py:factory"`` / ``"pkg.mod:factory"``, an ``nn.Module`` or a factory.
    ``inputs``: input name -> example shape (``{"images": (1, 3, 640, 640)}`` or ``"images:1x3x640x640"``);
    zoo models default to their own. ``dynamic``: tensor -> {axis: name or None} or ``"images:0,2,3"``.
    Raises ComparisonFailed when ONNX Runtime disagrees with PyTorch; nothing is written then.
    """
    import onnx

    started = time.perf_counter()
    out_path = Path(output).expanduser()
    if out_path.suffix.lower() != ".onnx":
        raise SpecError(f"-o {out_path}: the output must end in .onnx.")
    if out_path.is_dir():  # checked before anything is written beside it (the .pt2 reference)
        raise SpecError(f"-o {out_path} is an existing folder where a file must go; give a file path, or remove the folder.")
    steps = _Steps(4 + int(simplify) + int(check) + int(reference))
    src = load_source(source, weights)
    steps(f"loaded {src.label}")

    shapes = dict(inputs) if isinstance(inputs, Mapping) else parse_inputs(inputs)
    if not shapes:
        shapes = dict(src.input_shapes)
    if not shapes:
        raise SpecError(
            f"{src.label}: give the example input shape(s) with --input name:1x3x640x640 (names become the ONNX "
            "input names, in forward() argument order)."
        )
    if src.input_shapes and set(shapes) != set(src.input_shapes):
        raise SpecError(
            f"{src.label} has inputs {', '.join(src.input_shapes)}; --input names {', '.join(shapes)}."
        )
    dtypes = {n: "float32" for n in shapes}
    feed = example_args(shapes, dtypes)
    try:
        eager = run_torch(src.module, feed)
    except Exception as exc:
        raise ModelError(
            f"{src.label} fails on the example inputs ({', '.join(f'{n}:{format_dims(s)}' for n, s in shapes.items())}): "
            f"{type(exc).__name__}: {exc}. Check --input (names in forward() order, shapes the model accepts)."
        ) from None
    names = list(output_names or src.output_names or [f"output{i}" for i in range(len(eager))])
    if len(names) != len(eager):
        raise SpecError(f"The model returns {len(eager)} tensor(s) but {len(names)} output name(s) were given.")
    requested = dict(dynamic) if isinstance(dynamic, Mapping) else parse_dynamic(dynamic)
    in_axes, out_axes = resolve_dynamic_axes(requested, shapes, names, src)
    checks: list[tuple[str, dict[str, Dims]]] = [("export shape", shapes)]
    if check_shapes is not None:
        extra = dict(check_shapes) if isinstance(check_shapes, Mapping) else parse_inputs(check_shapes)
        checks.append(("check shape", {n: extra.get(n, s) for n, s in shapes.items()}))
    elif in_axes:
        checks.append(("other shape", other_shapes(shapes, in_axes)))

    warnings_out: list[str] = []
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Stage beside the target so the final renames stay on one filesystem (atomic).
    stage = Path(tempfile.mkdtemp(prefix=".trtbuild-export-", dir=out_path.parent))
    try:
        staged = stage / out_path.name
        exporter = "dynamo" if dynamo else "torchscript"
        _export_onnx(src.module, shapes, dtypes, names, in_axes, out_axes, opset, dynamo, staged)
        steps(f"exported with the {'dynamo' if dynamo else 'TorchScript'} exporter (opset {opset})")

        proto = onnx.load(str(staged))
        _rename_dims(proto, in_axes)
        if simplify:
            proto = _simplify(proto)
            steps("simplified with onnxslim")
        actual_opset = next((int(i.version) for i in proto.opset_import if i.domain in ("", "ai.onnx")), opset)
        if actual_opset != opset:
            warnings_out.append(f"the exporter wrote opset {actual_opset}, not the requested {opset}")
        ref_name = out_path.with_suffix(".pt2").name  # updated below if the reference ends up as .ts
        props = {
            META_SOURCE: src.label,
            META_EXPORTER: exporter,
            META_EXPORT_SHAPES: json.dumps({n: list(s) for n, s in shapes.items()}),
        }
        _set_metadata(proto, props)
        _save_onnx(proto, staged)
        try:
            onnx.checker.check_model(str(staged), full_check=True)
        except Exception as exc:
            raise ModelError(f"onnx.checker rejects the exported model: {str(exc).strip().splitlines()[0]}") from None
        steps("onnx.checker passed")

        from trtbuild.model.load import model_inputs, model_outputs

        check_results: list[ExportCheck] = []
        if check:
            check_results = check_against_torch(src.module, staged, checks, names, dtypes, atol, rtol)
            worst = max((o["max_abs"] for c in check_results for o in c.outputs.values()), default=0.0)
            steps(
                "ONNX Runtime matches PyTorch at "
                + " and ".join(", ".join(f"{n}:{format_dims(s)}" for n, s in c[1].items()) for c in checks)
                + f" (max abs diff {worst:.2g})"
            )
        final_proto = onnx.load(str(staged), load_external_data=False)
        onnx_inputs, onnx_outputs = model_inputs(final_proto), model_outputs(final_proto)

        ref_path: Path | None = None
        ref_kind: str | None = None
        if reference:
            meta = _reference_meta(onnx_inputs, names, src.label)
            ref_path, ref_kind, ref_warnings = _save_reference(
                src.module, shapes, in_axes, checks, dtypes, meta, stage / out_path.stem
            )
            warnings_out += ref_warnings
            if ref_path is not None:
                ref_name = ref_path.name
                _set_metadata(final_proto, {META_REFERENCE: ref_name})
                if final_proto.ByteSize() < (1 << 31) - (1 << 26):
                    onnx.save_model(final_proto, str(staged))
                steps(f"saved the PyTorch reference {ref_name} ({ref_kind})")
            else:
                steps("no PyTorch reference could be saved (see warnings)")

        # Publish: side files first, the ONNX last, each with an atomic rename.
        published_ref: str | None = None
        for item in sorted(stage.iterdir(), key=lambda p: p.name == staged.name):
            target = out_path.parent / item.name
            os.replace(item, target)
            if item.suffix in (".pt2", ".ts"):
                published_ref = str(target)
        steps(f"wrote {out_path}")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    for w in warnings_out:
        log.warning("%s", w)
    return ExportResult(
        onnx_path=str(out_path),
        source=src.label,
        exporter=exporter,
        opset=actual_opset,
        inputs=onnx_inputs,
        outputs=onnx_outputs,
        dynamic_axes={**in_axes, **out_axes},
        reference_path=published_ref,
        reference_format=ref_kind,
        simplified=simplify,
        checks=check_results,
        warnings=warnings_out,
        seconds=time.perf_counter() - started,
    )


def _export_onnx(
    module: Any,
    shapes: Mapping[str, Dims],
    dtypes: Mapping[str, str],
    output_names: Sequence[str],
    in_axes: DynamicAxes,
    out_axes: DynamicAxes,
    opset: int,
    dynamo: bool,
    path: Path,
) -> None:
    import torch

    try:
        if dynamo:
            # The dynamo exporter specializes sizes 0/1: trace dynamic axes at >= 2; AUTO lets torch decide.
            bumped = {n: tuple(max(d, 2) if a in in_axes.get(n, {}) else d for a, d in enumerate(s)) for n, s in shapes.items()}
            args = tuple(torch.from_numpy(a) for a in example_args(bumped, dtypes).values())
            dynamic_shapes = tuple({a: torch.export.Dim.AUTO for a in in_axes.get(n, {})} or None for n in shapes)
            with _quiet_torch(), contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(
                    module, args, str(path), input_names=list(shapes), output_names=list(output_names),
                    dynamic_shapes=dynamic_shapes if in_axes else None, opset_version=opset, dynamo=True,
                )
        else:
            args = tuple(torch.from_numpy(a) for a in example_args(shapes, dtypes).values())
            with _quiet_torch(), torch.no_grad():
                torch.onnx.export(
                    module, args, str(path), input_names=list(shapes), output_names=list(output_names),
                    dynamic_axes={**in_axes, **out_axes} or None, opset_version=opset,
                    do_constant_folding=True, dynamo=False,
                )
    except ImportError as exc:
        raise MissingDependencyError(f"The {'dynamo' if dynamo else 'TorchScript'} ONNX exporter needs {exc.name}: "
                                     f"pip install 'trtbuild[torch]'.") from None
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelError(
            f"torch.onnx.export failed ({'dynamo' if dynamo else 'TorchScript'} exporter, opset {opset}): "
            f"{type(exc).__name__}: {text[:500]}. Try {'without --dynamo' if dynamo else '--dynamo'} or another --opset."
        ) from None


def _simplify(proto: Any) -> Any:
    try:
        import onnxslim
    except ImportError:
        raise MissingDependencyError("--simplify needs onnxslim: pip install onnxslim.") from None
    try:
        return onnxslim.slim(proto)
    except Exception as exc:
        raise ModelError(f"onnxslim failed on the exported model: {type(exc).__name__}: {exc}; export without --simplify.") from None


def reference_beside(onnx_file: str | os.PathLike[str]) -> Path | None:
    """The PyTorch reference saved by ``export`` for ``onnx_file`` (metadata first, then same-stem files)."""
    path = Path(onnx_file)
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        props = {p.key: p.value for p in proto.metadata_props}
    except Exception:
        props = {}
    named = props.get(META_REFERENCE)
    candidates = ([path.parent / Path(named).name] if named else []) + [path.with_suffix(s) for s in (".pt2", ".ts")]
    return next((c for c in candidates if c.is_file()), None)


def source_of(onnx_file: str | os.PathLike[str]) -> str | None:
    """The ``trtbuild.source`` recorded by export (e.g. ``zoo:yolo``), if any."""
    try:
        import onnx

        proto = onnx.load(str(onnx_file), load_external_data=False)
    except Exception:
        return None
    return next((p.value for p in proto.metadata_props if p.key == META_SOURCE), None)
