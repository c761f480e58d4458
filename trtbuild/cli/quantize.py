"""``trtbuild quantize``: INT8 Q/DQ ONNX from calibration data, checked against TensorRT's rules.

Also home of the ``--calib-*`` and accuracy options shared with ``trtbuild cast`` (and, once wired,
``trtbuild build``): :func:`add_calib_arguments`, :func:`calib_options_from_args`.
"""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
calibration data (--calib-data):
  a folder of images (JPEG/PNG), preprocessed with --calib-preprocess: yolo (letterbox, RGB, 0-1),
  imagenet (resize, center crop, mean/std) or module:function (called as fn(path, (C, H, W)) -> array);
  or .npy/.npz files (.npz: one array per input name) holding one sample, samples along axis 0, or
  samples on the model's own batch axis (e.g. state [2, N, 128]; scalars like a sample rate as is).
  The batch axis of each input is the symbolic dim it shares with the others (else a dynamic axis 0,
  else its only dynamic axis); --calib-batch-axis NAME:AXIS overrides it. Images follow the model's
  layout (NCHW or NHWC). Batches are shaped by --calib-shape (default: the model's dims at batch 1,
  other dynamic dims from the data). Up to 20 % of the samples (at most --eval-samples) are held out
  for the accuracy report; with fewer than 5 samples the report reuses the calibration samples.
  Without data, cast checks accuracy on seeded inputs (dynamic dims: batch 1, others 256 or --opt).

examples:
  trtbuild quantize model.onnx --int8 --calib-data images/ -o model.int8.onnx
  trtbuild quantize zoo:yolo --calib-data images/ --calib-shape images:8x3x640x640 --target-trt 8.6
  trtbuild quantize model.onnx --calib-data calib.npz --calib-method percentile --exclude-op-types Gemm
  trtbuild quantize --check-only model.int8.onnx --target-trt 10
"""


def add_calib_arguments(parser: argparse.ArgumentParser, *, include_cache: bool = True) -> None:
    """The calibration-data options (one group, same names in every command).

    ``include_cache=False`` leaves out ``--calib`` for parsers that already take trtexec's ``--calib``
    (``trtbuild build``); :func:`calib_options_from_args` reads it from there either way.
    """
    from trtbuild.model.calib import DEFAULT_EVAL_SAMPLES

    group = parser.add_argument_group("calibration data")
    group.add_argument("--calib-data", metavar="PATH", help="folder of images or .npy/.npz files, or one .npy/.npz file")
    group.add_argument("--calib-preprocess", metavar="NAME", default="yolo",
                       help="image preprocessing: yolo | imagenet | module:function | file.py:function (default: yolo)")
    group.add_argument("--calib-shape", metavar="SHAPE",
                       help="calibration batch shape, e.g. images:8x3x640x640 (default: the model's dims, batch 1)")
    group.add_argument("--calib-samples", metavar="N", type=int, help="number of calibration samples (default: all, at most 512)")
    group.add_argument("--calib-random", action="store_true",
                       help="calibrate on random data (smoke tests only: the ranges will not fit real inputs)")
    group.add_argument("--calib-seed", metavar="N", type=int, default=0, help="seed for --calib-random (default: 0)")
    if include_cache:
        group.add_argument("--calib", metavar="CACHE",
                           help="calibration cache to use; a stale one is refused, a missing one is written")
    group.add_argument("--calib-batch-axis", metavar="NAME:AXIS",
                       help="the axis an input stacks samples on, e.g. state:1 (default: from the model's dims)")
    group.add_argument("--eval-samples", metavar="N", type=int, default=DEFAULT_EVAL_SAMPLES,
                       help=f"at most N held-out samples for the accuracy report (default: {DEFAULT_EVAL_SAMPLES})")
    if include_cache:  # `build` has its own --opt (the profile), which calibration already follows
        group.add_argument("--opt", metavar="SHAPES",
                           help="shapes for the accuracy check and random calibration, trtexec syntax, e.g. "
                           "x:1x3x640x640 (default: fixed dims as declared, batch 1, other dynamic dims 256)")
    # fmt: skip


def add_accuracy_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("accuracy check (converted model vs FP32 in ONNX Runtime)")
    group.add_argument("--max-error", metavar="X", type=float,
                       help="fail when max|y - y_fp32| / max|y_fp32| exceeds X (default: fp16 0.01, int8 0.25)")
    group.add_argument("--min-cosine", metavar="X", type=float,
                       help="fail when the cosine similarity with FP32 is below X (default: fp16 0.999, int8 0.98)")
    group.add_argument("--repair", action="store_true",
                       help="when the check fails, find the fewest nodes to keep in higher precision that make it pass "
                       "(per-node sensitivity, then bisection, on held-out and calibration samples) and write that model")
    group.add_argument("--no-accuracy-check", action="store_true",
                       help="write the model even when the accuracy check fails (the report still says so)")
    group.add_argument("--json", action="store_true", help="print the result as JSON")


def report_prepared(prepared: Any, args: argparse.Namespace) -> int:
    """Print the conversion result; fail on an accuracy miss unless --no-accuracy-check."""
    print_prepared(prepared, as_json=args.json)
    if not args.no_accuracy_check and prepared.accuracy_report is not None:
        prepared.accuracy_report.raise_if_failed()
    return 0


def calib_options_from_args(args: argparse.Namespace) -> Any:
    from trtbuild.model.calib import CalibOptions

    return CalibOptions(
        data=args.calib_data,
        preprocess=args.calib_preprocess,
        shape=args.calib_shape,
        samples=args.calib_samples,
        random=args.calib_random,
        seed=args.calib_seed,
        cache=getattr(args, "calib", None),
        eval_samples=args.eval_samples,
        batch_axis=getattr(args, "calib_batch_axis", None),
    )


def opt_shapes_from_args(args: argparse.Namespace) -> dict[str, tuple[int, ...]] | None:
    """``--opt`` of cast/quantize as {input: dims}; the model's only input when the name is left out."""
    text = getattr(args, "opt", None)
    if not text or not isinstance(text, str):
        return None
    from trtbuild.model.load import load_onnx, model_inputs, resolve_model_path
    from trtbuild.shapes import UNNAMED, parse_shape_list

    parsed = parse_shape_list(text, flag="opt")
    if UNNAMED in parsed:
        inputs = model_inputs(load_onnx(resolve_model_path(args.model), load_weights=False))
        if len(inputs) != 1:
            from trtbuild.errors import ShapeError

            raise ShapeError(f"--opt {text} has no input name, but the model has {len(inputs)} inputs; name each one.")
        parsed = {inputs[0].name: parsed[UNNAMED]}
    return {name: tuple(dims) for name, dims in parsed.items()}


def split_list(values: list[str] | None) -> list[str]:
    """``--x a,b --x c`` -> ``[a, b, c]``."""
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def default_output(model: str, suffix: str) -> str:
    from pathlib import Path

    if model.startswith("zoo:"):
        return f"{model[4:]}.{suffix}.onnx"
    path = Path(model)
    return str(path.with_name(f"{path.stem}.{suffix}.onnx"))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "quantize",
        help="quantize an ONNX model to INT8 Q/DQ (TensorRT-compatible) from calibration data",
        description="Quantize an FP32 ONNX model to INT8 with QuantizeLinear/DequantizeLinear nodes that TensorRT "
        "accepts (symmetric int8, zero point 0, per-channel weights, no bias quantization), check it against "
        "TensorRT's rules, and compare it with FP32 on held-out samples. This is how TensorRT 11 does INT8 (it has "
        "no INT8 flag or calibrators); TensorRT 8.6 and 10 build the result too. Uses NVIDIA ModelOpt in a "
        "subprocess when installed, else ONNX Runtime.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("model", help="ONNX file (or zoo:NAME)")
    parser.add_argument("-o", "--output", metavar="PATH", help="output ONNX (default: MODEL.int8.onnx)")
    parser.add_argument("--int8", action="store_true", default=True, help="quantize to INT8 (the default and only mode)")
    parser.add_argument("--fp16", action="store_true",
                        help="also make the non-quantized layers FP16 (needs NVIDIA ModelOpt; TensorRT 11 strong typing)")
    parser.add_argument("--check-only", action="store_true",
                        help="only check MODEL (already Q/DQ) against TensorRT's rules; exit 1 on a violation")
    parser.add_argument("--target-trt", metavar="VERSION", default="10",
                        help="TensorRT the model is for: 8.6 | 10 | 11 (8.6 keeps opset <= 17; default: 10)")
    group = parser.add_argument_group("quantization")
    group.add_argument("--calib-method", choices=["auto", "entropy", "minmax", "percentile"], default="auto",
                       help="how activation ranges are chosen: auto (default) makes min-max and entropy (TensorRT's) "
                       "ranges from one calibration pass and keeps the model closer to FP32 on held-out samples; if that "
                       "one still misses cosine 0.98 there and has at most 8 quantized activations, each range is "
                       "narrowed by the factor (down to 1e-7) that brings the worst calibration batch closest to "
                       "FP32, kept if the held-out samples agree")
    group.add_argument("--percentile", type=float, default=99.99, help="for --calib-method percentile (default: 99.99)")
    group.add_argument("--exclude-nodes", action="append", metavar="NAMES", help="node names to keep in float (comma-separated)")
    group.add_argument("--exclude-op-types", action="append", metavar="OPS", help="op types to keep in float, e.g. Gemm")
    group.add_argument("--op-types", action="append", metavar="OPS",
                       help="op types to quantize (default: Conv,ConvTranspose,Gemm,MatMul; 'all': every op ORT can)")
    group.add_argument("--no-per-channel", action="store_true", help="per-tensor weight scales (default: per channel)")
    group.add_argument("--quantizer", choices=["auto", "modelopt", "onnxruntime"], default="auto",
                       help="auto: ModelOpt when installed (and the target is >= 10), else ONNX Runtime")  # fmt: skip
    add_calib_arguments(parser)
    add_accuracy_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.check_only:
        return _check_only(args)
    from trtbuild.model.quantize import QuantizeOptions
    from trtbuild.precision import convert_onnx

    options = QuantizeOptions(
        method=args.calib_method,
        percentile=args.percentile,
        exclude_nodes=split_list(args.exclude_nodes),
        exclude_op_types=split_list(args.exclude_op_types),
        op_types=split_list(args.op_types) or None,
        per_channel=not args.no_per_channel,
        quantizer=args.quantizer,
        target_trt=args.target_trt,
    )
    output = args.output or default_output(args.model, "int8")
    prepared = convert_onnx(
        args.model,
        output,
        fp16=args.fp16,
        int8=True,
        calib=calib_options_from_args(args),
        target_trt=args.target_trt,
        quantize_options=options,
        profile_opt=opt_shapes_from_args(args),
        max_error=args.max_error,
        min_cosine=args.min_cosine,
        check_accuracy=not args.no_accuracy_check,
        repair=args.repair,
    )
    return report_prepared(prepared, args)


def _check_only(args: argparse.Namespace) -> int:
    import json

    from trtbuild.console import get_console
    from trtbuild.model.qdq_check import RULES, check_qdq

    report = check_qdq(args.model, args.target_trt)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0 if report.ok else 1
    console = get_console()
    color = "green" if report.ok else "red"
    console.print(f"[{color}]{report.summary()}[/{color}]", highlight=False)
    for rule, count in report.rules_broken.items():
        console.print(f"  {rule} x{count}: {RULES.get(rule, '')}", markup=False)
    for violation in report.violations:
        console.print(f"    {violation}", markup=False)
    return 0 if report.ok else 1


def print_prepared(prepared: Any, *, as_json: bool) -> None:
    """Steps, converter, checker verdict and the accuracy table of a converted model."""
    import json

    from trtbuild.console import get_console
    from trtbuild.model.accuracy import print_accuracy_table

    if as_json:
        print(json.dumps(prepared.manifest(), indent=2, default=str))
        return
    console = get_console()
    console.print(f"[bold]{prepared.path}[/bold]", highlight=False)
    version = f" {prepared.converter_version}" if prepared.converter_version else ""
    console.print(f"  converter: {prepared.converter}{version}", markup=False)
    for step in prepared.steps:
        console.print(f"  - {step}", markup=False)
    if prepared.provenance and prepared.provenance.get("files_sha256"):
        prov = prepared.provenance
        console.print(
            f"  calibration: {prov.get('samples')} sample(s) ({prov.get('kind')}) from {prov.get('source')} "
            f"(sha256 {str(prov.get('files_sha256'))[:12]})",
            markup=False,
        )
    cache = prepared.details.get("range_cache")
    if cache:
        console.print(f"  range cache: {cache}", markup=False)
    repair = prepared.details.get("repair")
    if repair and repair.get("kept_nodes"):
        console.print(f"  repair: to reproduce without the search, {repair['reproduce_with']}", markup=False)
    if prepared.accuracy_report is not None:
        print_accuracy_table(prepared.accuracy_report)
        console.print(f"  accuracy report: {prepared.path}.accuracy.json", markup=False)
