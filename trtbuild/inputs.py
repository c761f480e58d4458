"""Input data for comparisons: seeded arrays per profile corner, ``.npz`` files, image folders.

Every feed is explicit about its shapes: a dynamic dimension never silently becomes 1 (Polygraphy's
DataLoader default), because a comparison that only ever runs batch 1 proves little about an
engine built for batch 1..16.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import ShapeError, SpecError
from trtbuild.shapes import SHAPE_FLAGS, Dims, Profile, TensorInfo, fixed_axis_conflict, format_dims

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: An .npz whose arrays unpack to more than this is refused before loading (a compressed .npz of zeros
#: can claim terabytes); override with TRTBUILD_MAX_DATA_BYTES.
DEFAULT_MAX_DATA_BYTES = 8 << 30


@dataclass
class Feed:
    """One query: a label saying where it came from ("min", "opt", "max", "data", "images[0:4]") and its arrays."""

    label: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def shapes(self) -> dict[str, Dims]:
        return {name: tuple(int(d) for d in a.shape) for name, a in self.arrays.items()}

    def describe(self) -> str:
        return ", ".join(f"{n}:{format_dims(s)}" for n, s in self.shapes().items())


def corner_shapes(profile: Profile, inputs: Sequence[TensorInfo] = ()) -> list[tuple[str, dict[str, Dims]]]:
    """(label, shapes) for min, opt and max; identical corners merge into one ("min=opt").

    Static inputs the profile does not mention take their declared dims.
    """
    corners: list[tuple[str, dict[str, Dims]]] = []
    for which in SHAPE_FLAGS:
        shapes = {name: getattr(rng, which) for name, rng in profile.shapes.items()}
        for tensor in inputs:
            if tensor.name not in shapes:
                if tensor.is_dynamic:
                    raise ShapeError(
                        f"Input {tensor.describe()} is dynamic but has no shape; give it with --min/--opt/--max."
                    )
                shapes[tensor.name] = tuple(int(d) for d in tensor.dims)  # type: ignore[arg-type]
        if inputs:  # keep the model's input order
            shapes = {t.name: shapes[t.name] for t in inputs}
        for i, (label, seen) in enumerate(corners):
            if seen == shapes:
                corners[i] = (f"{label}={which}", seen)
                break
        else:
            corners.append((which, shapes))
    return corners


def static_shapes(inputs: Sequence[TensorInfo]) -> dict[str, Dims]:
    dynamic = [t for t in inputs if t.is_dynamic]
    if dynamic:
        names = "; ".join(t.describe() for t in dynamic)
        example = ",".join(f"{t.name}:{'x'.join(str(d) if isinstance(d, int) and d >= 0 else '1' for d in t.dims)}"
                           for t in dynamic)
        raise ShapeError(
            f"The model has dynamic inputs ({names}) and no shapes were given; pass --min/--opt/--max "
            f"(like --min {example}), --data, or an engine whose manifest has a profile."
        )
    return {t.name: tuple(int(d) for d in t.dims) for t in inputs}  # type: ignore[arg-type]


def random_array(shape: Dims, dtype: str, rng: Any, val_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Seeded values in ``val_range``: floats uniform, integers in [lo, hi], booleans fair coin flips."""
    import numpy as np

    np_dtype = np.dtype(dtype)
    lo, hi = val_range
    if np_dtype.kind == "f":
        return rng.uniform(lo, hi, size=shape).astype(np_dtype)
    if np_dtype.kind in "iu":
        low = max(int(np.floor(lo)), 0) if np_dtype.kind == "u" else int(np.floor(lo))
        return rng.integers(low, max(int(np.ceil(hi)), low) + 1, size=shape).astype(np_dtype)
    if np_dtype.kind == "b":
        return rng.random(size=shape) < 0.5
    raise SpecError(f"Cannot generate random data of type {dtype}; give real inputs with --data file.npz.")


def seeded_feeds(
    inputs: Sequence[TensorInfo],
    profile: Profile | None,
    *,
    seed: int = 0,
    val_range: tuple[float, float] = (0.0, 1.0),
) -> list[Feed]:
    """One seeded feed per distinct profile corner (or one at the static shapes)."""
    import numpy as np

    corners = corner_shapes(profile, inputs) if profile is not None else [("static", static_shapes(inputs))]
    dtypes = {t.name: t.dtype for t in inputs}
    feeds = []
    for index, (label, shapes) in enumerate(corners):
        rng = np.random.default_rng(seed + index)  # each corner its own stream: reproducible per corner
        feeds.append(Feed(label, {n: random_array(s, dtypes.get(n, "float32"), rng, val_range) for n, s in shapes.items()}))
    return feeds


# --------------------------------------------------------------------------------------------------
# User data


def _check_against_model(name: str, array: np.ndarray, tensor: TensorInfo, profile: Profile | None, source: str) -> None:
    shape = tuple(int(d) for d in array.shape)
    if len(shape) != len(tensor.dims):
        raise SpecError(
            f"{source}: '{name}' has shape {format_dims(shape)} ({len(shape)} dimensions) but the model declares "
            f"{tensor.describe()}; save it with {len(tensor.dims)} dimensions."
        )
    conflict = fixed_axis_conflict(tensor, shape)
    if conflict is not None:
        axis, declared = conflict
        raise SpecError(
            f"{source}: '{name}' has shape {format_dims(shape)} but axis {axis} of {tensor.describe()} is fixed "
            f"to {declared}."
        )
    rng = profile.shapes.get(name) if profile is not None else None
    if rng is not None and not all(lo <= d <= hi for lo, d, hi in zip(rng.min, shape, rng.max)):
        raise SpecError(
            f"{source}: '{name}' has shape {format_dims(shape)}, outside the profile "
            f"(min {format_dims(rng.min)}, max {format_dims(rng.max)}); an engine cannot run it. Resize the data "
            "or widen the profile."
        )


def _cast(name: str, array: np.ndarray, dtype: str, source: str) -> np.ndarray:
    import numpy as np

    want = np.dtype(dtype)
    if array.dtype == want:
        return array
    if array.dtype.kind == want.kind or (array.dtype.kind in "iub" and want.kind in "iu") or (
        array.dtype.kind in "iu" and want.kind == "f"
    ):
        log.info("%s: casting '%s' from %s to the model's %s.", source, name, array.dtype, want)
        return array.astype(want)
    raise SpecError(f"{source}: '{name}' is {array.dtype} but the model wants {want}; save it as {want}.")


def load_npz(path: str | os.PathLike[str], inputs: Sequence[TensorInfo], profile: Profile | None = None) -> list[Feed]:
    """One feed from an ``.npz`` keyed by input name (``np.savez(path, images=..., scale=...)``)."""
    import zipfile

    import numpy as np

    source = str(path)
    limit = int(os.environ.get("TRTBUILD_MAX_DATA_BYTES") or DEFAULT_MAX_DATA_BYTES)
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > limit:
            raise SpecError(f"{source} unpacks to {unpacked / (1 << 30):.1f} GiB, more than the "
                            f"{limit / (1 << 30):.1f} GiB allowed for --data; use fewer or smaller samples (or raise "
                            "TRTBUILD_MAX_DATA_BYTES).")  # fmt: skip
        with np.load(path, allow_pickle=False) as data:  # no pickle: object arrays are refused
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        reason = "it holds Python objects, which are never unpickled" if "allow_pickle" in str(exc) else str(exc)
        raise SpecError(f"Cannot read {source} as an .npz file ({reason}); save numeric arrays with numpy.savez.") from None
    missing = [t for t in inputs if t.name not in arrays]
    if missing:
        raise SpecError(
            f"{source} has no array for input(s) {', '.join(repr(t.name) for t in missing)}; it holds "
            f"{', '.join(repr(k) for k in arrays) or 'nothing'}. The model's inputs are "
            f"{'; '.join(t.describe() for t in inputs)}. Save every input under its name, like "
            f"numpy.savez('{Path(source).name}', {', '.join(f'{t.name}=...' for t in inputs)})."
        )
    extra = [k for k in arrays if k not in {t.name for t in inputs}]
    if extra:
        log.warning("%s: ignoring arrays that are not model inputs: %s", source, ", ".join(extra))
    feed = Feed("data")
    for tensor in inputs:
        raw = arrays[tensor.name]
        if raw.size == 0:
            raise SpecError(f"{source}: '{tensor.name}' is empty (shape {format_dims(raw.shape)}); save at least one "
                            "sample (a batch of 0 runs nothing).")  # fmt: skip
        if raw.dtype.kind in "fc" and not np.isfinite(raw).all():
            raise SpecError(f"{source}: '{tensor.name}' holds NaN or infinite values, which make every comparison "
                            "meaningless; save finite inputs.")  # fmt: skip
        array = _cast(tensor.name, raw, tensor.dtype, source)
        _check_against_model(tensor.name, array, tensor, profile, source)
        feed.arrays[tensor.name] = np.ascontiguousarray(array)
    return [feed]


def _image_target(inputs: Sequence[TensorInfo], profile: Profile | None, source: str) -> tuple[TensorInfo, Dims, bool]:
    """The one image input, the shape its batches take, and whether its batch axis is dynamic."""
    images = [t for t in inputs if len(t.dims) == 4]
    if len(inputs) != 1 or len(images) != 1:
        raise SpecError(
            f"{source} is an image folder, which can feed a model with exactly one 4-D image input; this model "
            f"has {'; '.join(t.describe() for t in inputs)}. Save all inputs in an .npz instead."
        )
    tensor = images[0]
    if profile is not None and tensor.name in profile.shapes:
        shape = profile.shapes[tensor.name].opt
    elif not tensor.is_dynamic:
        shape = tuple(int(d) for d in tensor.dims)  # type: ignore[arg-type]
    else:
        raise SpecError(
            f"{source}: the image input {tensor.describe()} is dynamic; give the size to resize to with "
            f"--opt {tensor.name}:1x3x640x640 (its batch dimension sets the batch size)."
        )
    batch_dim = tensor.dims[0]
    return tensor, shape, not (isinstance(batch_dim, int) and batch_dim >= 0)


def load_image_folder(
    path: str | os.PathLike[str], inputs: Sequence[TensorInfo], profile: Profile | None = None
) -> list[Feed]:
    """Batches of RGB images scaled to [0, 1], resized to the opt (or static) shape; NCHW or NHWC by layout."""
    import numpy as np

    try:
        import PIL.Image  # noqa: F401 - checked here so a missing Pillow is one sentence
    except ImportError:
        from trtbuild.errors import MissingDependencyError

        raise MissingDependencyError("Reading an image folder needs Pillow: pip install pillow.") from None
    source = str(path)
    files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SpecError(f"{source} has no images ({', '.join(IMAGE_SUFFIXES)}); point --data at a folder of images.")
    tensor, shape, dynamic_batch = _image_target(inputs, profile, source)
    batch, nhwc = shape[0], shape[3] in (1, 3) and shape[1] not in (1, 3)
    channels, height, width = (shape[3], shape[1], shape[2]) if nhwc else (shape[1], shape[2], shape[3])
    if channels not in (1, 3):
        raise SpecError(f"{source}: input {tensor.describe()} does not look like an image (1 or 3 channels).")
    pixels = []
    for file in files:
        array = _read_image(file, channels, width, height)
        array = array.reshape(height, width, channels)
        pixels.append(array if nhwc else array.transpose(2, 0, 1))
    feeds = []
    for start in range(0, len(pixels), max(batch, 1)):
        chunk = pixels[start : start + batch]
        if len(chunk) < batch and not dynamic_batch:
            chunk += [chunk[-1]] * (batch - len(chunk))  # a static batch must be full: repeat the last image
        data = _cast(tensor.name, np.stack(chunk), tensor.dtype, source)
        feeds.append(Feed(f"images[{start}:{start + len(chunk)}]", {tensor.name: np.ascontiguousarray(data)}))
    log.info("%s: %d image(s) in %d batch(es) of %s", source, len(files), len(feeds), format_dims(shape))
    return feeds


def _read_image(file: Path, channels: int, width: int, height: int) -> np.ndarray:
    """One image as float32 in [0, 1], resized; 16- and 32-bit images are scaled by their bit depth, not clipped."""
    import warnings

    import numpy as np
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse, do not decode 100+ Mpixel
            with Image.open(file) as opened:
                if opened.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                    # Pillow's convert("L"/"RGB") clips these at 255: a 16-bit scan would be all white.
                    deep = np.asarray(opened, dtype=np.float32)
                    scale = 65535.0 if opened.mode != "F" and deep.max(initial=0) <= 65535 else max(float(deep.max()), 1.0)
                    img = Image.fromarray(np.clip(deep / scale, 0.0, 1.0).astype(np.float32))  # mode F
                    gray = np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
                    return np.repeat(gray[..., None], channels, axis=2) if channels == 3 else gray
                img = opened.convert("RGB" if channels == 3 else "L").resize((width, height), Image.Resampling.BILINEAR)
                return np.asarray(img, dtype=np.float32) / 255.0
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise SpecError(f"{file} is refused: {exc} Use images of ordinary size for --data.") from None
    except (OSError, ValueError, SyntaxError) as exc:  # UnidentifiedImageError is an OSError
        raise SpecError(f"{file} cannot be read as an image ({exc}); remove it from the folder or convert it.") from None


def load_data(
    path: str | os.PathLike[str],
    inputs: Sequence[TensorInfo],
    profile: Profile | None = None,
    *,
    enforce_bounds: bool = True,
) -> list[Feed]:
    """``--data``: an ``.npz`` keyed by input name, or a folder of images.

    ``profile`` gives an image folder its size (the opt shape); with ``enforce_bounds`` an .npz must also
    fit within it (an engine cannot run shapes outside its profile; ONNX Runtime and PyTorch can).
    """
    target = Path(path).expanduser()
    if not target.exists():
        raise SpecError(f"--data {path} does not exist; give an .npz file keyed by input name or an image folder.")
    if target.is_dir():
        return load_image_folder(target, inputs, profile)
    if target.suffix.lower() != ".npz":
        raise SpecError(f"--data {path}: expected an .npz file (numpy.savez) or a folder of images.")
    return load_npz(target, inputs, profile if enforce_bounds else None)


def feeds_from_arrays(arrays: Mapping[str, Any], label: str = "data") -> Feed:
    """A feed from in-memory arrays (Python API)."""
    import numpy as np

    return Feed(label, {name: np.ascontiguousarray(np.asarray(a)) for name, a in arrays.items()})
