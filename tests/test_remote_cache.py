"""Remote rerankers behind the score cache: pointwise declarations and fingerprints."""

from __future__ import annotations

import json

import pytest

from rerankit import (
    CachedReranker,
    CohereReranker,
    ConfigurationError,
    HTTPReranker,
    LLMReranker,
    RetryPolicy,
    ScoreCache,
)
from rerankit.cache import score_fingerprint
from rerankit.remote import RemoteReranker
from tests.loopback import FakeOpenAI, LoopbackServer
from tests.loopback.data import FAST, QUERY, SECRET, corpus, leaked

pytest_plugins = ["tests.loopback.fixtures"]


def cohere_reranker(server: LoopbackServer, **kwargs: object) -> CohereReranker:
    options: dict[str, object] = {"api_key": SECRET, "base_url": server.url, "retry": FAST}
    return CohereReranker(**{**options, **kwargs})  # type: ignore[arg-type]


# -- pointwise declarations ----------------------------------------------------------------------


def test_pointwise_declarations() -> None:
    assert CohereReranker.pointwise is True
    assert HTTPReranker.pointwise is True
    judge = LLMReranker(model="m", base_url="http://127.0.0.1:9/v1")
    ranker = LLMReranker(model="m", base_url="http://127.0.0.1:9/v1", mode="listwise")
    assert judge.pointwise is True and ranker.pointwise is False
    CachedReranker(reranker=judge)
    with pytest.raises(ConfigurationError, match="not pointwise"):
        CachedReranker(reranker=ranker)


# -- a repeated query skips the server ----------------------------------------------------------


def test_cached_cohere_skips_the_server(cohere: LoopbackServer) -> None:
    docs = corpus(6)
    cached = CachedReranker(reranker=cohere_reranker(cohere), cache=ScoreCache())
    first = cached.rerank(QUERY, docs)
    assert cohere.count("/v2/rerank") == 1
    again = cached.rerank(QUERY, docs)
    assert cohere.count("/v2/rerank") == 1  # nothing reached the server
    assert [(r.index, r.raw_score, r.score) for r in again] == [
        (r.index, r.raw_score, r.score) for r in first
    ]
    assert cached.cache.hits == 6
    more = cached.rerank(QUERY, [*docs, "a new document about red apples"])
    assert cohere.count("/v2/rerank") == 2
    assert cohere.bodies("/v2/rerank")[-1]["documents"] == ["a new document about red apples"]
    assert len(more) == 7


async def test_cached_cohere_skips_the_server_async(cohere: LoopbackServer) -> None:
    docs = corpus(4)
    cached = CachedReranker(reranker=cohere_reranker(cohere))
    first = await cached.arerank(QUERY, docs)
    again = await cached.arerank(QUERY, docs)
    assert cohere.count("/v2/rerank") == 1
    assert [r.raw_score for r in again] == [r.raw_score for r in first]


def test_a_cache_is_shared_across_traffic_settings(cohere: LoopbackServer) -> None:
    """Timeouts, retries, limits, batch sizes and the key do not change scores."""
    cache = ScoreCache()
    docs = corpus(5)
    CachedReranker(reranker=cohere_reranker(cohere), cache=cache).rerank(QUERY, docs)
    other = cohere_reranker(
        cohere,
        api_key="another-key",
        timeout=9.0,
        deadline=None,
        retry=RetryPolicy(max_retries=1),
        requests_per_minute=600.0,
        max_concurrency=2,
        batch_size=2,
    )
    CachedReranker(reranker=other, cache=cache).rerank(QUERY, docs)
    assert cohere.count("/v2/rerank") == 1
    changed = cohere_reranker(cohere, max_tokens_per_doc=64)  # changes scores: a new entry
    CachedReranker(reranker=changed, cache=cache).rerank(QUERY, docs)
    assert cohere.count("/v2/rerank") == 2


def test_cached_tei_skips_the_server(tei: LoopbackServer) -> None:
    docs = corpus(40)
    cached = CachedReranker(reranker=HTTPReranker(url=tei.url, retry=FAST))
    cached.rerank(QUERY, docs)
    assert tei.count("/rerank") == 2  # 32 + 8
    cached.rerank(QUERY, docs)
    assert tei.count("/rerank") == 2


def test_cached_pointwise_llm_skips_the_server(
    openai_server: tuple[LoopbackServer, FakeOpenAI],
) -> None:
    server, _ = openai_server
    judge = LLMReranker(model="m", api_key=SECRET, base_url=server.url + "/v1", retry=FAST)
    cached = CachedReranker(reranker=judge)
    cached.rerank(QUERY, corpus(3))
    cached.rerank(QUERY, corpus(3))
    assert server.count("/v1/chat/completions") == 3  # one judgement per document, once


# -- fingerprints ------------------------------------------------------------------------------


def _builders(url: str) -> dict[str, RemoteReranker]:
    return {
        "cohere": CohereReranker(api_key=SECRET, base_url="http://127.0.0.1:9"),
        "http": HTTPReranker(
            url=f"https://user:{SECRET}@{url.removeprefix('http://')}",
            api_key=SECRET,
            headers={"X-Api-Key": SECRET},
        ),
        "llm": LLMReranker(
            model="m",
            api_key=SECRET,
            base_url="http://127.0.0.1:9/v1",
            default_headers={"api-key": SECRET},
            default_query={"key": SECRET},
        ),
    }


@pytest.mark.parametrize("name", ["cohere", "http", "llm"])
def test_the_key_is_never_a_fingerprint_input(name: str) -> None:
    reranker = _builders("http://127.0.0.1:9")[name]
    inputs = reranker.cache_fingerprint()
    assert not leaked(json.dumps(inputs, default=repr))
    assert "api_key" not in inputs
    assert inputs["backend"] == reranker.backend and inputs["model"] == reranker.model_name


def test_fingerprint_inputs_leave_out_traffic_settings() -> None:
    reranker = LLMReranker(model="m", base_url="http://127.0.0.1:9/v1", timeout=5.0)
    inputs = reranker.cache_fingerprint()
    for name in (
        "timeout",
        "deadline",
        "max_retries",
        "retry",
        "requests_per_minute",
        "max_concurrency",
        "batch_size",
    ):
        assert name not in inputs
    assert inputs["mode"] == "pointwise" and inputs["top_logprobs"] == 5
    assert inputs["url"] == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("cls", "base", "same", "different"),
    [
        (
            CohereReranker,
            {"api_key": SECRET},
            {"api_key": "other", "timeout": 1.0, "batch_size": 10, "max_retries": 0},
            {"max_tokens_per_doc": 128},
        ),
        (
            CohereReranker,
            {"api_key": SECRET},
            {"deadline": None, "requests_per_minute": 10.0, "max_concurrency": 1},
            {"model": "rerank-english-v3.0"},
        ),
        (
            HTTPReranker,
            {"url": "http://gpu-1:8080"},
            {"api_key": SECRET, "batch_size": 4, "max_retries": 1},
            {"raw_scores": True},
        ),
        (
            HTTPReranker,
            {"url": "http://gpu-1:8080"},
            {"retry": RetryPolicy(max_retries=0), "dedupe": False},
            {"url": "http://gpu-2:8080"},
        ),
        (
            LLMReranker,
            {"model": "m", "base_url": "http://h/v1"},
            {"api_key": SECRET, "timeout": 1.0, "max_concurrency": 1},
            {"top_logprobs": 3},
        ),
        (
            LLMReranker,
            {"model": "m", "base_url": "http://h/v1"},
            {"deadline": 5.0},
            {"max_document_chars": 100},
        ),
    ],
)
def test_fingerprint_follows_scores_only(
    cls: type[RemoteReranker],
    base: dict[str, object],
    same: dict[str, object],
    different: dict[str, object],
) -> None:
    reference = score_fingerprint(cls(**base))  # type: ignore[arg-type]
    assert score_fingerprint(cls(**{**base, **same})) == reference  # type: ignore[arg-type]
    assert score_fingerprint(cls(**{**base, **different})) != reference  # type: ignore[arg-type]
