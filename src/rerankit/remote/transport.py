"""A total time budget per request, enforced under the HTTP clients, and calls that leave no
request running behind them.

``httpx`` (and ``httpx2``, the ``openai`` SDK's fork) has no total timeout: its read timeout
restarts on every byte, so a server that trickles its status line or its body, or never ends
its body, keeps a sync request going for as long as it likes. The Cohere and OpenAI SDKs take
an ``httpx`` client that we build, so every remote backend gets its clients here
(:func:`sync_client`, :func:`async_client`), over a transport that enforces the budget set by
the retry loop (:func:`request_budget`):

* **sync**: each request leases its own inner ``HTTPTransport`` (one connection, kept alive
  and reused by later requests). A :class:`Watchdog` thread closes that transport when the
  budget runs out, which makes the blocked read fail at once (trickled bytes) or at its
  read timeout, itself never longer than the budget; the body stream also checks the clock
  after every chunk. An aborted request raises ``ReadTimeout``, which the retry loop
  classifies as a timeout.
* **async**: the retry loop cancels the request at its budget (``asyncio.wait_for``); the body
  stream checks the clock per chunk as well.
* both: a body larger than :data:`MAX_RESPONSE_BYTES` is refused as malformed.

A :class:`CallScope` holds the requests in flight of one multi-request call, so that a call
that ends early (a request failed for good, the deadline passed) aborts the others before it
returns: no worker thread or socket keeps working after it.

The sync and async transports are built per ``httpx`` flavour by one factory (``httpx`` for
Cohere and the HTTP backend, ``httpx2`` for the ``openai`` SDK) and share their budget rules,
so they live in one module (past 400 lines for that reason).

Environment proxies (``HTTPS_PROXY``, ``NO_PROXY``...) are resolved for the endpoint with the
standard library and given to the inner transports, since ``httpx`` would otherwise route a
proxied URL around a custom transport.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import heapq
import itertools
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from rerankit.remote.errors import BadResponse
from rerankit.remote.parsing import json_checker

__all__ = [
    "MAX_RESPONSE_BYTES",
    "CallScope",
    "Watchdog",
    "async_client",
    "call_scope",
    "json_client",
    "request_budget",
    "sync_client",
]

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Bytes of one answer at most; a rerank or chat answer is a few kilobytes."""

BUDGET_EXHAUSTED = "the request ran out of its time budget"

_ABORT_REPEAT = 0.05
"""Seconds between repeated aborts of a request that has not stopped yet (one that was still
connecting when its transport was first closed)."""

_ABORT_TRIES = 20
"""Aborts of one request at most (a second's worth): a response that its reader neither reads
nor closes is not waited for forever."""

_request_end: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "rerankit_request_end", default=None
)
_scope: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar(
    "rerankit_call_scope", default=None
)


@contextmanager
def request_budget(seconds: float) -> Iterator[float]:
    """Requests made in this block (this thread or task) end within ``seconds``; yields the
    end time (``time.monotonic()``). Nested budgets keep the earlier end."""
    end = time.monotonic() + seconds
    outer = _request_end.get()
    if outer is not None:
        end = min(end, outer)
    token = _request_end.set(end)
    try:
        yield end
    finally:
        _request_end.reset(token)


class CallScope:
    """The requests in flight of one call; :meth:`end` aborts them (and any started later).

    Example:
        >>> from rerankit.remote.transport import CallScope
        >>> scope, aborted = CallScope(), []
        >>> key = scope.enter(lambda: aborted.append("first"))
        >>> scope.end()
        >>> _ = scope.enter(lambda: aborted.append("late"))  # after the end: aborted at once
        >>> aborted
        ['first', 'late']
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aborts: dict[int, Callable[[], None]] = {}
        self._keys = itertools.count()
        self._ended = False

    def enter(self, abort: Callable[[], None]) -> int | None:
        with self._lock:
            if not self._ended:
                key = next(self._keys)
                self._aborts[key] = abort
                return key
        abort()
        return None

    def leave(self, key: int | None) -> None:
        if key is not None:
            with self._lock:
                self._aborts.pop(key, None)

    def end(self) -> None:
        with self._lock:
            self._ended = True
            aborts = list(self._aborts.values())
            self._aborts.clear()
        for abort in aborts:
            abort()


@contextmanager
def call_scope(scope: CallScope) -> Iterator[CallScope]:
    """Make ``scope`` the call scope of the requests made in this block (this thread/task)."""
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


class _Alarm:
    __slots__ = ("action", "cancelled", "when")

    def __init__(self, when: float, action: Callable[[], None]) -> None:
        self.when = when
        self.action = action
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Watchdog:
    """Runs actions at given ``time.monotonic()`` times, on one daemon thread started on
    demand; the thread exits once it has had nothing to do for ``linger`` seconds.

    Example:
        >>> import threading, time
        >>> from rerankit.remote.transport import Watchdog
        >>> fired = threading.Event()
        >>> alarm = Watchdog().schedule(time.monotonic() + 0.01, fired.set)
        >>> fired.wait(2.0)
        True
    """

    def __init__(self, *, linger: float = 0.2, name: str = "rerankit-watchdog") -> None:
        self.linger = linger
        self.name = name
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, action: Callable[[], None]) -> _Alarm:
        alarm = _Alarm(when, action)
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return alarm

    def pending(self) -> int:
        """Alarms scheduled and not cancelled."""
        with self._cond:
            return sum(1 for _, _, alarm in self._heap if not alarm.cancelled)

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._next_due()
                while due is None:
                    if not self._heap:
                        self._cond.wait(self.linger)
                        if not self._heap:
                            self._thread = None
                            return
                    else:
                        self._cond.wait(max(0.0, self._heap[0][0] - time.monotonic()))
                    due = self._next_due()
            with contextlib.suppress(Exception):  # an abort that fails has nothing to abort
                due.action()

    def _next_due(self) -> _Alarm | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        if self._heap and self._heap[0][0] <= time.monotonic():
            return heapq.heappop(self._heap)[2]
        return None


WATCHDOG = Watchdog()


def env_proxy(url: str) -> str | None:
    """The proxy the environment sets for ``url`` (``None`` when none or bypassed)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host and urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


@functools.cache
def _classes(hx: ModuleType) -> tuple[type[Any], type[Any]]:
    """The transport classes for ``hx`` (``httpx`` or ``httpx2``, whose APIs are the same)."""

    def too_large() -> BadResponse:
        return BadResponse(f"the answer is larger than {MAX_RESPONSE_BYTES // 2**20} MiB")

    class Lease:
        """One request in flight on its own inner transport."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.aborted = False
            self.done = False
            self.lock = threading.Lock()
            self.repeat: _Alarm | None = None

        def abort(self, tries: int = _ABORT_TRIES) -> None:
            with self.lock:
                if self.done:
                    return
                self.aborted = True
            self.inner.close()
            if tries <= 1:
                return
            repeat = WATCHDOG.schedule(
                time.monotonic() + _ABORT_REPEAT, functools.partial(self.abort, tries - 1)
            )
            with self.lock:
                if self.done:
                    repeat.cancel()
                else:  # two aborts may race (watchdog and call scope): keep one repeat
                    if self.repeat is not None:
                        self.repeat.cancel()
                    self.repeat = repeat

    class BodyStream(hx.SyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(
            self, inner: Any, lease: Lease, end: float | None, request: Any, release: Any
        ) -> None:
            self._inner, self._lease, self._end = inner, lease, end
            self._request, self._release = request, release

        def __iter__(self) -> Iterator[bytes]:
            read = 0
            try:
                for chunk in self._inner:
                    read += len(chunk)
                    if read > MAX_RESPONSE_BYTES:
                        raise too_large()
                    if self._end is not None and time.monotonic() > self._end:
                        raise hx.ReadTimeout(BUDGET_EXHAUSTED, request=self._request)
                    yield chunk
            except hx.TransportError as exc:
                self.close()  # the connection is done for: free the lease now
                if self._lease.aborted and not isinstance(exc, hx.TimeoutException):
                    raise hx.ReadTimeout(BUDGET_EXHAUSTED, request=self._request) from None
                raise
            except BadResponse:
                self.close()
                raise

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._release()

    class BudgetTransport(hx.BaseTransport):  # type: ignore[misc, name-defined]
        """Sync transport: one leased inner transport per request, aborted at its budget."""

        def __init__(self, make_inner: Callable[[], Any], max_idle: int) -> None:
            self._make = make_inner
            self._max_idle = max_idle
            self._idle: list[Any] = []
            self._live: set[Lease] = set()
            self._lock = threading.Lock()
            self._closed = False

        def _checkout(self) -> Lease:
            with self._lock:
                inner = self._idle.pop() if self._idle else None
            lease = Lease(inner if inner is not None else self._make())
            with self._lock:
                self._live.add(lease)
            return lease

        def _checkin(self, lease: Lease) -> None:
            with lease.lock:
                if lease.done:
                    return
                lease.done = True
                if lease.repeat is not None:
                    lease.repeat.cancel()
            with self._lock:
                self._live.discard(lease)
                keep = not (lease.aborted or self._closed) and len(self._idle) < self._max_idle
                if keep:
                    self._idle.append(lease.inner)
            if not keep:
                lease.inner.close()

        def handle_request(self, request: Any) -> Any:
            end = _request_end.get()
            if end is not None and time.monotonic() >= end:
                raise hx.ReadTimeout(BUDGET_EXHAUSTED, request=request)
            lease = self._checkout()
            scope = _scope.get()
            alarm = WATCHDOG.schedule(end, lease.abort) if end is not None else None
            key = scope.enter(lease.abort) if scope is not None else None

            def release() -> None:
                if alarm is not None:
                    alarm.cancel()
                if scope is not None:
                    scope.leave(key)
                self._checkin(lease)

            try:
                response = lease.inner.handle_request(request)
            except hx.TransportError as exc:
                release()
                if lease.aborted and not isinstance(exc, hx.TimeoutException):
                    raise hx.ReadTimeout(BUDGET_EXHAUSTED, request=request) from None
                raise
            except BaseException:
                release()
                raise
            if lease.aborted:
                response.close()
                release()
                raise hx.ReadTimeout(BUDGET_EXHAUSTED, request=request)
            return hx.Response(
                status_code=response.status_code,
                headers=response.headers,
                stream=BodyStream(response.stream, lease, end, request, release),
                extensions=response.extensions,
            )

        def close(self) -> None:
            with self._lock:
                self._closed = True
                idle, self._idle = self._idle, []
                live = list(self._live)
            for inner in idle:
                inner.close()
            for lease in live:
                lease.abort()

    return BudgetTransport, _async_classes(hx, too_large)


def _async_classes(hx: ModuleType, too_large: Callable[[], BadResponse]) -> type[Any]:
    class AsyncBodyStream(hx.AsyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any, end: float | None, request: Any) -> None:
            self._inner, self._end, self._request = inner, end, request

        async def __aiter__(self) -> AsyncIterator[bytes]:
            read = 0
            async for chunk in self._inner:
                read += len(chunk)
                if read > MAX_RESPONSE_BYTES:
                    raise too_large()
                if self._end is not None and time.monotonic() > self._end:
                    raise hx.ReadTimeout(BUDGET_EXHAUSTED, request=self._request)
                yield chunk

        async def aclose(self) -> None:
            await self._inner.aclose()

    class AsyncBudgetTransport(hx.AsyncBaseTransport):  # type: ignore[misc, name-defined]
        """Async transport: the body stream checks the budget and the size per chunk (the
        retry loop cancels a request at its budget)."""

        def __init__(self, inner: Any) -> None:
            self._inner = inner

        async def handle_async_request(self, request: Any) -> Any:
            end = _request_end.get()
            response = await self._inner.handle_async_request(request)
            return hx.Response(
                status_code=response.status_code,
                headers=response.headers,
                stream=AsyncBodyStream(response.stream, end, request),
                extensions=response.extensions,
            )

        async def aclose(self) -> None:
            await self._inner.aclose()

    return AsyncBudgetTransport


def sync_client(
    hx: ModuleType,
    *,
    url: str,
    timeout: float,
    event_hooks: Mapping[str, list[Any]] | None = None,
    follow_redirects: bool = False,
    max_idle: int = 8,
) -> Any:
    """An ``hx.Client`` whose requests keep to the budget of :func:`request_budget`."""
    transport_cls, _ = _classes(hx)
    proxy = env_proxy(url)
    limits = hx.Limits(max_connections=1, max_keepalive_connections=1)
    ssl_context = hx.create_ssl_context(trust_env=True)  # made once: it costs ~40 ms

    def make_inner() -> Any:
        return hx.HTTPTransport(verify=ssl_context, limits=limits, proxy=proxy)

    return hx.Client(
        transport=transport_cls(make_inner, max_idle),
        timeout=timeout,
        trust_env=False,  # proxies are resolved above, for the inner transports
        event_hooks=dict(event_hooks or {}),
        follow_redirects=follow_redirects,
    )


def async_client(
    hx: ModuleType,
    *,
    url: str,
    timeout: float,
    event_hooks: Mapping[str, list[Any]] | None = None,
    follow_redirects: bool = False,
) -> Any:
    """An ``hx.AsyncClient`` whose bodies keep to the budget and the size limit."""
    _, transport_cls = _classes(hx)
    inner = hx.AsyncHTTPTransport(proxy=env_proxy(url))
    return hx.AsyncClient(
        transport=transport_cls(inner),
        timeout=timeout,
        trust_env=False,
        event_hooks=dict(event_hooks or {}),
        follow_redirects=follow_redirects,
    )


def json_client(
    hx: ModuleType, *, url: str, timeout: float, asynchronous: bool, follow_redirects: bool = False
) -> Any:
    """The ``httpx`` client an SDK is given: :func:`sync_client` or :func:`async_client`, with
    every answer checked to be a JSON object before the SDK reads it."""
    make = async_client if asynchronous else sync_client
    return make(
        hx,
        url=url,
        timeout=timeout,
        event_hooks={"response": [json_checker(dict, asynchronous=asynchronous)]},
        follow_redirects=follow_redirects,
    )
