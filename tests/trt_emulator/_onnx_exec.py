"""ONNX helpers for the emulator: I/O metadata, ONNX Runtime sessions on CPU, output shapes."""

from __future__ import annotations

from typing import Any

import numpy as np

# ONNX TensorProto element type -> (TensorRT DataType name, numpy dtype)
_ONNX_TO_TRT = {
    1: ("FLOAT", np.float32),
    10: ("HALF", np.float16),
    3: ("INT8", np.int8),
    6: ("INT32", np.int32),
    7: ("INT64", np.int64),
    9: ("BOOL", np.bool_),
    2: ("UINT8", np.uint8),
    16: ("BF16", None),
}
TRT_TO_NUMPY = {
    "FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
    "BOOL": np.bool_, "UINT8": np.uint8,
}  # fmt: skip


def trt_dtype_name(onnx_elem_type: int) -> str | None:
    entry = _ONNX_TO_TRT.get(onnx_elem_type)
    return entry[0] if entry else None


def model_io(model: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Graph inputs (without initializers) and outputs: name, shape (-1 = dynamic), ONNX elem type."""
    inits = {i.name for i in model.graph.initializer}

    def info(vi: Any) -> dict[str, Any]:
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim] if t.HasField("shape") else None
        return {"name": vi.name, "shape": dims, "elem_type": t.elem_type}

    ins = [info(v) for v in model.graph.input if v.name not in inits]
    outs = [info(v) for v in model.graph.output]
    return ins, outs


class Executor:
    """Runs one ONNX model with ONNX Runtime (CPU) and resolves output shapes for given input shapes."""

    def __init__(self, onnx_bytes: bytes) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
        self._onnx_bytes = onnx_bytes
        self._shape_cache: dict[tuple[Any, ...], dict[str, tuple[int, ...] | None]] = {}
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        results = self.session.run(names, feeds)
        return {n: np.asarray(r) for n, r in zip(names, results)}

    def output_shapes(self, input_shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...] | None]:
        """Output shapes for these input shapes: ONNX shape inference, else a dry run on zeros."""
        key = tuple(sorted(input_shapes.items()))
        if key not in self._shape_cache:
            shapes = self._infer(input_shapes)
            if any(s is None for s in shapes.values()):
                shapes = self._dry_run(input_shapes)
            self._shape_cache[key] = shapes
        return self._shape_cache[key]

    def _infer(self, input_shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...] | None]:
        import onnx

        model = onnx.load_from_string(self._onnx_bytes)
        for vi in model.graph.input:
            if vi.name in input_shapes:
                dims = vi.type.tensor_type.shape.dim
                for d, v in zip(dims, input_shapes[vi.name]):
                    d.Clear()
                    d.dim_value = int(v)
        for vi in model.graph.output:
            vi.type.tensor_type.ClearField("shape")
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except Exception:
            return {o.name: None for o in model.graph.output}
        out: dict[str, tuple[int, ...] | None] = {}
        for vi in inferred.graph.output:
            t = vi.type.tensor_type
            if not t.HasField("shape") or any(not d.HasField("dim_value") for d in t.shape.dim):
                out[vi.name] = None
            else:
                out[vi.name] = tuple(d.dim_value for d in t.shape.dim)
        return out

    def _dry_run(self, input_shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...] | None]:
        feeds: dict[str, np.ndarray] = {}
        for inp in self.session.get_inputs():
            dtype = _ORT_TYPES.get(inp.type, np.float32)
            feeds[inp.name] = np.zeros(input_shapes[inp.name], dtype=dtype)
        try:
            return {k: tuple(v.shape) for k, v in self.run(feeds).items()}
        except Exception:
            return {o.name: None for o in self.session.get_outputs()}


_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8,
    "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8,
    "tensor(double)": np.float64,
}  # fmt: skip


def ort_dtype(type_str: str) -> Any:
    return _ORT_TYPES.get(type_str, np.float32)
