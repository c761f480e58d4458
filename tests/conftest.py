"""Shared fixtures: a private zoo cache per test session and small ONNX models built in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
