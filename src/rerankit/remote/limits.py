"""Retry policy, deadlines, and client-side rate and concurrency limits of the remote calls."""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

from rerankit.errors import ConfigurationError

__all__ = [
    "ConcurrencyLimiter",
    "Deadline",
    "RateLimiter",
    "RetryPolicy",
    "check_number",
    "parse_retry_after",
]


def check_number(name: str, value: object, *, minimum: float, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, got {value!r}")
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum:g}, got {value!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before retrying a failed request.

    Retry number ``k`` (1-based) waits ``min(max_delay, base_delay * multiplier ** (k - 1))``,
    reduced by a random fraction of up to ``jitter`` (so clients that failed together do not
    retry together), and never less than the server's ``Retry-After``. A ``Retry-After``
    longer than ``max_retry_after`` is not waited for: the request fails at once.

    Example:
        >>> from rerankit.remote import RetryPolicy
        >>> policy = RetryPolicy(max_retries=2, base_delay=0.1, jitter=0.0)
        >>> policy.max_attempts, policy.delay(1), policy.delay(2), policy.delay(1, retry_after=3)
        (3, 0.1, 0.2, 3.0)
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ConfigurationError(
                f"max_retries must be a non-negative int, got {self.max_retries!r}"
            )
        check_number("base_delay", self.base_delay, minimum=0.0)
        check_number("max_delay", self.max_delay, minimum=0.0)
        check_number("multiplier", self.multiplier, minimum=1.0)
        check_number("max_retry_after", self.max_retry_after, minimum=0.0)
        check_number("jitter", self.jitter, minimum=0.0)
        if self.jitter > 1.0:
            raise ConfigurationError(f"jitter must be in [0, 1], got {self.jitter!r}")

    @property
    def max_attempts(self) -> int:
        """Requests sent at most per operation: the first one plus ``max_retries``."""
        return self.max_retries + 1

    def delay(self, retry: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        exponent = min(max(retry - 1, 0), 64)
        backoff = min(self.max_delay, self.base_delay * self.multiplier**exponent)
        if self.jitter:
            backoff *= 1.0 - self.jitter * random.random()  # jitter, not cryptography
        if retry_after is not None and retry_after > backoff:
            return float(retry_after)
        return float(backoff)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asks to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or
    an HTTP date); ``None`` when absent or unreadable.

    Example:
        >>> from rerankit.remote.limits import parse_retry_after
        >>> parse_retry_after({"Retry-After": "2"}), parse_retry_after({"retry-after-ms": "150"})
        (2.0, 0.15)
    """
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    value = lowered.get("retry-after-ms")
    if value is not None:
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class Deadline:
    """The time budget of one call: ``seconds`` from now, or unlimited when ``None``."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self._end = math.inf if seconds is None else self.started + seconds

    def remaining(self) -> float:
        """Seconds left (``inf`` when unlimited, ``<= 0`` when expired)."""
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def clamp(self, timeout: float) -> float:
        """``timeout`` shortened to what is left of the deadline."""
        return min(timeout, self.remaining())


class RateLimiter:
    """Client-side rate limit: at most ``requests_per_minute`` requests, evenly spaced.

    Thread-safe and shared by the sync and async paths of a reranker. A request that would have
    to wait past the caller's deadline is refused instead of delayed.

    Example:
        >>> from rerankit.remote.limits import RateLimiter
        >>> limiter = RateLimiter(requests_per_minute=600)  # one request every 0.1 s
        >>> limiter.reserve(max_wait=1.0), 0.05 < limiter.reserve(max_wait=1.0) <= 0.1
        (0.0, True)
        >>> limiter.reserve(max_wait=0.01) is None  # the next slot is too far away
        True
    """

    def __init__(self, requests_per_minute: float) -> None:
        check_number("requests_per_minute", requests_per_minute, minimum=0.0)
        if requests_per_minute <= 0:
            raise ConfigurationError(
                f"requests_per_minute must be > 0, got {requests_per_minute!r}"
            )
        self.requests_per_minute = float(requests_per_minute)
        self.interval = 60.0 / self.requests_per_minute
        self._next = -math.inf
        self._lock = threading.Lock()

    def reserve(self, max_wait: float) -> float | None:
        """Book the next slot; returns seconds to wait for it, or ``None`` (nothing booked) if
        that is more than ``max_wait``."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            wait = start - now
            if wait > max_wait:
                return None
            self._next = start + self.interval
            return wait


class ConcurrencyLimiter:
    """Bounds requests in flight: at most ``limit`` from threads, and at most ``limit`` per
    event loop from coroutines."""

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"max_concurrency must be a positive int, got {limit!r}")
        self.limit = limit
        self._threads = threading.BoundedSemaphore(limit)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def acquire(self, timeout: float) -> bool:
        if timeout <= 0:
            return self._threads.acquire(blocking=False)
        return self._threads.acquire(timeout=None if math.isinf(timeout) else timeout)

    def release(self) -> None:
        self._threads.release()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            for closed in [other for other in self._loops if other.is_closed()]:
                del self._loops[closed]  # a semaphore bound to it would keep it alive
            semaphore = self._loops.get(loop)
            if semaphore is None:
                semaphore = self._loops[loop] = asyncio.Semaphore(self.limit)
            return semaphore

    async def aacquire(self, timeout: float) -> bool:
        semaphore = self._semaphore()
        if timeout <= 0:
            if semaphore.locked():
                return False
            await semaphore.acquire()
            return True
        try:
            await asyncio.wait_for(
                semaphore.acquire(), timeout=None if math.isinf(timeout) else timeout
            )
        except asyncio.TimeoutError:
            return False
        return True

    def arelease(self) -> None:
        self._semaphore().release()
