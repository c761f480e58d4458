"""Build recipes: everything a device needs to build an engine itself, in one checked tar file.

Engines cannot be built for a Jetson on an x86 host, so the host ships the *recipe* instead: the
prepared ONNX (with its external data), the checked BuildSpec, and the calibration and timing
caches, plus ``recipe.json``, a manifest with the sha256 of every file. The device runs
``trtbuild build --recipe recipe.tar``; :func:`unpack` refuses anything that could write outside
its folder or that differs from the manifest, and the recipe's own sha256 goes into the plan (and
from there into the engine's manifest).

The tar is written deterministically (sorted members, mtime 0, uid/gid 0), so packing the same
inputs twice gives the same bytes and the same hash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, TYPE_CHECKING, Any

from trtbuild.errors import SpecError, TrtbuildError
from trtbuild.schema import Schema

if TYPE_CHECKING:
    from trtbuild.model.calib import CalibOptions
    from trtbuild.plan import BuildPlan
    from trtbuild.spec import BuildSpec

log = logging.getLogger(__name__)

RECIPE_FORMAT = "trtbuild-recipe"
FORMAT_VERSION = 1
MANIFEST_NAME = "recipe.json"
SPEC_NAME = "spec.json"
MODEL_DIR = "model"
CALIB_DIR = "calib"
TIMING_DIR = "timing"
PLAN_NAME = "plan.json"  # the build plan's decisions and the calibration options it was made with
CALIB_DATA_DIR = "calib/data"
#: The manifest is small; a larger one is not a recipe (and is not read into memory).
MAX_MANIFEST_BYTES = 4 << 20
#: Build options that ``build --recipe`` may still take: where the engine and timing cache live on the device,
#: and plugin libraries installed on the device (the user names those files, so they are the user's choice).
RECIPE_OVERRIDES = ("saveEngine", "timingCacheFile", "staticPlugins", "plugins", "dynamicPlugins", "setPluginsToSerialize")
PLUGIN_FIELDS = {"static_plugins": "--staticPlugins", "dynamic_plugins": "--dynamicPlugins",
                 "set_plugins_to_serialize": "--setPluginsToSerialize"}  # fmt: skip
#: Unpacking refuses recipes that would expand beyond this (override: ``--recipe-max-size``).
DEFAULT_MAX_UNPACKED = 64 << 30
#: ... or that expand more than this many times their own size (a decompression bomb), unless the user
#: raised the limit explicitly. Real ONNX weights compress little; even all-zero tensors stay well below.
MAX_EXPANSION = 200
MAX_MEMBERS = 10_000
_CHUNK = 1 << 20


class RecipeError(TrtbuildError):
    """A recipe that cannot be packed, or one that is unsafe, damaged or changed after packing."""


def manifest_schema() -> Any:
    from trtbuild.schema import Int, ListOf, Nullable, Obj, Range, Str

    entry = Obj({"path": Str, "size": Range(0), "sha256": Str}, required=("path", "size", "sha256"))
    return Obj(
        {"format": Str, "format_version": Int, "spec": Str, "model": Nullable(Str), "created_by": Nullable(Str),
         "target_tensorrt_major": Nullable(Int), "trtexec": Nullable(Str), "plan": Nullable(Str),
         "files": ListOf(entry, max_len=MAX_MEMBERS)},
        required=("format", "format_version", "files"),
    )  # fmt: skip


def plan_schema() -> Any:
    """plan.json: decisions are only compared with a re-plan, never executed; calibration options are typed."""
    from trtbuild.schema import Bool, Int, MapOf, Nullable, Obj, Str

    calibration = Obj(
        {"data": Nullable(Str), "preprocess": Str, "shape": Nullable(Str), "samples": Nullable(Int), "random": Bool,
         "seed": Int, "eval_samples": Int, "batch_axis": Nullable(Str)},
        required=("data", "preprocess", "random", "seed", "eval_samples"), extra=False,
    )  # fmt: skip
    return Obj({"decisions": MapOf(_AnyJson()), "precision_path": Nullable(Str), "calibration": Nullable(calibration),
                "repair": Bool}, required=("decisions",))  # fmt: skip


class _AnyJson(Schema):
    """Any JSON value (decisions are compared for equality, never acted on)."""

    name = "any JSON value"

    def walk(self, value: Any, path: str) -> None:
        return None


@dataclass
class RecipeFile:
    path: str  # inside the recipe, POSIX separators
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PackResult:
    """What :func:`pack` wrote."""

    path: Path
    sha256: str
    size: int
    files: list[RecipeFile] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# pack


def pack(
    spec: BuildSpec,
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    trtexec_version: int | None = None,
    calib: CalibOptions | None = None,
    precision_path: str | None = None,
    repair: bool = False,
) -> PackResult:
    """Plan the build (as ``build --dry-run`` does), then write the recipe tar atomically.

    ``output`` ending in ``.tar.gz`` or ``.tgz`` is gzip-compressed; anything else is a plain tar.
    Nothing is written when the plan refuses the options or a referenced file is missing. The plan's
    decisions go into ``plan.json``; calibration data the plan reads goes into ``calib/data/``. ``repair``
    (``--repair``) is recorded there too: the device repairs its own conversion and its engine manifest
    lists the nodes kept.
    """
    from trtbuild import __version__
    from trtbuild.plan import plan_build
    from trtbuild.spec import BuildSpec

    # raises before anything is written
    plan = plan_build(spec, model, trtexec_version=trtexec_version, calib=calib, precision_path=precision_path,
                      repair=repair)  # fmt: skip
    model_path = Path(plan.model.path)
    sources: dict[str, Path] = {}  # path in the recipe -> file on this machine
    onnx_name = f"{MODEL_DIR}/{model_path.name}"
    sources[onnx_name] = model_path
    data_root = model_path.parent.resolve()
    for rel in plan.model.external_data:
        sources[f"{MODEL_DIR}/{PurePosixPath(Path(rel).as_posix())}"] = data_root / rel

    recipe_spec = BuildSpec.from_dict(plan.spec.to_dict())  # a deep copy to rewrite
    recipe_spec.onnx = onnx_name
    b = recipe_spec.build
    if b.calib:
        b.calib = _add_input_file(sources, CALIB_DIR, b.calib, "--calib (INT8 calibration cache)")
    if b.timing_cache_file:
        b.timing_cache_file = _add_input_file(
            sources, TIMING_DIR, b.timing_cache_file, "--timingCacheFile (timing cache)",
            hint="build once to create it, or pack without --timingCacheFile and give `trtbuild build --recipe R "
            "--timingCacheFile FILE` on the device",
        )  # fmt: skip
    # The engine is an output on the device: keep only its file name (this host's folders mean nothing there).
    b.save_engine = Path(spec.build.save_engine).name if spec.build.save_engine else None
    r = recipe_spec.reporting
    for attr in ("export_times", "export_output", "export_profile", "export_layer_info"):
        if getattr(r, attr):
            setattr(r, attr, Path(getattr(r, attr)).name)
    if recipe_spec.inference.load_inputs:
        raise RecipeError("--loadInputs files are not packed into a recipe; drop the option (give it to `trtbuild "
                          "bench` on the device instead).")  # fmt: skip
    system = recipe_spec.system
    plugins = system.static_plugins + system.dynamic_plugins + system.set_plugins_to_serialize
    if plugins:
        # A recipe never names libraries to load: on the device the user gives them to `build --recipe`.
        log.warning("plugin libraries are not packed (they are built per platform); on the device pass them to "
                    "`trtbuild build --recipe` again: %s",
                    " ".join(f"{PLUGIN_FIELDS[a]}={p}" for a in PLUGIN_FIELDS for p in getattr(system, a)))  # fmt: skip
        system.static_plugins, system.dynamic_plugins, system.set_plugins_to_serialize = [], [], []

    calibration = _pack_calibration(plan, calib, sources)
    from trtbuild.plan import portable_decisions

    # relative paths only: file names where the decisions name files on this host
    plan_doc = {"decisions": portable_decisions(plan.decisions()), "precision_path": precision_path,
                "calibration": calibration, **({"repair": True} if repair else {})}  # fmt: skip
    spec_bytes = (json.dumps(recipe_spec.to_dict(), indent=2) + "\n").encode()
    out = Path(output)
    for name, src in sources.items():
        if src.resolve() == out.resolve():
            raise RecipeError(f"The recipe {out} would overwrite its own input {name}; write it somewhere else (-o).")
    files: list[RecipeFile] = []
    manifest: dict[str, Any] = {}
    from trtbuild.fsutil import atomic_open

    with atomic_open(out, "wb") as handle, _tar_writer(handle, _is_gzip(out)) as tar:
        files.append(_add_bytes(tar, SPEC_NAME, spec_bytes))
        files.append(_add_bytes(tar, PLAN_NAME, (json.dumps(plan_doc, indent=2) + "\n").encode()))
        for name in sorted(sources):
            files.append(_add_file(tar, name, sources[name]))
        manifest = {
            "format": RECIPE_FORMAT,
            "format_version": FORMAT_VERSION,
            "created_by": f"trtbuild {__version__}",
            "spec": SPEC_NAME,
            "model": onnx_name,
            "target_tensorrt_major": plan.target_major,
            # run from the unpacked folder, this is the same build with trtexec
            "trtexec": str(recipe_spec.to_trtexec(plan.target_major)),
            "plan": PLAN_NAME,
            "files": [f.to_dict() for f in files],
        }
        # Written last so every checksum is taken from the bytes that went into the tar.
        _add_bytes(tar, MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o644 & ~umask)  # atomic_open's temporary file is private; a recipe is meant to be copied
    sha, size = file_sha256(out), out.stat().st_size
    return PackResult(path=out, sha256=sha, size=size, files=files, manifest=manifest)


def _pack_calibration(plan: BuildPlan, calib: CalibOptions | None, sources: dict[str, Path]) -> dict[str, Any] | None:
    """The calibration options for plan.json, with the data the plan reads added to the recipe."""
    from trtbuild.model.calib import PRESETS

    uses_data = (plan.calibrator is not None and plan.calibrator.data is not None) or any(
        c.kind == "int8-qdq" for c in plan.conversions) or (plan.conversions and calib is not None and calib.data)  # fmt: skip
    if calib is None or not uses_data:
        return None
    if calib.preprocess not in PRESETS:
        raise RecipeError(f"--calib-preprocess {calib.preprocess} is code, and a recipe carries data only; pack with a "
                          f"preset ({', '.join(PRESETS)}), or preprocess the samples into .npy/.npz files and pack those.")  # fmt: skip
    rel = None
    if calib.data:
        data = Path(calib.data)
        rel = f"{CALIB_DATA_DIR}/{data.name}"
        files = [data] if data.is_file() else sorted(p for p in data.rglob("*") if p.is_file() and not p.is_symlink())
        if not files:
            raise RecipeError(f"--calib-data {data} holds no files to pack; give the folder of calibration samples.")
        for file in files:
            sources[f"{rel}/{file.relative_to(data).as_posix()}" if file != data else rel] = file
    options = {k: v for k, v in calib.to_dict().items() if k in ("preprocess", "shape", "samples", "random", "seed",
                                                                 "eval_samples", "batch_axis")}  # fmt: skip
    return {**options, "data": rel}


def _add_input_file(sources: dict[str, Path], folder: str, given: str, what: str, hint: str = "") -> str:
    path = Path(given).expanduser()
    if not path.is_file():
        fix = hint or "give the path to an existing file"
        raise RecipeError(f"{what} {given} does not exist or is not a file; {fix}.")
    name = f"{folder}/{path.name}"
    sources[name] = path
    return name


def _is_gzip(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


@contextlib.contextmanager
def _tar_writer(handle: IO[bytes], compress: bool) -> Iterator[tarfile.TarFile]:
    # gzip with mtime 0 and no file name, so the compressed bytes are reproducible too.
    with contextlib.ExitStack() as stack:
        target: IO[bytes] = handle
        if compress:
            zipped = gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0)
            stack.callback(zipped.close)
            target = zipped  # type: ignore[assignment]
        tar = stack.enter_context(tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT))
        yield tar


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _HashingReader:
    """Feeds a file to tarfile while hashing exactly the bytes that go into the archive."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        self.count += len(data)
        return data


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> RecipeFile:
    import io

    tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
    return RecipeFile(name, len(data), hashlib.sha256(data).hexdigest())


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> RecipeFile:
    size = path.stat().st_size
    with path.open("rb") as raw:
        reader = _HashingReader(raw)
        try:
            tar.addfile(_tarinfo(name, size), reader)  # type: ignore[arg-type]
        except OSError as exc:
            raise RecipeError(f"{path} changed while it was being packed ({exc}); pack again.") from None
    return RecipeFile(name, size, reader.hash.hexdigest())


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# unpack


def unpack(
    recipe: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    allow_plugins: Iterable[str] = (),
    max_size: int | None = None,
) -> tuple[BuildSpec, Path, str]:
    """Check and extract ``recipe`` into ``dest``; returns (spec with paths inside ``dest``, ONNX path, sha256).

    Refused, each with one sentence: member paths that are absolute or contain ``..``, links, devices and
    anything but regular files and folders, files missing from or not listed in the manifest, and files
    whose size or sha256 differs. Extraction goes to a temporary folder beside ``dest`` that replaces
    ``dest`` only once every check passed; a ``dest`` holding something other than an earlier recipe is
    left alone.

    The recipe is data: its spec is checked against the BuildSpec schema, every path it names must be a
    file it holds (inputs) or a bare file name (outputs, written in the build's output folder), and a
    plugin library it names is refused unless ``allow_plugins`` names it (then it is loaded from ``dest``
    only, and its sha256 is logged). ``max_size`` caps the unpacked bytes (default
    :data:`DEFAULT_MAX_UNPACKED`, and at most :data:`MAX_EXPANSION` times the recipe's own size).
    """
    from trtbuild.spec import BuildSpec

    source = Path(recipe)
    if not source.is_file():
        raise RecipeError(f"The recipe {source} does not exist or is not a file; give the .tar written by `trtbuild pack`.")
    target = Path(dest).absolute()  # the spec's paths must not depend on the current folder
    _check_destination(target, source)
    sha = file_sha256(source)
    try:
        tar = tarfile.open(source, mode="r:*")  # noqa: SIM115 - closed by the `with tar` below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RecipeError(f"{source} is not a recipe: it cannot be read as a tar archive ({exc}).") from None
    with tar:
        try:
            members = _checked_members(tar, source)
            manifest = _read_manifest(tar, members, source)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise RecipeError(f"{source} is damaged: its tar archive cannot be read to the end ({_exc_text(exc)}); "
                              "copy or pack it again.") from None  # fmt: skip
        listed = _listed_files(manifest, source)
        _check_size(listed, source, target, max_size)
        present = {name for name in members if name != MANIFEST_NAME}
        missing = sorted(set(listed) - present)
        if missing:
            raise RecipeError(
                f"{source} lacks {', '.join(missing)}, which its manifest lists: the recipe is incomplete; pack it again."
            )
        extra = sorted(present - set(listed))
        if extra:
            raise RecipeError(
                f"{source} holds {', '.join(extra)}, which its manifest does not list; refusing a recipe with unlisted "
                "files (pack it again instead of editing it)."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            for name, entry in listed.items():
                try:
                    _extract_checked(tar, members[name], staging, entry, source)
                except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:  # a file and a folder of one name
                    from trtbuild.fsutil import disk_full_error

                    full = disk_full_error(exc, staging / name)
                    if full is not None:
                        raise full from None
                    raise RecipeError(f"{source} is refused: '{name}' cannot be extracted ({_exc_text(exc)}).") from None
            (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
            spec_file = staging / str(manifest.get("spec", SPEC_NAME))
            try:
                data = json.loads(spec_file.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise RecipeError(f"The spec in {source} is not JSON ({exc}); pack the recipe again.") from None
            spec = BuildSpec.from_dict(data, source=f"The spec in {source}")
            plugins = _check_spec_paths(spec, listed, source, set(allow_plugins))
            from trtbuild.fsutil import folder_mode

            os.chmod(staging, folder_mode())  # mkdtemp made it private; the unpacked recipe is ordinary data
            _replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    assert spec.onnx is not None
    spec.onnx = str(target / spec.onnx)
    if spec.build.calib:
        spec.build.calib = str(target / spec.build.calib)
    if spec.build.timing_cache_file:
        spec.build.timing_cache_file = str(target / spec.build.timing_cache_file)
    for attr in PLUGIN_FIELDS:
        setattr(spec.system, attr, [str(target / p) for p in getattr(spec.system, attr)])
    for rel, digest in plugins.items():
        log.warning("Loading plugin library %s from recipe %s (sha256 %s), as --allow-plugins asked; it runs code "
                    "on this machine.", target / rel, source.name, digest)  # fmt: skip
    return spec, Path(spec.onnx), sha


def _exc_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _check_size(listed: dict[str, dict[str, Any]], source: Path, target: Path, max_size: int | None) -> None:
    """Refuse, before anything is written, a recipe too large for the limit or for the free space."""
    from trtbuild.fsutil import free_bytes, human_size

    total = sum(int(entry["size"]) for entry in listed.values())
    limit = DEFAULT_MAX_UNPACKED if max_size is None else max_size
    if total > limit:
        raise RecipeError(
            f"{source} would unpack to {human_size(total)}, more than the {human_size(limit)} allowed; if the recipe is "
            "genuine, raise the limit with --recipe-max-size."
        )
    packed = max(source.stat().st_size, 1)
    if max_size is None and total > 64 << 20 and total > MAX_EXPANSION * packed:
        raise RecipeError(
            f"{source} ({human_size(packed)}) would unpack to {human_size(total)}, {total // packed} times its size: "
            "that is a decompression bomb, not a model; if the recipe is genuine, pass --recipe-max-size."
        )
    free = free_bytes(target.parent if not target.exists() else target)
    if free is not None and total > free:
        raise RecipeError(
            f"{source} needs {human_size(total)} unpacked but only {human_size(free)} is free at {target.parent}; "
            "free some space or choose another --recipe-dir."
        )


def _check_destination(target: Path, source: Path) -> None:
    if source.resolve().is_relative_to(target.resolve()):
        raise RecipeError(f"Cannot unpack {source} into {target}, the folder it lies in; choose another --recipe-dir.")
    if target.exists() and not target.is_dir():
        raise RecipeError(f"Cannot unpack into {target}: it is a file, not a folder; choose another --recipe-dir.")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST_NAME).is_file():
        raise RecipeError(
            f"Cannot unpack {source.name} into {target}: the folder is not empty and holds no earlier recipe; "
            "choose an empty or new --recipe-dir."
        )


def _safe_name(name: str) -> str | None:
    """Why ``name`` may not be extracted, or None when it is a plain relative path."""
    if not name or name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "is an absolute path"
    if "\\" in name:
        return "contains a backslash"
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return "contains '..' and would leave the target folder"
    return None


def _checked_members(tar: tarfile.TarFile, source: Path) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for count, member in enumerate(tar):
        if count >= MAX_MEMBERS:
            raise RecipeError(f"{source} is refused: it holds more than {MAX_MEMBERS} entries, far more than a recipe.")
        why = _safe_name(member.name)
        if why:
            raise RecipeError(f"{source} is refused: member '{member.name}' {why}.")
        if member.issym() or member.islnk():
            kind = "symbolic link" if member.issym() else "hard link"
            raise RecipeError(
                f"{source} is refused: member '{member.name}' is a {kind} (to '{member.linkname}'); recipes hold regular files only."
            )
        if member.isdir():
            continue
        if not member.isfile():
            raise RecipeError(
                f"{source} is refused: member '{member.name}' is a device, FIFO or other special file; recipes hold regular files only."
            )
        name = str(PurePosixPath(member.name))  # "./model/x.onnx" and "model/x.onnx" are one file
        if name in members:
            raise RecipeError(f"{source} is refused: '{name}' appears twice in the archive.")
        members[name] = member
    return members


def _read_manifest(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], source: Path) -> dict[str, Any]:
    info = members.get(MANIFEST_NAME)
    if info is None:
        raise RecipeError(f"{source} is not a trtbuild recipe: it has no {MANIFEST_NAME}; make one with `trtbuild pack`.")
    if info.size > MAX_MANIFEST_BYTES:
        raise RecipeError(f"{source} is refused: its {MANIFEST_NAME} is {info.size} bytes, far larger than a manifest.")
    handle = tar.extractfile(info)
    assert handle is not None
    try:
        manifest = json.loads(handle.read())
    except ValueError as exc:
        raise RecipeError(f"{source} is refused: its {MANIFEST_NAME} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != RECIPE_FORMAT:
        raise RecipeError(f"{source} is not a trtbuild recipe: its {MANIFEST_NAME} lacks \"format\": \"{RECIPE_FORMAT}\".")
    from trtbuild.schema import problem

    why = problem(manifest, manifest_schema())
    if why is not None:
        raise RecipeError(f"{source} is refused: its {MANIFEST_NAME} is malformed ({why}); pack the recipe again.")
    version = manifest["format_version"]
    if version > FORMAT_VERSION:
        raise RecipeError(
            f"{source} uses recipe format {version}, newer than the format {FORMAT_VERSION} this trtbuild reads; "
            "upgrade trtbuild on this machine."
        )
    if version < 1:
        raise RecipeError(f"{source} claims recipe format {version}, which never existed; pack the recipe again.")
    return manifest


def _listed_files(manifest: dict[str, Any], source: Path) -> dict[str, dict[str, Any]]:
    listed: dict[str, dict[str, Any]] = {}
    entries = manifest.get("files")
    if not isinstance(entries, list):
        raise RecipeError(f"{source} is refused: its {MANIFEST_NAME} has no list of files.")
    for entry in entries:
        why = _safe_name(entry["path"])
        if why:
            raise RecipeError(f"{source} is refused: its manifest lists '{entry['path']}', which {why}.")
        name = str(PurePosixPath(entry["path"]))
        if name in listed:
            raise RecipeError(f"{source} is refused: its manifest lists '{name}' twice.")
        listed[name] = entry
    spec_name = manifest.get("spec", SPEC_NAME)
    if spec_name not in listed:
        raise RecipeError(f"{source} is refused: its manifest does not list the spec file '{spec_name}'.")
    return listed


def _extract_checked(
    tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, entry: dict[str, Any], source: Path
) -> None:
    name = str(PurePosixPath(member.name))
    if member.size != entry["size"]:
        raise RecipeError(
            f"{name} in {source} is {member.size} bytes but the manifest says {entry['size']}: the recipe was changed "
            "or damaged after packing; pack it again."
        )
    out = (root / name).resolve()
    if not out.is_relative_to(root.resolve()):  # belt and braces after _safe_name
        raise RecipeError(f"{source} is refused: member '{name}' would be written outside {root}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    handle = tar.extractfile(member)
    assert handle is not None
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            sink.write(chunk)
    if digest.hexdigest() != entry["sha256"]:
        raise RecipeError(
            f"The sha256 of {name} in {source} does not match its manifest: the file was changed or damaged after "
            "packing; refusing to build from it. Pack the recipe again."
        )


def _check_spec_paths(
    spec: BuildSpec, listed: dict[str, dict[str, Any]], source: Path, allowed: set[str]
) -> dict[str, str]:
    """Inputs must be files the recipe holds, outputs bare file names; returns the allowed plugins' sha256."""
    for what, value in (("model", spec.onnx), ("calibration cache", spec.build.calib),
                        ("timing cache", spec.build.timing_cache_file)):  # fmt: skip
        if what == "model" and not value:
            raise RecipeError(f"The spec in {source} names no model; pack the recipe again.")
        if value and (_safe_name(value) or str(PurePosixPath(value)) not in listed):
            raise RecipeError(f"The spec in {source} points its {what} to '{value}', which the recipe does not hold; "
                              "a recipe may only name files inside it.")  # fmt: skip
    r = spec.reporting
    for what, value in (("engine (saveEngine)", spec.build.save_engine), ("exportTimes", r.export_times),
                        ("exportOutput", r.export_output), ("exportProfile", r.export_profile),
                        ("exportLayerInfo", r.export_layer_info)):  # fmt: skip
        if value is not None and (not value or value in (".", "..") or "/" in value or "\\" in value
                                  or PureWindowsPath(value).drive):  # fmt: skip
            raise RecipeError(
                f"The spec in {source} writes its {what} to '{value}': a recipe may name only a file name for its "
                "outputs, which go to the build's output folder; pack it again (or give --output on this machine)."
            )
    if spec.inference.load_inputs:
        raise RecipeError(f"The spec in {source} reads --loadInputs '{spec.inference.load_inputs}', which a recipe "
                          "cannot carry; pack it again without --loadInputs.")  # fmt: skip
    plugins: dict[str, str] = {}
    for attr, flag in PLUGIN_FIELDS.items():
        for value in getattr(spec.system, attr):
            name = str(PurePosixPath(value))
            entry = listed.get(name) if not _safe_name(value) else None
            digest = entry["sha256"] if entry else "not in the recipe"
            if not (allowed & {value, name, PurePosixPath(name).name}):
                raise RecipeError(
                    f"The spec in {source} asks to load the plugin library '{value}' ({flag}, sha256 {digest}); a plugin "
                    f"runs code on this machine, so it is refused: check the library, then pass --allow-plugins {name} "
                    "(or rebuild the recipe without it)."
                )
            if entry is None:
                raise RecipeError(
                    f"The spec in {source} names the plugin library '{value}' ({flag}), which the recipe does not hold; "
                    "plugins named by a recipe load only from its own folder. Give device libraries to `build --recipe` "
                    "with --staticPlugins instead."
                )
            plugins[name] = str(entry["sha256"])
    return plugins


def _replace_dir(staging: Path, target: Path) -> None:
    """Move the checked folder into place; an earlier unpacked recipe there is replaced."""
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# build --recipe


def default_recipe_dir(recipe: str | os.PathLike[str], beside: str | os.PathLike[str] | None = None) -> Path:
    """``yolo.tar`` -> ``yolo.recipe/`` in the folder of the engine (``beside``) or the current one."""
    name = Path(recipe).name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if not name.endswith(".recipe"):
        name += ".recipe"
    folder = Path(beside).absolute().parent if beside else Path.cwd()
    return folder / name


def plan_from_recipe(
    recipe: str | os.PathLike[str],
    *,
    recipe_dir: str | os.PathLike[str] | None = None,
    overrides: Iterable[tuple[str, str | None]] = (),
    trtexec_version: int | None = None,
    allow_plugins: Iterable[str] = (),
    max_size: int | None = None,
) -> BuildPlan:
    """Unpack a recipe and plan its build on this machine; the plan carries the recipe's sha256.

    ``overrides`` are ``(trtexec name, value)`` pairs; only the engine path (``saveEngine``), the
    timing cache (``timingCacheFile``) and plugin libraries on this machine (``staticPlugins``,
    ``dynamicPlugins``, ``setPluginsToSerialize``) may change: every other option is part of the recipe.
    ``allow_plugins`` names plugin libraries inside the recipe that may be loaded (see :func:`unpack`).
    """
    from trtbuild.plan import plan_build

    values: dict[str, str] = {}
    device_plugins: dict[str, list[str]] = {attr: [] for attr in PLUGIN_FIELDS}
    for name, value in overrides:
        if name not in RECIPE_OVERRIDES:
            raise SpecError(
                f"--{name} cannot be combined with --recipe: the recipe carries its build options. Pack a new recipe "
                "with the options you want; with --recipe only --output/--saveEngine, --timingCacheFile and plugin "
                "libraries on this machine (--staticPlugins, --dynamicPlugins, --setPluginsToSerialize) are accepted."
            )
        if not value:
            raise SpecError(f"--{name} needs a value.")
        attr = {"plugins": "static_plugins", "staticPlugins": "static_plugins", "dynamicPlugins": "dynamic_plugins",
                "setPluginsToSerialize": "set_plugins_to_serialize"}.get(name)  # fmt: skip
        if attr:
            device_plugins[attr].append(value)
            continue
        values[name] = value
    engine = values.get("saveEngine")
    dest = Path(recipe_dir) if recipe_dir else default_recipe_dir(recipe, engine)
    spec, onnx_path, sha = unpack(recipe, dest, allow_plugins=allow_plugins, max_size=max_size)
    for attr, paths in device_plugins.items():
        getattr(spec.system, attr).extend(paths)
    log.info("recipe %s (sha256 %s) unpacked into %s", recipe, sha, dest)
    if engine:
        spec.build.save_engine = engine
    elif not spec.build.save_engine:
        spec.build.save_engine = f"{onnx_path.stem}.engine"  # in the current folder, not inside the recipe's
    if "timingCacheFile" in values:
        spec.build.timing_cache_file = values["timingCacheFile"]
    stored, precision_path, calib, repair = _read_plan(Path(dest).absolute(), recipe)
    plan = plan_build(spec, onnx_path, trtexec_version=trtexec_version, calib=calib, precision_path=precision_path,
                      repair=repair)  # fmt: skip
    if stored is not None:
        from trtbuild.plan import plan_differences

        diffs = plan_differences(stored, plan.decisions())
        if diffs:
            raise RecipeError(
                f"The recipe {recipe} was planned for TensorRT {stored.get('target_tensorrt_major')}.x and this "
                f"TensorRT ({plan.tensorrt_version or plan.target_major}) would build it differently ({'; '.join(diffs)}); "
                f"pack it again for this device (`trtbuild pack ... --trtexec-version {plan.target_major}`)."
            )
    root = Path(dest).absolute().resolve()
    for rel in plan.model.external_data:  # the model's own file references are paths the recipe names too
        if not (onnx_path.parent / rel).resolve().is_relative_to(root):
            raise RecipeError(f"The model in {recipe} reads external data from '{rel}', outside the recipe; a recipe "
                              "may only name files inside it. Pack it again.")  # fmt: skip
    plan.recipe_sha256 = sha
    return plan


def _read_plan(
    dest: Path, recipe: str | os.PathLike[str]
) -> tuple[dict[str, Any] | None, str | None, CalibOptions | None, bool]:
    """plan.json of an unpacked recipe (None for recipes packed before it existed): decisions, path, calibration,
    repair."""
    from trtbuild.model.calib import PRESETS, CalibOptions
    from trtbuild.schema import problem

    file = dest / PLAN_NAME
    if not file.is_file():
        return None, None, None, False
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{PLAN_NAME} in {recipe} is not JSON ({exc}); pack the recipe again.") from None
    why = problem(doc, plan_schema())
    if why is not None:
        raise RecipeError(f"{PLAN_NAME} in {recipe} is not a trtbuild plan: {why}. Pack the recipe again.")
    cal = doc.get("calibration")
    calib = None
    if cal is not None:
        if cal["preprocess"] not in PRESETS:
            raise RecipeError(f"{PLAN_NAME} in {recipe} names the preprocessing '{cal['preprocess']}', which is code; a "
                              f"recipe may name a preset only ({', '.join(PRESETS)}).")  # fmt: skip
        data = None
        if cal["data"] is not None:
            name = str(cal["data"])
            if _safe_name(name) is not None or not name.startswith(CALIB_DATA_DIR + "/") or not (dest / name).exists():
                raise RecipeError(f"{PLAN_NAME} in {recipe} names calibration data '{cal['data']}', which the recipe "
                                  "does not hold; pack it again.")  # fmt: skip
            data = str(dest / name)
        calib = CalibOptions(data=data, **{k: v for k, v in cal.items() if k != "data"})
    return dict(doc["decisions"]), doc.get("precision_path"), calib, bool(doc.get("repair", False))
