"""The one exception hierarchy of rerankit, and its warnings.

Every error that rerankit raises on purpose is a :class:`RerankError`, so a caller can catch one
type. Subclasses say what went wrong; messages name the offending input by index.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "CalibrationError",
    "ConfigurationError",
    "EmptyQueryError",
    "InvalidDocumentError",
    "InvalidQueryError",
    "MissingDependencyError",
    "RerankError",
    "RerankWarning",
    "TruncationWarning",
    "UnknownBackendError",
]


class RerankError(Exception):
    """Base class of every error rerankit raises."""


class ConfigurationError(RerankError, ValueError):
    """A constructor or call argument is invalid (negative ``top_n``, unknown dtype, ...)."""


class InvalidQueryError(RerankError, TypeError):
    """The query is not a string."""


class EmptyQueryError(RerankError, ValueError):
    """The query is empty or only whitespace."""


class InvalidDocumentError(RerankError, TypeError):
    """A document is not text (or a :class:`~rerankit.Candidate` holding text).

    ``index`` is the position of the offending document in the input.
    """

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


class CalibrationError(RerankError, ValueError):
    """A calibration produced a score that is not a finite number in [0, 1]."""


class UnknownBackendError(ConfigurationError):
    """A backend spec names no registered backend."""


class MissingDependencyError(RerankError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'rerankit[{extra}]'"
        )
        self.package = package
        self.extra = extra


class BackendError(RerankError, RuntimeError):
    """A backend failed to score (model error, remote failure, malformed answer)."""


class RerankWarning(UserWarning):
    """Base class of rerankit's warnings."""


class TruncationWarning(RerankWarning):
    """Some documents were longer than the model's window and were truncated."""
