"""``trtbuild nightly``: run a benchmark suite, one isolated process per case, and gate it against history."""

from __future__ import annotations

import argparse

EPILOG = """\
exit codes (for CI):
  0  pass: every case ran, none regressed (or no baseline yet)
  1  regression: a case is slower than its baseline beyond its threshold, or failed its accuracy check
  2  usage or configuration error (bad suite file, unknown run id, ...)
  3  broken run: a case crashed, hung past its timeout, exceeded its memory limit or raised
     (3 wins over 1; the regressions are still listed and saved)

results: <results>/nightly/<UTC time>-<host>-<random>/ holds run.json, cases/, samples/, logs/, gate.json;
`trtbuild report <results>` renders the history. Format and recipes (cron, GitHub Actions, Jetson):
docs/nightly.md; suite format: suites/README.md.

examples:
  trtbuild nightly suites/example.toml
  trtbuild nightly suites/example.toml --list
  trtbuild nightly suites/gpu.toml --results /shared/bench_results --shard 2/4
  trtbuild nightly suites/gpu.toml --results /shared/bench_results --shard auto   # Slurm array, GitLab
  trtbuild nightly suites/gpu.toml --resume                  # finish the last interrupted run
  trtbuild nightly suites/gpu.toml --baseline 20260101T020000Z-gpu01-3fa2c1
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "nightly",
        help="run a nightly benchmark suite (isolated cases, results history, regression gate)",
        description="Run every case of a suite (model x precision x backend x shape) in its own process with a "
        "timeout and a memory watch, save each case as it finishes, and gate the run against the last good "
        "run on the same device: a case regresses when the lower end of the bootstrap confidence interval of "
        "its median time ratio is above the suite's threshold.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("suite", help="suite file (TOML, see suites/README.md)")
    parser.add_argument("--results", default="bench_results", metavar="DIR",
                        help="results folder (default: bench_results); may be shared by several hosts")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="RUN",
                        help="continue the latest run of this suite from this host (or run RUN): cases already "
                        "recorded are not run again")
    parser.add_argument("--shard", metavar="I/N|auto[/N]",
                        help="run only shard I of N (1-based; deterministic split by case id). auto: from the "
                        "scheduler: TRTBUILD_SHARD=I/N, Kubernetes Indexed Jobs (JOB_COMPLETION_INDEX, with "
                        "auto/N), Slurm arrays (SLURM_ARRAY_TASK_ID/COUNT), GitLab (CI_NODE_INDEX/TOTAL)")  # fmt: skip
    parser.add_argument("--only", action="append", default=[], metavar="GLOB",
                        help="run only cases whose id matches GLOB (repeatable)")
    parser.add_argument("--baseline", metavar="RUN", help="compare with this run instead of the last good one")
    parser.add_argument("--accept", action="store_true",
                        help="make this run the new baseline even where it regressed (after an intended change); "
                        "regressions are listed, the exit code is 0 unless cases failed")
    parser.add_argument("--no-gate", action="store_true", help="run and save, but do not compare with a baseline")
    parser.add_argument("--list", action="store_true", help="print the case ids (after --only/--shard) and exit")
    parser.add_argument("--timing-cache", metavar="FILE",
                        help="TensorRT timing cache shared by the builds (default: <results>/timing-cache/<gpu>-trt<version>.cache)")
    parser.add_argument("--keep-work", action="store_true", help="keep the run's work/ folder (engines, converted models)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from trtbuild.nightly import plan_cases, run_suite
    from trtbuild.nightly.suite import load_suite

    suite = load_suite(args.suite)
    if args.list:
        cases = plan_cases(suite, only=args.only, shard=args.shard)
        for case in cases:
            print(case.id)
        return 0
    outcome = run_suite(
        suite,
        results=args.results,
        resume=args.resume,
        shard=args.shard,
        only=args.only,
        baseline=args.baseline,
        accept=args.accept,
        gate=not args.no_gate,
        keep_work=args.keep_work,
        timing_cache=args.timing_cache,
        show_progress=True,
        command=["trtbuild", *sys.argv[1:]] if sys.argv[1:2] == ["nightly"] else None,
    )
    if args.json:
        data = {"run_id": outcome.run_id, "run_dir": str(outcome.run_dir), "exit_code": outcome.exit_code,
                "ran": outcome.ran, "already_recorded": outcome.skipped_resume, "statuses": outcome.statuses,
                "gate": outcome.gate.to_dict() if outcome.gate else None}  # fmt: skip
        print(json.dumps(data, indent=2))
        return outcome.exit_code
    if outcome.gate is not None:
        for line in outcome.gate.summary_lines():
            print(line)
    print(f"results: {outcome.run_dir}")
    return outcome.exit_code
