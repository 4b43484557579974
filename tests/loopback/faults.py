"""Faults for the loopback server, from HTTP statuses down to the bytes on the socket.

Each function returns a :data:`~tests.loopback.server.Fault` to :meth:`LoopbackServer.push`:
a canned :class:`Reply`, or a function of the request and the normal handler (to corrupt the
normal answer). The raw ones write through a :class:`~tests.loopback.server.Writer` and stop
when the client hangs up, which is what lets a test see that a client really closed its socket.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import time
from collections.abc import Callable
from typing import Any

from tests.loopback.server import Fault, Handler, Reply, Request, Writer

__all__ = [
    "endless_body",
    "hang",
    "gzip_undeclared",
    "huge_body",
    "mutate",
    "reset_mid_body",
    "retry_after_date",
    "short_body",
    "status",
    "trickled_body",
    "trickled_status_line",
]


def status(code: int, retry_after: str | None = None, body: Any = None) -> Reply:
    """An error status (JSON body), optionally with ``Retry-After``."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(code, body if body is not None else {"message": f"status {code}"}, headers=headers)


def retry_after_date(seconds: float) -> str:
    """A ``Retry-After`` value as an HTTP date ``seconds`` from now."""
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


def _head(status_code: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status_code} OK"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def hang() -> Reply:
    """No answer at all: the connection stays open until the client gives up."""
    return Reply(raw=lambda w: w.hang())


def trickled_status_line(interval: float = 0.2) -> Reply:
    """A status line and headers sent one byte every ``interval`` seconds, never finished: a
    per-read timeout restarts on every byte and never fires."""

    def write(w: Writer) -> None:
        w.drip(b"HTTP/1.1 200 OK\r\nX-Padding: ", interval)
        while True:
            w.drip(b"a", interval)

    return Reply(raw=write)


def _normal_body(request: Request, handler: Handler) -> bytes:
    body, _ = handler(request).encoded()
    return body


def trickled_body(interval: float = 0.2) -> Fault:
    """The normal answer, its headers at once and its body one byte every ``interval``."""

    def fault(request: Request, handler: Handler) -> Reply:
        body = _normal_body(request, handler)

        def write(w: Writer) -> None:
            headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
            w.send(_head(200, headers))
            w.drip(body, interval)

        return Reply(raw=write)

    return fault


def endless_body(chunk: int = 4096, interval: float = 0.01) -> Reply:
    """A chunked body that never ends (``[`` then whitespace, ~400 KiB/s by default)."""

    def write(w: Writer) -> None:
        w.send(_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        w.send(b"1\r\n[\r\n")
        piece = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
        while True:
            w.send(piece)
            w.pause(interval)

    return Reply(raw=write)


def reset_mid_body() -> Fault:
    """Headers and half the normal body, then a TCP reset."""

    def fault(request: Request, handler: Handler) -> Reply:
        body = _normal_body(request, handler)

        def write(w: Writer) -> None:
            headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
            w.send(_head(200, headers) + body[: len(body) // 2])
            w.pause(0.02)
            w.reset()

        return Reply(raw=write)

    return fault


def short_body() -> Fault:
    """Half the normal body, then a clean close: shorter than its ``Content-Length``."""

    def fault(request: Request, handler: Handler) -> Reply:
        body = _normal_body(request, handler)

        def write(w: Writer) -> None:
            headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
            w.send(_head(200, headers) + body[: len(body) // 2])

        return Reply(raw=write)

    return fault


def gzip_undeclared() -> Fault:
    """The normal answer gzip-compressed, without a ``Content-Encoding`` header."""

    def fault(request: Request, handler: Handler) -> Reply:
        return Reply(200, gzip.compress(_normal_body(request, handler)))

    return fault


def huge_body(megabytes: int = 40) -> Reply:
    """A valid but enormous JSON body (whitespace padding)."""
    return Reply(200, b"[" + b" " * (megabytes * 1024 * 1024) + b"]")


def mutate(change: Callable[[Any], Any]) -> Fault:
    """The normal JSON answer passed through ``change`` (which edits it or returns a new one),
    sent as JSON (``NaN``, ``Infinity`` and huge integers included)."""

    def fault(request: Request, handler: Handler) -> Reply:
        data = json.loads(_normal_body(request, handler))
        changed = change(data)
        out = data if changed is None else changed
        return Reply(200, json.dumps(out).encode())

    return fault
