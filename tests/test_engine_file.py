"""Engine files without TensorRT: manifest, atomic writes, integrity and host checks, Ultralytics header.

Plans here are synthetic bytes that start with TensorRT's ``ftrt`` tag; nothing is deserialized, and
no figure here comes from TensorRT.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from trtbuild import engine_file as ef
from trtbuild.cli import main
from trtbuild.errors import EngineFileError, MissingDependencyError
from trtbuild.shapes import Profile, ShapeRange
from trtbuild.spec import BuildSpec

A100 = {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "source": "pycuda"}
L4 = {"name": "NVIDIA L4", "compute_capability": "8.9", "source": "pycuda"}
L40S = {"name": "NVIDIA L40S", "compute_capability": "8.9", "source": "pycuda"}
T4 = {"name": "Tesla T4", "compute_capability": "7.5", "source": "nvidia-smi"}
X86 = "Linux-x86_64"


def host(version: str | None = "10.13.0.35", gpu: dict[str, Any] | None = L4, platform: str = X86,
         jetson: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"tensorrt": version, "gpu": gpu, "platform": platform, "jetson": jetson}


def fake_plan(size: int = 4096, seed: int = 1) -> bytes:
    body = bytes((i * 31 + seed) % 251 for i in range(size - 28))
    # tag, serialization version 0, then 16 bytes, then the version bytes trtexec reads at 24..27
    return b"ftrt" + struct.pack("<I", 0) + bytes(16) + bytes([10, 13, 0, 35]) + body


def spec(**build: Any) -> BuildSpec:
    s = BuildSpec(onnx="model.onnx")
    s.build.profiles = [Profile({"images": ShapeRange((1, 3, 64, 64), (4, 3, 64, 64), (8, 3, 64, 64))})]
    for key, value in build.items():
        setattr(s.build, key, value)
    return s


def write(tmp_path: Path, name: str = "model.engine", plan: bytes | None = None, built_on: dict[str, Any] | None = None,
          **build: Any) -> Path:  # fmt: skip
    data = plan if plan is not None else fake_plan()
    path = tmp_path / name
    manifest = ef.make_manifest(
        data, engine_path=path, tensorrt_version=(built_on or host())["tensorrt"], spec=spec(**build), onnx_path=None,
        io_tensors=[{"name": "images", "mode": "input", "dtype": "float32", "shape": [-1, 3, 64, 64]}],
        precision={"path": "FP32"}, build_time_s=1.5, host=built_on or host(),
    )  # fmt: skip
    ef.write_engine(path, data, manifest)
    return path


# ---------------------------------------------------------------------------------------------- writing


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    plan = fake_plan()
    path = write(tmp_path, plan=plan)
    manifest = json.loads(ef.manifest_path(path).read_text())
    assert path.read_bytes() == plan  # the raw plan, loadable by trtexec/Triton as is
    assert manifest["plan"] == {"sha256": ef.sha256_bytes(plan), "size": len(plan)}
    assert manifest["tensorrt"]["version"] == "10.13.0.35"
    assert manifest["gpu"]["name"] == "NVIDIA L4"
    assert manifest["profiles"] == [{"images": {"min": [1, 3, 64, 64], "opt": [4, 3, 64, 64], "max": [8, 3, 64, 64]}}]
    assert manifest["build_options"]["build"]["profiles"] == manifest["profiles"]
    assert manifest["compatibility"]["hardware"] == "none"
    data, loaded = ef.load_engine_bytes(path, host=host())
    assert data == plan and loaded == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.engine", "model.engine.json"]


def test_interrupted_write_keeps_previous_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = fake_plan(seed=1)
    path = write(tmp_path, plan=first)
    manifest_before = ef.manifest_path(path).read_text()

    def explode(handle: Any, data: memoryview) -> None:
        handle.write(data[:100])  # half a plan is on disk (in the temporary file) when the build dies
        raise KeyboardInterrupt

    monkeypatch.setattr(ef, "_write_chunks", explode)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path, plan=fake_plan(seed=2))
    assert path.read_bytes() == first
    assert ef.manifest_path(path).read_text() == manifest_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.engine", "model.engine.json"]  # no temporaries


def test_write_refuses_non_plan_or_foreign_manifest(tmp_path: Path) -> None:
    data = fake_plan()
    manifest = ef.make_manifest(data, engine_path="m.engine", tensorrt_version="10.13.0.35", spec=spec(), onnx_path=None,
                                io_tensors=[], precision={}, build_time_s=0.0, host=host())  # fmt: skip
    with pytest.raises(EngineFileError, match="not a TensorRT plan"):
        ef.write_engine(tmp_path / "m.engine", b"PK\x03\x04" + data[4:], manifest)
    with pytest.raises(EngineFileError, match="does not describe this plan"):
        ef.write_engine(tmp_path / "m.engine", fake_plan(seed=7), manifest)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- integrity


def test_truncated_plan_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(EngineFileError, match=r"is 1000 bytes but its manifest says the plan has 4096: the file was truncated"):
        ef.load_engine_bytes(path, host=host())


def test_changed_plan_is_refused_by_sha(tmp_path: Path) -> None:
    path = write(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EngineFileError, match="does not match the sha256 in its manifest"):
        ef.load_engine_bytes(path, check_host=False)


def test_bytes_that_are_not_a_plan_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.engine"
    path.write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(200))  # an ONNX file renamed to .engine
    with pytest.raises(EngineFileError, match="is not a TensorRT plan"):
        ef.load_engine_bytes(path)
    path.write_bytes(b"")
    with pytest.raises(EngineFileError, match="is empty"):
        ef.load_engine_bytes(path)


def test_plan_without_manifest_loads_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "bare.plan"
    path.write_bytes(fake_plan())
    with caplog.at_level(logging.WARNING):
        data, manifest = ef.load_engine_bytes(path)
    assert manifest is None and data == fake_plan()
    assert "has no manifest" in caplog.text


def test_unreadable_manifest_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path)
    ef.manifest_path(path).write_text("{not json")
    with pytest.raises(EngineFileError, match="cannot be read"):
        ef.load_engine_bytes(path)
    ef.manifest_path(path).write_text('{"format": "something else"}')
    with pytest.raises(EngineFileError, match="not a trtbuild engine manifest"):
        ef.load_engine_bytes(path)


def test_plan_header_version() -> None:
    assert ef.plan_header_version(fake_plan()) == "10.13.0.35"
    assert ef.plan_header_version(b"ftrt") is None
    assert ef.plan_header_version(b"ftrtEMU1" + bytes(40)) is None  # not serialization version 0


# ---------------------------------------------------------------------------------------------- host checks


def test_same_host_passes() -> None:
    verdict = ef.check_compatibility(_manifest(), host())
    assert verdict.ok is True and "can run it" in verdict.reason


def test_other_tensorrt_version_is_refused_naming_both() -> None:
    verdict = ef.check_compatibility(_manifest(), host(version="10.3.0.30"))
    assert verdict.ok is False
    assert "TensorRT 10.13.0.35" in verdict.reason and "TensorRT 10.3.0.30" in verdict.reason
    assert verdict.reason.count(".") >= 1 and "\n" not in verdict.reason


@pytest.mark.parametrize(
    ("built", "here", "ok"),
    [
        ("10.3.0.30", "10.13.0.35", True),  # later minor, same major
        ("10.13.0.35", "11.4.0.106", True),  # TensorRT 11 runs version-compatible 10.x engines
        ("8.6.1.6", "10.13.0.35", True),  # 8 -> 10 allowed by the docs
        ("10.13.0.35", "10.3.0.30", False),  # older runtime
        ("11.4.0.106", "10.13.0.35", False),
        ("8.5.3.1", "8.6.1.6", False),  # version compatibility starts at 8.6
    ],
)
def test_version_compatible_rules(built: str, here: str, ok: bool) -> None:
    manifest = _manifest(built=built, version_compatible=True)
    verdict = ef.check_compatibility(manifest, host(version=here))
    assert verdict.ok is ok, verdict.reason
    if not ok:
        assert built in verdict.reason


def test_other_gpu_is_refused_naming_both() -> None:
    verdict = ef.check_compatibility(_manifest(gpu=A100), host(gpu=L4))
    assert verdict.ok is False
    assert "NVIDIA A100-SXM4-80GB (compute capability 8.0)" in verdict.reason
    assert "NVIDIA L4 (compute capability 8.9)" in verdict.reason
    assert "--hardwareCompatibilityLevel=ampere+" in verdict.reason


def test_hardware_compatible_levels() -> None:
    ampere = _manifest(gpu=A100, hardware="ampere+")
    assert ef.check_compatibility(ampere, host(gpu=L4)).ok is True
    refused = ef.check_compatibility(ampere, host(gpu=T4))
    assert refused.ok is False and "Tesla T4" in refused.reason and "Ampere" in refused.reason
    same_cc = _manifest(gpu=L4, hardware="sameComputeCapability")
    assert ef.check_compatibility(same_cc, host(gpu=L40S)).ok is True
    assert ef.check_compatibility(same_cc, host(gpu=A100)).ok is False


def test_same_compute_capability_other_name_warns() -> None:
    verdict = ef.check_compatibility(_manifest(gpu=L4), host(gpu=L40S))
    assert verdict.ok is True and any("NVIDIA L40S" in w for w in verdict.warnings)


def test_unknown_host_gpu_passes_with_warning() -> None:
    verdict = ef.check_compatibility(_manifest(), host(gpu=None))
    assert verdict.ok is True and any("cannot identify" in w for w in verdict.warnings)


def test_jetson_engine_on_x86_is_refused() -> None:
    orin = {"model": "NVIDIA Jetson AGX Orin Developer Kit", "l4t": "36.4.3"}
    manifest = _manifest(platform="Linux-aarch64", jetson=orin)
    verdict = ef.check_compatibility(manifest, host())
    assert verdict.ok is False
    assert "Linux-aarch64 (model NVIDIA Jetson AGX Orin Developer Kit, L4T 36.4.3)" in verdict.reason
    assert "Linux-x86_64" in verdict.reason and "build it here" in verdict.reason


def test_windows_target_is_refused_on_linux() -> None:
    verdict = ef.check_compatibility(_manifest(runtime_platform="WindowsAMD64"), host())
    assert verdict.ok is False and "Windows" in verdict.reason


def test_no_tensorrt_here_cannot_tell() -> None:
    verdict = ef.check_compatibility(_manifest(), host(version=None))
    assert verdict.ok is None and "not installed" in verdict.reason


def test_load_refuses_other_gpu_before_anything_else(tmp_path: Path) -> None:
    path = write(tmp_path, built_on=host(gpu=A100))
    with pytest.raises(EngineFileError, match="built for NVIDIA A100"):
        ef.load_engine_bytes(path, host=host(gpu=L4))
    with pytest.raises(MissingDependencyError, match="TensorRT is not installed here"):
        ef.load_engine_bytes(path, host=host(version=None))
    ef.load_engine_bytes(path, check_host=False)  # the file itself is fine


def _manifest(built: str = "10.13.0.35", gpu: dict[str, Any] | None = L4, platform: str = X86,
              jetson: dict[str, str] | None = None, **compat: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "format": ef.MANIFEST_FORMAT,
        "tensorrt": {"version": built},
        "gpu": gpu,
        "host": {"platform": platform, "jetson": jetson},
        "compatibility": {"hardware": "none", "version_compatible": False, "runtime_platform": "SameAsBuild", **compat},
    }


# ---------------------------------------------------------------------------------------------- Ultralytics


def test_ultralytics_wrap_strip_round_trip(tmp_path: Path) -> None:
    plan = fake_plan()
    path = write(tmp_path, plan=plan)
    wrapped = ef.wrap_ultralytics(path, tmp_path / "u.engine", {"stride": 32, "names": {"0": "person"}})
    raw = wrapped.read_bytes()
    length = int.from_bytes(raw[:4], "little", signed=True)
    meta = json.loads(raw[4 : 4 + length])
    assert raw[4 + length :] == plan  # exactly Ultralytics' layout: int32 LE length, JSON, plan
    assert meta["stride"] == 32 and meta[ef.EMBEDDED_MANIFEST_KEY]["plan"]["sha256"] == ef.sha256_bytes(plan)
    with pytest.raises(EngineFileError, match=r"Ultralytics engine .* trtbuild engine strip"):
        ef.load_engine_bytes(wrapped)
    out, metadata = ef.strip_ultralytics(wrapped, tmp_path / "plain.engine")
    assert out.read_bytes() == plan and metadata == {"stride": 32, "names": {"0": "person"}}
    data, manifest = ef.load_engine_bytes(out, host=host())  # the manifest came back with the plan
    assert manifest is not None and manifest["engine"] == "plain.engine" and data == plan


def test_reads_a_header_written_the_ultralytics_way(tmp_path: Path) -> None:
    plan = fake_plan()
    meta = json.dumps({"description": "Ultralytics YOLOv8n", "stride": 32, "batch": 1, "dla": None})
    path = tmp_path / "yolov8n.engine"
    with open(path, "wb") as f:  # ultralytics/utils/export/engine.py onnx2engine
        f.write(len(meta).to_bytes(4, byteorder="little", signed=True))
        f.write(meta.encode())
        f.write(plan)
    header = ef.read_ultralytics_header(path.read_bytes())
    assert header is not None and header[1] == 4 + len(meta)
    out, metadata = ef.strip_ultralytics(path, tmp_path / "plain.engine")
    assert metadata["stride"] == 32 and out.read_bytes() == plan
    assert not ef.manifest_path(out).exists()
    with pytest.raises(EngineFileError, match="already a bare TensorRT plan"):
        ef.strip_ultralytics(out, tmp_path / "again.engine")


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_engine_wrap_strip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    meta = tmp_path / "meta.json"
    meta.write_text('{"stride": 32}')
    assert main(["engine", "wrap", str(path), "-o", str(tmp_path / "u.engine"), "--metadata", str(meta)]) == 0
    assert main(["engine", "strip", str(tmp_path / "u.engine"), "-o", str(tmp_path / "p.engine")]) == 0
    out = capsys.readouterr().out
    assert "and its manifest" in out and "stride" in out
    assert (tmp_path / "p.engine").read_bytes() == path.read_bytes()
    assert main(["engine", "wrap", str(path)]) == 2
    assert "give it with -o OUTPUT" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["truncated", "foreign", "ultralytics"])
def test_cli_refuses_broken_files_in_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    path = write(tmp_path)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
        expected = "the file was truncated"
    elif case == "foreign":
        path.write_bytes(b"GGUF" + bytes(100))
        expected = "is not a TensorRT plan"
    else:
        path = ef.wrap_ultralytics(path, tmp_path / "u.engine")
        expected = "trtbuild engine strip"
    for argv in (["engine", "check", str(path)], ["inspect", str(path)], ["inspect", str(path), "--json"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("trtbuild: error: ") and expected in " ".join(err.split())
        assert "Traceback" not in err


def test_cli_check_without_tensorrt_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(ef, "host_info", lambda device=None: host(version=None))
    path = write(tmp_path)
    assert main(["engine", "check", str(path)]) == 3
    assert "TensorRT is not installed here" in capsys.readouterr().err


def test_cli_check_other_gpu_and_version(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    path = write(tmp_path, built_on=host(gpu=A100))
    monkeypatch.setattr(ef, "host_info", lambda device=None: host(gpu=L4))
    assert main(["engine", "check", str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "NVIDIA A100-SXM4-80GB" in err and "NVIDIA L4" in err
    monkeypatch.setattr(ef, "host_info", lambda device=None: host(version="10.3.0.30", gpu=A100))
    assert main(["engine", "check", str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "TensorRT 10.13.0.35" in err and "TensorRT 10.3.0.30" in err


def test_cli_inspect_engine_from_manifest_without_tensorrt(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(ef, "host_info", lambda device=None: host(version=None, gpu=None))
    path = write(tmp_path)
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "manifest" and report["plan_header_version"] == "10.13.0.35"
    assert report["profiles"][0]["images"]["max"] == [8, 3, 64, 64]
    assert report["verdict"]["ok"] is None and "not installed" in report["verdict"]["reason"]
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "built with TensorRT 10.13.0.35 on NVIDIA L4" in text and "[8, 3, 64, 64]" in text


def test_engine_suffixes() -> None:
    assert all(ef.is_engine_path(p) for p in ("a.engine", "b.PLAN", "c.trt"))
    assert not ef.is_engine_path("model.onnx")


def test_manifest_written_atomically_with_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    write(tmp_path)
    assert len(synced) >= 2  # plan and manifest both reach the disk before the renames
