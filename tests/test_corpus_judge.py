"""The corpus judge's token-classifier measure: padded positions are left out of argmax agreement,
real positions never are. Runs on two tiny ONNX models, no corpus download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from corpus import judge
from onnx import TensorProto, helper, numpy_helper

PAD = 0
TOKENS = np.array([[7, 30, 14, PAD]], np.int64)  # three characters, then one padded position
LOGITS = np.array([[[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.51, 0.49]]], np.float32)


def _token_model(path: Path, shift: np.ndarray) -> Path:
    """logits + shift -> probs; ``tokens`` is an input the output does not use (as a padding mask would be)."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["logits", "shift"], ["probs"])],
        "tokens",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, 4]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, 2])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 4, 2])],
        [numpy_helper.from_array(shift.astype(np.float32), "shift")],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _shift_at(position: int) -> np.ndarray:
    """Swaps the top-2 order of one near-tied position by a small shift (0.03), leaving the others."""
    shift = np.zeros((1, 4, 2), np.float32)
    shift[0, position] = [-0.015, 0.015]
    return shift


FEEDS = [{"tokens": TOKENS, "logits": LOGITS}]
KINDS = {"probs": "classify"}
PADDING = {"input": "tokens", "token": PAD}


def test_a_flip_at_a_padded_position_does_not_count(tmp_path: Path) -> None:
    reference = _token_model(tmp_path / "ref.onnx", np.zeros((1, 4, 2)))
    flipped = _token_model(tmp_path / "pad.onnx", _shift_at(3))
    counted = judge.agreement(reference, flipped, FEEDS, "int8", KINDS)
    assert counted.outputs["probs"]["argmax"] == pytest.approx(0.75) and not counted.passed
    padded = judge.agreement(reference, flipped, FEEDS, "int8", KINDS, padding=PADDING)
    assert padded.outputs["probs"]["argmax"] == 1.0 and padded.passed


def test_a_flip_at_a_real_token_still_fails(tmp_path: Path) -> None:
    shift = np.zeros((1, 4, 2), np.float32)
    shift[0, 2] = [-0.3, 0.3]  # 0.7/0.3 -> 0.4/0.6 at a character position
    reference = _token_model(tmp_path / "ref.onnx", np.zeros((1, 4, 2)))
    flipped = _token_model(tmp_path / "real.onnx", shift)
    verdict = judge.agreement(reference, flipped, FEEDS, "int8", KINDS, padding=PADDING)
    assert verdict.outputs["probs"]["argmax"] == pytest.approx(2 / 3) and not verdict.passed


def test_padding_input_of_another_shape_is_refused(tmp_path: Path) -> None:
    reference = _token_model(tmp_path / "ref.onnx", np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match="padding input logits"):
        judge.agreement(reference, reference, FEEDS, "int8", KINDS, padding={"input": "logits", "token": 0})
