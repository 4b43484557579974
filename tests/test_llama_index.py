"""LlamaIndex postprocessor, on the offline MiniLM and a Qdrant-backed index."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langchain_core.documents import Document
from llama_index.core import Document as LIDocument
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms.mock import MockLLM
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from rerankit import ConfigurationError, EmbeddingReranker, RerankError
from rerankit.langchain import RerankCompressor
from rerankit.llama_index import RerankPostprocessor
from rerankit.sentence import default_model, load_sentence_transformer

from ._fixtures import CORPUS, OverlapReranker


class MiniLMEmbedding(BaseEmbedding):
    """Test embed model for the index: the offline MiniLM."""

    def _model(self) -> Any:
        return load_sentence_transformer(default_model(), None, "float32", False, None, "t")

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._model().encode(texts, normalize_embeddings=True).tolist()  # type: ignore[no-any-return]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


class Recorder(BaseEventHandler):
    events: list[Any]

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(
            node=TextNode(text=text, id_=doc_id, metadata={"source": doc_id}),
            score=1.0 - i / 10,
        )
        for i, (doc_id, text) in enumerate(CORPUS)
    ]


@pytest.fixture(scope="module")
def embedding_reranker() -> EmbeddingReranker:
    return EmbeddingReranker()


def test_postprocessor_returns_new_scored_nodes_without_mutation() -> None:
    given = nodes()
    before = copy.deepcopy(given)
    post = RerankPostprocessor(reranker=OverlapReranker(), top_n=2)
    out = post.postprocess_nodes(given, query_str="cross-encoder reranker query passage")
    assert [n.node.node_id for n in out] == ["rerank", "qdrant"]
    assert [(n.node.node_id, n.score, n.node.metadata) for n in given] == [
        (n.node.node_id, n.score, n.node.metadata) for n in before
    ]
    top = out[0]
    assert top is not given[2] and top.node is not given[2].node
    assert isinstance(top.score, float) and top.score == 1.0
    assert top.node.metadata["retrieval_score"] == pytest.approx(0.8)
    assert top.node.metadata["rerank"]["original_rank"] == 2
    assert top.node.metadata["source"] == "rerank"
    # The rerank keys never reach the text an LLM or an embedder sees.
    for mode in (MetadataMode.LLM, MetadataMode.EMBED):
        content = top.node.get_content(metadata_mode=mode)
        assert "retrieval_score" not in content and "original_rank" not in content
        assert "source: rerank" in content
    assert "retrieval_score" not in given[2].node.excluded_llm_metadata_keys


def test_postprocessor_needs_query_and_validates() -> None:
    post = RerankPostprocessor(reranker=OverlapReranker())
    with pytest.raises(RerankError):
        post.postprocess_nodes(nodes())
    with pytest.raises(RerankError):
        RerankPostprocessor(reranker="nope:x")
    with pytest.raises(ConfigurationError, match="top_n"):
        RerankPostprocessor(reranker=OverlapReranker(), top_n=-2)


def test_postprocessor_threshold_can_empty() -> None:
    post = RerankPostprocessor(reranker=OverlapReranker(), min_score=0.9)
    assert post.postprocess_nodes(nodes(), query_str="lattice gauge theory") == []


def test_emits_rerank_instrumentation_events() -> None:
    handler = Recorder(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        RerankPostprocessor(reranker=OverlapReranker(), top_n=3).postprocess_nodes(
            nodes(), query_str="Paris France"
        )
    finally:
        root.event_handlers.remove(handler)
    kinds = [type(e) for e in handler.events]
    assert ReRankStartEvent in kinds and ReRankEndEvent in kinds
    start = next(e for e in handler.events if isinstance(e, ReRankStartEvent))
    end = next(e for e in handler.events if isinstance(e, ReRankEndEvent))
    assert start.top_n == 3 and start.model_name == "word-overlap"
    assert end.nodes[0].node.node_id == "paris"


async def test_sync_equals_async(embedding_reranker: EmbeddingReranker) -> None:
    post = RerankPostprocessor(reranker=embedding_reranker, top_n=4)
    sync = post.postprocess_nodes(nodes(), query_str="vector search engine")
    asyn = await post.apostprocess_nodes(nodes(), query_str="vector search engine")
    assert [(n.node.node_id, n.score) for n in sync] == [(n.node.node_id, n.score) for n in asyn]


def test_same_order_and_scores_as_langchain(embedding_reranker: EmbeddingReranker) -> None:
    query = "how hot should the water be for coffee"
    li = RerankPostprocessor(reranker=embedding_reranker).postprocess_nodes(
        nodes(), query_str=query
    )
    lc = RerankCompressor(reranker=embedding_reranker).compress_documents(
        [Document(page_content=t, id=i) for i, t in CORPUS], query
    )
    assert [n.node.node_id for n in li] == [d.id for d in lc]
    assert [n.score for n in li] == [d.metadata["relevance_score"] for d in lc]


def test_query_engine_over_qdrant(embedding_reranker: EmbeddingReranker) -> None:
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    client = QdrantClient(location=":memory:")
    store = QdrantVectorStore(client=client, collection_name="rerankit-li")
    index = VectorStoreIndex.from_documents(
        [LIDocument(text=t, id_=i, metadata={"source": i}) for i, t in CORPUS],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=MiniLMEmbedding(),
    )
    engine = index.as_query_engine(
        similarity_top_k=5,
        llm=MockLLM(),
        node_postprocessors=[RerankPostprocessor(reranker=embedding_reranker, top_n=2)],
    )
    response = engine.query("what is the capital of France")
    assert len(response.source_nodes) == 2
    top = response.source_nodes[0]
    assert top.node.metadata["source"] == "paris"
    assert "retrieval_score" in top.node.metadata
    assert top.score == top.node.metadata["rerank"]["score"]
    client.close()
