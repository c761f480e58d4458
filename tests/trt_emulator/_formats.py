"""TensorRT I/O tensor formats (NvInfer.h ``TensorFormat``) as memory layouts for the double.

An engine tensor built with ``allowed_formats`` that excludes LINEAR gets the lowest-numbered allowed
format, as trtexec's ``--inputIOFormats=fp16:hwc8`` pins one. Vectorized formats pad the vectorized
dimension (channels) to a multiple of the components per element: HWC8 of a 3-channel image stores
8 channels per pixel, so its buffer is 8/3 of the linear one. The double reads and writes device
memory in that layout, so a caller that sizes or fills buffers as linear data reads past the end or
sees its data shuffled, as on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# name -> (components per element, vectorized dim from the end (channels = -3 of NCHW), channel-last)
_LAYOUTS: dict[str, tuple[int, int, bool]] = {
    "LINEAR": (1, -1, False),
    "CHW2": (2, -3, False),
    "CHW4": (4, -3, False),
    "CHW16": (16, -3, False),
    "CHW32": (32, -3, False),
    "HWC8": (8, -3, True),
    "HWC16": (16, -3, True),
    "HWC": (1, -3, True),
}


def chosen_format(allowed_mask: int, members: dict[str, int]) -> str:
    """The format TensorRT picks for a tensor: LINEAR when allowed, else the lowest allowed one."""
    if not allowed_mask or allowed_mask & (1 << members["LINEAR"]):
        return "LINEAR"
    for name, value in sorted(members.items(), key=lambda kv: kv[1]):
        if allowed_mask & (1 << value):
            return name
    return "LINEAR"


def components(fmt: str) -> int:
    return _LAYOUTS.get(fmt, (1, -1, False))[0]


def vectorized_dim(fmt: str, rank: int) -> int:
    comps, dim, _ = _LAYOUTS.get(fmt, (1, -1, False))
    return rank + dim if comps > 1 and rank >= 3 else -1


def _padded(shape: Sequence[int], fmt: str) -> list[int]:
    comps, _, _ = _LAYOUTS.get(fmt, (1, -1, False))
    dims = [int(d) for d in shape]
    if comps > 1 and len(dims) >= 3:
        dims[-3] = -(-dims[-3] // comps) * comps
    return dims


def strides(shape: Sequence[int], fmt: str) -> list[int]:
    """Element strides per dimension of ``shape`` (NCHW order) in ``fmt``, as getTensorStrides reports."""
    dims = _padded(shape, fmt)
    _, _, channel_last = _LAYOUTS.get(fmt, (1, -1, False))
    if len(dims) < 3 or fmt == "LINEAR":
        out, acc = [], 1
        for d in reversed(dims):
            out.insert(0, acc)
            acc *= max(d, 1)
        return out
    n_lead = len(dims) - 3
    c, h, w = dims[-3:]
    if channel_last:  # N..., H, W, C
        inner = {-3: 1, -1: c, -2: c * w}
        lead = c * h * w
    else:  # N..., C/k, H, W, k
        k = components(fmt)
        inner = {-1: k, -2: k * w, -3: 1}
        lead = c * h * w
    out = [0] * len(dims)
    acc = lead
    for i in reversed(range(n_lead)):
        out[i] = acc
        acc *= max(dims[i], 1)
    for off, s in inner.items():
        out[len(dims) + off] = s
    return out


def nbytes(shape: Sequence[int], fmt: str, itemsize: int) -> int:
    return int(math.prod(max(d, 0) for d in _padded(shape, fmt))) * itemsize


def to_layout(linear: np.ndarray, fmt: str) -> np.ndarray:
    """Linear NCHW data -> the bytes ``fmt`` stores (padding zero-filled), as a flat array."""
    if fmt == "LINEAR" or linear.ndim < 3 or fmt not in _LAYOUTS:
        return np.ascontiguousarray(linear).reshape(-1)
    padded_shape = _padded(linear.shape, fmt)
    padded = np.zeros(padded_shape, dtype=linear.dtype)
    padded[..., : linear.shape[-3], :, :] = linear
    comps, _, channel_last = _LAYOUTS[fmt]
    if channel_last:
        return np.ascontiguousarray(np.moveaxis(padded, -3, -1)).reshape(-1)
    lead, (c, h, w) = padded_shape[:-3], padded_shape[-3:]
    blocked = padded.reshape(*lead, c // comps, comps, h, w)
    return np.ascontiguousarray(np.moveaxis(blocked, -3, -1)).reshape(-1)


def from_layout(flat: np.ndarray, shape: Sequence[int], fmt: str) -> np.ndarray:
    """The inverse of :func:`to_layout`: ``fmt`` bytes -> linear NCHW data of ``shape``."""
    shape = [int(d) for d in shape]
    if fmt == "LINEAR" or len(shape) < 3 or fmt not in _LAYOUTS:
        return flat.reshape(shape)
    padded_shape = _padded(shape, fmt)
    comps, _, channel_last = _LAYOUTS[fmt]
    lead, (c, h, w) = padded_shape[:-3], padded_shape[-3:]
    if channel_last:
        padded = np.moveaxis(flat.reshape(*lead, h, w, c), -1, -3)
    else:
        blocked = flat.reshape(*lead, c // comps, h, w, comps)
        padded = np.moveaxis(blocked, -1, -3).reshape(*lead, c, h, w)
    return np.ascontiguousarray(padded[..., : shape[-3], :, :])
