"""Calibration data: images (with preprocessing presets), .npy/.npz arrays or, on request, random data.

Every consumer (the FP16 range scan, ONNX Runtime's INT8 calibrator, modelopt, TensorRT's legacy
calibrator) reads batches from one :class:`CalibrationData`, so they all see the same samples and
record the same provenance: a hash of the files (names and contents), the preprocessing, the
batch shapes and the model. A cache is reusable only while that provenance is unchanged.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import TrtbuildError
from trtbuild.shapes import UNNAMED, Dims, TensorInfo, fixed_axis_conflict, format_dims, parse_shape_list

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
ARRAY_SUFFIXES = (".npy", ".npz")
PRESETS = ("yolo", "imagenet")
DEFAULT_PREPROCESS = "yolo"
#: samples taken when --calib-samples is not given (TensorRT's guidance: about 500 images suffice)
DEFAULT_MAX_SAMPLES = 512
DEFAULT_RANDOM_SAMPLES = 32
DEFAULT_EVAL_SAMPLES = 8
#: share of the files held out for the accuracy report (at least one), and the fewest files to hold any out
HOLD_OUT_FRACTION = 0.2
MIN_FILES_TO_HOLD_OUT = 5
#: size for dynamic non-batch dims of seeded test inputs: divisible by the strides of common vision models
DEFAULT_DYNAMIC_DIM = 256
#: image size for dynamic height/width when calibrating from images with a preset
PRESET_IMAGE_SIZE = {"yolo": 640, "imagenet": 224}
#: bumped when the meaning of the provenance changes, so old caches are rebuilt
PROVENANCE_VERSION = 1

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
YOLO_PAD = 114


class CalibrationError(TrtbuildError):
    """Calibration data that is missing, unreadable, does not fit the model, or a stale cache."""


class _ShapeMismatch(CalibrationError):
    """An array does not split into samples of the model's shape (it may still be one feed as given)."""


class _SampleCountMismatch(CalibrationError):
    """The inputs' arrays split into different sample counts (they may still be one feed as given)."""


@dataclass
class CalibOptions:
    """Where calibration samples come from and how they are shaped (the ``--calib-*`` options)."""

    data: str | None = None  # folder of images / .npy / .npz files, or one .npy / .npz file
    preprocess: str = DEFAULT_PREPROCESS  # yolo | imagenet | module:function | path/to/file.py:function
    shape: str | None = None  # --calib-shape, e.g. images:8x3x640x640 (default: the profile's opt shape)
    samples: int | None = None  # --calib-samples (default: every file, at most DEFAULT_MAX_SAMPLES)
    random: bool = False  # --calib-random: random data, only on request
    seed: int = 0
    cache: str | None = None  # --calib: an explicit cache file (refused when stale)
    eval_samples: int = DEFAULT_EVAL_SAMPLES  # at most this many held-out samples for the accuracy report
    batch_axis: str | None = None  # --calib-batch-axis, e.g. state:1 (default: from the model's dims)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SampleRef:
    """One sample: an image file, or row ``index`` of an array file (``None``: the file is one sample)."""

    path: Path
    index: int | None = None


@dataclass
class CalibrationData:
    """Calibration (and held-out evaluation) samples for one model, served as batches."""

    model_path: Path
    model_sha256: str
    inputs: list[TensorInfo]
    batch_shapes: dict[str, Dims]  # input name -> batch shape, as the model takes it
    kind: str  # images | arrays | random
    preprocess: str | None
    calib_refs: list[SampleRef] = field(default_factory=list)
    eval_refs: list[SampleRef] = field(default_factory=list)
    random_samples: int = 0
    random_eval_samples: int = DEFAULT_EVAL_SAMPLES
    seed: int = 0
    held_out: bool = True  # False: evaluation reuses calibration samples (too few files)
    files_sha256: str = ""
    source: str | None = None
    #: input name -> the axis samples are stacked on (None: the input has no batch axis, e.g. a scalar)
    batch_axes: dict[str, int | None] = field(default_factory=dict)
    layout: str = "NCHW"  # image inputs: NCHW | NHWC
    _preprocess_fn: Callable[..., Any] | None = None
    _arrays: dict[Path, Any] = field(default_factory=dict, repr=False)
    #: (file, input) -> the axis the file stores samples on (None: the array is one sample)
    _array_axes: dict[tuple[Path, str], int | None] = field(default_factory=dict, repr=False)

    # ---- shape

    def batch_axis(self, name: str) -> int | None:
        return self.batch_axes.get(name, 0 if self.batch_shapes.get(name) else None)

    def sample_shape(self, name: str) -> Dims:
        """One sample of ``name``: its batch shape without the batch axis."""
        dims = self.batch_shapes[name]
        axis = self.batch_axis(name)
        return dims if axis is None else dims[:axis] + dims[axis + 1 :]

    @property
    def batch_size(self) -> int:
        for name, dims in self.batch_shapes.items():
            axis = self.batch_axis(name)
            if axis is not None:
                return int(dims[axis])
        return 1

    @property
    def num_samples(self) -> int:
        return self.random_samples if self.kind == "random" else len(self.calib_refs)

    @property
    def num_eval_samples(self) -> int:
        if self.kind == "random":
            return self.random_eval_samples
        return len(self.eval_refs)

    def num_batches(self, which: str = "calib") -> int:
        count = self.num_samples if which == "calib" else self.num_eval_samples
        return max(1, math.ceil(count / self.batch_size)) if count else 0

    # ---- provenance

    def provenance(self) -> dict[str, Any]:
        """What a cache built from this data depends on; compared key by key to detect staleness."""
        return {
            "version": PROVENANCE_VERSION,
            "model_sha256": self.model_sha256,
            "source": self.source,
            "kind": self.kind,
            "files_sha256": self.files_sha256,
            "samples": self.num_samples,
            "preprocess": describe_preprocess(self.preprocess) if self.kind == "images" else None,
            "batch_shapes": {n: format_dims(d) for n, d in self.batch_shapes.items()},
            "seed": self.seed if self.kind == "random" else None,
        }

    # ---- batches

    def batches(self, which: str = "calib", *, pad_last: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """Batches of ``batch_size`` samples (the last one smaller unless ``pad_last`` repeats samples)."""

        if self.kind == "random":
            yield from self._random_batches(which, pad_last=pad_last)
            return
        refs = self.calib_refs if which == "calib" else self.eval_refs
        size = self.batch_size
        for start in range(0, len(refs), size):
            chunk = list(refs[start : start + size])
            if pad_last and len(chunk) < size:
                chunk += [refs[i % len(refs)] for i in range(size - len(chunk))]
            samples = [self._load(ref) for ref in chunk]
            yield self._stack(samples)

    def _stack(self, samples: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Samples stacked on each input's batch axis; an input without one takes the first sample's value."""
        import numpy as np

        batch: dict[str, np.ndarray] = {}
        for name in self.batch_shapes:
            axis = self.batch_axis(name)
            values = [s[name] for s in samples]
            batch[name] = np.asarray(values[0]) if axis is None else np.stack(values, axis=axis)
        return batch

    def all_samples(self, which: str = "calib") -> dict[str, np.ndarray]:
        """Every sample of one split on its input's batch axis (for converters that take one array)."""
        import numpy as np

        parts = list(self.batches(which))
        out: dict[str, np.ndarray] = {}
        for name in self.batch_shapes:
            axis = self.batch_axis(name)
            out[name] = parts[0][name] if axis is None else np.concatenate([p[name] for p in parts], axis=axis)
        return out

    def _random_batches(self, which: str, *, pad_last: bool) -> Iterator[dict[str, np.ndarray]]:
        import numpy as np

        # Held-out random batches come from another seed so they are not the calibration samples.
        rng = np.random.default_rng(self.seed + (0 if which == "calib" else 1_000_003))
        remaining = self.num_samples if which == "calib" else self.num_eval_samples
        dtypes = {t.name: t.dtype for t in self.inputs}
        while remaining > 0:
            n = self.batch_size if pad_last else min(self.batch_size, remaining)
            batch: dict[str, np.ndarray] = {}
            for name, shape in self.batch_shapes.items():
                axis = self.batch_axis(name)
                dims = tuple(shape) if axis is None else (*shape[:axis], n, *shape[axis + 1 :])
                dtype = np.dtype(dtypes.get(name, "float32"))
                if dtype.kind == "f":
                    batch[name] = rng.random(dims, dtype=np.float32).astype(dtype)
                else:
                    batch[name] = np.zeros(dims, dtype=dtype)
            remaining -= self.batch_size
            yield batch

    def _load(self, ref: SampleRef) -> dict[str, np.ndarray]:
        if self.kind == "images":
            (name,) = self.batch_shapes
            sample = self.sample_shape(name)
            if self.layout == "NHWC":  # presets and functions work in (C, H, W)
                image = self._load_image(ref.path, (sample[2], sample[0], sample[1]))
                return {name: image.transpose(1, 2, 0).copy()}
            return {name: self._load_image(ref.path, sample)}
        return self._load_array_sample(ref)

    def _load_image(self, path: Path, sample_shape: Dims) -> np.ndarray:
        import numpy as np

        if self._preprocess_fn is not None:
            out = np.asarray(self._preprocess_fn(path, tuple(sample_shape)))
            if out.ndim == len(sample_shape) + 1 and out.shape[0] == 1:
                out = out[0]
            if tuple(out.shape) != tuple(sample_shape):
                raise CalibrationError(
                    f"The preprocessing function {self.preprocess} returned shape {list(out.shape)} for {path.name}, "
                    f"but the model takes samples of shape {list(sample_shape)}; return one (C, H, W) array."
                )
            return out.astype(self._dtype_of(self._image_input()), copy=False)
        return load_image(path, str(self.preprocess), sample_shape)

    def _image_input(self) -> str:
        return next(iter(self.batch_shapes))

    def _dtype_of(self, name: str) -> str:
        return next((t.dtype for t in self.inputs if t.name == name), "float32")

    def _load_array_sample(self, ref: SampleRef) -> dict[str, np.ndarray]:
        import numpy as np

        data = self._arrays.get(ref.path)
        if data is None:
            data = _open_array_file(ref.path)
            self._arrays[ref.path] = data
        out: dict[str, np.ndarray] = {}
        for name in self.batch_shapes:
            array = _array_for_input(data, name, ref.path, len(self.batch_shapes))
            axis = self._array_axes.get((ref.path, name))
            sample = array if axis is None else np.take(array, ref.index or 0, axis=axis)
            out[name] = np.ascontiguousarray(sample, dtype=np.dtype(self._dtype_of(name)))
        return out


# --------------------------------------------------------------------------------------------------
# Opening a data source


def open_calibration(
    options: CalibOptions,
    model: str | os.PathLike[str],
    *,
    profile_opt: Mapping[str, Sequence[int]] | None = None,
    require: bool = True,
) -> CalibrationData | None:
    """Collect the samples ``options`` names for ``model``; ``None`` when there is no data and not ``require``.

    Shapes come from ``--calib-shape``, else the profile's opt shape, else the model's dims with the
    batch axis at 1 and other dynamic dims taken from the data (arrays as given, the preset's image
    size). Random data only with ``options.random`` (and a warning), and never for integer inputs.
    """
    from trtbuild.model.load import load_onnx, model_inputs, resolve_model_path

    path = resolve_model_path(model)
    inputs = model_inputs(load_onnx(path, load_weights=False))
    if not options.data and not options.random:
        if require:
            raise CalibrationError(
                "INT8 calibration needs data: pass --calib-data DIR (a folder of images, or .npy/.npz files with "
                "samples along axis 0), or --calib CACHE for an existing calibration cache. --calib-random "
                "calibrates on random numbers (a smoke test only: the scales will not fit real inputs)."
            )
        return None
    if options.data and options.random:
        raise CalibrationError("--calib-data and --calib-random exclude each other; choose one.")
    axes = batch_axes(inputs, options.batch_axis)
    data = CalibrationData(
        model_path=path,
        model_sha256=file_sha256(path),
        inputs=inputs,
        batch_shapes={},
        batch_axes=axes,
        kind="random",
        preprocess=None,
        seed=options.seed,
    )
    if options.data:
        _collect_files(data, options, profile_opt)
        return data
    integers = [t.describe() for t in inputs if not t.dtype.startswith("float")]
    if integers:
        raise CalibrationError(
            f"--calib-random cannot make inputs of integer type ({', '.join(integers)}): random numbers are not valid "
            "token ids, sample rates or indices. Give real samples with --calib-data (an .npz file with one array per "
            "input)."
        )
    data.batch_shapes = resolve_calib_shapes(inputs, options.shape, profile_opt, axes=axes, default=DEFAULT_DYNAMIC_DIM)
    data.random_samples = options.samples or DEFAULT_RANDOM_SAMPLES
    data.random_eval_samples = max(0, options.eval_samples)
    data.source = "random"
    log.warning(
        "Calibrating on %d random samples (--calib-random): the ranges will not match real inputs, so "
        "the INT8 model is for smoke tests only. Pass --calib-data DIR with representative samples.",
        data.random_samples,
    )
    return data


def seeded_inputs(
    model: str | os.PathLike[str],
    *,
    shape: str | None = None,
    profile_opt: Mapping[str, Sequence[int]] | None = None,
    samples: int = DEFAULT_EVAL_SAMPLES,
    seed: int = 0,
) -> CalibrationData:
    """Seeded test inputs for an accuracy check without data: floats in [0, 1), integers 0.

    Shapes: ``shape`` / ``profile_opt`` where given, else fixed dims as declared, the batch axis at 1
    and every other dynamic dim at :data:`DEFAULT_DYNAMIC_DIM` (one value per symbolic name).
    """
    from trtbuild.model.load import load_onnx, model_inputs, resolve_model_path

    path = resolve_model_path(model)
    inputs = model_inputs(load_onnx(path, load_weights=False))
    axes = batch_axes(inputs, None)
    return CalibrationData(
        model_path=path,
        model_sha256=file_sha256(path),
        inputs=inputs,
        batch_shapes=resolve_calib_shapes(inputs, shape, profile_opt, axes=axes, default=DEFAULT_DYNAMIC_DIM),
        batch_axes=axes,
        kind="random",
        preprocess=None,
        random_samples=samples,
        random_eval_samples=samples,
        seed=seed,
        source="seeded",
    )


def batch_axes(inputs: Sequence[TensorInfo], override: str | None = None) -> dict[str, int | None]:
    """The axis each input stacks samples on.

    A symbolic dim name that sits on axis 0 of some input marks the batch wherever it appears (e.g.
    ``state [2, batch, 128]`` beside ``input [batch, 512]``); otherwise axis 0 when it is dynamic or
    1, else the only dynamic axis (``state [2, ?, 128]``), else axis 0. Scalars have none. ``override`` is ``--calib-batch-axis name:axis,...``.
    """
    batch_symbols = {t.dims[0] for t in inputs if t.dims and isinstance(t.dims[0], str)}
    axes: dict[str, int | None] = {}
    for tensor in inputs:
        dims = tensor.dims
        if not dims:
            axes[tensor.name] = None
            continue
        shared = [a for a, d in enumerate(dims) if isinstance(d, str) and d in batch_symbols]
        dynamic = [a for a, d in enumerate(dims) if not (isinstance(d, int) and d >= 0)]
        if shared:
            axes[tensor.name] = shared[0]
        elif 0 in dynamic or dims[0] == 1 or len(dynamic) != 1:
            axes[tensor.name] = 0  # a leading 1 is a fixed batch of one, as in [1, 1, 64, width]
        else:
            axes[tensor.name] = dynamic[0]
    for item in (override or "").split(","):
        if not item.strip():
            continue
        name, sep, axis_text = item.strip().rpartition(":")
        found = next((t for t in inputs if t.name == name), None)
        if not sep or found is None or not axis_text.strip().lstrip("-").isdigit():
            names = ", ".join(t.name for t in inputs)
            raise CalibrationError(f"--calib-batch-axis takes NAME:AXIS for the model's inputs ({names}), not '{item}'.")
        axis = int(axis_text)
        if not -len(found.dims) <= axis < len(found.dims):
            raise CalibrationError(f"--calib-batch-axis {item}: {found.describe()} has no axis {axis}.")
        axes[name] = axis % len(found.dims)
    return axes


def resolve_calib_shapes(
    inputs: Sequence[TensorInfo],
    shape_text: str | None,
    profile_opt: Mapping[str, Sequence[int]] | None = None,
    *,
    axes: Mapping[str, int | None] | None = None,
    known: Mapping[str, Dims] | None = None,
    default: int | None = None,
) -> dict[str, Dims]:
    """Batch shape per model input: --calib-shape, else the profile's opt shape, else the model's dims.

    In the model's dims the batch axis becomes 1; other dynamic dims come from ``known`` (dims the
    data shows), else ``default`` (one value per symbolic name), else the call fails naming the flag.
    """
    axes = axes if axes is not None else batch_axes(inputs)
    given: dict[str, Dims] = {}
    if shape_text:
        parsed = parse_shape_list(shape_text, flag="calib-shape")
        for name, dims in parsed.items():
            if name == UNNAMED:
                if len(inputs) != 1:
                    names = ", ".join(t.name for t in inputs)
                    raise CalibrationError(
                        f"--calib-shape {shape_text} has no input name, but the model has {len(inputs)} inputs "
                        f"({names}); name each one, like {inputs[0].name}:8x3x640x640."
                    )
                name = inputs[0].name
            if not any(t.name == name for t in inputs):
                names = ", ".join(t.describe() for t in inputs)
                raise CalibrationError(f"--calib-shape names '{name}', but the model's inputs are {names}.")
            given[name] = tuple(dims)
    elif profile_opt:
        given = {n: tuple(int(d) for d in dims) for n, dims in profile_opt.items()}
    shapes: dict[str, Dims] = {}
    symbols: dict[str, int] = {}
    for tensor in inputs:
        dims = given.get(tensor.name) or _model_dims(tensor, axes.get(tensor.name), (known or {}).get(tensor.name), default, symbols)
        if any(d < 1 for d in dims):
            raise CalibrationError(
                f"The calibration shape {format_dims(dims)} for '{tensor.name}' has a dimension below 1; every "
                "dimension, the batch included, must be at least 1."
            )
        _check_fits(tensor, dims)
        shapes[tensor.name] = dims
    batches = {d[axis] for n, d in shapes.items() if (axis := axes.get(n)) is not None}
    if len(batches) > 1:
        raise CalibrationError(
            f"The calibration shapes have different batch sizes ({_shapes_line(shapes)}); give every input the "
            "same batch dimension in --calib-shape."
        )
    return shapes


def _model_dims(
    tensor: TensorInfo, batch_axis: int | None, known: Dims | None, default: int | None, symbols: dict[str, int]
) -> Dims:
    dims: list[int] = []
    for axis, d in enumerate(tensor.dims):
        if isinstance(d, int) and d >= 0:
            dims.append(d)
        elif axis == batch_axis:
            dims.append(1)  # one sample per calibration step unless --calib-shape says more
        elif known is not None and len(known) == len(tensor.dims):
            dims.append(int(known[axis]))
        elif isinstance(d, str) and d in symbols:
            dims.append(symbols[d])
        elif default is not None:
            dims.append(default)
            if isinstance(d, str):
                symbols[d] = default
        else:
            raise CalibrationError(
                f"Input {tensor.describe()} has a dynamic axis {axis}, so calibration needs a shape: pass "
                f"--calib-shape {tensor.name}:{'x'.join(str(x) if isinstance(x, int) and x >= 0 else '?' for x in tensor.dims)} "
                "with the ?s filled in (or build with --opt, which calibration uses by default)."
            )
    return tuple(dims)


def _check_fits(tensor: TensorInfo, dims: Dims) -> None:
    if len(dims) != len(tensor.dims):
        raise CalibrationError(
            f"The calibration shape {format_dims(dims)} has {len(dims)} dimensions, but the model declares "
            f"{tensor.describe()}; give {len(tensor.dims)} dimensions."
        )
    conflict = fixed_axis_conflict(tensor, dims)
    if conflict is not None:
        axis, declared = conflict
        raise CalibrationError(
            f"The calibration shape {format_dims(dims)} for '{tensor.name}' does not fit the model "
            f"({tensor.describe()}): axis {axis} is fixed to {declared}."
        )


def _shapes_line(shapes: Mapping[str, Dims]) -> str:
    return ", ".join(f"{n}:{format_dims(d)}" for n, d in shapes.items())


def _collect_files(data: CalibrationData, options: CalibOptions, profile_opt: Mapping[str, Sequence[int]] | None) -> None:
    assert options.data is not None
    root = Path(options.data).expanduser()
    if not root.exists():
        raise CalibrationError(f"--calib-data {root} does not exist; give a folder of images or .npy/.npz files.")
    files = sorted(p for p in root.iterdir() if p.is_file()) if root.is_dir() else [root]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    arrays = [p for p in files if p.suffix.lower() in ARRAY_SUFFIXES]
    if images and arrays:
        raise CalibrationError(
            f"{root} mixes images and .npy/.npz files; keep one kind of calibration data per folder."
        )
    if not images and not arrays:
        raise CalibrationError(
            f"{root} has no calibration data: expected images ({', '.join(IMAGE_SUFFIXES)}) or .npy/.npz files."
        )
    data.source = str(root.resolve())
    if images:
        data.kind = "images"
        data.preprocess = options.preprocess or DEFAULT_PREPROCESS
        _setup_images(data, options, profile_opt)
        refs = [SampleRef(p) for p in images]
    else:
        data.kind = "arrays"
        known = _dims_shown_by(arrays[0], data)
        data.batch_shapes = resolve_calib_shapes(data.inputs, options.shape, profile_opt, axes=data.batch_axes, known=known)
        try:
            refs = _array_refs(data, arrays)
        except (_SampleCountMismatch, _ShapeMismatch):
            as_given = _feeds_as_given(data, arrays, known, options)
            if as_given is None:
                raise
            refs = as_given
    _split(data, refs, options)
    used = sorted({r.path for r in data.calib_refs})
    data.files_sha256 = files_digest(used, base=root if root.is_dir() else root.parent)


def _split(data: CalibrationData, refs: list[SampleRef], options: CalibOptions) -> None:
    """Calibrate on most samples; hold out the last ones (at most 20 %, at least 1) for the accuracy report.

    With fewer than :data:`MIN_FILES_TO_HOLD_OUT` samples, all calibrate and the report reuses them.
    """
    wanted_eval = max(0, options.eval_samples)
    if options.samples is not None:
        if options.samples < 1:
            raise CalibrationError("--calib-samples must be at least 1.")
        if options.samples > len(refs):
            raise CalibrationError(
                f"--calib-samples {options.samples} asks for more samples than {data.source} has ({len(refs)})."
            )
        data.calib_refs = refs[: options.samples]
        data.eval_refs = refs[options.samples : options.samples + wanted_eval]
    elif wanted_eval and len(refs) >= MIN_FILES_TO_HOLD_OUT:
        eval_n = min(wanted_eval, max(1, int(len(refs) * HOLD_OUT_FRACTION)))
        data.calib_refs = refs[: len(refs) - eval_n][:DEFAULT_MAX_SAMPLES]
        data.eval_refs = refs[len(refs) - eval_n :]
    else:
        data.calib_refs = refs[:DEFAULT_MAX_SAMPLES]
    data.held_out = bool(data.eval_refs) or wanted_eval == 0
    if not data.eval_refs and wanted_eval:
        data.eval_refs = data.calib_refs[:wanted_eval]
        log.warning(
            "%s has %d sample(s): all calibrate, and the accuracy report reuses %d of them (not held out); with %d "
            "or more, up to %d%% are held out.",
            data.source,
            len(refs),
            len(data.eval_refs),
            MIN_FILES_TO_HOLD_OUT,
            round(HOLD_OUT_FRACTION * 100),
        )
    log.info(
        "Calibration data: %d sample(s) (%s) from %s in batches of %s (%d held out for the accuracy report).",
        len(data.calib_refs),
        data.kind,
        data.source,
        _shapes_line(data.batch_shapes),
        len(data.eval_refs) if data.held_out else 0,
    )


def image_layout(tensor: TensorInfo) -> str | None:
    """NCHW or NHWC for a rank-4 image input (1 or 3 channels), None when neither fits."""
    dims = tensor.dims
    if len(dims) != 4:
        return None
    if dims[1] in (1, 3):
        return "NCHW"
    if dims[3] in (1, 3):
        return "NHWC"
    if not isinstance(dims[1], int) or dims[1] < 0:
        return "NCHW"  # dynamic channels: assume the common layout
    return None


def _setup_images(data: CalibrationData, options: CalibOptions, profile_opt: Mapping[str, Sequence[int]] | None) -> None:
    if len(data.inputs) != 1 or image_layout(data.inputs[0]) is None:
        names = ", ".join(t.describe() for t in data.inputs)
        raise CalibrationError(
            f"Images can calibrate a model with one image input (NCHW or NHWC, 1 or 3 channels), but this model has "
            f"{names}; give an .npz file (or a folder of them) with one array per input name."
        )
    tensor = data.inputs[0]
    data.layout = image_layout(tensor) or "NCHW"
    preprocess = str(data.preprocess)
    size = PRESET_IMAGE_SIZE.get(preprocess, DEFAULT_DYNAMIC_DIM)
    channel_axis = 1 if data.layout == "NCHW" else 3
    known = tuple(3 if axis == channel_axis else size for axis in range(4))
    data.batch_shapes = resolve_calib_shapes(
        data.inputs, options.shape, profile_opt, axes=data.batch_axes, known={tensor.name: known}
    )
    channels = data.batch_shapes[tensor.name][channel_axis]
    if preprocess in PRESETS:
        if channels not in (1, 3):
            raise CalibrationError(
                f"The '{preprocess}' preset makes 1- or 3-channel images, but '{tensor.name}' takes {channels} channels; "
                "use --calib-preprocess module:function or .npy/.npz data."
            )
        log.info("Images are preprocessed with the '%s' preset: %s (%s).", preprocess, PRESET_HELP[preprocess], data.layout)
    else:
        data._preprocess_fn = load_user_function(preprocess)


PRESET_HELP = {
    "yolo": "letterbox to the input size (gray 114 padding), RGB, 0-1",
    "imagenet": "resize the shorter side to size/0.875, center crop, RGB, 0-1, minus mean / std (ImageNet)",
}


def _dims_shown_by(path: Path, data: CalibrationData) -> dict[str, Dims]:
    """Per input, the batch shape an array file shows (to fill dynamic dims when no shape is given)."""
    handle = _open_array_file(path)
    data._arrays[path] = handle
    known: dict[str, Dims] = {}
    for tensor in data.inputs:
        array = _array_for_input(handle, tensor.name, path, len(data.inputs))
        shape = tuple(int(d) for d in array.shape)
        rank = len(tensor.dims)
        if len(shape) == rank:  # as the model takes it (or samples along a batch axis 0)
            known[tensor.name] = shape
        elif len(shape) == rank - 1 and data.batch_axis(tensor.name) is not None:  # one sample
            axis = data.batch_axis(tensor.name) or 0
            known[tensor.name] = (*shape[:axis], 1, *shape[axis:])
    return known


def _check_values(array: Any, name: str, path: Path) -> None:
    import numpy as np

    if array.dtype.kind not in "biuf":
        raise CalibrationError(f"{path.name}: '{name}' holds {array.dtype} values; save numeric arrays with numpy.savez.")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise CalibrationError(
            f"{path.name}: '{name}' holds NaN or infinite values, which would make every range meaningless; save "
            "finite samples."
        )


def _feeds_as_given(
    data: CalibrationData, files: list[Path], known: Mapping[str, Dims], options: CalibOptions
) -> list[SampleRef] | None:
    """Each file is one feed exactly as the model takes it (e.g. a sequence model whose frames and state
    have no common batch axis): used when the arrays do not split into samples; None if they are not that."""
    if options.shape or set(known) != set(data.batch_shapes):
        return None
    for tensor in data.inputs:
        dims = tuple(known[tensor.name])
        if len(dims) != len(tensor.dims) or fixed_axis_conflict(tensor, dims) is not None:
            return None
    for path in files[1:]:
        handle = data._arrays.get(path) if path in data._arrays else _open_array_file(path)
        data._arrays[path] = handle
        for tensor in data.inputs:
            if len(_array_for_input(handle, tensor.name, path, len(data.inputs)).shape) != len(tensor.dims):
                return None
    data.batch_axes = {name: None for name in data.batch_shapes}
    data.batch_shapes = {name: tuple(known[name]) for name in data.batch_shapes}
    data._array_axes = {(path, name): None for path in files for name in data.batch_shapes}
    log.info("Each of the %d array file(s) is one feed as the model takes it (%s).", len(files), _shapes_line(data.batch_shapes))
    return [SampleRef(path) for path in files]


def _array_refs(data: CalibrationData, files: list[Path]) -> list[SampleRef]:
    """Samples in each file, per input: one sample, samples along axis 0, or along the model's batch axis."""
    refs: list[SampleRef] = []
    for path in files:
        if path not in data._arrays:
            data._arrays[path] = _open_array_file(path)
        handle = data._arrays[path]
        counts: set[int] = set()
        for name in data.batch_shapes:
            array = _array_for_input(handle, name, path, len(data.batch_shapes))
            _check_values(array, name, path)
            sample = tuple(data.sample_shape(name))
            shape = tuple(int(d) for d in array.shape)
            axis = data.batch_axis(name)
            if shape == sample:
                data._array_axes[(path, name)] = None
                continue
            if axis is not None and len(shape) == len(sample) + 1 and shape[:axis] + shape[axis + 1 :] == sample:
                data._array_axes[(path, name)] = axis
                counts.add(shape[axis])
            elif len(shape) == len(sample) + 1 and shape[1:] == sample:
                data._array_axes[(path, name)] = 0
                counts.add(shape[0])
            else:
                batch = format_dims(data.batch_shapes[name])
                raise _ShapeMismatch(
                    f"{path.name}: the array for '{name}' has shape {list(shape)}, but calibration samples are "
                    f"{list(sample)} (from {name}:{batch}); store samples along axis 0, like {[8, *sample]}, or as the "
                    "model takes them, or change --calib-shape."
                )
        if len(counts) > 1:
            raise _SampleCountMismatch(f"{path.name}: the arrays for the inputs hold different numbers of samples.")
        count = counts.pop() if counts else None
        refs += [SampleRef(path)] if count is None else [SampleRef(path, i) for i in range(count)]
    if not refs:
        raise CalibrationError(f"{data.source} holds no samples.")
    return refs


def _open_array_file(path: Path) -> Any:
    import numpy as np

    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"Cannot read {path} as a NumPy array file ({exc}).") from None


def _array_for_input(handle: Any, name: str, path: Path, n_inputs: int) -> Any:
    if path.suffix.lower() == ".npy":
        if n_inputs != 1:
            raise CalibrationError(
                f"{path.name} is a .npy file (one array), but the model has {n_inputs} inputs; use an .npz file with "
                "one array per input name."
            )
        return handle
    keys = list(handle.files)
    if name in keys:
        return handle[name]
    if n_inputs == 1 and len(keys) == 1:
        return handle[keys[0]]
    raise CalibrationError(f"{path.name} has no array named '{name}' (it has {', '.join(keys) or 'none'}).")


# --------------------------------------------------------------------------------------------------
# Images


def load_image(path: str | os.PathLike[str], preset: str, sample_shape: Sequence[int]) -> np.ndarray:
    """One image as a float32 (C, H, W) array, preprocessed with a preset."""
    import numpy as np

    try:
        from PIL import Image
    except ImportError:
        from trtbuild.errors import MissingDependencyError

        raise MissingDependencyError("Reading calibration images needs Pillow: pip install pillow.") from None
    import warnings

    channels, height, width = (int(d) for d in sample_shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse, do not decode 100+ Mpixel
            with Image.open(path) as opened:
                source: Any = opened
                if opened.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                    # convert("L"/"RGB") clips deep images at 255 (a 16-bit scan turns white): scale by the depth.
                    deep = np.asarray(opened, dtype=np.float32)
                    top = 65535.0 if opened.mode != "F" and deep.max(initial=0) <= 65535 else max(float(deep.max()), 1.0)
                    source = Image.fromarray(np.clip(deep / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
                image = source.convert("L" if channels == 1 else "RGB")
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise CalibrationError(f"The image {path} is refused: {exc} Use images of ordinary size.") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise CalibrationError(f"Cannot read the image {path} ({exc}); remove it from the folder or convert it.") from None
    array: Any
    if preset == "yolo":
        image = letterbox(image, height, width)
        array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    elif preset == "imagenet":
        image = resize_center_crop(image, height, width)
        array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        if channels == 3:
            array = (array - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    else:
        raise CalibrationError(f"Unknown preprocessing preset '{preset}'; use one of {', '.join(PRESETS)}.")
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32)


def letterbox(image: Any, height: int, width: int) -> Any:
    """Scale to fit inside (height, width) keeping the aspect ratio; pad the rest with gray 114 (YOLO)."""
    from PIL import Image

    w0, h0 = image.size
    ratio = min(height / h0, width / w0)
    new_w, new_h = max(1, round(w0 * ratio)), max(1, round(h0 * ratio))
    resized = image.resize((new_w, new_h), Image.Resampling.BILINEAR) if (new_w, new_h) != (w0, h0) else image
    fill: Any = YOLO_PAD if image.mode == "L" else (YOLO_PAD,) * 3
    canvas = Image.new(image.mode, (width, height), fill)
    # Ultralytics splits the padding in halves, rounding the left/top half down.
    left, top = round((width - new_w) / 2 - 0.1), round((height - new_h) / 2 - 0.1)
    canvas.paste(resized, (left, top))
    return canvas


def resize_center_crop(image: Any, height: int, width: int, crop_fraction: float = 0.875) -> Any:
    """Resize so the crop covers ``crop_fraction`` of the shorter side, then center-crop (ImageNet eval)."""
    from PIL import Image

    w0, h0 = image.size
    scale = max(height / h0, width / w0) / crop_fraction
    new_w, new_h = max(width, round(w0 * scale)), max(height, round(h0 * scale))
    resized = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - width) // 2, (new_h - height) // 2
    return resized.crop((left, top, left + width, top + height))


def load_user_function(spec: str) -> Callable[..., Any]:
    """``module:function`` or ``path/to/file.py:function``, called as ``fn(path, (C, H, W)) -> array``."""
    module_name, sep, func_name = spec.rpartition(":")
    if not sep or not module_name or not func_name:
        raise CalibrationError(
            f"--calib-preprocess '{spec}' is neither a preset ({', '.join(PRESETS)}) nor module:function "
            "(e.g. mypkg.prep:load or prep.py:load)."
        )
    try:
        if module_name.endswith(".py"):
            file = Path(module_name).expanduser().resolve()
            module_spec = importlib.util.spec_from_file_location(f"trtbuild_calib_{file.stem}", file)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot load {file}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except (ImportError, OSError, SyntaxError) as exc:
        raise CalibrationError(f"Cannot import the preprocessing module '{module_name}' ({exc}).") from None
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise CalibrationError(f"The module '{module_name}' has no function '{func_name}'.")
    return fn  # type: ignore[no-any-return]


def describe_preprocess(preprocess: str | None) -> dict[str, Any] | None:
    """The preprocessing as provenance: a preset with its constants, or a function with its source hash."""
    if preprocess is None:
        return None
    if preprocess in PRESETS:
        detail: dict[str, Any] = {"preset": preprocess}
        if preprocess == "yolo":
            detail["pad"] = YOLO_PAD
        else:
            detail.update(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), crop=0.875)
        return detail
    module_name, _, func = preprocess.rpartition(":")
    source_hash = None
    try:
        if module_name.endswith(".py"):
            source_hash = file_sha256(Path(module_name).expanduser())
        else:
            found = importlib.util.find_spec(module_name)
            if found is not None and found.origin and os.path.isfile(found.origin):
                source_hash = file_sha256(Path(found.origin))
    except (ImportError, OSError, ValueError):
        pass
    return {"function": preprocess, "source_sha256": source_hash}


# --------------------------------------------------------------------------------------------------
# Hashes and caches


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_digest(files: Sequence[Path], base: Path) -> str:
    """One sha256 over the files' names (relative to ``base``) and contents."""
    digest = hashlib.sha256()
    for path in files:
        try:
            name = str(path.relative_to(base))
        except ValueError:
            name = path.name
        digest.update(name.encode("utf-8") + b"\0" + file_sha256(path).encode("ascii") + b"\n")
    return digest.hexdigest()


def provenance_path(cache: str | os.PathLike[str]) -> Path:
    """Where a cache's provenance lives: ``cache`` + ``.json`` (the cache itself stays in its tool's format)."""
    return Path(os.fspath(cache) + ".json")


def read_provenance(cache: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = provenance_path(cache)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return loaded.get("provenance", loaded) if isinstance(loaded, dict) else {}


def write_provenance(cache: str | os.PathLike[str], provenance: Mapping[str, Any], **extra: Any) -> Path:
    from trtbuild import __version__
    from trtbuild.fsutil import atomic_write_json

    path = provenance_path(cache)
    atomic_write_json(path, {"trtbuild": __version__, "cache": Path(cache).name, "provenance": dict(provenance), **extra})
    return path


def stale_reasons(stored: Mapping[str, Any] | None, current: Mapping[str, Any], *, only: Sequence[str] = ()) -> list[str]:
    """Why ``stored`` provenance does not match ``current`` (empty: it matches)."""
    if stored is None:
        return ["no provenance file beside it"]
    keys = list(only) or sorted(set(stored) | set(current))
    labels = {
        "model_sha256": "the model changed",
        "files_sha256": "the calibration files changed (names or contents)",
        "preprocess": "the preprocessing changed",
        "batch_shapes": "the calibration shapes changed",
        "samples": "the number of calibration samples changed",
        "kind": "the kind of calibration data changed",
        "seed": "the random seed changed",
        "version": "it was written by an older trtbuild",
    }
    reasons = []
    for key in keys:
        if key in INFORMATIONAL_KEYS:
            continue
        if _canonical(stored.get(key)) != _canonical(current.get(key)):
            reasons.append(labels.get(key, f"'{key}' changed"))
    return reasons


#: recorded for people, not compared: the same files reached by another path are the same data
INFORMATIONAL_KEYS = frozenset({"source", "chosen_method", "method_scores", "range_search"})


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def cache_is_fresh(
    cache: str | os.PathLike[str],
    provenance: Mapping[str, Any],
    *,
    explicit: bool,
    only: Sequence[str] = (),
    what: str = "calibration cache",
) -> bool:
    """True when ``cache`` exists and was made from this data and model; stale caches are rebuilt.

    An ``explicit`` cache (named with --calib) is never silently replaced: a stale one raises
    :class:`CalibrationError`, and one without provenance (e.g. from trtexec) is trusted with a warning.
    """
    path = Path(cache)
    if not path.is_file():
        return False
    stored = read_provenance(path)
    if stored is None and explicit:
        log.warning("%s has no provenance file (%s); using it as given.", path, provenance_path(path).name)
        return True
    reasons = stale_reasons(stored, provenance, only=only)
    if not reasons:
        log.info("Reusing the %s %s (same data, preprocessing and model).", what, path)
        return True
    if explicit:
        raise CalibrationError(
            f"The {what} {path} is stale: {'; '.join(reasons)}. It was named with --calib, so it is not rebuilt; "
            "delete it (or point --calib at a new file) to calibrate again, or pass the data it was made from."
        )
    log.info("The %s %s is stale (%s); calibrating again.", what, path, "; ".join(reasons))
    return False


def describe_source(data: CalibrationData | None) -> str:
    if data is None:
        return "no calibration data"
    if data.kind == "random":
        return f"{data.num_samples} random samples (seed {data.seed})"
    return f"{data.num_samples} {data.kind} sample(s) from {data.source}"

