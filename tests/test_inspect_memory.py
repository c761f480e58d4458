"""`inspect` of a model with inline weights reads its structure without the weights' bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import _get_all_tensors

from trtbuild.errors import ModelError
from trtbuild.model.inspect import inspect_model
from trtbuild.model.load import load_onnx_structure


def _model_with_every_tensor_kind(weight_shape: tuple[int, int] = (64, 64)) -> onnx.ModelProto:
    """Initializers, a Constant node and an If whose branches hold Constant tensors (subgraphs)."""
    rng = np.random.default_rng(0)
    n = weight_shape[0]
    w = numpy_helper.from_array(rng.standard_normal(weight_shape, dtype=np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal((weight_shape[1],), dtype=np.float32), "b")
    flag = numpy_helper.from_array(np.array(True), "flag")

    def branch(name: str, value: float) -> onnx.GraphProto:
        const = helper.make_node("Constant", [], [f"{name}_c"], value=numpy_helper.from_array(
            np.full((weight_shape[1],), value, np.float32), f"{name}_t"))  # fmt: skip
        return helper.make_graph(
            [const], name, [], [helper.make_tensor_value_info(f"{name}_c", TensorProto.FLOAT, [weight_shape[1]])]
        )

    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.ones(3, np.int64), "k_t")),
        helper.make_node("If", ["flag"], ["shift"], then_branch=branch("then", 1.0), else_branch=branch("else", 2.0)),
        helper.make_node("Add", ["h", "b"], ["hb"]),
        helper.make_node("Add", ["hb", "shift"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", weight_shape[1]])],
        [w, b, flag],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")
    model.ir_version = 8
    return model


def test_structure_equals_the_full_model_without_raw_data(tmp_path: Path) -> None:
    model = _model_with_every_tensor_kind()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    structure, lengths = load_onnx_structure(path)

    expected = onnx.load(str(path))
    sizes = {}
    for tensor in _get_all_tensors(expected):
        sizes[tensor.name] = len(tensor.raw_data)
        tensor.ClearField("raw_data")
    assert structure.SerializeToString() == expected.SerializeToString()
    assert lengths == {name: size for name, size in sizes.items() if size}
    assert set(lengths) == {"w", "b", "flag", "k_t", "then_t", "else_t"}  # initializers, Constant, subgraphs
    assert lengths["w"] == 64 * 64 * 4


def test_inspect_report_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_model_with_every_tensor_kind(), str(path))
    report = inspect_model(path)
    assert report.checker == "ok"
    assert report.op_histogram == {"Constant": 3, "MatMul": 1, "If": 1, "Add": 2}
    assert report.initializer_count == 3 and report.initializer_bytes == 64 * 64 * 4 + 64 * 4 + 1
    assert [t.name for t in report.inputs] == ["x"] and report.producer == "test"


def _checker_by_path(path: Path) -> str:
    try:
        onnx.checker.check_model(str(path), full_check=False)
        return "ok"
    except onnx.checker.ValidationError as exc:
        return str(exc).strip().splitlines()[0]


def test_checker_verdicts_match_onnx_checker_on_the_file(tmp_path: Path) -> None:
    short = _model_with_every_tensor_kind()
    short.graph.initializer[0].raw_data = short.graph.initializer[0].raw_data[:100]  # truncated weights
    broken = _model_with_every_tensor_kind()
    broken.graph.node[0].input[0] = ""  # MatMul without its first input
    broken.graph.ClearField("output")  # a graph without outputs
    for name, model in (("short", short), ("broken", broken)):
        path = tmp_path / f"{name}.onnx"
        onnx.save(model, str(path))
        want = _checker_by_path(path)
        assert want != "ok"
        assert inspect_model(path).checker == want, name


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 64)
    truncated = tmp_path / "truncated.onnx"
    onnx.save(_model_with_every_tensor_kind(), str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:-40])
    for path in (empty, garbage, truncated):
        with pytest.raises(ModelError, match="not a readable ONNX model"):
            load_onnx_structure(path)


def _peak_rss_mb(*args: str) -> float:
    child = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, err.decode()[-1000:]
    return usage.ru_maxrss / 1024


@pytest.mark.slow
def test_inspect_of_a_large_inline_model_does_not_hold_its_weights(tmp_path: Path) -> None:
    small, large = tmp_path / "small.onnx", tmp_path / "large.onnx"
    onnx.save(_model_with_every_tensor_kind((64, 64)), str(small))
    onnx.save(_model_with_every_tensor_kind((4096, 2048)), str(large))  # 32 MiB of inline weights
    size_mb = large.stat().st_size / 2**20
    base = _peak_rss_mb("-m", "trtbuild", "inspect", str(small))
    peak = _peak_rss_mb("-m", "trtbuild", "inspect", str(large))
    # onnx.load + onnx.checker by path held the weights two to three times over (~3x the file size)
    assert peak - base < 0.25 * size_mb, f"inspect peaked at {peak:.0f} MB vs {base:.0f} MB for a {size_mb:.0f} MB model"
