"""Precision repair on the corpus models whose INT8 misses the verdict: before, after, what it kept, how long.

For every corpus model the catalog gives a `repair` entry (tests/corpus/catalog.toml), with its
calibration method: `quantize` calibrates on the first 8 real samples (it holds 2 of them out for its own
gate and the repair search) and the judge (tests/corpus/judge.py, which imports nothing from trtbuild)
scores the result on samples 8-11, which neither calibration nor the search saw. "before" is the model the
plain command would have written (with --no-accuracy-check), "after" the `--repair` one. CPU figures from
ONNX Runtime, not TensorRT's; times are wall time of the whole command on this machine.

    python benchmarks/repair_corpus.py
    python benchmarks/repair_corpus.py --models rapidocr_rec_ppocrv4 --method entropy
    python benchmarks/repair_corpus.py --yolov8-640   # the search's cost on the YOLOv8n export at 640x640

The YOLOv8n export passes INT8 as it is, so `--yolov8-640` forces a full search with a cosine limit no INT8
model reaches (`--min-cosine 0.99995`): every quantized node is scored, then bisected and pruned, on 8
samples upscaled to 1x3x640x640. It prints the nodes kept, the conversions run, the time and the peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
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


def quantize(model: Path, out: Path, calib: Path, method: str, *extra: str) -> tuple[int, float, str]:
    from trtbuild.cli import main

    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--log-level", "error", "quantize", str(model), "-o", str(out), "--calib-data", str(calib),
                     "--calib-method", method, *extra])  # fmt: skip
    lines = err.getvalue().strip().splitlines()
    return code, time.perf_counter() - start, (lines[-1][:100] if lines else "")


def measured(model: Any, path: Path, converted: Path, feeds: list[dict[str, Any]]) -> str:
    from corpus import judge

    verdict = judge.judge(path, converted, feeds, "int8", **model.measures)
    worst = verdict.worst()
    text = ", ".join(f"cos {value:.4f}" if key == "cosine" else f"{key} {value:.1%}" for key, value in worst.items())
    return f"{'pass' if verdict.passed else 'FAIL'} ({text})"


def yolov8_640() -> int:
    """Time a forced repair search on the YOLOv8n export at 640x640 (8 samples, 2 held out by quantize)."""
    import resource

    import numpy as np
    from corpus import fetch, inputs
    from PIL import Image

    model = fetch.model("nudenet_320n_yolov8n")
    feeds = inputs.real_samples(model.id, fetch.data_root(), 8)
    with tempfile.TemporaryDirectory(prefix="repair-yolo640-") as tmp_name:
        calib = Path(tmp_name) / "calib"
        calib.mkdir()
        for index, feed in enumerate(feeds):
            planes = [Image.fromarray(plane).resize((640, 640), Image.BILINEAR) for plane in feed["images"][0]]
            np.savez(calib / f"{index:02d}.npz", images=np.stack([np.asarray(p) for p in planes])[None])
        out = Path(tmp_name) / "repaired.onnx"
        code, seconds, why = quantize(fetch.model_path(model), out, calib, "minmax", "--min-cosine", "0.99995",
                                      "--repair")  # fmt: skip
        if code != 0:
            print(f"refused after {seconds:.0f} s: {why}")
            return 1
        report = json.loads(Path(str(out) + ".accuracy.json").read_text())["repair"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"YOLOv8n 640x640, min-max, --min-cosine 0.99995 --repair: kept {len(report['kept_nodes'])} of "
          f"{report['candidate_nodes']} quantized nodes ({report['kept_weight_share']:.1%} of their weights), "
          f"{report['evaluations']} conversions, search {report['seconds']:.0f} s, whole command {seconds:.0f} s, "
          f"peak RSS {peak_mb:.0f} MB")
    return 0


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    from corpus import fetch, inputs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated corpus ids (default: those with a catalog repair entry)")
    parser.add_argument("--method", help="calibration method for every model (default: the catalog's)")
    parser.add_argument("--yolov8-640", action="store_true", help="time a forced search on YOLOv8n at 640x640")
    args = parser.parse_args(argv)
    if args.yolov8_640:
        return yolov8_640()
    wanted = set(args.models.split(",")) if args.models else None
    root = fetch.data_root()
    print("| model | method | before (judge) | after --repair (judge) | nodes kept | share of weights | time |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="repair-corpus-") as tmp_name:
        for model in fetch.models():
            if (wanted and model.id not in wanted) or (not wanted and "repair" not in model.extra):
                continue
            method = args.method or model.extra.get("repair", {}).get("method", "auto")
            path = fetch.model_path(model)
            feeds = inputs.real_samples(model.id, root, 12)
            work = Path(tmp_name) / model.id
            calib = work / "calib"
            calib.mkdir(parents=True)
            for index, feed in enumerate(feeds[CALIBRATE]):
                np.savez(calib / f"{index:02d}.npz", **feed)
            judged = feeds[JUDGED]
            plain = work / "plain.onnx"
            code, _, why = quantize(path, plain, calib, method, "--no-accuracy-check")
            before = measured(model, path, plain, judged) if code == 0 else f"refused: {why}"
            repaired = work / "repaired.onnx"
            code, seconds, why = quantize(path, repaired, calib, method, "--repair")
            if code != 0:
                print(f"| {model.id} | {method} | {before} | refused: {why} | - | - | {seconds:.0f} s |", flush=True)
                continue
            report = json.loads(Path(str(repaired) + ".accuracy.json").read_text()).get("repair") or {}
            kept = f"{len(report.get('kept_nodes', []))} of {report.get('candidate_nodes', '?')}"
            share = f"{report.get('kept_weight_share', 0.0):.1%}" if report else "-"
            after = measured(model, path, repaired, judged)
            print(f"| {model.id} | {method} | {before} | {after} | {kept} | {share} | {seconds:.0f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
