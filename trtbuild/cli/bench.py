"""``trtbuild bench``: time a model on TensorRT, ONNX Runtime and PyTorch the way trtexec does."""

from __future__ import annotations

import argparse

EPILOG = """\
timing (trtexec's method; reference: docs/bench.md):
  warm-up by time, then at least --iterations queries AND at least --duration seconds; percentiles with
  trtexec's float32 rule; throughput in queries/s (and samples/s = batch x qps). TensorRT is timed with CUDA
  events (host clock around execute_async_v3 only, two queries in flight); ONNX Runtime and PyTorch with
  the host clock around each inference. Defaults are trtexec 11's: CUDA graph on, no per-query transfers,
  spin-wait, 200 ms warm-up, >= 10 iterations, >= 3 s. --trtexec-defaults 10 starts from trtexec 10's
  (no graph, transfers on, blocking sync); the mode is printed and stored with every row.

examples:
  trtbuild bench zoo:yolo --backends ort,torch --batch-sweep 1,2,4 --quick
  trtbuild bench model.onnx --backends trt,ort --shapes images:1x3x640x640 --batch-sweep 1,2,4,8,16
  trtbuild bench model.engine --duration=10 --warmUp=500 --exportTimes=times.json
  trtbuild bench model.onnx --backends ort --shapes images:1x3x320x320 images:1x3x640x640 --out results/
  trtbuild bench model.onnx --backends ort,torch --data eval.npz --threads 1

columns: to fit the terminal (80 columns in a pipe) the printed table leaves out samples/s, p90 ms, CoV %
  and precision, in that order, then wraps shape and clock at spaces, then leaves out p99 ms and threads;
  a number is never cut, and the written tables keep every column.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench",
        help="time a model on TensorRT / ONNX Runtime / PyTorch like trtexec; write latency tables and plots",
        description="Time MODEL (an .onnx, zoo:NAME or an .engine) on each backend, shape set and batch size "
        "with trtexec's method; print trtexec-style performance summaries and write a LatencyTable (CSV, "
        "Markdown, JSON, Parquet with pyarrow) and PNG plots to bench_results/.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("model", help=".onnx file, zoo:NAME, or a TensorRT .engine")
    parser.add_argument("--backends", default=None,
                        help="comma-separated runners: trt[:ENGINE], ort[:PROVIDER], torch[@DEVICE] (default: trt for "
                        "an engine, else ort). trt without an engine uses MODEL.engine beside the ONNX; when "
                        "TensorRT is missing it is skipped with a note (an error if it is the only backend)")  # fmt: skip
    parser.add_argument("--shapes", nargs="+", action="extend", metavar="SPEC",
                        help="one or more shape sets in trtexec's grammar, e.g. images:1x3x640x640 (several inputs: "
                        "a:1x3,b:1x4). Default: the zoo's example shapes, an engine's opt shapes, or the ONNX's "
                        "static shapes")  # fmt: skip
    parser.add_argument("--batch-sweep", default=None, metavar="B1,B2,...",
                        help="batch sizes, e.g. 1,2,4,8,16, set on each input's batch axis: the symbolic dim the "
                        "inputs share (batch in state [2, batch, 128]), else a dynamic axis 0. A size that fails "
                        "is reported; the sizes already measured are kept")  # fmt: skip
    parser.add_argument("--data", metavar="FILE.npz|DIR",
                        help="real inputs instead of random ones: an .npz keyed by input name, a folder of images "
                        "(sized by --shapes), or a folder of .npy/.npz samples; the arrays set the shapes")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for ONNX Runtime (intra-op) and PyTorch (intra- and inter-op); default: "
                        "theirs. Every row records the thread counts, the CPU affinity and ONNX Runtime's "
                        "optimization level. With taskset, set N to the pinned cores")  # fmt: skip
    timing = parser.add_argument_group("timing (trtexec's names are accepted)")
    timing.add_argument("--warmUp", "--warm-up", dest="warm_up", type=float, default=None, metavar="MS",
                        help="warm-up in ms, judged on GPU (or host) time (default 200)")
    timing.add_argument("--iterations", type=int, default=None, metavar="N",
                        help="run at least N queries after the warm-up (default 10)")
    timing.add_argument("--duration", type=float, default=None, metavar="S",
                        help="run at least S seconds after the warm-up (default 3)")
    timing.add_argument("--quick", action="store_true",
                        help="CI-size runs: 50 ms warm-up, >= 10 iterations, >= 0.5 s (explicit values still win)")
    timing.add_argument("--percentile", default=None, metavar="P1,P2,...",
                        help="percentiles to report, each in [0, 100] (default 90,95,99)")
    timing.add_argument("--trtexec-defaults", type=int, choices=(10, 11), default=11,
                        help="start from trtexec 10's or 11's defaults for graph/transfers/spin-wait (default 11)")
    graph = timing.add_mutually_exclusive_group()
    graph.add_argument("--noCudaGraph", "--no-cuda-graph", dest="cuda_graph", action="store_false", default=None,
                       help="TensorRT: plain execute_async_v3, no CUDA graph")
    graph.add_argument("--useCudaGraph", "--cuda-graph", dest="cuda_graph", action="store_true",
                       help="TensorRT: replay a captured CUDA graph (trtexec 11's default)")
    transfers = timing.add_mutually_exclusive_group()
    transfers.add_argument("--includeDataTransfers", "--transfers", dest="transfers", action="store_true", default=None,
                           help="TensorRT: copy inputs in and outputs out on every query (trtexec 10's default)")
    transfers.add_argument("--noDataTransfers", "--no-transfers", dest="transfers", action="store_false",
                           help="TensorRT: time the GPU compute alone (trtexec 11's default)")
    spin = timing.add_mutually_exclusive_group()
    spin.add_argument("--useSpinWait", "--spin-wait", dest="spin_wait", action="store_true", default=None,
                      help="TensorRT: busy-wait on CUDA events (trtexec 11's default)")
    spin.add_argument("--noSpinWait", "--no-spin-wait", dest="spin_wait", action="store_false",
                      help="TensorRT: blocking-sync events (trtexec 10's default)")
    timing.add_argument("--useProfile", "--profile-index", dest="profile_index", type=int, default=None, metavar="N",
                        help="TensorRT: pin optimization profile N (default: the first profile that holds the shape)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", default="bench_results", metavar="DIR",
                     help="folder for the tables and plots (default: bench_results)")
    out.add_argument("--no-save", action="store_true", help="write no files; only print")
    out.add_argument("--no-plots", action="store_true", help="write tables but no PNG plots")
    out.add_argument("--exportTimes", "--export-times", dest="export_times", default=None, metavar="FILE",
                     help="per-query timing JSON with trtexec's exact keys (one file per run; several runs add "
                     "-NN-RUNNER-SHAPE to the name)")  # fmt: skip
    out.add_argument("--quiet", action="store_true", help="print only the final table, not each run's summary")
    out.add_argument("--seed", type=int, default=0, help="seed for the random inputs (default 0)")
    parser.set_defaults(run=run)


def timing_options(args: argparse.Namespace) -> object:
    """TimingOptions from the parsed flags: trtexec defaults, --quick, then explicit values."""
    from trtbuild.bench.stats import parse_percentiles
    from trtbuild.bench.timing import TimingOptions

    overrides: dict[str, object] = {}
    if args.warm_up is not None:
        overrides["warm_up_ms"] = args.warm_up
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    if args.duration is not None:
        overrides["duration_s"] = args.duration
    if args.percentile is not None:
        overrides["percentiles"] = parse_percentiles(args.percentile)
    for flag in ("cuda_graph", "transfers", "spin_wait"):
        if getattr(args, flag) is not None:
            overrides[flag] = getattr(args, flag)
    make = TimingOptions.quick if args.quick else TimingOptions.trtexec
    return make(args.trtexec_defaults, **overrides)


def parse_batches(text: str | None) -> list[int] | None:
    from trtbuild.errors import SpecError

    if text is None:
        return None
    try:
        batches = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise SpecError(f"--batch-sweep takes whole numbers separated by commas, like 1,2,4,8; not '{text}'.") from None
    if not batches or any(b < 1 for b in batches):
        raise SpecError(f"--batch-sweep sizes must be positive whole numbers, like 1,2,4,8; not '{text}'.")
    return batches


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trtbuild.bench.run import ENGINE_SUFFIXES, bench
    from trtbuild.bench.timing import TimingOptions

    options = timing_options(args)
    assert isinstance(options, TimingOptions)
    backends = args.backends or ("trt" if Path(args.model).suffix.lower() in ENGINE_SUFFIXES else "ort")
    table = bench(
        args.model,
        backends,
        shapes=args.shapes,
        batch_sweep=parse_batches(args.batch_sweep),
        timing=options,
        out_dir=None if args.no_save else args.out,
        plots=not args.no_plots,
        export_times=args.export_times,
        profile_index=args.profile_index,
        seed=args.seed,
        data=args.data,
        threads=args.threads,
        show_progress=True,
        echo=None if args.quiet else _echo,
    )
    print_table(table)
    if args.quiet:  # otherwise bench already said so before the first run
        for line in table.skipped:
            print(f"[I] Skipping {line}")
    if table.files:
        print("wrote:")
        for path in table.files.values():
            print(f"  {path}")
    if any(r.get("export_times") for r in table.rows):
        print("exportTimes: " + ", ".join(str(r["export_times"]) for r in table.rows if r.get("export_times")))
    if table.failed:
        from trtbuild.console import print_error

        print_error(f"{len(table.failed)} run(s) failed; the {len(table)} measured run(s) above are kept"
                    + (" and written" if table.files else "") + ": " + "; ".join(table.failed))  # fmt: skip
        return 1
    return 0


def _echo(text: str) -> None:
    print(text, flush=True)


#: Printed-table columns left out, in this order, while the table is wider than the terminal: the first
#: four before shape and mode wrap, the last two after.
DROP_ORDER = ("samples/s", "p90 ms", "CoV %", "precision", "p99 ms", "threads")
WRAP_AFTER = 4


def print_table(table: object, width: int | None = None) -> None:
    """The rows side by side (plain text, so it reads the same in a terminal, a pipe or a CI log), fitted
    to ``width`` (the terminal's) by leaving out DROP_ORDER's columns and wrapping shape and mode."""
    from trtbuild.bench.stats import format_number
    from trtbuild.bench.table import LatencyTable
    from trtbuild.console import fit_table

    assert isinstance(table, LatencyTable)
    if not len(table):
        return
    header = ["runner", "precision", "shape", "batch", "threads", "qps", "samples/s", "median ms", "p90 ms", "p99 ms",
              "CoV %", "clock"]  # fmt: skip
    rows = []
    for row in table.rows:
        mode = "host" if row["clock"] != "cuda-events" else f"GPU events, {row['cuda_graph']}"
        rows.append([
            str(row["runner"]), str(row["precision"]), str(row["shape"]).replace(",", ", "), str(row["batch"]),
            threads_cell(row), format_number(row["throughput_qps"]), format_number(row["throughput_samples_s"]),
            format_number(row["latency_median_ms"]), _cell(row, "latency_p90_ms"), _cell(row, "latency_p99_ms"),
            format_number(row["latency_cv_pct"]), mode,
        ])  # fmt: skip
    lines, dropped = fit_table(header, rows, width=width, drop=DROP_ORDER[:WRAP_AFTER], wrap={"shape", "clock"},
                               drop_after_wrap=DROP_ORDER[WRAP_AFTER:],
                               right={"batch", "threads", "qps", "samples/s", "median ms", "p90 ms", "p99 ms", "CoV %"})  # fmt: skip
    print()
    print("\n".join(lines))
    if dropped:
        import textwrap

        from trtbuild.console import terminal_width

        note = f"(left out to fit {width or terminal_width()} columns: {', '.join(dropped)}; the written tables keep them)"
        print("\n".join(textwrap.wrap(note, width or terminal_width(), break_long_words=False)))


def threads_cell(row: dict[str, object]) -> str:
    """intra/inter-op threads as the runtime reports them ("auto": its default), blank for TensorRT."""
    intra, inter = row.get("intra_op_threads"), row.get("inter_op_threads")
    if intra is None:
        return ""
    return "/".join(str(v) if v else "auto" for v in (intra, inter))


def _cell(row: dict[str, object], key: str) -> str:
    from trtbuild.bench.stats import format_number

    value = row.get(key)
    return format_number(value) if isinstance(value, float) else ""
