"""Load ONNX models safely: external data only from the model's own folder; ``zoo:NAME`` resolved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

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
