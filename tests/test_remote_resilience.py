"""The shared resilience module, without a network: policies, limits, classification."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankit import ConfigurationError, RerankResults
from rerankit.remote import (
    DeadlineExceededError,
    MalformedResponseError,
    RemoteConnectionError,
    RemoteError,
    RemoteStatusError,
    RemoteTimeoutError,
    RetryPolicy,
    Usage,
)
from rerankit.remote.parsing import scores_by_index
from rerankit.remote.resilience import (
    BadResponse,
    ConcurrencyLimiter,
    Deadline,
    Failure,
    RateLimiter,
    Resilience,
    UpstreamError,
    parse_retry_after,
)
from rerankit.remote.usage import UsageMeter


class Status(Exception):
    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"status {status}")
        self.status = status
        self.retry_after = retry_after


def classify(exc: BaseException) -> Failure | None:
    if isinstance(exc, Status):
        return Failure("status", f"HTTP {exc.status}", exc.status, exc.retry_after)
    return None


def resilience(**kwargs: object) -> Resilience:
    options: dict[str, object] = {
        "name": lambda: "Test()",
        "timeout": 1.0,
        "retry": RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.002),
        "max_concurrency": 4,
        "requests_per_minute": None,
        "classify": classify,
        "redact": lambda text: text.replace("hunter2", "**********"),
    }
    options.update(kwargs)
    return Resilience(**options)  # type: ignore[arg-type]


class Flaky:
    """A job that raises the given exceptions in turn, then answers."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.timeouts: list[float] = []

    def __call__(self, timeout: float) -> str:
        self.calls += 1
        self.timeouts.append(timeout)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    async def run(self, timeout: float) -> str:
        return self(timeout)


def call(r: Resilience, job: Flaky, deadline: float | None = 5.0) -> tuple[str, UsageMeter]:
    meter = UsageMeter()
    return r.call(job, deadline=Deadline(deadline), meter=meter, what="GET /x"), meter


# -- RetryPolicy and Retry-After ---------------------------------------------------------------


@given(st.integers(min_value=1, max_value=80), st.floats(min_value=0, max_value=1))
def test_backoff_is_exponential_capped_and_jittered(retry: int, jitter: float) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, multiplier=2.0, jitter=jitter)
    full = min(8.0, 0.5 * 2.0 ** (retry - 1))
    assert full * (1 - jitter) - 1e-9 <= policy.delay(retry) <= full


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(base_delay=0.1, jitter=0.0)
    assert policy.delay(1, retry_after=2.5) == 2.5
    assert policy.delay(1, retry_after=0.01) == 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": True},
        {"base_delay": -1},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"max_delay": float("nan")},
        {"max_retry_after": "1"},
    ],
)
def test_retry_policy_validates(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_parse_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": " 1.5 "}) == 1.5
    assert parse_retry_after({"retry-after-ms": "20", "retry-after": "9"}) == 0.02
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after({"Retry-After": future}) or 0) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": past}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "inf"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


# -- limits and deadline -----------------------------------------------------------------------


def test_rate_limiter_spaces_and_refuses() -> None:
    limiter = RateLimiter(requests_per_minute=60)  # one per second
    assert limiter.reserve(max_wait=0) == 0.0
    assert limiter.reserve(max_wait=0.5) is None  # not booked
    wait = limiter.reserve(max_wait=2.0)
    assert wait is not None and 0.9 < wait <= 1.0
    with pytest.raises(ConfigurationError):
        RateLimiter(requests_per_minute=0)


def test_deadline() -> None:
    assert Deadline(None).remaining() == float("inf")
    deadline = Deadline(0.05)
    assert deadline.clamp(10.0) <= 0.05 and not deadline.expired()
    time.sleep(0.06)
    assert deadline.expired() and deadline.clamp(1.0) < 0


def test_concurrency_limiter_threads_and_loops() -> None:
    limiter = ConcurrencyLimiter(2)
    assert limiter.acquire(0.1) and limiter.acquire(0.1)
    assert not limiter.acquire(0.01)
    limiter.release()
    assert limiter.acquire(0)
    limiter.release()
    limiter.release()

    async def main() -> list[bool]:
        first = [await limiter.aacquire(0.1) for _ in range(3)]
        limiter.arelease()
        return [*first, await limiter.aacquire(0)]

    assert asyncio.run(main()) == [True, True, False, True]
    assert asyncio.run(main()) == [True, True, False, True]  # a fresh loop, fresh slots
    with pytest.raises(ConfigurationError):
        ConcurrencyLimiter(0)


# -- the retry loop ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (Status(429), True),
        (Status(500), True),
        (Status(503), True),
        (Status(599), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (Status(400), False),
        (Status(404), False),
        (BadResponse("no results"), False),
        (ValueError("bug"), False),
    ],
)
def test_what_is_retried(error: BaseException, retried: bool) -> None:
    job = Flaky(error)
    if retried:
        assert call(resilience(), job)[0] == "ok"
        assert job.calls == 2
    else:
        with pytest.raises(RemoteError) as info:
            call(resilience(), job)
        assert info.value.attempts == 1 and job.calls == 1


def test_error_types_after_exhaustion() -> None:
    cases: list[tuple[BaseException, type[RemoteError]]] = [
        (Status(502), RemoteStatusError),
        (ConnectionRefusedError(), RemoteConnectionError),
        (TimeoutError(), RemoteTimeoutError),
        (BadResponse("x"), MalformedResponseError),
    ]
    for error, kind in cases:
        job = Flaky(*[error] * 10)
        with pytest.raises(kind) as info:
            call(resilience(), job)
        assert type(info.value) is kind
        assert info.value.reranker == "Test()"
        assert "GET /x failed after" in str(info.value)


def test_counts_requests_and_retries() -> None:
    job = Flaky(Status(503), Status(503))
    _, meter = call(resilience(), job)
    usage = meter.usage(backend="b", model="m", ok=True)
    assert (usage.requests, usage.retries) == (3, 2)


def test_timeouts_are_clamped_to_the_deadline() -> None:
    job = Flaky()
    call(resilience(timeout=30.0), job, deadline=0.5)
    assert 0 < job.timeouts[0] <= 0.5


def test_retry_after_beyond_the_deadline_stops_at_once() -> None:
    job = Flaky(Status(429, retry_after=60))
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError, match=r"the next retry would wait 60\.00 s"):
        call(resilience(retry=RetryPolicy(max_retry_after=120)), job, deadline=1.0)
    assert time.monotonic() - started < 0.5 and job.calls == 1


def test_secrets_are_scrubbed_from_messages_and_chains() -> None:
    job = Flaky(ValueError("token hunter2 rejected"))
    with pytest.raises(RemoteError) as info:
        call(resilience(), job)
    assert "hunter2" not in str(info.value) and "**********" in str(info.value)
    cause = info.value.__cause__  # what is left of the raw exception: its type and message
    assert isinstance(cause, UpstreamError) and cause.__traceback__ is None
    assert str(cause) == "ValueError: token ********** rejected"


async def test_async_call_all_stops_siblings_after_a_failure() -> None:
    r = resilience(max_concurrency=1)
    bad = Flaky(Status(401))
    later = Flaky()
    with pytest.raises(RemoteStatusError):
        await r.acall_all(
            [bad.run, later.run], deadline=Deadline(5.0), meter=UsageMeter(), what=str
        )
    assert later.calls == 0


def test_sync_call_all_keeps_job_order() -> None:
    r = resilience(max_concurrency=3)

    def job(i: int) -> Callable[[float], int]:
        def run(timeout: float) -> int:
            time.sleep(0.01 * (5 - i))  # later jobs finish first
            return i

        return run

    out = r.call_all(
        [job(i) for i in range(5)], deadline=Deadline(5.0), meter=UsageMeter(), what=str
    )
    assert out == [0, 1, 2, 3, 4]


# -- parsing and usage -------------------------------------------------------------------------


def test_scores_by_index() -> None:
    items = [{"index": 1, "s": 0.2}, {"index": 0, "s": 0.9}]
    assert scores_by_index(items, 2, score_key="s") == [0.9, 0.2]
    with pytest.raises(BadResponse, match="missing indices \\[1\\]; duplicate indices \\[0\\]"):
        scores_by_index([{"index": 0, "s": 1}, {"index": 0, "s": 1}], 2, score_key="s")
    with pytest.raises(BadResponse, match="no valid s for indices \\[0\\]"):
        scores_by_index([{"index": 0, "s": float("nan")}], 1, score_key="s")
    with pytest.raises(BadResponse, match="non-integer indices \\[True\\]"):
        scores_by_index([{"index": True, "s": 1}, {"index": 0, "s": 1}], 1, score_key="s")


def test_usage_as_dict_and_results() -> None:
    usage = Usage(backend="llm", model="m", input_tokens=5, output_tokens=2, details={"k": 1})
    data = usage.as_dict()
    assert data["total_tokens"] == 7 and data["details"] == {"k": 1}
    results = RerankResults([], usage=data, fallback="why")
    assert results.usage is not None and results.usage["total_tokens"] == 7
    assert "fallback='why'" in repr(results)
