"""PyTorch runner: an ``nn.Module``, a ``torch.export`` ``.pt2`` or a TorchScript ``.ts`` file.

Written here rather than using Polygraphy's ``PytRunner``, which is broken in 0.53 (it calls the
module with no arguments, mixes dtype systems, hard-codes ``.cuda()`` and returns a tuple).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.backends.base import Runner
from trtbuild.errors import MissingDependencyError, ModelError
from trtbuild.shapes import TensorInfo

if TYPE_CHECKING:
    import numpy as np

#: Name of the JSON stored inside .pt2/.ts references by ``trtbuild export`` (input/output names and dims).
META_FILE = "trtbuild.json"
REFERENCE_SUFFIXES = (".pt2", ".ts")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("The PyTorch runner needs torch: pip install 'trtbuild[torch]'.") from None
    return torch


def load_reference(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Load a saved PyTorch reference: ``(callable module, trtbuild metadata or {})``."""
    torch = _import_torch()
    file = Path(path).expanduser()
    if not file.exists():
        raise ModelError(f"PyTorch reference {file} does not exist; `trtbuild export` writes one beside the ONNX.")
    extra = {META_FILE: ""}
    try:
        if file.suffix == ".pt2":
            program = torch.export.load(str(file), extra_files=extra)
            module = program.module()
        elif file.suffix in (".ts", ".pt", ".jit"):
            module = torch.jit.load(str(file), map_location="cpu", _extra_files=extra)
        else:
            raise ModelError(
                f"{file}: a PyTorch reference must be a torch.export program (.pt2) or TorchScript (.ts); state "
                "dicts hold no code, so use `torch:module.py:factory` or re-export with `trtbuild export`."
            )
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"Cannot load the PyTorch reference {file}: {type(exc).__name__}: {exc}") from None
    raw = extra.get(META_FILE) or ""
    meta = json.loads(raw) if raw else {}
    return module, meta


def _flatten(value: Any) -> list[Any]:
    """Tensors of a model's return value in order (tensor, tuple/list, dict, nested)."""
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _flatten(v)]
    return [value]


class TorchRunner(Runner):
    """Runs a PyTorch model on host numpy inputs under ``torch.inference_mode``.

    ``model`` is an ``nn.Module``, a factory returning one, or a ``.pt2``/``.ts`` path. Inputs are passed
    positionally in ``inputs`` order (the ONNX input order, as export used); outputs are named by
    ``output_names`` in return order.
    """

    backend = "torch"

    def __init__(
        self,
        model: Any,
        *,
        inputs: Sequence[TensorInfo] | None = None,
        output_names: Sequence[str] | None = None,
        device: str = "cpu",
        name: str = "torch",
    ) -> None:
        super().__init__()
        self._source = model
        self._inputs = list(inputs) if inputs is not None else None
        self._output_names = list(output_names) if output_names is not None else None
        self.device = device
        self.name = name
        self.module: Any = None
        self.inference_time = 0.0
        self.path = Path(model) if isinstance(model, (str, os.PathLike)) else None

    # ---- lifecycle

    def activate(self) -> None:
        torch = _import_torch()
        meta: dict[str, Any] = {}
        if self.path is not None:
            module, meta = load_reference(self.path)
        elif isinstance(self._source, torch.nn.Module):
            module = self._source
        elif callable(self._source):
            module = self._source()
        else:
            raise ModelError(f"TorchRunner needs an nn.Module, a factory or a .pt2/.ts path, not {type(self._source)}.")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise MissingDependencyError(f"torch device '{self.device}' was asked for, but this torch has no CUDA.")
        try:
            module.eval()
        except (NotImplementedError, RuntimeError):  # exported programs refuse .eval(); already inference form
            pass
        try:
            module = module.to(self.device)
        except Exception:  # some exported GraphModules cannot move; run where they were saved
            if self.device != "cpu":
                raise
        self.module = module
        if self._inputs is None and meta.get("inputs"):
            self._inputs = [TensorInfo(i["name"], i["dtype"], tuple(i["dims"])) for i in meta["inputs"]]
        if self._output_names is None and meta.get("outputs"):
            self._output_names = list(meta["outputs"])
        self.is_active = True

    def deactivate(self) -> None:
        self.module = None
        self.is_active = False

    # ---- inference

    def input_metadata(self) -> list[TensorInfo]:
        if self._inputs is None and not self.is_active:
            self.activate()
        if self._inputs is None:
            self._inputs = self._signature_inputs()
        return list(self._inputs)

    def _signature_inputs(self) -> list[TensorInfo]:
        # A bare module says nothing about dtypes or dims: name its forward() arguments, dims unknown.
        import inspect

        target = getattr(self.module, "forward", self.module)
        params = [
            p.name
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
        ]
        return [TensorInfo(n, "float32", ()) for n in params]

    def output_names(self, count: int) -> list[str]:
        if self._output_names is not None:
            if len(self._output_names) != count:
                raise ModelError(
                    f"The PyTorch model returned {count} tensor(s) but {len(self._output_names)} output name(s) "
                    f"were given ({', '.join(self._output_names)}); they must match one to one."
                )
            return list(self._output_names)
        return [f"output{i}" for i in range(count)]

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = _import_torch()
        if not self.is_active:
            self.activate()
        inputs = self.input_metadata()
        missing = [t.name for t in inputs if t.name not in feed]
        if missing:
            raise ModelError(f"No data for PyTorch input(s) {', '.join(missing)}; the feed has {', '.join(feed)}.")
        args = [torch.from_numpy(feed[t.name]).to(self.device) for t in inputs]
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                result = self.module(*args)
                if self.device.startswith("cuda"):
                    torch.cuda.synchronize()
        except Exception as exc:
            raise ModelError(self._failure_message(feed, exc)) from None
        self.inference_time = time.perf_counter() - start
        tensors: list[Any] = _flatten(result)
        names = self.output_names(len(tensors))
        return {n: t.detach().cpu().numpy().copy() for n, t in zip(names, tensors)}

    def _failure_message(self, feed: Mapping[str, np.ndarray], exc: Exception) -> str:
        shapes = ", ".join(f"{k}:{'x'.join(map(str, v.shape))}" for k, v in feed.items())
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ""
        if self.path is not None and self.path.suffix == ".pt2" and "guard" in text.lower():
            hint = (
                " torch.export recorded this shape condition when the reference was saved; compare at shapes "
                "that satisfy it, or use the module itself (torch:module.py:factory or torch:zoo:NAME)."
            )
        return f"PyTorch runner '{self.name}' failed on {shapes}: {type(exc).__name__}: {text}.{hint}"

    def describe(self) -> dict[str, Any]:
        torch = _import_torch()
        source = str(self.path) if self.path is not None else type(self._source).__name__
        return {"name": self.name, "backend": self.backend, "model": source, "device": self.device, "torch": torch.__version__}


def module_factory_runner(factory: Callable[[], Any], **kwargs: Any) -> TorchRunner:
    """A runner that builds its module on activation (keeps construction cheap)."""
    return TorchRunner(factory, **kwargs)
