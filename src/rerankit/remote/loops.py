"""One async client per event loop, closed by that loop before it closes.

An ``httpx.AsyncClient`` (and so an ``AsyncOpenAI`` or a Cohere ``AsyncClientV2``) belongs to
the loop that opened its connections: used or closed from a later loop it fails with
``RuntimeError: Event loop is closed``, and the SDKs' own clients schedule their ``aclose`` on
whatever loop is running when they are garbage-collected ("Task exception was never
retrieved"). :class:`PerLoop` makes one client per running loop and registers, with that loop,
an asynchronous generator whose ``finally`` closes it: ``asyncio.run`` (and
``asyncio.Runner``, which pytest-asyncio uses) close every live asynchronous generator with
``loop.shutdown_asyncgens()`` before closing the loop, so the client is closed in its own
loop, on time. A loop that is closed without that step leaves its client to be dropped (its
sockets die with the loop); :meth:`PerLoop.aclose` closes the running loop's client at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

log = logging.getLogger("rerankit.remote")

C = TypeVar("C")


class _Entry(Generic[C]):
    __slots__ = ("client", "guard", "skip_close")

    def __init__(self, client: C) -> None:
        self.client = client
        self.skip_close = False
        self.guard: AsyncGenerator[None, None] | None = None


class PerLoop(Generic[C]):
    """The client of the running event loop, made by ``make`` on first use and closed with
    ``aclose(client)`` when the loop shuts down (or on :meth:`aclose`).

    Example:
        >>> import asyncio
        >>> from rerankit.remote.loops import PerLoop
        >>> closed = []
        >>> async def aclose(client): closed.append(client)
        >>> clients = PerLoop(object, aclose)
        >>> async def use(): return clients.get() is clients.get()
        >>> asyncio.run(use()), asyncio.run(use()), len(closed)  # one per loop, closed with it
        (True, True, 2)
    """

    def __init__(self, make: Callable[[], C], aclose: Callable[[C], Awaitable[None]]) -> None:
        self._make = make
        self._aclose = aclose
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry[C]] = (
            weakref.WeakKeyDictionary()
        )
        # Each guard holds its loop (through the loop's finaliser hook), so entries leave only
        # here, in get(), or when this holder goes; then guards of closed loops are finished.
        weakref.finalize(self, _drop_closed, self._entries)

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for loop in self._entries if not loop.is_closed())

    def get(self) -> C:
        """The running loop's client (call from a coroutine)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            stale = [(lp, e) for lp, e in self._entries.items() if lp.is_closed()]
            for closed, _ in stale:
                del self._entries[closed]
            entry = self._entries.get(loop)
            if entry is None:
                entry = self._entries[loop] = _Entry(self._make())
                entry.guard = self._guard(entry)
                _start(entry.guard)
        for _, old in stale:
            _drop(old)
        return entry.client

    async def aclose(self) -> None:
        """Close the running loop's client now (a later :meth:`get` makes a new one)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.pop(loop, None)
        if entry is not None and entry.guard is not None:
            await entry.guard.aclose()

    async def _guard(self, entry: _Entry[C]) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if not entry.skip_close:
                try:
                    await self._aclose(entry.client)
                except Exception:  # closing is best effort
                    log.debug("closing an async client failed", exc_info=True)


def _start(guard: AsyncGenerator[None, None]) -> None:
    """Run ``guard`` to its ``yield``: the first step registers it with the running loop's
    asynchronous-generator hooks, so that the loop closes it at shutdown."""
    step = guard.asend(None)
    try:
        step.send(None)
    except StopIteration:
        return
    raise RuntimeError("the client guard must not await before it yields")


def _drop_closed(entries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry[C]]) -> None:
    """Finish the guards of closed loops (a guard of an open loop is closed by that loop)."""
    for loop, entry in list(entries.items()):
        if loop.is_closed():
            _drop(entry)


def _drop(entry: _Entry[C]) -> None:
    """Finish the guard of a loop that closed without shutting its generators down; its
    client cannot be closed any more (its connections belonged to that loop)."""
    entry.skip_close = True
    guard = entry.guard
    if guard is None:
        return
    step = guard.aclose()
    try:
        step.send(None)
    except StopIteration:
        pass
    except RuntimeError:  # already closed
        pass


class Clients(Generic[C]):
    """A sync client made on first use and one async client per event loop (:class:`PerLoop`),
    with their closing; what a remote reranker or a chat model holds.

    Example:
        >>> from rerankit.remote.loops import Clients
        >>> async def aclose(client): pass
        >>> clients = Clients(list, list, lambda client: None, aclose)
        >>> clients.made, clients.sync() is clients.sync(), clients.made
        (False, True, True)
    """

    def __init__(
        self,
        make: Callable[[], C],
        make_async: Callable[[], C],
        close: Callable[[C], None],
        aclose: Callable[[C], Awaitable[None]],
    ) -> None:
        self._make = make
        self._close = close
        self._lock = threading.Lock()
        self._sync: C | None = None
        self.per_loop: PerLoop[C] = PerLoop(make_async, aclose)

    @property
    def made(self) -> bool:
        """Whether the sync client exists."""
        return self._sync is not None

    def sync(self) -> C:
        with self._lock:
            if self._sync is None:
                self._sync = self._make()
            return self._sync

    def current(self) -> C:
        """The running event loop's client."""
        return self.per_loop.get()

    def close(self) -> None:
        """Close the sync client (a new one is made on next use)."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            try:
                self._close(client)
            except Exception:  # closing is best effort
                log.debug("closing a client failed", exc_info=True)

    async def aclose(self) -> None:
        """Close the running loop's client and the sync client."""
        await self.per_loop.aclose()
        self.close()
