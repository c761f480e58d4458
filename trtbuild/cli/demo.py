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
    from trtbuild.cli.compare import print_report
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = zoo.get("yolo")
    timing = TimingOptions.quick()
    cpu_profile = profile_from_flags(**CPU_PROFILE)

    console.rule("1. export zoo:yolo to ONNX (dynamic batch, height, width) with a PyTorch reference")
    exported = export("zoo:yolo", out / "yolo.onnx", dynamic="images:0,2,3")
    console.print(f"wrote {exported.onnx_path} and {exported.reference_path}")

    console.rule("2. inspect")
    print_model_report(inspect_model(exported.onnx_path))

    console.rule("3. compare ONNX Runtime against PyTorch at min, opt and max")
    report = compare(exported.onnx_path, ["ort", "torch"], profile=cpu_profile)
    print_report(report)
    report.raise_for_failure()

    console.rule("4. benchmark ONNX Runtime and PyTorch on the CPU (batch 1 and 2, quick timing)")
    table = bench(exported.onnx_path, ["ort", "torch"], shapes="images:1x3x320x320", batch_sweep=[1, 2],
                  timing=timing, out_dir=out / "bench_results")  # fmt: skip
    print_table(table)
    console.print(f"tables and plots in {out / 'bench_results'} (CPU figures, not TensorRT ones)")

    console.rule("5. plan the TensorRT build (dynamic profile)")
    spec = BuildSpec(onnx=exported.onnx_path)
    spec.build.profiles = [Profile({n: ShapeRange(*r) for n, r in model.profile.items()})]
    spec.build.save_engine = str(out / "yolo.engine")
    plan = plan_build(spec, exported.onnx_path)
    print_plan(plan)

    console.rule("6. build, compare and benchmark the TensorRT engine")
    try:
        from trtbuild.build import build_from_plan

        engine = build_from_plan(plan)
    except MissingDependencyError as exc:
        console.print(f"skipped: {str(exc).split('. ')[0]}. Steps 1-5 need no GPU.")
        return 0
    print_report(compare(exported.onnx_path, ["ort"], engine=engine, profile=cpu_profile))
    print_table(bench(engine, ["trt"], shapes="images:4x3x640x640", out_dir=out / "bench_results"))
    return 0
