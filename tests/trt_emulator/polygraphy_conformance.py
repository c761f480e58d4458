"""NVIDIA's Polygraphy TensorRT backend, unmodified, through the double at one API level (one process each).

Run by tests/test_polygraphy_conformance.py as ``python polygraphy_conformance.py LEVEL MODEL.onnx WORKDIR``;
prints one JSON line with what happened. Polygraphy caches the ``tensorrt`` module on first use, hence
one process per level. No Polygraphy source is patched: the double stands in for ``tensorrt`` and
``pycuda`` in ``sys.modules`` and for the CUDA runtime library behind Polygraphy's ``polygraphy.cuda``
wrapper (its ``handle``, which Polygraphy otherwise opens with ``ctypes.CDLL("libcudart.so")``).

Steps: NetworkFromOnnxPath -> CreateConfig (two profiles; FP16 and an INT8 Calibrator where the level
has them) -> EngineFromNetwork -> SaveEngine -> EngineFromBytes -> TrtRunner on profile 0, then
``set_profile(1)``; outputs against ONNX Runtime. Then the engines cross over: trtbuild's TrtRuntime runs
Polygraphy's engine (it has no manifest), and Polygraphy's TrtRunner runs an engine trtbuild built.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SHAPES = {
    0: ((1, 3, 64, 64), (2, 3, 96, 96), (2, 3, 128, 128)),
    1: ((3, 3, 160, 160), (4, 3, 192, 192), (4, 3, 256, 256)),
}


def images(shape: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
    return {"images": np.random.default_rng(seed).random(shape, dtype=np.float32)}


def reference(model: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feed)[0])


def main(level: str, model: Path, work: Path) -> dict[str, object]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from trt_emulator import install
    from trt_emulator._cudart import CtypesCudart

    report: dict[str, object] = {"level": level}
    with install(level) as trt:
        import polygraphy.cuda.cuda as polygraphy_cuda

        wrapper = object.__new__(polygraphy_cuda.Cuda)  # the wrapper, minus its dlopen of libcudart
        wrapper.handle = CtypesCudart(trt._device_memory)
        polygraphy_cuda.G_CUDA = wrapper

        from polygraphy.backend.common import BytesFromPath
        from polygraphy.backend.trt import (
            Calibrator,
            CreateConfig,
            EngineFromBytes,
            EngineFromNetwork,
            NetworkFromOnnxPath,
            Profile,
            SaveEngine,
            TrtRunner,
        )

        profiles = [Profile().add("images", *SHAPES[i]) for i in (0, 1)]
        options: dict[str, object] = {}
        if hasattr(trt.BuilderFlag, "FP16"):
            options["fp16"] = True
        if hasattr(trt, "IInt8EntropyCalibrator2"):
            cache = work / f"poly-{level}.calib"
            options["int8"] = True
            # Polygraphy calibrates with the last profile (CreateConfig: "Using calibration profile"), at its OPT shape.
            options["calibrator"] = Calibrator(data_loader=[images(SHAPES[1][1], s) for s in (10, 11)], cache=str(cache))
        report["options"] = sorted(options)
        engine_path = work / f"poly-{level}.engine"
        build = SaveEngine(EngineFromNetwork(NetworkFromOnnxPath(str(model)), CreateConfig(profiles=profiles, **options)),
                           path=str(engine_path))  # fmt: skip
        build()
        report["calibration_batches"] = len(getattr(trt, "EMULATOR_CALIBRATION_READS", []))
        feeds = [images(SHAPES[0][1], 1), images(SHAPES[1][1], 2)]
        with TrtRunner(EngineFromBytes(BytesFromPath(str(engine_path)))) as runner:
            out0 = {k: np.array(v) for k, v in runner.infer(feeds[0]).items()}  # the next infer reuses the buffers
            runner.set_profile(1)
            out1 = runner.infer(feeds[1])
        report["polygraphy_errors"] = [
            float(np.abs(np.asarray(out["output0"]) - reference(model, feed)).max())
            for out, feed in ((out0, feeds[0]), (out1, feeds[1]))
        ]

        # Cross-load 1: trtbuild runs Polygraphy's engine, which has no manifest.
        from trtbuild.trt.runtime import TrtRuntime

        with TrtRuntime(engine_path) as rt:
            report["trtbuild_runs_polygraphy_engine_error"] = max(
                float(np.abs(rt.infer(feed)["output0"] - reference(model, feed)).max()) for feed in feeds
            )
            report["trtbuild_profiles"] = len(rt.profiles)

        # Cross-load 2: Polygraphy runs an engine trtbuild built (with its manifest beside it).
        from trtbuild.build import build_from_plan
        from trtbuild.plan import plan_build
        from trtbuild.shapes import profile_from_flags
        from trtbuild.spec import BuildSpec

        spec = BuildSpec(onnx=str(model))
        spec.build.profiles = [
            profile_from_flags(**{k: "images:" + "x".join(map(str, s)) for k, s in zip(("min", "opt", "max"), SHAPES[i])})
            for i in (0, 1)
        ]
        spec.build.save_engine = str(work / f"trtbuild-{level}.engine")
        ours = build_from_plan(plan_build(spec, str(model)))
        with TrtRunner(EngineFromBytes(BytesFromPath(str(ours)))) as runner:
            runner.set_profile(1)
            out = runner.infer(feeds[1])
        report["polygraphy_runs_trtbuild_engine_error"] = float(
            np.abs(np.asarray(out["output0"]) - reference(model, feeds[1])).max()
        )
        report["engine"] = str(engine_path)
    return report


if __name__ == "__main__":
    result = main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
    print("RESULT " + json.dumps(result))
