"""Every command README.md shows runs as shown.

The commands are read from README.md's fenced code blocks (shell blocks, and bare blocks holding
trtbuild/python/make/pip lines), in README order, and looked up in CLASSIFIED below:

- RUN: runs on the CPU here; exit 0, plus what the entry expects to be printed or written.
- NO_TRT: needs TensorRT; without it, it must exit 3 with the sentence saying how to get TensorRT.
- DEMO: `make demo` (install + demo): the test runs the demo step, `python -m trtbuild demo --out DIR`.
- OPTIONAL_DEP: needs an optional package; without it, exit 3 naming `pip install PACKAGE`.
- SKIP: not run, with the reason (an engine built by TensorRT, an install command, CI's own `make test`).

A README command that CLASSIFIED does not know fails the test, so a new README command must be
classified here. The commands run in one temporary folder, in README order, so earlier commands
create later ones' inputs (`export` writes the yolo.onnx that `compare` reads); the folder starts
with the files the README's examples name (model.onnx, m.onnx, eval.npz, images/, trt.cache,
suites/).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: generous: the slowest README command (demo) takes ~10 s on two CPU cores
TIMEOUT_S = 120

COMMAND_PREFIXES = ("trtbuild ", "python -m trtbuild", "make ", "pip install")
SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh"}


# --- extraction --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadmeCommand:
    text: str  # the command as written, comment stripped, whitespace collapsed: the CLASSIFIED key
    argv: tuple[str, ...]
    line: int  # 1-based line in README.md where the command starts


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`]*)")


def _fenced_blocks(markdown: str) -> list[tuple[str, int, list[str]]]:
    """(language, 1-based line of the first content line, content lines) of each fenced code block."""
    blocks: list[tuple[str, int, list[str]]] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j].lstrip())
            j += 1
        blocks.append((opening["lang"].lower(), i + 2, body))
        i = j + 1
    return blocks


def strip_comment(line: str) -> str:
    """Drop a shell `# comment`: a # at the start or after whitespace, outside quotes."""
    quote = ""
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k].rstrip()
    return line.rstrip()


def _logical_lines(body: list[str], first_line: int) -> list[tuple[int, str]]:
    """Join `\\` continuations; (line number, text) of each logical line."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = first_line
    for offset, raw in enumerate(body):
        if not pending:
            start = first_line + offset
        text = raw.rstrip()
        if text.endswith("\\"):
            pending.append(text[:-1].strip())
            continue
        pending.append(text.strip())
        out.append((start, " ".join(p for p in pending if p)))
        pending = []
    if pending:
        out.append((start, " ".join(p for p in pending if p)))
    return out


def _expand_optional(text: str) -> list[str]:
    """A synopsis like `cmd a [--x] [--y]` becomes `cmd a`, `cmd a --x`, `cmd a --y`."""
    tokens = text.split(" ")
    optional = [k for k, t in enumerate(tokens) if re.fullmatch(r"\[-[^\[\]]+\]", t)]
    if not optional:
        return [text]
    base = [t for k, t in enumerate(tokens) if k not in optional]
    variants = [" ".join(base)]
    for k in optional:
        variants.append(" ".join(t[1:-1] if m == k else t for m, t in enumerate(tokens) if m == k or m not in optional))
    return variants


def extract_commands(markdown: str) -> list[ReadmeCommand]:
    """Commands in fenced blocks, in order.

    In a shell block every line is a command (only the `$ ` lines when it uses prompts: the others
    are output); in a block without a language, lines starting with `$ ` or a COMMAND_PREFIXES entry.
    """
    commands: list[ReadmeCommand] = []
    for lang, first_line, body in _fenced_blocks(markdown):
        if lang not in SHELL_LANGS and lang != "":
            continue
        prompted = any(line.lstrip().startswith("$ ") for line in body)
        for line_no, logical in _logical_lines(body, first_line):
            if logical.startswith("$ "):
                logical = logical[2:]
            elif prompted if lang else not logical.startswith(COMMAND_PREFIXES):
                continue
            text = re.sub(r"\s+", " ", strip_comment(logical)).strip()
            if not text:
                continue
            for variant in _expand_optional(text):
                commands.append(ReadmeCommand(variant, tuple(shlex.split(variant)), line_no))
    return commands


COMMANDS = extract_commands(README.read_text(encoding="utf-8"))


# --- the classification table ------------------------------------------------------------------------

RUN, NO_TRT, DEMO, OPTIONAL_DEP, SKIP = "run", "needs TensorRT", "demo", "optional dependency", "skip"

ENGINE = "needs an engine built by TensorRT on a GPU (covered by the gpu-marked and test-double tests)"
INSTALL = "an install command: CI's fresh-clone install (Makefile `setup`) runs the same installs"


@dataclass(frozen=True)
class Expect:
    kind: str
    reason: str
    #: substrings of stdout+stderr (whitespace-collapsed)
    output_has: tuple[str, ...] = ()
    #: paths (globs) under the working folder that must exist afterwards
    creates: tuple[str, ...] = ()
    #: the optional package an OPTIONAL_DEP command needs
    module: str = ""


CLASSIFIED: dict[str, Expect] = {
    # headline
    "python -m trtbuild build model.onnx --min 1x3x640x640 --max 16x3x640x640": Expect(
        NO_TRT, "builds an engine"),
    # Quick start
    "make demo": Expect(DEMO, "`make demo` = install into .venv + `python -m trtbuild demo --out demo_out`; "
                              "the install is CI's, the demo step runs here"),
    "make test": Expect(SKIP, "CI runs `make test` itself (.ci/run), and this test is part of it"),
    "make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu": Expect(
        SKIP, "the same demo with torch from PyTorch's CPU index (an install; that index is opt-in)"),
    # Install
    "pip install torch==2.13.0": Expect(SKIP, INSTALL),
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu": Expect(SKIP, INSTALL),
    'pip install -e ".[dev]"': Expect(SKIP, INSTALL),
    "pip install tensorrt pycuda": Expect(SKIP, "installs TensorRT and PyCUDA: x86-64 with an NVIDIA driver only"),
    # CLI tour: `trtbuild inspect model.onnx [--json] [--netron]` expands to three commands
    "trtbuild inspect model.onnx": Expect(RUN, "", output_has=("images", "onnx.checker: ok")),
    "trtbuild inspect model.onnx --json": Expect(RUN, "", output_has=('"opset": 17',)),
    "trtbuild inspect model.onnx --netron": Expect(
        OPTIONAL_DEP, "opens Netron (a browser and a local server) when netron is installed", module="netron"),
    "trtbuild build model.onnx --min 1x3x640x640 --max 16x3x640x640 --dry-run": Expect(RUN, "", output_has=(
        # lines the README shows under "prints (abridged)"
        "Model model.onnx (opset 17, 48 nodes)",
        "input images [batch, 3, height, width] float32",
        "trtexec --onnx=model.onnx --minShapes=images:1x3x640x640 --optShapes=images:16x3x640x640 "
        "--maxShapes=images:16x3x640x640 --saveEngine=model.engine",)),
    "trtbuild trtexec --onnx=m.onnx --minShapes=input:1x3x224x224 --optShapes=input:8x3x224x224 "
    "--maxShapes=input:16x3x224x224 --fp16 --saveEngine=m.engine --memPoolSize=workspace:1024M --dry-run": Expect(
        RUN, "", output_has=("trtexec --onnx=m.onnx --minShapes=input:1x3x224x224",)),
    # Export from PyTorch and compare backends
    "trtbuild export zoo:yolo -o yolo.onnx --dynamic images:0,2,3": Expect(
        RUN, "", creates=("yolo.onnx", "yolo.pt2")),
    "trtbuild compare yolo.onnx --against ort,torch --min images:1x3x160x160 --opt images:2x3x320x320 "
    "--max images:4x3x320x320": Expect(RUN, "", output_has=("PASSED",)),
    "trtbuild compare yolo.onnx --against ort --engine yolo.engine --precision fp16": Expect(SKIP, ENGINE),
    "trtbuild optimize yolo.onnx --level basic -o yolo.ort.onnx": Expect(RUN, "", creates=("yolo.ort.onnx",)),
    # FP16 and INT8
    "trtbuild cast model.onnx --fp16 --calib-data images/ --calib-shape images:1x3x640x640 -o model.fp16.onnx": Expect(
        RUN, "", creates=("model.fp16.onnx",)),
    "trtbuild quantize model.onnx --int8 --calib-data images/ --calib-preprocess yolo --calib-shape "
    "images:1x3x640x640 -o model.int8.onnx": Expect(RUN, "", creates=("model.int8.onnx",)),
    "trtbuild quantize model.onnx --calib-data images/ --calib-shape images:1x3x640x640 --repair -o model.int8.onnx": Expect(
        RUN, "", creates=("model.int8.onnx",)),
    "trtbuild quantize --check-only model.int8.onnx --target-trt 8.6": Expect(
        RUN, "", output_has=("TensorRT-compatible",)),
    "trtbuild build model.onnx --shapes images:8x3x640x640 --int8 --calib-data images/": Expect(
        NO_TRT, "builds an INT8 engine"),
    # Engines and engine files
    "trtbuild build model.onnx --profiles yolo640 --memPoolSize=workspace:4G --timingCacheFile=trt.cache "
    "--output model.engine": Expect(NO_TRT, "builds an engine"),
    "trtbuild inspect model.engine": Expect(SKIP, ENGINE),
    "trtbuild engine check model.engine": Expect(SKIP, ENGINE),
    "trtbuild engine wrap model.engine -o model.ultralytics.engine --format ultralytics": Expect(SKIP, ENGINE),
    # Benchmark
    "trtbuild bench zoo:yolo --backends ort,torch --batch-sweep 1,2,4 --quick": Expect(
        RUN, "", output_has=("ort", "torch"), creates=("bench_results/*.csv", "bench_results/*.json")),
    "trtbuild bench model.onnx --data eval.npz --threads 1 --quick": Expect(
        RUN, "", output_has=("threads", "1/auto"), creates=("bench_results/*.csv",)),
    "trtbuild bench model.engine --backends trt,ort --shapes images:8x3x640x640 --exportTimes=times.json": Expect(
        SKIP, ENGINE),
    # Ship to devices
    "trtbuild nightly suites/example.toml": Expect(RUN, "", output_has=("gate:",)),
    "trtbuild report": Expect(RUN, "", creates=("bench_results/report/index.html",)),
    "trtbuild pack model.onnx --profiles yolo640 --fp16 --timingCacheFile=trt.cache -o yolo.recipe.tar": Expect(
        RUN, "", creates=("yolo.recipe.tar",)),
    "trtbuild build --recipe yolo.recipe.tar --output yolo.engine": Expect(NO_TRT, "builds the recipe's engine"),
}

RUNNABLE = (RUN, NO_TRT, OPTIONAL_DEP)


# --- running -----------------------------------------------------------------------------------------


def _argv(command: ReadmeCommand) -> list[str]:
    """The command with `trtbuild` / `python` replaced by this interpreter."""
    argv = list(command.argv)
    if argv[0] == "trtbuild":
        return [sys.executable, "-m", "trtbuild", *argv[1:]]
    if argv[:3] == ["python", "-m", "trtbuild"]:
        return [sys.executable, *argv[1:]]
    raise AssertionError(f"don't know how to run {command.text!r}")


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _tensorrt_usable(env: dict[str, str]) -> bool:
    # In a child process: importing tensorrt here would leave it (or its stub) in this one's sys.modules.
    probe = "from trtbuild.trt.compat import import_tensorrt; import_tensorrt()"
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=TIMEOUT_S).returncode == 0


def _prepare_workdir(workdir: Path) -> None:
    """The files the README's examples name before any command creates them."""
    from PIL import Image

    from trtbuild import zoo

    shutil.copyfile(zoo.onnx_path("yolo"), workdir / "model.onnx")  # images [batch, 3, height, width]
    shutil.copyfile(zoo.onnx_path("resnet"), workdir / "m.onnx")  # input [batch, 3, 224, 224]
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(workdir / "eval.npz", images=rng.random((1, 3, 320, 320), dtype=np.float32))  # bench --data
    images = workdir / "images"
    images.mkdir()
    for k in range(4):
        pixels = bytes((k * 67 + i * 31) % 256 for i in range(48 * 64 * 3))
        Image.frombytes("RGB", (64, 48), pixels).save(images / f"img{k}.png")
    # README commands name repository files relative to the repository root (suites/example.toml)
    shutil.copytree(ROOT / "suites", workdir / "suites")
    # On a GPU machine the README's `build ... --timingCacheFile=trt.cache` writes this before `pack`
    # packs it; without TensorRT that build exits 3, so stand-in bytes take its place (pack copies
    # the file and checksums it; only TensorRT reads its contents).
    (workdir / "trt.cache").write_bytes(b"stand-in for a TensorRT timing cache\n")


#: run once per test session by the `example_nightly` fixture (tests/conftest.py), shared with test_nightly_run
EXAMPLE_NIGHTLY = "trtbuild nightly suites/example.toml"


class ReadmeSession:
    """Runs the README's commands in order in one folder, each at most once, on demand."""

    def __init__(self, workdir: Path, env: dict[str, str], example_nightly: Any = None) -> None:
        self.workdir = workdir
        self.env = env
        self.example_nightly = example_nightly  # () -> ExampleNightly, evaluated when the README gets there
        self.trt = _tensorrt_usable(env)
        self.results: dict[int, subprocess.CompletedProcess[str]] = {}

    def should_run(self, expect: Expect | None) -> bool:
        if expect is None or expect.kind not in RUNNABLE:
            return False
        if expect.kind == NO_TRT and self.trt:
            return False  # it would build an engine: the gpu-marked tests' job
        return not (expect.kind == OPTIONAL_DEP and importlib.util.find_spec(expect.module) is not None)

    def run(self, argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=cwd or self.workdir, env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)  # fmt: skip

    def result(self, index: int) -> subprocess.CompletedProcess[str]:
        # Earlier commands first: they write the files later ones read.
        for k in range(index + 1):
            if k not in self.results and self.should_run(CLASSIFIED.get(COMMANDS[k].text)):
                if COMMANDS[k].text == EXAMPLE_NIGHTLY and self.example_nightly is not None:
                    # the same command in the same layout, run once for the session: take its results
                    shared = self.example_nightly()
                    shutil.copytree(shared.results, self.workdir / "bench_results", dirs_exist_ok=True)
                    self.results[k] = shared.result
                    continue
                self.results[k] = self.run(_argv(COMMANDS[k]))
        return self.results[index]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> ReadmeSession:
    workdir = tmp_path_factory.mktemp("readme")
    _prepare_workdir(workdir)
    env = dict(os.environ)
    env["TRTBUILD_CACHE_DIR"] = str(tmp_path_factory.mktemp("readme-cache"))
    # trtbuild importable from the temporary folder whether or not it is pip-installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return ReadmeSession(workdir, env)


# --- tests -------------------------------------------------------------------------------------------


def test_extract_commands_handles_blocks_continuations_comments_and_synopses() -> None:
    markdown = "\n".join([
        "text `trtbuild inline` is not a command",
        "```bash",
        "make demo   # a comment",
        "trtbuild trtexec --onnx=m.onnx \\",
        "    --fp16 --x='a # not a comment'",
        "```",
        "```",
        "python -m trtbuild build m.onnx",
        "trtbuild: error: output, not a command",
        "$ trtbuild doctor",
        "```",
        "  ```toml",
        "  trtbuild = 'not a shell block'",
        "  ```",
        "```console",
        "$ pip install -e \".[dev]\"",
        "output line",
        "```",
        "```sh",
        "trtbuild inspect model.onnx [--json] [--netron]",
        "```",
    ])  # fmt: skip
    commands = extract_commands(markdown)
    assert [c.text for c in commands] == [
        "make demo",
        "trtbuild trtexec --onnx=m.onnx --fp16 --x='a # not a comment'",
        "python -m trtbuild build m.onnx",
        "trtbuild doctor",
        'pip install -e ".[dev]"',
        "trtbuild inspect model.onnx",
        "trtbuild inspect model.onnx --json",
        "trtbuild inspect model.onnx --netron",
    ]
    assert commands[1].argv[-1] == "--x=a # not a comment"
    assert [c.line for c in commands[:4]] == [3, 4, 8, 10]


def test_readme_shows_the_quick_start_commands() -> None:
    texts = [c.text for c in COMMANDS]
    assert texts[:2] == ["python -m trtbuild build model.onnx --min 1x3x640x640 --max 16x3x640x640", "make demo"]
    assert "make test" in texts
    assert sum(CLASSIFIED[t].kind == RUN for t in texts if t in CLASSIFIED) >= 10


def test_every_readme_command_is_classified() -> None:
    texts = {c.text for c in COMMANDS}
    unclassified = [f"README.md:{c.line}: {c.text}" for c in COMMANDS if c.text not in CLASSIFIED]
    stale = sorted(set(CLASSIFIED) - texts)
    assert not unclassified, "README commands missing from CLASSIFIED in tests/test_readme.py:\n" + "\n".join(unclassified)
    assert not stale, "CLASSIFIED entries no longer in README.md (update the table):\n" + "\n".join(stale)


def test_install_commands_name_real_targets_and_extras() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    from trtbuild._toml import load_toml  # tomllib needs 3.11; the project supports 3.10

    pyproject = load_toml(ROOT / "pyproject.toml")
    extras = set(pyproject["project"]["optional-dependencies"])
    for command in COMMANDS:
        argv = command.argv
        if argv[0] == "make":
            for target in (a for a in argv[1:] if "=" not in a):
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no Makefile target {target!r}"
        elif argv[:3] == ("pip", "install", "-e"):
            named = re.fullmatch(r"\.\[(.*)\]", argv[3])
            assert named, command.text
            assert set(named[1].split(",")) <= extras, command.text
        elif argv[:2] == ("pip", "install"):
            for pin in (a for a in argv[2:] if a.startswith("torch==")):
                assert re.search(rf"^TORCH \?= {re.escape(pin)}$", makefile, re.M), \
                    f"README pins {pin}, the Makefile installs another torch"
        if argv[0] == "make":
            for variable in (a.split("=", 1)[0] for a in argv[1:] if "=" in a):
                assert re.search(rf"^{variable} \?=", makefile, re.M), f"the Makefile takes no {variable}"
    # what DEMO runs instead of `make demo` is what the Makefile's demo target runs
    assert re.search(r"^demo:.*\n\t\S*python -m trtbuild demo\b", makefile, re.M)


def test_makefile_installs_torch_from_the_index_it_is_given_and_demo_says_how_to_run_trtbuild() -> None:
    def dry_run(*args: str) -> str:
        result = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    plain = dry_run("setup")
    assert re.search(r'pip install --quiet "torch==2\.13\.0"\s*$', plain, re.M), plain  # PyPI, no other index
    cpu = dry_run("setup", "TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    assert '"torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu' in cpu, cpu
    demo = dry_run("demo")
    assert "source .venv/bin/activate && trtbuild --help" in demo and ".venv/bin/trtbuild --help" in demo, demo
    # the hints name what setup installs: the console script of the editable install, which runs
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'trtbuild = "trtbuild.cli:main"' in project
    script = ROOT / ".venv" / "bin" / "trtbuild"
    if script.exists():  # a `make setup` checkout: the printed command works as printed
        result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "usage: trtbuild" in result.stdout, result.stderr


@pytest.mark.slow  # the commands run in README order, each after the ones before it: minutes in all
@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[c.text for c in COMMANDS])
def test_readme_command(index: int, session: ReadmeSession, request: pytest.FixtureRequest) -> None:
    command = COMMANDS[index]
    session.example_nightly = lambda: request.getfixturevalue("example_nightly")
    expect = CLASSIFIED.get(command.text)
    if expect is None:
        pytest.fail(f"README.md:{command.line}: `{command.text}` is not in CLASSIFIED (tests/test_readme.py); "
                    "classify it: run it, or skip it with the reason")  # fmt: skip
    if expect.kind == SKIP:
        pytest.skip(f"{command.text}: {expect.reason}")
    if expect.kind == DEMO:
        out = session.workdir / "demo_out"
        result = session.run([sys.executable, "-m", "trtbuild", "demo", "--out", str(out)])
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert (out / "yolo.onnx").is_file()
        assert list((out / "bench_results").glob("*.csv"))
        # in a pipe the demo's own lines (step titles, cross-check and bench tables) fit 80 columns
        ours = [line for line in result.stdout.splitlines() if line.startswith(("== ", "ort ", "torch ", "pair "))]
        assert len(ours) >= 8 and all(len(line) <= 80 for line in ours), ours
        assert "stub or placeholder" not in result.stdout  # tensorrt-stubs is named as the type stubs it is
        return
    if not session.should_run(expect):
        pytest.skip(f"{command.text}: {expect.reason} (TensorRT or {expect.module or 'the package'} is installed "
                    "here; the gpu-marked tests cover it)")  # fmt: skip

    result = session.result(index)
    output = _collapse(result.stdout + "\n" + result.stderr)
    assert "Traceback" not in output, output[-3000:]
    if expect.kind == NO_TRT:
        assert result.returncode == 3, f"expected exit 3 (no TensorRT), got {result.returncode}: {output[-3000:]}"
        assert "trtbuild: error:" in output and "pip install tensorrt" in output, output[-3000:]
        return
    if expect.kind == OPTIONAL_DEP:
        assert result.returncode == 3, output[-3000:]
        assert f"pip install {expect.module}" in output, output[-3000:]
        return
    assert result.returncode == 0, f"exit {result.returncode}: {output[-3000:]}"
    for text in expect.output_has:
        assert _collapse(text) in output, f"{text!r} not in the output: {output[-3000:]}"
    for pattern in expect.creates:
        assert list(session.workdir.glob(pattern)), f"{command.text} wrote no {pattern}"


@pytest.mark.slow
def test_readme_python_example_runs(session: ReadmeSession) -> None:
    blocks = [body for lang, _, body in _fenced_blocks(README.read_text(encoding="utf-8")) if lang == "python"]
    assert blocks, "README.md has no Python example"
    for body in blocks:
        result = session.run([sys.executable, "-c", "\n".join(body)])
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
