"""Run one NVIDIA ModelOpt conversion for benchmarks/precision_corpus.py, inside ModelOpt's own venv.

    MODELOPT_PYTHON benchmarks/_modelopt_driver.py fp16|int8 MODEL.onnx OUT.onnx CALIB.npz [entropy|max]

CALIB.npz holds one array per input, samples stacked on the input's batch axis as the model takes
them. Printed on success: the wall time in seconds. ModelOpt patches ONNX Runtime's quantizer when it
runs, so each conversion gets its own process.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    import numpy as np
    import onnx

    mode, model, out, calib = argv[:4]
    method = argv[4] if len(argv) > 4 else "entropy"
    data = dict(np.load(calib))
    start = time.perf_counter()
    if mode == "fp16":
        from modelopt.onnx.autocast import convert_to_mixed_precision

        converted = convert_to_mixed_precision(onnx_path=model, low_precision_type="fp16", keep_io_types=True)
        onnx.save(converted, out)
    else:
        from modelopt.onnx.quantization import quantize

        quantize(model, quantize_mode="int8", calibration_data=data, calibration_method=method,
                 calibration_eps=["cpu"], high_precision_dtype="fp32", output_path=out)  # fmt: skip
    print(f"{time.perf_counter() - start:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
