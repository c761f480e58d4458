"""The legacy INT8 calibrator (TensorRT <= 10) through the TensorRT/PyCUDA test double, and the
flags-vs-ONNX precision pipeline choice. Nothing here measures TensorRT: the double runs ONNX Runtime."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from test_calib import make_images

from trtbuild.errors import MissingDependencyError, SpecError
from trtbuild.model.calib import CalibOptions, CalibrationError, open_calibration
from trtbuild.precision import prepare_for_precision

SHAPE = (2, 3, 64, 64)


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    return make_images(tmp_path / "images", count=6)


def calib_data(images: Path, model: Path) -> Any:
    return open_calibration(CalibOptions(data=str(images), shape="images:2x3x64x64", samples=4), model)


def build_int8(trt: Any, onnx_path: Path, calibrator: Any) -> Any:
    """A weakly typed INT8 build with the calibrator, the way trtbuild's builder drives TensorRT <= 10."""
    from trtbuild.trt.calibrator import attach_calibrator

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = builder.create_network(0 if explicit is None else 1 << int(explicit))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    profile.set_shape("images", SHAPE, SHAPE, SHAPE)
    config.add_optimization_profile(profile)
    attach_calibrator(config, calibrator, profile)
    return builder.build_serialized_network(network, config)


@pytest.mark.parametrize("level", ["8.6", "10.x"])
def test_entropy_calibrator_feeds_batches_and_writes_a_trtexec_cache(
    level: str, images: Path, yolo_onnx: Path, tmp_path: Path
) -> None:
    from trt_emulator import install

    cache = tmp_path / "yolo.calib"
    with install(level) as trt:
        from trtbuild.trt.calibrator import make_calibrator

        data = calib_data(images, yolo_onnx)
        calibrator = make_calibrator(data, cache, trt=trt)
        assert isinstance(calibrator, trt.IInt8EntropyCalibrator2)
        assert build_int8(trt, yolo_onnx, calibrator) is not None
        calibrator.raise_if_failed()
        assert calibrator.batches_served == 2 and calibrator.cache_written and not calibrator.cache_read
        # TensorRT's own cache format (what trtexec --calib reads), with the provenance beside it.
        assert cache.read_bytes().startswith(b"TRT-") and b"EntropyCalibration2" in cache.read_bytes()
        stored = json.loads(Path(str(cache) + ".json").read_text())
        assert stored["provenance"]["files_sha256"] == data.provenance()["files_sha256"]
        assert stored["provenance"]["algorithm"] == "entropy" and stored["tensorrt"] == trt.__version__

        # Same data: the cache is read and no batch is needed.
        again = make_calibrator(calib_data(images, yolo_onnx), cache, trt=trt)
        assert build_int8(trt, yolo_onnx, again) is not None
        assert again.cache_read and again.batches_served == 0

        # One calibration image changes: the cache is stale and TensorRT calibrates again.
        Image.new("RGB", (50, 50), (3, 3, 3)).save(data.calib_refs[0].path)
        fresh = make_calibrator(calib_data(images, yolo_onnx), cache, trt=trt)
        assert build_int8(trt, yolo_onnx, fresh) is not None
        assert not fresh.cache_read and fresh.batches_served == 2


def test_explicit_cache_is_refused_when_stale_and_works_alone(images: Path, yolo_onnx: Path, tmp_path: Path) -> None:
    from trt_emulator import install

    cache = tmp_path / "given.calib"
    with install("10.x") as trt:
        from trtbuild.trt.calibrator import make_calibrator

        first = make_calibrator(calib_data(images, yolo_onnx), cache, explicit_cache=True, trt=trt)
        assert build_int8(trt, yolo_onnx, first) is not None and cache.exists()
        # --calib CACHE alone, like trtexec --calib: no data needed.
        alone = make_calibrator(None, cache, explicit_cache=True, model=yolo_onnx, trt=trt)
        assert build_int8(trt, yolo_onnx, alone) is not None and alone.cache_read
        Image.new("RGB", (50, 50), (4, 4, 4)).save(sorted(images.iterdir())[0])
        with pytest.raises(CalibrationError, match="stale: the calibration files changed.*--calib"):
            make_calibrator(calib_data(images, yolo_onnx), cache, explicit_cache=True, trt=trt)
        # A cache for another model is stale too.
        other = tmp_path / "other.onnx"
        other.write_bytes(b"another model")
        with pytest.raises(CalibrationError, match="the model changed"):
            make_calibrator(None, cache, explicit_cache=True, model=other, trt=trt)
        # No cache and no data: say what to pass.
        with pytest.raises(CalibrationError, match="--calib-data"):
            make_calibrator(None, tmp_path / "none.calib", trt=trt)


def test_cache_without_provenance_is_trusted_with_a_warning(
    images: Path, yolo_onnx: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from trt_emulator import install

    cache = tmp_path / "from_trtexec.calib"
    with install("8.6") as trt:
        from trtbuild.trt.calibrator import make_calibrator

        build_int8(trt, yolo_onnx, make_calibrator(calib_data(images, yolo_onnx), cache, trt=trt))
        Path(str(cache) + ".json").unlink()  # as if trtexec had written it
        with caplog.at_level(logging.WARNING):
            calibrator = make_calibrator(None, cache, explicit_cache=True, trt=trt)
        assert "no provenance" in caplog.text
        assert build_int8(trt, yolo_onnx, calibrator) is not None and calibrator.cache_read


def test_minmax_calibrator(images: Path, yolo_onnx: Path, tmp_path: Path) -> None:
    from trt_emulator import install

    with install("10.x") as trt:
        from trtbuild.trt.calibrator import make_calibrator

        calibrator = make_calibrator(calib_data(images, yolo_onnx), tmp_path / "mm.calib", algorithm="minmax", trt=trt)
        assert isinstance(calibrator, trt.IInt8MinMaxCalibrator)
        assert build_int8(trt, yolo_onnx, calibrator) is not None
        assert b"MinMaxCalibration" in (tmp_path / "mm.calib").read_bytes()


def test_errors_inside_tensorrt_callbacks_surface_after_the_build(
    images: Path, yolo_onnx: Path, resnet_onnx: Path, tmp_path: Path
) -> None:
    from trt_emulator import install

    with install("10.x") as trt:
        from trtbuild.trt.calibrator import make_calibrator

        # Data shaped for another model: TensorRT asks for 'images', the data has 'input'.
        wrong = open_calibration(CalibOptions(random=True, samples=2, shape="input:2x3x224x224"), resnet_onnx)
        calibrator = make_calibrator(wrong, tmp_path / "x.calib", trt=trt)
        assert build_int8(trt, yolo_onnx, calibrator) is None
        with pytest.raises(CalibrationError, match="asks for the input 'images'"):
            calibrator.raise_if_failed()


def test_missing_pycuda_is_a_clear_error(
    images: Path, yolo_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trt_emulator import install

    with install("10.x") as trt:
        from trtbuild.trt.calibrator import make_calibrator

        monkeypatch.setitem(sys.modules, "pycuda.driver", None)
        with pytest.raises(MissingDependencyError, match="pip install pycuda"):
            make_calibrator(calib_data(images, yolo_onnx), tmp_path / "p.calib", trt=trt)


def test_tensorrt_11_has_no_calibrators(images: Path, yolo_onnx: Path, tmp_path: Path) -> None:
    from trt_emulator import install

    with install("11.x") as trt:
        from trtbuild.trt.calibrator import CalibratorUnavailable, attach_calibrator, make_calibrator

        assert not hasattr(trt, "IInt8EntropyCalibrator2")
        with pytest.raises(CalibratorUnavailable, match=r"removed in TensorRT 11.*trtbuild quantize"):
            make_calibrator(calib_data(images, yolo_onnx), tmp_path / "c.calib", trt=trt)
        config = trt.Builder(trt.Logger()).create_builder_config()
        with pytest.raises(CalibratorUnavailable):
            attach_calibrator(config, object())


# ---- the pipeline choice (trtbuild.precision)


def test_flags_path_on_trt10_hands_the_builder_a_calibrator(images: Path, yolo_onnx: Path, tmp_path: Path) -> None:
    from trt_emulator import install

    prepared = prepare_for_precision(
        yolo_onnx, fp16=True, int8=True, calib=CalibOptions(data=str(images), shape="images:2x3x64x64", samples=4),
        target_trt_major=10, output_dir=tmp_path,
    )  # fmt: skip
    assert prepared.precision_path == "flags" and prepared.builder_flags == ["FP16", "INT8"]
    assert prepared.path == str(yolo_onnx) and prepared.accuracy_report is None
    assert prepared.calibration_cache == str(tmp_path / f"{yolo_onnx.stem}.calib")
    manifest = prepared.manifest()
    assert manifest["path"] == "flags" and manifest["converter"] == "tensorrt-calibrator"
    assert manifest["calibration"]["files_sha256"] and manifest["calibration"]["algorithm"] == "entropy"
    with install("10.x") as trt:
        calibrator = prepared.make_calibrator(trt)
        assert build_int8(trt, yolo_onnx, calibrator) is not None
        assert Path(prepared.calibration_cache or "").exists()


def test_fp16_only_on_the_flags_path_needs_no_data(yolo_onnx: Path) -> None:
    prepared = prepare_for_precision(yolo_onnx, fp16=True, target_trt_major=8)
    assert prepared.builder_flags == ["FP16"] and prepared.make_calibrator() is None
    assert prepare_for_precision(yolo_onnx, target_trt_major=11).precision_path == "none"


def test_trt11_always_takes_the_onnx_path(images: Path, yolo_onnx: Path, tmp_path: Path) -> None:
    calib = CalibOptions(data=str(images), shape="images:2x3x64x64", samples=4, eval_samples=2)
    prepared = prepare_for_precision(yolo_onnx, fp16=True, calib=calib, target_trt_major=11, output_dir=tmp_path)
    assert prepared.precision_path == "onnx" and prepared.builder_flags == []
    assert prepared.path == str(tmp_path / f"{yolo_onnx.stem}.fp16.onnx") and Path(prepared.path).exists()
    assert prepared.converter == "trtbuild" and prepared.accuracy_report is not None
    assert prepared.manifest()["accuracy"]["passed"] is True
    with pytest.raises(SpecError, match="impossible on TensorRT 11"):
        prepare_for_precision(yolo_onnx, fp16=True, target_trt_major=11, precision_path="flags")
    # --precision-path onnx on 10.x: the Q/DQ model, built with the INT8 flag (weakly typed).
    forced = prepare_for_precision(
        yolo_onnx, int8=True, calib=calib, target_trt_major=10, precision_path="onnx", output_dir=tmp_path
    )
    assert forced.precision_path == "onnx" and forced.builder_flags == ["INT8"]
    assert forced.qdq_check is not None and forced.qdq_check.ok and forced.converter == "onnxruntime"
    # A model that already has Q/DQ is checked and built as is.
    again = prepare_for_precision(forced.path, int8=True, target_trt_major=11)
    assert again.path == forced.path and again.converter is not None and "already" in again.converter


def test_prepare_from_a_build_plan(images: Path, yolo_onnx: Path, tmp_path: Path) -> None:
    from trtbuild.plan import plan_build
    from trtbuild.spec import BuildSpec

    spec = BuildSpec.from_pairs(
        [("minShapes", "images:1x3x64x64"), ("optShapes", "images:2x3x64x64"), ("maxShapes", "images:4x3x64x64"),
         ("int8", None), ("saveEngine", str(tmp_path / "y.engine"))],
        dialect=None,
    )  # fmt: skip
    calib = CalibOptions(data=str(images), samples=4, eval_samples=2)
    plan = plan_build(spec, yolo_onnx, trtexec_version=11, calib=calib)  # the plan needs the data too
    assert plan.conversions[0].output == str(tmp_path / f"{yolo_onnx.stem}.int8.onnx")
    prepared = prepare_for_precision(plan, calib=calib)
    assert prepared.precision_path == "onnx" and prepared.target_trt_major == 11
    assert prepared.path == str(tmp_path / f"{yolo_onnx.stem}.int8.onnx")
    assert prepared.provenance is not None and prepared.provenance["batch_shapes"] == {"images": "2x3x64x64"}
