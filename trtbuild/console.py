"""Terminal output: errors as one paragraph, logs through rich when it is there, progress bars."""

from __future__ import annotations

import logging
import sys
from collections.abc import Collection, Sequence
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


def terminal_width() -> int:
    """Columns to fit: the terminal's, ``$COLUMNS``, else 80 (a pipe or a CI log)."""
    import shutil

    return max(40, shutil.get_terminal_size((80, 24)).columns)


def fit_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    right: Collection[str] = (),
    drop: Sequence[str] = (),
    wrap: Collection[str] = (),
    drop_after_wrap: Sequence[str] = (),
    gap: int = 2,
) -> tuple[list[str], list[str]]:
    """Plain-text table lines that fit ``width``, and the columns left out to fit.

    While the table is too wide: columns in ``drop`` are left out in that order, then the ``wrap``
    columns wrap at spaces, then columns in ``drop_after_wrap`` are left out in that order. A value is
    never cut: a word longer than its column widens the table instead (numbers sit in ``right``
    columns, which never wrap).
    """
    import textwrap

    width = width or terminal_width()
    natural = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]
    longest_word = [max([len(w) for r in rows for w in r[i].split()] + [len(w) for w in header[i].split()] + [1])
                    for i in range(len(header))]  # fmt: skip

    def layout(keep: list[int]) -> dict[int, int]:
        widths = {i: natural[i] for i in keep}
        excess = sum(widths.values()) + gap * (len(keep) - 1) - width
        for i in sorted((i for i in keep if header[i] in wrap), key=lambda i: -natural[i]):
            if excess <= 0:
                break
            shrink = min(excess, widths[i] - longest_word[i])
            if shrink > 0:
                widths[i] -= shrink
                excess -= shrink
        return widths

    def too_wide(widths: dict[int, int]) -> bool:
        return sum(widths.values()) + gap * (len(widths) - 1) > width

    keep = list(range(len(header)))
    dropped: list[str] = []
    for name in drop:
        if sum(natural[i] for i in keep) + gap * (len(keep) - 1) <= width:
            break
        if name in header and header.index(name) in keep:
            keep.remove(header.index(name))
            dropped.append(name)
    widths = layout(keep)
    for name in drop_after_wrap:
        if not too_wide(widths):
            break
        if name in header and header.index(name) in keep:
            keep.remove(header.index(name))
            dropped.append(name)
            widths = layout(keep)

    def cell_lines(i: int, text: str) -> list[str]:
        if header[i] in wrap and len(text) > widths[i]:
            return textwrap.wrap(text, widths[i], break_long_words=False, break_on_hyphens=False) or [""]
        return [text]

    lines: list[str] = []
    for n, row in enumerate([list(header), *[list(r) for r in rows]]):
        cells = {i: cell_lines(i, row[i]) for i in keep}
        for k in range(max(len(c) for c in cells.values())):
            parts = []
            for i in keep:
                text = cells[i][k] if k < len(cells[i]) else ""
                parts.append(text.rjust(widths[i]) if header[i] in right else text.ljust(widths[i]))
            lines.append((" " * gap).join(parts).rstrip())
        if n == 0:
            lines.append((" " * gap).join("-" * widths[i] for i in keep))
    return lines, dropped
