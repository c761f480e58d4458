"""INT8 range search: when calibrated ranges leave a model far from FP32, each quantized activation's
range is tried at smaller factors and the best worst-batch cosine is kept (trtbuild/model/range_search.py)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationMethod
from onnxruntime.quantization.calibrate import TensorData, TensorsData

from trtbuild.cli import main
from trtbuild.model import range_search
from trtbuild.model.range_search import FACTORS, MAX_TENSORS, RangeSearch, narrow_ranges

BINS = 64


def run_cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--log-level", "info", *args])
    return code, err.getvalue()


def log_spectrum_model(path: Path, layers_after: int = 0) -> Path:
    """power [N, 64] -> MatMul (a positive filterbank) -> Clip(1e-3) -> Log: an audio front end in small,
    then ``layers_after`` 8x8 MatMuls (each one more quantized activation).
    Its input spans eight decades, so an INT8 range set by the loudest value zeroes every quiet bin."""
    rng = np.random.default_rng(0)
    bank = np.abs(rng.normal(0, 1, (BINS, 8))).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["power", "bank"], ["energy"], name="Bank"),
             helper.make_node("Clip", ["energy", "floor"], ["clipped"], name="Floor"),
             helper.make_node("Log", ["clipped"], ["logmel0"], name="Log")]  # fmt: skip
    inits = [numpy_helper.from_array(bank, "bank"), numpy_helper.from_array(np.float32(1e-3), "floor")]
    for i in range(layers_after):
        weight = (np.eye(8) + rng.normal(0, 0.05, (8, 8))).astype(np.float32)
        nodes.append(helper.make_node("MatMul", [f"logmel{i}", f"w{i}"], [f"logmel{i + 1}"], name=f"Layer{i}"))
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
    nodes.append(helper.make_node("Identity", [f"logmel{layers_after}"], ["logmel"], name="Out"))
    graph = helper.make_graph(
        nodes,
        "spectrum",
        [helper.make_tensor_value_info("power", TensorProto.FLOAT, ["N", BINS])],
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["N", 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def spectra(count: int, seed: int, loudness: list[float] | None = None) -> np.ndarray:
    """Power spectra whose loudness varies by eight decades between samples (silence to speech; or the given
    decades, one per sample), two decades within one."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(1, 9, (count, 1)) if loudness is None else np.asarray(loudness, np.float64)[:, None]
    return (10.0 ** (level + rng.uniform(-1, 1, (count, BINS)))).astype(np.float32)


def cosine_on(fp32: Path, int8: Path, x: np.ndarray) -> float:
    want = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).run(None, {"power": x})[0].ravel()
    got = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"]).run(None, {"power": x})[0].ravel()
    return float(np.dot(want, got) / (np.linalg.norm(want) * np.linalg.norm(got)))


def q_scale(path: Path, tensor: str) -> float:
    model = onnx.load(str(path))
    scales = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor)
    return float(scales[node.input[1]])


class _Spy:
    """Counts calls to the search itself."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        return None


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("range-search") / "calib"
    folder.mkdir()
    for index, sample in enumerate(spectra(12, seed=1)):
        np.save(folder / f"{index:02d}.npy", sample[None])
    return folder


def test_auto_narrows_a_range_that_calibration_left_too_wide(calib_dir: Path, tmp_path: Path) -> None:
    model = log_spectrum_model(tmp_path / "spec.onnx")
    entropy, auto = tmp_path / "entropy.int8.onnx", tmp_path / "auto.int8.onnx"
    common = ["--calib-data", str(calib_dir), "--no-accuracy-check"]
    code, err = run_cli("quantize", str(model), "-o", str(entropy), "--calib-method", "entropy", *common)
    assert code == 0, err
    assert "range search" not in err  # an explicit method is what the user asked for
    code, err = run_cli("quantize", str(model), "-o", str(auto), *common)
    assert code == 0, err
    assert "INT8 range search: worst cosine" in err
    found = json.loads(auto.with_suffix(".calib.json").read_text())["provenance"]["range_search"]
    assert found["cosine_after"] > found["cosine_before"] and found["trials"] == len(FACTORS) and found["kept"]
    assert all(0 < factor < 1 for factor in found["factors"].values())
    fresh = spectra(64, seed=9)  # inputs neither calibration nor the search saw
    assert cosine_on(model, auto, fresh) > cosine_on(model, entropy, fresh) + 0.2  # measured: 0.94 vs 0.61


def test_more_quantized_activations_than_the_search_takes_are_left_to_repair(
    calib_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy()
    monkeypatch.setattr(range_search, "narrow_ranges", spy)
    model = log_spectrum_model(tmp_path / "deep.onnx", layers_after=MAX_TENSORS)  # MAX_TENSORS + 1 activations
    out = tmp_path / "deep.int8.onnx"
    code, err = run_cli("quantize", str(model), "-o", str(out), "--calib-data", str(calib_dir), "--no-accuracy-check")
    assert code == 0, err
    provenance = json.loads(out.with_suffix(".calib.json").read_text())["provenance"]
    assert spy.calls == 0 and "range_search" not in provenance
    assert "misses its accuracy verdict" in err  # the same front end: the search would have had work to do


def test_a_search_the_held_out_samples_reject_leaves_the_calibrated_ranges(
    calib_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = log_spectrum_model(tmp_path / "spec.onnx")
    kept, rejected = tmp_path / "kept.int8.onnx", tmp_path / "rejected.int8.onnx"
    common = ["--calib-data", str(calib_dir), "--no-accuracy-check"]
    assert run_cli("quantize", str(model), "-o", str(kept), *common)[0] == 0
    monkeypatch.setattr(RangeSearch, "kept", property(lambda self: False))
    code, err = run_cli("quantize", str(model), "-o", str(rejected), *common)
    assert code == 0, err
    searched = json.loads(kept.with_suffix(".calib.json").read_text())["provenance"]["range_search"]
    refused = json.loads(rejected.with_suffix(".calib.json").read_text())["provenance"]["range_search"]
    assert refused["kept"] is False and {"held_out_before", "held_out_after"} <= set(refused)
    factor = searched["factors"]["power"]
    assert refused["factors"]["power"] == factor  # the same search ran ...
    ratio = q_scale(kept, "power") / q_scale(rejected, "power")
    assert ratio == pytest.approx(factor, rel=1e-3)  # ... but its ranges were not written


def test_fewer_than_five_files_give_nothing_to_confirm_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy()
    monkeypatch.setattr(range_search, "narrow_ranges", spy)
    calib = tmp_path / "four"
    calib.mkdir()
    for index, sample in enumerate(spectra(4, seed=1, loudness=[2, 7, 1, 8])):
        np.save(calib / f"{index:02d}.npy", sample[None])
    model = log_spectrum_model(tmp_path / "spec.onnx")
    code, err = run_cli("quantize", str(model), "-o", str(tmp_path / "q.onnx"), "--calib-data", str(calib),
                        "--no-accuracy-check")  # fmt: skip
    assert code == 0, err
    assert "range search skipped" in err and "no held-out samples" in err and spy.calls == 0


def test_a_model_that_already_agrees_is_not_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calib = tmp_path / "loud"
    calib.mkdir()
    for index in range(10):
        np.save(calib / f"{index:02d}.npy", (10.0 ** (8 + np.random.default_rng(index).uniform(-1, 1, (1, BINS)))).astype(np.float32))
    spy = _Spy()
    monkeypatch.setattr(range_search, "narrow_ranges", spy)
    model = log_spectrum_model(tmp_path / "spec.onnx")
    out = tmp_path / "spec.int8.onnx"
    code, err = run_cli("quantize", str(model), "-o", str(out), "--calib-data", str(calib))
    assert code == 0, err
    assert spy.calls == 0 and "passes its accuracy verdict" in err


def _ranges(*names: str) -> TensorsData:
    one = np.array(1.0, np.float32)
    return TensorsData(CalibrationMethod.MinMax, {n: TensorData(lowest=-one, highest=one) for n in names})


def test_every_factor_is_tried_so_a_dip_does_not_stop_the_search() -> None:
    # worst batch falls, then rises past where it started: a search that stopped at the first drop would miss it
    by_step = [0.6 - 0.3 * i / 8 if i < 8 else 0.9 for i in range(len(FACTORS))]

    def score(ranges: TensorsData) -> float:
        factor = float(ranges.data["a"].range_value[1])
        return by_step[int(np.argmin([abs(np.log10(factor / f)) for f in FACTORS]))]

    result = narrow_ranges(_ranges("a"), ["a"], score, before=0.6)
    assert result is not None
    narrowed, found = result
    assert found.trials == len(FACTORS) and found.cosine_after == 0.9
    assert found.factors["a"] == FACTORS[8]
    assert float(narrowed.data["a"].range_value[1]) == pytest.approx(FACTORS[8])


def test_no_gain_keeps_the_calibrated_ranges() -> None:
    assert narrow_ranges(_ranges("a", "b"), ["a", "b"], lambda r: 0.5 + range_search.MIN_GAIN / 2, before=0.5) is None


def test_narrowed_ranges_that_lose_on_held_out_samples_are_not_kept() -> None:
    found = RangeSearch(cosine_before=0.95, cosine_after=0.958, factors={"a": 0.316})
    found.confirm(0.995, 0.966)  # fits the calibration batches, moves held-out samples away (a VAD's state)
    assert not found.kept and found.to_json()["kept"] is False
    found.confirm(0.775, 0.980)  # the mel front end: better everywhere
    assert found.kept and found.to_json()["held_out_after"] == 0.98
    found.confirm(1.0, 0.9999)  # held-out samples that were fine already move by rounding only
    assert found.kept


def test_trt11_int8_build_records_the_search_in_the_engine_manifest(tmp_path: Path, trt11: Any) -> None:
    """Under the test double at API level 11.x, `build --int8` quantizes the ONNX first: same search, recorded."""
    calib = tmp_path / "calib"
    calib.mkdir()
    # three decades, quiet and loud alternating: the held-out pair (the last two files) misses, the search mends it
    for index, sample in enumerate(spectra(10, seed=1, loudness=[2, 5, 2.5, 5.5, 3, 4, 2, 5, 2.2, 5.2])):
        np.save(calib / f"{index:02d}.npy", sample[None])
    model = log_spectrum_model(tmp_path / "spec.onnx")
    engine = tmp_path / "spec.engine"
    shapes = ["--min", f"power:1x{BINS}", "--opt", f"power:1x{BINS}", "--max", f"power:4x{BINS}"]
    code, err = run_cli("build", str(model), *shapes, "--int8", "--calib-data", str(calib), "--output", str(engine))
    assert code == 0, err
    pipeline = json.loads(Path(str(engine) + ".json").read_text())["precision"]["pipeline"]
    found = pipeline["calibration"]["range_search"]
    assert found["kept"] and found["factors"] and found["cosine_after"] > found["cosine_before"]
    code, err = run_cli("build", str(model), *shapes, "--int8", "--calib-data", str(calib), "--output", str(engine))
    assert code == 0 and "Reusing the range cache" in err, err  # the searched ranges, from the cache
    again = json.loads(Path(str(engine) + ".json").read_text())["precision"]["pipeline"]["calibration"]
    assert again["range_search"] == found  # the manifest still says how those ranges were chosen
