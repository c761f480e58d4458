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
    from rich.table import Table

    from trtbuild.console import get_console

    table = Table(title="trtbuild doctor", title_justify="left")
    for column in ("component", "status", "details", "how to get it"):
        table.add_column(column, overflow="fold")
    for check in checks:
        status = "[green]found[/green]" if check.found else "[yellow]missing[/yellow]"
        table.add_row(check.name, status, check.detail, "" if check.found else check.how)
    get_console().print(table)
    return 0
