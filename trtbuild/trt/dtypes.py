"""trtbuild's own TensorRT <-> numpy dtype map.

``trt.nptype`` is not used: on TensorRT 8.5.1/8.5.2 (JetPack 5) it builds its table with ``np.bool``,
which NumPy >= 1.24 removed, so every call raises. Members are looked up by name on the installed
``trt.DataType`` (their integer values differ between versions); names a version lacks are skipped.
"""

from __future__ import annotations

from typing import Any

from trtbuild.errors import TrtbuildError

#: trt.DataType member -> numpy dtype name; None where numpy has no such type.
NUMPY_NAMES: dict[str, str | None] = {
    "FLOAT": "float32",
    "HALF": "float16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",  # 9.x+
    "BOOL": "bool",
    "UINT8": "uint8",
    "BF16": None,  # 9.x+: no numpy type
    "FP8": None,
    "INT4": None,
    "FP4": None,
    "E8M0": None,
}
#: Readable names for types numpy lacks (manifests, inspect output).
OTHER_NAMES = {"BF16": "bfloat16", "FP8": "float8", "INT4": "int4", "FP4": "float4", "E8M0": "e8m0"}
#: The spelling trtexec uses in --inputIOFormats/--layerPrecisions -> DataType member.
TRTEXEC_TYPES = {
    "fp32": "FLOAT", "fp16": "HALF", "bf16": "BF16", "int32": "INT32", "int64": "INT64", "int8": "INT8",
    "uint8": "UINT8", "bool": "BOOL", "fp8": "FP8", "int4": "INT4",
}  # fmt: skip


def member_name(trt: Any, dtype: Any) -> str:
    """The DataType member's name (``"HALF"``), found by comparison, not by a stored integer."""
    for name in NUMPY_NAMES:
        candidate = getattr(trt.DataType, name, None)
        if candidate is not None and candidate == dtype:
            return name
    return str(getattr(dtype, "name", dtype))


def dtype_name(trt: Any, dtype: Any) -> str:
    """numpy's name for a TensorRT type (``"float16"``), or a readable one for types numpy lacks."""
    name = member_name(trt, dtype)
    return NUMPY_NAMES.get(name) or OTHER_NAMES.get(name, name.lower())


def to_numpy(trt: Any, dtype: Any) -> Any:
    """numpy dtype for a TensorRT type; an error for types numpy cannot hold (BF16, FP8, INT4, FP4)."""
    import numpy as np

    name = member_name(trt, dtype)
    np_name = NUMPY_NAMES.get(name)
    if np_name is None:
        raise TrtbuildError(
            f"TensorRT type {name} has no numpy equivalent; keep that tensor inside the engine or cast it in the "
            "ONNX (e.g. to float16/float32) before building."
        )
    return np.dtype(np_name)


def from_numpy(trt: Any, dtype: Any) -> Any:
    """TensorRT DataType for a numpy dtype (or its name)."""
    import numpy as np

    np_name = np.dtype(dtype).name
    for name, candidate in NUMPY_NAMES.items():
        if candidate == np_name:
            found = getattr(trt.DataType, name, None)
            if found is not None:
                return found
    raise TrtbuildError(
        f"numpy type {np_name} has no TensorRT {getattr(trt, '__version__', '')} equivalent; "
        f"TensorRT takes {', '.join(n for n in NUMPY_NAMES.values() if n)}."
    )


def from_trtexec(trt: Any, text: str, *, option: str) -> Any:
    """``"fp16"`` -> ``trt.DataType.HALF`` for trtexec-style type names."""
    name = TRTEXEC_TYPES.get(text.strip().lower())
    found = getattr(trt.DataType, name, None) if name else None
    if found is None:
        raise TrtbuildError(
            f"{option}: type '{text}' is not available in TensorRT {getattr(trt, '__version__', '?')}; "
            f"types are {', '.join(k for k, v in TRTEXEC_TYPES.items() if hasattr(trt.DataType, v))}."
        )
    return found
