"""bench with real inputs (--data), thread settings on every row, per-input batch axes and partial sweeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trtbuild.bench.table import LatencyTable
from trtbuild.bench.timing import TimingOptions
from trtbuild.shapes import TensorInfo

FAST = TimingOptions.quick(warm_up_ms=2, iterations=3, duration_s=0.02)


@pytest.fixture(scope="module")
def state_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """x [batch, 16], state [2, batch, 128], idx int64 [1] -> y [batch].

    y needs x and state at the same batch (a sweep of axis 0 of every input breaks it), idx must be a
    valid index into a 4-row table (random int64 inputs in [-128, 127] fail), and a constant [2, 16]
    added to x makes batch 4 fail while 1 and 2 broadcast (a sweep point that fails).
    """
    import onnx
    from onnx import TensorProto, helper

    table = helper.make_tensor("table", TensorProto.FLOAT, [4], [0.0, 1.0, 2.0, 3.0])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [2, 16], [0.5] * 32)
    axes_state = helper.make_tensor("axes_state", TensorProto.INT64, [2], [0, 2])
    axes_x = helper.make_tensor("axes_x", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Gather", ["table", "idx"], ["picked"]),
        helper.make_node("Add", ["x", "bias"], ["xb"]),
        helper.make_node("ReduceSum", ["xb", "axes_x"], ["sx"], keepdims=0),
        helper.make_node("ReduceSum", ["state", "axes_state"], ["ss"], keepdims=0),
        helper.make_node("Add", ["sx", "ss"], ["s"]),
        helper.make_node("Mul", ["s", "picked"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "state_model",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "batch", 128]),
         helper.make_tensor_value_info("idx", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
        initializer=[table, bias, axes_state, axes_x],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("state") / "state.onnx"
    onnx.save(model, path)
    return path


def _data(folder: Path, batch: int = 2) -> Path:
    rng = np.random.default_rng(0)
    path = folder / "eval.npz"
    np.savez(path, x=rng.random((batch, 16), dtype=np.float32), state=rng.random((2, batch, 128), dtype=np.float32),
             idx=np.array([3], dtype=np.int64))  # fmt: skip
    return path


def test_batch_axis_is_the_symbol_the_inputs_share() -> None:
    from trtbuild.bench.run import batch_axes

    inputs = [TensorInfo("x", "float32", ("batch", 16)), TensorInfo("state", "float32", (2, "batch", 128)),
              TensorInfo("idx", "int64", (1,))]  # fmt: skip
    shapes = {"x": (2, 16), "state": (2, 2, 128), "idx": (1,)}
    assert batch_axes(inputs, shapes) == {"x": 0, "state": 1}
    # no name like "batch": the symbol on axis 0 of the first input that has one
    inputs = [TensorInfo("a", "float32", ("s0", "len")), TensorInfo("b", "float32", ("len", "s0"))]
    assert batch_axes(inputs, {"a": (1, 5), "b": (5, 1)}) == {"a": 0, "b": 1}
    # unnamed dynamic dims (engines) and unknown inputs: a dynamic axis 0; a fixed axis 0 never moves
    inputs = [TensorInfo("a", "float32", (-1, 3)), TensorInfo("b", "float32", (4, 3))]
    assert batch_axes(inputs, {"a": (1, 3), "b": (4, 3)}) == {"a": 0}


def test_sweep_sets_each_inputs_batch_axis_and_keeps_points_before_a_failure(state_model: Path, tmp_path: Path) -> None:
    from trtbuild.bench.run import bench

    table = bench(state_model, "ort", batch_sweep=[1, 2, 4], data=_data(tmp_path), timing=FAST, out_dir=tmp_path,
                  plots=False)  # fmt: skip
    assert [r["shape"] for r in table.rows] == ["x:1x16,state:2x1x128,idx:1", "x:2x16,state:2x2x128,idx:1"]
    assert [r["batch"] for r in table.rows] == [1, 2]
    [failure] = table.failed
    assert "batch 4" in failure and "x:4x16,state:2x4x128" in failure
    written = LatencyTable.read(table.files["json"])  # the measured points were written
    assert len(written) == 2 and written.rows[0]["base_shape"] == "x:Nx16,state:2xNx128,idx:1"


def test_data_feeds_real_inputs_where_random_ones_fail(state_model: Path, tmp_path: Path) -> None:
    from trtbuild.bench.run import bench
    from trtbuild.errors import TrtbuildError

    with pytest.raises(TrtbuildError, match="Nothing could be measured"):  # random idx is out of range
        bench(state_model, "ort", shapes="x:2x16,state:2x2x128", timing=FAST, out_dir=None)
    table = bench(state_model, "ort", data=_data(tmp_path), timing=FAST, out_dir=None)
    assert len(table) == 1 and table.rows[0]["shape"] == "x:2x16,state:2x2x128,idx:1"
    assert table.rows[0]["data"].endswith("eval.npz")


def test_data_from_a_folder_of_samples_uses_the_calibration_reader(tmp_path: Path, resnet_onnx: Path) -> None:
    from trtbuild.bench.run import bench

    folder = tmp_path / "samples"
    folder.mkdir()
    for k in range(3):
        np.save(folder / f"s{k}.npy", np.full((3, 224, 224), k, dtype=np.float32))
    table = bench(resnet_onnx, "ort", data=folder, timing=FAST, out_dir=None)
    assert table.rows[0]["shape"] == "input:1x3x224x224"


def test_data_and_shapes_conflict_is_a_clear_error(state_model: Path, tmp_path: Path) -> None:
    from trtbuild.bench.run import bench
    from trtbuild.errors import SpecError

    with pytest.raises(SpecError, match="drop --shapes"):
        bench(state_model, "ort", shapes="x:1x16,state:2x1x128", data=_data(tmp_path), timing=FAST, out_dir=None)


def test_threads_and_affinity_on_every_row(tmp_path: Path) -> None:
    from trtbuild.bench.run import bench

    table = bench("zoo:two_input", ["ort", "torch"], threads=1, timing=FAST, out_dir=None)
    assert {r["runner"] for r in table.rows} == {"ort", "torch"}
    for row in table.rows:
        assert row["threads"] == 1 and row["cpu_affinity"] and row["intra_op_threads"] == 1
    ort = next(r for r in table.rows if r["runner"] == "ort")
    assert ort["ort_optimization_level"] == "all" and ort["inter_op_threads"] == 0  # sequential: ORT's default
    default = bench("zoo:two_input", "ort", timing=FAST, out_dir=None)
    assert default.rows[0]["threads"] is None and default.rows[0]["intra_op_threads"] == 0


def test_cli_bench_data_threads_exit_codes_and_80_column_table(state_model: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from trtbuild.cli import main

    data = _data(tmp_path)
    common = ["--quick", "--warmUp=2", "--iterations", "3", "--duration", "0.02", "--quiet", "--threads", "1"]
    assert main(["bench", str(state_model), "--data", str(data), "--out", str(tmp_path / "a"), *common]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith("  ")), out
    assert " threads " in out and "1/auto" in out
    code = main(["bench", str(state_model), "--data", str(data), "--batch-sweep", "1,4", "--out", str(tmp_path / "b"),
                 *common])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1 and "1 run(s) failed" in captured.err and "kept and written" in captured.err
    assert len(LatencyTable.read(next((tmp_path / "b").glob("bench-*.json")))) == 1
    assert main(["bench", str(state_model), "--threads", "0", "--no-save"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_printed_table_fits_80_columns_without_cutting_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    from trtbuild.bench.run import bench
    from trtbuild.cli.bench import DROP_ORDER, print_table

    table = bench("zoo:two_input", "ort", shapes="image:1x3x64x64,scale:1x1", batch_sweep=[1, 2], timing=FAST,
                  out_dir=None)  # fmt: skip
    print_table(table, width=80)
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert all(len(line) <= 80 for line in lines), out
    assert "samples/s" not in lines[0] and f"left out to fit 80 columns: {DROP_ORDER[0]}" in out
    median = table.rows[0]["latency_median_ms"]
    from trtbuild.bench.stats import format_number

    assert format_number(median) in out  # whole, not cut
    print_table(table, width=200)
    wide = capsys.readouterr().out
    assert "samples/s" in wide and "left out" not in wide


def test_data_from_an_image_folder_sized_by_shapes(tmp_path: Path, yolo_onnx: Path) -> None:
    from PIL import Image

    from trtbuild.bench.run import bench

    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(3):
        Image.new("RGB", (40, 30), (k * 60, 20, 200)).save(folder / f"{k}.png")
    table = bench(yolo_onnx, "ort", shapes="images:2x3x64x64", data=folder, batch_sweep=[1, 4], timing=FAST,
                  out_dir=None)  # fmt: skip
    assert [r["shape"] for r in table.rows] == ["images:1x3x64x64", "images:4x3x64x64"] and not table.failed
