"""trtbuild's FP16 cast and INT8 quantization next to NVIDIA ModelOpt's, on the real-model corpus.

For every corpus model: the same 8 calibration samples for both tools, the same 4 held-out samples
for the verdict (tests/corpus/judge.py, which imports nothing from trtbuild): worst-output cosine to
FP32 and the worst task measure (argmax agreement / mask IoU) where the catalog names one, plus the
conversion wall time. ModelOpt runs in its own virtual environment (it pins onnxruntime 1.24 and
patches ONNX Runtime when it runs), one process per conversion, with CPU calibration and FP32
outside the Q/DQ nodes (high_precision_dtype="fp32") so both INT8 models differ only in the
quantization. CPU figures, not TensorRT's.

    python benchmarks/precision_corpus.py --modelopt-python /path/to/modelopt-venv/bin/python
    python benchmarks/precision_corpus.py --models nudenet_320n_yolov8n,rapidocr_det_ppocrv4 --skip-modelopt

Set up the ModelOpt environment as docs/precision.md says (torch CPU wheel, nvidia-modelopt --no-deps,
its ONNX dependencies with CPU onnxruntime~=1.24).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

CALIBRATE = slice(0, 8)
JUDGED = slice(8, 12)


def stack_for_modelopt(feeds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Samples stacked on axis 0 for ModelOpt, using the largest group of equal shapes; None if impossible."""
    import numpy as np

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for feed in feeds:
        groups.setdefault(tuple((k, v.shape) for k, v in sorted(feed.items())), []).append(feed)
    best = max(groups.values(), key=len)
    if any(v.ndim == 0 for v in best[0].values()):
        return None  # scalar inputs (a sample rate) cannot be stacked
    return {name: np.concatenate([f[name] for f in best]) for name in best[0]}


def run_trtbuild(command: str, model: Path, out: Path, calib_dir: Path) -> tuple[float | None, str]:
    from trtbuild.cli import main

    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--log-level", "error", command, str(model), "-o", str(out), "--calib-data", str(calib_dir),
                     "--no-accuracy-check"])  # fmt: skip
    elapsed = time.perf_counter() - start
    lines = err.getvalue().strip().splitlines()
    return (elapsed if code == 0 and out.exists() else None), (lines[-1][:80] if lines else f"exit {code}")


def run_modelopt(python: str, mode: str, model: Path, out: Path, calib: Path) -> tuple[float | None, str]:
    driver = Path(__file__).with_name("_modelopt_driver.py")
    done = subprocess.run([python, str(driver), mode, str(model), str(out), str(calib)], capture_output=True,
                          text=True, timeout=1800, check=False)  # fmt: skip
    if done.returncode != 0 or not out.exists():
        tail = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        return None, (tail[-1][:80] if tail else f"exit {done.returncode}")
    return float(done.stdout.strip().splitlines()[-1]), ""


def score(model: Any, path: Path, converted: Path, feeds: list[dict[str, Any]], precision: str) -> dict[str, Any]:
    from corpus import judge

    problem = judge.loads(converted)
    if problem is not None:
        return {"error": f"does not load: {problem[:60]}"}
    verdict = judge.agreement(path, converted, feeds, precision, **model.measures)
    cosine = min(stats["cosine"] for stats in verdict.outputs.values())
    measures = [v for stats in verdict.outputs.values() for k, v in stats.items() if k != "cosine"]
    return {"cosine": cosine, "measure": min(measures) if measures else None, "passed": verdict.passed}


def cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return "FAIL " + result["error"][:40]
    measure = f" {result['measure']:.1%}" if result.get("measure") is not None else ""
    return f"{result['cosine']:.4f}{measure} {result['time']:.1f}s"


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import onnxruntime
    from corpus import fetch, inputs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated corpus ids (default: all)")
    parser.add_argument("--modelopt-python", help="python of the ModelOpt environment")
    parser.add_argument("--skip-modelopt", action="store_true")
    args = parser.parse_args(argv)
    onnxruntime.set_default_logger_severity(3)
    if not args.skip_modelopt and not args.modelopt_python:
        parser.error("give --modelopt-python (see docs/precision.md) or --skip-modelopt")
    wanted = set(args.models.split(",")) if args.models else None
    root = fetch.data_root()
    rows = []
    for model in fetch.models():
        if wanted and model.id not in wanted:
            continue
        if model.expect_fp16 == "refuse":
            rows.append((model.id, {}, f"skipped: {model.refuse_reason}"))
            continue
        path = fetch.model_path(model)
        feeds = inputs.real_samples(model.id, root, 12)
        results: dict[str, dict[str, Any] | None] = {}
        with tempfile.TemporaryDirectory(prefix="precision-corpus-") as tmp_name:
            tmp = Path(tmp_name)
            calib_dir = tmp / "calib"
            calib_dir.mkdir()
            for index, feed in enumerate(feeds[:10]):  # trtbuild holds the last 2 out for its own checks
                np.savez(calib_dir / f"{index:02d}.npz", **feed)
            stacked = stack_for_modelopt(feeds[CALIBRATE])
            if stacked is not None:
                np.savez(tmp / "calib.npz", **stacked)
            for precision, command in (("fp16", "cast"), ("int8", "quantize")):
                out = tmp / f"trtbuild.{precision}.onnx"
                elapsed, why = run_trtbuild(command, path, out, calib_dir)
                results[f"trtbuild {precision}"] = (
                    {**score(model, path, out, feeds[JUDGED], precision), "time": elapsed}
                    if elapsed is not None else {"error": why}
                )  # fmt: skip
                if args.skip_modelopt:
                    continue
                if stacked is None:
                    results[f"modelopt {precision}"] = {"error": "samples cannot be stacked"}
                    continue
                out = tmp / f"modelopt.{precision}.onnx"
                elapsed, why = run_modelopt(args.modelopt_python, precision, path, out, tmp / "calib.npz")
                results[f"modelopt {precision}"] = (
                    {**score(model, path, out, feeds[JUDGED], precision), "time": elapsed}
                    if elapsed is not None else {"error": why}
                )  # fmt: skip
        rows.append((model.id, results, ""))
        print(f"{model.id}: " + "; ".join(f"{k} {cell(v)}" for k, v in results.items()), flush=True)
    columns = ["trtbuild fp16", "modelopt fp16", "trtbuild int8", "modelopt int8"]
    print("\n| model | " + " | ".join(columns) + " | INT8 cosine / measure vs ModelOpt |")
    print("|---|" + "---|" * (len(columns) + 1))
    for model_id, results, note in rows:
        if note:
            print(f"| {model_id} | {note} |" + " |" * len(columns))
            continue
        ours, theirs = results.get("trtbuild int8"), results.get("modelopt int8")
        delta = "-"
        if ours and theirs and "error" not in ours and "error" not in theirs:
            d_cos = ours["cosine"] - theirs["cosine"]
            d_measure = (
                f", {ours['measure'] - theirs['measure']:+.1%}"
                if ours.get("measure") is not None and theirs.get("measure") is not None else ""
            )  # fmt: skip
            delta = f"{d_cos:+.4f}{d_measure}"
        print(f"| {model_id} | " + " | ".join(cell(results.get(c)) for c in columns) + f" | {delta} |")
    print("\ncells: worst-output cosine to FP32, worst task measure, conversion time (CPU, ONNX Runtime);"
          " FAIL: no usable model")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
