"""Engine files: the raw plan (``model.engine``) plus its manifest (``model.engine.json``).

The plan stays exactly what TensorRT serialized, so trtexec, Triton, DeepStream and C++ load it as
is. The manifest says what built it and for what: TensorRT version, GPU and compute capability,
host platform (Jetson model and L4T), profiles, I/O tensors, precision path, every build option,
checksums of the ONNX and of the plan. Loading checks all of that *before* TensorRT sees a byte:
a truncated plan, a foreign file, an Ultralytics container or an engine built for another TensorRT
or GPU is refused with one sentence naming both sides. Nothing here imports TensorRT.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from trtbuild.errors import EngineFileError, MissingDependencyError
from trtbuild.fsutil import check_output_file, disk_full_error, fsync_dir, output_mode

log = logging.getLogger(__name__)

PLAN_MAGIC = b"ftrt"
MANIFEST_FORMAT = "trtbuild.engine"
MANIFEST_VERSION = 1
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
#: Ultralytics' key under which ``wrap`` keeps our manifest, so ``strip`` can restore it.
EMBEDDED_MANIFEST_KEY = "trtbuild_manifest"
_CHUNK = 1 << 20
#: Version-compatible engines also run on these later majors (TensorRT docs: 8 -> 9, 10; 10 -> 11).
_VC_CROSS_MAJOR = {(8, 9), (8, 10), (9, 10), (10, 11)}


def is_engine_path(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(ENGINE_SUFFIXES)


def manifest_path(engine_path: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(engine_path) + ".json")


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# This host


def host_info(device: int | None = None) -> dict[str, Any]:
    """TensorRT version, GPU and platform of this machine, as a manifest records them."""
    from trtbuild.doctor import jetson_info
    from trtbuild.trt.compat import host_platform, tensorrt_version

    return {
        "tensorrt": tensorrt_version(),
        "gpu": gpu_identity(device or 0),
        "platform": host_platform(),
        "jetson": jetson_info(),
    }


def gpu_identity(index: int = 0) -> dict[str, Any] | None:
    """Name and compute capability of GPU ``index``: PyCUDA first, then nvidia-smi, then the Jetson model."""
    from trtbuild.doctor import gpu_info, jetson_info
    from trtbuild.trt.compat import cuda_device_info

    found = cuda_device_info(index)
    if found:
        return dict(found)
    gpus = gpu_info()
    if len(gpus) > index:
        return {"name": gpus[index]["name"], "compute_capability": gpus[index]["compute_capability"],
                "source": "nvidia-smi"}  # fmt: skip
    jetson = jetson_info()
    if jetson and jetson.get("model"):
        return {"name": jetson["model"], "compute_capability": None, "source": "jetson"}
    return None


# --------------------------------------------------------------------------------------------------
# Manifest


def make_manifest(
    plan_data: bytes | bytearray | memoryview,
    *,
    engine_path: str | os.PathLike[str],
    tensorrt_version: str,
    spec: Any,
    onnx_path: str | os.PathLike[str] | None,
    io_tensors: list[dict[str, Any]],
    precision: Mapping[str, Any],
    build_time_s: float,
    host: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest for a freshly built plan (``spec`` is the resolved BuildSpec)."""
    from trtbuild import __version__

    build = spec.build
    host = dict(host) if host is not None else host_info(spec.system.device)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "engine": Path(engine_path).name,
        "plan": {"sha256": sha256_bytes(plan_data), "size": len(memoryview(plan_data).cast("B"))},
        "tensorrt": {"version": tensorrt_version},
        "gpu": host.get("gpu"),
        "host": {"platform": host.get("platform"), "jetson": host.get("jetson")},
        "compatibility": {
            "hardware": build.hardware_compatibility_level or "none",
            "version_compatible": bool(build.version_compatible),
            "exclude_lean_runtime": bool(build.exclude_lean_runtime),
            "runtime_platform": build.runtime_platform or "SameAsBuild",
        },
        "dla_core": spec.system.use_dla_core,
        "profiles": [p.as_dict() for p in build.profiles],
        "io": io_tensors,
        "precision": dict(precision),
        "build_options": spec.to_dict(),
        "onnx": {
            "path": os.fspath(onnx_path) if onnx_path else None,
            "sha256": sha256_file(onnx_path) if onnx_path and Path(onnx_path).is_file() else None,
        },
        "build_time_s": round(build_time_s, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "trtbuild_version": __version__,
    }
    if extra:
        manifest.update(extra)
    return manifest


def read_manifest(engine_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest beside ``engine_path``, or None when there is none."""
    path = manifest_path(engine_path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EngineFileError(
            f"The manifest {path} cannot be read ({exc}); delete it to load the engine without checks, or rebuild."
        ) from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise EngineFileError(f"{path} is not a trtbuild engine manifest; delete or rename it, or rebuild the engine.")
    from trtbuild.schema import problem

    why = problem(data, manifest_schema())
    if why is not None:
        raise EngineFileError(
            f"The manifest {path} is malformed ({why}); rebuild the engine, or delete the manifest to load the plan "
            "without checks."
        )
    if data["format_version"] > MANIFEST_VERSION:
        raise EngineFileError(
            f"{path} has manifest format {data['format_version']}, newer than the format {MANIFEST_VERSION} this "
            "trtbuild reads; upgrade trtbuild."
        )
    return data


def manifest_schema() -> Any:
    """The fields of a manifest that trtbuild reads back, with their JSON types (other keys are kept as is)."""
    from trtbuild.schema import AnyValue, Bool, Int, ListOf, MapOf, Nullable, Num, Obj, Range, Str, Version

    text = Nullable(Str)
    version = Nullable(Version)
    gpu = Nullable(Obj({"name": text, "compute_capability": version, "source": text}))
    tensor = Obj({"name": Str, "dtype": text, "dims": ListOf(AnyValue)}, required=("name",))
    return Obj({
        "format": Str,
        "format_version": Range(0),
        "engine": text,
        "plan": Nullable(Obj({"sha256": text, "size": Nullable(Range(0))})),
        "tensorrt": Nullable(Obj({"version": version})),
        "gpu": gpu,
        "host": Nullable(Obj({"platform": text, "jetson": Nullable(MapOf(AnyValue))})),
        "compatibility": Nullable(Obj({"hardware": text, "version_compatible": Nullable(Bool),
                                       "exclude_lean_runtime": Nullable(Bool), "runtime_platform": text})),
        "dla_core": Nullable(Int),
        "profiles": Nullable(ListOf(MapOf(MapOf(ListOf(Int))))),
        "io": Nullable(ListOf(tensor)),
        "precision": Nullable(MapOf(AnyValue)),
        "build_options": Nullable(Obj({"system": Nullable(Obj({"device": Nullable(Int)}))})),
        "onnx": Nullable(Obj({"path": text, "sha256": text})),
        "build_time_s": Nullable(Num),
        "built_at": text,
        "trtbuild_version": text,
    }, required=("format", "format_version"))  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Writing


def write_engine(path: str | os.PathLike[str], plan_data: bytes | bytearray | memoryview, manifest: Mapping[str, Any]) -> Path:
    """Write the plan and its manifest so that a reader never sees half of either.

    Both go to temporary files beside their targets and are fsync'ed before anything is renamed;
    then the plan is renamed over the old plan and the manifest over the old manifest. An error or
    Ctrl-C before the renames leaves the previous engine and manifest untouched and removes the
    temporary files.
    """
    target = check_output_file(path, "engine")
    view = memoryview(plan_data).cast("B")
    if bytes(view[:4]) != PLAN_MAGIC:
        raise EngineFileError(f"Refusing to write {target}: the data is not a TensorRT plan (it does not start with 'ftrt').")
    if manifest["plan"]["sha256"] != sha256_bytes(view) or manifest["plan"]["size"] != len(view):
        raise EngineFileError(f"Refusing to write {target}: the manifest does not describe this plan (sha256/size differ).")
    meta_target = check_output_file(manifest_path(target), "engine manifest")
    temps: list[str] = []
    current = target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        plan_tmp = _temp_beside(target, temps)
        with open(plan_tmp, "wb") as handle:
            _write_chunks(handle, view)
            handle.flush()
            os.fsync(handle.fileno())
        current = meta_target
        meta_tmp = _temp_beside(meta_target, temps)
        with open(meta_tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(manifest, indent=2, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(plan_tmp, target)
        os.replace(meta_tmp, meta_target)
        temps.clear()
    except OSError as exc:
        full = disk_full_error(exc, current)
        if full is not None:
            raise full from None
        raise
    finally:
        for name in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
    fsync_dir(target.parent)
    return target


def _temp_beside(target: Path, temps: list[str]) -> str:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    temps.append(name)
    # mkstemp makes the file 0600; Triton or DeepStream running as another user must read the engine, so
    # it gets the mode a plain open() would give (or the replaced file's mode).
    with contextlib.suppress(OSError):
        os.chmod(name, output_mode(target))
    return name


def _write_chunks(handle: IO[bytes], data: memoryview) -> None:
    for start in range(0, len(data), _CHUNK):
        handle.write(data[start : start + _CHUNK])


# --------------------------------------------------------------------------------------------------
# Reading and checking


def plan_header_version(data: bytes | bytearray | memoryview) -> str | None:
    """The TensorRT version in the plan header, read the way ``trtexec --getPlanVersionOnly`` reads it.

    The layout (tag ``ftrt``, serialization version 0, version bytes 24..27) is not documented by
    NVIDIA; the result is shown for information and never used to refuse a plan.
    """
    view = memoryview(data).cast("B")
    if len(view) < 28 or bytes(view[:4]) != PLAN_MAGIC or struct.unpack_from("<I", view, 4)[0] != 0:
        return None
    return ".".join(str(b) for b in bytes(view[24:28]))


def check_plan_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Refuse anything that is not a bare TensorRT plan, with what it is instead and the fix."""
    view = memoryview(data).cast("B")
    if len(view) == 0:
        raise EngineFileError(f"{path} is empty: it is not a TensorRT plan; rebuild the engine.")
    header = read_ultralytics_header(view)
    if header is not None:
        raise EngineFileError(
            f"{path} is an Ultralytics engine (a {header[1] - 4}-byte JSON metadata header in front of the TensorRT "
            f"plan), which TensorRT cannot load as is; strip the header first: trtbuild engine strip {path} -o plain.engine."
        )
    if bytes(view[:4]) != PLAN_MAGIC:
        raise EngineFileError(
            f"{path} is not a TensorRT plan (it does not start with the 'ftrt' tag TensorRT writes); "
            "pass an engine written by trtbuild build, trtexec --saveEngine or builder.build_serialized_network."
        )


def verify_plan(path: str | os.PathLike[str], data: bytes | bytearray | memoryview, manifest: Mapping[str, Any]) -> None:
    """Size and sha256 of the plan against its manifest (a truncated or edited plan fails here)."""
    plan = manifest.get("plan") or {}
    size = len(memoryview(data).cast("B"))
    if plan.get("size") is not None and int(plan["size"]) != size:
        raise EngineFileError(
            f"{path} is {size} bytes but its manifest says the plan has {plan['size']}: the file was truncated "
            "or replaced; rebuild the engine (or copy it again with its .json manifest)."
        )
    if plan.get("sha256") and plan["sha256"] != sha256_bytes(data):
        raise EngineFileError(
            f"{path} does not match the sha256 in its manifest: the plan changed after it was built; rebuild the "
            "engine (or copy it again with its .json manifest)."
        )


@dataclass
class Verdict:
    """Whether this host can run an engine: True, False, or None when that cannot be told here."""

    ok: bool | None
    reason: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "warnings": self.warnings}


def check_compatibility(manifest: Mapping[str, Any], host: Mapping[str, Any]) -> Verdict:
    """Compare the manifest's TensorRT, GPU and platform with this host (rules: trt-api.md §5.3)."""
    warnings: list[str] = []
    compat = manifest.get("compatibility") or {}
    built_platform = (manifest.get("host") or {}).get("platform")
    host_platform = host.get("platform")
    if compat.get("runtime_platform") == "WindowsAMD64":
        if not str(host_platform or "").lower().startswith("windows"):
            return Verdict(False, f"This engine was built for Windows AMD64 (--runtimePlatform=WindowsAMD64) but this "
                                  f"host is {host_platform}; run it on Windows or rebuild it here without that option.")  # fmt: skip
    elif built_platform and host_platform and built_platform != host_platform:
        return Verdict(False, f"This engine was built on {_where(manifest)} but this host is {_host_where(host)}; engines "
                              "do not move across platforms, so build it here from the same ONNX and spec.")  # fmt: skip

    built_version = str((manifest.get("tensorrt") or {}).get("version") or "")
    host_version = host.get("tensorrt")
    if not host_version:
        return Verdict(None, f"TensorRT is not installed here, so this engine (TensorRT {built_version or '?'}) cannot run "
                             "on this host.")  # fmt: skip
    reason = _version_problem(built_version, str(host_version), compat)
    if reason:
        return Verdict(False, reason)

    reason = _gpu_problem(manifest.get("gpu"), host.get("gpu"), compat.get("hardware") or "none", warnings)
    if reason:
        return Verdict(False, reason, warnings)
    return Verdict(True, f"This host can run it (TensorRT {host_version}, {_gpu_text(host.get('gpu'))}).", warnings)


def _where(manifest: Mapping[str, Any]) -> str:
    host = manifest.get("host") or {}
    jetson = host.get("jetson") or {}
    if jetson:
        extra = ", ".join(f"{k.upper() if k == 'l4t' else k} {v}" for k, v in jetson.items() if k in ("model", "l4t", "jetpack"))
        return f"{host.get('platform')} ({extra})"
    return str(host.get("platform"))


def _host_where(host: Mapping[str, Any]) -> str:
    return _where({"host": {"platform": host.get("platform"), "jetson": host.get("jetson")}})


def _version_problem(built: str, here: str, compat: Mapping[str, Any]) -> str | None:
    from trtbuild.trt.compat import version_tuple

    b, h = version_tuple(built), version_tuple(here)
    if not b:
        return None  # a manifest without a version: TensorRT checks its own header
    if compat.get("version_compatible"):
        if b < (8, 6):
            return (f"This engine claims to be version-compatible but was built with TensorRT {built}, which predates "
                    "version compatibility (8.6); rebuild it here.")  # fmt: skip
        later_ok = h >= b and (h[0] == b[0] or (b[0], h[0]) in _VC_CROSS_MAJOR)
        if not later_ok:
            return (f"This engine was built version-compatible with TensorRT {built}, which runs on that version and later "
                    f"ones of the same major (and the next major where TensorRT allows), but this host has TensorRT {here}; "
                    "rebuild it here from the same ONNX and spec.")  # fmt: skip
        return None
    n = max(3, min(len(b), len(h), 4))
    if b[:n] != h[:n]:
        return (f"This engine was built with TensorRT {built} but this host has TensorRT {here}; plans only load on the "
                "exact TensorRT version that built them, so rebuild it here from the same ONNX and spec (or build with "
                "--versionCompatible to run on later versions).")  # fmt: skip
    return None


def _cc(value: Any) -> tuple[int, ...] | None:
    from trtbuild.trt.compat import version_tuple

    parsed = version_tuple(str(value)) if value else ()
    return parsed[:2] if len(parsed) >= 2 else None


def _gpu_text(gpu: Mapping[str, Any] | None) -> str:
    if not gpu:
        return "unknown GPU"
    cc = gpu.get("compute_capability")
    return f"{gpu.get('name')} (compute capability {cc})" if cc else str(gpu.get("name"))


def _gpu_problem(built: Mapping[str, Any] | None, here: Mapping[str, Any] | None, level: str, warnings: list[str]) -> str | None:
    if not built:
        warnings.append("the manifest does not name the GPU it was built on; TensorRT will check the plan itself")
        return None
    if not here:
        warnings.append(f"cannot identify this host's GPU (no PyCUDA or nvidia-smi); built for {_gpu_text(built)}")
        return None
    built_cc, here_cc = _cc(built.get("compute_capability")), _cc(here.get("compute_capability"))
    if built_cc is None or here_cc is None:
        if built.get("name") != here.get("name"):
            warnings.append(f"built for {_gpu_text(built)}, this host has {_gpu_text(here)}; compute capability unknown")
        return None
    if level == "ampere+":
        if here_cc < (8, 0):
            return (f"This engine was built hardware-compatible for Ampere and newer GPUs (compute capability >= 8.0) on "
                    f"{_gpu_text(built)}, but this host has {_gpu_text(here)}; rebuild it here.")  # fmt: skip
        return None
    if here_cc != built_cc:
        allowed = ("built with --hardwareCompatibilityLevel=sameComputeCapability, so it needs the same compute capability"
                   if level == "sameComputeCapability" else "engines run only on the GPU type that built them")  # fmt: skip
        return (f"This engine was built for {_gpu_text(built)} but this host has {_gpu_text(here)} ({allowed}); rebuild it "
                "here from the same ONNX and spec, or build with --hardwareCompatibilityLevel=ampere+ to share it across "
                "Ampere and newer GPUs.")  # fmt: skip
    if level == "none" and built.get("name") != here.get("name"):
        warnings.append(f"built on {built.get('name')}, running on {here.get('name')} (same compute capability "
                        f"{here.get('compute_capability')}); TensorRT may refuse it or pick slower kernels")  # fmt: skip
    return None


def load_engine_bytes(
    path: str | os.PathLike[str], check_host: bool = True, *, host: Mapping[str, Any] | None = None
) -> tuple[bytes, dict[str, Any] | None]:
    """The checked plan bytes and the manifest (None when there is none).

    Refuses a file that is not a bare plan, a plan whose size or sha256 differ from its manifest, and
    (with ``check_host``) an engine built for another TensorRT version, GPU or platform, each with an
    :class:`EngineFileError` of one sentence. Only bytes that passed these checks may reach
    ``deserialize_cuda_engine``.
    """
    file = Path(path)
    if file.is_dir():
        raise EngineFileError(f"{file} is a folder, not an engine file; give the path of the .engine file.")
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise EngineFileError(f"No engine at {file}; build one with `trtbuild build MODEL.onnx -o {file}`.") from None
    except OSError as exc:
        raise EngineFileError(f"Cannot read the engine {file}: {exc}.") from None
    check_plan_bytes(file, data)
    manifest = read_manifest(file)
    if manifest is None:
        log.warning("%s has no manifest (%s): its TensorRT version and GPU cannot be checked before loading; "
                    "TensorRT will check the plan itself.", file, manifest_path(file).name)  # fmt: skip
    else:
        verify_plan(file, data, manifest)
    if check_host and manifest is not None:
        here = dict(host) if host is not None else host_info(manifest_device(manifest))
        verdict = check_compatibility(manifest, here)
        for warning in verdict.warnings:
            log.warning("%s: %s", file, warning)
        if verdict.ok is None:
            raise MissingDependencyError(verdict.reason)
        if not verdict.ok:
            raise EngineFileError(verdict.reason)
    return data, manifest


def manifest_device(manifest: Mapping[str, Any]) -> int | None:
    """The CUDA device index the engine was built for (--device), if any."""
    system = (manifest.get("build_options") or {}).get("system") or {}
    device = system.get("device")
    return int(device) if isinstance(device, int) else None


def load_engine(path: str | os.PathLike[str], *, verbose: bool = False) -> Any:
    """Check the engine file against this host, then deserialize it (needs TensorRT and a GPU)."""
    data, manifest = load_engine_bytes(path, check_host=True)
    from trtbuild.trt.inspector import deserialize_engine

    return deserialize_engine(data, manifest, verbose=verbose, source=str(path))


def inspect_engine(path: str | os.PathLike[str], *, host: Mapping[str, Any] | None = None, verbose: bool = False) -> dict[str, Any]:
    """What ``trtbuild inspect model.engine`` shows: manifest summary, I/O, profiles, layers, verdict.

    The file's integrity is checked first (refusing as :func:`load_engine_bytes` does). I/O and
    profiles come from the deserialized engine when this host can run it, else from the manifest.
    """
    data, manifest = load_engine_bytes(path, check_host=False)
    here = dict(host) if host is not None else host_info(manifest_device(manifest or {}))
    if manifest is not None:
        verdict = check_compatibility(manifest, here)
    elif not here.get("tensorrt"):
        verdict = Verdict(None, "No manifest, and TensorRT is not installed here: cannot tell whether this host can run it.")
    else:
        verdict = Verdict(None, "No manifest: TensorRT's own header check decides whether it loads here.")
    report: dict[str, Any] = {
        "path": os.fspath(path),
        "size": len(data),
        "plan_header_version": plan_header_version(data),
        "manifest": manifest is not None,
        "summary": _summary(manifest) if manifest else None,
        "io": (manifest or {}).get("io", []),
        "profiles": (manifest or {}).get("profiles", []),
        "layers": None,
        "source": "manifest" if manifest else "none",
        "host": here,
        "verdict": verdict.to_dict(),
    }
    if verdict.ok or (manifest is None and here.get("tensorrt")):
        try:
            from trtbuild.trt.inspector import describe_engine, deserialize_engine

            described = describe_engine(deserialize_engine(data, manifest, verbose=verbose, source=str(path)))
        except (EngineFileError, MissingDependencyError) as exc:
            report["engine_error"] = str(exc)
        else:
            report.update(io=described["io"], profiles=described["profiles"], layers=described.get("layers"),
                          source="engine", num_layers=described.get("num_layers"))  # fmt: skip
            if manifest is None:
                report["verdict"] = Verdict(True, "TensorRT deserialized it on this host.").to_dict()
    return report


def _summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    onnx = manifest.get("onnx") or {}
    return {
        "tensorrt": (manifest.get("tensorrt") or {}).get("version"),
        "gpu": manifest.get("gpu"),
        "platform": (manifest.get("host") or {}).get("platform"),
        "jetson": (manifest.get("host") or {}).get("jetson"),
        "compatibility": manifest.get("compatibility"),
        "precision": manifest.get("precision"),
        "onnx": onnx.get("path"),
        "onnx_sha256": onnx.get("sha256"),
        "plan_sha256": (manifest.get("plan") or {}).get("sha256"),
        "build_time_s": manifest.get("build_time_s"),
        "built_at": manifest.get("built_at"),
        "trtbuild_version": manifest.get("trtbuild_version"),
        "dla_core": manifest.get("dla_core"),
    }


# --------------------------------------------------------------------------------------------------
# Ultralytics container: int32 little-endian length, JSON metadata, plan (trt-api.md §3.5)


def read_ultralytics_header(data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], int] | None:
    """``(metadata, plan_offset)`` when ``data`` is an Ultralytics engine, else None."""
    view = memoryview(data).cast("B")
    if len(view) < 8 or bytes(view[:4]) == PLAN_MAGIC:
        return None
    length = int.from_bytes(view[:4], byteorder="little", signed=True)
    if length <= 0 or 4 + length + 4 > len(view):
        return None
    try:
        metadata = json.loads(bytes(view[4 : 4 + length]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(metadata, dict) or bytes(view[4 + length : 8 + length]) != PLAN_MAGIC:
        return None
    return metadata, 4 + length


def wrap_ultralytics(
    path: str | os.PathLike[str], out: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write ``out`` = Ultralytics header + the plan of ``path`` (our manifest rides along in the metadata)."""
    from trtbuild.fsutil import atomic_open

    data, manifest = load_engine_bytes(path, check_host=False)
    meta: dict[str, Any] = dict(metadata or {})
    if manifest is not None:
        meta.setdefault(EMBEDDED_MANIFEST_KEY, manifest)
        if manifest.get("dla_core") is not None:
            meta.setdefault("dla", str(manifest["dla_core"]))
    text = json.dumps(meta)  # ASCII only, so len(text) is its byte length, as Ultralytics writes it
    header = len(text).to_bytes(4, byteorder="little", signed=True) + text.encode("ascii")
    target = Path(out)
    if target.resolve() == Path(path).resolve():
        raise EngineFileError("wrap writes a new file: give an output path (-o) different from the input.")
    with atomic_open(target, "wb") as handle:
        handle.write(header)
        handle.write(data)
    return target


def strip_ultralytics(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """Write the bare plan of an Ultralytics engine to ``out``; returns it and the header's metadata.

    When the header carries a trtbuild manifest for this very plan, it is written beside ``out``.
    """
    from trtbuild.fsutil import atomic_write_bytes, atomic_write_json

    source = Path(path)
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise EngineFileError(f"No engine at {source}; give the path of an Ultralytics .engine file.") from None
    except OSError as exc:
        raise EngineFileError(f"Cannot read {source}: {exc.strerror or exc}; give the path of an engine file.") from None
    header = read_ultralytics_header(data)
    if header is None:
        if data[:4] == PLAN_MAGIC:
            raise EngineFileError(f"{source} has no Ultralytics header: it is already a bare TensorRT plan.")
        raise EngineFileError(f"{source} is neither an Ultralytics engine nor a TensorRT plan.")
    metadata, offset = header
    plan = memoryview(data)[offset:]
    target = Path(out)
    if target.resolve() == source.resolve():
        raise EngineFileError("strip writes a new file: give an output path (-o) different from the input.")
    embedded = metadata.get(EMBEDDED_MANIFEST_KEY)
    if embedded is not None:
        from trtbuild.schema import problem

        why = problem(embedded, manifest_schema())
        if why is not None or not isinstance(embedded, dict) or embedded.get("format") != MANIFEST_FORMAT:
            log.warning("%s: the manifest inside its header is malformed (%s); the plan is written without one.",
                        source, why or "not a trtbuild manifest")  # fmt: skip
            embedded = None
    atomic_write_bytes(target, plan)
    if isinstance(embedded, dict) and (embedded.get("plan") or {}).get("sha256") == sha256_bytes(plan):
        atomic_write_json(manifest_path(target), {**embedded, "engine": target.name})
    elif manifest_path(target).exists():
        os.unlink(manifest_path(target))  # a stale manifest would refuse the new plan
    return target, {k: v for k, v in metadata.items() if k != EMBEDDED_MANIFEST_KEY}
