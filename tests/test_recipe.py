"""Recipes: pack on the host, check and unpack on the device, build --recipe (CPU only; --dry-run)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from trtbuild.cli import main
from trtbuild.errors import SpecError
from trtbuild.recipe import MANIFEST_NAME, RecipeError, file_sha256, pack, unpack
from trtbuild.spec import BuildSpec

SHAPES = ["--min", "image:1x3x64x64,scale:1x1", "--opt", "image:4x3x128x128,scale:4x1",
          "--max", "image:8x3x256x256,scale:8x1"]  # fmt: skip


def two_input_spec(**build: object) -> BuildSpec:
    spec = BuildSpec.from_pairs(
        [("minShapes", "image:1x3x64x64,scale:1x1"), ("maxShapes", "image:8x3x256x256,scale:8x1"), ("fp16", None)],
        dialect=None,
    )
    for key, value in build.items():
        setattr(spec.build, key, value)
    return spec


@pytest.fixture()
def recipe(tmp_path: Path, two_input_onnx: Path) -> Path:
    out = tmp_path / "host" / "two.tar"
    pack(two_input_spec(), out, model=two_input_onnx)
    return out


def read_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar]  # type: ignore[union-attr]


def write_members(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def rewrite(src: Path, dst: Path, change: Callable[[list[tuple[tarfile.TarInfo, bytes]]], None]) -> Path:
    members = read_members(src)
    change(members)
    return write_members(dst, members)


def file_member(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def assert_refused(recipe: Path, dest: Path, *fragments: str) -> str:
    with pytest.raises(RecipeError) as err:
        unpack(recipe, dest)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, message
    assert not dest.exists(), "nothing may be left behind by a refused recipe"
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")], "staging folder left behind"
    return message


# ---------------------------------------------------------------------------------------------- pack/unpack


def test_round_trip_keeps_spec_and_model_bytes(recipe: Path, tmp_path: Path, two_input_onnx: Path) -> None:
    from trtbuild.plan import plan_build

    spec, onnx_path, sha = unpack(recipe, tmp_path / "device" / "two")
    assert sha == file_sha256(recipe)
    assert onnx_path.read_bytes() == two_input_onnx.read_bytes()
    assert onnx_path.is_relative_to(tmp_path / "device" / "two")
    expected = plan_build(two_input_spec(), two_input_onnx).spec.to_dict()
    got = spec.to_dict()
    assert got["onnx"] == str(onnx_path)
    assert expected["build"]["save_engine"] != got["build"]["save_engine"] is None  # engine path is the device's choice
    for data in (expected, got):
        data["onnx"] = None
        data["build"]["save_engine"] = None
    assert got == expected
    assert got["build"]["profiles"][0]["image"]["max"] == [8, 3, 256, 256]


def test_manifest_lists_every_file_with_its_sha256(recipe: Path) -> None:
    members = {m.name: data for m, data in read_members(recipe)}
    manifest = json.loads(members.pop(MANIFEST_NAME))
    assert manifest["format"] == "trtbuild-recipe" and manifest["format_version"] == 1
    import hashlib

    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert listed == {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    spec = json.loads(members["spec.json"])
    assert spec["onnx"] == manifest["model"] and spec["onnx"].startswith("model/")
    assert "--fp16" in manifest["trtexec"] and "--onnx=model/" in manifest["trtexec"]


def test_pack_is_reproducible_and_gzip_works(tmp_path: Path, two_input_onnx: Path) -> None:
    first = pack(two_input_spec(), tmp_path / "a.tar", model=two_input_onnx)
    second = pack(two_input_spec(), tmp_path / "b.tar", model=two_input_onnx)
    assert first.sha256 == second.sha256
    gz = pack(two_input_spec(), tmp_path / "c.tar.gz", model=two_input_onnx)
    assert (tmp_path / "c.tar.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert gz.sha256 == pack(two_input_spec(), tmp_path / "d.tgz", model=two_input_onnx).sha256
    spec, onnx_path, sha = unpack(tmp_path / "c.tar.gz", tmp_path / "c")
    assert sha == gz.sha256 and onnx_path.exists() and spec.build.fp16


def test_calibration_and_timing_caches_travel_with_the_recipe(tmp_path: Path, two_input_onnx: Path) -> None:
    calib, timing = tmp_path / "int8.cache", tmp_path / "timing.cache"
    calib.write_bytes(b"TRT-8601-EntropyCalibration2\n")
    timing.write_bytes(b"\x00timing")
    spec = two_input_spec(fp16=False, int8=True, calib=str(calib), timing_cache_file=str(timing))
    result = pack(spec, tmp_path / "r.tar", model=two_input_onnx)
    assert {f.path for f in result.files} >= {"calib/int8.cache", "timing/timing.cache"}
    got, _, _ = unpack(result.path, tmp_path / "dev")
    assert Path(got.build.calib or "").read_bytes() == calib.read_bytes()
    assert Path(got.build.timing_cache_file or "") == tmp_path / "dev" / "timing" / "timing.cache"


def test_missing_calibration_cache_writes_nothing(tmp_path: Path, two_input_onnx: Path) -> None:
    spec = two_input_spec(fp16=False, int8=True, calib=str(tmp_path / "nope.cache"))
    from trtbuild.model.calib import CalibrationError

    with pytest.raises(CalibrationError, match="no such calibration cache"):  # refused by the plan
        pack(spec, tmp_path / "r.tar", model=two_input_onnx)
    assert not (tmp_path / "r.tar").exists()


def test_bad_spec_is_refused_before_writing(tmp_path: Path, two_input_onnx: Path) -> None:
    from trtbuild.errors import ShapeError

    spec = BuildSpec.from_pairs([("minShapes", "image:1x3x64"), ("maxShapes", "image:8x3x256x256")], dialect=None)
    with pytest.raises(ShapeError):
        pack(spec, tmp_path / "r.tar", model=two_input_onnx)
    assert list(tmp_path.iterdir()) == []


def test_external_data_is_packed_and_used(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 3])], [weights],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src = tmp_path / "src"
    (src / "weights").mkdir(parents=True)
    onnx.save_model(model, str(src / "mm.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights/mm.bin", size_threshold=0)  # fmt: skip
    spec = BuildSpec.from_pairs([("minShapes", "X:1x4"), ("maxShapes", "X:8x4")], dialect=None)
    result = pack(spec, tmp_path / "mm.tar", model=src / "mm.onnx")
    assert [f.path for f in result.files] == ["spec.json", "plan.json", "model/mm.onnx", "model/weights/mm.bin"]
    _, onnx_path, _ = unpack(result.path, tmp_path / "dev")
    loaded = onnx.load(str(onnx_path))
    assert numpy_helper.to_array(loaded.graph.initializer[0]).tolist() == np.arange(12).reshape(4, 3).tolist()


# ---------------------------------------------------------------------------------------------- refusals


def test_tampered_file_is_refused(recipe: Path, tmp_path: Path) -> None:
    def flip(members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        for i, (info, data) in enumerate(members):
            if info.name.startswith("model/"):
                members[i] = (info, data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit changed

    bad = rewrite(recipe, tmp_path / "bad.tar", flip)
    assert_refused(bad, tmp_path / "dev", "sha256", "model/", "does not match")


def test_tampered_spec_is_refused(recipe: Path, tmp_path: Path) -> None:
    def grow(members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        for i, (info, data) in enumerate(members):
            if info.name == "spec.json":
                members[i] = (info, data.replace(b'"fp16": true', b'"fp16": false'))

    assert_refused(rewrite(recipe, tmp_path / "bad.tar", grow), tmp_path / "dev", "spec.json", "bytes but the manifest")


def test_parent_path_member_is_refused(recipe: Path, tmp_path: Path) -> None:
    bad = rewrite(recipe, tmp_path / "bad.tar", lambda m: m.append(file_member("../evil.txt")))
    assert_refused(bad, tmp_path / "dev", "'../evil.txt'", "leave the target folder")
    assert not (tmp_path / "evil.txt").exists()
    nested = rewrite(recipe, tmp_path / "bad2.tar", lambda m: m.append(file_member("model/../../evil.txt")))
    assert_refused(nested, tmp_path / "dev", "..")


def test_absolute_member_is_refused(recipe: Path, tmp_path: Path) -> None:
    bad = rewrite(recipe, tmp_path / "bad.tar", lambda m: m.append(file_member("/tmp/evil.txt")))
    assert_refused(bad, tmp_path / "dev", "absolute path")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link"), (tarfile.CHRTYPE, "device"),
     (tarfile.FIFOTYPE, "FIFO")],
)  # fmt: skip
def test_links_and_devices_are_refused(recipe: Path, tmp_path: Path, kind: bytes, expected: str) -> None:
    def add(members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        info = tarfile.TarInfo("model/extra")
        info.type = kind
        info.linkname = "/etc/passwd"
        members.insert(0, (info, b""))

    assert_refused(rewrite(recipe, tmp_path / "bad.tar", add), tmp_path / "dev", "'model/extra'", expected)


def test_missing_and_unlisted_files_are_refused(recipe: Path, tmp_path: Path) -> None:
    def drop_model(members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        members[:] = [m for m in members if not m[0].name.startswith("model/")]

    no_model = rewrite(recipe, tmp_path / "a.tar", drop_model)
    assert_refused(no_model, tmp_path / "dev", "lacks model/", "incomplete")
    extra = rewrite(recipe, tmp_path / "b.tar", lambda m: m.append(file_member("model/notes.txt")))
    assert_refused(extra, tmp_path / "dev", "model/notes.txt", "does not list")


def test_not_a_recipe(tmp_path: Path, recipe: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    assert_refused(junk, tmp_path / "dev", "cannot be read as a tar")
    plain = write_members(tmp_path / "plain.tar", [file_member("hello.txt")])
    assert_refused(plain, tmp_path / "dev", "no recipe.json")

    def future(members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        for i, (info, data) in enumerate(members):
            if info.name == MANIFEST_NAME:
                members[i] = (info, data.replace(b'"format_version": 1', b'"format_version": 99'))

    assert_refused(rewrite(recipe, tmp_path / "f.tar", future), tmp_path / "dev", "format 99", "upgrade trtbuild")


def test_destination_rules(recipe: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    with pytest.raises(RecipeError, match="not empty"):
        unpack(recipe, busy)
    assert (busy / "mine.txt").read_text() == "keep me"
    dest = tmp_path / "dev"
    unpack(recipe, dest)
    (dest / "stale.txt").write_text("from before")
    unpack(recipe, dest)  # an earlier recipe folder is replaced as a whole
    assert not (dest / "stale.txt").exists()
    assert oct(dest.stat().st_mode & 0o777) != oct(0o700)


# ---------------------------------------------------------------------------------------------- CLI


def test_pack_then_build_recipe_dry_run_in_another_folder_gives_the_same_spec(
    tmp_path: Path, two_input_onnx: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    host, device = tmp_path / "host", tmp_path / "device"
    host.mkdir()
    device.mkdir()
    (host / "calib.cache").write_bytes(b"calibration")
    (host / "trt.cache").write_bytes(b"timing")
    options = [*SHAPES, "--int8", "--calib", "calib.cache", "--timingCacheFile", "trt.cache", "--saveEngine", "two.engine",
               "--memPoolSize=workspace:1G", "--builderOptimizationLevel=4"]  # fmt: skip
    monkeypatch.chdir(host)
    assert main(["pack", str(two_input_onnx), *options, "-o", "two.tar"]) == 0
    assert "trtbuild build --recipe two.tar" in capsys.readouterr().out
    assert main(["build", str(two_input_onnx), *options, "--dry-run", "--json"]) == 0
    direct = json.loads(capsys.readouterr().out)

    monkeypatch.chdir(device)
    assert main(["build", "--recipe", str(host / "two.tar"), "--dry-run", "--json"]) == 0
    from_recipe = json.loads(capsys.readouterr().out)

    assert from_recipe["recipe_sha256"] == file_sha256(host / "two.tar")
    assert direct["recipe_sha256"] is None
    a, b = direct["spec"], from_recipe["spec"]
    assert Path(b["onnx"]).parent == device / "two.recipe" / "model"
    assert Path(b["build"]["calib"]).read_bytes() == b"calibration"
    assert Path(b["build"]["timing_cache_file"]).read_bytes() == b"timing"
    for spec in (a, b):
        spec["onnx"] = spec["build"]["calib"] = spec["build"]["timing_cache_file"] = None
    assert a == b
    assert from_recipe["engine"] == "two.engine"


def test_build_recipe_takes_output_and_timing_cache_but_no_other_option(
    recipe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    engines = tmp_path / "engines"
    args = ["build", "--recipe", str(recipe), "--output", str(engines / "m.engine"), "--timingCacheFile", "dev.cache",
            "--dry-run", "--json"]  # fmt: skip
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["engine"] == str(engines / "m.engine")
    assert plan["spec"]["build"]["timing_cache_file"] == "dev.cache"
    assert (engines / "two.recipe" / MANIFEST_NAME).is_file()  # unpacked beside the engine

    assert main(["build", "--recipe", str(recipe), "--fp16", "--dry-run"]) == 2
    assert "--fp16 cannot be combined with --recipe" in capsys.readouterr().err


def test_build_needs_exactly_one_of_model_and_recipe(recipe: Path, two_input_onnx: Path) -> None:
    from trtbuild.cli import build_parser

    with pytest.raises(SpecError, match="either a model"):
        args = build_parser().parse_args(["build", str(two_input_onnx), "--recipe", str(recipe), "--dry-run"])
        args.run(args)
    with pytest.raises(SpecError, match="No model given"):
        args = build_parser().parse_args(["build", "--dry-run"])
        args.run(args)


def test_cli_refuses_a_tampered_recipe_in_one_sentence(recipe: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    def flip(members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        for i, (info, data) in enumerate(members):
            if info.name.startswith("model/"):
                members[i] = (info, bytes([data[0] ^ 1]) + data[1:])

    bad = rewrite(recipe, tmp_path / "bad.tar", flip)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-m", "trtbuild", "build", "--recipe", str(bad), "--dry-run"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("trtbuild: error: The sha256 of model/")
    assert not (tmp_path / "bad.recipe").exists()


# ---------------------------------------------------------------------------------------------- real build (test double)


def test_build_recipe_writes_the_engine_on_the_device(
    trt10: object, tmp_path: Path, two_input_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through tests/trt_emulator (CPU): checks the flow and the files, not any TensorRT figure."""
    recipe = pack(two_input_spec(fp16=False), tmp_path / "two.tar", model=two_input_onnx).path
    device = tmp_path / "device"
    device.mkdir()
    monkeypatch.chdir(device)
    assert main(["build", "--recipe", str(recipe), "--output", "two.engine", "--timingCacheFile", "dev.cache"]) == 0
    manifest = json.loads((device / "two.engine.json").read_text())
    assert (device / "two.engine").stat().st_size == manifest["plan"]["size"]
    assert manifest["onnx"]["sha256"] == file_sha256(two_input_onnx)
    assert Path(manifest["onnx"]["path"]).is_relative_to(device / "two.recipe")
    assert (device / "dev.cache").is_file()  # the device's own timing cache, outside the recipe folder


def test_engine_manifest_records_the_recipe_hash(
    trt10: object, tmp_path: Path, two_input_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = pack(two_input_spec(fp16=False), tmp_path / "two.tar", model=two_input_onnx)
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--recipe", str(recipe.path), "--output", "two.engine"]) == 0
    manifest = json.loads((tmp_path / "two.engine.json").read_text())
    assert manifest.get("recipe_sha256") == recipe.sha256
