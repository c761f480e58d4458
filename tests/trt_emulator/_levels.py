"""What each emulated TensorRT API level exposes: version, enum members with their integer values,
and the class members that level lacks.

Sources (snapshot in api_reference.json): 10.x values are those of tensorrt-stubs 10.13.0.35, 11.x
values those of the TensorRT 11.4 bindings, 8.6 values follow NvInfer.h and pyCore.cpp of release/8.6. Names a level does not have are absent (AttributeError), as in the real module.
8.6 deliberately omits a few deprecated names the emulated code never needs (BuilderFlag.STRICT_TYPES,
ENABLE_TACTIC_HEURISTIC, EXPLICIT_PRECISION, the 0805 preview features).
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEVELS = ("8.6", "10.x", "11.x")

_SEVERITY = {"INTERNAL_ERROR": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "VERBOSE": 4}
_DATATYPE_86 = {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "FP8": 6}
_DATATYPE_10 = {**_DATATYPE_86, "BF16": 7, "INT64": 8, "INT4": 9, "FP4": 10, "E8M0": 11}
_TENSOR_FORMAT = {
    "LINEAR": 0, "CHW2": 1, "HWC8": 2, "CHW4": 3, "CHW16": 4, "CHW32": 5, "DHWC8": 6, "CDHW32": 7,
    "HWC": 8, "DLA_LINEAR": 9, "DLA_HWC4": 10, "HWC16": 11, "DHWC": 12,
}  # fmt: skip
_ERROR_CODE = {
    "SUCCESS": 0, "INTERNAL_ERROR": 1, "MEM_ALLOC_FAILED": 2, "MODEL_DESERIALIZE_FAILED": 3,
    "INVALID_VALUE": 4, "INVALID_GRAPH": 5, "INVALID_NODE": 6, "UNSUPPORTED_GRAPH": 7,
    "UNSUPPORTED_NODE": 8, "UNSUPPORTED_NODE_ATTR": 9, "UNSUPPORTED_NODE_INPUT": 10,
    "UNSUPPORTED_NODE_DATATYPE": 11, "UNSUPPORTED_NODE_DYNAMIC": 12, "UNSUPPORTED_NODE_SHAPE": 13,
    "REFIT_FAILED": 14,
}  # fmt: skip
_COMMON = {
    "TensorIOMode": {"NONE": 0, "INPUT": 1, "OUTPUT": 2},
    "TensorLocation": {"DEVICE": 0, "HOST": 1},
    "LayerInformationFormat": {"ONELINE": 0, "JSON": 1},
    "DeviceType": {"GPU": 0, "DLA": 1},
    "ProfilingVerbosity": {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2},
    "EngineCapability": {"STANDARD": 0, "SAFETY": 1, "DLA_STANDALONE": 2},
    "TensorFormat": _TENSOR_FORMAT,
    "ErrorCode": _ERROR_CODE,
}
# LayerType: 8.6 from NvInfer.h (release/8.6; RNN_V2 and FULLY_CONNECTED left out, no ONNX import makes them),
# 10.x from tensorrt-stubs 10.13, 11.x from the 11.4 bindings.
_LAYER_TYPE_86 = {"CONVOLUTION": 0, "ACTIVATION": 2, "POOLING": 3, "LRN": 4, "SCALE": 5, "SOFTMAX": 6, "DECONVOLUTION": 7, "CONCATENATION": 8, "ELEMENTWISE": 9, "PLUGIN": 10, "UNARY": 11, "PADDING": 12, "SHUFFLE": 13, "REDUCE": 14, "TOPK": 15, "GATHER": 16, "MATRIX_MULTIPLY": 17, "RAGGED_SOFTMAX": 18, "CONSTANT": 19, "IDENTITY": 21, "PLUGIN_V2": 22, "SLICE": 23, "SHAPE": 24, "PARAMETRIC_RELU": 25, "RESIZE": 26, "TRIP_LIMIT": 27, "RECURRENCE": 28, "ITERATOR": 29, "LOOP_OUTPUT": 30, "SELECT": 31, "FILL": 32, "QUANTIZE": 33, "DEQUANTIZE": 34, "CONDITION": 35, "CONDITIONAL_INPUT": 36, "CONDITIONAL_OUTPUT": 37, "SCATTER": 38, "EINSUM": 39, "ASSERTION": 40, "ONE_HOT": 41, "NON_ZERO": 42, "GRID_SAMPLE": 43, "NMS": 44, "REVERSE_SEQUENCE": 45, "NORMALIZATION": 46, "CAST": 47}  # fmt: skip
_LAYER_TYPE_10 = {"CONVOLUTION": 0, "CAST": 1, "ACTIVATION": 2, "POOLING": 3, "LRN": 4, "SCALE": 5, "SOFTMAX": 6, "DECONVOLUTION": 7, "CONCATENATION": 8, "ELEMENTWISE": 9, "PLUGIN": 10, "UNARY": 11, "PADDING": 12, "SHUFFLE": 13, "REDUCE": 14, "TOPK": 15, "GATHER": 16, "MATRIX_MULTIPLY": 17, "RAGGED_SOFTMAX": 18, "CONSTANT": 19, "IDENTITY": 20, "PLUGIN_V2": 21, "SLICE": 22, "SHAPE": 23, "PARAMETRIC_RELU": 24, "RESIZE": 25, "TRIP_LIMIT": 26, "RECURRENCE": 27, "ITERATOR": 28, "LOOP_OUTPUT": 29, "SELECT": 30, "FILL": 31, "QUANTIZE": 32, "DEQUANTIZE": 33, "CONDITION": 34, "CONDITIONAL_INPUT": 35, "CONDITIONAL_OUTPUT": 36, "SCATTER": 37, "EINSUM": 38, "ASSERTION": 39, "ONE_HOT": 40, "NON_ZERO": 41, "GRID_SAMPLE": 42, "NMS": 43, "REVERSE_SEQUENCE": 44, "NORMALIZATION": 45, "PLUGIN_V3": 46, "SQUEEZE": 47, "UNSQUEEZE": 48, "CUMULATIVE": 49, "DYNAMIC_QUANTIZE": 50}  # fmt: skip
_LAYER_TYPE_11 = {"CONVOLUTION": 0, "CAST": 1, "ACTIVATION": 2, "POOLING": 3, "LRN": 4, "SCALE": 5, "SOFTMAX": 6, "DECONVOLUTION": 7, "CONCATENATION": 8, "ELEMENTWISE": 9, "PLUGIN": 10, "UNARY": 11, "PADDING": 12, "SHUFFLE": 13, "REDUCE": 14, "TOPK": 15, "GATHER": 16, "MATRIX_MULTIPLY": 17, "RAGGED_SOFTMAX": 18, "CONSTANT": 19, "IDENTITY": 20, "PLUGIN_V2": 21, "SLICE": 22, "SHAPE": 23, "PARAMETRIC_RELU": 24, "RESIZE": 25, "TRIP_LIMIT": 26, "RECURRENCE": 27, "ITERATOR": 28, "LOOP_OUTPUT": 29, "SELECT": 30, "FILL": 31, "QUANTIZE": 32, "DEQUANTIZE": 33, "CONDITION": 34, "CONDITIONAL_INPUT": 35, "CONDITIONAL_OUTPUT": 36, "SCATTER": 37, "EINSUM": 38, "ASSERTION": 39, "ONE_HOT": 40, "NON_ZERO": 41, "GRID_SAMPLE": 42, "NMS": 43, "REVERSE_SEQUENCE": 44, "NORMALIZATION": 45, "PLUGIN_V3": 46, "SQUEEZE": 47, "UNSQUEEZE": 48, "CUMULATIVE": 49, "DYNAMIC_QUANTIZE": 50, "ATTENTION_INPUT": 51, "ATTENTION_OUTPUT": 52, "ROTARY_EMBEDDING": 53, "KV_CACHE_UPDATE": 54, "MOE": 55, "DIST_COLLECTIVE": 56}  # fmt: skip
_CALIB = {"LEGACY_CALIBRATION": 0, "ENTROPY_CALIBRATION": 1, "ENTROPY_CALIBRATION_2": 2, "MINMAX_CALIBRATION": 3}

# The 8.6 ONNX parser's ErrorCode stops at UNSUPPORTED_NODE (python/src/parsers/pyOnnx.cpp, release/8.6).
_ERROR_CODE_86 = {k: v for k, v in _ERROR_CODE.items() if v <= 8}

ENUMS: dict[str, dict[str, dict[str, int]]] = {
    "8.6": {
        **_COMMON,
        "ErrorCode": _ERROR_CODE_86,
        "DataType": _DATATYPE_86,
        "LayerType": _LAYER_TYPE_86,
        "BuilderFlag": {
            "FP16": 0, "INT8": 1, "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 5, "DISABLE_TIMING_CACHE": 6,
            "TF32": 7, "SPARSE_WEIGHTS": 8, "SAFETY_SCOPE": 9, "OBEY_PRECISION_CONSTRAINTS": 10,
            "PREFER_PRECISION_CONSTRAINTS": 11, "DIRECT_IO": 12, "REJECT_EMPTY_ALGORITHMS": 13,
            "VERSION_COMPATIBLE": 15, "EXCLUDE_LEAN_RUNTIME": 16, "FP8": 17,
        },  # fmt: skip
        "NetworkDefinitionCreationFlag": {"EXPLICIT_BATCH": 0},
        "MemoryPoolType": {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "DLA_LOCAL_DRAM": 2, "DLA_GLOBAL_DRAM": 3, "TACTIC_DRAM": 4},
        "PreviewFeature": {"PROFILE_SHARING_0806": 2},
        "HardwareCompatibilityLevel": {"NONE": 0, "AMPERE_PLUS": 1},
        "TacticSource": {"CUBLAS": 0, "CUBLAS_LT": 1, "CUDNN": 2, "EDGE_MASK_CONVOLUTIONS": 3, "JIT_CONVOLUTIONS": 4},
        "OnnxParserFlag": {"NATIVE_INSTANCENORM": 0},
        "CalibrationAlgoType": _CALIB,
    },
    "10.x": {
        **_COMMON,
        "DataType": _DATATYPE_10,
        "LayerType": _LAYER_TYPE_10,
        "BuilderFlag": {
            "FP16": 0, "BF16": 17, "INT8": 1, "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4,
            "DISABLE_TIMING_CACHE": 5, "EDITABLE_TIMING_CACHE": 27, "TF32": 6, "SPARSE_WEIGHTS": 7,
            "SAFETY_SCOPE": 8, "OBEY_PRECISION_CONSTRAINTS": 9, "PREFER_PRECISION_CONSTRAINTS": 10,
            "DIRECT_IO": 11, "REJECT_EMPTY_ALGORITHMS": 12, "VERSION_COMPATIBLE": 13, "EXCLUDE_LEAN_RUNTIME": 14,
            "FP8": 15, "ERROR_ON_TIMING_CACHE_MISS": 16, "DISABLE_COMPILATION_CACHE": 18, "WEIGHTLESS": 19,
            "STRIP_PLAN": 19, "REFIT_IDENTICAL": 20, "WEIGHT_STREAMING": 21, "INT4": 22, "REFIT_INDIVIDUAL": 23,
            "STRICT_NANS": 24, "MONITOR_MEMORY": 25, "FP4": 26, "DISTRIBUTIVE_INDEPENDENCE": 28,
        },  # fmt: skip
        "NetworkDefinitionCreationFlag": {
            "EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1, "PREFER_JIT_PYTHON_PLUGINS": 2, "PREFER_AOT_PYTHON_PLUGINS": 3,
        },  # fmt: skip
        "MemoryPoolType": {
            "WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "DLA_LOCAL_DRAM": 2, "DLA_GLOBAL_DRAM": 3, "TACTIC_DRAM": 4,
            "TACTIC_SHARED_MEMORY": 5,
        },  # fmt: skip
        "PreviewFeature": {"PROFILE_SHARING_0806": 0, "ALIASED_PLUGIN_IO_10_03": 1, "RUNTIME_ACTIVATION_RESIZE_10_10": 2},
        "HardwareCompatibilityLevel": {"NONE": 0, "AMPERE_PLUS": 1, "SAME_COMPUTE_CAPABILITY": 2},
        "TacticSource": {"CUBLAS": 0, "CUBLAS_LT": 1, "CUDNN": 2, "EDGE_MASK_CONVOLUTIONS": 3, "JIT_CONVOLUTIONS": 4},
        "OnnxParserFlag": {"NATIVE_INSTANCENORM": 0, "ENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA": 1},
        "CalibrationAlgoType": _CALIB,
        "ExecutionContextAllocationStrategy": {"STATIC": 0, "ON_PROFILE_CHANGE": 1, "USER_MANAGED": 2},
        "RuntimePlatform": {"SAME_AS_BUILD": 0, "WINDOWS_AMD64": 1},
        "TilingOptimizationLevel": {"NONE": 0, "FAST": 1, "MODERATE": 2, "FULL": 3},
    },
    "11.x": {
        **_COMMON,
        "DataType": _DATATYPE_10,
        "LayerType": _LAYER_TYPE_11,
        "BuilderFlag": {
            "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4, "DISABLE_TIMING_CACHE": 5, "EDITABLE_TIMING_CACHE": 26,
            "TF32": 6, "SPARSE_WEIGHTS": 7, "SAFETY_SCOPE": 8, "DIRECT_IO": 11, "VERSION_COMPATIBLE": 12,
            "EXCLUDE_LEAN_RUNTIME": 13, "ERROR_ON_TIMING_CACHE_MISS": 15, "DISABLE_COMPILATION_CACHE": 17,
            "STRIP_PLAN": 18, "REFIT_IDENTICAL": 19, "WEIGHT_STREAMING": 20, "REFIT_INDIVIDUAL": 22,
            "STRICT_NANS": 23, "MONITOR_MEMORY": 24, "DISTRIBUTIVE_INDEPENDENCE": 27,
        },  # fmt: skip
        "NetworkDefinitionCreationFlag": {"STRONGLY_TYPED": 0, "PREFER_JIT_PYTHON_PLUGINS": 1, "PREFER_AOT_PYTHON_PLUGINS": 2},
        "MemoryPoolType": {
            "WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "DLA_LOCAL_DRAM": 2, "DLA_GLOBAL_DRAM": 3, "TACTIC_DRAM": 4,
            "TACTIC_SHARED_MEMORY": 5,
        },  # fmt: skip
        "PreviewFeature": {"ALIASED_PLUGIN_IO_10_03": 0, "RUNTIME_ACTIVATION_RESIZE_10_10": 1},
        "HardwareCompatibilityLevel": {"NONE": 0, "AMPERE_PLUS": 1, "SAME_COMPUTE_CAPABILITY": 2},
        "TacticSource": {"EDGE_MASK_CONVOLUTIONS": 0, "JIT_CONVOLUTIONS": 1},
        "OnnxParserFlag": {
            "NATIVE_INSTANCENORM": 0, "ENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA": 1, "REPORT_CAPABILITY_DLA": 2,
            "ENABLE_PLUGIN_OVERRIDE": 3, "ADJUST_FOR_DLA": 4,
        },  # fmt: skip
        "ExecutionContextAllocationStrategy": {"STATIC": 0, "ON_PROFILE_CHANGE": 1, "USER_MANAGED": 2},
        "RuntimePlatform": {"SAME_AS_BUILD": 0, "WINDOWS_AMD64": 1},
        "TilingOptimizationLevel": {"NONE": 0, "FAST": 1, "MODERATE": 2, "FULL": 3},
    },
}
SEVERITY = _SEVERITY

# Classes of the full emulator that a level lacks.
_CALIBRATOR_CLASSES = {"IInt8Calibrator", "IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator", "IInt8EntropyCalibrator",
                       "IInt8LegacyCalibrator"}
ABSENT_CLASSES: dict[str, set[str]] = {
    "8.6": {"IProgressMonitor", "OnnxParserRefitter", "Refitter"},  # 8.6's Refitter has no async refit: left out
    "10.x": set(),
    "11.x": set(_CALIBRATOR_CLASSES),
}

# Class members of the full emulator that a level lacks (the legacy binding API is 8.6 only).
_LEGACY_ENGINE = {
    "num_bindings", "get_binding_name", "get_binding_index", "binding_is_input", "get_binding_shape",
    "get_binding_dtype", "get_profile_shape", "max_batch_size",
}  # fmt: skip
_LEGACY_CONTEXT = {"set_binding_shape", "get_binding_shape", "execute_async_v2"}
ABSENT_MEMBERS: dict[str, dict[str, set[str]]] = {
    "8.6": {
        # pyCore.cpp (release/8.6) binds ICudaEngine.__getitem__, profiling_verbosity and
        # Builder.get_plugin_registry, so the 8.6 level keeps them.
        "ICudaEngine": {"device_memory_size_v2", "get_tensor_profile_values", "is_debug_tensor"},
        "IExecutionContext": {"set_device_memory", "update_device_memory_size_for_shapes"},
        "IBuilderConfig": {"progress_monitor", "runtime_platform", "tiling_optimization_level", "max_num_tactics"},
        "OnnxParser": {"supports_model_v2", "get_layer_output_tensor", "load_model_proto", "set_builder_config"},
        "INetworkDefinition": {"mark_debug", "unmark_debug", "is_debug_tensor"},
        "ParserError": {"node_name", "node_operator", "local_function_stack", "local_function_stack_size"},
        "IPluginRegistry": {"all_creators"},  # 8.6 has plugin_creator_list only
    },
    "10.x": {
        "ICudaEngine": _LEGACY_ENGINE,
        "IExecutionContext": _LEGACY_CONTEXT,
        "OnnxParser": {"set_builder_config"},  # 10.15+
    },
    "11.x": {
        "ICudaEngine": _LEGACY_ENGINE
        | {"device_memory_size", "create_execution_context_without_device_memory", "has_implicit_batch_dimension"},
        "IExecutionContext": _LEGACY_CONTEXT | {"all_shape_inputs_specified"},
        "IBuilderConfig": {"int8_calibrator", "set_calibration_profile", "get_calibration_profile", "algorithm_selector"},
        "Builder": {"platform_has_fast_fp16", "platform_has_fast_int8", "platform_has_tf32"},
        "INetworkDefinition": {"has_implicit_batch_dimension"},
        "ITensor": {"dynamic_range", "set_dynamic_range", "reset_dynamic_range"},
        "ILayer": {"precision", "precision_is_set", "reset_precision", "set_output_type", "output_type_is_set",
                   "reset_output_type"},
        "IPluginRegistry": {"plugin_creator_list"},
        "OnnxParser": {"supports_model"},
    },
}
# Names only the 8.6 level has: absent from tensorrt-stubs 10.13 and the 11.4 bindings. Each is named
# in the API reference snapshot, tests/trt_emulator/api_reference.json (the conformance test checks that).
LEGACY_86_MEMBERS = {"ICudaEngine": set(_LEGACY_ENGINE), "IExecutionContext": set(_LEGACY_CONTEXT)}
# 8.6 ITensor has no names 10.x added; ICudaEngine.__getitem__ arrived in 10.x.


@dataclass(frozen=True)
class Level:
    name: str
    version: str
    enums: dict[str, dict[str, int]] = field(repr=False)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))


VERSIONS = {"8.6": "8.6.1.6", "10.x": "10.13.0.35", "11.x": "11.4.0.106"}


def get_level(name: str) -> Level:
    if name not in VERSIONS:
        raise ValueError(f"unknown TensorRT emulator level {name!r}; choose one of {LEVELS}")
    return Level(name, VERSIONS[name], ENUMS[name])
