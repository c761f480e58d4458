"""``trtbuild doctor``: what this machine has for building and running engines."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check Python, GPU, driver, CUDA, TensorRT, PyCUDA, ONNX Runtime, torch, Jetson details",
        description="List each component trtbuild can use, whether it was found, its version, and how to get it.",
        allow_abbrev=False,
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from trtbuild.doctor import run_checks

    checks = run_checks()
    if args.json:
        print(json.dumps([c.to_dict() for c in checks], indent=2))
        return 0
    from trtbuild.console import fit_table

    rows = []
    for check in checks:
        detail = check.detail if check.found or not check.how else f"{check.detail}. Get it: {check.how}"
        rows.append([check.name, "found" if check.found else "missing", detail])
    lines, _ = fit_table(["component", "status", "details (and how to get what is missing)"], rows,
                         wrap={"details (and how to get what is missing)"})  # fmt: skip
    print("trtbuild doctor")
    print("\n".join(lines))
    return 0
