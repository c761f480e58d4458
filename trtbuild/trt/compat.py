"""Find and import TensorRT; tell the user how to get it when it is missing."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
from types import ModuleType

from trtbuild.errors import MissingDependencyError

HOW_TO_GET_TENSORRT = (
    "Install TensorRT: on x86-64 Linux or Windows `pip install tensorrt` (pulls the CUDA 12/13 wheels; "
    "needs an NVIDIA driver), on a Jetson use the system TensorRT from JetPack (`sudo apt install "
    "python3-libnvinfer`, then create your venv with --system-site-packages), or run inside the image "
    "in docker/ (NVIDIA's TensorRT container). `trtbuild build --dry-run` validates shapes and options and "
    "prints the trtexec command without TensorRT; `trtbuild doctor` shows what this machine has."
)


def installed_tensorrt_version() -> str | None:
    """The TensorRT version from package metadata, without importing it (cheap)."""
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt-lean"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def import_tensorrt() -> ModuleType:
    """``import tensorrt``, or a MissingDependencyError saying how to get a working one."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as exc:
        raise MissingDependencyError(f"TensorRT is not installed ({exc}). {HOW_TO_GET_TENSORRT}") from None
    except OSError as exc:  # the wheel is there but libnvinfer or a CUDA library is not
        raise MissingDependencyError(
            f"TensorRT is installed but its libraries failed to load ({exc}); check the NVIDIA driver and CUDA "
            f"libraries. {HOW_TO_GET_TENSORRT}"
        ) from None
    if not hasattr(trt, "Builder") or not hasattr(trt, "__version__"):
        # e.g. only tensorrt-stubs installed (a .pyi namespace package), or a failed placeholder wheel
        where = getattr(trt, "__file__", None) or ", ".join(getattr(trt, "__path__", []) or ["?"])
        raise MissingDependencyError(
            f"The 'tensorrt' module found at {where} is incomplete "
            f"(no Builder or __version__): it is a stub or placeholder package, not TensorRT. {HOW_TO_GET_TENSORRT}"
        )
    return trt


def major_version(version: str | None) -> int | None:
    if not version:
        return None
    try:
        return int(version.split(".")[0])
    except ValueError:
        return None


def host_platform() -> str:
    return f"{platform.system()}-{platform.machine()}"
