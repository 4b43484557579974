"""CohereReranker: the real ``cohere`` SDK against a loopback Cohere v2 server, with faults."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from rerankit import (
    CohereReranker,
    ConfigurationError,
    DeadlineExceededError,
    MalformedResponseError,
    RateLimitedError,
    RemoteConnectionError,
    RemoteStatusError,
    RemoteTimeoutError,
    RerankError,
    RetryPolicy,
    Usage,
    from_spec,
)
from tests.loopback import LoopbackServer, Reply, Request, expected_order, relevance
from tests.loopback.data import FAST, QUERY, SECRET, corpus

pytest_plugins = ["tests.loopback.fixtures"]

PATH = "/v2/rerank"


def make(server: LoopbackServer, **kwargs: object) -> CohereReranker:
    options: dict[str, object] = {
        "api_key": SECRET,
        "base_url": server.url,
        "retry": FAST,
        "timeout": 2.0,
        "deadline": 10.0,
    }
    options.update(kwargs)
    return CohereReranker(**options)  # type: ignore[arg-type]


def assert_exact(results: object, docs: list[str]) -> None:
    """Every document present once, in the server's order, each with its own score."""
    assert [r.index for r in results] == expected_order(QUERY, docs)  # type: ignore[attr-defined]
    for r in results:  # type: ignore[attr-defined]
        assert r.text == docs[r.index]
        assert r.raw_score == pytest.approx(relevance(QUERY, docs[r.index]))


# -- happy path --------------------------------------------------------------------------------


def test_batches_are_split_merged_and_mapped_back(cohere: LoopbackServer) -> None:
    docs = corpus(25)
    results = make(cohere, batch_size=10).rerank(QUERY, docs)
    assert_exact(results, docs)
    bodies = cohere.bodies(PATH)
    assert sorted(len(b["documents"]) for b in bodies) == [5, 10, 10]
    assert sorted(d for b in bodies for d in b["documents"]) == sorted(docs)
    assert results.usage is not None
    assert results.usage["requests"] == 3
    assert results.usage["retries"] == 0
    assert results.usage["search_units"] == 3.0


def test_wire_format_and_auth(cohere: LoopbackServer) -> None:
    make(cohere, max_tokens_per_doc=256, model="rerank-v3.5").rerank(QUERY, corpus(3))
    (request,) = cohere.requests
    assert request.path == PATH
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    body = request.json()
    assert body["model"] == "rerank-v3.5"
    assert body["query"] == QUERY
    assert body["documents"] == corpus(3)
    assert body["max_tokens_per_doc"] == 256


def test_default_batch_is_the_api_limit(cohere: LoopbackServer) -> None:
    docs = [f"doc {i} apples" for i in range(1001)]
    results = make(cohere).rerank(QUERY, docs)
    assert len(results) == 1001
    assert sorted(len(b["documents"]) for b in cohere.bodies(PATH)) == [1, 1000]


def test_batches_go_out_concurrently_within_the_bound(cohere: LoopbackServer) -> None:
    cohere.latency = 0.25
    make(cohere, batch_size=5, max_concurrency=3).rerank(QUERY, corpus(30))
    assert cohere.count(PATH) == 6
    assert cohere.max_in_flight == 3


async def test_async_batches_go_out_concurrently(cohere: LoopbackServer) -> None:
    cohere.latency = 0.25
    await make(cohere, batch_size=5, max_concurrency=4).arerank(QUERY, corpus(30))
    assert cohere.count(PATH) == 6
    assert cohere.max_in_flight == 4


async def test_sync_and_async_give_the_same_results(cohere: LoopbackServer) -> None:
    docs = corpus(40)
    reranker = make(cohere, batch_size=7)
    sync = reranker.rerank(QUERY, docs, top_n=12)
    cohere.push(Reply(503, {"message": "busy"}))  # a retry on the async side changes nothing
    asy = await reranker.arerank(QUERY, docs, top_n=12)
    assert [(r.index, r.score, r.raw_score) for r in sync] == [
        (r.index, r.score, r.raw_score) for r in asy
    ]
    assert [d.index for d in sync.dropped] == [d.index for d in asy.dropped]


def test_duplicates_are_sent_once(cohere: LoopbackServer) -> None:
    docs = ["red apples", "cold orchards", "red apples"]
    results = make(cohere).rerank(QUERY, docs)
    assert cohere.bodies(PATH)[0]["documents"] == ["red apples", "cold orchards"]
    assert dict(results.duplicates) == {2: 0}


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried(cohere: LoopbackServer, status: int) -> None:
    docs = corpus(6)
    cohere.push(Reply(status, {"message": "down"}), Reply(status, {"message": "down"}))
    results = make(cohere).rerank(QUERY, docs)
    assert_exact(results, docs)
    assert cohere.count(PATH) == 3
    assert results.usage is not None and results.usage["retries"] == 2


def test_429_waits_for_retry_after(cohere: LoopbackServer) -> None:
    cohere.push(Reply(429, {"message": "slow down"}, headers={"Retry-After": "0.3"}))
    docs = corpus(4)
    assert_exact(make(cohere).rerank(QUERY, docs), docs)
    first, second = cohere.requests
    assert second.at - first.at >= 0.29  # the server asked for 0.3 s; backoff alone is ~0.01 s


def test_retry_after_ms_header_is_honoured(cohere: LoopbackServer) -> None:
    cohere.push(Reply(503, {"message": "busy"}, headers={"retry-after-ms": "250"}))
    make(cohere).rerank(QUERY, corpus(3))
    first, second = cohere.requests
    assert second.at - first.at >= 0.24


def test_only_the_failed_batch_is_retried(cohere: LoopbackServer) -> None:
    docs = corpus(30)
    cohere.push(Reply(500, {"message": "boom"}))
    results = make(cohere, batch_size=10, max_concurrency=1).rerank(QUERY, docs)
    assert_exact(results, docs)
    assert cohere.count(PATH) == 4  # 3 batches + 1 retry


def test_retries_exhausted_raise_a_typed_error(cohere: LoopbackServer) -> None:
    cohere.push_many(Reply(503, {"message": "service unavailable"}), 10)
    with pytest.raises(RemoteStatusError) as info:
        make(cohere).rerank(QUERY, corpus(3))
    error = info.value
    assert isinstance(error, RerankError)
    assert error.attempts == 4 and error.status_code == 503
    assert cohere.count(PATH) == 4
    message = str(error)
    assert "CohereReranker(model='rerank-v3.5')" in message
    assert "4 attempts" in message and "HTTP 503" in message and "max_retries=3" in message


def test_429_exhausted_is_a_rate_limited_error(cohere: LoopbackServer) -> None:
    cohere.push_many(Reply(429, {"message": "quota"}, headers={"Retry-After": "0"}), 3)
    with pytest.raises(RateLimitedError) as info:
        make(cohere, max_retries=2).rerank(QUERY, corpus(3))
    assert info.value.attempts == 3
    assert cohere.count(PATH) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_4xx_is_not_retried(cohere: LoopbackServer, status: int) -> None:
    cohere.push(Reply(status, {"message": "nope"}))
    with pytest.raises(RemoteStatusError) as info:
        make(cohere).rerank(QUERY, corpus(3))
    assert info.value.attempts == 1 and info.value.status_code == status
    assert "not retryable" in str(info.value)
    assert cohere.count(PATH) == 1


def test_retry_after_longer_than_allowed_fails_at_once(cohere: LoopbackServer) -> None:
    cohere.push(Reply(429, {"message": "come back tomorrow"}, headers={"Retry-After": "86400"}))
    policy = RetryPolicy(max_retries=3, base_delay=0.01, max_retry_after=5.0)
    with pytest.raises(RateLimitedError, match="86400 s"):
        make(cohere, retry=policy, deadline=None).rerank(QUERY, corpus(3))
    assert cohere.count(PATH) == 1


def test_server_error_with_html_body_is_retried(cohere: LoopbackServer) -> None:
    cohere.push(Reply(502, b"<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}))
    docs = corpus(5)
    assert_exact(make(cohere).rerank(QUERY, docs), docs)
    assert cohere.count(PATH) == 2


def test_dropped_connection_is_retried(cohere: LoopbackServer) -> None:
    cohere.push(Reply(drop=True))
    docs = corpus(5)
    assert_exact(make(cohere).rerank(QUERY, docs), docs)
    assert cohere.count(PATH) == 2


def test_connection_refused_is_retried_then_raised() -> None:
    server = LoopbackServer(lambda r: Reply()).start()
    url = server.url
    server.stop()  # nothing listens there any more
    reranker = CohereReranker(api_key=SECRET, base_url=url, retry=FAST, timeout=1.0)
    with pytest.raises(RemoteConnectionError) as info:
        reranker.rerank(QUERY, corpus(3))
    assert info.value.attempts == 4
    assert "connection error" in str(info.value)


# -- timeouts and deadlines --------------------------------------------------------------------


def test_slow_response_times_out_and_is_retried(cohere: LoopbackServer) -> None:
    cohere.push(lambda request, handler: Reply(**{**vars(handler(request)), "delay": 1.5}))
    docs = corpus(5)
    results = make(cohere, timeout=0.3).rerank(QUERY, docs)
    assert_exact(results, docs)
    assert cohere.count(PATH) == 2
    assert results.usage is not None and results.usage["retries"] == 1


def test_timeouts_exhausted_raise_a_timeout_error(cohere: LoopbackServer) -> None:
    cohere.push_many(Reply(200, {"results": []}, delay=1.0), 3)
    with pytest.raises(RemoteTimeoutError) as info:
        make(cohere, timeout=0.2, max_retries=2).rerank(QUERY, corpus(3))
    assert info.value.attempts == 3
    assert "timed out" in str(info.value)


def test_deadline_holds_over_slow_retries(cohere: LoopbackServer) -> None:
    cohere.push_many(Reply(200, {"results": []}, delay=2.0), 10)
    reranker = make(cohere, timeout=0.4, deadline=1.0, max_retries=10)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as info:
        reranker.rerank(QUERY, corpus(3))
    elapsed = time.monotonic() - started
    assert elapsed < 2.5  # generous: the deadline is 1 s
    assert "1 s deadline" in str(info.value)
    assert info.value.attempts >= 2


async def test_deadline_holds_async(cohere: LoopbackServer) -> None:
    cohere.push_many(Reply(200, {"results": []}, delay=2.0), 10)
    reranker = make(cohere, timeout=5.0, deadline=0.5, batch_size=2)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        await reranker.arerank(QUERY, corpus(6))
    assert time.monotonic() - started < 2.0


def test_retry_after_past_the_deadline_fails_fast(cohere: LoopbackServer) -> None:
    cohere.push(Reply(429, {"message": "later"}, headers={"Retry-After": "30"}))
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError, match="HTTP 429") as info:
        make(cohere, deadline=2.0).rerank(QUERY, corpus(3))
    assert time.monotonic() - started < 1.5
    assert info.value.status_code == 429
    assert cohere.count(PATH) == 1


def test_client_rate_limit_spaces_requests(cohere: LoopbackServer) -> None:
    make(cohere, batch_size=2, requests_per_minute=600).rerank(QUERY, corpus(8))
    times = sorted(r.at for r in cohere.requests)
    assert len(times) == 4
    # 600 per minute = one every 0.1 s: the 4th starts >= 0.3 s after the 1st (arrival jitter
    # aside; unlimited, all four would arrive within a few milliseconds)
    assert times[-1] - times[0] >= 0.25


def test_rate_limit_that_would_pass_the_deadline_fails_fast(cohere: LoopbackServer) -> None:
    reranker = make(cohere, batch_size=1, requests_per_minute=6, deadline=1.0, max_concurrency=1)
    with pytest.raises(DeadlineExceededError, match="client rate limit"):
        reranker.rerank(QUERY, corpus(3))
    assert cohere.count(PATH) == 1


# -- malformed answers (never retried, never misattributed) ------------------------------------


def _answer(request: Request, handler: object) -> dict[str, object]:
    return dict(handler(request).body)  # type: ignore[operator]


def test_malformed_json_is_a_malformed_response_error(cohere: LoopbackServer) -> None:
    cohere.push(Reply(200, b'{"results": [{"index": 0, "relevance_'))
    with pytest.raises(MalformedResponseError, match="not valid JSON") as info:
        make(cohere).rerank(QUERY, corpus(3))
    assert info.value.attempts == 1
    assert cohere.count(PATH) == 1


def test_truncated_results_are_rejected(cohere: LoopbackServer) -> None:
    def truncated(request: Request, handler: object) -> Reply:
        body = _answer(request, handler)
        body["results"] = body["results"][:2]  # type: ignore[index]
        return Reply(200, body)

    cohere.push(truncated)
    with pytest.raises(MalformedResponseError, match="3 documents: missing indices"):
        make(cohere).rerank(QUERY, corpus(3))


def test_duplicate_indices_are_rejected(cohere: LoopbackServer) -> None:
    def duplicated(request: Request, handler: object) -> Reply:
        body = _answer(request, handler)
        results = body["results"]
        results[1] = {**results[1], "index": results[0]["index"]}  # type: ignore[index]
        return Reply(200, body)

    cohere.push(duplicated)
    with pytest.raises(MalformedResponseError, match="duplicate indices"):
        make(cohere).rerank(QUERY, corpus(4))


def test_out_of_range_and_non_integer_indices_are_rejected(cohere: LoopbackServer) -> None:
    cohere.push(
        Reply(200, {"results": [{"index": 7, "relevance_score": 0.5}]}),
        Reply(200, {"results": [{"index": "first", "relevance_score": 0.5}]}),
        Reply(200, {"results": [{"index": 0}]}),
    )
    with pytest.raises(MalformedResponseError, match="out-of-range indices \\[7\\]"):
        make(cohere).rerank(QUERY, ["only one"])
    with pytest.raises(MalformedResponseError, match="non-integer indices"):
        make(cohere).rerank(QUERY, ["only one"])
    with pytest.raises(MalformedResponseError, match="no valid relevance_score"):
        make(cohere).rerank(QUERY, ["only one"])


def test_wrong_indices_in_one_batch_fail_the_call(cohere: LoopbackServer) -> None:
    def shifted(request: Request, handler: object) -> Reply:
        body = _answer(request, handler)
        for item in body["results"]:  # type: ignore[attr-defined]
            item["index"] += 1
        return Reply(200, body)

    cohere.push(shifted)
    with pytest.raises(MalformedResponseError, match="batch 1 of 3"):
        make(cohere, batch_size=4, max_concurrency=1).rerank(QUERY, corpus(12))


# -- usage, config, specs ----------------------------------------------------------------------


def test_usage_reported_per_call_success_and_failure(cohere: LoopbackServer) -> None:
    seen: list[Usage] = []
    reranker = make(cohere, batch_size=3, on_usage=seen.append)
    cohere.push(Reply(500, {"message": "x"}))
    results = reranker.rerank(QUERY, corpus(7))
    cohere.push(Reply(401, {"message": "bad key"}))
    with pytest.raises(RemoteStatusError):
        reranker.rerank(QUERY, corpus(2))
    ok, failed = seen
    assert (ok.ok, ok.requests, ok.retries, ok.search_units) == (True, 4, 1, 3.0)
    assert (failed.ok, failed.requests, failed.retries) == (False, 1, 0)
    assert results.usage == ok.as_dict()
    json.dumps(dict(results.usage))  # plain values


def test_a_failing_usage_callback_does_not_break_the_call(cohere: LoopbackServer) -> None:
    def broken(usage: Usage) -> None:
        raise ValueError("callback bug")

    assert len(make(cohere, on_usage=broken).rerank(QUERY, corpus(2))) == 2


def test_key_from_environment(cohere: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    CohereReranker(base_url=cohere.url).rerank(QUERY, corpus(2))
    assert cohere.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_spec_builds_the_reranker(cohere: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    reranker = from_spec(
        f"cohere:rerank-v3.5?base_url={cohere.url}&max_tokens_per_doc=128&batch_size=2"
    )
    assert isinstance(reranker, CohereReranker)
    assert (reranker.model, reranker.max_tokens_per_doc, reranker.batch_size) == (
        "rerank-v3.5",
        128,
        2,
    )
    docs = corpus(5)
    assert_exact(reranker.rerank(QUERY, docs), docs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": 1001},  # over the API limit, official endpoint
        {"max_tokens_per_doc": 0},
        {"model": " "},
        {"timeout": 0},
        {"deadline": -1},
        {"max_concurrency": 0},
        {"requests_per_minute": 0},
        {"max_retries": -1},
        {"retry": "twice"},
        {"on_usage": "print"},
    ],
)
def test_invalid_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        CohereReranker(api_key=SECRET, **kwargs)  # type: ignore[arg-type]


def test_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    monkeypatch.delenv("CO_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="COHERE_API_KEY"):
        CohereReranker()
    assert CohereReranker(base_url="http://127.0.0.1:9").api_key is None  # compatible server


def test_clients_are_created_lazily_and_per_loop(cohere: LoopbackServer) -> None:
    reranker = make(cohere)
    assert not reranker._clients.made
    reranker.rerank(QUERY, corpus(2))
    assert reranker._clients.made
    asyncio.run(reranker.arerank(QUERY, corpus(2)))
    asyncio.run(reranker.arerank(QUERY, corpus(2)))  # a new loop gets a new client
    assert len(reranker._clients.per_loop) == 0  # each was closed with its loop
    reranker.close()
    assert not reranker._clients.made
    assert len(reranker.rerank(QUERY, corpus(2))) == 2  # and it comes back
