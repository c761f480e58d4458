"""trtbuild bench: the timing loop, LatencyTable files, the API and the CLI (CPU backends; tiny durations).

No assertion here is about speed: numbers from these runs are CPU host-clock figures on a busy machine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from trtbuild.bench.table import SCHEMA_VERSION, LatencyTable, unique_stem
from trtbuild.bench.timing import TimingOptions, time_host
from trtbuild.errors import MissingDependencyError, ShapeError, SpecError

TINY = TimingOptions(warm_up_ms=5.0, iterations=5, duration_s=0.05)


# ---- the host-clock loop


def test_host_loop_runs_at_least_iterations_and_duration_after_warmup() -> None:
    calls = []

    def slow() -> None:
        calls.append(1)
        time.sleep(0.002)

    opts = TimingOptions(warm_up_ms=10.0, iterations=3, duration_s=0.05)
    traces = time_host(slow, opts)
    assert len(traces) == len(calls)
    measured = traces.compute_start >= opts.warm_up_ms
    assert measured.sum() >= 3
    assert traces.compute_start[measured][-1] >= opts.warm_up_ms + 50.0  # ran until >= warm-up + duration
    assert (~measured).sum() >= 1  # the warm-up queries were run and are in the traces


def test_host_loop_counts_iterations_exactly_without_warmup_or_duration() -> None:
    count = []
    traces = time_host(lambda: count.append(1), TimingOptions(warm_up_ms=0.0, iterations=7, duration_s=0.0))
    assert len(count) == 7 and len(traces) == 7


def test_timing_options_validate_and_take_trtexec_defaults() -> None:
    v11, v10 = TimingOptions.trtexec(11), TimingOptions.trtexec(10)
    assert (v11.warm_up_ms, v11.iterations, v11.duration_s) == (200.0, 10, 3.0)
    assert (v11.cuda_graph, v11.transfers, v11.spin_wait) == (True, False, True)
    assert (v10.cuda_graph, v10.transfers, v10.spin_wait) == (False, True, False)
    assert TimingOptions.quick(duration_s=0.1).duration_s == 0.1
    with pytest.raises(SpecError):
        TimingOptions(iterations=0)
    with pytest.raises(SpecError):
        TimingOptions(duration_s=-1)


# ---- bench API


@pytest.fixture(scope="module")
def yolo_table(tmp_path_factory: pytest.TempPathFactory, yolo_onnx: Path) -> LatencyTable:
    from trtbuild.bench.run import bench

    out = tmp_path_factory.mktemp("bench")
    export = out / "times.json"
    return bench("zoo:yolo", "ort,torch", batch_sweep=[1, 2], timing=TINY, out_dir=out, export_times=export,
                 echo=None)  # fmt: skip


def test_bench_writes_tables_and_plots(yolo_table: LatencyTable) -> None:
    files = yolo_table.files
    assert {"csv", "md", "json", "parquet", "latency_png", "batch_png"} <= set(files)
    stems = {p.name.split(".")[0].removesuffix("-latency").removesuffix("-batch") for p in files.values()}
    assert len(stems) == 1 and next(iter(stems)).startswith("bench-zoo-yolo-")
    for path in files.values():
        assert path.stat().st_size > 0
    assert files["latency_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(files["csv"].parent.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_bench_rows_carry_identity_mode_stats_and_environment(yolo_table: LatencyTable) -> None:
    frame = yolo_table.frame
    assert len(frame) == 4
    assert list(frame["runner"]) == ["ort", "ort", "torch", "torch"]
    assert list(frame["batch"]) == [1, 2, 1, 2]
    assert list(frame["shape"]) == ["images:1x3x320x320", "images:2x3x320x320"] * 2
    assert set(frame["base_shape"]) == {"images:Nx3x320x320"}
    assert set(frame["clock"]) == {"host"} and set(frame["cuda_graph"]) == {"n/a"}
    assert set(frame["precision"]) == {"fp32"}
    assert (frame["schema_version"] == SCHEMA_VERSION).all()
    for col in ("env_host", "env_cpu", "env_python", "env_onnxruntime", "env_torch", "env_trtbuild"):
        assert frame[col].notna().all(), col
    assert (frame["queries"] >= TINY.iterations).all()
    # (walltime may fall short of --duration: the loop ends once a query *starts* after warm-up + duration,
    # and the first measured query can start after the warm-up mark; test_host_loop_* checks the loop rule)
    assert (frame["walltime_s"] > 0).all()
    # samples/s = batch x qps; CPU backends measure no enqueue/transfer split: NaN, never 0.
    assert np.allclose(frame["throughput_samples_s"], frame["batch"] * frame["throughput_qps"])
    assert frame["enqueue_median_ms"].isna().all() and frame["h2d_mean_ms"].isna().all()
    assert (frame["latency_min_ms"] <= frame["latency_median_ms"]).all()
    assert (frame["latency_median_ms"] <= frame["latency_p99_ms"]).all()
    assert (frame["latency_p99_ms"] <= frame["latency_max_ms"]).all()


def test_bench_json_keeps_schema_and_samples_and_reads_back(yolo_table: LatencyTable) -> None:
    from trtbuild.bench.stats import metric_stats

    data = json.loads(yolo_table.files["json"].read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert len(data["rows"]) == 4
    first = data["rows"][0]
    samples = data["samples_ms"][first["run_id"]]
    assert len(samples) == first["queries"]
    # the stored statistics are those of the stored samples
    assert metric_stats(samples).percentile(99) == pytest.approx(first["latency_p99_ms"])
    assert first["enqueue_median_ms"] is None  # not measured -> null, not NaN (invalid JSON)
    again = LatencyTable.read(yolo_table.files["json"])
    assert again.rows[0]["run_id"] == first["run_id"]
    assert again.samples(first["run_id"]) is not None
    from_csv = LatencyTable.read(yolo_table.files["csv"])
    assert list(from_csv.frame["runner"]) == ["ort", "ort", "torch", "torch"]
    markdown = yolo_table.files["md"].read_text()
    assert "| backend |" in markdown and "images:2x3x320x320" in markdown and "Schema version" in markdown


def test_bench_export_times_one_file_per_run(yolo_table: LatencyTable) -> None:
    paths = [Path(r["export_times"]) for r in yolo_table.rows]
    assert len(set(paths)) == 4
    assert paths[0].name.startswith("times-01-ort-1x3x320x320")
    entries = json.loads(paths[0].read_text())
    assert len(entries) == yolo_table.rows[0]["queries"]
    assert "startComputeMs" in entries[0] and "latencyMs" in entries[0]


def test_bench_api_is_callable_from_the_package(tmp_path: Path) -> None:
    import trtbuild

    table = trtbuild.bench("zoo:two_input", ["ort"], shapes="image:2x3x64x64,scale:2x1", timing=TINY,
                           out_dir=None)  # fmt: skip
    assert isinstance(table, trtbuild.LatencyTable)
    assert table.files == {}
    assert table.rows[0]["shape"] == "image:2x3x64x64,scale:2x1" and table.rows[0]["batch"] == 2


def test_bench_onnx_model_default_shapes_and_random_feed(tmp_path: Path, resnet_onnx: Path) -> None:
    from trtbuild.bench.run import bench

    table = bench(resnet_onnx, "ort", timing=TINY, out_dir=tmp_path, plots=False)
    assert table.rows[0]["shape"] == "input:1x3x224x224"  # dynamic batch -> 1 (trtexec), rest static
    assert "latency_png" not in table.files


def test_bench_skips_tensorrt_when_missing_unless_it_is_the_only_backend(tmp_path: Path) -> None:
    from trtbuild.bench.run import bench, tensorrt_unavailable

    if tensorrt_unavailable() is None:
        pytest.skip("TensorRT and PyCUDA are importable here")
    table = bench("zoo:two_input", "trt,ort", timing=TINY, out_dir=None)
    assert [r["runner"] for r in table.rows] == ["ort"]
    assert len(table.skipped) == 1 and table.skipped[0].startswith("trt: TensorRT is not usable here")
    with pytest.raises(MissingDependencyError, match="TensorRT"):
        bench("zoo:two_input", "trt", timing=TINY, out_dir=None)


def test_bench_rejects_bad_requests(tmp_path: Path) -> None:
    from trtbuild.bench.run import bench

    with pytest.raises(SpecError, match="Unknown backend"):
        bench("zoo:yolo", "onnxruntime", timing=TINY, out_dir=None)
    with pytest.raises(ShapeError, match="no input named"):
        bench("zoo:yolo", "ort", shapes="pixels:1x3x64x64", timing=TINY, out_dir=None)
    with pytest.raises(SpecError, match="does not exist"):
        bench(tmp_path / "missing.onnx", "ort", timing=TINY, out_dir=None)


def test_unique_stems_never_collide(tmp_path: Path) -> None:
    stems = set()
    for _ in range(50):
        stem = unique_stem(tmp_path, "zoo:yolo")
        (tmp_path / f"{stem}.csv").write_text("x")
        stems.add(stem)
    assert len(stems) == 50


# ---- CLI


def test_cli_bench_prints_trtexec_summary_and_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trtbuild.cli import main

    code = main(["bench", "zoo:yolo", "--backends", "ort", "--batch-sweep", "1,2", "--quick", "--duration", "0.05",
                 "--warmUp=5", "--iterations", "5", "--out", str(tmp_path), "--percentile=50,99.9"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "=== Performance summary ===" in out
    assert "percentile(50%) = " in out and "percentile(99.9%) = " in out
    assert "Timing mode: host clock" in out and "GPU Compute Time" not in out
    assert "Throughput (samples): " in out  # batch 2
    assert "wrote:" in out
    table = LatencyTable.read(next(tmp_path.glob("bench-*.json")))
    assert "latency_p99.9_ms" in table.rows[0] and table.rows[0]["warm_up_ms"] == 5.0
    assert len(list(tmp_path.glob("bench-*.png"))) == 2


def test_cli_bench_reports_user_errors_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    from trtbuild.cli import main

    assert main(["bench", "zoo:yolo", "--batch-sweep", "1,x", "--no-save"]) == SpecError.exit_code
    assert "--batch-sweep" in capsys.readouterr().err


def test_cli_timing_flags_map_to_options() -> None:
    from trtbuild.cli import build_parser
    from trtbuild.cli.bench import timing_options

    parser = build_parser()
    args = parser.parse_args(["bench", "m.engine", "--trtexec-defaults", "10", "--useCudaGraph", "--noDataTransfers"])
    opts = timing_options(args)
    assert isinstance(opts, TimingOptions)
    assert (opts.defaults, opts.cuda_graph, opts.transfers, opts.spin_wait) == (10, True, False, False)
    args = parser.parse_args(["bench", "m.onnx", "--quick", "--iterations=3"])
    opts = timing_options(args)
    assert isinstance(opts, TimingOptions)
    assert (opts.warm_up_ms, opts.iterations, opts.duration_s, opts.cuda_graph) == (50.0, 3, 0.5, True)


def test_timing_options_from_a_trtexec_command_line() -> None:
    from trtbuild.spec import BuildSpec

    spec = BuildSpec()
    spec.inference.warm_up, spec.inference.iterations, spec.inference.duration = 500, 50, 10.0
    spec.inference.data_transfers = True
    spec.reporting.percentile = "50,99.9"
    opts = TimingOptions.from_spec(spec, version=11)
    assert (opts.warm_up_ms, opts.iterations, opts.duration_s, opts.transfers) == (500.0, 50, 10.0, True)
    assert opts.cuda_graph is True and opts.percentiles == (50.0, 99.9)
    assert TimingOptions.from_spec(BuildSpec(), version=10) == TimingOptions.trtexec(10)
