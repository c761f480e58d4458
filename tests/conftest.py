"""Shared fixtures: a private zoo cache per test session and small ONNX models built in place."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Export zoo models once per session into a throwaway folder, never into the user's cache.
    if "TRTBUILD_CACHE_DIR" not in os.environ:
        os.environ["TRTBUILD_CACHE_DIR"] = str(tmp_path_factory.mktemp("trtbuild-cache"))


@pytest.fixture(scope="session")
def yolo_onnx() -> Path:
    from trtbuild import zoo

    return zoo.onnx_path("yolo")


@pytest.fixture(scope="session")
def two_input_onnx() -> Path:
    from trtbuild import zoo

    return zoo.onnx_path("two_input")


@pytest.fixture(scope="session")
def resnet_onnx() -> Path:
    from trtbuild import zoo

    return zoo.onnx_path("resnet")


# --- TensorRT/PyCUDA test double (tests/trt_emulator): fake modules in sys.modules, CPU only -----------------


@pytest.fixture(params=["8.6", "10.x", "11.x"])
def trt_emulator(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The fake ``tensorrt`` module at each API level (``trt.EMULATOR_LEVEL``); pycuda is faked too."""
    from trt_emulator import install

    with install(request.param) as trt:
        yield trt


@pytest.fixture
def trt86() -> Iterator[Any]:
    from trt_emulator import install

    with install("8.6") as trt:
        yield trt


@pytest.fixture
def trt10() -> Iterator[Any]:
    from trt_emulator import install

    with install("10.x") as trt:
        yield trt


@pytest.fixture
def trt11() -> Iterator[Any]:
    from trt_emulator import install

    with install("11.x") as trt:
        yield trt


# --- the example nightly suite, run once per test session ---------------------------------------------


@dataclass
class ExampleNightly:
    """``trtbuild nightly suites/example.toml`` run as README.md shows it: in ``workdir``, results in
    ``workdir/bench_results``. The README test and the nightly end-to-end test both read this one run
    (it takes about 40 s on two cores)."""

    workdir: Path
    result: subprocess.CompletedProcess[str]

    @property
    def results(self) -> Path:
        return self.workdir / "bench_results"


@pytest.fixture(scope="session")
def example_nightly(tmp_path_factory: pytest.TempPathFactory) -> ExampleNightly:
    workdir = tmp_path_factory.mktemp("example-nightly")
    shutil.copytree(ROOT / "suites", workdir / "suites")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run([sys.executable, "-m", "trtbuild", "nightly", "suites/example.toml"], cwd=workdir,
                            env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    return ExampleNightly(workdir, result)
