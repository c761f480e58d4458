"""TensorRT's implicit INT8 calibration (TensorRT <= 10.x): the legacy path.

An ``IInt8EntropyCalibrator2`` (or ``IInt8MinMaxCalibrator``) subclass fed by trtbuild's calibration
data (:mod:`trtbuild.model.calib`) through PyCUDA device buffers. It reads and writes TensorRT's
own calibration cache, so ``trtexec --int8 --calib=model.calib`` can use the same file; the
provenance (data hash, preprocessing, shapes, model) lives beside it in ``model.calib.json`` and
decides whether the cache may be reused.

TensorRT 11 removed the calibrators, ``IBuilderConfig.int8_calibrator`` and the INT8 flag: there,
INT8 means a Q/DQ ONNX model (``trtbuild quantize``) and :func:`make_calibrator` refuses.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from trtbuild.errors import MissingDependencyError, TrtbuildError
from trtbuild.model.calib import (
    CalibrationData,
    CalibrationError,
    cache_is_fresh,
    file_sha256,
    read_provenance,
    write_provenance,
)

log = logging.getLogger(__name__)

#: calibration method -> TensorRT base class
ALGORITHMS = {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}


class CalibratorUnavailable(TrtbuildError):
    """The installed TensorRT has no INT8 calibrators (TensorRT 11 and later)."""


def calibrators_available(trt: ModuleType) -> bool:
    return hasattr(trt, "IInt8EntropyCalibrator2")


def _refuse_11(trt: ModuleType) -> CalibratorUnavailable:
    version = getattr(trt, "__version__", "11")
    return CalibratorUnavailable(
        f"TensorRT {version} has no INT8 calibrators: IInt8EntropyCalibrator2, IInt8MinMaxCalibrator and "
        "IBuilderConfig.int8_calibrator were removed in TensorRT 11, where INT8 comes from Q/DQ nodes in the ONNX "
        "model. Quantize it first with `trtbuild quantize model.onnx --int8 --calib-data DIR -o model.int8.onnx` "
        "and build that (`trtbuild build --int8 --calib-data DIR` does both)."
    )


def import_pycuda() -> ModuleType:
    """``pycuda.driver`` with a current CUDA context (the primary one, which TensorRT also uses)."""
    try:
        driver = importlib.import_module("pycuda.driver")
    except ImportError as exc:
        raise MissingDependencyError(
            f"INT8 calibration feeds TensorRT through PyCUDA, which is not installed ({exc}): pip install pycuda "
            "(it compiles against the CUDA toolkit; on a Jetson build it on the device). A calibration cache "
            "(--calib FILE) needs no PyCUDA."
        ) from None
    try:
        importlib.import_module("pycuda.autoprimaryctx")
    except ImportError:  # PyCUDA older than 2021.1
        importlib.import_module("pycuda.autoinit")
    return driver


def make_calibrator(
    data: CalibrationData | None,
    cache: str | os.PathLike[str],
    *,
    algorithm: str = "entropy",
    explicit_cache: bool = False,
    model: str | os.PathLike[str] | None = None,
    trt: ModuleType | None = None,
) -> Any:
    """A TensorRT calibrator over ``data`` that reads/writes ``cache`` (TensorRT's format).

    The cache is reused while its provenance matches (same files, preprocessing, shapes, model);
    otherwise TensorRT calibrates again and the cache is rewritten. An ``explicit_cache`` (named with
    ``--calib``) is refused when stale, and stands in for data: ``data=None`` works with it alone
    (like ``trtexec --calib=FILE``), checked against ``model``'s hash when it has provenance.
    """
    if trt is None:
        from trtbuild.trt.compat import import_tensorrt

        trt = import_tensorrt()
    if algorithm not in ALGORITHMS:
        raise CalibrationError(f"Unknown calibration algorithm '{algorithm}'; TensorRT's are {', '.join(ALGORITHMS)}.")
    base = getattr(trt, ALGORITHMS[algorithm], None)
    if base is None or not calibrators_available(trt):
        raise _refuse_11(trt)
    cache_path = Path(cache)
    if data is not None:
        provenance = data.provenance()
    elif model is not None:
        provenance = {"model_sha256": file_sha256(model)}
    else:
        provenance = {}
    provenance["algorithm"] = algorithm
    only = () if data is not None else tuple(k for k in ("model_sha256", "algorithm") if k in provenance)
    fresh = cache_is_fresh(cache_path, provenance, explicit=explicit_cache, only=only, what="TensorRT calibration cache")
    cached: bytes | None = None
    if fresh:
        cached = cache_path.read_bytes()
        if data is None:
            provenance = {**(read_provenance(cache_path) or {}), **provenance}
    elif data is None:
        raise CalibrationError(
            f"There is no usable calibration cache at {cache_path} and no calibration data: pass --calib-data DIR "
            "(images or .npy/.npz) to calibrate, or --calib with an existing cache."
        )
    else:
        import_pycuda()  # fail before the build starts, not inside a TensorRT callback
    cls = _calibrator_class(trt, base)
    return cls(data, cache_path, provenance, cached, getattr(trt, "__version__", None))


def _calibrator_class(trt: ModuleType, base: Any) -> type:
    class TrtbuildCalibrator(base):  # type: ignore[misc,valid-type]
        """Feeds trtbuild calibration batches to TensorRT; errors are kept for after the build."""

        def __init__(
            self,
            data: CalibrationData | None,
            cache_path: Path,
            provenance: dict[str, Any],
            cached: bytes | None,
            trt_version: str | None,
        ) -> None:
            base.__init__(self)  # pybind11 needs the base constructor called explicitly
            self.data = data
            self.cache_path = cache_path
            self.provenance = provenance
            self.trt_version = trt_version
            self._cached = cached
            self._batches: Any = None
            self._buffers: dict[str, Any] = {}
            self._sizes: dict[str, int] = {}
            self._driver: ModuleType | None = None
            self._progress: Any = None
            self._task: Any = None
            self.batches_served = 0
            self.input_dtypes: dict[str, str] = {}  # numpy type TensorRT reads each input in (set by the builder)
            self.input_shapes: dict[str, tuple[int, ...]] = {}  # the calibration profile's OPT shapes
            self.cache_read = False
            self.cache_written = False
            self.error: BaseException | None = None

        # ---- TensorRT's interface

        def get_batch_size(self) -> int:
            # Explicit-batch networks take the batch from the input shapes (the calibration profile's
            # opt shape); TensorRT ignores this value there, and trtexec returns 1 too.
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.error is not None or self.data is None:
                return None
            try:
                if self._batches is None:
                    self._start()
                batch = next(self._batches, None)
                if batch is None:
                    self._finish()
                    return None
                pointers = [self._upload(name, batch) for name in names]
                self.batches_served += 1
                if self._progress is not None:
                    self._progress.advance(self._task)
                return pointers
            except BaseException as exc:  # an exception must not cross into TensorRT's C++ callback
                self.error = exc
                log.error("Calibration batch %d failed: %s", self.batches_served + 1, exc)
                self._finish()
                return None

        def read_calibration_cache(self) -> bytes | None:
            if self._cached:
                self.cache_read = True
                log.info("TensorRT reads the calibration cache %s.", self.cache_path)
            return self._cached

        def write_calibration_cache(self, cache: Any) -> None:
            from trtbuild.fsutil import atomic_write_bytes

            try:
                payload = bytes(memoryview(cache))
                atomic_write_bytes(self.cache_path, payload)
                write_provenance(self.cache_path, self.provenance, tensorrt=self.trt_version,
                                 format="TensorRT calibration cache (trtexec --calib)")  # fmt: skip
                self.cache_written = True
                log.info("Wrote the calibration cache %s (%d bytes).", self.cache_path, len(payload))
            except BaseException as exc:
                self.error = exc
                log.error("Could not write the calibration cache %s: %s", self.cache_path, exc)

        def set_network_inputs(self, dtypes: dict[str, str], shapes: dict[str, tuple[int, ...]]) -> None:
            """What TensorRT will read per input: its numpy type and the calibration profile's OPT shape."""
            self.input_dtypes = dict(dtypes)
            self.input_shapes = {n: tuple(int(d) for d in s) for n, s in shapes.items()}

        # ---- helpers

        def _start(self) -> None:
            assert self.data is not None
            self._driver = import_pycuda()
            self._batches = self.data.batches("calib", pad_last=True)
            from trtbuild.console import progress

            self._progress = progress()
            self._progress.start()
            self._task = self._progress.add_task("INT8 calibration", total=self.data.num_batches("calib"))
            log.info(
                "Calibrating INT8 with %s on %d batch(es) of %s.",
                type(self).__mro__[1].__name__,
                self.data.num_batches("calib"),
                ", ".join(f"{n}:{'x'.join(map(str, s))}" for n, s in self.data.batch_shapes.items()),
            )

        def _upload(self, name: str, batch: dict[str, Any]) -> int:
            import numpy as np

            if name not in batch:
                raise CalibrationError(
                    f"TensorRT asks for the input '{name}', but the calibration data has {', '.join(batch)}."
                )
            array = np.asarray(batch[name])
            # TensorRT reads each input in the type the builder said (float32 unless it is an index type; an 8.x
            # network's int64 inputs are int32) and as the calibration profile's OPT shape: the buffer must be
            # exactly that, or TensorRT reads part of it or past its end.
            wanted = self.input_dtypes.get(name) or ("float32" if array.dtype.kind in "fu" else str(array.dtype))
            if wanted == "int32" and array.dtype.kind in "iu" and array.size:
                lo, hi = int(array.min()), int(array.max())
                if lo < -(2**31) or hi >= 2**31:
                    raise CalibrationError(f"Calibration input '{name}' has values outside int32 ({lo}..{hi}), the "
                                           f"type TensorRT {self.trt_version} reads it in.")  # fmt: skip
            array = np.ascontiguousarray(array, dtype=np.dtype(wanted))
            expected = self.input_shapes.get(name)
            if expected is not None and tuple(array.shape) != expected:
                raise CalibrationError(
                    f"Calibration batch for '{name}' has the shape {'x'.join(map(str, array.shape))}, but TensorRT "
                    f"reads {'x'.join(map(str, expected))} (the calibration profile's OPT shape); calibrate with "
                    "batches of that shape."
                )
            driver = self._driver
            assert driver is not None
            buffer = self._buffers.get(name)
            if buffer is None or self._sizes.get(name, 0) < array.nbytes:
                if buffer is not None:
                    buffer.free()
                buffer = driver.mem_alloc(max(array.nbytes, 1))
                self._buffers[name] = buffer
                self._sizes[name] = array.nbytes
            driver.memcpy_htod(buffer, array)
            return int(buffer)

        def _finish(self) -> None:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
            self.free()

        def free(self) -> None:
            """Release the device buffers (also done when the batches run out)."""
            for buffer in self._buffers.values():
                try:
                    buffer.free()
                except Exception:  # already freed with its context
                    pass
            self._buffers.clear()
            self._sizes.clear()

        def raise_if_failed(self) -> None:
            """Call after the build: a failure inside TensorRT's callbacks becomes a normal exception."""
            if self.error is None:
                return
            if isinstance(self.error, TrtbuildError):
                raise self.error
            raise CalibrationError(f"INT8 calibration failed: {type(self.error).__name__}: {self.error}") from self.error

    return TrtbuildCalibrator


def attach_calibrator(config: Any, calibrator: Any, calibration_profile: Any | None = None) -> None:
    """Set the calibrator on a builder config; dynamic shapes also need the calibration profile."""
    if not hasattr(config, "int8_calibrator"):
        import tensorrt as trt

        raise _refuse_11(trt)
    config.int8_calibrator = calibrator
    if calibration_profile is not None and hasattr(config, "set_calibration_profile"):
        config.set_calibration_profile(calibration_profile)
