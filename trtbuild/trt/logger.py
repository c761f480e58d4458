"""TensorRT's logger, bridged into Python's ``logging`` (logger name ``trtbuild.tensorrt``).

TensorRT warns when one process uses several loggers, so there is one per imported ``tensorrt``
module; its verbosity follows ``spec.reporting.verbose``. Errors are also kept, so that a failed
build or deserialization can say why in its one error message.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("trtbuild.tensorrt")

_SEVERITY_LEVELS = (
    ("INTERNAL_ERROR", logging.CRITICAL),
    ("ERROR", logging.ERROR),
    ("WARNING", logging.WARNING),
    ("INFO", logging.INFO),
    ("VERBOSE", logging.DEBUG),
)
_cache: dict[int, Any] = {}
_lock = threading.Lock()


def get_logger(verbose: bool = False) -> Any:
    """The process's bridge logger for the imported TensorRT (a ``trt.ILogger``)."""
    from trtbuild.trt.compat import import_tensorrt

    trt = import_tensorrt()
    with _lock:
        logger = _cache.get(id(trt))
        if logger is None:
            logger = _make_logger_class(trt)()
            _cache[id(trt)] = logger
    logger.verbose = verbose
    return logger


def _make_logger_class(trt: Any) -> type:
    # Defined per module: the base class is the installed TensorRT's ILogger.
    severity = trt.ILogger.Severity
    levels = [(getattr(severity, name), level) for name, level in _SEVERITY_LEVELS if hasattr(severity, name)]

    class BridgeLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.verbose = False
            self.errors: list[str] = []
            self._errors_lock = threading.Lock()

        def log(self, sev: Any, msg: str) -> None:
            level = next((lvl for member, lvl in levels if member == sev), logging.INFO)
            if level >= logging.ERROR:
                with self._errors_lock:
                    self.errors.append(msg)
            if level == logging.DEBUG and not self.verbose:
                return
            if level == logging.INFO and not self.verbose:
                level = logging.DEBUG  # TensorRT's INFO is chatty; shown with --verbose
            log.log(level, "[TensorRT] %s", msg)

        def take_errors(self) -> list[str]:
            with self._errors_lock:
                errors, self.errors = self.errors, []
            return errors

    return BridgeLogger
