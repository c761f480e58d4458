"""TrtRuntime under the TensorRT/PyCUDA test double (tests/trt_emulator) at each API level.

The double runs engines through ONNX Runtime on the CPU: these tests check the runtime's contracts
(profile choice, buffer reuse, errors, trtexec's loop structure), never speed. No number produced
here is a TensorRT or GPU figure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trtbuild.bench.timing import TimingOptions, summarize
from trtbuild.errors import MissingDependencyError, ShapeError

PROFILES = (
    {"min": "images:1x3x64x64", "opt": "images:2x3x96x96", "max": "images:2x3x128x128"},
    {"min": "images:3x3x160x160", "opt": "images:4x3x192x192", "max": "images:4x3x256x256"},
)
TINY = TimingOptions(warm_up_ms=2.0, iterations=4, duration_s=0.02)


def build_two_profile_engine(trt: Any, onnx: Path, out: Path) -> Path:
    """zoo yolo with two profiles, built through trtbuild's own plan -> builder path under the double."""
    from trtbuild.build import build_from_plan
    from trtbuild.plan import plan_build
    from trtbuild.shapes import profile_from_flags
    from trtbuild.spec import BuildSpec

    spec = BuildSpec(onnx=str(onnx))
    spec.build.profiles = [profile_from_flags(**p) for p in PROFILES]
    spec.build.save_engine = str(out / f"yolo-{trt.EMULATOR_LEVEL}.engine")
    return Path(build_from_plan(plan_build(spec, str(onnx))))


@pytest.fixture
def engine(trt_emulator: Any, yolo_onnx: Path, tmp_path: Path) -> Path:
    return build_two_profile_engine(trt_emulator, yolo_onnx, tmp_path)


def images(batch: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    return {"images": np.random.default_rng(seed).random((batch, 3, size, size), dtype=np.float32)}


def reference(onnx: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["output0"], feed)[0])


def test_profile_is_chosen_per_shape_and_outputs_match(engine: Path, yolo_onnx: Path) -> None:
    from trtbuild.trt.runtime import TrtRuntime

    with TrtRuntime(engine) as rt:
        assert [p.index for p in rt.profiles] == [0, 1]
        for batch, size, profile in ((1, 64, 0), (2, 128, 0), (3, 160, 1), (4, 256, 1), (2, 96, 0)):
            feed = images(batch, size)
            out = rt.infer(feed)
            assert rt.active_profile == profile, (batch, size)
            assert out["output0"].shape[0] == batch
            np.testing.assert_allclose(out["output0"], reference(yolo_onnx, feed), rtol=1e-4, atol=1e-5)


def test_buffers_are_allocated_once_per_profile_and_reused_across_shapes(engine: Path) -> None:
    from trtbuild.trt.runtime import TrtRuntime

    with TrtRuntime(engine) as rt:
        rt.infer(images(1, 64))
        allocations = rt.allocations
        addresses = {n: b.address for n, b in rt.buffers.items()}
        assert allocations == 2  # one input, one output, sized for profile 0's largest shape
        calls: list[tuple[str, tuple[int, ...]]] = []
        set_shape = rt.context.set_input_shape

        def counting(name: str, shape: Any) -> bool:
            calls.append((name, tuple(shape)))
            return bool(set_shape(name, shape))

        rt.context.set_input_shape = counting
        for batch, size in ((2, 128), (1, 96), (1, 96), (1, 96)):
            rt.infer(images(batch, size))
        assert rt.allocations == allocations
        assert {n: b.address for n, b in rt.buffers.items()} == addresses
        assert calls == [("images", (2, 3, 128, 128)), ("images", (1, 3, 96, 96))]  # repeats set nothing
        rt.infer(images(4, 256))  # profile 1: larger maxima grow the buffers once
        grown = rt.allocations
        assert grown > allocations
        rt.infer(images(3, 200))
        assert rt.allocations == grown


def test_uncovered_shape_is_refused_with_every_range_named(engine: Path) -> None:
    from trtbuild.trt.runtime import TrtRuntime

    with TrtRuntime(engine) as rt:
        with pytest.raises(ShapeError) as info:
            rt.infer(images(3, 64))  # batch 3 is only in profile 1, size 64 only in profile 0
        message = str(info.value)
        assert "images:3x3x64x64" in message
        assert "profile 0: images min 1x3x64x64 opt 2x3x96x96 max 2x3x128x128" in message
        assert "profile 1: images min 3x3x160x160 opt 4x3x192x192 max 4x3x256x256" in message
    with TrtRuntime(engine, profile_index=0) as pinned:
        with pytest.raises(ShapeError, match="profile 0 was requested"):
            pinned.infer(images(4, 192))
        assert pinned.infer(images(2, 64))["output0"].shape[0] == 2
    with pytest.raises(ShapeError, match="optimization profile"), TrtRuntime(engine, profile_index=5):
        pass


@pytest.mark.parametrize("transfers", [False, True])
def test_time_trtexec_follows_trtexecs_loop(engine: Path, transfers: bool) -> None:
    from trtbuild.trt.runtime import TrtRuntime

    options = TimingOptions(warm_up_ms=TINY.warm_up_ms, iterations=TINY.iterations, duration_s=TINY.duration_s,
                            transfers=transfers)  # fmt: skip
    capture = sys.modules["tensorrt"].EMULATOR_CAPTURE
    with TrtRuntime(engine) as rt:
        traces, mode = rt.time_trtexec(images(2, 96), options)
        assert rt.active_profile == 0
    assert mode.clock == "cuda-events"
    # Captured through the cuda-python stand-in and replayed once per query (the graph ran the engine).
    assert mode.cuda_graph == "graph" and capture.captures == 1
    (exe,) = capture.execs.values()
    assert exe.launches == len(traces.compute_start) and exe.destroyed
    assert mode.transfers is transfers and mode.spin_wait is True
    assert "Emulated" in mode.device  # the double names itself: its numbers cannot pass for a GPU's
    summary = summarize(traces, mode=mode, warm_up_ms=options.warm_up_ms, batch=2)
    assert summary.queries >= options.iterations
    assert traces.compute_start.max() >= options.warm_up_ms + options.duration_s * 1000.0
    durations = traces.durations()
    if transfers:
        assert (durations["h2d"] > 0).all() and (traces.h2d_end <= traces.compute_start + 1e-3).all()
    else:  # trtexec: without transfers the H2D/D2H stamps collapse onto the compute stamps
        assert (durations["h2d"] == 0).all() and (durations["d2h"] == 0).all()
        np.testing.assert_array_equal(durations["latency"], durations["compute"])


def test_bench_runs_engines_and_labels_the_double(engine: Path, yolo_onnx: Path, tmp_path: Path) -> None:
    from trtbuild.bench.run import bench

    table = bench(engine, "trt", timing=TINY, out_dir=tmp_path)
    row = table.rows[0]
    assert row["runner"] == "trt" and row["backend"] == "tensorrt"
    assert row["shape"] == "images:2x3x96x96"  # no --shapes: the first profile's opt shape (trtexec's rule)
    assert row["clock"] == "cuda-events" and row["cuda_graph"] == "graph"  # through the cuda-python stand-in
    assert "Emulated" in row["device"] and "Emulated" in row["mode"]
    both = bench(yolo_onnx, f"trt:{engine},ort", shapes=["images:1x3x64x64", "images:4x3x160x160"], timing=TINY,
                 out_dir=None)  # fmt: skip
    assert [(r["runner"], r["shape"]) for r in both.rows] == [
        (f"trt:{engine}", "images:1x3x64x64"), (f"trt:{engine}", "images:4x3x160x160"),
        ("ort", "images:1x3x64x64"), ("ort", "images:4x3x160x160"),
    ]  # fmt: skip
    assert [r["clock"] for r in both.rows] == ["cuda-events", "cuda-events", "host", "host"]


def test_runtime_without_tensorrt_is_a_missing_dependency(tmp_path: Path) -> None:
    from trtbuild.bench.run import tensorrt_unavailable

    if tensorrt_unavailable() is None:
        pytest.skip("TensorRT and PyCUDA are importable here")
    from trtbuild.trt.runtime import TrtRuntime

    plan = tmp_path / "m.engine"
    plan.write_bytes(b"ftrt" + bytes(64))
    with pytest.raises(MissingDependencyError), TrtRuntime(plan):
        pass


def nonzero_model(path: Path) -> Path:
    """x [n] -> indices of positive entries [1, k] (data-dependent), 2*x [n], and Range(0, 1, max(x)).

    The Range only makes the double's shape probe (a dry run on zeros: delta 0 is an error) give up, so
    that every output is reported with unknown (-1) dims, as TensorRT reports data-dependent shapes.
    """
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Greater", ["x", "zero"], ["positive"]),
            helper.make_node("NonZero", ["positive"], ["indices"]),
            helper.make_node("Add", ["x", "x"], ["doubled"]),
            helper.make_node("ReduceMax", ["x"], ["top"], keepdims=0),
            helper.make_node("Range", ["zero", "one", "top"], ["steps"]),
        ],
        "nonzero",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, [1, "k"]),
         helper.make_tensor_value_info("doubled", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("steps", TensorProto.FLOAT, ["s"])],  # fmt: skip
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]), helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("level", ["10.x", "11.x"])  # 8.6 has no INT64 tensors
def test_data_dependent_outputs_go_through_an_output_allocator(level: str, tmp_path: Path) -> None:
    from trt_emulator import install  # conftest puts tests/ on the path for its own fixtures

    from trtbuild.build import build_from_plan
    from trtbuild.plan import plan_build
    from trtbuild.shapes import profile_from_flags
    from trtbuild.spec import BuildSpec

    onnx_path = nonzero_model(tmp_path / "nonzero.onnx")
    with install(level):
        spec = BuildSpec(onnx=str(onnx_path))
        spec.build.profiles = [profile_from_flags(min="x:1", opt="x:8", max="x:64")]
        spec.build.save_engine = str(tmp_path / "nonzero.engine")
        engine = build_from_plan(plan_build(spec, str(onnx_path)))
        from trtbuild.trt.runtime import TrtRuntime

        with TrtRuntime(engine) as rt:
            for x in (np.array([1, -1, 2, 0, 3], np.float32), np.array([-1, -2, 5, 6, 7, 8, 9, -1, 4], np.float32)):
                out = rt.infer({"x": x})
                np.testing.assert_array_equal(out["indices"], np.nonzero(x > 0)[0][None, :])
                np.testing.assert_array_equal(out["doubled"], 2 * x)
                np.testing.assert_allclose(out["steps"], np.arange(0.0, 1.0, x.max(), dtype=np.float32))
            assert "indices" in rt.dynamic_outputs
            with pytest.raises(Exception, match="data-dependent"):
                rt.time_trtexec({"x": x}, TINY)
