"""Concurrency: many calls at once on one shared local model equal the same calls made one by one.

Each call reranks a different mix of short and over-long documents, so calls that tokenise at
the same time would see each other's truncation settings if the tokenizer were shared
unguarded (wrong ``truncated`` flags, over-long pairs reaching the model). Compared field by
field with sequential results, several rounds each.
"""

from __future__ import annotations

import asyncio
import random
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from rerankit import (
    CachedReranker,
    CrossEncoderReranker,
    EmbeddingReranker,
    LateInteractionReranker,
    Reranker,
    RerankResults,
    ScoreCache,
    TruncationWarning,
)

pytestmark = pytest.mark.model

WORDS = ["qdrant", "vector", "search", "rerank", "passage", "query", "model", "token", "score"]
ROUNDS = 3


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _calls(n: int, seed: int) -> list[tuple[str, list[str]]]:
    """``n`` (query, documents) calls mixing short documents with ones far over 32 tokens."""
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        docs = [_text(rng, rng.choice([2, 4, 10, 40])) for _ in range(rng.randint(2, 5))]
        calls.append((f"query {i}: " + _text(rng, rng.randint(1, 6)), docs))
    return calls


def _observed(results: RerankResults) -> tuple[object, ...]:
    return (
        [(r.index, r.score, r.raw_score, r.rank, r.truncated, r.windows) for r in results],
        [(d.index, d.score, d.reason) for d in results.dropped],
        results.truncated,
        results.empty_reason,
    )


def _sequential(reranker: Reranker, calls: list[tuple[str, list[str]]]) -> list[object]:
    return [_observed(reranker.rerank(q, docs)) for q, docs in calls]


Factory = Callable[[str, str], Reranker]

FACTORIES: dict[str, Factory] = {
    "cross-encoder": lambda minilm, ce: CrossEncoderReranker(
        model=ce, device="cpu", dtype="float32", max_length=32
    ),
    "embedding": lambda minilm, ce: EmbeddingReranker(model=minilm, device="cpu", max_length=32),
    "late-interaction": lambda minilm, ce: LateInteractionReranker(
        model=minilm, device="cpu", max_length=32
    ),
    "cached-embedding": lambda minilm, ce: CachedReranker(
        reranker=EmbeddingReranker(model=minilm, device="cpu", max_length=32),
        cache=ScoreCache(),
    ),
}


@pytest.fixture(params=sorted(FACTORIES))
def reranker(request: pytest.FixtureRequest, minilm_path: str, cross_encoder_path: str) -> Reranker:
    return FACTORIES[request.param](minilm_path, cross_encoder_path)


@pytest.fixture(autouse=True)
def _no_truncation_warnings() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        yield


def test_threads_equal_sequential(reranker: Reranker) -> None:
    calls = _calls(32, seed=1)
    expected = _sequential(_fresh(reranker), calls)
    for _ in range(ROUNDS):
        with ThreadPoolExecutor(max_workers=32) as pool:
            got = list(pool.map(lambda c: _observed(reranker.rerank(*c)), calls))
        assert got == expected
        if isinstance(reranker, CachedReranker):
            reranker.cache.clear()


async def test_concurrent_arerank_equals_sequential(reranker: Reranker) -> None:
    calls = _calls(64, seed=2)
    expected = _sequential(_fresh(reranker), calls)
    for _ in range(ROUNDS):
        got = await asyncio.gather(*(reranker.arerank(q, docs) for q, docs in calls))
        assert [_observed(r) for r in got] == expected
        if isinstance(reranker, CachedReranker):
            reranker.cache.clear()


def test_micro_batched_threads_equal_sequential(cross_encoder_path: str) -> None:
    batched = CrossEncoderReranker(
        model=cross_encoder_path,
        device="cpu",
        dtype="float32",
        max_length=32,
        micro_batching=True,
    )
    plain = CrossEncoderReranker(
        model=cross_encoder_path, device="cpu", dtype="float32", max_length=32
    )
    calls = _calls(32, seed=7)
    expected = _sequential(plain, calls)
    with ThreadPoolExecutor(max_workers=32) as pool:
        got = list(pool.map(lambda c: _observed(batched.rerank(*c)), calls))
    # Micro-batches pad differently: scores agree to float noise, flags and order exactly.
    for g, e in zip(got, expected, strict=True):
        assert [r[:1] + r[4:] for r in g[0]] == [r[:1] + r[4:] for r in e[0]]
        assert [r[2] for r in g[0]] == pytest.approx([r[2] for r in e[0]], abs=1e-4)
        assert g[2] == e[2]


def _fresh(reranker: Reranker) -> Reranker:
    """An equal reranker for the sequential reference (a cached one with an empty cache)."""
    if isinstance(reranker, CachedReranker):
        return CachedReranker(reranker=reranker.reranker, cache=ScoreCache())
    return reranker
