"""Micro-batching: many small concurrent rerank requests share model batches.

A :class:`MicroBatcher` owns one worker thread. Callers (coroutines or threads) submit
``(query, texts)`` requests; the worker gathers the requests that arrive within
``max_wait_ms`` of the first one (or until ``max_pairs`` documents are pending), scores them
together with one ``score_many`` call, and resolves each caller's future with its own result.
While the worker runs the model, new requests queue up and form the next group, so under load
groups fill without waiting.

``CrossEncoderReranker(micro_batching=True)`` uses one: its ``score_many`` pools the (query,
passage) pairs of every request into shared, length-sorted forward passes. Scores equal those of
unbatched calls up to floating-point noise from different padding.

Example:
    >>> import asyncio
    >>> from rerankit.batching import MicroBatcher
    >>> def score_many(requests):  # one result per (query, texts) request
    ...     return [[len(t) for t in texts] for query, texts in requests]
    >>> batcher = MicroBatcher(score_many=score_many, max_wait_ms=5)
    >>> async def main():
    ...     return await asyncio.gather(*(batcher.ascore("q", ["a", "bb"]) for _ in range(8)))
    >>> asyncio.run(main())[0], batcher.requests, batcher.batches <= 8
    ([1, 2], 8, True)
    >>> batcher.close()
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rerankit.errors import ConfigurationError, RerankError

__all__ = ["BatcherClosedError", "MicroBatcher", "Request"]

R = TypeVar("R")

Request = tuple[str, Sequence[str]]
"""One caller's ``(query, texts)``."""


class BatcherClosedError(RerankError, RuntimeError):
    """A request was submitted to (or pending in) a :class:`MicroBatcher` that was closed."""


@dataclass
class _Pending(Generic[R]):
    request: Request
    future: Future[R] = field(default_factory=Future)


_STOP = object()


class MicroBatcher(Generic[R]):
    """Gathers concurrent ``(query, texts)`` requests and scores them in shared calls.

    Args:
        score_many: scores a list of requests in one go and returns one result per request, in
            order. It runs on the batcher's worker thread. If it raises for a group of several
            requests, each request is retried alone so that one bad request fails only itself.
        max_wait_ms: how long the first request of a group waits for company (default 2 ms).
            ``0`` groups only what is already queued.
        max_pairs: stop gathering once this many documents are pending (default 256).
        name: the worker thread's name.

    The worker thread starts on the first request and is a daemon; :meth:`close` stops it.
    Sync callers use :meth:`score` (blocking), async callers :meth:`ascore`; both may be mixed,
    from any threads and event loops.
    """

    def __init__(
        self,
        *,
        score_many: Callable[[Sequence[Request]], Sequence[R]],
        max_wait_ms: float = 2.0,
        max_pairs: int = 256,
        name: str = "rerankit-micro-batcher",
    ) -> None:
        if not callable(score_many):
            raise ConfigurationError("score_many must be callable")
        if (
            isinstance(max_wait_ms, bool)
            or not isinstance(max_wait_ms, int | float)
            or not 0 <= max_wait_ms <= 10_000
        ):
            raise ConfigurationError(
                f"max_wait_ms must be a number in [0, 10000], got {max_wait_ms!r}"
            )
        if isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 1:
            raise ConfigurationError(f"max_pairs must be a positive int, got {max_pairs!r}")
        self._score_many = score_many
        self.max_wait_ms = float(max_wait_ms)
        self.max_pairs = max_pairs
        self.name = name
        self.requests = 0
        """Requests scored so far."""
        self.batches = 0
        """``score_many`` calls made so far (each served one or more requests)."""
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        self._listeners: list[Callable[[int, int], None]] = []

    def __repr__(self) -> str:
        return (
            f"MicroBatcher(max_wait_ms={self.max_wait_ms}, max_pairs={self.max_pairs}, "
            f"requests={self.requests}, batches={self.batches})"
        )

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, query: str, texts: Sequence[str]) -> Future[R]:
        """Queue one request; the future resolves to its result (or its exception)."""
        pending: _Pending[R] = _Pending((query, list(texts)))
        with self._lock:
            if self._closed:
                raise BatcherClosedError("the micro-batcher is closed")
            self._ensure_worker()
            self._queue.put(pending)
        return pending.future

    def score(self, query: str, texts: Sequence[str]) -> R:
        """Submit one request and wait for its result."""
        return self.submit(query, texts).result()

    async def ascore(self, query: str, texts: Sequence[str]) -> R:
        """Submit one request and await its result without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(query, texts))

    def add_listener(self, listener: Callable[[int, int], None]) -> Callable[[], None]:
        """Call ``listener(requests, documents)`` after each shared ``score_many`` call (on the
        worker thread; a listener that raises is ignored). Returns a function that removes it.
        A server uses it to report its batch sizes."""
        if not callable(listener):
            raise ConfigurationError("listener must be callable")
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def close(self) -> None:
        """Stop the worker after the requests already queued; later submits raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(_STOP)
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> MicroBatcher[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker ----------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's thread does not exist here
            self._pid = os.getpid()
            self._thread = None
            self._queue = queue.SimpleQueue()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _gather(self, first: _Pending[R]) -> tuple[list[_Pending[R]], bool]:
        group = [first]
        pairs = len(first.request[1])
        deadline = time.monotonic() + self.max_wait_ms / 1000.0
        stop = False
        while pairs < self.max_pairs:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            assert isinstance(item, _Pending)
            group.append(item)
            pairs += len(item.request[1])
        return group, stop

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            assert isinstance(item, _Pending)
            group, stop = self._gather(item)
            self._serve(group)
            if stop:
                break
        # Fail whatever is still queued after close().
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Pending) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(BatcherClosedError("the micro-batcher was closed"))

    def _serve(self, group: list[_Pending[R]]) -> None:
        live = [p for p in group if p.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = list(self._score_many([p.request for p in live]))
            if len(results) != len(live):
                raise RuntimeError(
                    f"score_many returned {len(results)} results for {len(live)} requests"
                )
        except BaseException as exc:
            if len(live) == 1:
                live[0].future.set_exception(exc)
                self.batches += 1
                return
            for pending in live:  # retry alone: one bad request must not fail the others
                self._serve_one(pending)
            return
        self.batches += 1
        self.requests += len(live)
        self._notify(len(live), sum(len(p.request[1]) for p in live))
        for pending, result in zip(live, results, strict=True):
            pending.future.set_result(result)

    def _notify(self, requests: int, documents: int) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(requests, documents)
            except Exception:  # a report must never fail the requests it reports on
                continue

    def _serve_one(self, pending: _Pending[R]) -> None:
        self.batches += 1
        try:
            (result,) = self._score_many([pending.request])
        except BaseException as exc:
            pending.future.set_exception(exc)
            return
        self.requests += 1
        self._notify(1, len(pending.request[1]))
        pending.future.set_result(result)
