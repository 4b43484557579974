"""What a failed request was: a :class:`Failure` record the retry loop decides on, and the
:class:`UpstreamError` that stands for a client exception in an error's ``__cause__``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Failure", "FailureKind", "UpstreamError"]

FailureKind = Literal["status", "connection", "timeout", "malformed", "error"]


class UpstreamError(Exception):
    """What a remote error keeps of the client exception behind it: the exception's type and
    its redacted message, without its traceback (whose locals hold the request)."""


@dataclass(frozen=True)
class Failure:
    """A failed request, classified.

    ``status`` failures are retried for 429 and 5xx, ``connection`` and ``timeout`` failures
    always (within the retry budget and deadline), ``malformed`` and ``error`` never.
    """

    kind: FailureKind
    detail: str
    status_code: int | None = None
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        if self.kind in ("connection", "timeout"):
            return True
        if self.kind == "status" and self.status_code is not None:
            return self.status_code == 429 or 500 <= self.status_code <= 599
        return False
