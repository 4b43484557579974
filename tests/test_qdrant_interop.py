"""One collection, five users: a collection built by any rerankit ingestion path opens and
searches in every other (multi-stage retriever, LangChain store, LlamaIndex index), on embedded
Qdrant and the offline MiniLM; documents added through a framework's own store afterwards are
read by the others too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("langchain_qdrant")
pytest.importorskip("llama_index.vector_stores.qdrant")

from langchain_core.documents import Document as LCDocument
from llama_index.core import Document as LIDocument
from llama_index.core.schema import TextNode

from rerankit.demo.corpus import PASSAGES
from rerankit.langchain import SentenceTransformerEmbeddings, build_qdrant_store
from rerankit.llama_index import SentenceTransformerEmbedding, build_qdrant_index
from rerankit.multistage import DenseStage, FusionStage, QdrantMultiStage, SparseStage
from rerankit.qdrant import open_client, point_id

pytestmark = pytest.mark.model

COLLECTION = "shared"
QUERY = "What water temperature for pour-over coffee?"
EXPECTED = "coffee-1"
TEXTS = dict(PASSAGES)

Found = list[tuple[str, str | None, str | None]]
"""(text, document id, metadata source) of each hit, best first."""


def multistage(client: Any) -> QdrantMultiStage:
    return QdrantMultiStage(
        collection=COLLECTION,
        client=client,
        dense=DenseStage(limit=10),
        sparse=SparseStage(limit=10),
        fusion=FusionStage(method="rrf", limit=5),
    )


# -- builders --------------------------------------------------------------------------------------


def build_multistage(client: Any) -> None:
    from rerankit import Candidate

    docs = [Candidate(t, id=i, metadata={"source": i}) for i, t in PASSAGES]
    assert multistage(client).ingest(docs, show_progress=False).written == len(PASSAGES)


def build_langchain(client: Any) -> None:
    docs = [LCDocument(page_content=t, id=i, metadata={"source": i}) for i, t in PASSAGES]
    build_qdrant_store(
        docs,
        SentenceTransformerEmbeddings(),
        collection=COLLECTION,
        client=client,
        hybrid=True,
        show_progress=False,
    )


def build_llama_index(client: Any) -> None:
    docs = [LIDocument(text=t, id_=i, metadata={"source": i}) for i, t in PASSAGES]
    build_qdrant_index(
        docs,
        SentenceTransformerEmbedding(),
        collection=COLLECTION,
        client=client,
        hybrid=True,
        show_progress=False,
    )


BUILDERS: dict[str, Callable[[Any], None]] = {
    "multistage": build_multistage,
    "langchain": build_langchain,
    "llama_index": build_llama_index,
}


# -- readers ---------------------------------------------------------------------------------------


def read_multistage(client: Any, query: str) -> Found:
    return [(h.text, h.doc_id, h.metadata.get("source")) for h in multistage(client).search(query)]


def read_langchain(client: Any, query: str) -> Found:
    store = build_qdrant_store(
        [], SentenceTransformerEmbeddings(), collection=COLLECTION, client=client, hybrid=True
    )
    return [
        (d.page_content, d.metadata.get("doc_id"), d.metadata.get("source"))
        for d in store.similarity_search(query, k=5)
    ]


def read_llama_index(client: Any, query: str) -> Found:
    index = build_qdrant_index(
        [], SentenceTransformerEmbedding(), collection=COLLECTION, client=client, hybrid=True
    )
    retriever = index.as_retriever(
        similarity_top_k=5, vector_store_query_mode="hybrid", sparse_top_k=5
    )
    return [
        (n.node.get_content(), n.node.ref_doc_id, n.node.metadata.get("source"))
        for n in retriever.retrieve(query)
    ]


READERS: dict[str, Callable[[Any, str], Found]] = {
    "multistage": read_multistage,
    "langchain": read_langchain,
    "llama_index": read_llama_index,
}


@pytest.fixture
def client() -> Iterator[Any]:
    client = open_client(path=":memory:")
    yield client
    client.close()


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("builder", list(BUILDERS))
def test_a_collection_built_by_one_path_opens_in_every_other(
    client: Any, builder: str, reader: str
) -> None:
    BUILDERS[builder](client)
    found = READERS[reader](client, QUERY)
    assert found, (builder, reader)
    text, doc_id, source = found[0]
    assert (text, doc_id, source) == (TEXTS[EXPECTED], EXPECTED, EXPECTED)
    for text, doc_id, source in found:  # every hit keeps its text, id and metadata
        assert doc_id is not None and TEXTS[doc_id] == text and source == doc_id
    assert client.count(COLLECTION).count == len(PASSAGES)


def test_every_builder_writes_the_same_points(client: Any) -> None:
    payloads = {}
    for name, build in BUILDERS.items():
        build(client)
        points, _ = client.scroll(COLLECTION, limit=100, with_payload=True, with_vectors=True)
        payloads[name] = {str(p.id): (p.payload, sorted(p.vector)) for p in points}
        client.delete_collection(COLLECTION)
    assert payloads["multistage"] == payloads["langchain"] == payloads["llama_index"]
    assert set(payloads["multistage"]) == {point_id(t) for _, t in PASSAGES}


def test_documents_added_through_the_framework_stores_are_read_by_the_others(client: Any) -> None:
    build_multistage(client)
    store = build_qdrant_store(
        [], SentenceTransformerEmbeddings(), collection=COLLECTION, client=client, hybrid=True
    )
    store.add_documents(
        [
            LCDocument(
                page_content="Cold brew steeps coarse coffee in cold water overnight.",
                metadata={"source": "lc-added"},
            )
        ]
    )
    index = build_qdrant_index(
        [], SentenceTransformerEmbedding(), collection=COLLECTION, client=client, hybrid=True
    )
    added = TextNode(
        text="Iced pour-over brews hot coffee straight onto ice.", metadata={"source": "li-added"}
    )
    index.insert_nodes([added])
    stored = client.retrieve(COLLECTION, ids=[point_id(added.text)], with_payload=True)[0]
    assert stored.payload["text"] == added.text  # rerankit's layout, at the content hash
    hits = multistage(client).search("cold coffee brewed overnight or onto ice")
    sources = [h.metadata.get("source") for h in hits]
    assert "lc-added" in sources and "li-added" in sources
    nodes = index.as_retriever(similarity_top_k=3).retrieve("coffee onto ice")
    assert "li-added" in [n.node.metadata.get("source") for n in nodes]
