"""BuildSpec <-> trtexec command lines, in the 10.x and 11.x dialects."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trtbuild.errors import SpecError, TrtbuildError
from trtbuild.shapes import ShapeRange
from trtbuild.spec import (
    DIALECTS,
    MEMORY_POOLS,
    OPTIONS,
    RANGES,
    UNSUPPORTED,
    BuildSpec,
    Opt,
    format_size,
    option_table,
    parse_mem_pools,
    parse_size,
)

_dims = st.lists(st.integers(1, 64), min_size=1, max_size=4).map(lambda d: "x".join(map(str, d)))


def _value_for(opt: Opt, dialect: int) -> st.SearchStrategy[str | None]:
    if opt.kind in ("flag", "neg_flag"):
        return st.just(None)
    lo, hi = RANGES.get(opt.attr, (0, 10_000))
    if opt.kind == "int":
        return st.integers(int(lo or 0), min(int(hi or 10_000), 10_000)).map(str)
    if opt.kind == "float":
        return st.sampled_from([v for v in ("0", "0.5", "1", "3", "1.25", "10") if float(v) <= (hi or 10)])
    if opt.kind == "choice":
        assert opt.choices
        return st.sampled_from(sorted(set(opt.choices.values())))
    if opt.kind == "mempool":
        return st.dictionaries(
            st.sampled_from([p for p in MEMORY_POOLS if p != "dlaSRAM"]),
            st.integers(1, 1 << 34),
            min_size=1,
        ).map(lambda d: ",".join(f"{k}:{v}B" for k, v in d.items()))
    if opt.kind == "list":
        return st.just("libplugin.so")
    if opt.kind == "inference_shapes":
        return _dims.map(lambda d: f"input:{d}")
    if opt.attr == "tactic_sources":
        return st.sampled_from(["-EDGE_MASK_CONVOLUTIONS", "+JIT_CONVOLUTIONS,-EDGE_MASK_CONVOLUTIONS"])
    if opt.attr in ("input_io_formats", "output_io_formats"):
        return st.sampled_from(["chw", "hwc8", "chw,chw32"])
    return st.sampled_from(["a.bin", "cache/timing.cache", "layer_1:GPU"])


SKIP_IN_ROUND_TRIP = {"allowGPUFallback", "excludeLeanRuntime", "calib", "calibProfile", "buildDLAStandalone", "stripAllWeights"}


@st.composite
def trtexec_argv(draw: st.DrawFn, dialect: int) -> list[str]:
    candidates = [
        o for o in OPTIONS if dialect in o.dialects and o.kind != "shape" and o.name not in SKIP_IN_ROUND_TRIP
    ]
    chosen = draw(st.lists(st.sampled_from(candidates), unique_by=lambda o: o.attr, max_size=12))
    argv = ["--onnx=model.onnx"]
    nprofiles = draw(st.integers(0, 2))
    for index in range(nprofiles):
        if nprofiles > 1:
            argv.append(f"--profile={index}")
        lo, hi = draw(_dims), draw(_dims)
        argv += [f"--minShapes=x:{lo}", f"--maxShapes=x:{hi}"]
    for opt in chosen:
        if opt.name == "best" and any(o.name == "stronglyTyped" for o in chosen):
            continue
        if opt.name in ("fp8", "int8") and {"fp8", "int8"} <= {o.name for o in chosen}:
            continue
        value = draw(_value_for(opt, dialect))
        argv.append(f"--{opt.name}" if value is None else f"--{opt.name}={value}")
    return argv


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_flags_spec_flags_round_trip(dialect: int, data: st.DataObject) -> None:
    argv = data.draw(trtexec_argv(dialect))
    spec = BuildSpec.from_trtexec_args(argv, dialect=dialect)
    command = spec.to_trtexec(dialect)
    assert command.notes == []
    again = BuildSpec.from_trtexec_args(command.args, dialect=dialect)
    assert again == spec
    assert again.to_trtexec(dialect).args == command.args


DONE_WHEN = ["--onnx=m.onnx", "--minShapes=input:1x3x224x224", "--optShapes=input:8x3x224x224", "--maxShapes=input:16x3x224x224", "--fp16", "--saveEngine=m.engine", "--memPoolSize=workspace:1024M"]


def test_done_when_command_line() -> None:
    spec = BuildSpec.from_trtexec_args(DONE_WHEN)
    assert spec.onnx == "m.onnx"
    assert spec.build.fp16 and spec.build.save_engine == "m.engine"
    assert spec.build.mem_pool_size == {"workspace": 1 << 30}
    assert spec.build.profiles[0].shapes["input"] == ShapeRange((1, 3, 224, 224), (8, 3, 224, 224), (16, 3, 224, 224))
    assert spec.to_trtexec(10).args == [
        "--onnx=m.onnx",
        "--minShapes=input:1x3x224x224",
        "--optShapes=input:8x3x224x224",
        "--maxShapes=input:16x3x224x224",
        "--fp16",
        "--memPoolSize=workspace:1G",
        "--saveEngine=m.engine",
    ]


def test_eleven_dialect_replaces_precision_flags_with_a_note() -> None:
    spec = BuildSpec.from_trtexec_args(DONE_WHEN)
    command = spec.to_trtexec(11)
    assert "--fp16" not in command.args
    assert any("trtbuild cast" in note for note in command.notes)
    with pytest.raises(SpecError, match="removed in TensorRT 11.*trtbuild cast"):
        BuildSpec.from_trtexec_args(DONE_WHEN, dialect=11)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--explicitBatch", "always explicit batch"),
        ("--workspace=1024", "--memPoolSize=workspace:1024"),
        ("--batch=8", "implicit batch"),
        ("--buildOnly", "--skipInference"),
    ],
)
def test_removed_flags_fail_with_a_sentence_as_trtexec_10_does(flag: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        BuildSpec.from_trtexec_args(["--onnx=m.onnx", flag], dialect=10)


def test_trtexec_8_maps_workspace_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        spec = BuildSpec.from_trtexec_args(["--onnx=m.onnx", "--workspace=1024", "--explicitBatch"], dialect=8)
    assert spec.build.mem_pool_size == {"workspace": 1 << 30}
    assert "memPoolSize" in caplog.text


def test_deprecated_noops_in_11_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        spec = BuildSpec.from_trtexec_args(["--onnx=m.onnx", "--useCudaGraph", "--stronglyTyped"], dialect=11)
    assert spec.inference.cuda_graph is None and not spec.build.strongly_typed
    assert "no effect with trtexec 11" in caplog.text


def test_mode_flags_are_dialect_specific() -> None:
    ten = BuildSpec.from_trtexec_args(["--useCudaGraph", "--noDataTransfers", "--useSpinWait"], dialect=10)
    assert (ten.inference.cuda_graph, ten.inference.data_transfers, ten.inference.spin_wait) == (True, False, True)
    eleven = BuildSpec.from_trtexec_args(["--noCudaGraph", "--includeDataTransfers", "--noSpinWait"], dialect=11)
    assert (eleven.inference.cuda_graph, eleven.inference.data_transfers, eleven.inference.spin_wait) == (False, True, False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--unknownFlag"], "Unknown option --unknownFlag"),
        (["--fp61"], "Did you mean --fp16"),
        (["--shapes", "input:1x3"], "space-separated value"),
        (["--iterations=ten"], "whole number"),
        (["--memPoolSize=scratch:1G"], "pools are workspace"),
        (["--memPoolSize=workspace:4Q"], "optional unit"),
        (["--sparsity=sometimes"], "must be one of disable, enable, force"),
        (["--tacticSources=CUDNN"], "must start with \\+ or -"),
        (["--tacticSources=+CUDNN,-CUDNN"], "enables and disables"),
        (["--fp8", "--int8"], "cannot be combined"),
        (["--saveEngine=a", "--saveEngine=b"], "given twice"),
        (["--allowGPUFallback"], "needs --useDLACore"),
        (["--safe"], "not supported by trtbuild: safety engines"),
        (["--builderOptimizationLevel=9"], "0..5"),
        (["--minShapes=x:1", "--minShapes=x:2", "--maxShapes=x:3"], "--max was given once but another shape flag 2 times"),
    ],
)
def test_bad_options_get_one_clear_sentence(argv: list[str], message: str) -> None:
    with pytest.raises(TrtbuildError, match=message):
        BuildSpec.from_trtexec_args(argv)


def test_io_format_types_only_before_11() -> None:
    assert BuildSpec.from_trtexec_args(["--inputIOFormats=fp16:chw"]).build.input_io_formats == "fp16:chw"
    with pytest.raises(SpecError, match="Invalid TensorFormat fp16:chw"):
        BuildSpec.from_trtexec_args(["--inputIOFormats=fp16:chw"], dialect=11)


def test_boolean_flags_with_any_value_are_on() -> None:
    # trtexec: --noTF32=false still disables TF32
    assert BuildSpec.from_trtexec_args(["--noTF32=false"]).build.no_tf32 is True


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [("1024", 1 << 30), ("4G", 4 << 30), ("1g", 1 << 30), ("48K", 48 << 10), ("0.5M", 1 << 19), ("100B", 100)],
)
def test_sizes_use_trtexec_units(text: str, nbytes: int) -> None:
    assert parse_size(text) == nbytes
    assert parse_size(format_size(nbytes)) == nbytes


def test_dla_sram_rounds_down_to_power_of_two() -> None:
    assert parse_mem_pools("dlaSRAM:3M") == {"dlaSRAM": 2 << 20}


def test_spec_dict_round_trip() -> None:
    spec = BuildSpec.from_trtexec_args(DONE_WHEN + ["--shapes=input:2x3x224x224", "--staticPlugins=a.so"])
    assert BuildSpec.from_dict(spec.to_dict()) == spec


def test_every_option_documented() -> None:
    rows = option_table()
    assert len(rows) == len(OPTIONS)
    assert all(row["help"] for row in rows)
    assert not set(UNSUPPORTED) & {o.name for o in OPTIONS}
