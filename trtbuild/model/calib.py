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
#: bumped when the meaning of the provenance changes, so old caches are rebuilt
PROVENANCE_VERSION = 1

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
YOLO_PAD = 114


class CalibrationError(TrtbuildError):
    """Calibration data that is missing, unreadable, does not fit the model, or a stale cache."""


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
    eval_samples: int = DEFAULT_EVAL_SAMPLES  # held-out samples for the accuracy report

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
    batch_shapes: dict[str, Dims]  # input name -> batch shape (batch = axis 0)
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
    _preprocess_fn: Callable[..., Any] | None = None
    _arrays: dict[Path, Any] = field(default_factory=dict, repr=False)

    # ---- shape

    @property
    def batch_size(self) -> int:
        first = next(iter(self.batch_shapes.values()))
        return int(first[0]) if first else 1

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
        import numpy as np

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
            yield {name: np.stack([s[name] for s in samples]) for name in self.batch_shapes}

    def all_samples(self, which: str = "calib") -> dict[str, np.ndarray]:
        """Every sample of one split concatenated along axis 0 (for converters that take one array)."""
        import numpy as np

        parts = list(self.batches(which))
        return {name: np.concatenate([p[name] for p in parts]) for name in self.batch_shapes}

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
                dims = (n, *shape[1:])
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
            return {name: self._load_image(ref.path, self.batch_shapes[name][1:])}
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
            sample = array if ref.index is None else array[ref.index]
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

    Shapes come from ``--calib-shape``, else the profile's opt shape, else the model's dims (a dynamic
    leading batch dim becomes 1). Random data only with ``options.random`` (and a warning).
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
    shapes = resolve_calib_shapes(inputs, options.shape, profile_opt)
    data = CalibrationData(
        model_path=path,
        model_sha256=file_sha256(path),
        inputs=inputs,
        batch_shapes=shapes,
        kind="random",
        preprocess=None,
        seed=options.seed,
    )
    if options.data:
        if options.random:
            raise CalibrationError("--calib-data and --calib-random exclude each other; choose one.")
        _collect_files(data, options)
    else:
        data.random_samples = options.samples or DEFAULT_RANDOM_SAMPLES
        data.random_eval_samples = max(0, options.eval_samples)
        data.source = "random"
        log.warning(
            "Calibrating on %d random samples (--calib-random): the ranges will not match real inputs, so "
            "the INT8 model is for smoke tests only. Pass --calib-data DIR with representative samples.",
            data.random_samples,
        )
    return data


def resolve_calib_shapes(
    inputs: Sequence[TensorInfo],
    shape_text: str | None,
    profile_opt: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Dims]:
    """Batch shape per model input: --calib-shape, else the profile's opt shape, else the model's dims."""
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
    for tensor in inputs:
        dims = given.get(tensor.name) or _model_dims(tensor)
        _check_fits(tensor, dims)
        shapes[tensor.name] = dims
    batches = {d[0] for d in shapes.values() if d}
    if len(batches) > 1:
        raise CalibrationError(
            f"The calibration shapes have different batch sizes ({_shapes_line(shapes)}); give every input the "
            "same leading (batch) dimension in --calib-shape."
        )
    return shapes


def _model_dims(tensor: TensorInfo) -> Dims:
    dims: list[int] = []
    for axis, d in enumerate(tensor.dims):
        if isinstance(d, int) and d >= 0:
            dims.append(d)
        elif axis == 0:
            dims.append(1)  # a dynamic batch: one sample per calibration step
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


def _collect_files(data: CalibrationData, options: CalibOptions) -> None:
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
        _setup_images(data)
        refs = [SampleRef(p) for p in images]
    else:
        data.kind = "arrays"
        refs = _array_refs(data, arrays)
    _split(data, refs, options)
    used = sorted({r.path for r in data.calib_refs})
    data.files_sha256 = files_digest(used, base=root if root.is_dir() else root.parent)


def _split(data: CalibrationData, refs: list[SampleRef], options: CalibOptions) -> None:
    """First N samples calibrate; the next ``eval_samples`` are held out for the accuracy report."""
    eval_n = max(0, options.eval_samples)
    if options.samples is not None:
        if options.samples < 1:
            raise CalibrationError("--calib-samples must be at least 1.")
        if options.samples > len(refs):
            raise CalibrationError(
                f"--calib-samples {options.samples} asks for more samples than {data.source} has ({len(refs)})."
            )
        n = options.samples
    else:
        n = min(DEFAULT_MAX_SAMPLES, len(refs) - eval_n if len(refs) > eval_n else len(refs))
    data.calib_refs = refs[:n]
    data.eval_refs = refs[n : n + eval_n]
    data.held_out = bool(data.eval_refs) or eval_n == 0
    if not data.eval_refs and eval_n:
        data.eval_refs = data.calib_refs[:eval_n]
        log.warning(
            "All %d samples in %s are used for calibration, so the accuracy report reuses calibration samples "
            "(not held out); add more files or lower --calib-samples.",
            len(refs),
            data.source,
        )
    log.info(
        "Calibration data: %d sample(s) (%s) from %s in batches of %s (%d held out for the accuracy report).",
        len(data.calib_refs),
        data.kind,
        data.source,
        _shapes_line(data.batch_shapes),
        len(data.eval_refs),
    )


def _setup_images(data: CalibrationData) -> None:
    float_4d = [t for t in data.inputs if len(t.dims) == 4]
    if len(data.inputs) != 1 or not float_4d:
        names = ", ".join(t.describe() for t in data.inputs)
        raise CalibrationError(
            f"Images can calibrate a model with one NCHW image input, but this model has {names}; give an .npz "
            "file (or a folder of them) with one array per input name, samples along axis 0."
        )
    name = float_4d[0].name
    channels = data.batch_shapes[name][1]
    preprocess = str(data.preprocess)
    if preprocess in PRESETS:
        if channels not in (1, 3):
            raise CalibrationError(
                f"The '{preprocess}' preset makes 1- or 3-channel images, but '{name}' takes {channels} channels; "
                "use --calib-preprocess module:function or .npy/.npz data."
            )
        log.info("Images are preprocessed with the '%s' preset: %s.", preprocess, PRESET_HELP[preprocess])
    else:
        data._preprocess_fn = load_user_function(preprocess)


PRESET_HELP = {
    "yolo": "letterbox to the input size (gray 114 padding), RGB, 0-1, NCHW",
    "imagenet": "resize the shorter side to size/0.875, center crop, RGB, 0-1, minus mean / std (ImageNet)",
}


def _array_refs(data: CalibrationData, files: list[Path]) -> list[SampleRef]:
    refs: list[SampleRef] = []
    n_inputs = len(data.batch_shapes)
    for path in files:
        handle = _open_array_file(path)
        data._arrays[path] = handle
        counts: set[int | None] = set()
        for name, shape in data.batch_shapes.items():
            array = _array_for_input(handle, name, path, n_inputs)
            sample_shape = tuple(shape[1:])
            if tuple(array.shape) == sample_shape:
                counts.add(None)
            elif tuple(array.shape[1:]) == sample_shape:
                counts.add(int(array.shape[0]))
            else:
                raise CalibrationError(
                    f"{path.name}: the array for '{name}' has shape {list(array.shape)}, but calibration samples "
                    f"are {list(sample_shape)} (from {name}:{format_dims(shape)}); store samples along axis 0, "
                    f"like {[8, *sample_shape]}, or change --calib-shape."
                )
        if len(counts) != 1:
            raise CalibrationError(f"{path.name}: the arrays for the inputs hold different numbers of samples.")
        (count,) = counts
        refs += [SampleRef(path)] if count is None else [SampleRef(path, i) for i in range(count)]
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
    channels, height, width = (int(d) for d in sample_shape)
    try:
        with Image.open(path) as opened:
            image = opened.convert("L" if channels == 1 else "RGB")
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"Cannot read the image {path} ({exc}).") from None
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
INFORMATIONAL_KEYS = frozenset({"source"})


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

