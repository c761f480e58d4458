"""``nightly --shard auto``: the shard from Kubernetes, Slurm, GitLab or TRTBUILD_SHARD."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trtbuild.errors import TrtbuildError
from trtbuild.nightly.shard import shard_from_environment

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "suites" / "example.toml"


@pytest.mark.parametrize(("env", "count", "expected"), [
    ({"TRTBUILD_SHARD": "2/4"}, None, (2, 4)),
    ({"JOB_COMPLETION_INDEX": "0"}, 3, (1, 3)),  # Kubernetes counts from 0; the count comes from --shard auto/N
    ({"JOB_COMPLETION_INDEX": "2"}, 3, (3, 3)),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, None, (2, 4)),
    ({"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "4",
      "SLURM_ARRAY_TASK_COUNT": "4"}, None, (3, 4)),  # --array=0-15:4
    ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2"}, None, (1, 2)),  # GitLab counts from 1
    ({"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "2", "TRTBUILD_SHARD": "1/2"}, None, (1, 2)),  # explicit wins
])  # fmt: skip
def test_shard_from_each_scheduler(env: dict[str, str], count: int | None, expected: tuple[int, int]) -> None:
    index, total, source = shard_from_environment(env, count)
    assert (index, total) == expected and source


@pytest.mark.parametrize(("env", "count", "message"), [
    ({}, None, "found no shard"),
    ({"JOB_COMPLETION_INDEX": "1"}, None, "--shard auto/N"),
    ({"JOB_COMPLETION_INDEX": "3"}, 3, "shard 4 of 3"),
    ({"CI_NODE_INDEX": "x", "CI_NODE_TOTAL": "2"}, None, "not a whole number"),
    ({"TRTBUILD_SHARD": "2of4"}, None, "is not I/N"),
])  # fmt: skip
def test_shard_auto_errors_say_what_to_set(env: dict[str, str], count: int | None, message: str) -> None:
    with pytest.raises(TrtbuildError, match=re.escape(message)):
        shard_from_environment(env, count)


SCHEDULER_VARIABLES = ("TRTBUILD_SHARD", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN",
                       "SLURM_ARRAY_TASK_STEP", "SLURM_ARRAY_TASK_COUNT", "CI_NODE_INDEX", "CI_NODE_TOTAL")  # fmt: skip


def test_cli_shard_auto_lists_the_same_cases_as_the_explicit_shard(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from trtbuild.cli import main

    def listed(shard: str, **env: str) -> list[str]:
        for name in SCHEDULER_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert main(["nightly", str(EXAMPLE), "--list", "--shard", shard]) == 0
        return capsys.readouterr().out.split()

    auto = [listed("auto/3", JOB_COMPLETION_INDEX=str(i)) for i in range(3)]
    explicit = [listed(f"{i}/3") for i in (1, 2, 3)]
    assert auto == explicit and all(auto)
    assert sorted(c for shard in auto for c in shard) == sorted(listed("1/1"))
    slurm = listed("auto", SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_TASK_MIN="1", SLURM_ARRAY_TASK_COUNT="3")
    assert slurm == explicit[1]
    for name in SCHEDULER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert main(["nightly", str(EXAMPLE), "--list", "--shard", "auto"]) == 2
    err = capsys.readouterr().err
    assert "found no shard" in err and "Traceback" not in err


def test_docs_show_a_kubernetes_indexed_job_and_a_slurm_array_with_shard_auto() -> None:
    text = (ROOT / "docs" / "nightly.md").read_text(encoding="utf-8")
    job = text[text.index("kind: Job"):]
    job = job[: job.index("```")]
    assert "completionMode: Indexed" in job and "completions: 4" in job and '"--shard", "auto/4"' in job
    slurm = text[text.index("#SBATCH --array=1-4"):]
    assert "--shard auto" in slurm[: slurm.index("```")]
    assert "trtbuild report /shared/bench_results" in " ".join(text.split())
