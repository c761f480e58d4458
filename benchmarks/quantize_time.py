"""How long does INT8 Q/DQ quantization of the demo detector take with 64 calibration samples?

Writes 64 + 8 synthetic JPEG images (smooth blobs plus noise) into a temporary folder, opens them as
calibration data for zoo:yolo (letterboxed to --size, batches of --batch), then times
``trtbuild.model.quantize.quantize_int8`` per calibration method: calibration (ONNX Runtime runs and
the range search) plus ONNX Runtime's quantize_static. Each method starts without a range cache
(and a second run shows the cached time). Image decoding happens inside the timing, as in real use.
The accuracy columns compare the Q/DQ model with FP32 on the 8 held-out images.

These are CPU figures (ONNX Runtime on this host), not TensorRT ones.

    python benchmarks/quantize_time.py                        # 64 samples, 320x320, batch 8, every method
    python benchmarks/quantize_time.py --samples 64 --size 640 --method entropy
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def write_images(folder: Path, count: int, seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = int(rng.integers(360, 520)), int(rng.integers(480, 720))
        blobs = np.kron(rng.random((h // 40 + 1, w // 40 + 1, 3)), np.ones((40, 40, 1)))[:h, :w]
        pixels = blobs * 200 + rng.random((h, w, 3)) * 55
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"img{i:03d}.jpg", quality=90)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=64, help="calibration samples (default 64)")
    parser.add_argument("--size", type=int, default=320, help="input height and width (default 320)")
    parser.add_argument("--batch", type=int, default=8, help="calibration batch size (default 8)")
    parser.add_argument("--method", choices=["entropy", "minmax", "percentile", "all"], default="all")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default: ORT's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import onnxruntime
    import onnxruntime.quantization  # noqa: F401  (imported before timing: ~1 s the first method would pay)

    from trtbuild import zoo
    from trtbuild.model.accuracy import compare_models
    from trtbuild.model.calib import CalibOptions, open_calibration
    from trtbuild.model.quantize import QuantizeOptions, quantize_int8

    methods = ["entropy", "minmax", "percentile"] if args.method == "all" else [args.method]
    model = zoo.onnx_path("yolo")
    print(f"zoo:yolo, {args.samples} calibration samples at {args.batch}x3x{args.size}x{args.size}, "
          f"ONNX Runtime {onnxruntime.__version__} on the CPU ({os.cpu_count()} cores)")  # fmt: skip
    print(f"{'method':<11} {'quantize (s)':>12} {'cached (s)':>10} {'Q/DQ':>5} {'cosine':>9} {'rel max':>8}")
    with tempfile.TemporaryDirectory(prefix="trtbuild-bench-") as tmp_name:
        tmp = Path(tmp_name)
        images = tmp / "images"
        images.mkdir()
        write_images(images, args.samples + 8)
        options = CalibOptions(
            data=str(images), shape=f"images:{args.batch}x3x{args.size}x{args.size}", samples=args.samples, eval_samples=8
        )
        for method in methods:
            out = tmp / f"yolo.{method}.onnx"
            data = open_calibration(options, model)
            started = time.perf_counter()
            result = quantize_int8(model, out, data, QuantizeOptions(method=method))
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            quantize_int8(model, out, open_calibration(options, model), QuantizeOptions(method=method))
            cached = time.perf_counter() - started
            assert data is not None
            report = compare_models(model, out, data.batches("eval"), precision="int8")
            worst = min(report.outputs, key=lambda o: o.cosine)
            print(f"{method:<11} {elapsed:>12.2f} {cached:>10.2f} {result.check.quantize_nodes:>5} "
                  f"{worst.cosine:>9.6f} {worst.rel_max_error:>8.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
