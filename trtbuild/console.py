"""Terminal output: errors as one paragraph, logs through rich when it is there, progress bars."""

from __future__ import annotations

import logging
import sys
from typing import Any


def print_error(message: str) -> None:
    # One paragraph on one line: the terminal wraps it, and grep still finds it whole.
    print("trtbuild: error: " + " ".join(message.split()), file=sys.stderr)


class LogHandler(logging.Handler):
    """Plain ``level: message`` lines on stderr; warnings and errors stand out with their level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            prefix = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
            print(f"{prefix}{msg}", file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def get_console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def progress(transient: bool = True) -> Any:
    """A rich progress bar on stderr (hidden when stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=get_console(stderr=True),
        transient=transient,
        disable=not sys.stderr.isatty(),
    )
