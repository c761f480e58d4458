"""``trtbuild pack``: bundle the ONNX, the checked build options and caches into a recipe for a device."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trtbuild.cli._buildflags import add_build_options, add_dialect_option

if TYPE_CHECKING:
    from trtbuild.plan import BuildPlan

EPILOG = """\
A recipe is a tar file: the ONNX (and its external data), the checked BuildSpec (spec.json), the
--calib and --timingCacheFile files when given, and recipe.json with the sha256 of each. Copy it to
the device (a Jetson cannot use an engine built on x86) and build there with the same options:

  trtbuild build --recipe model.recipe.tar [-o model.engine] [--timingCacheFile cache.bin] [--dry-run]

The options are checked against the model before anything is written, as `build --dry-run` does.

examples:
  trtbuild pack model.onnx --min 1x3x640x640 --max 16x3x640x640 --fp16 -o yolo.recipe.tar
  trtbuild pack model.onnx --profiles yolo640 --int8 --calib calib.cache --trtexec-version 10 -o yolo-int8.tar
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pack",
        help="bundle ONNX + build options + caches into a checked recipe; build it on the device with build --recipe",
        description="Validate the build options against the model and write a recipe tar that `trtbuild build "
        "--recipe` turns into an engine on the target device (Jetson or another GPU).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        conflict_handler="resolve",  # -o/--output is the recipe here; --saveEngine names the engine inside it
    )
    parser.add_argument("model", help="ONNX file, or zoo:NAME for a built-in model")
    parser.add_argument("--json", action="store_true", help="print what was packed as JSON")
    add_dialect_option(parser)
    add_build_options(parser)
    from trtbuild.cli.quantize import add_calib_arguments

    add_calib_arguments(parser, include_cache=False)  # the data is packed; --calib (the cache) is a build option
    parser.add_argument(
        "--precision-path", choices=("flags", "onnx"), default=None,
        help="how --fp16/--int8 are met, as in `trtbuild build`: builder flags (TensorRT <= 10 default) or converting "
        "the ONNX first (the only way on TensorRT 11)",
    )
    from trtbuild.cli.build import add_repair_option

    add_repair_option(parser)
    parser.add_argument("-o", "--output", dest="recipe_out", metavar="RECIPE.tar",
                        help="the recipe file to write (default: MODEL.recipe.tar in the current folder; "
                        ".tar.gz or .tgz compresses it). --saveEngine ENGINE sets the engine's name that "
                        "`build --recipe` writes on the device")  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from trtbuild.cli.build import check_plan_inputs, spec_from_args
    from trtbuild.cli.quantize import calib_options_from_args
    from trtbuild.fsutil import check_output_file
    from trtbuild.plan import plan_build
    from trtbuild.recipe import pack

    spec = spec_from_args(args)
    out = args.recipe_out or _default_output(args.model)
    check_output_file(out, "recipe")
    calib = calib_options_from_args(args)
    check_plan_inputs(plan_build(spec, args.model, trtexec_version=args.trtexec_version,  # type: ignore[arg-type]
                                 calib=calib, precision_path=args.precision_path, repair=args.repair))  # fmt: skip
    result = pack(spec, out, model=args.model, trtexec_version=args.trtexec_version,  # type: ignore[arg-type]
                  calib=calib, precision_path=args.precision_path, repair=args.repair)  # fmt: skip
    if args.json:
        print(json.dumps({"recipe": str(result.path), "sha256": result.sha256, "size": result.size,
                          "manifest": result.manifest}, indent=2))  # fmt: skip
        return 0
    print(f"recipe  {result.path} ({_size(result.size)}, sha256 {result.sha256})")
    for entry in result.files:
        print(f"  {entry.path:<40} {_size(entry.size):>10}  {entry.sha256[:16]}")
    print(f"written for TensorRT {result.manifest['target_tensorrt_major']}.x; on the device run:")
    print(f"  trtbuild build --recipe {Path(result.path).name}")
    return 0


def _default_output(model: str) -> str:
    from pathlib import Path

    stem = model[4:] if model.startswith("zoo:") else Path(model).stem
    return f"{stem}.recipe.tar"


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def plan_from_recipe_args(args: argparse.Namespace) -> BuildPlan:
    """``build --recipe``: the plan from the unpacked recipe, with the recipe's sha256 in it."""
    from trtbuild.errors import SpecError
    from trtbuild.recipe import plan_from_recipe

    if args.model is not None:
        raise SpecError(f"Give either a model ({args.model}) or --recipe, not both: the recipe holds its own model.")
    if args.profiles:
        raise SpecError("--profiles cannot be combined with --recipe: the recipe carries its profiles; pack a new one.")
    if (getattr(args, "calib_data", None) or getattr(args, "precision_path", None) or getattr(args, "calib_random", False)
            or getattr(args, "repair", False)):  # fmt: skip
        raise SpecError("--calib-data, --calib-random, --precision-path and --repair cannot be combined with --recipe: the "
                        "recipe carries its calibration data and precision choices; pack a new one.")  # fmt: skip
    allowed = [name.strip() for value in args.allow_plugins for name in value.split(",") if name.strip()]
    max_size = None
    if args.recipe_max_size:
        from trtbuild.spec import parse_size

        max_size = parse_size(args.recipe_max_size, default_unit="B", what="--recipe-max-size")
    return plan_from_recipe(args.recipe, recipe_dir=args.recipe_dir, overrides=args.trtexec_pairs,
                            trtexec_version=args.trtexec_version, allow_plugins=allowed,
                            max_size=max_size)  # fmt: skip
