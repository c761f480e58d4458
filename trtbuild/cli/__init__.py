"""``python -m trtbuild``: one sub-command per module in this package.

Each module defines ``register(subparsers)`` and ``run(args) -> int`` and imports its heavy
dependencies inside ``run``, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from trtbuild import __version__
from trtbuild.errors import TrtbuildError

#: Sub-command modules, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "trtbuild.cli.build",
    "trtbuild.cli.pack",
    "trtbuild.cli.trtexec",
    "trtbuild.cli.inspect",
    "trtbuild.cli.engine",
    "trtbuild.cli.export",
    "trtbuild.cli.optimize",
    "trtbuild.cli.cast",
    "trtbuild.cli.quantize",
    "trtbuild.cli.compare",
    "trtbuild.cli.bench",
    "trtbuild.cli.nightly",
    "trtbuild.cli.report",
    "trtbuild.cli.doctor",
    "trtbuild.cli.demo",
)

DESCRIPTION = """\
Build TensorRT engines from ONNX with dynamic-shape profiles and FP16/INT8, check them against
ONNX Runtime and PyTorch, and time them the way trtexec does.

examples:
  trtbuild inspect model.onnx
  trtbuild build model.onnx --min 1x3x640x640 --max 16x3x640x640 --dry-run
  trtbuild build model.onnx --min images:1x3x640x640 --opt images:8x3x640x640 --max images:16x3x640x640 --fp16
  trtbuild trtexec --onnx=model.onnx --shapes=input:1x3x224x224 --fp16 --dry-run
  trtbuild doctor
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trtbuild",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"trtbuild {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="how much to log (default: info)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command_parser in sub.choices.values():  # so errors show the sub-command's usage, not trtbuild's
        command_parser.set_defaults(command_parser=command_parser)
    return parser


def _setup_logging(level: str) -> None:
    from trtbuild.console import LogHandler

    root = logging.getLogger()
    root.handlers[:] = [LogHandler()]
    root.setLevel(getattr(logging, level.upper()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if extra and not getattr(args, "accepts_extra", False):
        getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    _setup_logging("debug" if getattr(args, "verbose", False) else args.log_level)
    from trtbuild.fsutil import Terminated, sigterm_cleanup

    try:
        with sigterm_cleanup():  # SIGTERM cleans up temporary files as Ctrl-C does
            return int(args.run(args) or 0)
    except TrtbuildError as exc:
        from trtbuild.console import print_error

        print_error(str(exc))
        return exc.exit_code
    except Terminated:
        print("\ntrtbuild: terminated (SIGTERM); nothing half-written was kept.", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("\ntrtbuild: interrupted; nothing half-written was kept.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # Last line of defence for environment faults that reach here unconverted: a full disk, or a path
        # that is a folder / lies under a file / may not be written. Other OSErrors are bugs: keep the traceback.
        message = _os_error_sentence(exc)
        if message is None:
            raise
        from trtbuild.console import print_error

        print_error(message)
        return 2


def _os_error_sentence(exc: OSError) -> str | None:
    from trtbuild.fsutil import disk_full_error

    full = disk_full_error(exc, exc.filename or "the output")
    if full is not None:
        return str(full)
    if exc.filename is None:
        return None
    where = exc.filename2 if isinstance(exc, IsADirectoryError) and exc.filename2 else exc.filename
    if isinstance(exc, IsADirectoryError):
        return f"{where} is an existing folder where a file must go; give a file path, or remove the folder."
    if isinstance(exc, NotADirectoryError):
        return f"{exc.filename}: a part of this path is a file, not a folder; give a path whose folders exist."
    if isinstance(exc, PermissionError):
        return f"Permission denied for {exc.filename}; choose a path you can write, or fix its permissions."
    return None
