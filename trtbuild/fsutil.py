"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Also the faults every writer shares: an output path that is a folder, a full disk (named with the path
and the free space), and SIGTERM, which is turned into an exception for the CLI's lifetime so that every
``finally``/``except BaseException`` that removes a temporary file runs, as it does for Ctrl-C.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from trtbuild.errors import TrtbuildError

#: errno values that mean "the file system is full" (EDQUOT: the user's quota is).
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


class DiskFullError(TrtbuildError):
    """A write failed because the file system (or the user's quota) is full."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that cleanup code runs (see :func:`sigterm_cleanup`)."""


def human_size(nbytes: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} B"


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system holding ``path`` (its nearest existing parent); None when unknown."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full_error(exc: BaseException, path: str | os.PathLike[str]) -> DiskFullError | None:
    """A one-sentence error for ``exc`` when it is a full disk, else None."""
    if not isinstance(exc, OSError) or exc.errno not in _FULL:
        return None
    free = free_bytes(path)
    left = f"only {human_size(free)} free there" if free is not None else "free space unknown"
    what = "the file is larger than the file system allows" if exc.errno == errno.EFBIG else "the disk is full"
    return DiskFullError(
        f"Cannot write {path}: {what} ({left}); nothing was replaced. Free some space or write elsewhere, then run again."
    )


def check_output_file(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Refuse an output path that is an existing folder (or lies under a file), before any work is done."""
    target = Path(path)
    if target.is_dir():
        raise TrtbuildError(
            f"The {what} {target} is an existing folder; give a file path, like {target / (target.name or 'out')}."
        )
    for parent in target.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise TrtbuildError(f"The {what} {target} cannot be written: {parent} is a file, not a folder.")
            break
    return target


@contextlib.contextmanager
def sigterm_cleanup(error: type[BaseException] = Terminated) -> Iterator[None]:
    """Within the block, SIGTERM raises ``error`` (default :class:`Terminated`) in the main thread (a
    no-op elsewhere).

    Without it, SIGTERM kills the process where it stands and temporary files (``.NAME.*.tmp``, staging
    folders) stay behind; with it, the same cleanup as for Ctrl-C runs. Code that needs its own SIGTERM
    handling (the nightly runner, with its own exception) nests another block inside this one.
    """

    def handler(signum: int, frame: Any) -> None:
        raise error()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path``; fsync and rename it over ``path`` on success.

    On any exception (KeyboardInterrupt and SIGTERM under :func:`sigterm_cleanup` included) the
    temporary file is removed and ``path`` keeps its previous content. A full disk (on write, fsync or
    close) becomes a :class:`DiskFullError` naming ``path`` and the free space; a folder at ``path``
    a one-sentence error.
    """
    if mode not in ("wb", "w"):
        raise ValueError("atomic_open supports 'w' and 'wb' only")
    target = check_output_file(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _write_error(exc, target) from None
    # mkstemp creates 0600; give the file the mode a plain open() would (or keep the old file's mode).
    with contextlib.suppress(OSError):
        os.chmod(tmp_name, _target_mode(target))
    try:
        with os.fdopen(fd, mode, encoding="utf-8" if mode == "w" else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        full = disk_full_error(exc, target)
        if full is not None:
            raise full from None
        raise
    fsync_dir(target.parent)


def _write_error(exc: OSError, target: Path) -> TrtbuildError:
    full = disk_full_error(exc, target)
    if full is not None:
        return full
    reason = exc.strerror or str(exc)
    return TrtbuildError(f"Cannot write {target}: {reason}; check the folder exists and is writable, or write elsewhere.")


def output_mode(target: str | os.PathLike[str]) -> int:
    """The permission bits a new file at ``target`` gets from a plain ``open()`` (or the old file's bits)."""
    return _target_mode(Path(target))


def folder_mode() -> int:
    """The permission bits ``mkdir`` gives a new folder under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _target_mode(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk (not possible on every OS).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def staging_path(target: str | os.PathLike[str]) -> Path:
    """A hidden file beside ``target`` to build an output in before it is checked and renamed over it."""
    path = Path(target)
    return path.with_name(f".{path.stem}.staging-{os.getpid()}{path.suffix}")
