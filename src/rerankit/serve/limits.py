"""What one ``rerankit serve`` process takes: documents and bytes per request, requests in
flight. Everything over a limit is refused before any model work (413, or 429 with
``Retry-After``)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rerankit.errors import ConfigurationError

__all__ = ["Admission", "Limits", "Refused", "read_body"]


class Refused(Exception):
    """A request turned away: ``status`` (401, 413, 429...), a message, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        reason: str,
        field: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.field = field
        self.headers = dict(headers or {})


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class Limits:
    """Per-process limits of ``rerankit serve``.

    Example:
        >>> from rerankit.serve import Limits
        >>> Limits(max_documents=500).max_in_flight
        64
    """

    max_documents: int = 1000
    """Documents per request at most (413 above)."""
    max_request_bytes: int = 8 * 1024 * 1024
    """Bytes of one request body at most (413 above, checked before the body is read when it
    declares its length, and while it streams otherwise)."""
    max_in_flight: int = 64
    """Requests being answered at once at most (429 with ``Retry-After`` above)."""
    retry_after: float = 1.0
    """Seconds a refused client is told to wait (``Retry-After``, rounded up)."""

    def __post_init__(self) -> None:
        _positive("max_documents", self.max_documents)
        _positive("max_request_bytes", self.max_request_bytes)
        _positive("max_in_flight", self.max_in_flight)
        if (
            isinstance(self.retry_after, bool)
            or not isinstance(self.retry_after, int | float)
            or not math.isfinite(self.retry_after)
            or self.retry_after < 0
        ):
            raise ConfigurationError(f"retry_after must be >= 0 seconds, got {self.retry_after!r}")

    def check_documents(self, n: int) -> None:
        if n > self.max_documents:
            raise Refused(
                413,
                f"documents: {n} documents, more than this server takes per request "
                f"({self.max_documents}); send them in batches",
                reason="too_many_documents",
                field="documents",
            )


class Admission:
    """Counts the requests in flight of one event loop and refuses those over the limit."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.in_flight = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.in_flight >= self.limits.max_in_flight:
            raise Refused(
                429,
                f"the server is answering {self.in_flight} requests, its limit; retry later",
                reason="overloaded",
                headers={"Retry-After": str(math.ceil(self.limits.retry_after))},
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


def _too_large(limit: int) -> Refused:
    return Refused(
        413,
        f"the request body is larger than this server takes ({limit} bytes); send fewer or "
        "shorter documents per request",
        reason="too_large",
    )


async def read_body(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to be over ``limit`` bytes."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise Refused(400, "Content-Length is not a number", reason="invalid") from None
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)
