"""Any trtbuild Runner as a Polygraphy ``BaseRunner``, so ``Comparator.run`` can drive it.

Each wrapper carries an explicit name (Polygraphy otherwise invents ``<prefix>-N-<timestamp>``
names, which makes results impossible to look up by runner).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from trtbuild.backends.base import Runner


def _dims_for_polygraphy(dims: tuple[Any, ...]) -> tuple[Any, ...]:
    # Polygraphy treats None, negative and string dims as dynamic; keep symbolic names for its logs.
    return tuple(d if isinstance(d, (int, str)) else None for d in dims)


def as_polygraphy_runner(runner: Runner, name: str | None = None) -> Any:
    """Wrap ``runner`` as a ``polygraphy.backend.base.BaseRunner`` named ``name`` (default: runner.name)."""
    from polygraphy.backend.base import BaseRunner
    from polygraphy.common import TensorMetadata
    from polygraphy.datatype import DataType

    class PolygraphyRunner(BaseRunner):  # type: ignore[misc]
        def __init__(self, inner: Runner, runner_name: str) -> None:
            super().__init__(name=runner_name, prefix="trtbuild")
            self.inner = inner

        def activate_impl(self) -> None:
            if not self.inner.is_active:
                self.inner.activate()
                self.inner.is_active = True

        def get_input_metadata_impl(self) -> Any:
            import numpy as np

            meta = TensorMetadata()
            for tensor in self.inner.input_metadata():
                meta.add(tensor.name, dtype=DataType.from_dtype(np.dtype(tensor.dtype)),
                         shape=_dims_for_polygraphy(tensor.dims))
            return meta

        def infer_impl(self, feed_dict: Any) -> Any:
            outputs = self.inner.infer(feed_dict)
            # Polygraphy's contract: the runner reports its own inference time, in seconds.
            self.inference_time = float(getattr(self.inner, "inference_time", 0.0) or 0.0)
            return OrderedDict(outputs)

        def deactivate_impl(self) -> None:
            self.inner.deactivate()

    return PolygraphyRunner(runner, name or runner.name)
