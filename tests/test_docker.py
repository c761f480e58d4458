"""The Dockerfiles and docker/README.md: what they COPY exists, pinned tags match the documented TensorRT.

No Docker daemon is needed: the files are parsed. `hadolint` lints them where it is installed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
README = DOCKER / "README.md"
DOCKERFILES = {"x86": DOCKER / "Dockerfile.x86", "jetson": DOCKER / "Dockerfile.jetson"}


@dataclass
class Instruction:
    keyword: str
    args: str


def instructions(path: Path) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comments inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, args = text.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, f"{path.name} ends inside a continued line"
    return out


def arg_defaults(items: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        if item.keyword == "ARG" and "=" in item.args:
            name, _, value = item.args.partition("=")
            values[name.strip()] = value.strip().strip('"')
    return values


def base_image(items: list[Instruction]) -> str:
    froms = [i for i in items if i.keyword == "FROM"]
    assert len(froms) == 1, "one stage per image"
    image = froms[0].args.split()[0]
    preamble = arg_defaults(items[: items.index(froms[0])])
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: preamble[m.group(1) or m.group(2)], image)


def copy_sources(items: list[Instruction]) -> list[str]:
    sources: list[str] = []
    for item in items:
        if item.keyword not in ("COPY", "ADD"):
            continue
        args = item.args
        tokens = json.loads(args) if args.startswith("[") else shlex.split(args)
        flags = [t for t in tokens if t.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue  # from another stage or image, not the context
        paths = [t for t in tokens if not t.startswith("--")]
        assert len(paths) >= 2, f"{item.keyword} {args}: needs a source and a destination"
        sources += paths[:-1]
    return sources


def dockerignore_excludes(relpath: str) -> bool:
    """Docker's .dockerignore rules (last match wins, ``!`` re-includes, a match on a parent counts)."""
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        regex = re.escape(body.strip("/")).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


@pytest.fixture(params=sorted(DOCKERFILES), ids=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, list[Instruction]]:
    return request.param, instructions(DOCKERFILES[request.param])


def test_every_copied_path_exists_in_the_repo(dockerfile: tuple[str, list[Instruction]]) -> None:
    _, items = dockerfile
    sources = copy_sources(items)
    assert {"pyproject.toml", "README.md", "trtbuild/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository (the build context is its root)"


def test_dockerignore_keeps_what_the_images_copy_and_drops_the_rest(dockerfile: tuple[str, list[Instruction]]) -> None:
    _, items = dockerfile
    for source in copy_sources(items):
        assert not dockerignore_excludes(source), f"{source} is copied but .dockerignore excludes it"
    assert not dockerignore_excludes("trtbuild/profiles/yolo640.toml")
    for path in (".venv/bin/python", ".git/HEAD", "tests/test_docker.py", "bench_results/x.csv",
                 "trtbuild/__pycache__/spec.cpython-311.pyc", "model.engine"):  # fmt: skip
        assert dockerignore_excludes(path), f"{path} would bloat the build context"


def test_base_tags_are_pinned_and_documented_with_their_tensorrt(dockerfile: tuple[str, list[Instruction]]) -> None:
    name, items = dockerfile
    image = base_image(items)
    expected = {"x86": r"nvcr\.io/nvidia/tensorrt:\d\d\.\d\d-py3", "jetson": r"nvcr\.io/nvidia/l4t-jetpack:r36\.\d+\.\d+"}
    assert re.fullmatch(expected[name], image), image
    trt = arg_defaults(items)["TRT_VERSION"]
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", trt)
    rows = [line for line in README.read_text().splitlines() if line.startswith("|") and f"`{image}`" in line]
    assert rows, f"docker/README.md has no table row for {image}"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert any(c == trt or c.startswith(trt + ".") for c in cells), f"{image}: README row {cells} lacks TensorRT {trt}"
    assert trt in DOCKERFILES[name].read_text().split("\n# Build")[0], "the header comment names the TensorRT version"


def test_trtbuild_is_installed_and_doctor_runs_last(dockerfile: tuple[str, list[Instruction]]) -> None:
    name, items = dockerfile
    runs = [i.args for i in items if i.keyword == "RUN"]
    install = next(i for i, r in enumerate(runs) if re.search(r"pip install .*\"?\.(\[|\"| |$)", r))
    doctor = next(i for i, r in enumerate(runs) if "trtbuild doctor" in r)
    assert install < doctor
    assert "TRT_VERSION" in runs[doctor] and "find_spec('pycuda')" in runs[doctor]
    assert any("pip install" in r and "pycuda" in r for r in runs[:doctor])
    if name == "x86":
        assert '".[${EXTRAS}]"' in runs[install] and arg_defaults(items)["EXTRAS"] == "torch"
    else:
        assert "[torch]" not in runs[install]  # torch comes from NVIDIA's Jetson wheel, not PyPI
        assert any("python3-libnvinfer" in r and "cuda-nvcc-${CUDA_PKG}" in r for r in runs)
    pip_installs = [m for r in runs for m in re.findall(r"pip install[^&;]*", r)]
    assert not any(re.search(r"\btensorrt\b|\[trt", m) for m in pip_installs), "TensorRT comes from the base image"


def test_readme_documents_running_volumes_and_the_jetpack_table() -> None:
    text = README.read_text()
    for needle in ("docker run --rm --gpus all", "--runtime nvidia", "TRTBUILD_CACHE_DIR", "--timingCacheFile",
                   "bench_results", "/models", "build --recipe", "default-runtime"):  # fmt: skip
        assert needle in text, needle
    header = next(line for line in text.splitlines() if line.startswith("| JetPack |"))
    assert [c.strip() for c in header.strip("|").split("|")][:3] == ["JetPack", "L4T", "TensorRT"]
    jetpack_rows = {
        cells[0]: cells
        for line in text.splitlines()
        if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])[0][:1].isdigit()
    }
    assert jetpack_rows["6.1"][1:3] == ["36.4", "10.3"]
    assert jetpack_rows["6.0"][1:3] == ["36.3", "8.6.2"]
    assert "not supported" in jetpack_rows["5.1.x"][-1]
    jetson = instructions(DOCKERFILES["jetson"])
    tag = base_image(jetson).rsplit(":r", 1)[1]  # 36.4.0
    l4t = ".".join(tag.split(".")[:2])
    default = [row for row in jetpack_rows.values() if row[1] == l4t]
    assert default and default[0][2].startswith(arg_defaults(jetson)["TRT_VERSION"])


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (it is a standalone binary; install it to lint the Dockerfiles)")
    for path in DOCKERFILES.values():
        result = subprocess.run([hadolint, str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
