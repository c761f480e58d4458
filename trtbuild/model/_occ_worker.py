"""Child process for onnxconverter-common's FP16 converter (``python -m trtbuild.model._occ_worker SRC DST JSON``).

It runs apart from trtbuild so that a converter that never returns can be stopped by a time limit.
"""

from __future__ import annotations

import json
import sys
import warnings


def main(argv: list[str]) -> int:
    import onnx
    from onnxconverter_common import float16

    src, dst, settings_text = argv
    settings = json.loads(settings_text)
    op_block = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(settings.pop("op_block_list")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per clamped initializer
        try:
            converted = float16.convert_float_to_float16(onnx.load(src), op_block_list=op_block, **settings)
        except Exception as exc:  # it raises bare Exceptions/ValueErrors on odd graphs
            print(f"onnxconverter-common could not cast the model ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 1
    onnx.save(converted, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
