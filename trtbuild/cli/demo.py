"""``trtbuild demo``: the whole path on the built-in detector, with whatever this machine has."""

from __future__ import annotations

import argparse

# Shapes small enough for two CPU cores; the TensorRT build keeps the zoo's full-size profile.
CPU_PROFILE = {"min": "images:1x3x160x160", "opt": "images:2x3x320x320", "max": "images:4x3x320x320"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the main job on the built-in YOLO-style detector (CPU backends without a GPU)",
        description="Export the built-in detector to ONNX (with a PyTorch reference), inspect it, compare ONNX "
        "Runtime against PyTorch at the profile's min/opt/max shapes, benchmark both on the CPU, and plan the "
        "TensorRT build; with TensorRT and a GPU present, build the engine, compare it and benchmark it too.",
        allow_abbrev=False,
    )
    parser.add_argument("--out", default="demo_out", help="folder for the demo's files (default: demo_out)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trtbuild import zoo
    from trtbuild.bench.run import bench
    from trtbuild.bench.timing import TimingOptions
    from trtbuild.cli._plan_output import print_plan
    from trtbuild.cli.bench import print_table
    from trtbuild.cli.inspect import print_model_report
    from trtbuild.compare import compare
    from trtbuild.console import get_console
    from trtbuild.errors import MissingDependencyError
    from trtbuild.model.export import export
    from trtbuild.model.inspect import inspect_model
    from trtbuild.plan import plan_build
    from trtbuild.shapes import Profile, ShapeRange, profile_from_flags
    from trtbuild.spec import BuildSpec

    console = get_console()
    title = _title
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = zoo.get("yolo")
    timing = TimingOptions.quick()
    cpu_profile = profile_from_flags(**CPU_PROFILE)

    title("1. export zoo:yolo to ONNX (dynamic batch, height, width) with a PyTorch reference")
    exported = export("zoo:yolo", out / "yolo.onnx", dynamic="images:0,2,3")
    console.print(f"wrote {exported.onnx_path} and {exported.reference_path}")

    title("2. inspect")
    print_model_report(inspect_model(exported.onnx_path))

    title("3. compare ONNX Runtime against PyTorch at min, opt and max")
    report = compare(exported.onnx_path, ["ort", "torch"], profile=cpu_profile)
    print_cross_check(report)
    report.raise_for_failure()

    title("4. benchmark ONNX Runtime and PyTorch on the CPU (batch 1 and 2, quick timing)")
    table = bench(exported.onnx_path, ["ort", "torch"], shapes="images:1x3x320x320", batch_sweep=[1, 2],
                  timing=timing, out_dir=out / "bench_results")  # fmt: skip
    print_table(table)
    console.print(f"tables and plots in {out / 'bench_results'} (CPU figures, not TensorRT ones)")

    title("5. plan the TensorRT build (dynamic profile)")
    spec = BuildSpec(onnx=exported.onnx_path)
    spec.build.profiles = [Profile({n: ShapeRange(*r) for n, r in model.profile.items()})]
    spec.build.save_engine = str(out / "yolo.engine")
    plan = plan_build(spec, exported.onnx_path)
    print_plan(plan)

    title("6. build, compare and benchmark the TensorRT engine")
    try:
        from trtbuild.build import build_from_plan

        engine = build_from_plan(plan)
    except MissingDependencyError as exc:
        from trtbuild.doctor import tensorrt_missing_reason

        _say(f"skipped: TensorRT is {tensorrt_missing_reason(str(exc))}. Steps 1-5 need no GPU; `trtbuild "
             "doctor` lists what this machine has.")  # fmt: skip
        return 0
    print_cross_check(compare(exported.onnx_path, ["ort"], engine=engine, profile=cpu_profile))
    print_table(bench(engine, ["trt"], shapes="images:4x3x640x640", out_dir=out / "bench_results"))
    return 0


def _say(text: str) -> None:
    """A paragraph wrapped at spaces to the terminal (80 columns in a pipe)."""
    import textwrap

    from trtbuild.console import terminal_width

    print("\n".join(textwrap.wrap(text, terminal_width(), break_long_words=False, break_on_hyphens=False)))


def _title(text: str) -> None:
    print()
    _say(f"== {text}")


#: Cross-check columns left out, in this order, while the table is wider than the terminal.
CROSS_CHECK_DROP = ("mean abs", "max rel", "shape")


def print_cross_check(report: object) -> None:
    """The comparison as a plain table fitted to the terminal: whole numbers, never cut."""
    from trtbuild.console import fit_table
    from trtbuild.shapes import format_dims

    header = ["pair", "feed", "output", "shape", "max abs", "max rel", "mean abs", "cosine", "result"]
    rows = [[f"{r.candidate} vs {r.reference}", r.feed, r.output, format_dims(r.shape), f"{r.max_abs:.3g}",
             f"{r.max_rel:.3g}", f"{r.mean_abs:.3g}", "-" if r.cosine is None else f"{r.cosine:.6f}",
             "pass" if r.passed else "FAIL"] for r in report.results]  # type: ignore[attr-defined]  # fmt: skip
    _say(f"{report.model}: reference {report.reference}, precision {report.precision}")  # type: ignore[attr-defined]
    lines, dropped = fit_table(header, rows, drop=CROSS_CHECK_DROP, wrap={"pair"},
                               right={"max abs", "max rel", "mean abs", "cosine"})  # fmt: skip
    print("\n".join(lines))
    if dropped:
        _say(f"(left out to fit: {', '.join(dropped)}; `trtbuild compare` prints every column)")
    passed = sum(r.passed for r in report.results)  # type: ignore[attr-defined]
    total = len(report.results)  # type: ignore[attr-defined]
    print(f"{'PASSED' if report.passed else 'FAILED'}: {passed}/{total} output comparisons")  # type: ignore[attr-defined]
