"""``trtbuild report``: Markdown and self-contained HTML over the nightly history (trends, regressions)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="render the nightly history as Markdown and a self-contained HTML page with trend plots",
        description="Read every nightly run under the results folder(s) (runs from several hosts and shards merge), "
        "and write index.html (plots embedded), report.md and plots/*.png: the latest results per device, the "
        "regressions found, and trend plots per model, backend, precision and device.",
        epilog="examples:\n  trtbuild report bench_results/\n  trtbuild report bench_results/ --since 30d -o report/\n"
        "  trtbuild report hostA/bench_results hostB/bench_results -o fleet-report/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("results", nargs="*", default=["bench_results"],
                        help="results folder(s) written by `trtbuild nightly` (default: bench_results)")
    parser.add_argument("--since", metavar="AGE", help="only runs started within AGE (30d, 12h, 2w) or since a date")
    parser.add_argument("-o", "--output", metavar="DIR", help="output folder (default: <first results folder>/report)")
    parser.add_argument("--suite", help="only runs of this suite")
    parser.add_argument("--title", default="trtbuild nightly report", help="page title")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from trtbuild.nightly.report import write_report

    files = write_report(args.results, args.output, since=args.since, suite=args.suite, title=args.title)
    flagged = files.history.flagged()
    print(f"{len(files.history.runs)} run(s), {len(files.history.rows)} case result(s), {len(flagged)} flagged")
    print(f"html: {files.html}")
    print(f"markdown: {files.markdown}")
    for path in files.plots.values():
        print(f"plot: {path}")
    for folder, why in files.history.skipped.items():
        print(f"skipped: {folder} (malformed run.json: {why})")
    return 0
