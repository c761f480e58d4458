"""``trtbuild inspect``: what is inside an ONNX model (or, from the Builder work, an engine)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect",
        help="describe an ONNX model or engine: I/O, opset, ops, weights, TensorRT parsability",
        description="Describe an ONNX model: inputs and outputs with symbolic dims, opset, IR version, producer, "
        "op histogram, initializer bytes, external data, onnx.checker result, and ops TensorRT cannot parse.",
        epilog="examples:\n  trtbuild inspect model.onnx\n  trtbuild inspect zoo:yolo --json\n"
        "  trtbuild inspect model.onnx --netron",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("model", help="ONNX file (or zoo:NAME)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--netron", action="store_true", help="also open the model in Netron (needs `pip install netron`)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from trtbuild.model.inspect import inspect_model

    report = inspect_model(args.model)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_model_report(report)
    if args.netron:
        open_in_netron(report.path)
    return 0


def print_model_report(report: object) -> None:
    from rich.markup import escape
    from rich.table import Table

    from trtbuild.console import get_console
    from trtbuild.model.inspect import ModelReport

    assert isinstance(report, ModelReport)
    console = get_console()
    console.print(f"[bold]{escape(report.path)}[/bold]")
    opsets = ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in report.opsets.items())
    console.print(f"  IR version {report.ir_version}; opsets: {opsets}; producer: {report.producer}")
    io = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("", "name", "dtype", "dims"):
        io.add_column(column)
    for kind, tensors in (("input", report.inputs), ("output", report.outputs)):
        for t in tensors:
            io.add_row(kind, escape(t.name), t.dtype, escape("[" + ", ".join("?" if d is None else str(d) for d in t.dims) + "]"))
    console.print(io)
    mib = report.initializer_bytes / (1 << 20)
    console.print(f"  {report.node_count} nodes, {report.initializer_count} initializers ({mib:.2f} MiB)")
    ops = ", ".join(f"{op} {n}" for op, n in report.op_histogram.items())
    console.print(f"  ops: {ops}")
    if report.external_data:
        console.print(f"  external data: {', '.join(report.external_data)}")
    console.print(f"  onnx.checker: {report.checker}")
    if report.trt_parsable:
        console.print("  TensorRT parser: every op is in the standard ONNX domain")
    else:
        if report.nonstandard_ops:
            bad = ", ".join(f"{op} x{n}" for op, n in report.nonstandard_ops.items())
            console.print(f"  [red]TensorRT parser: ops outside the standard domain need plugins: {bad}[/red]")
        if report.ort_only:
            console.print("  [red]saved by ONNX Runtime's extended/all optimizations: ONNX Runtime only[/red]")


def open_in_netron(path: str) -> None:
    from trtbuild.errors import MissingDependencyError

    try:
        import netron  # type: ignore[import-not-found]
    except ImportError:
        raise MissingDependencyError("--netron needs the netron package: pip install netron.") from None
    netron.start(path)
