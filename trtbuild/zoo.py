"""Small built-in models in plain torch (fixed seeds) for demos, tests and benchmarks.

``zoo:NAME`` is accepted wherever a model is: the ONNX is exported once into the cache folder
(``$TRTBUILD_CACHE_DIR``, default ``~/.cache/trtbuild``) and reused while the zoo code is unchanged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trtbuild.errors import ModelError

SEED = 20260101


@dataclass(frozen=True)
class ZooModel:
    name: str
    description: str
    factory: Callable[[], Any]
    #: input name -> example shape used for export
    inputs: dict[str, tuple[int, ...]]
    #: input name -> {axis: symbolic name}
    dynamic_axes: dict[str, dict[int, str]]
    outputs: tuple[str, ...]
    output_dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    #: a profile that suits the model (for demos): input -> (min, opt, max)
    profile: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    classifier: bool = False


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


def make_yolo(num_classes: int = 8) -> torch.nn.Module:
    """A YOLOv8-shaped detector: strided conv backbone, three heads, output [batch, 4 + classes, anchors]."""
    torch.manual_seed(SEED)

    class TinyYolo(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.nc = num_classes
            self.stem = _conv(3, 8, 2)  # /2
            self.s1 = _conv(8, 16, 2)  # /4
            self.s2 = _conv(16, 16, 2)  # /8
            self.s3 = _conv(16, 24, 2)  # /16
            self.s4 = _conv(24, 32, 2)  # /32
            self.heads = nn.ModuleList(nn.Conv2d(c, 4 + num_classes, 1) for c in (16, 24, 32))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = self.s1(self.stem(images))
            p3 = self.s2(x)
            p4 = self.s3(p3)
            p5 = self.s4(p4)
            outs = []
            for head, feat in zip(self.heads, (p3, p4, p5)):
                y = head(feat)
                outs.append(y.flatten(2))  # [b, 4+nc, h*w]
            y = torch.cat(outs, 2)
            boxes, scores = y.split((4, self.nc), 1)
            return torch.cat((boxes, scores.sigmoid()), 1)

    return TinyYolo().eval()


def make_resnet(num_classes: int = 10) -> torch.nn.Module:
    """A ResNet-style classifier: two residual stages, global pooling, linear head."""
    torch.manual_seed(SEED + 1)

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.skip = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))

    class TinyResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            self.layer1 = Block(16, 16, 1)
            self.layer2 = Block(16, 32, 2)
            self.layer3 = Block(32, 64, 2)
            self.fc = nn.Linear(64, num_classes)

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            x = self.layer3(self.layer2(self.layer1(self.stem(input))))
            return self.fc(x.mean((2, 3)))

    model = TinyResNet()
    _randomize_batchnorm(model)
    return model.eval()


def make_two_input() -> torch.nn.Module:
    """Image + per-sample scale factor -> scaled feature vector (a two-input model)."""
    torch.manual_seed(SEED + 2)

    class TwoInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(_conv(3, 8, 2), _conv(8, 16, 2))
            self.proj = nn.Linear(16, 6)

        def forward(self, image: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
            x = self.features(image).mean((2, 3))
            return self.proj(x) * scale

    return TwoInput().eval()


def _randomize_batchnorm(model: nn.Module) -> None:
    # Freshly initialised BatchNorm is an identity; random statistics make precision tests meaningful.
    generator = torch.Generator().manual_seed(SEED + 7)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


MODELS: dict[str, ZooModel] = {
    "yolo": ZooModel(
        "yolo",
        "YOLO-style detector: images [batch, 3, height, width] -> output0 [batch, 12, anchors]",
        make_yolo,
        inputs={"images": (1, 3, 320, 320)},
        dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}},
        outputs=("output0",),
        output_dynamic_axes={"output0": {0: "batch", 2: "anchors"}},
        profile={"images": ((1, 3, 320, 320), (4, 3, 640, 640), (8, 3, 640, 640))},
    ),
    "resnet": ZooModel(
        "resnet",
        "ResNet-style classifier: input [batch, 3, 224, 224] -> logits [batch, 10]",
        make_resnet,
        inputs={"input": (1, 3, 224, 224)},
        dynamic_axes={"input": {0: "batch"}},
        outputs=("logits",),
        output_dynamic_axes={"logits": {0: "batch"}},
        profile={"input": ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))},
        classifier=True,
    ),
    "two_input": ZooModel(
        "two_input",
        "Two inputs: image [batch, 3, height, width] and scale [batch, 1] -> output [batch, 6]",
        make_two_input,
        inputs={"image": (2, 3, 128, 128), "scale": (2, 1)},
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "scale": {0: "batch"}},
        outputs=("output",),
        output_dynamic_axes={"output": {0: "batch"}},
        profile={
            "image": ((1, 3, 64, 64), (4, 3, 128, 128), (8, 3, 256, 256)),
            "scale": ((1, 1), (4, 1), (8, 1)),
        },
    ),
}


def get(name: str) -> ZooModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"There is no zoo model '{name}'; choose one of: {', '.join(MODELS)}.") from None


def build_module(name: str) -> torch.nn.Module:
    return get(name).factory()


def example_inputs(name: str, shapes: dict[str, tuple[int, ...]] | None = None, seed: int = 0) -> dict[str, Any]:
    """Seeded float32 numpy inputs for a zoo model (scale factors positive, images in [0, 1])."""
    import numpy as np

    model = get(name)
    rng = np.random.default_rng(seed)
    return {
        n: rng.random(size=(shapes or {}).get(n, shape), dtype=np.float32) + (0.5 if n == "scale" else 0.0)
        for n, shape in model.inputs.items()
    }


def cache_dir() -> Path:
    return Path(os.environ.get("TRTBUILD_CACHE_DIR", Path.home() / ".cache" / "trtbuild"))


def _source_hash() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def onnx_path(name: str, opset: int = 17) -> Path:
    """The zoo model's ONNX file, exported on first use (atomically, so concurrent users are safe)."""
    get(name)
    path = cache_dir() / "zoo" / f"{name}-opset{opset}-{_source_hash()}.onnx"
    if not path.exists():
        export_zoo_onnx(name, path, opset=opset)
    return path


def export_zoo_onnx(name: str, path: Path, opset: int = 17) -> Path:
    """Export a zoo model with the TorchScript exporter (named dynamic axes, constant folding)."""
    import tempfile
    import warnings

    from trtbuild.fsutil import atomic_write_bytes

    model = get(name)
    module = model.factory()
    args = tuple(torch.from_numpy(v) for v in example_inputs(name).values())
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode(), warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose (stable symbolic dims); silence its deprecation notice.
        warnings.simplefilter("ignore", DeprecationWarning)
        staged = Path(tmp) / "model.onnx"
        torch.onnx.export(
            module,
            args,
            str(staged),
            input_names=list(model.inputs),
            output_names=list(model.outputs),
            dynamic_axes={**model.dynamic_axes, **model.output_dynamic_axes},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        atomic_write_bytes(path, staged.read_bytes())
    return path
