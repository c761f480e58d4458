"""Builder side of the fake ``tensorrt``: Logger, Builder, network, OnnxParser, config, profiles, caches,
calibrators, progress monitor. Every class here is a template copied per API level (see _trt_module)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ._onnx_exec import TRT_TO_NUMPY, model_io, trt_dtype_name
from ._trt_common import (
    Attr,
    Dims,
    InitCheckedMeta,
    TrtObject,
    check_enum,
    default_log,
    log,
    to_dims,
)

# ----------------------------------------------------------------------------------------------- logging


class ILogger(TrtObject, metaclass=InitCheckedMeta):
    def __init__(self) -> None:
        self._trt_base_init = True

    def log(self, severity: Any, msg: str) -> None:
        raise RuntimeError('Tried to call pure virtual function "ILogger::log"')


class Logger(TrtObject):
    min_severity = Attr()

    def __init__(self, min_severity: Any = None) -> None:
        self._trt_base_init = True
        self.min_severity = min_severity if min_severity is not None else self._M.Logger.Severity.WARNING

    def log(self, severity: Any, msg: str) -> None:
        if int(severity) <= int(self.min_severity):
            default_log(severity, msg)


# ----------------------------------------------------------------------------------------------- network


class ITensor(TrtObject):
    name = Attr()
    dtype = Attr()
    is_network_input = Attr(readonly=True)
    is_network_output = Attr(readonly=True)
    is_shape_tensor = Attr(False, readonly=True)
    is_execution_tensor = Attr(True, readonly=True)
    location = Attr(lambda s: s._M.TensorLocation.DEVICE)
    allowed_formats = Attr(lambda s: 1 << int(s._M.TensorFormat.LINEAR))
    broadcast_across_batch = Attr(False)

    def __init__(self, name: str, shape: list[int], dtype: Any, is_input: bool, is_output: bool | None = None) -> None:
        self.name = name
        self._shape = Dims(shape)
        self.dtype = dtype
        self.__dict__["_v_is_network_input"] = is_input
        self.__dict__["_v_is_network_output"] = (not is_input) if is_output is None else is_output
        self._dim_names: dict[int, str] = {}
        self._dynamic_range: tuple[float, float] | None = None

    @property
    def shape(self) -> Dims:
        return Dims(self._shape)

    @shape.setter
    def shape(self, value: Any) -> None:
        self._shape = Dims(to_dims(value))

    def get_dimension_name(self, index: int) -> str | None:
        return self._dim_names.get(index)

    def set_dimension_name(self, index: int, name: str) -> None:
        self._dim_names[index] = name

    @property
    def dynamic_range(self) -> tuple[float, float] | None:
        return self._dynamic_range

    def set_dynamic_range(self, min: float, max: float) -> bool:  # noqa: A002 - TensorRT's names
        self._dynamic_range = (float(min), float(max))
        return True

    def reset_dynamic_range(self) -> None:
        self._dynamic_range = None


_ONNX_LAYER_TYPES = {
    "Conv": "CONVOLUTION", "ConvTranspose": "DECONVOLUTION", "MaxPool": "POOLING", "AveragePool": "POOLING",
    "Relu": "ACTIVATION", "Sigmoid": "ACTIVATION", "Tanh": "ACTIVATION", "LeakyRelu": "ACTIVATION", "Softmax": "SOFTMAX",
    "Concat": "CONCATENATION", "Add": "ELEMENTWISE", "Mul": "ELEMENTWISE", "Sub": "ELEMENTWISE", "Div": "ELEMENTWISE",
    "Reshape": "SHUFFLE", "Transpose": "SHUFFLE", "Flatten": "SHUFFLE", "Slice": "SLICE", "Shape": "SHAPE",
    "Constant": "CONSTANT", "Gather": "GATHER", "MatMul": "MATRIX_MULTIPLY", "Gemm": "MATRIX_MULTIPLY",
    "Resize": "RESIZE", "QuantizeLinear": "QUANTIZE", "DequantizeLinear": "DEQUANTIZE", "Cast": "CAST",
    "ReduceMax": "REDUCE", "ReduceMean": "REDUCE", "ReduceSum": "REDUCE", "TopK": "TOPK", "NonZero": "NON_ZERO",
    "Split": "SLICE", "Identity": "IDENTITY", "Pad": "PADDING", "Where": "SELECT", "Exp": "UNARY", "Sqrt": "UNARY",
    "InstanceNormalization": "NORMALIZATION", "LayerNormalization": "NORMALIZATION", "Greater": "ELEMENTWISE",
    "Range": "FILL",
}  # fmt: skip


class ILayer(TrtObject):
    """A layer = one ONNX node. Precision hints (weak typing, <= 10.x) are recorded but change nothing:
    the emulator always computes in ONNX Runtime's types."""

    name = Attr()
    metadata = Attr("")
    precision = Attr(lambda s: s._M.DataType.FLOAT)

    def __init__(self, name: str, op_type: str, inputs: list[Any], outputs: list[Any]) -> None:
        self.name = name
        self._op_type = op_type
        self._inputs = inputs
        self._outputs = outputs
        self._output_types: dict[int, Any] = {}

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_input(self, index: int) -> Any:
        return self._inputs[index] if 0 <= index < len(self._inputs) else None

    def get_output(self, index: int) -> Any:
        return self._outputs[index] if 0 <= index < len(self._outputs) else None

    @property
    def type(self) -> Any:
        """The LayerType the ONNX parser's importer makes for this node (ELEMENTWISE when unlisted)."""
        name = _ONNX_LAYER_TYPES.get(self._op_type, "ELEMENTWISE")
        return getattr(self._M.LayerType, name, self._M.LayerType.ELEMENTWISE)

    @property
    def precision_is_set(self) -> bool:
        return "_v_precision" in self.__dict__

    def reset_precision(self) -> None:
        self.__dict__.pop("_v_precision", None)

    def set_output_type(self, index: int, dtype: Any) -> None:
        check_enum(self, dtype, "DataType", "set_output_type")
        self._output_types[index] = dtype

    def get_output_type(self, index: int) -> Any:
        return self._output_types.get(index, self._M.DataType.FLOAT)

    def output_type_is_set(self, index: int) -> bool:
        return index in self._output_types

    def reset_output_type(self, index: int) -> None:
        self._output_types.pop(index, None)


class INetworkDefinition(TrtObject):
    name = Attr("Unnamed Network 0")
    error_recorder = Attr(None)

    def __init__(self, flags: int) -> None:
        self._flags = int(flags)
        self._inputs: list[Any] = []
        self._outputs: list[Any] = []
        self._layers: list[Any] = []
        self._onnx: bytes | None = None
        self._debug: set[str] = set()
        self._plugins: list[str] = []

    @property
    def flags(self) -> int:
        return self._flags

    def get_flag(self, flag: Any) -> bool:
        check_enum(self, flag, "NetworkDefinitionCreationFlag", "get_flag")
        return bool(self._flags & (1 << int(flag)))

    def _implicit_batch(self) -> bool:
        return self._L.major < 10 and not self._flags & 1  # 8.6: EXPLICIT_BATCH is bit 0

    @property
    def has_implicit_batch_dimension(self) -> bool:
        return self._implicit_batch()

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def get_input(self, index: int) -> Any:
        return self._inputs[index] if 0 <= index < len(self._inputs) else None

    def get_output(self, index: int) -> Any:
        return self._outputs[index] if 0 <= index < len(self._outputs) else None

    def get_layer(self, index: int) -> Any:
        return self._layers[index] if 0 <= index < len(self._layers) else None

    def __len__(self) -> int:  # pyGraph.cpp (10.13): .def("__len__", &INetworkDefinition::getNbLayers)
        return len(self._layers)

    def __getitem__(self, index: int) -> Any:
        # pyGraph.cpp (10.13, network_getitem): negative indices count from the end; PY_ASSERT_INDEX_ERROR past
        # the end, which also ends Python's ``for layer in network`` iteration.
        i = len(self._layers) + index if index < 0 else index
        if not 0 <= i < len(self._layers):
            raise IndexError(f"index {index} out of range for a network of {len(self._layers)} layers")
        return self._layers[i]

    def mark_output(self, tensor: Any) -> None:
        if tensor not in self._outputs:
            tensor.__dict__["_v_is_network_output"] = True
            self._outputs.append(tensor)

    def mark_debug(self, tensor: Any) -> bool:
        self._debug.add(tensor.name)
        return True

    def unmark_debug(self, tensor: Any) -> bool:
        self._debug.discard(tensor.name)
        return True

    def is_debug_tensor(self, tensor: Any) -> bool:
        return tensor.name in self._debug

    def unmark_output(self, tensor: Any) -> None:
        if tensor in self._outputs:
            tensor.__dict__["_v_is_network_output"] = False
            self._outputs.remove(tensor)


# ----------------------------------------------------------------------------------------------- parser


class ParserError(TrtObject):
    def __init__(self, code: Any, desc: str, node: int = -1, node_name: str = "", node_operator: str = "",
                 func: str = "parse") -> None:  # fmt: skip
        self._code, self._desc, self._node = code, desc, node
        self._node_name, self._node_operator, self._func = node_name, node_operator, func

    def code(self) -> Any:
        return self._code

    def desc(self) -> str:
        return self._desc

    def file(self) -> str:
        return "ModelImporter.cpp"

    def line(self) -> int:
        return 0

    def func(self) -> str:
        return self._func

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._node_name

    def node_operator(self) -> str:
        return self._node_operator

    def local_function_stack(self) -> list[str]:
        return []

    def local_function_stack_size(self) -> int:
        return 0

    def __str__(self) -> str:
        code = self._code.name
        if self._L.major >= 10:
            return (f"In node {self._node} with name: {self._node_name} and operator: {self._node_operator} "
                    f"({self._func}): {code}: {self._desc}")  # fmt: skip
        return f"In node {self._node} ({self._func}): {code}: {self._desc}"


class _FlagBits:
    """``flags`` / ``set_flag`` / ``clear_flag`` / ``get_flag`` over one flag enum (parser and config)."""

    _flags: int
    _flag_enum: str

    @property
    def flags(self) -> int:
        return self._flags

    @flags.setter
    def flags(self, value: int) -> None:
        self._flags = int(value)

    def set_flag(self, flag: Any) -> None:
        check_enum(self, flag, self._flag_enum, "set_flag")
        self._flags |= 1 << int(flag)

    def clear_flag(self, flag: Any) -> None:
        check_enum(self, flag, self._flag_enum, "clear_flag")
        self._flags &= ~(1 << int(flag))

    def get_flag(self, flag: Any) -> bool:
        check_enum(self, flag, self._flag_enum, "get_flag")
        return bool(self._flags & (1 << int(flag)))


class OnnxParser(_FlagBits, TrtObject):
    _flag_enum = "OnnxParserFlag"

    def __init__(self, network: Any, logger: Any) -> None:
        self._network = network
        self._logger = logger
        self._errors: list[Any] = []
        self._flags = 0
        if self._L.major >= 10:  # NATIVE_INSTANCENORM is on by default from 10.0
            self._flags |= 1 << int(self._M.OnnxParserFlag.NATIVE_INSTANCENORM)

    # --- errors / flags
    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> Any:
        return self._errors[index] if 0 <= index < len(self._errors) else None

    def clear_errors(self) -> None:
        self._errors.clear()


    def set_builder_config(self, builder_config: Any) -> bool:
        self._config = builder_config
        return True

    def get_used_vc_plugin_libraries(self) -> list[str]:
        return []

    def supports_operator(self, op_name: str) -> bool:
        import onnx.defs

        return bool(onnx.defs.has(op_name))

    # --- parsing
    def _fail(self, code: str, desc: str, func: str, node: int = -1, name: str = "", op: str = "") -> bool:
        # 8.6's ErrorCode has no UNSUPPORTED_NODE_* detail codes: it reports UNSUPPORTED_NODE.
        err = self._M.ParserError(getattr(self._M.ErrorCode, code, self._M.ErrorCode.UNSUPPORTED_NODE), desc, node,
                                  name, op, func)  # fmt: skip
        self._errors.append(err)
        log(self, "ERROR", str(err))
        return False

    def parse_from_file(self, model: str) -> bool:
        self._errors.clear()
        path = os.fspath(model)
        if not os.path.isfile(path):
            log(self, "ERROR", f"ModelImporter.cpp: Failed to open file: {path}")
            return self._fail("MODEL_DESERIALIZE_FAILED", f"Failed to open file: {path}", "parseFromFile")
        with open(path, "rb") as f:
            data = f.read()
        return self._parse(data, path, "parseFromFile")

    def parse(self, model: Any, path: str | None = None) -> bool:
        self._errors.clear()
        return self._parse(bytes(memoryview(model)), path, "parse")

    def _parse(self, data: bytes, path: str | None, func: str) -> bool:
        import onnx
        import onnx.defs

        M, net = self._M, self._network
        if net._implicit_batch():
            return self._fail(
                "INVALID_VALUE",
                'Assertion failed: !mImporterCtx.network()->hasImplicitBatchDimension() && "This version of the '
                "ONNX parser only supports TensorRT INetworkDefinitions with an explicit batch dimension. Please "
                'ensure the network was initialized with the EXPLICIT_BATCH NetworkDefinitionCreationFlag."',
                "importModel",
            )
        try:
            model = onnx.load_from_string(data)
        except Exception as exc:
            return self._fail("MODEL_DESERIALIZE_FAILED", f"Failed to parse the ONNX model ({exc}).", func)
        if not model.graph.node and not model.graph.output:
            return self._fail("MODEL_DESERIALIZE_FAILED", "Failed to parse the ONNX model (empty graph).", func)
        if path is not None and any(
            i.data_location == onnx.TensorProto.EXTERNAL for i in model.graph.initializer
        ):
            try:
                onnx.load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
            except Exception as exc:
                return self._fail("MODEL_DESERIALIZE_FAILED", f"Failed to load external weights: {exc}", func)
        registry = M.get_plugin_registry()
        plugins: list[str] = []
        native_norm = hasattr(M.OnnxParserFlag, "NATIVE_INSTANCENORM") and self.get_flag(M.OnnxParserFlag.NATIVE_INSTANCENORM)
        for idx, node in enumerate(model.graph.node):
            known = node.domain in ("", "ai.onnx") and onnx.defs.has(node.op_type)
            plugin = None
            if node.op_type == "InstanceNormalization" and not native_norm:
                plugin = "InstanceNormalization_TRT"  # the 8.6 parser's default importer uses the plugin
            elif not known and node.op_type in registry._creators:
                plugin = node.op_type  # "Attempting to import as plugin" finds the creator
            if plugin is not None:
                if plugin not in registry._creators:
                    return self._fail("UNSUPPORTED_NODE", f"Plugin not found: {plugin} (call init_libnvinfer_plugins "
                                      "or load the plugin library first)", "importNode", idx, node.name, node.op_type)  # fmt: skip
                plugins.append(plugin)
                continue
            if not known:
                return self._fail(
                    "UNSUPPORTED_NODE",
                    f"No importer registered for op: {node.op_type}. Attempting to import as plugin. "
                    f"Plugin not found: {node.op_type}",
                    "importNode", idx, node.name, node.op_type,
                )  # fmt: skip
        ins, outs = model_io(model)
        inputs: list[Any] = []
        outputs: list[Any] = []
        for info, is_input in [(i, True) for i in ins] + [(o, False) for o in outs]:
            dt_name = trt_dtype_name(info["elem_type"])
            if dt_name == "INT64" and self._L.major < 10:
                log(self, "WARNING", "onnx2trt_utils.cpp:374: Your ONNX model has been generated with INT64 weights, "
                    "while TensorRT does not natively support INT64. Attempting to cast down to INT32.")  # fmt: skip
                dt_name = "INT32"
            if dt_name is None or not hasattr(M.DataType, dt_name):
                return self._fail("UNSUPPORTED_NODE_DATATYPE",
                                  f"Unsupported data type for tensor {info['name']} (ONNX type {info['elem_type']})",
                                  "importInput")  # fmt: skip
            if info["shape"] is None:
                return self._fail("INVALID_GRAPH", f"Tensor {info['name']} has no shape", "importInput")
            t = M.ITensor(info["name"], info["shape"], getattr(M.DataType, dt_name), is_input)
            (inputs if is_input else outputs).append(t)
        net._inputs, net._outputs = inputs, outputs
        tensors = {t.name: t for t in inputs + outputs}

        def tensor(name: str) -> Any:
            if name not in tensors:
                tensors[name] = M.ITensor(name, [], M.DataType.FLOAT, False, False)
            return tensors[name]

        net._layers = [
            M.ILayer(n.name or f"node_of_{n.output[0] if n.output else i}", n.op_type,
                     [tensor(x) for x in n.input if x], [tensor(x) for x in n.output if x])  # fmt: skip
            for i, n in enumerate(model.graph.node)
        ]
        net._onnx = model.SerializeToString()
        net._plugins = sorted(set(plugins))
        log(self, "INFO", f"----------------------------------------------------------------\n"
            f"Input filename:   {path or '<bytes>'}\nONNX IR version:  {model.ir_version}\n"
            f"Opset version:    {model.opset_import[0].version if model.opset_import else 0}\n"
            f"Producer name:    {model.producer_name}\n"
            f"----------------------------------------------------------------")  # fmt: skip
        return True


# ----------------------------------------------------------------------------------------------- profiles


class IOptimizationProfile(TrtObject):
    extra_memory_target = Attr(1.0)

    def __init__(self) -> None:
        self._shapes: dict[str, tuple[list[int], list[int], list[int]]] = {}
        self._values: dict[str, tuple[list[int], list[int], list[int]]] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002
        lo, mid, hi = to_dims(min), to_dims(opt), to_dims(max)
        if len(mid) != len(lo):
            raise RuntimeError("Shape provided for opt is inconsistent with other shapes.")
        if len(hi) != len(lo):
            raise RuntimeError("Shape provided for max is inconsistent with other shapes.")
        if any(v < 0 for v in lo):
            raise RuntimeError("Shape provided for min is inconsistent with other shapes.")
        if any(a > b for a, b in zip(lo, mid)):
            raise RuntimeError("Shape provided for opt is inconsistent with other shapes.")
        if any(a > b for a, b in zip(mid, hi)):
            raise RuntimeError("Shape provided for max is inconsistent with other shapes.")
        self._shapes[input] = (lo, mid, hi)

    def get_shape(self, input: str) -> list[Any]:  # noqa: A002
        if input not in self._shapes:
            return []
        return [Dims(s) for s in self._shapes[input]]

    def set_shape_input(self, input: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002
        self._values[input] = (list(min), list(opt), list(max))

    def get_shape_input(self, input: str) -> list[list[int]]:  # noqa: A002
        return [list(v) for v in self._values.get(input, ())]

    def __bool__(self) -> bool:
        return True


# ----------------------------------------------------------------------------------------------- caches


_TIMING_MAGIC = b"EMUTC1"


def gpu_id(owner: Any) -> str:
    """The GPU a timing cache's verification header names (tests set ``EMULATOR_GPU_ID`` to switch GPUs)."""
    return str(getattr(owner._M, "EMULATOR_GPU_ID", "Emulated GPU sm_86"))


class ITimingCache(TrtObject):
    """Entries are per GPU; the header names the TensorRT version and the GPU the cache was made on.

    NvInfer.h (10.13, ITimingCache::combine): the input must come from the same TensorRT version, else
    combine returns false; ``ignoreMismatch`` must be true to combine a cache made on another device.
    Conflicting entries are skipped (the local one stays).
    """

    def __init__(self, entries: dict[str, str], version: str, device: str = "") -> None:
        self._entries = dict(entries)
        self._version = version
        self._device = device

    def serialize(self) -> Any:
        body = json.dumps({"trt_version": self._version, "device": self._device, "entries": self._entries},
                          sort_keys=True).encode()  # fmt: skip
        return self._M.IHostMemory(_TIMING_MAGIC + body)

    def combine(self, input_cache: Any, ignore_mismatch: bool) -> bool:
        if input_cache._version != self._version:
            return False
        if input_cache._device != self._device and not ignore_mismatch:
            return False
        for key, value in input_cache._entries.items():
            self._entries.setdefault(key, value)
        return True

    def reset(self) -> bool:
        self._entries.clear()
        return True


def _parse_timing_cache(owner: Any, data: bytes) -> tuple[dict[str, str], str] | None:
    if not data:
        return {}, gpu_id(owner)
    if not data.startswith(_TIMING_MAGIC):
        return None
    try:
        body = json.loads(data[len(_TIMING_MAGIC):])
    except ValueError:
        return None
    if body.get("trt_version") != owner._L.version:
        return None
    return dict(body.get("entries", {})), str(body.get("device", ""))


# ----------------------------------------------------------------------------------------------- callbacks


class IProgressMonitor(TrtObject, metaclass=InitCheckedMeta):
    def __init__(self) -> None:
        self._trt_base_init = True

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        raise RuntimeError('Tried to call pure virtual function "IProgressMonitor::phase_start"')

    def step_complete(self, phase_name: str, step: int) -> bool:
        raise RuntimeError('Tried to call pure virtual function "IProgressMonitor::step_complete"')

    def phase_finish(self, phase_name: str) -> None:
        raise RuntimeError('Tried to call pure virtual function "IProgressMonitor::phase_finish"')


class IInt8Calibrator(TrtObject, metaclass=InitCheckedMeta):
    _algo = "LEGACY_CALIBRATION"

    def __init__(self) -> None:
        self._trt_base_init = True

    def get_algorithm(self) -> Any:
        return getattr(self._M.CalibrationAlgoType, self._algo)

    def get_batch_size(self) -> int:
        raise RuntimeError('Tried to call pure virtual function "IInt8Calibrator::get_batch_size"')

    def get_batch(self, names: list[str]) -> list[int] | None:
        raise RuntimeError('Tried to call pure virtual function "IInt8Calibrator::get_batch"')

    def read_calibration_cache(self) -> Any:
        raise RuntimeError('Tried to call pure virtual function "IInt8Calibrator::read_calibration_cache"')

    def write_calibration_cache(self, cache: Any) -> None:
        raise RuntimeError('Tried to call pure virtual function "IInt8Calibrator::write_calibration_cache"')


class IInt8LegacyCalibrator(IInt8Calibrator):
    """Python subclasses add get_quantile/get_regression_cutoff (pyInt8.cpp overrides them by name)."""

    _algo = "LEGACY_CALIBRATION"


class IInt8EntropyCalibrator2(IInt8Calibrator):
    _algo = "ENTROPY_CALIBRATION_2"


class IInt8EntropyCalibrator(IInt8Calibrator):
    _algo = "ENTROPY_CALIBRATION"


class IInt8MinMaxCalibrator(IInt8Calibrator):
    _algo = "MINMAX_CALIBRATION"


class IOutputAllocator(TrtObject, metaclass=InitCheckedMeta):
    """Base of user output allocators; TensorRT calls the subclass's reallocate_output(_async)/notify_shape."""

    def __init__(self) -> None:
        self._trt_base_init = True


#: Creators ``init_libnvinfer_plugins`` registers (a few of libnvinfer_plugin's; names as in plugin/*/).
STANDARD_PLUGINS = ("InstanceNormalization_TRT", "EfficientNMS_TRT", "BatchedNMSDynamic_TRT", "ResizeNearest_TRT",
                    "ScatterND", "GridAnchor_TRT", "RoiAlign_TRT", "ModulatedDeformConv2d")  # fmt: skip
#: A plugin library for the double is a text file starting with this tag, then creator names, comma-separated.
PLUGIN_LIBRARY_TAG = "EMULATED_TRT_PLUGIN_LIBRARY:"


class IPluginRegistry(TrtObject):
    """The process's one plugin registry (``get_plugin_registry``/``Builder.get_plugin_registry``): empty
    until ``init_libnvinfer_plugins`` registers TensorRT's own creators or ``load_library`` a user library's."""

    error_recorder = Attr(None)
    parent_search_enabled = Attr(True)

    def __init__(self, logger: Any = None) -> None:
        self._logger = logger
        self._libraries: list[str] = []
        self._creators: set[str] = set()

    def load_library(self, plugin_path: str) -> Any:
        try:
            with open(plugin_path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            text = ""
        if not text.startswith(PLUGIN_LIBRARY_TAG):  # dlopen failed / no getCreators symbol
            if self._logger is not None:
                log(self, "ERROR", f"Error Code 1: Internal Error (Could not load plugin library {plugin_path})")
            return None
        self._creators |= {n.strip() for n in text[len(PLUGIN_LIBRARY_TAG):].split(",") if n.strip()}
        self._libraries.append(plugin_path)
        return len(self._libraries)

    def deregister_library(self, handle: Any) -> None:
        return None

    @property
    def plugin_creator_list(self) -> list[Any]:
        return []

    @property
    def all_creators(self) -> list[Any]:
        return []


# ----------------------------------------------------------------------------------------------- config


class IBuilderConfig(_FlagBits, TrtObject):
    _flag_enum = "BuilderFlag"

    profiling_verbosity = Attr(lambda s: s._M.ProfilingVerbosity.LAYER_NAMES_ONLY)
    builder_optimization_level = Attr(3)
    hardware_compatibility_level = Attr(lambda s: s._M.HardwareCompatibilityLevel.NONE)
    max_aux_streams = Attr(-1)
    default_device_type = Attr(lambda s: s._M.DeviceType.GPU)
    DLA_core = Attr(-1)
    avg_timing_iterations = Attr(1)
    engine_capability = Attr(lambda s: s._M.EngineCapability.STANDARD)
    profile_stream = Attr(0)
    plugins_to_serialize = Attr(lambda s: [])
    algorithm_selector = Attr(None)
    int8_calibrator = Attr(None)
    progress_monitor = Attr(None)
    runtime_platform = Attr(lambda s: s._M.RuntimePlatform.SAME_AS_BUILD)
    tiling_optimization_level = Attr(lambda s: s._M.TilingOptimizationLevel.NONE)
    max_num_tactics = Attr(-1)

    def __init__(self) -> None:
        M = self._M
        for key in [k for k in self.__dict__ if k.startswith("_v_")]:
            del self.__dict__[key]  # reset() re-runs __init__: back to defaults
        self._flags = 1 << int(M.BuilderFlag.TF32)
        self._pools: dict[str, int] = {}
        self._profiles: list[Any] = []
        self._timing_cache: Any = None
        self._tactic_sources = self._default_tactic_sources()
        self._calibration_profile: Any = None
        self._preview: set[str] = set()
        self._device_types: dict[str, Any] = {}

    def _default_tactic_sources(self) -> int:
        ts = self._M.TacticSource
        names = ["EDGE_MASK_CONVOLUTIONS", "JIT_CONVOLUTIONS"]
        if self._L.major < 10:
            names += ["CUBLAS", "CUBLAS_LT", "CUDNN"]
        return sum(1 << int(getattr(ts, n)) for n in names)

    # --- flags

    def set_preview_feature(self, feature: Any, enable: bool) -> None:
        check_enum(self, feature, "PreviewFeature", "set_preview_feature")
        (self._preview.add if enable else self._preview.discard)(feature.name)

    def get_preview_feature(self, feature: Any) -> bool:
        check_enum(self, feature, "PreviewFeature", "get_preview_feature")
        return feature.name in self._preview

    # --- memory pools
    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        check_enum(self, pool, "MemoryPoolType", "set_memory_pool_limit")
        if int(pool_size) < 0:
            raise ValueError("pool_size must be non-negative")
        self._pools[pool.name] = int(pool_size)

    def get_memory_pool_limit(self, pool: Any) -> int:
        check_enum(self, pool, "MemoryPoolType", "get_memory_pool_limit")
        defaults = {"WORKSPACE": 24 * 1024**3, "DLA_MANAGED_SRAM": 0, "DLA_LOCAL_DRAM": 0, "DLA_GLOBAL_DRAM": 0,
                    "TACTIC_DRAM": 24 * 1024**3, "TACTIC_SHARED_MEMORY": 48 * 1024}  # fmt: skip
        return self._pools.get(pool.name, defaults[pool.name])

    # --- profiles
    def add_optimization_profile(self, profile: Any) -> int:
        if not isinstance(profile, self._M.IOptimizationProfile) or not profile._shapes and not profile._values:
            log(getattr(self, "_builder", None), "ERROR",
                "IBuilderConfig::addOptimizationProfile: Error Code 3: API Usage Error (Parameter check failed, "
                "condition: profile != nullptr && profile->isValid(). )")  # fmt: skip
            return -1
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    def set_calibration_profile(self, profile: Any) -> bool:
        self._calibration_profile = profile
        return True

    def get_calibration_profile(self) -> Any:
        return self._calibration_profile

    # --- timing cache
    def create_timing_cache(self, serialized_timing_cache: Any) -> Any:
        data = bytes(memoryview(serialized_timing_cache))
        parsed = _parse_timing_cache(self, data)
        if parsed is None:
            log(getattr(self, "_builder", None), "WARNING",
                "The timing cache is invalid or was created by a different TensorRT version; it is ignored and "
                "a new empty cache is created.")  # fmt: skip
            parsed = ({}, gpu_id(self))
        return self._M.ITimingCache(parsed[0], self._L.version, parsed[1])

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        if cache is not None and cache._version != self._L.version:
            return False
        if cache is not None and cache._device != gpu_id(self) and not ignore_mismatch:
            log(getattr(self, "_builder", None), "ERROR",
                "Error Code 3: API Usage Error (The timing cache was created on a different device; pass "
                "ignoreMismatch=true to use it.)")  # fmt: skip
            return False
        self._timing_cache = cache
        return True

    def get_timing_cache(self) -> Any:
        return self._timing_cache

    # --- tactic sources / DLA
    def set_tactic_sources(self, tactic_sources: int) -> bool:
        valid = sum(1 << int(v) for v in self._M.TacticSource.__members__.values())
        if int(tactic_sources) & ~valid:
            return False
        self._tactic_sources = int(tactic_sources)
        return True

    def get_tactic_sources(self) -> int:
        return self._tactic_sources

    def can_run_on_DLA(self, layer: Any) -> bool:  # noqa: N802 - TensorRT's name
        return False

    def set_device_type(self, layer: Any, device_type: Any) -> None:
        check_enum(self, device_type, "DeviceType", "set_device_type")
        self._device_types[layer.name] = device_type

    def get_device_type(self, layer: Any) -> Any:
        return self._device_types.get(layer.name, self.default_device_type)

    def is_device_type_set(self, layer: Any) -> bool:
        return layer.name in self._device_types

    def reset_device_type(self, layer: Any) -> None:
        self._device_types.pop(layer.name, None)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


# ----------------------------------------------------------------------------------------------- builder


class Builder(TrtObject):
    max_threads = Attr(1)
    error_recorder = Attr(None)
    gpu_allocator = Attr(None)

    def __init__(self, logger: Any) -> None:
        self._logger = logger

    @property
    def logger(self) -> Any:
        return self._logger

    @property
    def num_DLA_cores(self) -> int:  # noqa: N802 - TensorRT's name
        return int(self._M._device_memory.dla_cores)

    max_DLA_batch_size = 1
    platform_has_fast_fp16 = True
    platform_has_fast_int8 = True
    platform_has_tf32 = True

    def create_network(self, flags: int = 0) -> Any:
        return self._M.INetworkDefinition(int(flags))

    def create_builder_config(self) -> Any:
        cfg = self._M.IBuilderConfig()
        cfg._builder = self
        return cfg

    def create_optimization_profile(self) -> Any:
        return self._M.IOptimizationProfile()

    def get_plugin_registry(self) -> Any:
        return self._M.get_plugin_registry()  # the same process-wide registry

    def is_network_supported(self, network: Any, config: Any) -> bool:
        return network._onnx is not None

    def reset(self) -> None:
        return None

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        from ._build import build_plan

        plan = build_plan(self, network, config)
        return None if plan is None else self._M.IHostMemory(plan)


#: Network input types TensorRT reads calibration data in as they are; every other input is read as
#: float32 (Polygraphy's calibrator.py set_input_metadata: "TensorRT requires non-index calibration
#: inputs to be provided in float32").
CALIBRATION_INDEX_TYPES = ("INT32", "INT64", "BOOL")


def calibration_dtype(trt_dtype: str) -> np.dtype:
    return np.dtype(TRT_TO_NUMPY[trt_dtype] if trt_dtype in CALIBRATION_INDEX_TYPES else np.float32)


def calibration_arrays(mem: Any, ptrs: list[int], names: list[str], shapes: dict[str, list[int]],
                       dtypes: dict[str, str]) -> dict[str, np.ndarray]:  # fmt: skip
    """Read one calibration batch out of emulated device memory.

    TensorRT reads each input as the calibration profile's OPT shape in the type it expects and cannot
    see the buffer's size. The double is stricter than a GPU: a buffer whose size is not exactly that
    (a larger batch TensorRT would silently cut, a smaller one it would read past, data in another
    dtype) is an error naming both sizes.
    """
    out = {}
    for name, ptr in zip(names, ptrs):
        dtype = calibration_dtype(dtypes[name])
        shape = shapes[name]
        nbytes = int(np.prod(shape)) * dtype.itemsize
        have = mem.size_at(int(ptr))
        if have != nbytes:
            raise ValueError(f"calibration buffer for input {name} holds {have} bytes, but the calibration profile's "
                             f"OPT shape {shape} in {dtype} needs {nbytes}")  # fmt: skip
        out[name] = np.frombuffer(bytes(mem.view(int(ptr), nbytes, "calibration get_batch")), dtype=dtype).reshape(shape)
    return out
