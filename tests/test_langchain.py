"""LangChain components: compressor and retriever, on the offline MiniLM and embedded Qdrant."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rerankit import ConfigurationError, EmbeddingReranker, RerankError, ThresholdPolicy
from rerankit.langchain import RerankCompressor, RerankedDocuments, RerankRetriever
from rerankit.sentence import default_model, load_sentence_transformer

from ._fixtures import CORPUS, OverlapReranker, RetrieverSuiteSettings


class MiniLMEmbeddings(Embeddings):
    """Test embeddings for the vector store: the offline MiniLM."""

    def __init__(self) -> None:
        self.model = load_sentence_transformer(default_model(), None, "float32", False, None, "t")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.encode(texts, normalize_embeddings=True).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class ListRetriever(BaseRetriever):
    """A first stage that returns the corpus in a fixed (bad) order, honouring ``k``."""

    docs: list[Document]
    k: int = 100

    def _get_relevant_documents(
        self, query: str, *, run_manager: Any, **kwargs: Any
    ) -> list[Document]:
        return list(self.docs[: kwargs.get("k", self.k)])


def corpus_docs() -> list[Document]:
    return [
        Document(page_content=text, id=doc_id, metadata={"source": doc_id, "n": i})
        for i, (doc_id, text) in enumerate(CORPUS)
    ]


@pytest.fixture(scope="module")
def embedding_reranker() -> EmbeddingReranker:
    return EmbeddingReranker()


@pytest.fixture(scope="module")
def qdrant_store() -> Any:
    from langchain_qdrant import QdrantVectorStore

    return QdrantVectorStore.from_documents(
        corpus_docs(),
        MiniLMEmbeddings(),
        location=":memory:",
        collection_name="rerankit-test",
        ids=[f"00000000-0000-0000-0000-{i:012d}" for i in range(len(CORPUS))],
    )


def test_compressor_returns_annotated_copies_without_mutation() -> None:
    docs = corpus_docs()
    before = copy.deepcopy(docs)
    compressor = RerankCompressor(reranker=OverlapReranker(), top_n=2)
    out = compressor.compress_documents(docs, "cross-encoder reranker query passage")
    assert [d.id for d in out] == ["rerank", "qdrant"]
    assert docs == before  # inputs untouched, metadata included
    top = out[0]
    assert top is not docs[2]
    assert top.id == "rerank"
    assert isinstance(top.metadata["relevance_score"], float)
    block = top.metadata["rerank"]
    assert block["original_rank"] == 2
    assert block["rank"] == 0
    assert block["backend"] == "overlap"
    assert block["model"] == "word-overlap"
    assert top.metadata["source"] == "rerank"
    assert "relevance_score" not in top.page_content


def test_compressor_threshold_empty_result_carries_reason() -> None:
    compressor = RerankCompressor(reranker=OverlapReranker(), min_score=0.9)
    out = compressor.compress_documents(corpus_docs(), "quantum chromodynamics lattice")
    assert isinstance(out, RerankedDocuments)
    assert list(out) == []
    assert out.empty_reason is not None
    assert "min_score" in out.empty_reason
    assert len(out.results.dropped) == len(CORPUS)


def test_compressor_accepts_spec_string_and_rejects_junk() -> None:
    assert RerankCompressor(reranker="embedding").reranker.backend == "embedding"
    with pytest.raises(RerankError):
        RerankCompressor(reranker="no-such-backend:x")
    with pytest.raises(ConfigurationError, match="reranker"):
        RerankCompressor(reranker=42)
    with pytest.raises(ConfigurationError, match="top_n"):
        RerankCompressor(reranker=OverlapReranker(), top_n=-1)


async def test_compressor_sync_equals_async(embedding_reranker: EmbeddingReranker) -> None:
    compressor = RerankCompressor(reranker=embedding_reranker, top_n=4)
    docs = corpus_docs()
    sync = compressor.compress_documents(docs, "vector search engine")
    asyn = await compressor.acompress_documents(docs, "vector search engine")
    assert [(d.id, d.metadata["relevance_score"]) for d in sync] == [
        (d.id, d.metadata["relevance_score"]) for d in asyn
    ]
    assert sync[0].id == "qdrant"


def test_compressor_in_contextual_compression_retriever(
    qdrant_store: Any, embedding_reranker: EmbeddingReranker
) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever

    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(reranker=embedding_reranker, top_n=2),
        base_retriever=qdrant_store.as_retriever(search_kwargs={"k": 5}),
    )
    docs = retriever.invoke("how do I cook spaghetti")
    assert len(docs) == 2
    assert docs[0].metadata["source"] == "pasta"
    scores = [d.metadata["relevance_score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_compressor_in_lcel_chain(embedding_reranker: EmbeddingReranker) -> None:
    compressor = RerankCompressor(reranker=embedding_reranker, top_n=1)
    docs = corpus_docs()
    chain = RunnableLambda(lambda q: {"q": q, "docs": docs}) | RunnableLambda(
        lambda x: compressor.compress_documents(x["docs"], x["q"])
    )
    out = chain.invoke("capital city of France")
    assert [d.id for d in out] == ["paris"]


def test_retriever_over_qdrant(qdrant_store: Any, embedding_reranker: EmbeddingReranker) -> None:
    retriever = RerankRetriever(
        base_retriever=qdrant_store.as_retriever(),
        reranker=embedding_reranker,
        fetch_k=6,
        top_n=3,
    )
    docs = retriever.invoke("term frequency ranking function")
    assert len(docs) == 3
    assert docs[0].metadata["source"] == "bm25"
    base = {
        d.metadata["_id"]: d for d in qdrant_store.as_retriever(search_kwargs={"k": 6}).invoke("x")
    }
    for d in docs:  # ids and the store's metadata survive reranking
        assert d.id == base[d.metadata["_id"]].id
        assert d.metadata["source"] == base[d.metadata["_id"]].metadata["source"]
    assert len({d.metadata["_id"] for d in docs}) == 3
    one = retriever.invoke("term frequency ranking function", top_n=1)
    assert [d.id for d in one] == [docs[0].id]


def test_retriever_fetch_k_caps_candidates() -> None:
    fake = OverlapReranker()
    retriever = RerankRetriever(
        base_retriever=ListRetriever(docs=corpus_docs()), reranker=fake, fetch_k=2, top_n=None
    )
    out = retriever.invoke("Paris capital France")
    assert len(fake.calls[-1]) == 2
    assert {d.id for d in out} == {"qdrant", "pasta"}


def test_retriever_min_score_and_policy() -> None:
    retriever = RerankRetriever(
        base_retriever=ListRetriever(docs=corpus_docs()),
        reranker=OverlapReranker(),
        top_n=None,
        policy=ThresholdPolicy(min_score=0.99, min_keep=1),
    )
    out = retriever.invoke("Paris capital France unrelated words")
    assert [d.id for d in out] == ["paris"]
    with pytest.raises(RerankError):
        retriever.invoke("x", nonsense=1)


async def test_retriever_sync_equals_async(
    qdrant_store: Any, embedding_reranker: EmbeddingReranker
) -> None:
    retriever = RerankRetriever(
        base_retriever=qdrant_store.as_retriever(), reranker=embedding_reranker, top_n=3
    )
    sync = retriever.invoke("coffee brewing temperature")
    asyn = await retriever.ainvoke("coffee brewing temperature")
    assert [d.id for d in sync] == [d.id for d in asyn]
    assert [d.metadata["relevance_score"] for d in sync] == [
        d.metadata["relevance_score"] for d in asyn
    ]


class TestRerankRetrieverStandard(RetrieverSuiteSettings, RetrieversIntegrationTests):
    """LangChain's standard retriever suite."""

    @property
    def retriever_constructor(self) -> type[RerankRetriever]:
        return RerankRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {
            "base_retriever": ListRetriever(docs=corpus_docs()),
            "reranker": OverlapReranker(),
            "fetch_k": 6,
        }
