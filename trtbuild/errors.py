"""The one exception type for mistakes a user can make.

The CLI prints these as a single paragraph without a traceback and exits non-zero; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class TrtbuildError(Exception):
    """A problem the user can fix: the message says what was wrong and what to do."""

    exit_code = 2


class ShapeError(TrtbuildError):
    """A shape or optimization profile that does not fit the model."""


class SpecError(TrtbuildError):
    """A build option (or trtexec flag) that is unknown, malformed or contradictory."""


class ModelError(TrtbuildError):
    """An ONNX model that cannot be loaded, is unsafe to load, or cannot be built."""


class EngineFileError(TrtbuildError):
    """An engine file that is corrupt, foreign, or built for another GPU or TensorRT version."""


class MissingDependencyError(TrtbuildError):
    """An optional dependency (TensorRT, PyCUDA, torch, ...) is needed but not installed."""

    exit_code = 3


class ComparisonFailed(TrtbuildError):
    """Outputs of two runners disagree beyond the tolerance."""

    exit_code = 1
