"""``--shard auto``: this worker's shard from the scheduler that started it.

Schedulers that run fleets already number their workers; reading that number means one job
definition for every worker instead of one per shard. Each source gives a 0- or 1-based index and,
where the scheduler knows it, the count; trtbuild's shards count from 1.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

from trtbuild.errors import TrtbuildError

log = logging.getLogger(__name__)

#: (name, index variable, count variable, index base) in the order they are tried. TRTBUILD_SHARD (I/N)
#: comes first so a CI matrix can always say what it means.
SOURCES = (
    ("Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", None, 0),
    ("Slurm job array", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", None),
    ("GitLab CI parallel job", "CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
)
GENERIC = "TRTBUILD_SHARD"

HELP = (
    "--shard auto reads the shard from the scheduler: TRTBUILD_SHARD=I/N (any CI matrix), a Kubernetes Indexed "
    "Job (JOB_COMPLETION_INDEX; give the count as --shard auto/N, N = the Job's completions), a Slurm job array "
    "(SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_MIN/STEP/COUNT) or GitLab's parallel jobs (CI_NODE_INDEX, "
    "CI_NODE_TOTAL)"
)


def _int(environ: Mapping[str, str], name: str) -> int:
    value = environ.get(name, "")
    if not re.fullmatch(r"\s*\d+\s*", value):
        raise TrtbuildError(f"--shard auto: {name}={value!r} is not a whole number; {HELP}.")
    return int(value)


def shard_from_environment(environ: Mapping[str, str] | None = None, count: int | None = None) -> tuple[int, int, str]:
    """(index counting from 1, count, where it came from). ``count`` (``--shard auto/N``) overrides the
    scheduler's count and is required where the scheduler does not publish one (Kubernetes)."""
    env = os.environ if environ is None else environ
    index: int | None = None
    total: int | None = None
    source = ""
    if env.get(GENERIC, "").strip():
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", env[GENERIC])
        if not match:
            raise TrtbuildError(f"--shard auto: {GENERIC}={env[GENERIC]!r} is not I/N (like 2/4, counting from 1).")
        index, total, source = int(match.group(1)), int(match.group(2)), GENERIC
    else:
        for name, index_var, count_var, base in SOURCES:
            if not env.get(index_var, "").strip():
                continue
            raw = _int(env, index_var)
            source = f"{name} ({index_var}={raw})"
            if index_var == "SLURM_ARRAY_TASK_ID":
                # Arrays may start anywhere and step (--array=1-8, --array=0-15:4): the position in the array.
                first = _int(env, "SLURM_ARRAY_TASK_MIN") if env.get("SLURM_ARRAY_TASK_MIN") else 0
                step = _int(env, "SLURM_ARRAY_TASK_STEP") if env.get("SLURM_ARRAY_TASK_STEP") else 1
                index = (raw - first) // max(step, 1) + 1
            else:
                index = raw - int(base or 0) + 1
            total = _int(env, count_var) if count_var and env.get(count_var, "").strip() else None
            break
    if index is None:
        raise TrtbuildError(f"--shard auto found no shard in the environment. {HELP}; or give --shard I/N.")
    if count is not None:
        total = count
    if total is None:
        raise TrtbuildError(f"--shard auto: {source} gives this worker's index but not the number of workers; "
                            "give it as --shard auto/N (N = the Job's completions).")  # fmt: skip
    if total < 1 or not 1 <= index <= total:
        raise TrtbuildError(f"--shard auto: {source} makes this shard {index} of {total}, outside 1..{max(total, 1)}; "
                            "check the scheduler's count (or --shard auto/N).")  # fmt: skip
    log.info("shard %d/%d from %s", index, total, source)
    return index, total, source
