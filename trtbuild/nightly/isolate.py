"""Run one case in a child process that may crash, hang or eat memory, without taking the run down.

The child gets its own session (process group), so a timeout or a memory overrun kills it and anything
it started. Memory is watched by polling the resident set size (VmRSS from /proc, or psutil when
installed) of the child and its descendants: an address-space limit (RLIMIT_AS) would break CUDA,
which reserves far more address space than it ever touches.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Seconds between a SIGUSR1 (the child's faulthandler dumps its stacks into the log) and the SIGKILL.
DUMP_GRACE_S = 1.0


@dataclass
class ChildOutcome:
    """How a child process ended. ``reason`` is None when it exited 0 on its own."""

    returncode: int | None
    reason: str | None = None
    signal: str | None = None
    timed_out: bool = False
    memory_exceeded: bool = False
    peak_rss_mib: float = 0.0
    wall_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "returncode": self.returncode,
            "reason": self.reason,
            "signal": self.signal,
            "timed_out": self.timed_out,
            "memory_exceeded": self.memory_exceeded,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "wall_s": round(self.wall_s, 3),
        }


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def total_memory_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def resolve_memory_limit(value: Any) -> float | None:
    """``"auto"`` = 75% of physical memory (None where unknown); 0 = no limit; else MiB."""
    if value in (None, 0):
        return None
    if value == "auto":
        total = total_memory_mib()
        return total * 0.75 if total else None
    return float(value)


def _descendants(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                text = Path(f"/proc/{current}/task/{tid}/children").read_text()
            except OSError:
                continue
            queue.extend(int(c) for c in text.split())
    return pids


def _vmrss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MiB (0 when it cannot be read)."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
            total = 0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            return total / (1 << 20)
        except psutil.Error:
            return 0.0
    return sum(_vmrss_mib(p) for p in _descendants(pid))


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def run_isolated(
    argv: Sequence[str],
    *,
    timeout_s: float,
    memory_mib: float | None,
    log_path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    poll_s: float = 0.05,
) -> ChildOutcome:
    """Run ``argv`` with stdout and stderr into ``log_path``; kill it past ``timeout_s`` or ``memory_mib``.

    A KeyboardInterrupt (or SystemExit from a SIGTERM handler) in the parent kills the child's whole
    process group before it propagates, so no orphan keeps a GPU busy.
    """
    log_file = Path(log_path)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    peak = 0.0
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True)  # fmt: skip
        try:
            while True:
                code = proc.poll()
                elapsed = time.monotonic() - start
                if code is not None:
                    break
                current = rss_mib(proc.pid)
                peak = max(peak, current)
                if memory_mib is not None and current > memory_mib:
                    _kill_group(proc, signal.SIGKILL)
                    proc.wait()
                    return ChildOutcome(proc.returncode, f"RSS exceeded {memory_mib:.0f} MiB (reached {current:.1f} MiB)",
                                        "SIGKILL", memory_exceeded=True, peak_rss_mib=peak,
                                        wall_s=time.monotonic() - start)  # fmt: skip
                if elapsed > timeout_s:
                    _kill_group(proc, signal.SIGUSR1)  # the child's faulthandler writes its stacks to the log
                    try:
                        proc.wait(DUMP_GRACE_S)
                    except subprocess.TimeoutExpired:
                        pass
                    _kill_group(proc, signal.SIGKILL)
                    proc.wait()
                    return ChildOutcome(proc.returncode, f"timed out after {timeout_s:g} s", "SIGKILL", timed_out=True,
                                        peak_rss_mib=peak, wall_s=time.monotonic() - start)  # fmt: skip
                time.sleep(poll_s)
        except BaseException:
            _kill_group(proc, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(5)
            raise
        finally:
            # A child that exited may have left grandchildren behind in its group.
            if proc.returncode is not None:
                _kill_group(proc, signal.SIGKILL)
    wall = time.monotonic() - start
    if code < 0:
        name = signal_name(-code)
        return ChildOutcome(code, f"crashed: killed by {name} (signal {-code})", name, peak_rss_mib=peak, wall_s=wall)
    if code != 0:
        return ChildOutcome(code, f"exited with code {code}", None, peak_rss_mib=peak, wall_s=wall)
    return ChildOutcome(0, None, None, peak_rss_mib=peak, wall_s=wall)


def python_child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment with trtbuild importable (also when it runs from a source checkout)."""
    import trtbuild

    env = dict(os.environ)
    package_root = str(Path(trtbuild.__file__).resolve().parent.parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if package_root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([package_root, *paths])
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def case_command(case_file: Path, result_file: Path) -> list[str]:
    return [sys.executable, "-m", "trtbuild.nightly.case", str(case_file), str(result_file),
            "--parent-pid", str(os.getpid())]  # fmt: skip
