"""Resilience shared by every remote reranker: timeouts, deadlines, retries, rate and
concurrency limits.

One :class:`Resilience` object per reranker runs every request of every call:

* each request gets ``timeout`` seconds, clamped to what is left of the call's ``deadline``;
* failed requests are retried on **429, 5xx and connection errors (timeouts included) only**,
  with exponential backoff and jitter (:class:`RetryPolicy`), waiting at least as long as the
  server's ``Retry-After`` / ``retry-after-ms`` header asks;
* a client-side :class:`RateLimiter` spaces requests (``requests_per_minute``) and a
  :class:`ConcurrencyLimiter` bounds how many are in flight;
* a wait that cannot finish before the deadline is not started: the call fails at once with
  :class:`~rerankit.remote.DeadlineExceededError`.

Anything else (4xx other than 429, malformed answers) fails on the first attempt, with a typed
:class:`~rerankit.remote.RemoteError` that names the reranker and the number of attempts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from rerankit.errors import ConfigurationError
from rerankit.remote.errors import (
    DeadlineExceededError,
    MalformedResponseError,
    RateLimitedError,
    RemoteConnectionError,
    RemoteError,
    RemoteStatusError,
    RemoteTimeoutError,
)
from rerankit.remote.usage import UsageMeter

__all__ = [
    "BadResponse",
    "ConcurrencyLimiter",
    "Deadline",
    "Failure",
    "RateLimiter",
    "Resilience",
    "RetryPolicy",
    "parse_retry_after",
]

log = logging.getLogger("rerankit.remote")

T = TypeVar("T")

FailureKind = Literal["status", "connection", "timeout", "malformed", "error"]

_REQUEST_GRACE = 0.25
"""Seconds an async request may overrun its own timeout before it is cancelled outright."""


def _check_number(name: str, value: object, *, minimum: float, allow_none: bool = False) -> None:
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
        _check_number("base_delay", self.base_delay, minimum=0.0)
        _check_number("max_delay", self.max_delay, minimum=0.0)
        _check_number("multiplier", self.multiplier, minimum=1.0)
        _check_number("max_retry_after", self.max_retry_after, minimum=0.0)
        _check_number("jitter", self.jitter, minimum=0.0)
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
        >>> from rerankit.remote import parse_retry_after
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

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def clamp(self, timeout: float) -> float:
        """``timeout`` shortened to what is left of the deadline."""
        return min(timeout, self.remaining())


class RateLimiter:
    """Client-side rate limit: at most ``requests_per_minute`` requests, evenly spaced.

    Thread-safe and shared by the sync and async paths of a reranker. A request that would have
    to wait past the caller's deadline is refused instead of delayed.

    Example:
        >>> from rerankit.remote import RateLimiter
        >>> limiter = RateLimiter(requests_per_minute=600)  # one request every 0.1 s
        >>> limiter.reserve(max_wait=1.0), 0.05 < limiter.reserve(max_wait=1.0) <= 0.1
        (0.0, True)
        >>> limiter.reserve(max_wait=0.01) is None  # the next slot is too far away
        True
    """

    def __init__(self, requests_per_minute: float) -> None:
        _check_number("requests_per_minute", requests_per_minute, minimum=0.0)
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


class _Stopped(Exception):
    """A sibling request failed for good: stop retrying this one."""


class BadResponse(Exception):
    """Raised by a request job when the server's answer is unusable (never retried)."""


@dataclass(frozen=True)
class Failure:
    """A failed request, classified.

    ``status`` failures are retried for 429 and 5xx, ``connection`` and ``timeout`` failures
    always (within the retry budget and deadline), ``malformed`` and ``error`` never.
    """

    kind: FailureKind
    detail: str
    status_code: int | None = None
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        if self.kind in ("connection", "timeout"):
            return True
        if self.kind == "status" and self.status_code is not None:
            return self.status_code == 429 or 500 <= self.status_code <= 599
        return False


Classifier = Callable[[BaseException], Failure | None]
Job = Callable[[float], T]
"""One request: called with the timeout (seconds) it may take; returns the parsed answer."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Resilience:
    """Runs the requests of a reranker: retries, deadline, rate and concurrency limits.

    ``classify`` maps a client library's exceptions to :class:`Failure` (``None``: unknown);
    ``redact`` scrubs secrets from every message built from a server's answer.
    """

    def __init__(
        self,
        *,
        name: Callable[[], str],
        timeout: float,
        retry: RetryPolicy,
        max_concurrency: int,
        requests_per_minute: float | None,
        classify: Classifier,
        redact: Callable[[str], str],
    ) -> None:
        _check_number("timeout", timeout, minimum=0.0)
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, got {timeout!r}")
        self._name = name
        self.timeout = float(timeout)
        self.retry = retry
        self.slots = ConcurrencyLimiter(max_concurrency)
        self.rate = RateLimiter(requests_per_minute) if requests_per_minute is not None else None
        self._classify = classify
        self._redact = redact

    # -- classification and errors -------------------------------------------------------------

    def classify(self, exc: BaseException) -> Failure:
        if isinstance(exc, BadResponse):
            return Failure("malformed", self._redact(str(exc)))
        failure = self._classify(exc)
        if failure is None:
            if isinstance(exc, asyncio.TimeoutError | TimeoutError):
                failure = Failure("timeout", "the request timed out")
            elif isinstance(exc, json.JSONDecodeError):
                failure = Failure("malformed", f"the answer is not valid JSON ({exc})")
            elif isinstance(exc, ConnectionError):
                failure = Failure("connection", f"connection error ({type(exc).__name__})")
            else:
                failure = Failure("error", f"unexpected {type(exc).__name__}: {exc}")
        return Failure(
            failure.kind,
            self._redact(failure.detail)[:500],
            failure.status_code,
            failure.retry_after,
        )

    def _safe_cause(self, cause: BaseException) -> BaseException | None:
        """``cause`` to chain to a rerankit error, or ``None`` when its text holds a secret
        (e.g. a server that echoes the key in an error body)."""
        for text in (str(cause), repr(cause)):
            if self._redact(text) != text:
                return None
        return cause

    def _failed(self, failure: Failure, attempts: int, what: str, why: str) -> RemoteError:
        kind = failure.kind
        cls: type[RemoteError]
        if kind == "status":
            cls = RateLimitedError if failure.status_code == 429 else RemoteStatusError
        elif kind == "timeout":
            cls = RemoteTimeoutError
        elif kind == "connection":
            cls = RemoteConnectionError
        elif kind == "malformed":
            cls = MalformedResponseError
        else:
            cls = RemoteError
        name = self._name()
        return cls(
            f"{name}: {what} failed after {_plural(attempts, 'attempt')} ({why}): {failure.detail}",
            reranker=name,
            attempts=attempts,
            status_code=failure.status_code,
        )

    def _deadline(
        self, deadline: Deadline, attempts: int, what: str, last: Failure | None, why: str
    ) -> DeadlineExceededError:
        name = self._name()
        limit = f"{deadline.seconds:g} s " if deadline.seconds is not None else ""
        message = (
            f"{name}: {what} ran out of its {limit}deadline after "
            f"{_plural(attempts, 'attempt')} ({why})"
        )
        if last is not None:
            message += f"; last error: {last.detail}"
        return DeadlineExceededError(
            message,
            reranker=name,
            attempts=attempts,
            status_code=last.status_code if last is not None else None,
        )

    def _decide(
        self, failure: Failure, attempts: int, what: str, deadline: Deadline
    ) -> float | RemoteError:
        """Seconds to wait before retrying, or the error to raise."""
        if not failure.retryable:
            return self._failed(failure, attempts, what, "not retryable")
        if attempts >= self.retry.max_attempts:
            return self._failed(
                failure, attempts, what, f"retries exhausted, max_retries={self.retry.max_retries}"
            )
        retry_after = failure.retry_after
        if retry_after is not None and retry_after > self.retry.max_retry_after:
            return self._failed(
                failure,
                attempts,
                what,
                f"the server asked to retry after {retry_after:g} s, more than "
                f"max_retry_after={self.retry.max_retry_after:g} s",
            )
        delay = self.retry.delay(attempts, retry_after=retry_after)
        remaining = deadline.remaining()
        if delay >= remaining:
            return self._deadline(
                deadline,
                attempts,
                what,
                failure,
                f"{max(remaining, 0.0):.2f} s left, the next retry would wait {delay:.2f} s",
            )
        log.info(
            "%s: %s: %s (attempt %d of %d); retrying in %.2f s",
            self._name(),
            what,
            failure.detail,
            attempts,
            self.retry.max_attempts,
            delay,
        )
        return delay

    # -- one operation, with retries -----------------------------------------------------------

    def call(
        self,
        job: Job[T],
        *,
        deadline: Deadline,
        meter: UsageMeter,
        what: str,
        stop: threading.Event | None = None,
    ) -> T:
        """Run ``job`` until it succeeds, fails for good, or the deadline passes.

        ``stop`` (set by :meth:`call_all` when a sibling request failed for good) ends the
        retries early.
        """
        attempts = 0
        last: Failure | None = None
        while True:
            if deadline.expired():
                raise self._deadline(deadline, attempts, what, last, "expired")
            if stop is not None and stop.is_set():
                raise _Stopped()
            if not self.slots.acquire(deadline.remaining()):
                raise self._deadline(deadline, attempts, what, last, "no free connection slot")
            try:
                if stop is not None and stop.is_set():
                    raise _Stopped()
                wait = self.rate.reserve(deadline.remaining()) if self.rate else 0.0
                if wait is None:
                    raise self._deadline(deadline, attempts, what, last, "client rate limit")
                if wait > 0:
                    time.sleep(wait)
                timeout = deadline.clamp(self.timeout)
                if timeout <= 0:
                    raise self._deadline(deadline, attempts, what, last, "expired")
                attempts += 1
                meter.count_request(retry=attempts > 1)
                try:
                    return job(timeout)
                except Exception as exc:
                    failure = self.classify(exc)
                    cause: BaseException = exc
            finally:
                self.slots.release()
            decision = self._decide(failure, attempts, what, deadline)
            if isinstance(decision, RemoteError):
                raise decision from self._safe_cause(cause)
            last = failure
            if stop is not None:
                stop.wait(decision)
            else:
                time.sleep(decision)

    async def acall(
        self,
        job: Callable[[float], Awaitable[T]],
        *,
        deadline: Deadline,
        meter: UsageMeter,
        what: str,
        stop: threading.Event | None = None,
    ) -> T:
        """Async :meth:`call`: same policy, native ``await`` (no threads)."""
        attempts = 0
        last: Failure | None = None
        while True:
            if deadline.expired():
                raise self._deadline(deadline, attempts, what, last, "expired")
            if stop is not None and stop.is_set():
                raise _Stopped()
            if not await self.slots.aacquire(deadline.remaining()):
                raise self._deadline(deadline, attempts, what, last, "no free connection slot")
            try:
                if stop is not None and stop.is_set():
                    raise _Stopped()
                wait = self.rate.reserve(deadline.remaining()) if self.rate else 0.0
                if wait is None:
                    raise self._deadline(deadline, attempts, what, last, "client rate limit")
                if wait > 0:
                    await asyncio.sleep(wait)
                timeout = deadline.clamp(self.timeout)
                if timeout <= 0:
                    raise self._deadline(deadline, attempts, what, last, "expired")
                attempts += 1
                meter.count_request(retry=attempts > 1)
                try:
                    # The client enforces ``timeout``; wait_for is the hard stop behind it.
                    return await asyncio.wait_for(job(timeout), timeout + _REQUEST_GRACE)
                except Exception as exc:
                    failure = self.classify(exc)
                    cause: BaseException = exc
            finally:
                self.slots.arelease()
            decision = self._decide(failure, attempts, what, deadline)
            if isinstance(decision, RemoteError):
                raise decision from self._safe_cause(cause)
            last = failure
            await asyncio.sleep(decision)

    # -- several operations at once ------------------------------------------------------------

    def call_all(
        self,
        jobs: Sequence[Job[T]],
        *,
        deadline: Deadline,
        meter: UsageMeter,
        what: Callable[[int], str],
    ) -> list[T]:
        """Run independent jobs concurrently (threads, at most ``max_concurrency``); results in
        job order. The first failure cancels the jobs not yet started and is raised."""
        if not jobs:
            return []
        if len(jobs) == 1:
            return [self.call(jobs[0], deadline=deadline, meter=meter, what=what(0))]
        workers = min(len(jobs), self.slots.limit)
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="rerankit-remote"
        )
        stop = threading.Event()

        def run(job: Job[T], label: str) -> T:
            try:
                return self.call(job, deadline=deadline, meter=meter, what=label, stop=stop)
            except BaseException:
                stop.set()  # before this worker picks up the next job
                raise

        try:
            futures = [pool.submit(run, job, what(i)) for i, job in enumerate(jobs)]
            remaining = deadline.remaining()
            done, pending = concurrent.futures.wait(
                futures,
                timeout=None if math.isinf(remaining) else max(0.0, remaining) + _REQUEST_GRACE,
                return_when=concurrent.futures.FIRST_EXCEPTION,
            )
            for future in futures:  # the first failure in job order, for a stable message
                error = future.exception() if future in done else None
                if error is not None and not isinstance(error, _Stopped):
                    raise error
            if pending:
                raise self._deadline(
                    deadline,
                    meter.requests,
                    f"the call ({len(jobs)} requests)",
                    None,
                    f"{len(pending)} still running",
                )
            return [future.result() for future in futures]
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    async def acall_all(
        self,
        jobs: Sequence[Callable[[float], Awaitable[T]]],
        *,
        deadline: Deadline,
        meter: UsageMeter,
        what: Callable[[int], str],
    ) -> list[T]:
        """Async :meth:`call_all`: one task per job, concurrency bounded by the limiter."""
        if not jobs:
            return []
        if len(jobs) == 1:
            return [await self.acall(jobs[0], deadline=deadline, meter=meter, what=what(0))]
        stop = threading.Event()

        async def run(job: Callable[[float], Awaitable[T]], label: str) -> T:
            try:
                return await self.acall(job, deadline=deadline, meter=meter, what=label, stop=stop)
            except BaseException:
                stop.set()  # before a waiting sibling takes the freed slot
                raise

        tasks = [asyncio.ensure_future(run(job, what(i))) for i, job in enumerate(jobs)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                error = task.exception() if task.done() and not task.cancelled() else None
                if error is not None and not isinstance(error, _Stopped):
                    raise error
            return [task.result() for task in tasks]
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
