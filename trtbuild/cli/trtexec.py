"""``trtbuild trtexec``: take a pasted trtexec command line and do what ``build`` does with it."""

from __future__ import annotations

import argparse

EPILOG = """\
Everything after the sub-command is read exactly as trtexec reads it (--key=value only; a space-separated
value is an error, as in trtexec). --dry-run, --json and --trtexec-version=N belong to trtbuild.

examples:
  trtbuild trtexec --onnx=m.onnx --minShapes=input:1x3x224x224 --optShapes=input:8x3x224x224 \\
      --maxShapes=input:16x3x224x224 --fp16 --saveEngine=m.engine --memPoolSize=workspace:1024M --dry-run
  trtbuild trtexec --onnx=m.onnx --shapes=input:1x3x224x224 --trtexec-version=11 --dry-run
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "trtexec",
        help="accept a trtexec command line (--onnx=... [flags]) and build or --dry-run it",
        description="Parse a trtexec command line into a BuildSpec, validate it against the model and build "
        "it (or print the plan with --dry-run). Removed and renamed flags are explained in one sentence.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        add_help=True,
    )
    parser.set_defaults(run=run, accepts_extra=True)


def run(args: argparse.Namespace) -> int:
    from trtbuild.cli._plan_output import print_plan
    from trtbuild.errors import SpecError
    from trtbuild.plan import plan_build
    from trtbuild.spec import BuildSpec

    dry_run = as_json = False
    dialect: int | None = None
    rest: list[str] = []
    for arg in args.extra:
        key, _, value = arg.partition("=")
        if key == "--dry-run":
            dry_run = True
        elif key == "--json":
            as_json = True
        elif key == "--trtexec-version":
            if value not in ("8", "10", "11"):
                raise SpecError("--trtexec-version takes 8, 10 or 11, written --trtexec-version=10.")
            dialect = int(value)
        else:
            rest.append(arg)
    if not rest:
        raise SpecError("No trtexec options given; start with --onnx=model.onnx.")
    spec = BuildSpec.from_trtexec_args(rest, dialect=dialect or 10)
    if spec.onnx is None:
        raise SpecError("Model missing: trtexec needs --onnx=model.onnx (trtbuild does not build from --loadEngine).")
    plan = plan_build(spec, spec.onnx, trtexec_version=dialect)
    from trtbuild.cli.build import check_plan_inputs, check_plan_outputs

    check_plan_inputs(plan)
    if dry_run:
        print_plan(plan, as_json=as_json)
        return 0
    check_plan_outputs(plan)
    from trtbuild.build import build_from_plan

    build_from_plan(plan)
    return 0
