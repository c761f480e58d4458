"""Does the nightly gate cry wolf, and does it catch a 10% slowdown? Measured on this machine.

Runs a suite N times unchanged (every run gated against the runs before it), then once more with the
test-only delay hook making one case 10% slower, and prints every verdict with its ratio and interval.

    python benchmarks/nightly_noise.py                       # suites/example.toml, 5 runs + 1 injected
    python benchmarks/nightly_noise.py --runs 8 --delay 'resnet-fp32-ort-*=0.10' --suite suites/example.toml

Numbers are CPU figures from the ONNX Runtime and PyTorch backends on this machine (TensorRT cases are
skipped where TensorRT is missing); they say how noisy this host is, nothing about a GPU.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default=str(ROOT / "suites" / "example.toml"))
    parser.add_argument("--runs", type=int, default=5, help="unchanged runs before the injected one (default 5)")
    parser.add_argument("--delay", default="resnet-fp32-ort-*=0.10", help="delay hook PATTERN=FRACTION")
    parser.add_argument("--results", help="results folder (default: a temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    from trtbuild.nightly import run_suite
    from trtbuild.nightly.suite import load_suite

    suite = load_suite(args.suite)
    results = Path(args.results or tempfile.mkdtemp(prefix="nightly-noise-"))
    pattern = args.delay.rpartition("=")[0]
    print(f"suite {suite.name} ({args.suite}); statistic {suite.gate['statistic']}; thresholds per case in the suite; "
          f"results in {results}")  # fmt: skip
    false_alarms: list[str] = []
    for i in range(args.runs + 1):
        injected = i == args.runs
        env = {"TRTBUILD_TEST_HOOKS": f"delay:{args.delay}"} if injected else {}
        start = time.perf_counter()
        outcome = run_suite(suite, results=results, child_env=env)
        gate = outcome.gate
        assert gate is not None
        label = f"injected ({args.delay})" if injected else f"unchanged run {i + 1}"
        print(f"\n== {label}: exit {outcome.exit_code}, {time.perf_counter() - start:.1f} s, {gate.counts()}")
        for case_id, verdict in gate.cases.items():
            if verdict.verdict in ("skipped",):
                continue
            detail = "; ".join(m.describe() for m in verdict.metrics) or verdict.reason
            print(f"  {verdict.verdict:12s} {case_id:28s} {detail}")
            if verdict.verdict in ("regression", "accuracy", "failed") and not injected:
                false_alarms.append(f"run {i + 1} {case_id}")
    import fnmatch

    flagged = {v.case_id for v in gate.by_verdict("regression")}
    target = {c for c in gate.cases if fnmatch.fnmatchcase(c, pattern)}
    print("\n== summary")
    print(f"unchanged runs: {args.runs}, false alarms: {len(false_alarms)} {false_alarms if false_alarms else ''}")
    print(f"injected slowdown on {sorted(target)}: flagged {sorted(flagged & target)}; other cases flagged: "
          f"{sorted(flagged - target) or 'none'}")  # fmt: skip
    ok = not false_alarms and flagged == target
    print("RESULT:", "PASS (no false alarm, the slowed case alone flagged)" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
