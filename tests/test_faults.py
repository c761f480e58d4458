"""Fault injection: hostile and careless input, full disks, SIGTERM, concurrent runs.

Every case must end in trtbuild's own error type (one sentence, exit 2 from the CLI) or a justified
success, with nothing lost or half-written. Any other exception fails the test: that is a traceback a
user would see.
"""

from __future__ import annotations

import copy
import errno
import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trtbuild import fsutil
from trtbuild.cli import main
from trtbuild.errors import TrtbuildError
from trtbuild.recipe import RecipeError, pack, plan_from_recipe
from trtbuild.shapes import Profile, parse_shape_list
from trtbuild.spec import OPTIONS, BuildSpec

REPO = Path(__file__).resolve().parents[1]
WRONG = ["x", 7, 2.5, True, None, [], {}, [1, "a"], {"k": [None]}, -1, 1e308]


def wrong_values(original: Any) -> list[Any]:
    """Values of other JSON types than ``original`` (plus a few hostile numbers)."""
    return [w for w in WRONG if type(w) is not type(original) or w in (-1, 1e308)]


def leaf_paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into ``data`` (objects and their members, lists and their items)."""
    if prefix:
        yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaf_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from leaf_paths(value, (*prefix, i))


def set_path(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(data)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def get_path(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def one_sentence(text: str) -> None:
    assert "Traceback" not in text, text
    assert text.strip(), "an error must say something"


# ---------------------------------------------------------------------------------------------- grammar


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
shape_text = st.lists(st.sampled_from(list("0123456789x,:'²٣ -._abXé\t") + ["scalar", "9" * 30, "\x00"]),
                      max_size=24).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=shape_text | st.text(max_size=30))
def test_shape_grammar_raises_only_shape_errors(text: str) -> None:
    try:
        shapes = parse_shape_list(text)
    except TrtbuildError:
        return
    for dims in shapes.values():
        assert all(isinstance(d, int) and 0 <= d < 2**31 for d in dims)


@settings(max_examples=300, deadline=None)
@given(data=json_values)
def test_profile_tables_raise_only_shape_errors(data: Any) -> None:
    try:
        Profile.from_dict({"x": data} if not isinstance(data, dict) else data)
    except TrtbuildError:
        pass


_flag_names = st.sampled_from([o.name for o in OPTIONS] + ["onnx", "profile", "workspace", "bogus", "plugins"])
_values = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["nan", "inf", "-inf", "-5", "²", "1e400", "9" * 400, "1_000", "0x10", "workspace:" + "9" * 400,
                     "x:-1", "a:1x2,a:1x2", "0", "-1", "1.5", "4G", "+3"]),
)


@pytest.mark.parametrize("dialect", [None, 8, 10, 11])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(_flag_names, _values), max_size=6))
def test_trtexec_parser_raises_only_spec_errors(dialect: int | None, pairs: list[tuple[str, str | None]]) -> None:
    try:
        spec = BuildSpec.from_pairs(pairs, dialect=dialect)
    except TrtbuildError:
        return
    # what the parser accepted, the spec's own reader accepts too (a recipe holds exactly this)
    assert BuildSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


_argv_item = st.one_of(
    st.text(max_size=20),
    st.builds(lambda k, sep, v: f"--{k}{sep}{v}", _flag_names, st.sampled_from(["=", "", "=="]), _values.map(lambda v: v or "")),
)


@settings(max_examples=300, deadline=None)
@given(argv=st.lists(_argv_item, max_size=6), dialect=st.sampled_from([8, 10, 11]))
def test_raw_trtexec_command_lines_raise_only_spec_errors(argv: list[str], dialect: int) -> None:
    try:
        BuildSpec.from_trtexec_args(argv, dialect=dialect)
    except TrtbuildError:
        pass


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=16) | st.sampled_from(["30d", "1e400d", "9" * 400 + "h", "2026-13-40", "1/0", "0/0", "3/2"]))
def test_nightly_option_parsers_raise_only_trtbuild_errors(text: str) -> None:
    from trtbuild.nightly.store import parse_since
    from trtbuild.nightly.suite import parse_shard
    from trtbuild.spec import parse_size

    for parse in (parse_since, parse_shard, parse_size):
        try:
            parse(text)  # type: ignore[operator]
        except TrtbuildError:
            pass


_suite_keys = st.sampled_from(["name", "backends", "precisions", "timing", "limits", "gate", "model", "shapes",
                                "profile", "accuracy", "thresholds", "repeats", "timeout_s", "memory_mib", "batch"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(top=st.dictionaries(_suite_keys, json_values, max_size=5),
       model=st.dictionaries(_suite_keys, json_values, max_size=4))  # fmt: skip
def test_suite_files_raise_only_trtbuild_errors(top: dict[str, Any], model: dict[str, Any]) -> None:
    from trtbuild.nightly.suite import suite_from_dict

    data = {"name": "s", "backends": ["ort"], **top, "model": [{"model": "zoo:resnet", **model}]}
    try:
        suite_from_dict(data, source="s.toml").cases()
    except TrtbuildError:
        pass


@settings(max_examples=300, deadline=None)
@given(section=st.sampled_from(["build", "system", "inference", "reporting"]), data=json_values,
       key=st.sampled_from(["profiles", "avg_timing", "device", "shapes", "duration", "static_plugins", "fp16",
                            "mem_pool_size", "save_engine", "persistent_cache_ratio", "nope"]))  # fmt: skip
def test_spec_files_raise_only_spec_errors(section: str, key: str, data: Any) -> None:
    try:
        BuildSpec.from_dict({"onnx": "m.onnx", section: {key: data}})
    except TrtbuildError:
        pass


@pytest.mark.parametrize("argv", [
    ["--duration=nan"], ["--avgTiming=-5"], ["--device=-1"], ["--persistentCacheRatio=inf"], ["--iterations=0"],
    ["--memPoolSize=workspace:" + "9" * 400], ["--infStreams=" + "9" * 30], ["--onnx=a.onnx", "--onnx=b.onnx"],
    ["--minShapes=x:²x3"], ["--minShapes=x:" + "9" * 4400], ["--minShapes=x:1180591620717411303424x3"],
])  # fmt: skip
def test_numbers_a_trtexec_run_cannot_take_are_refused(argv: list[str]) -> None:
    with pytest.raises(TrtbuildError) as err:
        BuildSpec.from_trtexec_args(argv, dialect=10)
    assert len(str(err.value)) < 400, "a hostile value must not be echoed in full"


def test_negative_dims_in_profile_toml_are_refused(tmp_path: Path, two_input_onnx: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    toml = tmp_path / "p.toml"
    toml.write_text("[[profile]]\nimage = { min = [1, 3, -64, 64], max = [4, 3, 64, 64] }\n")
    assert main(["build", str(two_input_onnx), "--profiles", str(toml), "--dry-run"]) == 2
    assert "negative dimension" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"\xff\xfe[[profile]]\n", None, b"a = [" * 5000])
def test_unreadable_toml_is_one_sentence(tmp_path: Path, two_input_onnx: Path, content: bytes | None,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    path = tmp_path / "p.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert main(["build", str(two_input_onnx), "--profiles", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    one_sentence(err)
    assert str(path) in err


@pytest.mark.parametrize("content", [b"", b"\x08\x96\x01", None])
def test_files_that_are_not_models_fail_the_dry_run(tmp_path: Path, content: bytes | None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import onnx

    path = tmp_path / "m.onnx"
    path.write_bytes(content if content is not None else onnx.TensorProto(name="t", dims=[3]).SerializeToString())
    for argv in (["build", str(path), "--dry-run"], ["inspect", str(path)], ["pack", str(path), "-o", str(tmp_path / "r.tar")],
                 ["trtexec", f"--onnx={path}", "--dry-run"]):  # fmt: skip
        assert main(argv) == 2, argv
        one_sentence(capsys.readouterr().err)
    assert not (tmp_path / "r.tar").exists()


def test_run_shapes_outside_the_profile_and_missing_profiles_are_refused(two_input_onnx: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    shapes = ["--min", "image:1x3x64x64,scale:1x1", "--max", "image:2x3x64x64,scale:2x1"]
    assert main(["build", str(two_input_onnx), *shapes, "--shapes", "image:4x3x64x64,scale:1x1", "--dry-run"]) == 2
    assert "outside optimization profile 0" in capsys.readouterr().err
    assert main(["build", str(two_input_onnx), *shapes, "--useProfile=2", "--dry-run"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["build", str(two_input_onnx), *shapes, "--shapes", "image:2x3x64x64,scale:1x1", "--dry-run"]) == 0


def test_nvidia_smi_printing_garbage_is_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trtbuild.doctor import gpu_info

    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf 'GeForce \\377\\376, 550.1, 8.9, 24564 MiB\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    (gpu,) = gpu_info()
    assert gpu["compute_capability"] == "8.9" and gpu["name"].startswith("GeForce")


def _matmul_model(folder: Path, opset: int = 17) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 3])], [weights])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(folder / "mm.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="mm.bin", size_threshold=0)  # fmt: skip
    return folder / "mm.onnx"


def test_models_a_parser_cannot_read_fail_the_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shapes = ["--min", "X:1x4", "--max", "X:8x4"]
    good = _matmul_model(tmp_path / "good")
    assert main(["build", str(good), *shapes, "--dry-run"]) == 0
    capsys.readouterr()
    truncated = _matmul_model(tmp_path / "cut")
    (truncated.parent / "mm.bin").write_bytes((truncated.parent / "mm.bin").read_bytes()[:20])
    assert main(["build", str(truncated), *shapes, "--dry-run"]) == 2
    assert "has only 20 bytes" in capsys.readouterr().err
    future = _matmul_model(tmp_path / "future", opset=99)
    assert main(["build", str(future), *shapes, "--dry-run"]) == 2
    assert "opset 99" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- --data


def _image_input() -> list[Any]:
    from trtbuild.shapes import TensorInfo

    return [TensorInfo("x", "float32", (1, 1, 8, 8))]


@pytest.mark.parametrize("kind", ["garbage", "objects", "nan", "empty", "bomb"])
def test_hostile_npz_data_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    import numpy as np

    from trtbuild.inputs import load_data

    path = tmp_path / "d.npz"
    if kind == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif kind == "objects":
        np.savez(path, x=np.array([{"a": 1}], dtype=object))
    elif kind == "nan":
        np.savez(path, x=np.full((1, 1, 8, 8), np.nan, dtype=np.float32))
    elif kind == "empty":
        np.savez(path, x=np.zeros((0, 1, 8, 8), dtype=np.float32))
    else:
        np.savez_compressed(path, x=np.zeros((1, 1, 8, 8), dtype=np.float32))
        monkeypatch.setenv("TRTBUILD_MAX_DATA_BYTES", "64")
    with pytest.raises(TrtbuildError) as err:
        load_data(path, [t for t in _image_input()])
    one_sentence(str(err.value))


def test_image_data_bit_depth_bombs_and_garbage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    from PIL import Image

    from trtbuild.inputs import load_data

    folder = tmp_path / "imgs"
    folder.mkdir()
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)  # 0..63000 of 65535
    Image.fromarray(ramp).save(folder / "deep.png")
    (feed,) = load_data(folder, _image_input())
    pixels = feed.arrays["x"]
    assert float((pixels >= 0.999).mean()) < 0.05, "16-bit pixels must be scaled by their depth, not clipped"
    assert abs(float(pixels.mean()) - float(ramp.mean()) / 65535) < 0.02
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 16)
    with pytest.raises(TrtbuildError, match="refused"):
        load_data(folder, _image_input())
    monkeypatch.undo()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(TrtbuildError, match="broken.png"):
        load_data(folder, _image_input())


# ---------------------------------------------------------------------------------------------- outputs


def test_output_paths_that_are_folders_are_refused_before_work(tmp_path: Path, two_input_onnx: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    folder = tmp_path / "out"
    folder.mkdir()
    (tmp_path / "out.onnx").mkdir()  # export's -o must end in .onnx
    shapes = ["--min", "image:1x3x64x64,scale:1x1", "--max", "image:2x3x64x64,scale:2x1"]
    for argv in (["build", str(two_input_onnx), *shapes, "--output", str(folder)],
                 ["pack", str(two_input_onnx), *shapes, "-o", str(folder)],
                 ["engine", "strip", str(folder / "missing.engine"), "-o", str(folder)],
                 ["export", "zoo:two_input", "-o", str(folder) + ".onnx"]):  # fmt: skip
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        one_sentence(err)
    assert list(folder.iterdir()) == []
    for write in (fsutil.atomic_write_bytes, fsutil.atomic_write_text):
        with pytest.raises(TrtbuildError, match="is an existing folder"):
            write(folder, "x" if write is fsutil.atomic_write_text else b"x")  # type: ignore[operator]


def test_engine_strip_of_a_missing_file_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["engine", "strip", str(tmp_path / "none.engine"), "-o", str(tmp_path / "x.engine")]) == 2
    assert "No engine at" in capsys.readouterr().err


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    from trtbuild.engine_file import make_manifest, write_engine

    old = os.umask(0o022)
    try:
        fsutil.atomic_write_text(tmp_path / "a.json", "{}")
        plan = b"ftrt" + bytes(60)
        manifest = make_manifest(plan, engine_path=tmp_path / "m.engine", tensorrt_version="10.13.0", spec=BuildSpec(),
                                 onnx_path=None, io_tensors=[], precision={}, build_time_s=0.0,
                                 host={"gpu": None, "platform": "x", "jetson": None})  # fmt: skip
        write_engine(tmp_path / "m.engine", plan, manifest)
    finally:
        os.umask(old)
    for name in ("a.json", "m.engine", "m.engine.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


# ---------------------------------------------------------------------------------------------- full disk


def _enospc(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, "No space left on device")


class _FailingClose(io.BufferedWriter):
    def close(self) -> None:
        super().close()
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["write", "fsync", "close", "mkstemp"])
def test_disk_full_names_the_path_and_the_free_space_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")
    if where == "fsync":
        monkeypatch.setattr(fsutil.os, "fsync", _enospc)
    elif where == "mkstemp":
        monkeypatch.setattr(fsutil.tempfile, "mkstemp", _enospc)
    elif where == "close":
        real_fdopen = os.fdopen

        def fdopen(fd: int, mode: str, **kw: Any) -> Any:
            handle = real_fdopen(fd, "wb", buffering=0)
            return _FailingClose(handle) if mode == "wb" else io.TextIOWrapper(_FailingClose(handle), encoding="utf-8")

        monkeypatch.setattr(fsutil.os, "fdopen", fdopen)
    with pytest.raises(fsutil.DiskFullError) as err, fsutil.atomic_open(target, "w") as handle:
        if where == "write":
            _enospc()
        handle.write("new")
    message = str(err.value)
    assert str(target) in message and "free" in message and "disk is full" in message
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"], "temporary file left behind"


def test_disk_full_during_an_engine_write_keeps_the_previous_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trtbuild import engine_file

    plan = b"ftrt" + bytes(60)
    manifest = engine_file.make_manifest(plan, engine_path=tmp_path / "m.engine", tensorrt_version="10.13.0",
                                         spec=BuildSpec(), onnx_path=None, io_tensors=[], precision={},
                                         build_time_s=0.0, host={"gpu": None, "platform": "x", "jetson": None})  # fmt: skip
    engine_file.write_engine(tmp_path / "m.engine", plan, manifest)
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir())
    monkeypatch.setattr(engine_file.os, "fsync", _enospc)
    with pytest.raises(fsutil.DiskFullError, match="m.engine"):
        engine_file.write_engine(tmp_path / "m.engine", plan, manifest)
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before


def test_cli_turns_a_late_full_disk_into_one_sentence(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import trtbuild.cli.doctor as doctor

    def full(args: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out.bin")

    monkeypatch.setattr(doctor, "run", full)
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert "/data/out.bin" in err and "disk is full" in err


def test_a_real_full_disk_in_a_private_tmpfs(tmp_path: Path, two_input_onnx: Path) -> None:
    """The same on a real file system that fills up, where a private mount namespace is allowed (root)."""
    import shutil

    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a private tmpfs (the in-process tests above cover the logic)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    size = two_input_onnx.stat().st_size // 2048 + 1  # KiB: half the model
    script = (f"mount -t tmpfs -o size={size}k tmpfs {mnt} || exit 99; "
              f"{sys.executable} -m trtbuild optimize {two_input_onnx} -o {mnt}/out.onnx; echo rc=$?; ls -A {mnt}")  # fmt: skip
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                         text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)  # fmt: skip
    if out.returncode == 99 or "rc=" not in out.stdout:
        pytest.skip(f"cannot mount a private tmpfs here: {out.stderr.strip()[:200]}")
    assert "rc=2" in out.stdout, out.stdout + out.stderr
    assert "the disk is full" in out.stderr and f"{mnt}/out.onnx" in out.stderr, out.stderr
    assert out.stdout.strip().endswith("rc=2"), "nothing (no temporary file) may be left on the full disk"


# ---------------------------------------------------------------------------------------------- SIGTERM


def test_sigterm_mid_write_removes_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    script = textwrap.dedent(f"""
        import sys, time
        from trtbuild.fsutil import atomic_open, sigterm_cleanup
        with sigterm_cleanup():
            with atomic_open({str(target)!r}, "wb") as handle:
                handle.write(b"half")
                print("ready", flush=True)
                time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    assert len(list(tmp_path.iterdir())) == 2  # the temporary file exists mid-write
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    assert proc.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    assert target.read_bytes() == b"old"


def test_cli_exits_143_on_sigterm_after_cleanup(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    import trtbuild.cli.doctor as doctor

    def terminated(args: Any) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the command")

    monkeypatch.setattr(doctor, "run", terminated)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["doctor"]) == 143
    assert "terminated" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before, "the handler is restored after the command"


def test_strip_ignores_a_malformed_embedded_manifest(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from trtbuild.engine_file import manifest_path, strip_ultralytics

    meta = json.dumps({"stride": 32, "trtbuild_manifest": {"format": "trtbuild.engine", "format_version": 1, "plan": []}})
    wrapped = tmp_path / "u.engine"
    wrapped.write_bytes(len(meta).to_bytes(4, "little") + meta.encode() + b"ftrt" + bytes(60))
    out, _ = strip_ultralytics(wrapped, tmp_path / "plain.engine")
    assert out.read_bytes() == b"ftrt" + bytes(60)
    assert not manifest_path(out).exists()
    assert "malformed" in caplog.text


# ---------------------------------------------------------------------------------------------- recipes


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def base_recipe(tmp_path: Path, two_input_onnx: Path) -> Path:
    spec = BuildSpec.from_pairs([("minShapes", "image:1x3x64x64,scale:1x1"), ("maxShapes", "image:8x3x256x256,scale:8x1")],
                                dialect=None)  # fmt: skip
    out = tmp_path / "host" / "two.tar"
    pack(spec, out, model=two_input_onnx)
    return out


def hostile(src: Path, dst: Path, *, spec: Callable[[dict[str, Any]], Any] | None = None, add: dict[str, bytes] | None = None,
            manifest: Callable[[dict[str, Any]], Any] | None = None, gz: bool = False) -> Path:  # fmt: skip
    """A recipe with consistent checksums (as an attacker would make it) from ``src`` with changes."""
    with tarfile.open(src) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    meta = json.loads(files.pop("recipe.json"))
    spec_data = json.loads(files["spec.json"])
    if spec:
        spec(spec_data)
    files["spec.json"] = json.dumps(spec_data).encode()
    files.update(add or {})
    meta["files"] = [{"path": n, "size": len(b), "sha256": _sha(b)} for n, b in files.items()]
    if manifest:
        manifest(meta)
    files["recipe.json"] = json.dumps(meta).encode()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dst, "w:gz" if gz else "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dst


def build_recipe(recipe: Path, dest: Path, *extra: str) -> tuple[int, str]:
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["build", "--recipe", str(recipe), "--recipe-dir", str(dest), "--dry-run", *extra])
    return rc, err.getvalue()


@pytest.mark.parametrize("field", ["static_plugins", "dynamic_plugins", "set_plugins_to_serialize"])
def test_a_recipe_cannot_load_a_plugin_without_allow_plugins(base_recipe: Path, tmp_path: Path, field: str) -> None:
    lib = b"\x7fELF not really a library"
    evil = hostile(base_recipe, tmp_path / "evil.tar", add={"model/x.so": lib},
                   spec=lambda s: s["system"].__setitem__(field, ["model/x.so"]))  # fmt: skip
    dest = tmp_path / "unpacked"
    with pytest.raises(RecipeError) as err:
        plan_from_recipe(evil, recipe_dir=dest)
    assert "--allow-plugins model/x.so" in str(err.value) and _sha(lib) in str(err.value)
    assert not dest.exists()
    rc, err_text = build_recipe(evil, dest)
    assert rc == 2 and "--allow-plugins" in err_text
    plan = plan_from_recipe(evil, recipe_dir=dest, allow_plugins=["model/x.so"])
    assert getattr(plan.spec.system, field) == [str(dest / "model" / "x.so")]  # loaded from the unpacked folder only


def test_a_recipe_cannot_name_a_plugin_outside_itself(base_recipe: Path, tmp_path: Path) -> None:
    evil = hostile(base_recipe, tmp_path / "evil.tar", spec=lambda s: s["system"].__setitem__("static_plugins", ["/tmp/x.so"]))
    with pytest.raises(RecipeError, match="does not hold"):
        plan_from_recipe(evil, recipe_dir=tmp_path / "u", allow_plugins=["/tmp/x.so"])


def test_a_recipe_model_cannot_read_external_data_outside_the_recipe(base_recipe: Path, tmp_path: Path) -> None:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    weight = numpy_helper.from_array(np.zeros(4, dtype=np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../secret.bin"), ("offset", "0"), ("length", "16")):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [weight])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    evil = hostile(base_recipe, tmp_path / "evil.tar", add={"model/m.onnx": model.SerializeToString()},
                   spec=lambda s: (s.__setitem__("onnx", "model/m.onnx"), s["build"].__setitem__("profiles", [])))  # fmt: skip
    with pytest.raises(TrtbuildError) as err:
        plan_from_recipe(evil, recipe_dir=tmp_path / "one" / "two" / "u")
    one_sentence(str(err.value))
    assert "outside" in str(err.value), str(err.value)


@pytest.mark.parametrize("where", ["/tmp/evil.engine", "../../evil.engine", "sub/evil.engine", "..", ""])
def test_a_recipe_cannot_choose_where_the_engine_is_written(base_recipe: Path, tmp_path: Path, where: str) -> None:
    evil = hostile(base_recipe, tmp_path / "evil.tar", spec=lambda s: s["build"].__setitem__("save_engine", where))
    rc, err = build_recipe(evil, tmp_path / "u")
    assert rc == 2 and "output" in err, err
    assert not (tmp_path / "u").exists()


@pytest.mark.parametrize("change", [
    lambda s: s["build"].__setitem__("timing_cache_file", "/etc/passwd"),
    lambda s: s["build"].__setitem__("calib", "../calib.cache"),
    lambda s: s["reporting"].__setitem__("export_times", "/tmp/times.json"),
    lambda s: s["inference"].__setitem__("load_inputs", "x:/etc/passwd"),
    lambda s: s["build"].__setitem__("avg_timing", "8"),
    lambda s: s["build"].__setitem__("profiles", [[1, 2]]),
    lambda s: s["system"].__setitem__("device", -3),
    lambda s: s.__setitem__("run_this", "rm -rf /"),
    lambda s: s.clear() or s.update({"onnx": None}),
])  # fmt: skip
def test_hostile_specs_are_refused_in_one_sentence(base_recipe: Path, tmp_path: Path, change: Any) -> None:
    evil = hostile(base_recipe, tmp_path / "evil.tar", spec=change)
    rc, err = build_recipe(evil, tmp_path / "u")
    assert rc == 2, err
    one_sentence(err)
    assert not (tmp_path / "u").exists()


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m.__setitem__("spec", []), "malformed"),
    (lambda m: m.__setitem__("format_version", "1"), "malformed"),
    (lambda m: m.__setitem__("format_version", 2), "newer than the format 1"),
    (lambda m: m.__setitem__("files", {"a": 1}), "malformed"),
    (lambda m: m["files"][0].__setitem__("size", -1), "malformed"),
])  # fmt: skip
def test_malformed_recipe_manifests(base_recipe: Path, tmp_path: Path, change: Any, fragment: str) -> None:
    evil = hostile(base_recipe, tmp_path / "evil.tar", manifest=change)
    rc, err = build_recipe(evil, tmp_path / "u")
    assert rc == 2 and fragment in err, err
    assert "format 1 cannot read format 1" not in err and "(format 1) cannot read" not in err


@pytest.mark.parametrize("where", ["header", "data", "gzip"])
def test_truncated_recipes_are_refused(base_recipe: Path, tmp_path: Path, where: str) -> None:
    # Cutting only the zero padding after the last member would be a justified success: cut into content.
    data = base_recipe.read_bytes()
    with tarfile.open(base_recipe) as tar:
        last = tar.getmembers()[-1]
    cut = tmp_path / "cut.tar"
    if where == "gzip":
        packed = gzip.compress(data)
        cut.write_bytes(packed[: len(packed) // 2])
    else:
        cut.write_bytes(data[: last.offset + 100 if where == "header" else last.offset_data + last.size // 2])
    rc, err = build_recipe(cut, tmp_path / "u")
    assert rc == 2, err
    one_sentence(err)
    assert not (tmp_path / "u").exists()


def test_decompression_bombs_and_size_caps(base_recipe: Path, tmp_path: Path) -> None:
    bomb = hostile(base_recipe, tmp_path / "bomb.tar.gz", add={"model/zeros.bin": bytes(80 << 20)}, gz=True)
    assert bomb.stat().st_size < 1 << 20
    rc, err = build_recipe(bomb, tmp_path / "u")
    assert rc == 2 and "decompression bomb" in err, err
    assert not (tmp_path / "u").exists()
    rc, err = build_recipe(base_recipe, tmp_path / "u", "--recipe-max-size", "1K")
    assert rc == 2 and "--recipe-max-size" in err, err


# ---------------------------------------------------------------------------------------------- manifests


def _engine(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    from trtbuild.engine_file import make_manifest, manifest_path

    plan = b"ftrt" + bytes(60)
    path = tmp_path / "m.engine"
    path.write_bytes(plan)
    manifest = make_manifest(plan, engine_path=path, tensorrt_version="10.13.0", spec=BuildSpec(), onnx_path=None,
                             io_tensors=[{"name": "x", "dtype": "float32", "dims": [1, 3]}], precision={"path": "flags"},
                             build_time_s=1.0, host={"gpu": {"name": "G", "compute_capability": "8.6"},
                                                     "platform": "Linux-x86_64", "jetson": {"model": "Orin"}})  # fmt: skip
    manifest_path(path).write_text(json.dumps(manifest))
    return path, manifest


def test_engine_manifests_with_wrong_field_types_end_in_one_sentence(tmp_path: Path) -> None:
    from trtbuild.engine_file import inspect_engine, load_engine_bytes, manifest_path

    path, manifest = _engine(tmp_path)
    host = {"tensorrt": "10.13.0", "gpu": {"name": "G", "compute_capability": "8.6"}, "platform": "Linux-x86_64",
            "jetson": None}  # fmt: skip
    load_engine_bytes(path, host=host)  # the untouched manifest passes
    tried = 0
    for field_path in leaf_paths(manifest):
        if field_path[0] == "build_options" and len(field_path) > 3:
            continue  # the options are the spec's: BuildSpec.from_dict checks them
        for value in wrong_values(get_path(manifest, field_path)):
            manifest_path(path).write_text(json.dumps(set_path(manifest, field_path, value)))
            tried += 1
            for call in (lambda: load_engine_bytes(path, host=host), lambda: inspect_engine(path, host=host)):
                try:
                    call()
                except TrtbuildError as exc:
                    one_sentence(str(exc))
    assert tried > 200


# ---------------------------------------------------------------------------------------------- results store


def _store_with_history(tmp_path: Path) -> tuple[Any, Any, Any]:
    from test_nightly_gate import fake_run, samples

    from trtbuild.nightly.store import ResultsStore

    store = ResultsStore(tmp_path / "results")
    old = fake_run(store, 0, {"m-a": samples(1.0, n=60, seed=1)})
    current = fake_run(store, 1, {"m-a": samples(1.0, n=60, seed=2)})
    return store, old, current


def test_a_corrupt_run_is_skipped_with_a_warning_and_the_gate_names_it(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from trtbuild.nightly.gate import gate_run
    from trtbuild.nightly.report import load_history
    from trtbuild.nightly.store import ResultsStore

    store, old, current = _store_with_history(tmp_path)
    bad = json.loads((old.path / "run.json").read_text())
    bad["started_utc"] = 5
    (old.path / "run.json").write_text(json.dumps(bad))
    result = gate_run(ResultsStore(store.root), current, save=False)
    assert str(old.path) in result.skipped_runs
    assert any("SKIPPED 1 malformed run" in line and str(old.path) in line for line in result.summary_lines())
    assert any("started_utc" in r.getMessage() and str(old.path) in r.getMessage() for r in caplog.records)
    history = load_history([store.root])
    assert [r.run_id for r in history.runs] == [current.run_id] and str(old.path) in history.skipped
    assert main(["report", str(store.root), "-o", str(tmp_path / "report")]) == 0
    assert f"skipped: {old.path}" in capsys.readouterr().out


def test_report_and_nightly_refuse_files_where_folders_go(tmp_path: Path, two_input_onnx: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    store, _, _ = _store_with_history(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("keep")
    assert main(["report", str(store.root), "-o", str(afile)]) == 2
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.format(model=two_input_onnx))
    assert main(["nightly", str(suite), "--results", str(afile)]) == 2
    err = capsys.readouterr().err
    assert err.count("is a file") == 2 and afile.read_text() == "keep"


def test_run_and_case_records_with_wrong_field_types_never_crash_the_gate(tmp_path: Path) -> None:
    from trtbuild.nightly.gate import gate_run
    from trtbuild.nightly.report import load_history
    from trtbuild.nightly.store import ResultsStore

    store, old, current = _store_with_history(tmp_path)
    files = [old.path / "run.json", old.path / "cases" / "m-a.json"]
    originals = {f: f.read_text() for f in files}
    tried = 0
    for file in files:
        record = json.loads(originals[file])
        for field_path in leaf_paths(record):
            if field_path[0] in ("environment", "suite") and len(field_path) > 2:
                continue
            for value in wrong_values(get_path(record, field_path))[:4]:
                file.write_text(json.dumps(set_path(record, field_path, value)))
                tried += 1
                try:
                    gate_run(ResultsStore(store.root), current, save=False)
                    load_history([store.root])
                except TrtbuildError:
                    pass
        file.write_text(originals[file])
    assert tried > 80


# ---------------------------------------------------------------------------------------------- nightly


SUITE = """
name = "t"
backends = ["ort"]
[timing]
warmup_ms = 5
duration_s = 0.02
iterations = 5
[[model]]
name = "m"
model = "{model}"
compare = false
shapes = ["image:1x3x64x64,scale:1x1"]
"""


def test_nightly_checks_models_and_baseline_before_the_first_case(tmp_path: Path, two_input_onnx: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    results = tmp_path / "results"
    missing = tmp_path / "missing.toml"
    missing.write_text(SUITE.format(model=tmp_path / "nope.onnx"))
    assert main(["nightly", str(missing), "--results", str(results)]) == 2
    assert "nope.onnx" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text(SUITE.format(model=two_input_onnx))
    assert main(["nightly", str(good), "--results", str(results), "--baseline", "no-such-run"]) == 2
    assert "no-such-run" in capsys.readouterr().err
    assert not (results / "nightly").exists() or not any((results / "nightly").iterdir()), "nothing may have run"


def test_a_run_in_use_cannot_be_resumed_by_a_second_process(tmp_path: Path, two_input_onnx: Path) -> None:
    from test_nightly_gate import fake_run

    from trtbuild.nightly import run_suite
    from trtbuild.nightly.store import ResultsStore

    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.format(model=two_input_onnx))
    store = ResultsStore(tmp_path / "results")
    run = fake_run(store, 0, {}, suite="t")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from filelock import FileLock
        lock = FileLock({str(run.path / '.lock')!r})
        lock.acquire()
        print("locked", flush=True)
        time.sleep(30)
    """)], stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        with pytest.raises(TrtbuildError, match="in use by another"):
            run_suite(suite, results=store.root, resume=run.run_id, environment={"host": "hostA"})
    finally:
        holder.kill()
        holder.wait()
    assert not (run.path / "cases").exists() or not any((run.path / "cases").iterdir()), "no case may have run"
