"""``trtbuild export``: PyTorch -> ONNX, checked against PyTorch with ONNX Runtime before it is written."""

from __future__ import annotations

import argparse

EPILOG = """\
source:
  zoo:NAME                 a built-in model (yolo, resnet, two_input); input names/shapes come from the zoo
  path/to/net.py:build     a .py file and a function in it returning an nn.Module
  mypkg.models:build       the same with a dotted module name (importable from the current folder)

dynamic axes:
  --dynamic images:0,2,3             axes 0, 2 and 3 of 'images' are dynamic; names come from the zoo
                                     (batch, height, width) or default to images_dim0, images_dim2, ...
  --dynamic images:0=batch,2=h,3=w   name them yourself; repeat --dynamic for each input (or output)
  Without --dynamic the ONNX is static at the --input shape.

what is checked and written:
  onnx.checker, then ONNX Runtime against PyTorch at the export shape and at one other shape (every
  dynamic axis changed; --check-shape picks it) with atol/rtol (an element fails only if it misses
  both). Beside model.onnx a PyTorch reference model.pt2 (torch.export) is saved, or model.ts
  (TorchScript) if torch.export cannot handle the model: `trtbuild compare model.onnx --against
  ort,torch` uses it, so no Python source is needed later. Nothing is written if a check fails.

examples:
  trtbuild export zoo:yolo -o yolo.onnx --dynamic images:0,2,3
  trtbuild export models/net.py:build --weights net.pt --input images:1x3x640x640 --dynamic images:0 -o net.onnx
  trtbuild export zoo:two_input -o two.onnx --dynamic image:0=batch --dynamic scale:0=batch --simplify
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="export a PyTorch model to ONNX (checked against PyTorch; saves a .pt2 reference)",
        description="Export a PyTorch model to ONNX with torch.onnx.export (the TorchScript exporter; --dynamo for "
        "the new one), named dynamic axes and constant folding; run onnx.checker; check ONNX Runtime against PyTorch "
        "at two shapes; save a PyTorch reference beside the ONNX.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("source", help="zoo:NAME, or module:factory (a .py path or dotted module, and a function)")
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    parser.add_argument("--input", action="append", metavar="NAME:SHAPE",
                        help="example input name and shape, like images:1x3x640x640 (repeat or comma-separate for "
                        "several inputs, in forward() order); zoo models have their own")
    parser.add_argument("--dynamic", action="append", metavar="NAME:AXES",
                        help="dynamic axes of one input or output: images:0,2,3 or images:0=batch,2=height")
    parser.add_argument("--output-names", metavar="A,B", help="ONNX output names (default: the zoo's, or output0, output1, ...)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument("--dynamo", action="store_true", help="use the torch.export-based exporter (dynamo=True)")
    parser.add_argument("--simplify", action="store_true", help="run onnxslim on the exported graph")
    parser.add_argument("--weights", metavar="FILE.pt",
                        help="a state dict to load into the module (torch.load with weights_only=True)")
    parser.add_argument("--check-shape", action="append", metavar="NAME:SHAPE",
                        help="the second shape to check at (default: every dynamic axis changed)")
    parser.add_argument("--atol", type=float, default=1e-4, help="export-check absolute tolerance (default: 1e-4)")
    parser.add_argument("--rtol", type=float, default=1e-3, help="export-check relative tolerance (default: 1e-3)")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    parser.add_argument("--no-reference", action="store_true", help="do not save the .pt2/.ts PyTorch reference")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from trtbuild.model.export import export

    result = export(
        args.source,
        args.output,
        inputs=args.input,
        dynamic=args.dynamic,
        output_names=[n.strip() for n in args.output_names.split(",")] if args.output_names else None,
        opset=args.opset,
        dynamo=args.dynamo,
        simplify=args.simplify,
        weights=args.weights,
        check=not args.no_check,
        check_shapes=args.check_shape,
        atol=args.atol,
        rtol=args.rtol,
        reference=not args.no_reference,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    ins = "; ".join(t.describe() for t in result.inputs)
    outs = "; ".join(t.describe() for t in result.outputs)
    print(f"{result.onnx_path}: opset {result.opset}, {result.exporter} exporter")
    print(f"  inputs:  {ins}")
    print(f"  outputs: {outs}")
    for check in result.checks:
        worst = max(check.outputs.values(), key=lambda o: o["max_abs"])
        shapes = ", ".join(f"{n}:{'x'.join(map(str, s))}" for n, s in check.shapes.items())
        print(f"  check at {check.label} ({shapes}): ONNX Runtime matches PyTorch, max abs diff {worst['max_abs']:.2g}")
    if result.reference_path:
        print(f"  PyTorch reference: {result.reference_path} ({result.reference_format})")
    return 0
