"""Load ONNX models safely: external data only from the model's own folder; ``zoo:NAME`` resolved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.errors import ModelError
from trtbuild.shapes import TensorInfo

if TYPE_CHECKING:
    import onnx

ZOO_PREFIX = "zoo:"


def resolve_model_path(model: str | os.PathLike[str]) -> Path:
    """A path to an ONNX file for ``model``: a path as given, or ``zoo:NAME`` exported on first use."""
    text = os.fspath(model)
    if text.startswith(ZOO_PREFIX):
        from trtbuild import zoo

        return zoo.onnx_path(text[len(ZOO_PREFIX) :])
    path = Path(text).expanduser()
    if not path.exists():
        raise ModelError(f"{path} does not exist; give the path to an .onnx file (or zoo:NAME for a built-in model).")
    if path.is_dir():
        raise ModelError(f"{path} is a folder; give the .onnx file inside it.")
    return path


def external_data_files(model: onnx.ModelProto, base_dir: Path) -> list[Path]:
    """Files the model's external initializers live in; refuses any that leave ``base_dir``."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    base = base_dir.resolve()
    files: list[Path] = []
    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (base / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(base):
            raise ModelError(
                f"Initializer '{tensor.name}' points to external data '{location}', outside the model's folder "
                f"{base}; refusing to read it. Move the data file next to the model and re-save it."
            )
        if not target.exists():
            raise ModelError(
                f"Initializer '{tensor.name}' needs the external data file '{location}', which is missing from "
                f"{base}; copy it next to the model."
            )
        if target not in files:
            files.append(target)
    return files


def load_onnx(model: str | os.PathLike[str], *, load_weights: bool = True) -> onnx.ModelProto:
    """Load an ONNX model; external data resolves from the model's folder only."""
    import onnx

    path = resolve_model_path(model)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError... for a bad file
        raise ModelError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}).") from None
    files = external_data_files(proto, path.parent)
    if load_weights and files:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(proto, str(path.parent))
    return proto


# --------------------------------------------------------------------------------------------------
# The model without its inline weights' bytes


#: protobuf field numbers (onnx.proto) on the way from the model to every TensorProto
_MESSAGE_FIELDS: dict[str, dict[int, str]] = {
    "model": {7: "graph"},  # ModelProto.graph
    "graph": {1: "node", 5: "tensor"},  # GraphProto.node, .initializer
    "node": {5: "attribute"},  # NodeProto.attribute
    "attribute": {5: "tensor", 6: "graph", 10: "graph", 11: "tensor"},  # AttributeProto.t, .g, .graphs, .tensors
    "tensor": {},
}
_RAW_DATA = 9  # TensorProto.raw_data
_EXTERNAL_DATA = 13  # TensorProto.external_data (StringStringEntryProto: key = 1, value = 2)
#: left where a tensor's raw_data was, so the length survives without the bytes (never a real external key)
INLINE_BYTES_KEY = "trtbuild.inline_bytes"


def _varint(buf: Any, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _without_raw_data(buf: Any, start: int, end: int, kind: str) -> bytes:
    """The serialized message ``buf[start:end]`` with every TensorProto's raw_data replaced by a short
    external_data entry holding its length; the weight bytes themselves are skipped, never read."""
    out = bytearray()
    children = _MESSAGE_FIELDS[kind]
    pos = start
    while pos < end:
        field_start = pos
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, body = _varint(buf, pos)
            pos = body + length
            if kind == "tensor" and number == _RAW_DATA:
                entry = _length_field(1, INLINE_BYTES_KEY.encode()) + _length_field(2, str(length).encode())
                out += _length_field(_EXTERNAL_DATA, entry)
                continue
            if number in children:
                out += _length_field(number, _without_raw_data(buf, body, pos, children[number]))
                continue
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {field_start}")
        if pos > end:
            raise ValueError(f"a field runs past the end of its message at byte {field_start}")
        out += buf[field_start:pos]
    return bytes(out)


def load_onnx_structure(model: str | os.PathLike[str]) -> tuple[onnx.ModelProto, dict[str, int]]:
    """The model as :func:`load_onnx` reads it, minus the bytes of its inline weights.

    ``onnx.load`` reads the whole file and then parses it, so a 200 MB model with inline weights
    costs twice its size; here the file is mapped and every TensorProto's raw_data is skipped, so
    those pages are never read. Everything else (graph, I/O, dims and types of every tensor, typed
    ``*_data`` fields, external-data references) is kept. Returns the model and, per tensor whose
    raw_data was left out, its length in bytes.
    """
    import mmap

    import onnx
    from onnx.external_data_helper import _get_all_tensors

    path = resolve_model_path(model)
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            proto = onnx.ModelProto.FromString(_without_raw_data(buf, 0, len(buf), "model"))
    except Exception as exc:  # empty file (mmap), truncated or foreign bytes (IndexError, ValueError, DecodeError)
        raise ModelError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}).") from None
    lengths: dict[str, int] = {}
    for tensor in _get_all_tensors(proto):
        kept = [e for e in tensor.external_data if e.key != INLINE_BYTES_KEY]
        if len(kept) != len(tensor.external_data):
            lengths[tensor.name] = int(next(e.value for e in tensor.external_data if e.key == INLINE_BYTES_KEY))
            del tensor.external_data[:]
            tensor.external_data.extend(kept)
    external_data_files(proto, path.parent)
    return proto, lengths


_ONNX_TO_NUMPY: dict[int, str] = {}


def numpy_dtype_name(elem_type: int) -> str:
    if not _ONNX_TO_NUMPY:
        import onnx

        for code in onnx.TensorProto.DataType.values():
            if code == 0:
                continue
            try:
                _ONNX_TO_NUMPY[code] = str(onnx.helper.tensor_dtype_to_np_dtype(code))
            except (KeyError, ValueError, TypeError):
                _ONNX_TO_NUMPY[code] = onnx.TensorProto.DataType.Name(code).lower()
    return _ONNX_TO_NUMPY.get(elem_type, "undefined")


def _tensor_info(value_info: onnx.ValueInfoProto) -> TensorInfo:
    ttype = value_info.type.tensor_type
    dims: list[int | str | None] = []
    for dim in ttype.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return TensorInfo(value_info.name, numpy_dtype_name(ttype.elem_type), tuple(dims))


def model_inputs(model: onnx.ModelProto) -> list[TensorInfo]:
    """Graph inputs that are real inputs (initializers listed as inputs by old exporters are skipped)."""
    initializers = {t.name for t in model.graph.initializer}
    return [_tensor_info(v) for v in model.graph.input if v.name not in initializers]


def model_outputs(model: onnx.ModelProto) -> list[TensorInfo]:
    return [_tensor_info(v) for v in model.graph.output]
