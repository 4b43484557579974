"""Fault injection against every remote backend, over loopback servers speaking the real wire
formats (Cohere v2, TEI, Infinity's Cohere-compatible ``/rerank``, OpenAI chat).

Each case asserts that the call returns or raises by its deadline (plus a grace), the error
class, that every input is accounted for, and that no document gets another's score; the slow
faults also check that no worker thread, watchdog alarm or server-side writer is left working
after the call. Sync and async, one request and many.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rerankit import (
    CohereReranker,
    DeadlineExceededError,
    HTTPReranker,
    LLMReranker,
    MalformedResponseError,
    RateLimitedError,
    RemoteError,
    RemoteStatusError,
    RemoteTimeoutError,
    RerankResults,
    RetryPolicy,
)
from rerankit.remote.transport import WATCHDOG
from tests.loopback import LoopbackServer, Reply, faults, relevance
from tests.loopback.data import QUERY, SECRET, corpus

pytest_plugins = ["tests.loopback.fixtures"]

DEADLINE = 0.8
TIMEOUT = 0.3
GRACE = 0.6
"""Seconds a call may run past its deadline (scheduling on a busy 2-core machine)."""

RETRY = RetryPolicy(max_retries=10, base_delay=0.01, max_delay=0.02, jitter=0.0)


@dataclass(frozen=True)
class Target:
    """A backend, the server it talks to, and how its answers look."""

    name: str
    server: str
    build: Callable[..., Any]
    rerank_format: bool
    """Answers are ``[{index, score}]`` results (Cohere, TEI, Infinity)."""
    score_field: str = ""


def _cohere(server: LoopbackServer, *, batch_size: int, **kw: Any) -> CohereReranker:
    return CohereReranker(api_key=SECRET, base_url=server.url, batch_size=batch_size, **kw)


def _tei(server: LoopbackServer, *, batch_size: int, **kw: Any) -> HTTPReranker:
    return HTTPReranker(url=server.url, api="tei", batch_size=batch_size, **kw)


def _infinity(server: LoopbackServer, *, batch_size: int, **kw: Any) -> HTTPReranker:
    return HTTPReranker(url=server.url, api="cohere", model="bge", batch_size=batch_size, **kw)


def _pointwise(server: LoopbackServer, *, batch_size: int, **kw: Any) -> LLMReranker:
    return LLMReranker(model="m", api_key=SECRET, base_url=server.url + "/v1", **kw)


def _listwise(server: LoopbackServer, *, batch_size: int, **kw: Any) -> LLMReranker:
    return LLMReranker(
        model="m",
        mode="listwise",
        window_size=4,
        step=2,
        api_key=SECRET,
        base_url=server.url + "/v1",
        **kw,
    )


TARGETS = {
    t.name: t
    for t in (
        Target("cohere", "cohere", _cohere, True, "relevance_score"),
        Target("tei", "tei", _tei, True, "score"),
        Target("infinity", "infinity", _infinity, True, "relevance_score"),
        Target("llm-pointwise", "openai_server", _pointwise, False),
        Target("llm-listwise", "openai_server", _listwise, False),
    )
}
RERANK_TARGETS = [n for n, t in TARGETS.items() if t.rerank_format]

SIZES = {"one": 1, "many": 5}
"""Documents per call: one request, or several (batch_size 2; one request per document for
the pointwise LLM; two sequential windows for the listwise one)."""


@pytest.fixture(scope="module", autouse=True)
def _warm(request: pytest.FixtureRequest) -> None:
    """One plain call per backend first, sync and async: the SDKs import lazily, and the
    timed calls must not pay for that."""
    for target in TARGETS.values():
        value = request.getfixturevalue(f"_{target.server.replace('_server', '')}_server")
        server = value[0] if isinstance(value, tuple) else value
        reranker = target.build(server, batch_size=16, retry=RETRY)
        reranker.rerank(QUERY, corpus(2))
        asyncio.run(reranker.arerank(QUERY, corpus(2)))
        server.clear()


def server_of(request: pytest.FixtureRequest, target: Target) -> LoopbackServer:
    value = request.getfixturevalue(target.server)
    return value[0] if isinstance(value, tuple) else value  # type: ignore[no-any-return]


def docs_for(target: Target, size: str) -> list[str]:
    n = SIZES[size]
    if target.name == "llm-listwise":
        n = 3 if size == "one" else 5  # a ranking needs >= 2 documents; 5 means two windows
    return corpus(n)


@dataclass
class Outcome:
    results: RerankResults | None
    error: BaseException | None
    elapsed: float


def call(reranker: Any, docs: list[str], mode: str) -> Outcome:
    async def arun() -> Outcome:
        started = time.monotonic()
        try:
            results = await reranker.arerank(QUERY, docs)
        except RemoteError as exc:
            return Outcome(None, exc, time.monotonic() - started)
        return Outcome(results, None, time.monotonic() - started)

    if mode == "async":
        return asyncio.run(arun())
    started = time.monotonic()
    try:
        results = reranker.rerank(QUERY, docs)
    except RemoteError as exc:
        return Outcome(None, exc, time.monotonic() - started)
    return Outcome(results, None, time.monotonic() - started)


def make(
    request: pytest.FixtureRequest, name: str, size: str, **kwargs: Any
) -> tuple[Any, LoopbackServer, list[str]]:
    target = TARGETS[name]
    server = server_of(request, target)
    options: dict[str, Any] = {"timeout": TIMEOUT, "deadline": DEADLINE, "retry": RETRY}
    options.update(kwargs)
    reranker = target.build(server, batch_size=2 if size == "many" else 16, **options)
    return reranker, server, docs_for(target, size)


def assert_accounted(results: RerankResults, docs: list[str], target: Target) -> None:
    """Each input exactly once, with its own text and (for the rerank APIs and the pointwise
    judge) exactly the score the server gave it."""
    assert sorted(r.index for r in results) == list(range(len(docs)))
    for r in results:
        assert r.text == docs[r.index]
        if target.rerank_format or target.name == "llm-pointwise":
            assert r.raw_score == pytest.approx(relevance(QUERY, docs[r.index]), rel=1e-3)
    if target.name == "llm-listwise":
        n = len(docs)
        assert sorted(r.raw_score for r in results) == sorted((n - k) / n for k in range(n))


def assert_on_time(outcome: Outcome, deadline: float = DEADLINE) -> None:
    assert outcome.elapsed <= deadline + GRACE, f"took {outcome.elapsed:.2f} s"


def assert_nothing_left(server: LoopbackServer) -> None:
    """No worker thread, no armed watchdog alarm, and the server is not writing to anyone."""
    workers = [t.name for t in threading.enumerate() if t.name.startswith("rerankit-remote")]
    assert workers == []
    assert server.wait_idle(1.5), "the server is still answering a request the client dropped"
    settle = time.monotonic() + 0.5
    while WATCHDOG.pending() and time.monotonic() < settle:
        time.sleep(0.01)
    assert WATCHDOG.pending() == 0


# -- deadlines: slow and endless answers -------------------------------------------------------

SLOW = {
    "trickled-status-line": faults.trickled_status_line,
    "trickled-body": faults.trickled_body,
    "endless-body": faults.endless_body,
    "no-answer": faults.hang,
}
SLOW_CASES = [
    (fault, name, mode, size)
    for fault in SLOW
    for name in TARGETS
    for mode in ("sync", "async")
    for size in ("one", "many")
    if size == "one" or fault in ("trickled-status-line", "endless-body")
]


@pytest.mark.parametrize(("fault", "name", "mode", "size"), SLOW_CASES)
def test_slow_answers_end_by_the_deadline(
    request: pytest.FixtureRequest, fault: str, name: str, mode: str, size: str
) -> None:
    reranker, server, docs = make(request, name, size)
    server.push_many(SLOW[fault](), 100)
    outcome = call(reranker, docs, mode)
    assert_on_time(outcome)
    assert isinstance(outcome.error, DeadlineExceededError), outcome.error
    assert outcome.elapsed >= DEADLINE - 0.05  # it did wait: retries within the deadline
    server.clear()
    assert_nothing_left(server)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_timeouts_exhaust_retries_before_the_deadline(
    request: pytest.FixtureRequest, name: str, mode: str
) -> None:
    reranker, server, docs = make(request, name, "one", max_retries=1, deadline=5.0)
    server.push_many(faults.trickled_status_line(0.05), 10)
    outcome = call(reranker, docs, mode)
    assert_on_time(outcome, deadline=2 * TIMEOUT)
    assert type(outcome.error) is RemoteTimeoutError, outcome.error
    assert outcome.error.attempts == 2
    server.clear()
    assert_nothing_left(server)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_one_slow_request_is_retried_and_the_call_succeeds(
    request: pytest.FixtureRequest, name: str, mode: str
) -> None:
    reranker, server, docs = make(request, name, "many", deadline=3.0)
    server.push(faults.trickled_body(0.1))
    outcome = call(reranker, docs, mode)
    assert outcome.error is None, outcome.error
    assert outcome.results is not None
    assert_accounted(outcome.results, docs, TARGETS[name])
    assert outcome.results.usage is not None and outcome.results.usage["retries"] == 1
    assert_on_time(outcome, deadline=3.0)
    assert_nothing_left(server)


# -- statuses ----------------------------------------------------------------------------------


def _date_in(seconds: float) -> Callable[[], Reply]:
    return lambda: faults.status(429, retry_after=faults.retry_after_date(seconds))


RECOVERED = {
    "429-retry-after-seconds": lambda: faults.status(429, retry_after="0.1"),
    "429-retry-after-date": _date_in(0.6),
    "500": lambda: faults.status(500),
    "502-html": lambda: Reply(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
    "503": lambda: faults.status(503),
    "reset-mid-body": faults.reset_mid_body,
    "short-body": faults.short_body,
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("fault", sorted(RECOVERED))
def test_transient_failures_are_retried(
    request: pytest.FixtureRequest, fault: str, name: str, mode: str
) -> None:
    # an attempt timeout far above a loopback reply's time: on a busy machine the default 0.3 s
    # can time out the healthy attempt too, and this test counts the retries of one fault
    reranker, server, docs = make(request, name, "one", deadline=4.0, timeout=2.0)
    server.push(RECOVERED[fault]())
    outcome = call(reranker, docs, mode)
    assert outcome.error is None, outcome.error
    assert outcome.results is not None
    assert_accounted(outcome.results, docs, TARGETS[name])
    assert outcome.results.usage is not None and outcome.results.usage["retries"] == 1
    assert_on_time(outcome, deadline=4.0)
    if fault == "429-retry-after-seconds":
        first, second = server.requests[:2]
        assert second.at - first.at >= 0.09  # the server asked for 0.1 s


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_persistent_statuses_give_typed_errors(
    request: pytest.FixtureRequest, name: str, mode: str
) -> None:
    reranker, server, docs = make(request, name, "one", max_retries=2, deadline=4.0)
    server.push_many(faults.status(503), 3)
    outcome = call(reranker, docs, mode)
    assert type(outcome.error) is RemoteStatusError, outcome.error
    assert outcome.error.status_code == 503 and outcome.error.attempts == 3
    server.clear()
    server.push_many(faults.status(429, retry_after="0"), 3)
    outcome = call(reranker, docs, mode)
    assert type(outcome.error) is RateLimitedError and outcome.error.attempts == 3
    server.clear()
    server.push(faults.status(401, body={"message": "invalid key"}))
    outcome = call(reranker, docs, mode)
    assert type(outcome.error) is RemoteStatusError and outcome.error.attempts == 1
    assert "HTTP 401: invalid key" in str(outcome.error)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_retry_after_past_the_deadline_fails_at_once(
    request: pytest.FixtureRequest, name: str, mode: str
) -> None:
    reranker, server, docs = make(request, name, "one", deadline=2.0)
    server.push(faults.status(429, retry_after=faults.retry_after_date(30)))
    outcome = call(reranker, docs, mode)
    assert type(outcome.error) is DeadlineExceededError, outcome.error
    assert outcome.error.status_code == 429
    assert outcome.elapsed < 1.0 and server.count() == 1


# -- malformed bodies --------------------------------------------------------------------------

MALFORMED = {
    "html-200": (
        lambda: Reply(200, b"<html>Welcome</html>", {"Content-Type": "text/html"}),
        "JSON",
    ),
    "truncated-json": (lambda: Reply(200, b'{"results": [{"index": 0, "rel'), "not valid JSON"),
    "gzip-undeclared": (faults.gzip_undeclared, "gzip-compressed"),
    "huge-body": (faults.huge_body, "larger than 32 MiB"),
    "not-utf8": (lambda: Reply(200, b'{"results": "\xff\xfe"}'), "not UTF-8"),
    "json-string": (lambda: Reply(200, b'"just a string"'), "got a string"),
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("fault", sorted(MALFORMED))
def test_malformed_bodies_are_malformed_response_errors(
    request: pytest.FixtureRequest, fault: str, name: str, mode: str
) -> None:
    reranker, server, docs = make(request, name, "one", deadline=4.0)
    build, words = MALFORMED[fault]
    server.push(build())
    outcome = call(reranker, docs, mode)
    assert type(outcome.error) is MalformedResponseError, outcome.error
    assert words in str(outcome.error)
    assert outcome.error.attempts == 1 and server.count() == 1  # never retried
    assert_on_time(outcome, deadline=4.0)


def _results(data: Any) -> list[dict[str, Any]]:
    return data if isinstance(data, list) else data["results"]  # type: ignore[no-any-return]


def _set(field: str, value: Any, item: int = 0) -> Callable[[Any, str], None]:
    def change(data: Any, score_field: str) -> None:
        key = score_field if field == "score" else field
        _results(data)[item][key] = value

    return change


def _drop(data: Any, score_field: str) -> None:
    _results(data).pop()


def _duplicate(data: Any, score_field: str) -> None:
    items = _results(data)
    items[1]["index"] = items[0]["index"]


BAD_RESULTS: dict[str, tuple[Callable[[Any, str], None], str]] = {
    "index-duplicate": (_duplicate, "duplicate indices"),
    "index-missing": (_drop, "missing indices"),
    "index-out-of-range": (_set("index", 7), "out-of-range indices [7]"),
    "index-negative": (_set("index", -1), "out-of-range indices [-1]"),
    "index-float": (_set("index", 0.0), "non-integer indices [0.0]"),
    "index-string": (_set("index", "0"), "non-integer indices ['0']"),
    "score-string": (_set("score", "0.5"), "a string"),
    "score-null": (_set("score", None), "null"),
    "score-bool": (_set("score", True), "a boolean"),
    "score-nan": (_set("score", math.nan), "not a finite number"),
    "score-infinity": (_set("score", math.inf), "not a finite number"),
    "score-overflow": (_set("score", 10**400), "too large for a float"),
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", RERANK_TARGETS)
@pytest.mark.parametrize("fault", sorted(BAD_RESULTS))
def test_bad_indices_and_scores_never_misattribute(
    request: pytest.FixtureRequest, fault: str, name: str, mode: str
) -> None:
    reranker, server, _ = make(request, name, "one", deadline=4.0)
    docs = corpus(3)
    change, words = BAD_RESULTS[fault]
    score_field = TARGETS[name].score_field
    server.push(faults.mutate(lambda data: change(data, score_field)))
    outcome = call(reranker, docs, mode)
    assert type(outcome.error) is MalformedResponseError, outcome.error
    message = str(outcome.error)
    assert words in message, message
    if fault.startswith("score"):
        assert score_field in message  # the error names the field
    assert outcome.error.attempts == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", RERANK_TARGETS)
def test_a_bad_batch_fails_the_whole_call(
    request: pytest.FixtureRequest, name: str, mode: str
) -> None:
    reranker, server, docs = make(request, name, "many", deadline=4.0, max_concurrency=1)
    server.push(faults.mutate(lambda data: _duplicate(data, "")))
    outcome = call(reranker, docs, mode)
    assert type(outcome.error) is MalformedResponseError, outcome.error
    assert "batch 1 of 3" in str(outcome.error)
    assert_nothing_left(server)


# -- the LLM judge's logprobs and answers ------------------------------------------------------


def _logprob(value: Any) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        data["choices"][0]["logprobs"]["content"][0]["top_logprobs"][0]["logprob"] = value

    return change


LOGPROB_ERRORS = {
    "positive-800": (_logprob(800.0), "is 800, but a log-probability is never positive"),
    "nan": (_logprob(math.nan), "not a finite number"),
    "infinity": (_logprob(math.inf), "not a finite number"),
    "overflow": (_logprob(10**400), "too large for a float"),
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("fault", sorted(LOGPROB_ERRORS))
def test_impossible_logprobs_are_malformed(
    request: pytest.FixtureRequest, fault: str, mode: str
) -> None:
    reranker, server, _ = make(request, "llm-pointwise", "one", deadline=4.0)
    change, words = LOGPROB_ERRORS[fault]
    server.push(faults.mutate(change))
    outcome = call(reranker, corpus(1), mode)
    assert type(outcome.error) is MalformedResponseError, outcome.error
    assert words in str(outcome.error)
    assert "choices[0].logprobs.content[0].top_logprobs[0].logprob" in str(outcome.error)


@pytest.mark.parametrize("value", ["-0.1", None, True])
def test_non_numeric_logprobs_fall_back_to_grades(
    request: pytest.FixtureRequest, value: Any
) -> None:
    reranker, server, docs = make(request, "llm-pointwise", "many", deadline=4.0)

    def change(data: Any) -> None:
        first = data["choices"][0]["logprobs"]["content"][0]
        first["logprob"] = value
        for alternative in first["top_logprobs"]:
            alternative["logprob"] = value

    server.push(faults.mutate(change))
    outcome = call(reranker, docs, "sync")
    assert outcome.results is not None, outcome.error
    assert sorted(r.index for r in outcome.results) == list(range(len(docs)))
    for r in outcome.results:  # the grade of each document's own judgement
        assert r.raw_score == pytest.approx(round(relevance(QUERY, docs[r.index]) * 10) / 10)
    assert outcome.results.usage is not None
    assert outcome.results.usage["details"]["scoring"] == "grade"


ANSWER_ERRORS = {
    "no-choices": (lambda data: {**data, "choices": []}, "no choices"),
    "content-number": (
        lambda data: data["choices"][0]["message"].update(content=7),
        "choices[0].message.content is a int",
    ),
}


@pytest.mark.parametrize("name", ["llm-pointwise", "llm-listwise"])
@pytest.mark.parametrize("fault", sorted(ANSWER_ERRORS))
def test_unusable_chat_answers_are_malformed(
    request: pytest.FixtureRequest, fault: str, name: str
) -> None:
    reranker, server, docs = make(request, name, "one", deadline=4.0)
    change, words = ANSWER_ERRORS[fault]
    server.push(faults.mutate(change))
    outcome = call(reranker, docs, "sync")
    assert type(outcome.error) is MalformedResponseError, outcome.error
    assert words in str(outcome.error)
