"""TensorRT runner: a thin adapter over ``trtbuild.trt.runtime.TrtRuntime`` (the only TensorRT code path).

Nothing here imports TensorRT: ``activate`` imports the runtime lazily, so comparisons that do not use
an engine work on machines without it, and a missing TensorRT is a clear MissingDependencyError.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbuild.backends.base import Runner
from trtbuild.errors import EngineFileError, MissingDependencyError
from trtbuild.shapes import Profile, TensorInfo

if TYPE_CHECKING:
    import numpy as np


def manifest_path(engine: str | os.PathLike[str]) -> Path:
    return Path(str(engine) + ".json")


def read_manifest(engine: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The engine's ``.engine.json`` manifest (checked by trtbuild.engine_file), or None when there is none."""
    try:
        from trtbuild import engine_file
    except ImportError:  # pragma: no cover - engine_file ships with the builder
        engine_file = None  # type: ignore[assignment]
    if engine_file is not None:
        return engine_file.read_manifest(engine)
    path = manifest_path(engine)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineFileError(f"The engine manifest {path} is unreadable ({exc}); rebuild the engine.") from None
    return data if isinstance(data, dict) else None


def manifest_profiles(manifest: Mapping[str, Any] | None) -> list[Profile]:
    """The manifest's ``profiles`` (``{input: {min, opt, max}}`` tables, as Profile.as_dict writes them)."""
    entries = manifest.get("profiles") if manifest else None
    if not isinstance(entries, list):
        return []
    return [
        Profile.from_dict(entry, source=f"engine manifest profile {i}")
        for i, entry in enumerate(entries)
        if isinstance(entry, dict) and entry
    ]


def manifest_inputs(manifest: Mapping[str, Any] | None) -> list[TensorInfo]:
    """Engine inputs as the manifest's ``io`` list records them (-1 for dynamic dims)."""
    if not manifest or not isinstance(manifest.get("io"), list):
        return []
    return [
        TensorInfo(e["name"], str(e.get("dtype", "float32")), tuple(int(d) for d in e.get("shape", ())))
        for e in manifest["io"]
        if isinstance(e, dict) and e.get("mode") == "input"
    ]


class TrtRunner(Runner):
    """Runs a serialized engine through ``TrtRuntime`` (profile ``profile_index``)."""

    backend = "tensorrt"

    def __init__(
        self,
        engine: str | os.PathLike[str],
        *,
        name: str = "trt",
        profile_index: int | None = None,
        device: int | None = None,
        dla_core: int | None = None,
        plugin_libraries: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.device = device  # None: the device the manifest names, else 0
        self.dla_core = dla_core  # None: the core the manifest names
        self.plugin_libraries = plugin_libraries  # from the user's flags only, never from a manifest
        self.engine_path = Path(engine).expanduser()
        if not self.engine_path.exists():
            raise EngineFileError(f"Engine {self.engine_path} does not exist; build one with `trtbuild build`.")
        self.name = name
        self.profile_index = profile_index  # None: the runtime picks the first profile that holds the shapes
        self.manifest = read_manifest(self.engine_path)
        self.runtime: Any = None
        self.inference_time = 0.0

    def activate(self) -> None:
        try:
            from trtbuild.trt.runtime import TrtRuntime
        except ImportError as exc:
            raise MissingDependencyError(
                f"Running a TensorRT engine needs trtbuild's TensorRT runtime, which cannot be imported here ({exc})."
            ) from None
        runtime = TrtRuntime(self.engine_path, profile_index=self.profile_index, name=self.name, device=self.device,
                             dla_core=self.dla_core, plugin_libraries=self.plugin_libraries)  # fmt: skip
        runtime.activate()  # raises MissingDependencyError when TensorRT or PyCUDA is missing
        self.runtime = runtime
        self.is_active = True

    def deactivate(self) -> None:
        runtime, self.runtime = self.runtime, None
        if runtime is not None:
            runtime.deactivate()
        self.is_active = False

    def input_metadata(self) -> list[TensorInfo]:
        if self.runtime is not None:
            return list(self.runtime.input_metadata())
        return manifest_inputs(self.manifest)

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.runtime is None:
            self.activate()
        start = time.perf_counter()
        outputs = self.runtime.infer(dict(feed))
        self.inference_time = time.perf_counter() - start
        return {name: array.copy() for name, array in outputs.items()}

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "backend": self.backend, "engine": str(self.engine_path)}
        if self.manifest:
            info["tensorrt"] = (self.manifest.get("tensorrt") or {}).get("version")
            info["gpu"] = self.manifest.get("gpu")
            info["precision"] = self.manifest.get("precision")
        return info
