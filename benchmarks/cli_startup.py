"""How much `python -m trtbuild --help` adds to a bare interpreter start (median of interleaved runs).

Run: python benchmarks/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bare, cli = [], []
    for _ in range(args.runs):  # interleaved, so machine load hits both alike
        bare.append(_once([sys.executable, "-c", "pass"]))
        cli.append(_once([sys.executable, "-m", "trtbuild", "--help"]))
    b, c = statistics.median(bare), statistics.median(cli)
    print(f"python -c pass: {b * 1000:.0f} ms; python -m trtbuild --help: {c * 1000:.0f} ms")
    print(f"added by trtbuild: {(c - b) * 1000:.0f} ms (target: under 200 ms); ratio {c / b:.2f}")


if __name__ == "__main__":
    main()
