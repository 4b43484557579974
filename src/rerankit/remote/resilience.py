"""Resilience shared by every remote reranker: timeouts, deadlines, retries, rate and
concurrency limits.

One :class:`Resilience` object per reranker runs every request of every call:

* each request gets ``timeout`` seconds in total, clamped to what is left of the call's
  ``deadline``: a total, not per read (see :mod:`rerankit.remote.transport`), on the sync path
  as on the async one;
* failed requests are retried on **429, 5xx and connection errors (timeouts included) only**,
  with exponential backoff and jitter (:class:`RetryPolicy`), waiting at least as long as the
  server's ``Retry-After`` / ``retry-after-ms`` header asks;
* a client-side :class:`RateLimiter` spaces requests (``requests_per_minute``) and a
  :class:`ConcurrencyLimiter` bounds how many are in flight;
* a wait that cannot finish before the deadline is not started: the call fails at once with
  :class:`~rerankit.remote.DeadlineExceededError`;
* a call of several requests (:meth:`Resilience.call_all`) that ends early aborts the requests
  still in flight and waits for its workers, so nothing keeps running after it.

Anything else (4xx other than 429, malformed answers) fails on the first attempt, with a typed
:class:`~rerankit.remote.RemoteError` that names the reranker and the number of attempts. A
client exception is never chained as it is: it and its traceback hold the request (URL,
headers, body) in their locals, so the error's ``__cause__`` is a :class:`UpstreamError` that
keeps only the exception's type and its redacted message.

The sync and async loops (:meth:`Resilience.call` / :meth:`~Resilience.acall`,
:meth:`~Resilience.call_all` / :meth:`~Resilience.acall_all`) mirror each other step by step;
they are kept in one module so that they stay the same, which is why it runs past 400 lines.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from rerankit.errors import ConfigurationError
from rerankit.remote.errors import (
    BadResponse,
    DeadlineExceededError,
    MalformedResponseError,
    RateLimitedError,
    RemoteConnectionError,
    RemoteError,
    RemoteStatusError,
    RemoteTimeoutError,
)
from rerankit.remote.failures import Failure, FailureKind, UpstreamError
from rerankit.remote.limits import (
    ConcurrencyLimiter,
    Deadline,
    RateLimiter,
    RetryPolicy,
    check_number,
    parse_retry_after,
)
from rerankit.remote.transport import CallScope, call_scope, request_budget
from rerankit.remote.usage import UsageMeter

__all__ = [
    "BadResponse",
    "ConcurrencyLimiter",
    "Deadline",
    "Failure",
    "FailureKind",
    "RateLimiter",
    "Resilience",
    "RetryPolicy",
    "UpstreamError",
    "parse_retry_after",
]

log = logging.getLogger("rerankit.remote")

T = TypeVar("T")


_REQUEST_GRACE = 0.05
"""Seconds an async request may overrun its own timeout before it is cancelled outright (so
that the client's own timeout, the more precise error, fires first when it can)."""

_CALL_GRACE = 0.25
"""Seconds a multi-request call waits past its deadline for its requests' own errors (each
request already ends at its budget)."""

_JOIN_GRACE = 1.0
"""Seconds a multi-request call waits, after aborting them, for its workers to finish."""


class _Stopped(Exception):
    """A sibling request failed for good: stop retrying this one."""


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
        check_number("timeout", timeout, minimum=0.0)
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
            elif isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
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

    def upstream(self, exc: BaseException) -> UpstreamError:
        """What an error may keep of ``exc``: its type and redacted message, no traceback."""
        kind = type(exc)
        name = (
            kind.__qualname__
            if kind.__module__ == "builtins"
            else (f"{kind.__module__}.{kind.__qualname__}")
        )
        try:
            text = str(exc)
        except Exception:  # a broken __str__ says nothing useful
            text = ""
        message = self._redact(text)[:300]
        return UpstreamError(f"{name}: {message}" if message else name)

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
                    with request_budget(timeout):
                        return job(timeout)
                except Exception as exc:
                    failure = self.classify(exc)
                    cause = self.upstream(exc)
            finally:
                self.slots.release()
            decision = self._decide(failure, attempts, what, deadline)
            if isinstance(decision, RemoteError):
                raise decision from cause
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
                    # The transport checks the budget per chunk; wait_for is the hard stop.
                    with request_budget(timeout):
                        return await asyncio.wait_for(job(timeout), timeout + _REQUEST_GRACE)
                except Exception as exc:
                    failure = self.classify(exc)
                    cause = self.upstream(exc)
            finally:
                self.slots.arelease()
            decision = self._decide(failure, attempts, what, deadline)
            if isinstance(decision, RemoteError):
                raise decision from cause
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
        scope = CallScope()

        def run(job: Job[T], label: str) -> T:
            with call_scope(scope):
                try:
                    return self.call(job, deadline=deadline, meter=meter, what=label, stop=stop)
                except BaseException:
                    stop.set()  # before this worker picks up the next job
                    raise

        futures: list[concurrent.futures.Future[T]] = []
        try:
            futures = [pool.submit(run, job, what(i)) for i, job in enumerate(jobs)]
            remaining = deadline.remaining()
            done, pending = concurrent.futures.wait(
                futures,
                timeout=None if math.isinf(remaining) else max(0.0, remaining) + _CALL_GRACE,
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
            scope.end()  # abort the requests still in flight
            pool.shutdown(wait=False, cancel_futures=True)
            _, still = concurrent.futures.wait(futures, timeout=_JOIN_GRACE)
            if still:
                log.warning(
                    "%s: %d request workers did not stop within %.1f s of the call's end",
                    self._name(),
                    len(still),
                    _JOIN_GRACE,
                )
            else:
                pool.shutdown(wait=True)  # the workers are idle: join them

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
