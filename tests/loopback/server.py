"""A programmable HTTP server on 127.0.0.1 for tests and benchmarks, with fault injection.

The server runs in a daemon thread (``ThreadingHTTPServer``, HTTP/1.1 keep-alive) and answers
every request through a handler ``Request -> Reply``. A :class:`Reply` may also write raw bytes
to the socket (``raw=``, see :mod:`tests.loopback.faults`: trickled status lines and bodies,
endless bodies, resets). :attr:`LoopbackServer.active` counts the requests still being answered
(raw writers included), so a test can check that a client hung up instead of leaving the server
writing. Faults are queued with :meth:`push` and consumed one per request, in arrival order,
before the handler's normal answer is used again::

    with LoopbackServer(handler) as server:
        server.push(Reply(429, {"message": "slow down"}, headers={"Retry-After": "0"}))
        ...  # the first request gets the 429, the next ones the handler's answer
        assert server.count("/v2/rerank") == 2
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Fault", "Handler", "LoopbackServer", "Reply", "Request", "Writer"]


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    query: str = ""

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Writer:
    """Raw access to one connection, for faults below HTTP: bytes, pauses, resets.

    Pauses end early (with ``ConnectionAbortedError``) when the server stops; writes to a
    client that hung up raise ``OSError``, which ends the fault.
    """

    def __init__(self, connection: socket.socket, stopping: threading.Event) -> None:
        self.connection = connection
        self._stopping = stopping

    def send(self, data: bytes) -> None:
        self.connection.sendall(data)

    def pause(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise ConnectionAbortedError("the server is stopping")

    def drip(self, data: bytes, interval: float) -> None:
        """Send ``data`` one byte every ``interval`` seconds."""
        for i in range(len(data)):
            self.send(data[i : i + 1])
            self.pause(interval)

    def hang(self, limit: float = 30.0) -> None:
        """Answer nothing until the client hangs up (or ``limit`` seconds pass)."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                if not self.connection.recv(1, socket.MSG_PEEK):
                    return  # EOF: the client closed its end
                self.pause(0.05)  # the client sent more: keep waiting
            else:
                self.pause(0.0)

    def reset(self) -> None:
        """Close with a TCP reset (RST) instead of a clean FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


@dataclass
class Reply:
    """What to answer: a status, a body (bytes/str sent as is, anything else as JSON), headers,
    and an optional delay before answering. ``drop=True`` closes the connection unanswered;
    ``raw`` writes the whole answer itself through a :class:`Writer` (the connection is closed
    afterwards)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    raw: Callable[[Writer], None] | None = None

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "application/json"
        return json.dumps(self.body).encode(), "application/json"


Handler = Callable[[Request], Reply]
Fault = Reply | Callable[[Request, Handler], Reply]
"""A canned :class:`Reply`, or a function of the request and the normal handler (to delay,
truncate or corrupt the normal answer)."""


class LoopbackServer:
    """An HTTP server on ``127.0.0.1`` (random free port) that records every request."""

    def __init__(self, handler: Handler, *, latency: float = 0.0) -> None:
        self.handler = handler
        self.latency = latency
        self.requests: list[Request] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._stopping = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                request = Request(
                    method=self.command,
                    path=path,
                    query=query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
                with outer._answering():
                    reply = outer._answer(request)
                    if reply.drop:
                        self.close_connection = True
                        return
                    if reply.raw is not None:
                        self.close_connection = True
                        with contextlib.suppress(OSError):  # the client hung up, or we stop
                            reply.raw(Writer(self.connection, outer._stopping))
                        return
                    payload, ctype = reply.encoded()
                    self.send_response(reply.status)
                    headers = {"Content-Type": ctype, **reply.headers}
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            request_queue_size = 128

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out and hang up are expected here

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- faults and records -------------------------------------------------------------------

    def push(self, *faults: Fault) -> None:
        """Queue faults; each request consumes one, in arrival order."""
        with self._lock:
            self._faults.extend(faults)

    def push_many(self, fault: Fault, times: int) -> None:
        self.push(*([fault] * times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.max_in_flight = 0

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def bodies(self, path: str | None = None) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.requests if path is None or r.path == path]

    @property
    def active(self) -> int:
        """Requests being answered now (raw writers included)."""
        with self._lock:
            return self.in_flight

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for :attr:`active` to reach 0."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.active == 0:
                return True
            time.sleep(0.02)
        return self.active == 0

    def _answering(self) -> Any:
        outer = self

        class _Tracking:
            def __enter__(self) -> None:
                with outer._lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)

            def __exit__(self, *exc: object) -> None:
                with outer._lock:
                    outer.in_flight -= 1

        return _Tracking()

    def _answer(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
        if fault is None:
            reply = self.handler(request)
        elif isinstance(fault, Reply):
            reply = fault
        else:
            reply = fault(request, self.handler)
        delay = self.latency + reply.delay
        if delay > 0:
            self._stopping.wait(delay)
        return reply


def replies(items: Iterable[Reply]) -> list[Fault]:
    """Helper: a list of canned replies as faults."""
    return list(items)
