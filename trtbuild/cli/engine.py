"""``trtbuild engine``: check an engine file against this host, or wrap/strip Ultralytics' header."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  trtbuild engine check model.engine
  trtbuild engine wrap model.engine -o model.ultralytics.engine --metadata meta.json
  trtbuild engine strip yolov8n.engine -o yolov8n.plain.engine
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "engine",
        help="check an engine against this host; wrap/strip Ultralytics' metadata header",
        description="Work on engine files. `check` verifies the plan against its manifest and this host's "
        "TensorRT and GPU without loading it. `wrap` writes an Ultralytics engine (int32 length + JSON "
        "metadata + plan) that Ultralytics' TensorRT backend reads; `strip` turns one back into a bare plan "
        "that trtexec, Triton, DeepStream and trtbuild load.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("action", choices=["check", "wrap", "strip"], help="what to do")
    parser.add_argument("engine", help="engine file")
    parser.add_argument("-o", "--output", help="output file (wrap and strip)")
    parser.add_argument("--format", choices=["ultralytics"], default="ultralytics",
                        help="container format for wrap/strip (default: ultralytics)")  # fmt: skip
    parser.add_argument("--metadata", help="wrap: JSON metadata, inline or a .json file (Ultralytics keys: "
                        "stride, names, imgsz, batch, task, dla, ...)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="check: print the verdict as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from trtbuild.errors import SpecError

    if args.action == "check":
        return _check(args)
    if not args.output:
        raise SpecError(f"`trtbuild engine {args.action}` writes a new file: give it with -o OUTPUT.")
    from trtbuild import engine_file

    if args.action == "wrap":
        out = engine_file.wrap_ultralytics(args.engine, args.output, _metadata(args.metadata))
        print(f"wrote {out} (Ultralytics header + plan of {args.engine})")
        return 0
    out, metadata = engine_file.strip_ultralytics(args.engine, args.output)
    keys = ", ".join(sorted(metadata)) or "none"
    restored = " and its manifest" if engine_file.manifest_path(out).exists() else ""
    print(f"wrote {out}{restored} (bare TensorRT plan; the header's metadata keys were: {keys})")
    return 0


def _metadata(text: str | None) -> dict:
    import json
    from pathlib import Path

    from trtbuild.errors import SpecError

    if not text:
        return {}
    source = Path(text)
    try:
        raw = source.read_text(encoding="utf-8") if source.suffix == ".json" and source.is_file() else text
        value = json.loads(raw)
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"--metadata must be a JSON object or a .json file holding one ({exc}).") from None
    if not isinstance(value, dict):
        raise SpecError("--metadata must be a JSON object, like '{\"stride\": 32, \"names\": {\"0\": \"person\"}}'.")
    return value


def _check(args: argparse.Namespace) -> int:
    import json

    from trtbuild import engine_file
    from trtbuild.errors import EngineFileError, MissingDependencyError

    data, manifest = engine_file.load_engine_bytes(args.engine, check_host=False)
    if manifest is None:
        raise EngineFileError(
            f"{args.engine} is a TensorRT plan without a manifest ({engine_file.manifest_path(args.engine).name}), so "
            "its TensorRT version and GPU cannot be checked; rebuild it with trtbuild build to get one."
        )
    host = engine_file.host_info(engine_file.manifest_device(manifest))
    verdict = engine_file.check_compatibility(manifest, host)
    if args.json:
        print(json.dumps({"engine": args.engine, **verdict.to_dict()}, indent=2))
    for warning in verdict.warnings:
        import logging

        logging.getLogger("trtbuild.engine").warning("%s", warning)
    if verdict.ok is None:
        raise MissingDependencyError(verdict.reason)
    if not verdict.ok:
        raise EngineFileError(verdict.reason)
    if not args.json:
        print(f"{args.engine}: plan intact ({len(data)} bytes, sha256 matches its manifest). {verdict.reason}")
    return 0
