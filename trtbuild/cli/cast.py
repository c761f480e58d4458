"""``trtbuild cast``: an FP16 (mixed-precision) copy of an ONNX model, guarded against FP16 overflow."""

from __future__ import annotations

import argparse

from trtbuild.cli.quantize import (
    add_accuracy_arguments,
    add_calib_arguments,
    calib_options_from_args,
    default_output,
    opt_shapes_from_args,
    report_prepared,
    split_list,
)

EPILOG = """\
FP16 overflow: ONNX Runtime on the CPU runs many FP16 ops in FP32, so it hides overflow that TensorRT's
FP16 kernels would hit. With --calib-data, the FP32 model runs on the samples with every intermediate
tensor exposed; nodes producing or consuming a tensor above 65504/--range-margin stay FP32.

examples:
  trtbuild cast model.onnx -o model.fp16.onnx
  trtbuild cast model.onnx --fp16 -o model.fp16.onnx --calib-data images/
  trtbuild cast zoo:resnet --fp16 --fp16-block-ops Softmax,LayerNormalization
  trtbuild cast model.onnx --fp16 --fp16-io --fp16-block-nodes /head/Mul_2 --calib-data calib.npz
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "cast",
        help="cast an ONNX model to FP16 (I/O kept FP32), keeping overflowing layers FP32",
        description="Cast an FP32 ONNX model to FP16 for TensorRT 11's strongly typed builds (TensorRT 8.6/10 take "
        "it too). Inputs and outputs stay FP32 unless --fp16-io. A range scan on calibration data keeps layers "
        "that would overflow FP16 in FP32 (constants beyond FP16's range always do); the result is run in ONNX "
        "Runtime and compared with FP32 (on seeded inputs when no data is given) and written only if it passes. "
        "Already-quantized models are refused.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("model", help="ONNX file (or zoo:NAME)")
    parser.add_argument("-o", "--output", metavar="PATH", help="output ONNX (default: MODEL.fp16.onnx)")
    parser.add_argument("--fp16", action="store_true", default=True, help="cast to FP16 (the default and only mode)")
    parser.add_argument("--fp16-io", action="store_true", help="make the inputs and outputs FP16 too")
    parser.add_argument("--fp16-block-ops", action="append", metavar="OPS", help="op types kept FP32 (comma-separated)")
    parser.add_argument("--fp16-block-nodes", action="append", metavar="NAMES", help="node names kept FP32 (comma-separated)")
    parser.add_argument("--no-range-scan", action="store_true", help="skip the FP16 overflow scan (not recommended)")
    parser.add_argument("--range-margin", type=float, default=4.0, metavar="X",
                        help="keep tensors above 65504/X in FP32 (default: 4, i.e. 16376)")
    parser.add_argument("--converter", choices=["auto", "trtbuild", "modelopt", "onnxconverter-common"], default="auto",
                        help="auto/trtbuild: trtbuild's own FP16 pass (see docs/precision.md for why); modelopt: NVIDIA "
                        "ModelOpt AutoCast; onnxconverter-common: its float16 converter, with a time limit")
    parser.add_argument("--converter-timeout", type=float, default=600.0, metavar="SECONDS",
                        help="stop a converter that runs longer than this (default: 600)")
    parser.add_argument("--target-trt", metavar="VERSION", default="10",
                        help="TensorRT the model is for: 8.6 | 10 | 11 (8.6 keeps the opset; default: 10)")  # fmt: skip
    add_calib_arguments(parser)
    add_accuracy_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from trtbuild.model.fp16 import Fp16Options
    from trtbuild.precision import convert_onnx

    options = Fp16Options(
        keep_io_types=not args.fp16_io,
        op_block_list=split_list(args.fp16_block_ops),
        node_block_list=split_list(args.fp16_block_nodes),
        range_scan=not args.no_range_scan,
        range_margin=args.range_margin,
        converter=args.converter,
        timeout=args.converter_timeout,
    )
    output = args.output or default_output(args.model, "fp16")
    prepared = convert_onnx(
        args.model,
        output,
        fp16=True,
        calib=calib_options_from_args(args),
        target_trt=args.target_trt,
        fp16_options=options,
        profile_opt=opt_shapes_from_args(args),
        max_error=args.max_error,
        min_cosine=args.min_cosine,
        check_accuracy=not args.no_accuracy_check,
        repair=args.repair,
    )
    return report_prepared(prepared, args)
