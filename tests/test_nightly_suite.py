"""Suite files: parsing, validation messages, case ids, thresholds, shards and the ``--list`` CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtbuild.cli import main
from trtbuild.errors import TrtbuildError
from trtbuild.nightly import plan_cases
from trtbuild.nightly.suite import (
    load_suite,
    make_case_id,
    parse_shard,
    resolve_thresholds,
    select_cases,
    shard_cases,
    suite_from_dict,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "suites" / "example.toml"


def suite(**extra: object) -> dict[str, object]:
    data: dict[str, object] = {"name": "t", "model": [{"model": "zoo:resnet", "batches": [1]}]}
    data.update(extra)
    return data


def test_example_suite_cases_are_the_cross_product_with_stable_ids() -> None:
    s = load_suite(EXAMPLE)
    ids = [c.id for c in s.cases()]
    assert len(ids) == len(set(ids)) == 3 * 4  # (resnet b1, yolo 96, two_input b1, b4) x (ort, torch, trt)
    assert "resnet-fp32-ort-b1" in ids and "two_input-fp32-torch-b4" in ids and "yolo-fp32-trt-1x3x96x96" in ids
    assert ids == [c.id for c in load_suite(EXAMPLE).cases()]
    assert s.content_hash == load_suite(EXAMPLE).content_hash and len(s.file_sha256) == 64
    case = next(c for c in s.cases() if c.id == "resnet-fp32-ort-b1")
    assert case.thresholds == {"cpu": 1.05}  # the backend table replaces the general metrics
    trt = next(c for c in s.cases() if c.backend == "trt")
    assert trt.thresholds == {"latency": 1.05}
    assert case.limits == {"timeout_s": 120.0, "memory_mib": 4096}
    assert case.tolerance == {"atol": 1e-4, "rtol": 1e-3}


def test_shapes_batches_profiles_and_labels(tmp_path: Path) -> None:
    s = suite_from_dict({
        "name": "t", "precisions": ["fp32", "fp16"], "backends": ["ort", "trt"],
        "model": [
            {"name": "yolo", "model": "zoo:yolo", "shapes": ["images:1x3x64x64", {"label": "big", "shape": "1x3x640x640"}],
             "profile": {"images": {"min": "1x3x64x64", "max": "4x3x640x640"}}},
            {"name": "cls", "model": "zoo:resnet", "shape": "input:1x3x224x224", "batches": [1, 8], "profile": "imagenet224"},
        ],
    })  # fmt: skip
    ids = [c.id for c in s.cases()]
    assert ids[:4] == ["yolo-fp32-ort-1x3x64x64", "yolo-fp32-ort-big", "yolo-fp32-trt-1x3x64x64", "yolo-fp32-trt-big"]
    assert "cls-fp16-trt-b8" in ids and len(ids) == 2 * 2 * 4
    yolo = s.cases()[0]
    assert yolo.profiles == [{"images": {"min": [1, 3, 64, 64], "opt": [4, 3, 640, 640], "max": [4, 3, 640, 640]}}]
    cls = next(c for c in s.cases() if c.id == "cls-fp32-ort-b8")
    assert cls.shape.batch == 8 and cls.template == {"input": (1, 3, 224, 224)} and len(cls.profiles) == 2


def test_case_ids_are_filename_safe() -> None:
    assert make_case_id("m", "fp16", "ort:cuda", "a:b/c") == "m-fp16-ort_cuda-a_b_c"
    assert make_case_id("m", "fp32", "torch@cuda", "b1") == "m-fp32-torch_cuda-b1"


def test_relative_paths_resolve_against_the_suite_file(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('name = "t"\n[[model]]\nmodel = "models/net.onnx"\nshape = "1x3x8x8"\n'
                                     '[[model]]\nexport = "nets.py:build"\ninputs = ["x:1x4"]\n')  # fmt: skip
    s = load_suite(tmp_path / "s.toml")
    assert s.models[0].source == str(tmp_path / "models" / "net.onnx") and s.models[0].name == "net"
    assert s.models[1].source == f"{tmp_path / 'nets.py'}:build" and s.models[1].export_inputs == ["x:1x4"]


@pytest.mark.parametrize(("data", "key", "fix"), [
    (suite(prescisions=["fp32"]), "'prescisions'", "did you mean 'precisions'"),
    (suite(precisions=["fp64"]), "'precisions'", "fp32, fp16"),
    (suite(backends=["tensorflow"]), "'backends'", "ort"),
    ({"model": [{"model": "zoo:resnet"}]}, "'name'", "name ="),
    (suite(model=[]), "'model'", "[[model]]"),
    (suite(model=[{"model": "zoo:resnet", "export": "a.py:f"}]), "'model[0]'", "exactly one of"),
    (suite(model=[{"model": "net.pt"}]), "'model[0].model'", ".onnx"),
    (suite(model=[{"export": "nofactory"}]), "'model[0].export'", "module:factory"),
    (suite(model=[{"model": "zoo:a", "shapes": ["1x3"], "batches": [1]}]), "'model[0]'", "either explicit shapes"),
    (suite(model=[{"model": "zoo:a", "shapes": ["1x3x"]}]), "'model[0].shapes[0]'", "images:1x3x640x640"),
    (suite(model=[{"model": "zoo:a", "batches": [0]}]), "'model[0].batches'", "batch sizes"),
    (suite(model=[{"model": "zoo:a", "profile": "nosuchpreset"}]), "'model[0].profile'", "imagenet224"),
    (suite(model=[{"model": "zoo:a"}, {"model": "zoo:a"}]), "'model[1].name'", "distinct name"),
    (suite(model=[{"model": "zoo:a", "name": "a-b"}]), "'model[0].name'", "no '-'"),
    (suite(gate={"thresholds": {"speed": 1.1}}), "'gate.thresholds.speed'", "latency"),
    (suite(gate={"thresholds": {"latency": 0.95}}), "'gate.thresholds.latency'", ">= 1"),
    (suite(gate={"thresholds": {"ort": {"cpu": 1.0}}}), "'gate.thresholds.ort.cpu'", "above 1"),
    (suite(gate={"confidence": 1.5}), "'gate.confidence'", "0.95"),
    (suite(limits={"timeout_s": -1}), "'limits.timeout_s'", ">= 0.1"),
    (suite(accuracy={"fp16": {"atol": "big"}}), "'accuracy.fp16.atol'", "a number"),
    (suite(schema=2), "'schema'", "schema = 1"),
    (suite(timing={"iterations": 2.5}), "'timing.iterations'", "whole number"),
])  # fmt: skip
def test_mistakes_name_the_key_and_the_fix(data: dict[str, object], key: str, fix: str) -> None:
    with pytest.raises(TrtbuildError) as info:
        suite_from_dict(data, source="s.toml")
    message = str(info.value)
    assert message.startswith("s.toml: ")
    assert key in message and fix in message, message


def test_thresholds_per_backend_and_model() -> None:
    general = {"latency": 1.05, "ort": {"cpu": 1.05}}
    assert resolve_thresholds(general, {}, "trt") == {"latency": 1.05}
    assert resolve_thresholds(general, {}, "ort") == {"cpu": 1.05}
    assert resolve_thresholds(general, {"latency": 1.2}, "trt") == {"latency": 1.2}
    assert resolve_thresholds(general, {"ort": {"latency": 1.1}}, "ort") == {"cpu": 1.05, "latency": 1.1}
    s = suite_from_dict(suite(gate={"thresholds": general},
                              model=[{"model": "zoo:resnet", "thresholds": {"latency": 1.2}}]))  # fmt: skip
    assert {c.backend: c.thresholds for c in s.cases()} == {"ort": {"cpu": 1.05}}


def test_shards_are_disjoint_deterministic_and_complete() -> None:
    cases = load_suite(EXAMPLE).cases()
    shards = [shard_cases(cases, i, 3) for i in (1, 2, 3)]
    ids = [c.id for shard in shards for c in shard]
    assert sorted(ids) == sorted(c.id for c in cases) and len(ids) == len(set(ids))
    assert [c.id for c in shard_cases(list(reversed(cases)), 2, 3)] == [c.id for c in shards[1]]
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1
    assert parse_shard(" 2 / 4 ") == (2, 4)
    for bad in ("0/4", "5/4", "1of4", "", "1/0"):
        with pytest.raises(TrtbuildError, match="--shard"):
            parse_shard(bad)


def test_only_globs() -> None:
    cases = load_suite(EXAMPLE).cases()
    assert {c.id for c in select_cases(cases, ["*-trt-*"])} == {c.id for c in cases if c.backend == "trt"}
    with pytest.raises(TrtbuildError, match="--only"):
        select_cases(cases, ["nothing*"])
    assert [c.id for c in plan_cases(load_suite(EXAMPLE), only=["resnet-*"], shard="1/1")] == [
        "resnet-fp32-ort-b1", "resnet-fp32-torch-b1", "resnet-fp32-trt-b1"]  # fmt: skip


def test_cli_list_and_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nightly", str(EXAMPLE), "--list", "--shard", "1/2"]) == 0
    listed = capsys.readouterr().out.split()
    assert len(listed) == 6 and all(i in [c.id for c in load_suite(EXAMPLE).cases()] for i in listed)
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "t"\nbackends = ["onnx"]\n[[model]]\nmodel = "zoo:resnet"\n')
    assert main(["nightly", str(bad), "--list"]) == 2
    err = capsys.readouterr().err
    assert "'backends' has 'onnx'" in err and "Traceback" not in err
    assert main(["nightly", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["nightly", "--help"])
    text = capsys.readouterr().out
    for line in ("0  pass", "1  regression", "2  usage or configuration error", "3  broken run"):
        assert line in text
