"""The Runner interface every backend implements (after Polygraphy: a loader makes it, a runner runs it).

A runner is a context manager: ``activate`` loads the model or engine and allocates what it needs,
``infer`` runs one query on host numpy arrays and returns host numpy arrays, ``deactivate`` frees
everything. Heavy imports happen in ``activate``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trtbuild.shapes import TensorInfo

if TYPE_CHECKING:
    import numpy as np


class Runner(ABC):
    #: A short unique name ("ort", "torch", "trt", or "ort:CUDAExecutionProvider"): used in reports and tables.
    name: str = "runner"
    #: The backend family, for tables: "tensorrt", "onnxruntime" or "torch".
    backend: str = "runner"

    def __init__(self) -> None:
        self.is_active = False

    # ---- lifecycle

    @abstractmethod
    def activate(self) -> None:
        """Load the model/engine and allocate resources. Called once before ``infer``."""

    def deactivate(self) -> None:
        """Release resources. Safe to call twice."""
        self.is_active = False

    def __enter__(self) -> Runner:
        if not self.is_active:
            self.activate()
            self.is_active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.deactivate()

    # ---- inference

    @abstractmethod
    def input_metadata(self) -> list[TensorInfo]:
        """Inputs with their dtypes and dims (symbolic or -1 where dynamic)."""

    @abstractmethod
    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one query: input name -> host array in, output name -> host array out (copies)."""

    def describe(self) -> dict[str, Any]:
        """What this runner is (device, provider, precision...), stored with results."""
        return {"name": self.name, "backend": self.backend}
