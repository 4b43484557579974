"""The two framework faces over one core: parity, the switch, the LCEL step, tracing, fetch_k.

The same reranker and the same input give the same order, scores, metadata and empty reason
through LangChain and LlamaIndex (fusion with the first-stage score included); what the faces
promise beyond the core (child runs, fetch_k reaching the retriever, the async path staying
async) is observed from outside, with fake scorers at the model boundary only.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from pydantic import Field

from rerankit import (
    Candidate,
    ConfigurationError,
    FusionReranker,
    Reranker,
    RerankWarning,
    ScoreBatch,
    ScoreSpace,
)
from rerankit.langchain import RerankCompressor, RerankRetriever, RerankStep
from rerankit.llama_index import RerankPostprocessor

from ._fixtures import CORPUS, OverlapReranker

QUERY = "which database stores vectors and embeddings"


def lc_docs() -> list[Document]:
    return [
        Document(
            page_content=text,
            id=doc_id,
            metadata={"source": doc_id, "retrieval_score": 10.0 - i},
        )
        for i, (doc_id, text) in enumerate(CORPUS)
    ]


def li_nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(
            node=TextNode(text=text, id_=doc_id, metadata={"source": doc_id}), score=10.0 - i
        )
        for i, (doc_id, text) in enumerate(CORPUS)
    ]


def through_langchain(reranker: Reranker | None, **options: Any) -> list[tuple[Any, ...]]:
    out = RerankCompressor(reranker=reranker, **options).compress_documents(lc_docs(), QUERY)
    return [(d.id, d.page_content, d.metadata) for d in out]


def through_llama_index(reranker: Reranker | None, **options: Any) -> list[tuple[Any, ...]]:
    post = RerankPostprocessor(reranker=reranker, **options)
    out = post.postprocess_nodes(li_nodes(), query_bundle=QueryBundle(QUERY))
    return [
        (n.node.node_id, n.node.get_content(metadata_mode=MetadataMode.NONE), n.node.metadata)
        for n in out
    ]


RERANKERS = {
    "overlap": OverlapReranker,
    "fusion-with-first-stage": lambda: FusionReranker(
        [OverlapReranker()], first_stage="retrieval_score"
    ),
    "none": lambda: None,
}


@pytest.mark.parametrize("name", sorted(RERANKERS))
@pytest.mark.parametrize("options", [{}, {"top_n": 2}, {"top_n": 0}])
def test_both_faces_give_the_same_order_scores_and_metadata(
    name: str, options: dict[str, Any]
) -> None:
    langchain = through_langchain(RERANKERS[name](), **options)
    llama_index = through_llama_index(RERANKERS[name](), **options)
    assert langchain == llama_index
    expected = len(CORPUS) if "top_n" not in options else options["top_n"]
    assert len(langchain) == expected
    for doc_id, _, metadata in langchain:
        assert metadata["source"] == doc_id  # the caller's metadata is kept
        assert 0.0 <= metadata["relevance_score"] <= 1.0
        assert metadata["rerank"]["candidates"] == len(CORPUS)
        assert isinstance(metadata["retrieval_score"], float)


def test_the_first_stage_score_reaches_fusion_through_both_faces() -> None:
    # Only the first-stage score separates these documents: both faces must pass it.
    fused = FusionReranker([Flat()], first_stage="retrieval_score")
    langchain = [doc_id for doc_id, _, _ in through_langchain(fused)]
    llama_index = [doc_id for doc_id, _, _ in through_llama_index(fused)]
    assert langchain == llama_index == [doc_id for doc_id, _ in CORPUS]


def test_empty_results_say_why_through_both_faces() -> None:
    compressor = RerankCompressor(reranker=OverlapReranker(), min_score=0.99)
    docs = compressor.compress_documents(lc_docs(), QUERY)
    post = RerankPostprocessor(reranker=OverlapReranker(), min_score=0.99)
    nodes = post.postprocess_nodes(li_nodes(), query_bundle=QueryBundle(QUERY))
    assert list(docs) == [] and list(nodes) == []
    assert docs.empty_reason == nodes.empty_reason
    assert docs.empty_reason is not None and "min_score=0.99" in docs.empty_reason
    assert [d.reason for d in docs.results.dropped] == ["min_score"] * len(CORPUS)


def test_no_reranking_keeps_the_retrieval_order_with_the_same_metadata_shape() -> None:
    kept = through_langchain(None, top_n=3)
    assert [doc_id for doc_id, _, _ in kept] == [doc_id for doc_id, _ in CORPUS[:3]]
    reranked = through_langchain(OverlapReranker(), top_n=3)
    assert [set(m) for _, _, m in kept] == [set(m) for _, _, m in reranked]
    assert {m["rerank"]["backend"] for _, _, m in kept} == {"none"}
    assert {m["rerank"]["score_space"] for _, _, m in kept} == {"rank"}


@pytest.mark.parametrize("build", [RerankCompressor, RerankPostprocessor, RerankStep])
def test_a_threshold_that_cannot_apply_is_refused_when_the_component_is_built(
    build: Any,
) -> None:
    with pytest.raises(ConfigurationError, match="top_n or min_ratio"):
        build(reranker=None, min_score=0.5)
    with pytest.raises(ConfigurationError, match="top_n or min_ratio"):
        build(reranker=FusionReranker([OverlapReranker()], first_stage="x"), min_score=0.5)
    with pytest.raises(ConfigurationError, match="min_score"):
        build(reranker=OverlapReranker(), min_score=2.0)
    with pytest.raises(ConfigurationError, match="unknown"):
        build(reranker="unknown-backend:x")
    build(reranker=None, top_n=2)  # an ordering rule is fine


class Flat(Reranker):
    """Every document scores the same."""

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return ScoreBatch([0.5] * len(candidates))


class AsyncOnly(Reranker):
    """Its sync path fails: a component's async call must never reach it."""

    score_space = ScoreSpace.PROBABILITY

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        raise AssertionError("the sync path was called from an async call")

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return ScoreBatch([len(c.text) / 1000 for c in candidates])


async def test_async_calls_stay_async() -> None:
    compressor = RerankCompressor(reranker=AsyncOnly(), top_n=2)
    docs = await compressor.acompress_documents(lc_docs(), QUERY)
    assert len(docs) == 2
    retriever = RerankRetriever(base_retriever=Listed(docs=lc_docs()), reranker=AsyncOnly())
    assert len(await retriever.ainvoke(QUERY)) == len(CORPUS)
    post = RerankPostprocessor(reranker=AsyncOnly(), top_n=1)
    assert len(await post.apostprocess_nodes(li_nodes(), query_bundle=QueryBundle(QUERY))) == 1
    out = await RerankStep(reranker=AsyncOnly()).ainvoke({"query": QUERY, "documents": docs})
    assert len(out["documents"]) == 2


# -- LangChain tracing -------------------------------------------------------------------------


class Runs(BaseCallbackHandler):
    """Records the chain runs a callback handler sees."""

    def __init__(self) -> None:
        self.started: dict[UUID, tuple[str, Any, UUID | None]] = {}
        self.ended: dict[UUID, Any] = {}

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self.started[run_id] = (kwargs.get("name") or "", inputs, parent_run_id)

    def on_chain_end(self, outputs: dict[str, Any], *, run_id: UUID, **kwargs: Any) -> None:
        self.ended[run_id] = outputs

    def named(self, name: str) -> list[tuple[Any, Any, UUID | None]]:
        return [
            (inputs, self.ended.get(run_id), parent)
            for run_id, (n, inputs, parent) in self.started.items()
            if n == name
        ]


class Listed(BaseRetriever):
    """A first stage that returns its documents in order, ``k`` of them."""

    docs: list[Document]
    k: int = 100
    seen_k: list[int] = Field(default_factory=list)

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        self.seen_k.append(self.k)
        return list(self.docs[: self.k])


@pytest.mark.parametrize("sync", [True, False])
async def test_callback_handlers_see_the_rerank_run(sync: bool) -> None:
    runs = Runs()
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(reranker=OverlapReranker(), top_n=2),
        base_retriever=Listed(docs=lc_docs()),
    )
    config: Any = {"callbacks": [runs]}
    docs = (
        retriever.invoke(QUERY, config=config)
        if sync
        else await retriever.ainvoke(QUERY, config=config)
    )
    [(inputs, outputs, parent)] = runs.named("rerank")
    assert parent is not None  # a child of the retriever's run
    assert inputs == {"query": QUERY, "documents": len(CORPUS)}
    assert [d.id for d in outputs["documents"]] == [d.id for d in docs]
    assert outputs["scores"] == [d.metadata["relevance_score"] for d in docs]
    assert len(outputs["dropped"]) == len(CORPUS) - 2 and outputs["empty_reason"] is None
    assert outputs["timings_ms"]["rerank"] >= outputs["timings_ms"]["score"] >= 0.0


def test_an_empty_result_is_visible_through_contextual_compression(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = Runs()
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(reranker=OverlapReranker(), min_score=0.99),
        base_retriever=Listed(docs=lc_docs()),
    )
    with caplog.at_level(logging.INFO, logger="rerankit"):
        assert retriever.invoke(QUERY, config={"callbacks": [runs]}) == []
    [(_, outputs, _)] = runs.named("rerank")
    assert "min_score=0.99" in outputs["empty_reason"]
    assert any("min_score=0.99" in r.getMessage() for r in caplog.records)


def test_the_retriever_shows_retrieval_and_rerank_as_child_runs() -> None:
    runs = Runs()
    retriever = RerankRetriever(base_retriever=Listed(docs=lc_docs()), reranker=OverlapReranker())
    docs = retriever.invoke(QUERY, config={"callbacks": [runs]})
    [(_, outputs, _)] = runs.named("rerank")
    assert [d.id for d in outputs["documents"]] == [d.id for d in docs]
    assert set(docs.results.timings) == {"retrieve", "score", "rerank"}  # type: ignore[attr-defined]


# -- fetch_k -----------------------------------------------------------------------------------


def test_fetch_k_reaches_a_retriever_with_a_k_field() -> None:
    base = Listed(docs=lc_docs(), k=2, seen_k=[])
    retriever = RerankRetriever(base_retriever=base, reranker=OverlapReranker(), fetch_k=5)
    assert len(retriever.invoke(QUERY)) == 5
    assert len(retriever.invoke(QUERY, fetch_k=3)) == 3
    assert base.seen_k == [5, 3]
    assert base.k == 2  # the caller's retriever is not changed


class Counting:
    """Deterministic embeddings that count documents: 3 dims from the text."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(len(text)), float(text.count("e")), 1.0]


def test_fetch_k_reaches_a_vector_store_retriever() -> None:
    store = InMemoryVectorStore(embedding=Counting())  # type: ignore[arg-type]
    store.add_documents(lc_docs())
    base = store.as_retriever(search_kwargs={"k": 2})
    retriever = RerankRetriever(base_retriever=base, reranker=OverlapReranker(), fetch_k=5)
    docs = retriever.invoke(QUERY)
    assert len(docs) == 5 and docs.results.candidates == 5  # type: ignore[attr-defined]
    assert base.search_kwargs == {"k": 2}


class NoK(BaseRetriever):
    """Takes no k: always returns three documents."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return lc_docs()[:3]


class KwargsOnly(BaseRetriever):
    """Takes keywords: returns ``k`` documents when given one."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: Any, **kwargs: Any
    ) -> list[Document]:
        return lc_docs()[: kwargs.get("k", 1)]


def test_fetch_k_reaches_a_retriever_that_takes_keywords() -> None:
    retriever = RerankRetriever(base_retriever=KwargsOnly(), reranker=OverlapReranker(), fetch_k=4)
    assert len(retriever.invoke(QUERY)) == 4


def test_a_retriever_fetch_k_cannot_reach_gets_a_warning() -> None:
    retriever = RerankRetriever(base_retriever=NoK(), reranker=OverlapReranker(), fetch_k=80)
    with pytest.warns(RerankWarning, match="fetch_k=80 cannot reach NoK"):
        docs = retriever.invoke(QUERY)
    assert len(docs) == 3 and docs.results.candidates == 3  # type: ignore[attr-defined]


# -- the LCEL step ------------------------------------------------------------------------------


def test_the_step_adds_reranking_to_an_existing_chain() -> None:
    retriever = RunnableLambda(lambda q: lc_docs())
    chain = (
        {"query": RunnablePassthrough(), "documents": retriever}
        | RerankStep(reranker=OverlapReranker(), top_n=2)
        | RunnableLambda(lambda state: [d.id for d in state["documents"]])
    )
    direct = RerankCompressor(reranker=OverlapReranker(), top_n=2).compress_documents(
        lc_docs(), QUERY
    )
    assert chain.invoke(QUERY) == [d.id for d in direct]


def test_the_step_keeps_other_keys_and_names_missing_ones() -> None:
    step = RerankStep(reranker=None, query_key="question", documents_key="context")
    out = step.invoke({"question": QUERY, "context": lc_docs(), "extra": 1})
    assert out["extra"] == 1 and [d.id for d in out["context"]] == [d for d, _ in CORPUS]
    with pytest.raises(ConfigurationError, match="question"):
        step.invoke({"query": QUERY, "context": []})
    with pytest.raises(ConfigurationError, match="mapping"):
        step.invoke(QUERY)  # type: ignore[arg-type]


def test_the_switch_works_with_configurable_alternatives() -> None:
    from langchain_core.runnables import ConfigurableField

    step = RerankStep(reranker=OverlapReranker(), top_n=3).configurable_alternatives(
        ConfigurableField(id="rerank"), default_key="on", off=RerankStep(reranker=None, top_n=3)
    )
    state = {"query": QUERY, "documents": lc_docs()}
    on = [d.id for d in step.invoke(state)["documents"]]
    switched = step.with_config(configurable={"rerank": "off"})
    off = [d.id for d in switched.invoke(state)["documents"]]
    assert off == [d for d, _ in CORPUS[:3]]
    assert on == [d.id for d in through_langchain_ids(3)]


def through_langchain_ids(top_n: int) -> list[Document]:
    return list(
        RerankCompressor(reranker=OverlapReranker(), top_n=top_n).compress_documents(
            lc_docs(), QUERY
        )
    )


def test_bad_documents_are_typed_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"documents\[0\] must be a LangChain Document"):
        RerankCompressor(reranker=OverlapReranker()).compress_documents(["a", "b"], QUERY)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match=r"nodes\[1\] must be a NodeWithScore"):
        RerankPostprocessor(reranker=OverlapReranker()).postprocess_nodes(
            [li_nodes()[0], "b"],
            query_bundle=QueryBundle(QUERY),  # type: ignore[list-item]
        )


def test_inputs_are_not_mutated() -> None:
    docs = lc_docs()
    before = [(d.id, dict(d.metadata)) for d in docs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RerankCompressor(reranker=OverlapReranker(), top_n=2).compress_documents(docs, QUERY)
    assert [(d.id, dict(d.metadata)) for d in docs] == before
