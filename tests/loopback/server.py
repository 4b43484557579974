"""A programmable HTTP server on 127.0.0.1 for tests and benchmarks, with fault injection.

The server runs in a daemon thread (``ThreadingHTTPServer``, HTTP/1.1 keep-alive) and answers
every request through a handler ``Request -> Reply``. Faults are queued with :meth:`push` and
consumed one per request, in arrival order, before the handler's normal answer is used again::

    with LoopbackServer(handler) as server:
        server.push(Reply(429, {"message": "slow down"}, headers={"Retry-After": "0"}))
        ...  # the first request gets the 429, the next ones the handler's answer
        assert server.count("/v2/rerank") == 2
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Fault", "Handler", "LoopbackServer", "Reply", "Request"]


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


@dataclass
class Reply:
    """What to answer: a status, a body (bytes/str sent as is, anything else as JSON), headers,
    and an optional delay before answering. ``drop=True`` closes the connection unanswered."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False

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
                reply = outer._answer(request)
                if reply.drop:
                    self.close_connection = True
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

    def _answer(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if fault is None:
                reply = self.handler(request)
            elif isinstance(fault, Reply):
                reply = fault
            else:
                reply = fault(request, self.handler)
            delay = self.latency + reply.delay
            if delay > 0:
                time.sleep(delay)
            return reply
        finally:
            with self._lock:
                self.in_flight -= 1


def replies(items: Iterable[Reply]) -> list[Fault]:
    """Helper: a list of canned replies as faults."""
    return list(items)
