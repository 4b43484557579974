"""HTTPReranker: Text Embeddings Inference and Cohere-compatible (Infinity) servers over httpx."""

from __future__ import annotations

import math
import time

import pytest

from rerankit import (
    ConfigurationError,
    DeadlineExceededError,
    HTTPReranker,
    MalformedResponseError,
    RemoteStatusError,
    ScoreSpace,
    from_spec,
)
from rerankit.registry import parse_spec
from tests.loopback import LoopbackServer, Reply, Request, expected_order, relevance
from tests.loopback.data import FAST, QUERY, SECRET, corpus

pytest_plugins = ["tests.loopback.fixtures"]


def make(server: LoopbackServer, **kwargs: object) -> HTTPReranker:
    options: dict[str, object] = {"url": server.url, "retry": FAST, "timeout": 2.0}
    options.update(kwargs)
    return HTTPReranker(**options)  # type: ignore[arg-type]


def assert_exact(results: object, docs: list[str]) -> None:
    assert [r.index for r in results] == expected_order(QUERY, docs)  # type: ignore[attr-defined]
    for r in results:  # type: ignore[attr-defined]
        assert r.text == docs[r.index]
        assert r.score == pytest.approx(relevance(QUERY, docs[r.index]), rel=1e-6)


# -- TEI ---------------------------------------------------------------------------------------


def test_tei_batches_of_32_by_default(tei: LoopbackServer) -> None:
    docs = corpus(70)
    results = make(tei, api="tei").rerank(QUERY, docs)
    assert_exact(results, docs)
    bodies = tei.bodies("/rerank")
    assert sorted(len(b["texts"]) for b in bodies) == [6, 32, 32]
    body = bodies[0]
    assert body["raw_scores"] is False and body["truncate"] is True
    assert body["query"] == QUERY and "documents" not in body
    assert results.usage is not None and results.usage["requests"] == 3


def test_tei_raw_scores_are_logits_calibrated_by_sigmoid(tei: LoopbackServer) -> None:
    docs = corpus(10)
    reranker = make(tei, raw_scores=True)
    assert reranker.score_space is ScoreSpace.LOGIT
    assert make(tei).score_space is ScoreSpace.PROBABILITY  # other instances are untouched
    results = reranker.rerank(QUERY, docs)
    assert_exact(results, docs)
    for r in results:
        p = relevance(QUERY, docs[r.index])
        assert r.raw_score == pytest.approx(math.log(p / (1 - p)))


def test_tei_batch_over_the_server_limit_is_not_retried(tei: LoopbackServer) -> None:
    with pytest.raises(RemoteStatusError, match="HTTP 413: batch size 40") as info:
        make(tei, batch_size=40).rerank(QUERY, corpus(40))
    assert info.value.attempts == 1
    assert tei.count("/rerank") == 1


def test_tei_auth_and_extra_headers(tei: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TEI_KEY", SECRET)
    make(tei, api_key_env="MY_TEI_KEY", headers={"X-Tenant": "blue"}).rerank(QUERY, ["a"])
    (request,) = tei.requests
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.headers["x-tenant"] == "blue"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_tei_retries(tei: LoopbackServer, status: int) -> None:
    tei.push(Reply(status, {"error": "Model is overloaded", "error_type": "overloaded"}))
    docs = corpus(5)
    assert_exact(make(tei).rerank(QUERY, docs), docs)
    assert tei.count("/rerank") == 2


def test_tei_malformed_and_inconsistent_answers(tei: LoopbackServer) -> None:
    tei.push(
        Reply(200, b"[{"),
        Reply(200, [{"index": 0, "score": 0.9}, {"index": 0, "score": 0.1}]),
        Reply(200, [{"index": 0, "score": 0.9}]),
        Reply(200, {"unexpected": True}),
    )
    reranker = make(tei)
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        reranker.rerank(QUERY, ["a", "b"])
    with pytest.raises(MalformedResponseError, match="duplicate indices \\[0\\]"):
        reranker.rerank(QUERY, ["a", "b"])
    with pytest.raises(MalformedResponseError, match="missing indices \\[1\\]"):
        reranker.rerank(QUERY, ["a", "b"])
    with pytest.raises(MalformedResponseError, match="expected a list"):
        reranker.rerank(QUERY, ["a", "b"])
    assert tei.count("/rerank") == 4  # none retried


def test_tei_timeout_then_deadline(tei: LoopbackServer) -> None:
    tei.push_many(Reply(200, [], delay=2.0), 10)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        make(tei, timeout=0.3, deadline=0.7, max_retries=10).rerank(QUERY, ["a", "b"])
    assert time.monotonic() - started < 2.0


async def test_tei_sync_and_async_agree(tei: LoopbackServer) -> None:
    docs = corpus(50)
    reranker = make(tei, batch_size=8)
    sync = reranker.rerank(QUERY, docs)
    asy = await reranker.arerank(QUERY, docs)
    assert [(r.index, r.score) for r in sync] == [(r.index, r.score) for r in asy]
    await reranker.aclose()


# -- Cohere-compatible (Infinity) --------------------------------------------------------------


def test_cohere_api_wire_format_and_usage(infinity: LoopbackServer) -> None:
    docs = corpus(12)
    reranker = make(infinity, api="cohere", model="BAAI/bge-reranker-v2-m3", batch_size=5)
    results = reranker.rerank(QUERY, docs)
    assert_exact(results, docs)
    bodies = infinity.bodies("/rerank")
    assert len(bodies) == 3
    assert {b["model"] for b in bodies} == {"BAAI/bge-reranker-v2-m3"}
    assert all(b["top_n"] == len(b["documents"]) for b in bodies)
    assert all(b["return_documents"] is False for b in bodies)
    assert results.usage is not None and results.usage["input_tokens"] > 0
    assert results.model == "BAAI/bge-reranker-v2-m3"


def test_cohere_api_path_is_kept_when_given(infinity: LoopbackServer) -> None:
    reranker = make(infinity, url=infinity.url + "/v2/rerank", api="cohere")
    reranker.rerank(QUERY, ["a", "b"])
    assert infinity.requests[0].path == "/v2/rerank"


def test_cohere_api_wrong_indices(infinity: LoopbackServer) -> None:
    def wrong(request: Request, handler: object) -> Reply:
        body = handler(request).body  # type: ignore[operator]
        body["results"][0]["index"] = 42
        return Reply(200, body)

    infinity.push(wrong)
    with pytest.raises(MalformedResponseError, match="out-of-range indices \\[42\\]"):
        make(infinity, api="cohere").rerank(QUERY, corpus(3))


# -- specs and config --------------------------------------------------------------------------


def test_spec_with_the_url_in_the_model_slot(tei: LoopbackServer) -> None:
    spec = f"http:{tei.url}?api=tei&batch_size=4"
    assert parse_spec(spec)[1] == tei.url
    reranker = from_spec(spec)
    assert isinstance(reranker, HTTPReranker)
    assert reranker.url == tei.url + "/rerank" and reranker.batch_size == 4
    docs = corpus(9)
    assert_exact(reranker.rerank(QUERY, docs), docs)


def test_spec_with_a_served_model(infinity: LoopbackServer) -> None:
    first = from_spec(f"http:bge-m3?url={infinity.url}&api=cohere")
    second = from_spec(f"http:{infinity.url}?api=cohere&served_model=bge-m3")
    for reranker in (first, second):
        assert isinstance(reranker, HTTPReranker)
        assert (reranker.model, reranker.url) == ("bge-m3", infinity.url + "/rerank")
    with pytest.raises(ConfigurationError, match="needs a URL"):
        from_spec("http")


def test_credentials_in_the_url_are_hidden() -> None:
    reranker = HTTPReranker(url=f"https://user:{SECRET}@gpu-1:8443/rerank", api="tei")
    assert SECRET not in repr(reranker) and SECRET not in str(reranker.to_config())
    assert reranker.url == "https://gpu-1:8443/rerank"
    assert reranker._redact(f"echo {SECRET}") == "echo **********"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "ftp://host"},
        {"url": "not a url"},
        {"url": "http://h", "api": "grpc"},
        {"url": "http://h", "batch_size": 0},
        {"url": "http://h", "api": "cohere", "raw_scores": True},
        {"url": "http://h", "truncate": "yes"},
        {"url": "http://h", "headers": {"X": 1}},
    ],
)
def test_invalid_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        HTTPReranker(**kwargs)  # type: ignore[arg-type]
