"""Typed errors of the remote (hosted) rerankers.

Every one is a :class:`~rerankit.BackendError` (so a :class:`~rerankit.RerankError`), names the
reranker that failed and says how many attempts were made. Messages never contain API keys.

=============================  ============================================================
error                          raised when
=============================  ============================================================
:class:`RemoteStatusError`     the server answered with an HTTP error status (after retries
                               for 429 and 5xx)
:class:`RateLimitedError`      ... that status was 429 (a :class:`RemoteStatusError`)
:class:`RemoteConnectionError` the connection failed (refused, reset, closed early)
:class:`RemoteTimeoutError`    a request took longer than ``timeout`` (a connection error)
:class:`DeadlineExceededError` the whole call ran past ``deadline`` (waiting included)
:class:`MalformedResponseError` the answer could not be parsed, or does not account for every
                               document exactly once (missing, duplicate, out-of-range indices)
:class:`FallbackExhaustedError` every reranker of a :class:`~rerankit.FallbackReranker` failed
                               and the retrieval-order last resort is switched off
=============================  ============================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from rerankit.errors import BackendError

__all__ = [
    "BadResponse",
    "DeadlineExceededError",
    "FallbackExhaustedError",
    "MalformedResponseError",
    "RateLimitedError",
    "RemoteConnectionError",
    "RemoteError",
    "RemoteStatusError",
    "RemoteTimeoutError",
]


class RemoteError(BackendError):
    """A remote reranker failed.

    Attributes:
        reranker: which reranker failed, e.g. ``"CohereReranker(model='rerank-v3.5')"``.
        attempts: how many requests were sent for the failing operation (retries included).
        status_code: the last HTTP status, when the server answered.
    """

    def __init__(
        self,
        message: str,
        *,
        reranker: str = "",
        attempts: int = 0,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reranker = reranker
        self.attempts = attempts
        self.status_code = status_code


class RemoteStatusError(RemoteError):
    """The server answered with an HTTP error status."""


class RateLimitedError(RemoteStatusError):
    """The server kept answering 429 (too many requests)."""


class RemoteConnectionError(RemoteError):
    """The connection to the server failed."""


class RemoteTimeoutError(RemoteConnectionError):
    """A request took longer than the per-request ``timeout``."""


class DeadlineExceededError(RemoteError):
    """The call ran past its ``deadline`` (requests, backoff and rate-limit waits included)."""


class MalformedResponseError(RemoteError):
    """The answer was not valid JSON, or does not account for each document exactly once."""


class BadResponse(Exception):
    """Raised inside a request when the server's answer is unusable; the retry loop turns it
    into a :class:`MalformedResponseError` (never retried). Its message names the field."""


class FallbackExhaustedError(BackendError):
    """Every reranker of a fallback chain failed; ``errors`` holds each failure, in order."""

    def __init__(self, message: str, *, errors: Sequence[BaseException]) -> None:
        super().__init__(message)
        self.errors = tuple(errors)
