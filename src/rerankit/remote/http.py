"""Failure classification shared by the HTTP-based clients (httpx, the Cohere and OpenAI SDKs)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from rerankit.remote.resilience import Failure, parse_retry_after

__all__ = ["body_message", "classify_httpx", "status_failure"]


def body_message(body: Any, limit: int = 200) -> str:
    """A short human message from an error body (``{"message": ...}``, ``{"error": ...}``...)."""
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, Mapping):
                value = value.get("message", value)
            if value:
                return str(value)[:limit]
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body).strip() if body is not None else ""
    return text[:limit]


def status_failure(status: int, headers: Mapping[str, str] | None, body: Any) -> Failure:
    """A non-2xx answer as a :class:`Failure` (retryable for 429 and 5xx)."""
    message = body_message(body)
    detail = f"HTTP {status}" + (f": {message}" if message else "")
    return Failure("status", detail, status_code=status, retry_after=parse_retry_after(headers))


def classify_httpx(exc: BaseException) -> Failure | None:
    """Transport errors of ``httpx`` and ``httpx2`` (the ``openai`` SDK's): timeouts and
    connection failures (both retried), and status errors."""
    for name in ("httpx", "httpx2"):
        hx: Any = sys.modules.get(name)
        if hx is None:
            continue
        if isinstance(exc, hx.TimeoutException):
            return Failure("timeout", f"the request timed out ({type(exc).__name__})")
        if isinstance(exc, hx.TransportError):
            return Failure("connection", f"connection error ({type(exc).__name__}: {exc})")
        if isinstance(exc, hx.HTTPStatusError):
            response = exc.response
            text = response.content.decode("utf-8", "replace")
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            return status_failure(response.status_code, dict(response.headers), body)
    return None
