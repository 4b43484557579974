"""``rerank_batch``: several queries at once equal the same calls one by one, and the local
backends share their model passes across the queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from rerankit import (
    CachedReranker,
    Candidate,
    ConfigurationError,
    CrossEncoderReranker,
    EmbeddingReranker,
    FusionReranker,
    LateInteractionReranker,
    Reranker,
    RerankResults,
    ScoreCache,
    ThresholdPolicy,
)

from ._fixtures import CORPUS, OverlapReranker, snapshot

QUERIES = ["which database stores vectors", "how long to boil pasta", "capital of France"]
DOCS: list[list[str | Candidate]] = [
    [text for _, text in CORPUS],
    [CORPUS[1][1], CORPUS[1][1], Candidate(CORPUS[3][1], id="paris")],  # a duplicate
    [],  # no documents: an empty result, no model call
]


def one_by_one(reranker: Reranker, **kwargs: Any) -> list[RerankResults]:
    return [reranker.rerank(q, d, **kwargs) for q, d in zip(QUERIES, DOCS, strict=True)]


@pytest.mark.parametrize(
    "kwargs", [{}, {"top_n": 1}, {"policy": ThresholdPolicy(min_score=0.2, min_keep=1)}]
)
async def test_a_batch_equals_the_calls_one_by_one(kwargs: dict[str, Any]) -> None:
    reranker = OverlapReranker()
    expected = [snapshot(r) for r in one_by_one(reranker, **kwargs)]
    assert [snapshot(r) for r in reranker.rerank_batch(QUERIES, DOCS, **kwargs)] == expected
    got = await reranker.arerank_batch(QUERIES, DOCS, **kwargs)
    assert [snapshot(r) for r in got] == expected
    assert got[2].empty_reason == "no documents"


def test_bad_batches_are_configuration_errors() -> None:
    reranker = OverlapReranker()
    with pytest.raises(ConfigurationError, match="2 queries but 1 document lists"):
        reranker.rerank_batch(["a", "b"], [["x"]])
    with pytest.raises(ConfigurationError, match="queries must be a list"):
        reranker.rerank_batch("a", [["x"]])  # type: ignore[arg-type]
    assert reranker.rerank_batch([], []) == []


class Counting:
    """Wraps a sentence-transformers model and counts its ``encode`` calls (the model boundary)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls = 0

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.model.encode(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def close(a: Sequence[RerankResults], b: Sequence[RerankResults]) -> None:
    """The same results up to float noise from other batch shapes."""
    for x, y in zip(a, b, strict=True):
        assert [r.index for r in x] == [r.index for r in y]
        assert [r.raw_score for r in x] == pytest.approx([r.raw_score for r in y], abs=1e-4)
        assert [(r.truncated, r.windows) for r in x] == [(r.truncated, r.windows) for r in y]
        assert dict(x.duplicates) == dict(y.duplicates)


@pytest.mark.model
@pytest.mark.parametrize("backend", [EmbeddingReranker, LateInteractionReranker])
async def test_the_embedding_backends_encode_once_per_batch(
    backend: type[EmbeddingReranker | LateInteractionReranker], minilm_path: str
) -> None:
    reranker = backend(model=minilm_path, device="cpu", max_length=32)
    expected = one_by_one(reranker)
    counting = Counting(reranker.loaded_model())
    reranker.use_model(counting)
    close(reranker.rerank_batch(QUERIES, DOCS), expected)
    assert counting.calls == 2  # every document once, then every query once
    close(await reranker.arerank_batch(QUERIES, DOCS), expected)


@pytest.mark.model
def test_the_cross_encoder_scores_a_batch_like_single_calls(cross_encoder_path: str) -> None:
    reranker = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="float32")
    close(reranker.rerank_batch(QUERIES, DOCS), one_by_one(reranker))


def test_composites_batch_through_their_members() -> None:
    fused = FusionReranker([OverlapReranker(), OverlapReranker()], method="rrf")
    assert [snapshot(r) for r in fused.rerank_batch(QUERIES, DOCS)] == [
        snapshot(r) for r in one_by_one(fused)
    ]
    inner = OverlapReranker()
    cached = CachedReranker(reranker=inner, cache=ScoreCache(), pointwise=True)
    first = cached.rerank_batch(QUERIES, DOCS)
    calls = len(inner.calls)
    again = cached.rerank_batch(QUERIES, DOCS)
    assert len(inner.calls) == calls  # every pair came from the cache
    assert [snapshot(r) for r in again] == [snapshot(r) for r in first]
    assert [snapshot(r) for r in first] == [snapshot(r) for r in one_by_one(OverlapReranker())]


class RecordsBatches(OverlapReranker):
    """Records each ``_score_many`` call (how many queries shared it)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def _score_many(self, requests: Sequence[tuple[str, Sequence[Candidate]]]) -> list[Any]:
        self.batches.append(len(requests))
        return super()._score_many(requests)


async def test_the_langchain_retriever_batches_its_queries() -> None:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from rerankit.langchain import RerankRetriever

    class Listed(BaseRetriever):
        k: int = 10

        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
            return [Document(t, id=i) for i, t in CORPUS][: self.k]

    class Starts(BaseCallbackHandler):
        def __init__(self) -> None:
            self.names: list[str] = []

        def on_retriever_start(self, serialized: Any, query: str, **kwargs: Any) -> None:
            self.names.append(kwargs.get("name") or "")

    reranker = RecordsBatches()
    retriever = RerankRetriever(base_retriever=Listed(), reranker=reranker, fetch_k=4, top_n=2)
    expected = [[d.id for d in retriever.invoke(q)] for q in QUERIES]
    reranker.batches.clear()
    starts = Starts()
    got = retriever.batch(QUERIES, config={"callbacks": [starts]})
    assert [[d.id for d in docs] for docs in got] == expected
    assert reranker.batches == [3]  # one shared call for the three queries
    assert starts.names.count("RerankRetriever") == 3  # each query is a run of its own
    assert all(d.metadata["rerank"]["candidates"] == 4 for docs in got for d in docs)
    again = await retriever.abatch(QUERIES)
    assert [[d.id for d in docs] for docs in again] == expected and reranker.batches == [3, 3]
