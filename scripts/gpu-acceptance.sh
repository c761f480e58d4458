#!/usr/bin/env bash
# GPU acceptance: run on a machine (or Jetson) with an NVIDIA GPU; part 2 also needs TensorRT and PyCUDA.
#
#   scripts/gpu-acceptance.sh [OUT_DIR]
#
# Part 1 (NVIDIA GPU and CUDA, no TensorRT; scripts/gpu_acceptance_cuda.py, under 5 minutes): trtbuild's
#   CUDA-event timing loop, CUDA graph capture and its fallback through cuda-python, pinned buffers,
#   PyCUDA (built here when its headers exist), the PyTorch CUDA backend of `bench`, each against a plain
#   CUDA-event measurement of the same work; each piece whose library is missing is skipped in one line.
# Part 2 (TensorRT):
# 1. the pytest tests marked `gpu` (they are skipped everywhere else);
# 2. zoo:yolo with a dynamic profile, FP32 and FP16: build -> engine check -> reload -> inspect -> bench -> compare;
# 3. the runtime-fidelity items: CUDA graph mode, an hwc8 I/O engine refused, a plugin engine in a fresh
#    process, --device 1 where there are two GPUs, INT8 with a calibration profile of the batch shape.
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

echo "== part 1: CUDA without TensorRT"
PART1=0
timeout 300 "$PY" "$(dirname "$0")/gpu_acceptance_cuda.py" || PART1=$?

echo "== environment"
"${TRTBUILD[@]}" doctor || true
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
    echo "gpu-acceptance: part 2 skipped: it needs real TensorRT, PyCUDA and a GPU (see trtbuild doctor above)" >&2
    exit "$PART1"
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

echo "== fidelity: CUDA graph mode on a real engine"
"$PY" - "$OUT/yolo_fp32.engine" "$OPT" <<'PYEOF'
import sys
import numpy as np
from trtbuild.bench.timing import TimingOptions
from trtbuild.trt.runtime import TrtRuntime
shape = tuple(int(d) for d in sys.argv[2].split(":")[1].split("x"))
with TrtRuntime(sys.argv[1]) as rt:
    traces, mode = rt.time_trtexec({"images": np.random.rand(*shape).astype(np.float32)},
                                   TimingOptions(warm_up_ms=100, iterations=20, duration_s=0.5))
print(f"mode: {mode.cuda_graph} {mode.note}")
assert mode.cuda_graph in ("graph", "no-graph"), mode
PYEOF

if [ "$TRT_MAJOR" -lt 11 ]; then
    echo "== fidelity: an fp16:hwc8 input engine is refused with the format named"
    "${TRTBUILD[@]}" build "$OUT/yolo.onnx" --shapes "$OPT" --inputIOFormats=fp16:hwc8 --output "$OUT/yolo_hwc8.engine"
    if "${TRTBUILD[@]}" bench "$OUT/yolo_hwc8.engine" --shapes "$OPT" --quick --no-save 2> "$OUT/hwc8.err"; then
        echo "gpu-acceptance: the hwc8 engine was not refused" >&2
        exit 1
    fi
    grep -q "HWC8" "$OUT/hwc8.err"
fi

echo "== fidelity: a plugin engine (InstanceNormalization plugin) in a fresh process"
"$PY" - "$OUT/instnorm.onnx" <<'PYEOF'
import sys
import onnx
from onnx import TensorProto, helper
graph = helper.make_graph(
    [helper.make_node("InstanceNormalization", ["x", "scale", "bias"], ["y"], epsilon=1e-5)], "instnorm",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 64, 64])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 64, 64])],
    [helper.make_tensor("scale", TensorProto.FLOAT, [3], [1.0, 2.0, 0.5]),
     helper.make_tensor("bias", TensorProto.FLOAT, [3], [0.0, 1.0, -1.0])])
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), sys.argv[1])
PYEOF
"${TRTBUILD[@]}" build "$OUT/instnorm.onnx" --min x:1x3x64x64 --opt x:2x3x64x64 --max x:4x3x64x64 \
    --pluginInstanceNorm --output "$OUT/instnorm.engine"
"${TRTBUILD[@]}" compare "$OUT/instnorm.onnx" --engine "$OUT/instnorm.engine" --against ort --shapes x:2x3x64x64

GPUS="$("$PY" -c 'import pycuda.driver as c; c.init(); print(c.Device.count())')"
if [ "$GPUS" -ge 2 ]; then
    echo "== fidelity: --device 1 builds and runs on GPU 1"
    "${TRTBUILD[@]}" build "$OUT/yolo.onnx" --shapes "$OPT" --device 1 --output "$OUT/yolo_dev1.engine"
    "${TRTBUILD[@]}" bench "$OUT/yolo_dev1.engine" --shapes "$OPT" --quick --out "$OUT/bench_dev1"
    "$PY" - "$OUT/bench_dev1" <<'PYEOF'
import glob
import json
import sys
import pycuda.driver as c
c.init()
text = open(sorted(glob.glob(sys.argv[1] + "/*.json"))[-1]).read()
name = c.Device(1).name()
assert name in text, f"GPU 1 ({name}) is not named in the bench results"
print(f"ran on {name}")
PYEOF
else
    echo "== fidelity: skip --device 1: this host has $GPUS GPU(s)"
fi

if [ "$TRT_MAJOR" -lt 11 ]; then
    echo "== fidelity: INT8 calibrates with a profile of the batch shape (opt batch 1, calibration batch 4)"
    "${TRTBUILD[@]}" build "$OUT/yolo.onnx" --min images:1x3x640x640 --opt images:1x3x640x640 \
        --max images:8x3x640x640 --int8 --calib-random --calib-shape images:4x3x640x640 --calib-samples 8 \
        --output "$OUT/yolo_int8.engine"
    "$PY" - "$OUT/yolo_int8.engine.json" <<'PYEOF'
import json
import sys
settings = json.load(open(sys.argv[1]))["builder_settings"]
assert settings.get("calibration_profile") == {"images": "4x3x640x640"}, settings
print("calibration profile:", settings["calibration_profile"])
PYEOF
    "${TRTBUILD[@]}" compare "$OUT/yolo.onnx" --engine "$OUT/yolo_int8.engine" --against ort \
        --shapes images:1x3x640x640 --precision int8 --json "$OUT/compare_int8.json" \
        || echo "(INT8 accuracy from random calibration data is informative only)"
fi

echo "gpu-acceptance: passed (part 1 exit $PART1); outputs in $OUT"
exit "$PART1"
