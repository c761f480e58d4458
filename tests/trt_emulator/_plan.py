"""The emulator's plan format: b"ftrt", format tag, u32 header length, JSON header, u64 ONNX length, ONNX.

The JSON header carries the TensorRT version that built it, the I/O tensors, the optimization profiles
and the build flags; the runtime rejects plans from another emulated version, truncated or foreign bytes
with TensorRT's own error messages.
"""

from __future__ import annotations

import json
import struct
from typing import Any

MAGIC = b"ftrt"
FORMAT = b"EMU1"


def encode(header: dict[str, Any], onnx_bytes: bytes) -> bytes:
    hdr = json.dumps(header, sort_keys=True).encode()
    return MAGIC + FORMAT + struct.pack("<I", len(hdr)) + hdr + struct.pack("<Q", len(onnx_bytes)) + onnx_bytes


class PlanError(Exception):
    """Carries the TensorRT-style error lines to log."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0])
        self.lines = lines


_MAGIC_ERR = "Serialization Error in verifyHeader: 0 (Magic tag does not match)"
_DESERIALIZE_FAILED = "4: [runtime.cpp::deserializeCudaEngine::66] Error Code 4: Internal Error (Engine deserialization failed.)"


def decode(data: bytes) -> tuple[dict[str, Any], bytes]:
    if len(data) < 4 or data[:4] != MAGIC or data[4:8] not in (FORMAT, b""):
        raise PlanError(_MAGIC_ERR, _DESERIALIZE_FAILED)
    truncated = (
        "1: [stdArchiveReader.cpp::StdArchiveReader::54] Error Code 1: Serialization (Serialization assertion "
        "sizeRead == static_cast<uint64_t>(mEnd - mCurrent) failed.Size specified in header does not match archive size)"
    )
    if len(data) < 12:
        raise PlanError(truncated, _DESERIALIZE_FAILED)
    (hlen,) = struct.unpack_from("<I", data, 8)
    if len(data) < 12 + hlen + 8:
        raise PlanError(truncated, _DESERIALIZE_FAILED)
    try:
        header = json.loads(data[12 : 12 + hlen])
    except ValueError:
        raise PlanError(_MAGIC_ERR, _DESERIALIZE_FAILED) from None
    (olen,) = struct.unpack_from("<Q", data, 12 + hlen)
    body = data[12 + hlen + 8 :]
    if len(body) != olen:
        raise PlanError(truncated, _DESERIALIZE_FAILED)
    return header, body
