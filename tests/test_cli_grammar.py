"""One CLI grammar: -o/--output is the file a command writes; errors show the sub-command's usage; the
examples and hints the tool prints are commands it accepts."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tarfile
from pathlib import Path

import pytest

from trtbuild.cli import build_parser, main

#: commands that write one file, and the metavar their help gives -o
WRITES_ONE_FILE = {"build": "ENGINE", "pack": "RECIPE.tar", "cast": "PATH", "quantize": "PATH", "export": "OUTPUT",
                   "optimize": "OUTPUT", "engine": "OUTPUT"}  # fmt: skip


def _subparsers() -> dict[str, object]:
    import argparse

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_that_writes_one_file_takes_dash_o_and_dash_dash_output() -> None:
    commands = _subparsers()
    for name in WRITES_ONE_FILE:
        parser = commands[name]
        strings = {s for a in parser._actions for s in a.option_strings}  # type: ignore[attr-defined]
        assert {"-o", "--output"} <= strings, name
        [action] = [a for a in parser._actions if "-o" in a.option_strings]  # type: ignore[attr-defined]
        assert "--output" in action.option_strings, f"{name}: -o and --output must be one option"


@pytest.mark.parametrize("flag", ["-o", "--output", "--saveEngine"])
def test_build_output_names_the_engine(flag: str, resnet_onnx: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    engine = tmp_path / "m.engine"
    assert main(["build", str(resnet_onnx), "--shapes", "1x3x224x224", flag, str(engine), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["engine"] == str(engine)


@pytest.mark.parametrize("flag", ["-o", "--output"])
def test_pack_output_is_the_recipe_and_save_engine_names_the_engine_inside(
    flag: str, resnet_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "r.tar"
    args = ["pack", str(resnet_onnx), "--shapes", "input:1x3x224x224", flag, str(recipe), "--saveEngine", "dev.engine"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert tarfile.is_tarfile(recipe) and sorted(p.name for p in tmp_path.iterdir()) == ["r.tar"]
    # the hint pack prints is a command that works (here: its dry run)
    hint = next(line.strip() for line in out.splitlines() if line.strip().startswith("trtbuild build --recipe"))
    assert main([*shlex.split(hint)[1:], "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "dev.engine"
    assert main(["build", "--recipe", str(recipe), "-o", "other.engine", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "other.engine"


@pytest.mark.parametrize("command", ["build", "pack", "bench", "nightly", "doctor", "compare"])
def test_unknown_arguments_show_the_sub_command_usage(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = {"doctor": [], "nightly": ["suite.toml"]}.get(command, ["model.onnx"])
    with pytest.raises(SystemExit) as exit_info:
        main([command, *args, "--no-such-flag"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith(f"usage: trtbuild {command} "), err[:200]
    assert "unrecognized arguments: --no-such-flag" in err


def _example_lines(text: str) -> list[str]:
    lines = []
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        line = line.split("  #", 1)[0].strip()
        if line.startswith("trtbuild ") and "[" not in line and "<" not in line:
            lines.append(line)
    return lines


def test_every_printed_example_parses() -> None:
    """The examples in `trtbuild --help` and each sub-command's help: no flag the parser does not know."""
    from trtbuild.cli import DESCRIPTION

    commands = _subparsers()
    examples = _example_lines(DESCRIPTION)
    for parser in commands.values():
        examples += _example_lines(parser.epilog or "")  # type: ignore[attr-defined]
    assert len(examples) >= 20
    for example in examples:
        args, extra = build_parser().parse_known_args(shlex.split(example)[1:])
        assert not extra or getattr(args, "accepts_extra", False), (example, extra)


def test_bench_build_hint_is_a_command_that_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The hint bench gives when an engine is missing builds that engine (checked with --dry-run here)."""
    from trtbuild import zoo
    from trtbuild.bench.run import _Model, build_hint

    onnx = tmp_path / "yolo.onnx"
    shutil.copyfile(zoo.onnx_path("yolo"), onnx)
    engine = str(tmp_path / "yolo.engine")
    hints = [build_hint(_Model(str(onnx), str(onnx), None, None), engine),
             build_hint(_Model(str(onnx), str(onnx), None, None), engine, ["images:2x3x64x64"]),
             build_hint(_Model("zoo:yolo", "zoo:yolo", None, "yolo"), engine)]  # fmt: skip
    for hint in hints:
        assert re.fullmatch(r"trtbuild build \S+ -o \S+ --shapes \S+", hint), hint
        assert main([*shlex.split(hint)[1:], "--dry-run", "--json"]) == 0, hint
        assert json.loads(capsys.readouterr().out)["engine"] == engine
