"""``trtbuild build``: ONNX -> TensorRT engine + manifest (or, with --dry-run, the checked plan)."""

from __future__ import annotations

import argparse
from typing import Any

from trtbuild.cli._buildflags import add_build_options, add_dialect_option

EPILOG = """\
shapes:
  --min/--opt/--max take trtexec's grammar: name:AxBxC[,name:AxBxC]; a bare 1x3x640x640 names the only
  dynamic input. Missing members are filled as trtexec does (min+max: opt=max; only --shapes: fixed).
  Several profiles: repeat --min/--opt/--max (the i-th of each forms profile i), use --profile N before
  each group as in trtexec, or --profiles FILE.toml.

examples:
  trtbuild build model.onnx --min 1x3x640x640 --max 16x3x640x640 --dry-run
  trtbuild build model.onnx --minShapes=images:1x3x640x640 --maxShapes=images:16x3x640x640 --fp16 -o m.engine
  trtbuild build model.onnx --profiles yolo640 --memPoolSize=workspace:4G --timingCacheFile=trt.cache
  trtbuild build model.onnx --min 1x3x640x640 --max 16x3x640x640 --dry-run --trtexec-version 11
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "build",
        help="build a TensorRT engine from ONNX (or --dry-run: validate and print the plan)",
        description="Build a TensorRT engine from an ONNX model. Every trtexec build option is accepted under "
        "its trtexec name; --dry-run checks shapes and options against the model and prints the plan and the "
        "equivalent trtexec command line, without TensorRT.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        conflict_handler="resolve",  # -o below takes over --output/--saveEngine from the build options
    )
    parser.add_argument("model", nargs="?", help="ONNX file, or zoo:NAME for a built-in model (omit with --recipe)")
    parser.add_argument("--recipe", metavar="RECIPE.tar", help="build from a recipe made by `trtbuild pack` (on the device)")
    parser.add_argument("--recipe-dir", metavar="DIR", help="where --recipe is unpacked (default: NAME.recipe/ beside the engine)")
    parser.add_argument(
        "--allow-plugins", action="append", default=[], metavar="LIB",
        help="with --recipe: load this plugin library that the recipe holds and names (e.g. model/libplugin.so); "
        "repeatable or comma-separated. A plugin runs code, so recipe plugins are refused without it",
    )
    parser.add_argument(
        "--recipe-max-size", metavar="SIZE", default=None,
        help="with --recipe: the most bytes it may unpack to, e.g. 100G (default 64G, and at most 200 times the "
        "recipe's own size unless given)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; build nothing")
    add_repair_option(parser)
    parser.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")
    add_dialect_option(parser)
    add_build_options(parser)
    add_engine_output(parser)
    from trtbuild.cli.quantize import add_calib_arguments

    add_calib_arguments(parser, include_cache=False)
    parser.add_argument(
        "--precision-path", choices=("flags", "onnx"), default=None,
        help="how --fp16/--int8 are met: builder flags (TensorRT <= 10 default) or converting the ONNX first "
        "(FP16 cast / INT8 Q/DQ; the only way on TensorRT 11)",
    )
    parser.set_defaults(run=run)


def add_repair_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repair", action="store_true",
        help="on the ONNX precision path: when the converted model fails its accuracy verdict, keep the fewest nodes "
        "in higher precision that make it pass (as `trtbuild quantize --repair`); the engine manifest lists them",
    )


def add_engine_output(parser: argparse.ArgumentParser) -> None:
    """``-o/--output ENGINE``: the file ``build`` writes, as on every command (``--saveEngine`` is trtexec's name)."""
    from trtbuild.cli._buildflags import RecordPair

    parser.add_argument(
        "-o", "--output", "--saveEngine", action=RecordPair, trtexec_name="saveEngine", dest="_opt_saveEngine",
        metavar="ENGINE", default=argparse.SUPPRESS,
        help="the engine file to write (default: MODEL.engine beside the ONNX; zoo:NAME -> NAME.engine here); its "
        "manifest ENGINE.json goes beside it. --saveEngine is trtexec's name for it",
    )


def spec_from_args(args: argparse.Namespace) -> object:
    from trtbuild.shapes import load_profiles_file
    from trtbuild.spec import BuildSpec

    # build's flags are trtbuild's own: accept every trtexec version's spelling; the chosen
    # --trtexec-version only shapes the printed command line.
    spec = BuildSpec.from_pairs(args.trtexec_pairs, dialect=None, onnx=args.model)
    for source in args.profiles:
        spec.build.profiles += load_profiles_file(source)
    return spec


def run(args: argparse.Namespace) -> int:
    from trtbuild.cli._plan_output import print_plan
    from trtbuild.cli.quantize import calib_options_from_args
    from trtbuild.plan import plan_build

    if args.recipe:
        from trtbuild.cli.pack import plan_from_recipe_args

        plan = plan_from_recipe_args(args)
    else:
        if args.model is None:
            from trtbuild.errors import SpecError

            raise SpecError("No model given: pass model.onnx (or zoo:NAME), or --recipe RECIPE.tar made by `trtbuild pack`.")
        if args.allow_plugins or args.recipe_max_size:
            from trtbuild.errors import SpecError

            raise SpecError("--allow-plugins and --recipe-max-size apply to --recipe only; give plugin libraries with "
                            "--staticPlugins when building from a model.")  # fmt: skip
        spec = spec_from_args(args)
        plan = plan_build(spec, args.model, trtexec_version=args.trtexec_version,  # type: ignore[arg-type]
                          calib=calib_options_from_args(args), precision_path=args.precision_path,
                          repair=args.repair)  # fmt: skip
    check_plan_inputs(plan)
    if args.dry_run:
        print_plan(plan, as_json=args.json)
        return 0
    check_plan_outputs(plan)
    from trtbuild.build import build_from_plan

    build_from_plan(plan)  # with the calibration options the plan was made with
    return 0


def check_plan_inputs(plan: object) -> None:
    """Refuse a "model" that parsed as an empty ONNX protobuf (a 0-byte file, or another protobuf message).

    Protobuf parses nearly anything, so such files reach the plan as a model with no graph; a dry run must
    not pass them.
    """
    check_model(plan.model)  # type: ignore[attr-defined]


def check_model(model: Any) -> None:
    """The checks of :func:`check_plan_inputs` on a ModelReport (also used by ``inspect``)."""
    from trtbuild.errors import ModelError

    if model.ir_version <= 0 or (model.node_count == 0 and not model.outputs):
        what = "is empty" if _size(model.path) == 0 else "holds no ONNX graph (no IR version, nodes or outputs)"
        raise ModelError(f"{model.path} {what}: it is not an ONNX model; export the model again and pass that file.")
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if model.opset > newest:
        raise ModelError(f"{model.path} declares ONNX opset {model.opset}, newer than any this onnx {onnx.__version__} "
                         f"knows ({newest}); no TensorRT parser reads it. Export again with an opset TensorRT supports "
                         "(17 is safe for TensorRT 8.6 and later).")  # fmt: skip
    if model.external_data:
        _check_external_data(model.path)


def _check_external_data(path: str) -> None:
    """Refuse external-data files shorter than the tensors they must hold (a truncated copy of a large model)."""
    import math
    import os

    import onnx
    from onnx.external_data_helper import _get_all_tensors

    from trtbuild.errors import ModelError

    proto = onnx.load(path, load_external_data=False)
    base = os.path.dirname(os.path.abspath(path))
    for tensor in _get_all_tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL or tensor.data_type == onnx.TensorProto.STRING:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        file = os.path.join(base, info.get("location", ""))
        try:
            offset = int(info.get("offset") or 0)
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
            needed = int(info["length"]) if info.get("length") else itemsize * math.prod(tensor.dims)
        except (ValueError, TypeError, KeyError):
            raise ModelError(f"{path}: tensor '{tensor.name}' has unreadable external-data fields {info}; export the "
                             "model again.") from None  # fmt: skip
        have = _size(file)
        if have is None or offset + needed > have:
            raise ModelError(
                f"{path}: tensor '{tensor.name}' needs bytes {offset}..{offset + needed} of {info.get('location')}, which "
                f"{'does not exist' if have is None else f'has only {have} bytes'}: the external data is missing or "
                "truncated; copy the model again with its data file."
            )


def check_plan_outputs(plan: object) -> None:
    """Refuse, before a long build, outputs that could never be written (a folder where the engine goes)."""
    from trtbuild.fsutil import check_output_file

    b = plan.spec.build  # type: ignore[attr-defined]
    if b.save_engine:
        check_output_file(b.save_engine, "engine path")
    if b.timing_cache_file:
        check_output_file(b.timing_cache_file, "timing cache")


def _size(path: str) -> int | None:
    import os

    try:
        return os.path.getsize(path)
    except OSError:
        return None
