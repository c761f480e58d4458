"""``trtbuild optimize``: save ONNX Runtime's optimized graph."""

from __future__ import annotations

import argparse

EPILOG = """\
levels:
  basic     constant folding, BatchNorm folding, redundant-node removal; standard ONNX ops only, so the
            result can still be built with TensorRT (use it on the FP32 model, before FP16/INT8 conversion)
  extended  adds ONNX Runtime's fused ops (com.microsoft::FusedConv, ...): ONNX Runtime only
  all       adds layout transforms tied to this CPU (NCHWc): ONNX Runtime only, on this kind of machine
  ONNX-Runtime-only results are stamped with metadata trtbuild.ort_only=true and `trtbuild build`
  refuses them. For a TensorRT-bound model, `trtbuild export --simplify` (onnxslim) is usually better.

examples:
  trtbuild optimize model.onnx --level basic -o model.opt.onnx
  trtbuild optimize model.onnx --level all -o model.ort.onnx
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "optimize",
        help="save ONNX Runtime's optimized graph (basic stays TensorRT-buildable)",
        description="Optimize an ONNX model with ONNX Runtime's graph optimizer and save the result "
        "(SessionOptions.optimized_model_filepath).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("model", help="ONNX file (or zoo:NAME)")
    parser.add_argument("--level", choices=["basic", "extended", "all"], default="basic",
                        help="ONNX Runtime optimization level (default: basic)")
    parser.add_argument("-o", "--output", required=True, help="the optimized .onnx to write")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from trtbuild.model.optimize import optimize

    result = optimize(args.model, args.output, level=args.level)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"{result.output_path}: {result.nodes_before} -> {result.nodes_after} nodes (level {result.level})")
    if result.nonstandard_ops:
        print("  ONNX Runtime ops: " + ", ".join(f"{op} x{n}" for op, n in result.nonstandard_ops.items()))
    print("  for ONNX Runtime only (trtbuild.ort_only=true)" if result.ort_only else "  standard ONNX ops: TensorRT can build it")
    return 0
