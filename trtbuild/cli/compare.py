"""``trtbuild compare``: outputs of TensorRT, ONNX Runtime and PyTorch side by side (Polygraphy)."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
runners (--against, comma-separated; the last one is the reference unless --reference names another):
  ort                         ONNX Runtime on MODEL (CPU; ort:CUDAExecutionProvider or ort:cuda for a GPU)
  ort:other.onnx              ONNX Runtime on another ONNX file
  torch                       the PyTorch reference: for zoo:NAME the zoo module; for a model written by
                              `trtbuild export` the .pt2/.ts saved beside it
  torch:model.pt2|model.ts    a saved reference; torch:zoo:NAME; torch:net.py:build; add @cuda for a device
  --engine model.engine       adds the TensorRT engine as the first runner ("trt")

inputs (every feed has explicit shapes; nothing defaults to batch 1):
  seeded (--seed, --val-range) at each corner of the profile: min, opt and max from --min/--opt/--max
  (trtexec grammar, like build), else the engine manifest's profile, else a zoo model's own profile;
  or --data file.npz (one array per input name) or --data folder/ (images, resized to the opt shape).

tolerances (Polygraphy's rule, not numpy's):
  an element FAILS only if |a-b| > atol AND |a-b|/|b| > rtol, b being the reference's value: meeting
  either tolerance passes. Defaults by --precision: fp32 atol 1e-4 rtol 1e-3; fp16 atol 1e-2 rtol 1e-2;
  int8 atol 5e-2 rtol 5e-2 on the mean error. Per output: --atol output0:1e-3 --rtol logits:1e-2;
  --check-error-stat max|mean|median|quantile|elemwise (default elemwise: every element must pass).
  A failure names the output, its shape and the atol/rtol that would have passed.

examples:
  trtbuild compare model.onnx --against ort,torch --min images:1x3x320x320 --max images:2x3x640x640
  trtbuild compare zoo:resnet --against ort,torch --min input:1x3x224x224 --max input:2x3x224x224
  trtbuild compare model.onnx --engine model.engine --against ort --precision fp16 --json report.json
  trtbuild compare two.onnx --against ort,torch --data inputs.npz --atol output:1e-3 --markdown report.md
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "compare",
        help="compare outputs across TensorRT, ONNX Runtime and PyTorch (Polygraphy)",
        description="Run the model in two or more runners on the same inputs and compare every output with "
        "Polygraphy's Comparator: error statistics per output, a table, JSON/Markdown reports, non-zero exit on "
        "failure.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("model", help="ONNX file (or zoo:NAME)")
    parser.add_argument("--against", default="ort,torch", metavar="RUNNERS",
                        help="runners, comma-separated (default: ort,torch)")
    parser.add_argument("--engine", metavar="FILE", help="a TensorRT engine to compare (first runner, 'trt')")
    parser.add_argument("--reference", metavar="NAME", help="the runner the others are compared with (default: the last)")
    shapes = parser.add_argument_group("input shapes and data")
    shapes.add_argument("--min", "--minShapes", dest="min", metavar="SHAPES", help="min corner, like images:1x3x320x320")
    shapes.add_argument("--opt", "--optShapes", dest="opt", metavar="SHAPES", help="opt corner")
    shapes.add_argument("--max", "--maxShapes", dest="max", metavar="SHAPES", help="max corner")
    shapes.add_argument("--shapes", metavar="SHAPES", help="one fixed shape (min = opt = max)")
    shapes.add_argument("--data", metavar="FILE.npz|DIR", help="user inputs: .npz keyed by input name, or an image folder")
    shapes.add_argument("--seed", type=int, default=0, help="seed for generated inputs (default: 0)")
    shapes.add_argument("--val-range", default="0,1", metavar="LO,HI", help="range of generated values (default: 0,1)")
    tol = parser.add_argument_group("verdict (docs/precision.md lists the limits)")
    tol.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                     help="the candidate's precision; sets the verdict's limits (default: fp32)")
    tol.add_argument("--output-kind", action="append", metavar="NAME:KIND",
                     help="what an output is, for its task measure: classify, sequence, segment, detect or regress "
                     "(default: inferred from shape, range and name)")
    tol.add_argument("--atol", action="append", metavar="[OUTPUT:]VALUE",
                     help="also require Polygraphy's element-wise check with this absolute tolerance")
    tol.add_argument("--rtol", action="append", metavar="[OUTPUT:]VALUE",
                     help="also require Polygraphy's element-wise check with this relative tolerance")
    tol.add_argument("--check-error-stat", action="append", metavar="[OUTPUT:]STAT",
                     help="elemwise, max, mean, median or quantile (0.99) for --atol/--rtol")
    tol.add_argument("--top-k", type=int, default=5, help="k for top-k agreement of 2-D outputs (default: 5)")
    out = parser.add_argument_group("reports")
    out.add_argument("--json", metavar="FILE", help="write the report as JSON")
    out.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
    out.add_argument("--verbose", action="store_true", help="show Polygraphy's own log")
    parser.set_defaults(run=run)


def _val_range(text: str) -> tuple[float, float]:
    from trtbuild.errors import SpecError

    try:
        lo, hi = (float(v) for v in text.replace("[", "").replace("]", "").split(","))
    except ValueError:
        raise SpecError(f"--val-range '{text}': give two numbers, like 0,1 or -1,1.") from None
    if lo > hi:
        raise SpecError(f"--val-range '{text}': the low end is above the high end.")
    return lo, hi


def run(args: argparse.Namespace) -> int:
    from trtbuild.compare import compare
    from trtbuild.fsutil import atomic_write_json, atomic_write_text
    from trtbuild.verdict import parse_output_kinds

    report = compare(
        args.model,
        args.against,
        engine=args.engine,
        reference=args.reference,
        min=args.min,
        opt=args.opt,
        max=args.max,
        shapes=args.shapes,
        data=args.data,
        precision=args.precision,
        atol=args.atol,
        rtol=args.rtol,
        check_error_stat=args.check_error_stat,
        seed=args.seed,
        val_range=_val_range(args.val_range),
        top_k=args.top_k,
        verbose=args.verbose,
        output_kinds=parse_output_kinds(args.output_kind),
    )
    print_report(report)
    if args.json:
        atomic_write_json(args.json, report.to_dict())
    if args.markdown:
        atomic_write_text(args.markdown, report.to_markdown())
    report.raise_for_failure()
    return 0


def print_report(report: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from trtbuild.console import get_console
    from trtbuild.shapes import format_dims

    console = get_console()
    if not console.is_terminal:
        console.width = 200  # piped or captured: keep each row on one line instead of rich's 80 columns
    console.print(
        f"[bold]{escape(report.model)}[/bold]: {', '.join(escape(r['name']) for r in report.runners)}; "
        f"reference {escape(report.reference)}; precision {report.precision} "
        f"(the accuracy verdict for {report.precision} decides; '?' = output kind inferred, --output-kind sets it)"
    )
    table = Table(show_edge=False, pad_edge=False)
    has_topk = any(r.top1 is not None for r in report.results)
    columns = ["pair", "feed", "output", "shape", "kind", "max abs", "max rel", "cosine", "task measure"]
    columns += ["top-k"] if has_topk else []
    for c in [*columns, "result"]:
        table.add_column(c, justify="right" if c in ("max abs", "max rel", "mean abs", "cosine", "top-1", "top-k") else "left")
    for r in report.results:
        measure = "—" if r.measure_name is None else (
            f"{r.measure_name} " + ("n/a" if r.measure is None else f"{r.measure:.1%}")
        )
        row = [escape(f"{r.candidate} vs {r.reference}"), escape(r.feed), escape(r.output), format_dims(r.shape),
               escape(r.kind or "—"), f"{r.max_abs:.3g}", f"{r.max_rel:.3g}",
               "—" if r.cosine is None else f"{r.cosine:.6f}", escape(measure)]
        if has_topk:
            row += ["—" if r.topk is None else f"{r.topk:.0%} (k={r.k})"]
        row.append("[green]pass[/green]" if r.passed else f"[red]FAIL[/red] {escape(r.verdict or r.error or '')}")
        table.add_row(*row)
    console.print(table)
    feeds = "; ".join(f"{f['label']} " + ",".join(f"{n}:{s}" for n, s in f["shapes"].items()) for f in report.feeds)
    console.print(f"feeds: {escape(feeds)}")
    verdict = "[green]PASSED[/green]" if report.passed else "[red]FAILED[/red]"
    console.print(f"{verdict}: {sum(r.passed for r in report.results)}/{len(report.results)} output comparisons "
                  f"in {report.seconds:.1f} s")


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}:{v}" if k else f"{v}" for k, v in values.items())
