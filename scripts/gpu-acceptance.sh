#!/usr/bin/env bash
# GPU acceptance for the builder: run on a machine (or Jetson) with real TensorRT, PyCUDA and an NVIDIA GPU.
#
#   scripts/gpu-acceptance.sh [OUT_DIR]
#
# 1. the pytest tests marked `gpu` (they are skipped everywhere else);
# 2. zoo:yolo with a dynamic profile, FP32 and FP16: build -> engine check -> reload -> inspect -> bench -> compare.
# On TensorRT 11 the FP16 engine is built from `trtbuild cast` output (11.x has no FP16 builder flag).
# Every number printed here comes from real TensorRT on this GPU; nothing from the CPU test double.
set -euo pipefail

OUT="${1:-$(mktemp -d -t trtbuild-gpu-XXXXXX)}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
TRTBUILD=("$PY" -m trtbuild)
MIN="images:1x3x320x320"
OPT="images:4x3x640x640"
MAX="images:8x3x640x640"

echo "== environment"
"${TRTBUILD[@]}" doctor
if ! "$PY" - <<'EOF'
import sys
from trtbuild.trt.compat import import_pycuda_driver, import_tensorrt
trt = import_tensorrt()
if hasattr(trt, "EMULATOR_LEVEL"):
    sys.exit("the TensorRT test double is installed in sys.modules, not real TensorRT")
cuda = import_pycuda_driver()
cuda.init()
print(f"TensorRT {trt.__version__}, {cuda.Device.count()} GPU(s): {cuda.Device(0).name()}")
EOF
then
    echo "gpu-acceptance: needs real TensorRT, PyCUDA and a GPU (see trtbuild doctor above)" >&2
    exit 2
fi
TRT_MAJOR="$("$PY" -c 'import tensorrt as t; print(t.__version__.split(".")[0])')"

echo "== pytest -m gpu"
"$PY" -m pytest -q -m gpu tests/test_builder.py

cp "$("$PY" -c 'from trtbuild import zoo; print(zoo.onnx_path("yolo"))')" "$OUT/yolo.onnx"

for precision in fp32 fp16; do
    model="$OUT/yolo.onnx"
    flags=()
    if [ "$precision" = fp16 ]; then
        flags=(--fp16)
        if [ "$TRT_MAJOR" -ge 11 ]; then
            if ! "${TRTBUILD[@]}" cast --help >/dev/null 2>&1; then
                echo "== skip fp16: TensorRT $TRT_MAJOR needs \`trtbuild cast\`, which this checkout lacks"
                continue
            fi
            "${TRTBUILD[@]}" cast "$model" --fp16 -o "$OUT/yolo.fp16.onnx" --calib-shape "$OPT" --calib-random
            model="$OUT/yolo.fp16.onnx"
        fi
    fi
    engine="$OUT/yolo_$precision.engine"
    echo "== build $precision"
    "${TRTBUILD[@]}" build "$model" --min "$MIN" --opt "$OPT" --max "$MAX" ${flags[@]+"${flags[@]}"} \
        --profilingVerbosity=detailed --timingCacheFile "$OUT/timing.cache" --output "$engine"
    echo "== rebuild $precision with the timing cache (merged under a file lock)"
    "${TRTBUILD[@]}" build "$model" --min "$MIN" --opt "$OPT" --max "$MAX" ${flags[@]+"${flags[@]}"} \
        --profilingVerbosity=detailed --timingCacheFile "$OUT/timing.cache" --output "$OUT/yolo_${precision}_again.engine"
    echo "== check and reload $precision"
    "${TRTBUILD[@]}" engine check "$engine"
    "$PY" - "$engine" <<'EOF'
import sys
from trtbuild import load_engine
engine = load_engine(sys.argv[1])
names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
print(f"reloaded {sys.argv[1]}: tensors {names}, {engine.num_optimization_profiles} profile(s), {engine.num_layers} layers")
EOF
    echo "== inspect $precision"
    "${TRTBUILD[@]}" inspect "$engine"
    "${TRTBUILD[@]}" inspect "$engine" --json > "$OUT/yolo_$precision.inspect.json"
    echo "== Ultralytics header round trip"
    "${TRTBUILD[@]}" engine wrap "$engine" -o "$OUT/yolo_$precision.ultralytics.engine" --metadata '{"stride": 32}'
    "${TRTBUILD[@]}" engine strip "$OUT/yolo_$precision.ultralytics.engine" -o "$OUT/yolo_$precision.stripped.engine"
    cmp "$engine" "$OUT/yolo_$precision.stripped.engine"
    if "${TRTBUILD[@]}" bench --help >/dev/null 2>&1; then
        echo "== bench $precision"
        "${TRTBUILD[@]}" bench "$engine" --shapes "$OPT" --quick --out "$OUT/bench_$precision"
    else
        echo "== skip bench: \`trtbuild bench\` is not in this checkout"
    fi
    if "${TRTBUILD[@]}" compare --help >/dev/null 2>&1; then
        echo "== compare $precision against ONNX Runtime"
        compare_precision=()
        [ "$precision" = fp16 ] && compare_precision=(--precision fp16)
        "${TRTBUILD[@]}" compare "$OUT/yolo.onnx" --engine "$engine" --against ort --shapes "$OPT" \
            ${compare_precision[@]+"${compare_precision[@]}"} --json "$OUT/compare_$precision.json"
    else
        echo "== skip compare: \`trtbuild compare\` is not in this checkout"
    fi
done

echo "gpu-acceptance: passed; outputs in $OUT"
