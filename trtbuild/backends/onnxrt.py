"""ONNX Runtime runner: the reference for "is the ONNX right?" and a baseline for TensorRT."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.backends.base import Runner
from trtbuild.errors import MissingDependencyError, ModelError
from trtbuild.shapes import TensorInfo

if TYPE_CHECKING:
    import numpy as np

# ONNX Runtime's type strings -> numpy dtype names
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(bfloat16)": "bfloat16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


def ort_dtype(type_string: str) -> str:
    return _ORT_TYPES.get(type_string, type_string)


def resolve_providers(requested: Sequence[str] | None) -> list[str]:
    """Provider names, matched exactly or by case-insensitive part ("cuda" -> CUDAExecutionProvider).

    CPU by default: a comparison must not depend on which GPU providers happen to be installed.
    """
    import onnxruntime as ort

    available = list(ort.get_available_providers())
    if not requested:
        return ["CPUExecutionProvider"]
    chosen: list[str] = []
    for name in requested:
        matches = [p for p in available if p == name] or [p for p in available if name.lower() in p.lower()]
        if len(matches) != 1:
            reason = "matches several" if matches else "is not available"
            raise MissingDependencyError(
                f"ONNX Runtime execution provider '{name}' {reason}; this onnxruntime "
                f"({ort.__version__}) has: {', '.join(available)}. Install the matching onnxruntime package "
                "(e.g. onnxruntime-gpu for CUDAExecutionProvider) or pick one of those."
            )
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


class OrtRunner(Runner):
    """Runs an ONNX file with ONNX Runtime (CPU unless providers are named)."""

    backend = "onnxruntime"

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        providers: Sequence[str] | None = None,
        name: str | None = None,
        threads: int | None = None,
        graph_optimization_level: str = "all",
    ) -> None:
        super().__init__()
        from trtbuild.model.load import resolve_model_path

        self.model_path = resolve_model_path(model)
        self.requested_providers = list(providers or [])
        self.name = name or ("ort" if not providers else "ort:" + "+".join(providers))
        self.threads = threads
        self.graph_optimization_level = graph_optimization_level
        self.session: Any = None
        self.inference_time = 0.0

    def activate(self) -> None:
        import onnxruntime as ort

        providers = resolve_providers(self.requested_providers)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: ORT's warnings are noise in a comparison
        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        options.graph_optimization_level = levels[self.graph_optimization_level]
        if self.threads:
            options.intra_op_num_threads = self.threads
        try:
            self.session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise ModelError(f"ONNX Runtime cannot load {self.model_path}: {exc}") from None
        self.providers = self.session.get_providers()
        self.is_active = True

    def deactivate(self) -> None:
        self.session = None
        self.is_active = False

    def _require_session(self) -> Any:
        if self.session is None:
            self.activate()
        return self.session

    def input_metadata(self) -> list[TensorInfo]:
        return [
            TensorInfo(i.name, ort_dtype(i.type), tuple(d if isinstance(d, int) or d is None else str(d) for d in i.shape))
            for i in self._require_session().get_inputs()
        ]

    def output_names(self) -> list[str]:
        return [o.name for o in self._require_session().get_outputs()]

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self._require_session()
        names = self.output_names()
        start = time.perf_counter()
        try:
            outputs = session.run(names, dict(feed))
        except Exception as exc:
            shapes = ", ".join(f"{k}:{'x'.join(map(str, v.shape))}" for k, v in feed.items())
            raise ModelError(f"ONNX Runtime failed to run {Path(self.model_path).name} on {shapes}: {exc}") from None
        self.inference_time = time.perf_counter() - start
        return dict(zip(names, outputs))

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "name": self.name,
            "backend": self.backend,
            "model": str(self.model_path),
            "providers": list(getattr(self, "providers", None) or self.requested_providers or ["CPUExecutionProvider"]),
            "onnxruntime": ort.__version__,
        }
