"""Find and import TensorRT; tell the user how to get it when it is missing."""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import platform
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from trtbuild.errors import MissingDependencyError

HOW_TO_GET_TENSORRT = (
    "Install TensorRT: on x86-64 Linux or Windows `pip install tensorrt` (pulls the CUDA 12/13 wheels; "
    "needs an NVIDIA driver), on a Jetson use the system TensorRT from JetPack (`sudo apt install "
    "python3-libnvinfer`, then create your venv with --system-site-packages), or run inside the image "
    "in docker/ (NVIDIA's TensorRT container). `trtbuild build --dry-run` validates shapes and options and "
    "prints the trtexec command without TensorRT; `trtbuild doctor` shows what this machine has."
)


def installed_tensorrt_version() -> str | None:
    """The installed TensorRT's version: pip metadata when there is some, else the module itself.

    JetPack's apt-installed TensorRT has no pip metadata, so the module is imported then (and a
    module already imported, such as the test double, is asked directly).
    """
    loaded = sys.modules.get("tensorrt")
    if loaded is not None and hasattr(loaded, "Builder"):
        return str(getattr(loaded, "__version__", "")) or None
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt-lean"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        return str(import_tensorrt().__version__)
    except MissingDependencyError:
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


# --------------------------------------------------------------------------------------------------
# Versions and feature gates. Enum integers changed in TensorRT 11, so nothing here stores one: a
# feature is present when the class or member of that name is.


def version_tuple(version: str | None) -> tuple[int, ...]:
    """``"10.13.0.35"`` -> ``(10, 13, 0, 35)``; non-numeric tails (``"8.6.1.post1"``) are cut off."""
    parts: list[int] = []
    for piece in (version or "").split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


def member(enum: Any, name: str) -> Any | None:
    """``enum.NAME`` when the installed TensorRT has it, else None (never an integer fallback)."""
    return getattr(enum, name, None) if enum is not None else None


def has_member(enum: Any, name: str) -> bool:
    return member(enum, name) is not None


def tensorrt_version() -> str | None:
    """The version of the TensorRT that ``import tensorrt`` gives here, or None when it cannot load."""
    try:
        return str(import_tensorrt().__version__)
    except MissingDependencyError:
        return None


def has_precision_flags(trt: Any) -> bool:
    """TensorRT <= 10 has weakly typed FP16/INT8 builder flags; 11.x removed them."""
    return has_member(getattr(trt, "BuilderFlag", None), "FP16")


def has_calibrators(trt: Any) -> bool:
    """Implicit INT8 calibration (``IInt8EntropyCalibrator2``) exists up to 10.x."""
    return hasattr(trt, "IInt8EntropyCalibrator2")


def needs_explicit_batch(trt: Any) -> bool:
    """8.x needs EXPLICIT_BATCH for ONNX; 10.x ignores it (deprecated) and 11.x removed it."""
    major = version_tuple(getattr(trt, "__version__", ""))[:1]
    return bool(major) and major[0] < 10 and has_member(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")


# --------------------------------------------------------------------------------------------------
# The GPU, through PyCUDA when it is there (the only other place that imports pycuda is trt/).


def import_pycuda_driver() -> ModuleType:
    try:
        return importlib.import_module("pycuda.driver")
    except ImportError as exc:
        raise MissingDependencyError(
            f"PyCUDA is not installed ({exc}): pip install pycuda (needs the CUDA toolkit and an NVIDIA driver; "
            "on a Jetson build it on the device)."
        ) from None
    except OSError as exc:
        raise MissingDependencyError(f"PyCUDA failed to load the CUDA driver ({exc}); check the NVIDIA driver.") from None


def cuda_device_info(index: int = 0) -> dict[str, str] | None:
    """Name and compute capability of CUDA device ``index`` through PyCUDA, or None without PyCUDA/a GPU."""
    try:
        cuda = import_pycuda_driver()
        cuda.init()
        device = cuda.Device(index)
        major, minor = device.compute_capability()
        return {"name": str(device.name()), "compute_capability": f"{major}.{minor}", "source": "pycuda"}
    except MissingDependencyError:
        return None
    except Exception:  # pycuda.driver.Error (no device, no driver): report "unknown", not a crash
        return None


@contextlib.contextmanager
def cuda_device(index: int | None) -> Iterator[None]:
    """Make CUDA device ``index`` current for TensorRT (its primary context); nothing for None/0."""
    if not index:
        yield
        return
    cuda = import_pycuda_driver()
    try:
        cuda.init()
        context = cuda.Device(index).retain_primary_context()
    except Exception as exc:
        raise MissingDependencyError(f"--device={index}: CUDA device {index} is not available ({exc}).") from None
    context.push()
    try:
        yield
    finally:
        context.pop()
