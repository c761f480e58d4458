"""Runners from short specs, as ``--against`` and ``--engine`` take them.

  ort                        ONNX Runtime on the compared model, CPU provider
  ort:CUDAExecutionProvider  ... with that provider ("cuda" matches too; join several with '+')
  ort:other.onnx             ONNX Runtime on another ONNX file
  torch                      the PyTorch reference: zoo.build_module(NAME) for zoo:NAME, else the .pt2/.ts
                             that `trtbuild export` saved beside the ONNX
  torch:model.pt2 | torch:model.ts | torch:zoo:NAME | torch:models/net.py:build
  torch@cuda, torch:model.pt2@cuda:1   ... on that torch device
  trt:model.engine           a TensorRT engine through trtbuild's runtime
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from trtbuild.backends.base import Runner
from trtbuild.errors import ModelError, SpecError
from trtbuild.shapes import TensorInfo

KINDS = ("ort", "torch", "trt")


def split_specs(text: str | Sequence[str]) -> list[str]:
    """``"ort,torch:m.pt2"`` (or a list of such strings) -> ``["ort", "torch:m.pt2"]``."""
    items = [text] if isinstance(text, str) else list(text)
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def _torch_for_model(model: str, device: str, inputs: Sequence[TensorInfo] | None, outputs: Sequence[str] | None,
                     name: str) -> Runner:
    from trtbuild.backends.torch_runner import TorchRunner
    from trtbuild.model.export import reference_beside, source_of

    if model.startswith("zoo:"):
        return _zoo_runner(model[4:], device, inputs, name)
    path = Path(model)
    reference = reference_beside(path)
    if reference is not None:
        return TorchRunner(reference, inputs=inputs, output_names=outputs, device=device, name=name)
    source = source_of(path)
    if source and source.startswith("zoo:"):
        return _zoo_runner(source[4:], device, inputs, name)
    raise ModelError(
        f"'torch' needs a PyTorch reference for {path.name}, and none was found: no .pt2/.ts beside it and no "
        "zoo source in its metadata. Export it with `trtbuild export` (which saves one), or name the reference: "
        "--against ort,torch:model.pt2 (or torch:models/net.py:build)."
    )


def _zoo_runner(zoo_name: str, device: str, inputs: Sequence[TensorInfo] | None, name: str) -> Runner:
    from trtbuild import zoo
    from trtbuild.backends.torch_runner import TorchRunner

    entry = zoo.get(zoo_name)
    return TorchRunner(lambda: zoo.build_module(zoo_name), inputs=inputs, output_names=list(entry.outputs),
                       device=device, name=name)


def make_runner(
    spec: str,
    *,
    model: str | os.PathLike[str] | None = None,
    inputs: Sequence[TensorInfo] | None = None,
    output_names: Sequence[str] | None = None,
    name: str | None = None,
) -> Runner:
    """One runner from ``spec``; ``model`` is the ONNX (or zoo:NAME) that bare ``ort``/``torch`` refer to.

    ``inputs``/``output_names`` (the ONNX's) tell PyTorch runners how to order and name tensors.
    """
    kind, _, value = spec.partition(":")
    kind = kind.strip().lower()
    device = "cpu"
    if kind.startswith("torch@"):
        kind, device = "torch", kind.split("@", 1)[1]
    elif kind == "torch" and "@" in value:
        value, device = value.rsplit("@", 1)
    if kind not in KINDS:
        raise SpecError(f"Unknown runner '{spec}'; use ort[:PROVIDER], torch[:FILE.pt2|.ts|zoo:NAME|module.py:factory] "
                        "or trt:ENGINE.")
    label = name or spec
    model_text = os.fspath(model) if model is not None else None
    if kind == "ort":
        from trtbuild.backends.onnxrt import OrtRunner

        if value.lower().endswith(".onnx") or value.startswith("zoo:"):
            return OrtRunner(value, name=label)
        if model_text is None:
            raise SpecError(f"'{spec}' needs a model: compare MODEL --against {spec}, or ort:model.onnx.")
        providers = [p for p in value.split("+") if p] if value else None
        return OrtRunner(model_text, providers=providers, name=label)
    if kind == "torch":
        from trtbuild.backends.torch_runner import TorchRunner

        if not value:
            if model_text is None:
                raise SpecError("'torch' needs a model to find its reference; or name one, like torch:model.pt2.")
            return _torch_for_model(model_text, device, inputs, output_names, label)
        if value.startswith("zoo:"):
            return _zoo_runner(value[4:], device, inputs, label)
        if Path(value).suffix in (".pt2", ".ts", ".jit"):
            return TorchRunner(value, inputs=inputs, output_names=output_names, device=device, name=label)
        if ":" in value:
            from trtbuild.model.export import load_source

            source = value

            def factory() -> object:
                return load_source(source).module

            return TorchRunner(factory, inputs=inputs, output_names=output_names, device=device, name=label)
        raise SpecError(f"'{spec}': give a .pt2 or .ts file, zoo:NAME or module.py:factory after 'torch:'.")
    from trtbuild.backends.trt_runner import TrtRunner

    if not value:
        raise SpecError("'trt' needs an engine: trt:model.engine (or use --engine model.engine).")
    return TrtRunner(value, name=label)


def make_runners(
    specs: str | Sequence[str],
    *,
    model: str | os.PathLike[str] | None = None,
    inputs: Sequence[TensorInfo] | None = None,
    output_names: Sequence[str] | None = None,
) -> list[Runner]:
    """Several runners with unique names (a repeated spec gets ``#2``, ``#3``...)."""
    runners: list[Runner] = []
    seen: dict[str, int] = {}
    for spec in split_specs(specs):
        count = seen[spec] = seen.get(spec, 0) + 1
        runners.append(make_runner(spec, model=model, inputs=inputs, output_names=output_names,
                                   name=spec if count == 1 else f"{spec}#{count}"))
    if not runners:
        raise SpecError("No runners given; use --against ort,torch (and --engine model.engine).")
    return runners
