"""Environment checks for ``trtbuild doctor`` and the fingerprint stored with engines and results."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Check:
    name: str
    found: bool
    detail: str = ""
    how: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        # nvidia-smi may print in the locale's encoding (or garbage): decode leniently rather than crash.
        out = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout,
                             check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def jetson_info() -> dict[str, str] | None:
    """Jetson model, L4T release and power mode, or None when this is not a Jetson."""
    release = Path("/etc/nv_tegra_release")
    model_file = Path("/proc/device-tree/model")
    if not release.exists() and not (model_file.exists() and "jetson" in model_file.read_text(errors="ignore").lower()):
        return None
    info: dict[str, str] = {}
    if model_file.exists():
        info["model"] = model_file.read_text(errors="ignore").strip("\x00 \n")
    if release.exists():
        text = release.read_text(errors="ignore")
        match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
        if match:
            info["l4t"] = f"{match.group(1)}.{match.group(2)}"
    jetpack = _version("nvidia-jetpack") or _apt_version("nvidia-jetpack")
    if jetpack:
        info["jetpack"] = jetpack
    mode = _run(["nvpmodel", "-q"])
    if mode:
        info["power_mode"] = mode.splitlines()[0].replace("NV Power Mode:", "").strip()
    return info


def _apt_version(package: str) -> str | None:
    out = _run(["dpkg-query", "-W", "-f=${Version}", package])
    return out or None


def gpu_info() -> list[dict[str, str]]:
    """GPUs from nvidia-smi (name, driver, compute capability); empty without a driver."""
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,memory.total", "--format=csv,noheader"])
    gpus = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            gpus.append({"name": parts[0], "driver": parts[1], "compute_capability": parts[2],
                         "memory": parts[3] if len(parts) > 3 else ""})  # fmt: skip
    return gpus


def _module_check(name: str, import_name: str, how: str, detail_fn: Any = None) -> Check:
    try:
        module = importlib.import_module(import_name)
    except Exception as exc:  # ImportError, or an OSError from a missing CUDA library
        return Check(name, False, f"{type(exc).__name__}: {exc}"[:160], how)
    version = getattr(module, "__version__", None) or _version(name) or "?"
    detail = str(version)
    if detail_fn is not None:
        try:
            extra = detail_fn(module)
            detail += f"; {extra}" if extra else ""
        except Exception as exc:  # a half-working install still reports what it can
            detail += f"; {type(exc).__name__}: {exc}"
    return Check(name, True, detail)


def run_checks() -> list[Check]:
    checks = [
        Check("python", sys.version_info >= (3, 10), platform.python_version(),
              "trtbuild needs Python >= 3.10 (JetPack 5 ships 3.8: use JetPack 6 or later)."),
        Check("platform", True, f"{platform.system()} {platform.machine()} ({platform.platform(terse=True)})"),
    ]
    jetson = jetson_info()
    checks.append(Check("jetson", jetson is not None,
                        ", ".join(f"{k} {v}" for k, v in jetson.items()) if jetson else "not a Jetson",
                        "only on NVIDIA Jetson devices"))
    gpus = gpu_info()
    checks.append(Check("gpu", bool(gpus) or jetson is not None,
                        "; ".join(f"{g['name']} (sm {g['compute_capability']}, {g['memory']})" for g in gpus)
                        or ("integrated (Jetson)" if jetson else "no NVIDIA GPU visible (nvidia-smi not found or failed)"),
                        "an NVIDIA GPU and driver; in Docker pass --gpus all (x86) or --runtime nvidia (Jetson)"))
    checks.append(Check("driver", bool(gpus), gpus[0]["driver"] if gpus else "not found",
                        "install the NVIDIA driver for your GPU"))
    nvcc = _run(["nvcc", "--version"])
    cuda = re.search(r"release ([\d.]+)", nvcc or "")
    checks.append(Check("cuda toolkit", cuda is not None, f"nvcc {cuda.group(1)}" if cuda else "nvcc not on PATH",
                        "only needed to build PyCUDA from source: install the CUDA toolkit"))
    checks.append(_tensorrt_check())
    checks.append(_module_check("pycuda", "pycuda.driver",
                                "pip install pycuda (needs the CUDA toolkit and a driver; on Jetson build it on the device)",
                                lambda m: f"CUDA driver API {m.get_driver_version()}"))
    checks.append(_module_check("onnxruntime", "onnxruntime", "pip install onnxruntime (CPU) or onnxruntime-gpu (never both)",
                                lambda m: "providers: " + ", ".join(m.get_available_providers())))
    checks.append(_both_ort_check())
    checks.append(_module_check("torch", "torch", "pip install torch (CPU or CUDA build from pytorch.org)",
                                lambda m: f"CUDA {m.version.cuda or 'none (CPU build)'}, GPU available: {m.cuda.is_available()}"))
    checks.append(_module_check("onnx", "onnx", "pip install onnx"))
    checks.append(_module_check("polygraphy", "polygraphy", "pip install polygraphy"))
    checks.append(_module_check("modelopt", "modelopt", "optional, for INT8 + FP16 in one ONNX: its own environment, TRTBUILD_MODELOPT_PYTHON (docs/precision.md)"))
    checks.append(_module_check("onnxslim", "onnxslim", "optional, for export --simplify: pip install onnxslim"))
    return [c for c in checks if c is not None]


HOW_TRT = ("x86: pip install tensorrt; Jetson: JetPack's python3-libnvinfer (venv with --system-site-packages); "
           "or the image in docker/")


def _tensorrt_check() -> Check:
    from trtbuild.errors import MissingDependencyError
    from trtbuild.trt.compat import import_tensorrt

    try:
        trt = import_tensorrt()
    except MissingDependencyError as exc:
        return Check("tensorrt", False, tensorrt_missing_reason(str(exc)), HOW_TRT)
    return Check("tensorrt", True, str(trt.__version__))


def stubs_only() -> str | None:
    """The tensorrt-stubs version when those type stubs are all there is of TensorRT here, else None.

    The stubs make ``import tensorrt`` succeed (a namespace package of .pyi files) without any of
    TensorRT in it; saying "stub or placeholder" then reads as a broken install, which it is not.
    """
    stubs = _version("tensorrt-stubs")
    if stubs is None:
        return None
    if any(_version(d) for d in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt-lean")):
        return None
    return stubs


def tensorrt_missing_reason(error: str) -> str:
    """One short line on why TensorRT is unusable, naming tensorrt-stubs for what it is."""
    stubs = stubs_only()
    if stubs is not None:
        return (f"not installed (tensorrt-stubs {stubs} is: the type stubs mypy checks trtbuild against, "
                "not TensorRT)")  # fmt: skip
    return error.split(". ")[0].rstrip(".")[:160]


def _both_ort_check() -> Check:
    cpu, gpu = _version("onnxruntime"), _version("onnxruntime-gpu")
    if cpu and gpu:
        return Check("onnxruntime packages", False, f"both onnxruntime {cpu} and onnxruntime-gpu {gpu} are installed",
                     "uninstall both, then install only one (they overwrite each other's files)")
    return Check("onnxruntime packages", True, "one onnxruntime package installed" if (cpu or gpu) else "none")


def environment_fingerprint() -> dict[str, Any]:
    """Host, GPU and library versions, stored with engines and benchmark rows."""
    gpus = gpu_info()
    jetson = jetson_info()
    return {
        "host": platform.node(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "cpu": _cpu_name(),
        "python": platform.python_version(),
        "gpu": gpus[0]["name"] if gpus else (jetson or {}).get("model"),
        "compute_capability": gpus[0]["compute_capability"] if gpus else None,
        "driver": gpus[0]["driver"] if gpus else None,
        "jetson": jetson,
        "tensorrt": _version("tensorrt"),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "torch": _version("torch"),
        "trtbuild": _trtbuild_version(),
    }


def _trtbuild_version() -> str:
    from trtbuild import __version__

    return __version__


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":  # pragma: no cover
    print(os.linesep.join(str(c) for c in run_checks()))
