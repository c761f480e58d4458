"""``trtbuild inspect``: what is inside an ONNX model (or, from the Builder work, an engine)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect",
        help="describe an ONNX model or engine: I/O, opset, ops, weights, TensorRT parsability",
        description="Describe an ONNX model: inputs and outputs with symbolic dims, opset, IR version, producer, "
        "op histogram, initializer bytes, external data, onnx.checker result, and ops TensorRT cannot parse. "
        "For an engine (.engine/.plan/.trt): its manifest, I/O tensors, profiles, layers and whether this host "
        "can run it.",
        epilog="examples:\n  trtbuild inspect model.onnx\n  trtbuild inspect zoo:yolo --json\n"
        "  trtbuild inspect model.onnx --netron\n  trtbuild inspect model.engine --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("model", help="ONNX file (or zoo:NAME), or an engine (.engine/.plan/.trt)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--netron", action="store_true", help="also open the model in Netron (needs `pip install netron`)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from trtbuild.engine_file import is_engine_path

    if is_engine_path(args.model):
        return run_engine(args)
    from trtbuild.model.inspect import inspect_model

    report = inspect_model(args.model)
    from trtbuild.cli.build import check_model

    check_model(report)  # an empty file or opset 99 is not a model to describe as if it were one
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


# --------------------------------------------------------------------------------------------------
# Engines (.engine/.plan/.trt)


def run_engine(args: argparse.Namespace) -> int:
    import json

    from trtbuild.engine_file import inspect_engine

    report = inspect_engine(args.model, verbose=getattr(args, "verbose", False))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_engine_report(report)
    return 0


def _shape(dims: object) -> str:
    if not isinstance(dims, (list, tuple)):
        return str(dims)
    return "[" + ", ".join(str(d) for d in dims) + "]"


def print_engine_report(report: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    from trtbuild.console import get_console

    console = get_console()
    console.print(f"[bold]{escape(report['path'])}[/bold]  ({report['size']} bytes, TensorRT plan)")
    if report.get("plan_header_version"):
        console.print(f"  plan header: TensorRT {report['plan_header_version']}")
    summary = report.get("summary")
    if summary:
        gpu = summary.get("gpu") or {}
        console.print(f"  built with TensorRT {summary['tensorrt']} on {escape(str(gpu.get('name', 'unknown GPU')))} "
                      f"(compute capability {gpu.get('compute_capability', '?')}), {summary['platform']}")  # fmt: skip
        if summary.get("jetson"):
            console.print("  Jetson: " + ", ".join(f"{k} {v}" for k, v in summary["jetson"].items()))
        compat = summary.get("compatibility") or {}
        console.print(f"  compatibility: hardware {compat.get('hardware')}, version-compatible "
                      f"{'yes' if compat.get('version_compatible') else 'no'}"
                      + (", lean runtime excluded" if compat.get("exclude_lean_runtime") else "")
                      + (f", runtime platform {compat.get('runtime_platform')}"
                         if compat.get("runtime_platform") not in (None, "SameAsBuild") else ""))  # fmt: skip
        precision = summary.get("precision") or {}
        console.print(f"  precision: {escape(str(precision.get('path', '?')))}")
        if summary.get("dla_core") is not None:
            console.print(f"  DLA core {summary['dla_core']}")
        console.print(f"  ONNX {escape(str(summary.get('onnx')))} (sha256 {str(summary.get('onnx_sha256'))[:16]}...)")
        console.print(f"  built {summary.get('built_at')} in {summary.get('build_time_s')} s by trtbuild "
                      f"{summary.get('trtbuild_version')}")  # fmt: skip
    else:
        console.print("  [yellow]no manifest: TensorRT version, GPU and build options unknown[/yellow]")
    source = {"engine": "from the deserialized engine", "manifest": "from the manifest"}.get(report["source"], "")
    if report.get("io"):
        io = Table(show_edge=False, box=None, pad_edge=False, title=f"I/O tensors {source}", title_justify="left")
        for column in ("", "name", "dtype", "shape"):
            io.add_column(column)
        for t in report["io"]:
            io.add_row(t.get("mode", ""), escape(t["name"]), t.get("dtype", ""), _shape(t.get("shape")))
        console.print(io)
    if report.get("profiles"):
        table = Table(title=f"Optimization profiles {source}", title_justify="left")
        for column in ("profile", "input", "min", "opt", "max"):
            table.add_column(column)
        for index, profile in enumerate(report["profiles"]):
            for name, rng in profile.items():
                table.add_row(str(index), escape(name), _shape(rng["min"]), _shape(rng["opt"]), _shape(rng["max"]))
        console.print(table)
    layers = report.get("layers")
    if layers and layers.get("layers"):
        if layers.get("detailed"):
            table = Table(title=f"Layers ({len(layers['layers'])})", title_justify="left")
            for column in ("layer", "type", "tactic", "outputs"):
                table.add_column(column)
            for layer in layers["layers"]:
                outs = ", ".join(f"{o.get('name')} {o.get('type')}" for o in layer.get("outputs", []))
                table.add_row(escape(layer["name"]), str(layer.get("type", "")), escape(str(layer.get("tactic", ""))),
                              escape(outs))  # fmt: skip
            console.print(table)
        else:
            console.print(f"  {len(layers['layers'])} layers (names only; build with --profilingVerbosity=detailed "
                          "for types, tactics and precisions)")  # fmt: skip
    if report.get("engine_error"):
        console.print(f"  [red]{escape(report['engine_error'])}[/red]")
    verdict = report["verdict"]
    colour = {True: "green", False: "red"}.get(verdict["ok"], "yellow")
    console.print(f"[{colour}]{escape(verdict['reason'])}[/{colour}]")
    for warning in verdict.get("warnings", []):
        console.print(f"  [yellow]{escape(warning)}[/yellow]")
