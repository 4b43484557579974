"""Running the app: :func:`run` (what ``rerankit serve`` does, in the foreground) and
:class:`BackgroundServer` (a server on its own thread, for tests, benchmarks and notebooks).

Both run uvicorn. On SIGTERM / SIGINT (or :meth:`BackgroundServer.stop`) uvicorn stops
accepting connections and lets the requests in flight finish, for at most
``shutdown_timeout`` seconds, before it exits.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from typing import Any

from rerankit._deps import require
from rerankit.errors import ConfigurationError

__all__ = ["BackgroundServer", "run"]

log = logging.getLogger("rerankit.serve")


def _config(app: Any, *, shutdown_timeout: float, log_level: str = "warning") -> Any:
    uvicorn = require("uvicorn", extra="serve", feature="rerankit serve")
    if (
        isinstance(shutdown_timeout, bool)
        or not isinstance(shutdown_timeout, int | float)
        or shutdown_timeout < 0
    ):
        raise ConfigurationError(f"shutdown_timeout must be >= 0 seconds, got {shutdown_timeout!r}")
    return uvicorn.Config(
        app,
        access_log=False,  # rerankit.serve.access logs each request, without its body
        log_level=log_level,
        log_config=None,
        timeout_graceful_shutdown=shutdown_timeout or None,
        lifespan="off",
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port "
            "(or --host)"
        ) from None
    sock.set_inheritable(True)
    return sock


def run(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    shutdown_timeout: float = 30.0,
    on_ready: Any = None,
) -> None:
    """Serve ``app`` on ``host:port`` until SIGTERM / SIGINT, then finish the requests in
    flight (at most ``shutdown_timeout`` seconds). ``on_ready(url)`` is called once
    listening."""
    uvicorn = require("uvicorn", extra="serve", feature="rerankit serve")
    server = uvicorn.Server(_config(app, shutdown_timeout=shutdown_timeout))
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}"

    async def announce() -> None:
        if on_ready is not None:
            on_ready(url)

    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets=sockets)
        await announce()

    server.startup = startup
    # uvicorn re-raises the SIGTERM it caught once it has shut down gracefully; a shutdown
    # asked for is a success, so that signal then ends run() instead of the process.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


class BackgroundServer:
    """``app`` served by uvicorn on a daemon thread, on 127.0.0.1 and a free port.

    Example:
        >>> from rerankit import EmbeddingReranker
        >>> from rerankit.serve import BackgroundServer, RerankService, create_app
        >>> app = create_app(RerankService(EmbeddingReranker()))
        >>> with BackgroundServer(app) as server:  # doctest: +SKIP
        ...     print(server.url)
        http://127.0.0.1:...
    """

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, shutdown_timeout: float = 10.0
    ) -> None:
        uvicorn = require("uvicorn", extra="serve", feature="rerankit serve")
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._server = uvicorn.Server(_config(app, shutdown_timeout=shutdown_timeout))
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"rerankit-serve:{self.port}",
            daemon=True,
        )
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                raise RuntimeError("the rerank server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, finish the requests in flight, then return."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
