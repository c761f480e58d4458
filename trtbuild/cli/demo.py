"""``trtbuild demo``: the whole path on the built-in detector, with whatever this machine has."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the main job on the built-in YOLO-style detector (CPU backends without a GPU)",
        description="Export the built-in detector to ONNX, inspect it, plan the TensorRT build with a dynamic "
        "profile and print the trtexec equivalent; with TensorRT and a GPU present, build the engine too.",
        allow_abbrev=False,
    )
    parser.add_argument("--out", default="demo_out", help="folder for the demo's files (default: demo_out)")
    parser.add_argument("--model", default="yolo", help="zoo model to use (default: yolo)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trtbuild import zoo
    from trtbuild.cli._plan_output import print_plan
    from trtbuild.cli.inspect import print_model_report
    from trtbuild.console import get_console
    from trtbuild.errors import MissingDependencyError
    from trtbuild.model.inspect import inspect_model
    from trtbuild.plan import plan_build
    from trtbuild.shapes import Profile, ShapeRange
    from trtbuild.spec import BuildSpec

    console = get_console()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = zoo.get(args.model)

    console.rule(f"1. export zoo:{model.name} to ONNX")
    onnx_path = zoo.export_zoo_onnx(model.name, out / f"{model.name}.onnx")
    console.print(f"wrote {onnx_path}")

    console.rule("2. inspect")
    print_model_report(inspect_model(onnx_path))

    console.rule("3. plan the TensorRT build (dynamic profile)")
    spec = BuildSpec(onnx=str(onnx_path))
    spec.build.profiles = [Profile({n: ShapeRange(*r) for n, r in model.profile.items()})]
    spec.build.save_engine = str(out / f"{model.name}.engine")
    plan = plan_build(spec, onnx_path)
    print_plan(plan)

    console.rule("4. build the engine")
    try:
        from trtbuild.build import build_from_plan

        engine = build_from_plan(plan)
        console.print(f"built {engine}")
    except MissingDependencyError as exc:
        console.print(f"skipped: {str(exc).split('. ')[0]} (the steps above need no GPU).")
    return 0
