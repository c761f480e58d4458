"""Calibration data: presets, arrays, user functions, random data on request, provenance and caches."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trtbuild.model.calib import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CalibOptions,
    CalibrationError,
    cache_is_fresh,
    letterbox,
    load_image,
    open_calibration,
    read_provenance,
    write_provenance,
)


def make_images(folder: Path, count: int = 10, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = int(rng.integers(24, 60)), int(rng.integers(24, 60))
        pixels = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:02d}.{'png' if i % 2 else 'jpg'}")
    return folder


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    return make_images(tmp_path / "images")


def test_yolo_letterbox_pads_with_gray_and_keeps_aspect(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (100, 50), (255, 0, 0)).save(path)
    array = load_image(path, "yolo", (3, 64, 64))
    assert array.shape == (3, 64, 64) and array.dtype == np.float32
    # 100x50 -> 64x32 centred: rows 0-15 and 48-63 are padding (114/255), the middle is red.
    assert np.allclose(array[:, :16, :], 114 / 255)
    assert np.allclose(array[:, 48:, :], 114 / 255)
    assert np.allclose(array[:, 20:44, :], np.array([1.0, 0.0, 0.0])[:, None, None])
    assert letterbox(Image.new("RGB", (10, 40)), 64, 64).size == (64, 64)


def test_imagenet_preset_normalizes_with_mean_and_std(tmp_path: Path) -> None:
    path = tmp_path / "gray.jpg"
    Image.new("RGB", (300, 200), (128, 128, 128)).save(path, quality=100)
    array = load_image(path, "imagenet", (3, 224, 224))
    want = (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert array.shape == (3, 224, 224)
    assert np.allclose(array.mean(axis=(1, 2)), want, atol=0.02)


def test_images_are_batched_with_held_out_samples(images: Path, yolo_onnx: Path) -> None:
    data = open_calibration(
        CalibOptions(data=str(images), shape="images:4x3x64x64", samples=8, eval_samples=2), yolo_onnx
    )
    assert data is not None and data.kind == "images" and data.held_out
    batches = list(data.batches())
    assert [b["images"].shape for b in batches] == [(4, 3, 64, 64), (4, 3, 64, 64)]
    assert all(b["images"].min() >= 0.0 and b["images"].max() <= 1.0 for b in batches)
    held = list(data.batches("eval"))
    assert [b["images"].shape for b in held] == [(2, 3, 64, 64)]
    # Held-out samples are not calibration samples.
    assert not {r.path for r in data.eval_refs} & {r.path for r in data.calib_refs}


def test_last_batch_is_padded_on_request(images: Path, yolo_onnx: Path) -> None:
    data = open_calibration(CalibOptions(data=str(images), shape="4x3x32x32", samples=5), yolo_onnx)
    assert data is not None
    assert [b["images"].shape[0] for b in data.batches()] == [4, 1]
    assert [b["images"].shape[0] for b in data.batches(pad_last=True)] == [4, 4]
    assert data.num_batches() == 2


def test_provenance_is_stable_and_changing_one_image_invalidates_the_cache(
    images: Path, yolo_onnx: Path, tmp_path: Path
) -> None:
    options = CalibOptions(data=str(images), shape="images:2x3x32x32", samples=6)
    first = open_calibration(options, yolo_onnx)
    assert first is not None
    prov = first.provenance()
    again = open_calibration(options, yolo_onnx)
    assert again is not None and again.provenance() == prov
    assert prov["model_sha256"] and prov["files_sha256"] and prov["preprocess"] == {"preset": "yolo", "pad": 114}

    cache = tmp_path / "model.calib"
    cache.write_bytes(b"ranges")
    write_provenance(cache, prov)
    assert read_provenance(cache) == prov
    assert cache_is_fresh(cache, prov, explicit=False)

    # Change one calibration image (first.calib_refs[0]): a new hash, so the cache is stale.
    changed = first.calib_refs[0].path
    Image.new("RGB", (30, 30), (1, 2, 3)).save(changed)
    now = open_calibration(options, yolo_onnx)
    assert now is not None
    assert now.provenance()["files_sha256"] != prov["files_sha256"]
    assert not cache_is_fresh(cache, now.provenance(), explicit=False)
    with pytest.raises(CalibrationError, match=r"stale: the calibration files changed"):
        cache_is_fresh(cache, now.provenance(), explicit=True)


def test_preprocessing_and_shape_are_part_of_the_provenance(images: Path, yolo_onnx: Path) -> None:
    base = open_calibration(CalibOptions(data=str(images), shape="2x3x32x32", samples=4), yolo_onnx)
    other_prep = open_calibration(
        CalibOptions(data=str(images), shape="2x3x32x32", samples=4, preprocess="imagenet"), yolo_onnx
    )
    other_shape = open_calibration(CalibOptions(data=str(images), shape="2x3x64x64", samples=4), yolo_onnx)
    assert base and other_prep and other_shape
    assert base.provenance()["preprocess"] != other_prep.provenance()["preprocess"]
    assert base.provenance()["batch_shapes"] != other_shape.provenance()["batch_shapes"]


def test_npy_file_with_samples_along_axis_0(tmp_path: Path, resnet_onnx: Path) -> None:
    samples = np.random.default_rng(1).random((10, 3, 224, 224), dtype=np.float32)
    np.save(tmp_path / "calib.npy", samples)
    data = open_calibration(
        CalibOptions(data=str(tmp_path / "calib.npy"), shape="input:4x3x224x224", samples=8, eval_samples=2), resnet_onnx
    )
    assert data is not None and data.kind == "arrays"
    got = np.concatenate([b["input"] for b in data.batches()])
    assert np.array_equal(got, samples[:8])
    assert np.array_equal(next(data.batches("eval"))["input"], samples[8:])


def test_npz_feeds_every_input_of_a_two_input_model(tmp_path: Path, two_input_onnx: Path) -> None:
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "calib.npz", image=rng.random((6, 3, 32, 32), dtype=np.float32),
             scale=rng.random((6, 1), dtype=np.float32))  # fmt: skip
    data = open_calibration(
        CalibOptions(data=str(tmp_path / "calib.npz"), shape="image:2x3x32x32,scale:2x1", eval_samples=2), two_input_onnx
    )
    assert data is not None
    batch = next(data.batches())
    assert batch["image"].shape == (2, 3, 32, 32) and batch["scale"].shape == (2, 1)
    assert data.num_samples == 5 and data.num_eval_samples == 1  # at most 20 % held out


def test_array_with_the_wrong_sample_shape_is_named(tmp_path: Path, resnet_onnx: Path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((4, 3, 100, 100), np.float32))
    with pytest.raises(CalibrationError, match=r"bad.npy.*\[4, 3, 100, 100\].*\[3, 224, 224\]"):
        open_calibration(CalibOptions(data=str(tmp_path / "bad.npy")), resnet_onnx)


def test_user_preprocessing_function(images: Path, yolo_onnx: Path, tmp_path: Path) -> None:
    module = tmp_path / "myprep.py"
    module.write_text(
        "import numpy as np\n"
        "def load(path, shape):\n"
        "    return np.full(shape, 0.25, dtype=np.float32)\n"
    )
    spec = f"{module}:load"
    data = open_calibration(CalibOptions(data=str(images), shape="2x3x32x32", samples=4, preprocess=spec), yolo_onnx)
    assert data is not None
    assert np.all(next(data.batches())["images"] == 0.25)
    assert data.provenance()["preprocess"]["function"] == spec
    assert data.provenance()["preprocess"]["source_sha256"]

    with pytest.raises(CalibrationError, match="has no function 'nope'"):
        open_calibration(CalibOptions(data=str(images), shape="2x3x32x32", preprocess=f"{module}:nope"), yolo_onnx)


def test_random_data_only_on_request_and_with_a_warning(
    resnet_onnx: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(CalibrationError, match="--calib-data"):
        open_calibration(CalibOptions(), resnet_onnx)
    assert open_calibration(CalibOptions(), resnet_onnx, require=False) is None
    with caplog.at_level(logging.WARNING):
        data = open_calibration(CalibOptions(random=True, samples=3, shape="input:2x3x224x224"), resnet_onnx)
    assert data is not None and data.kind == "random"
    assert "random" in caplog.text and "smoke test" in caplog.text
    assert [b["input"].shape[0] for b in data.batches()] == [2, 1]
    calib, held = next(data.batches()), next(data.batches("eval"))
    assert not np.array_equal(calib["input"], held["input"][:2])


def test_dynamic_axes_take_the_data_or_preset_size(images: Path, yolo_onnx: Path, resnet_onnx: Path) -> None:
    # Images with a dynamic height/width take the preset's size (yolo: 640).
    data = open_calibration(CalibOptions(data=str(images)), yolo_onnx)
    assert data is not None and data.batch_shapes == {"images": (1, 3, 640, 640)}
    # A dynamic batch alone falls back to batch 1; a profile's opt shape is used when given.
    data = open_calibration(CalibOptions(random=True, samples=2), resnet_onnx)
    assert data is not None and data.batch_shapes == {"input": (1, 3, 224, 224)}
    data = open_calibration(CalibOptions(data=str(images)), yolo_onnx, profile_opt={"images": (2, 3, 32, 32)})
    assert data is not None and data.batch_shapes == {"images": (2, 3, 32, 32)}
    with pytest.raises(CalibrationError, match="axis 1 is fixed to 3"):
        open_calibration(CalibOptions(data=str(images), shape="1x4x32x32"), yolo_onnx)


def test_images_cannot_feed_a_two_input_model(images: Path, two_input_onnx: Path) -> None:
    with pytest.raises(CalibrationError, match=r"\.npz"):
        open_calibration(CalibOptions(data=str(images), shape="image:1x3x32x32,scale:1x1"), two_input_onnx)


def test_missing_or_mixed_folders_are_refused(tmp_path: Path, yolo_onnx: Path) -> None:
    with pytest.raises(CalibrationError, match="does not exist"):
        open_calibration(CalibOptions(data=str(tmp_path / "nope"), shape="1x3x32x32"), yolo_onnx)
    mixed = make_images(tmp_path / "mixed", count=2)
    np.save(mixed / "x.npy", np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(CalibrationError, match="mixes images"):
        open_calibration(CalibOptions(data=str(mixed), shape="1x3x32x32"), yolo_onnx)


def test_hostile_calibration_data_ends_in_one_sentence(
    tmp_path: Path, resnet_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trtbuild.model.calib import load_image

    # A 16-bit ramp keeps its gradient (Pillow's own conversion would clip 99 % of it to white).
    ramp = (np.tile(np.linspace(0, 65535, 64), (64, 1))).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    image = load_image(tmp_path / "deep.png", "yolo", (3, 64, 64))
    assert 0.4 < float(image.mean()) < 0.6 and float((image >= 0.999).mean()) < 0.05
    # A decompression bomb is refused before it is decoded.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(CalibrationError, match="refused"):
        load_image(tmp_path / "deep.png", "yolo", (3, 64, 64))
    monkeypatch.undo()
    # NaN samples, object arrays and a batch of 0.
    np.savez(tmp_path / "nan.npz", input=np.full((2, 3, 224, 224), np.nan, np.float32))
    with pytest.raises(CalibrationError, match="NaN"):
        open_calibration(CalibOptions(data=str(tmp_path / "nan.npz")), resnet_onnx)
    np.save(tmp_path / "obj.npy", np.array([object()] * 2, dtype=object), allow_pickle=True)
    with pytest.raises(CalibrationError, match="Cannot read"):
        open_calibration(CalibOptions(data=str(tmp_path / "obj.npy")), resnet_onnx)
    with pytest.raises(CalibrationError, match="below 1"):
        open_calibration(CalibOptions(random=True, shape="input:0x3x224x224"), resnet_onnx)
