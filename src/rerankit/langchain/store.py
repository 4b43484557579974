"""Qdrant for LangChain: ingest documents with rerankit's one ingester, get a ``QdrantVectorStore``.

:func:`build_qdrant_store` writes LangChain documents through :func:`rerankit.qdrant.ingest`
(batched, with a progress bar, idempotent by content hash) and returns a
``langchain_qdrant.QdrantVectorStore`` configured with rerankit's vector names and payload keys
(:mod:`rerankit.qdrant.names`), so the collection also opens in
:class:`rerankit.multistage.QdrantMultiStage`, :func:`rerankit.llama_index.build_qdrant_index`,
``rerankit eval`` and ``rerankit demo``, and a collection built by any of those opens here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from rerankit._deps import require
from rerankit._typing import Unpack
from rerankit.errors import ConfigurationError
from rerankit.qdrant import (
    PAYLOAD_METADATA,
    PAYLOAD_TEXT,
    VECTOR_BM25,
    VECTOR_DENSE,
    Encoders,
    StoreOptions,
)
from rerankit.qdrant.schema import stored_bm25
from rerankit.qdrant.stores import check_documents, ingest_and_open, text_layout
from rerankit.types import Candidate

__all__ = ["as_records", "build_qdrant_store"]


def as_records(documents: Sequence[Document]) -> list[Candidate]:
    """LangChain documents as rerankit records: ``page_content``, ``id``, ``metadata`` (the
    documents are not modified)."""
    check_documents(
        documents, kinds=Document, sequence_of="LangChain Documents", each="a LangChain Document"
    )
    return [Candidate(d.page_content, id=d.id, metadata=d.metadata) for d in documents]


def build_qdrant_store(
    documents: Sequence[Document],
    embedding: Embeddings,
    *,
    collection: str,
    hybrid: bool = False,
    **options: Unpack[StoreOptions],
) -> Any:
    """Ingest ``documents`` into a Qdrant collection and return its ``QdrantVectorStore``.

    ``options`` say where and how (:class:`rerankit.qdrant.StoreOptions`): ``client``, or
    ``url`` (+ ``api_key``) for a server, or ``path`` for the embedded store (default: under
    the cache; ``":memory:"`` works); ``batch_size``, ``show_progress``, ``recreate``. The
    caller owns a client opened here: ``store.client.close()`` releases an embedded folder.

    Documents go through :func:`rerankit.qdrant.ingest`, batched with a progress bar; each
    point id is the hash of the text, so re-running never duplicates points and texts already
    stored are not embedded again. The payload is rerankit's (``text``, ``doc_id``,
    ``metadata``); a document's own ``id`` is kept as ``doc_id`` and in ``metadata["doc_id"]``
    (of the stored copy; inputs are not modified). With no documents, an existing collection
    is opened.

    ``hybrid=True`` adds BM25 sparse vectors (the ``bm25`` field, Qdrant's IDF modifier) and
    the store retrieves with dense + sparse fusion. ``recreate=True`` drops the collection first.

    Raises:
        CollectionNotFoundError: no documents and no collection to open.
        MissingVectorFieldError: the collection lacks a field (e.g. ``hybrid=True`` on a
            collection built without BM25).
        VectorDimensionError: ``embedding`` gives vectors of another size than the collection's.

    Example:
        >>> from langchain_core.documents import Document
        >>> from rerankit.langchain import SentenceTransformerEmbeddings, build_qdrant_store
        >>> docs = [Document("Qdrant stores vectors.", metadata={"source": "faq"})]
        >>> store = build_qdrant_store(docs, SentenceTransformerEmbeddings(), collection="faq",
        ...                            path=":memory:", show_progress=False)
        >>> store.similarity_search("vector database", k=1)[0].metadata["source"]
        'faq'
        >>> store.client.close()
    """
    require(
        "langchain_qdrant",
        extra="langchain",
        feature="build_qdrant_store",
        package="langchain-qdrant",
    )
    from langchain_qdrant import QdrantVectorStore, RetrievalMode

    from rerankit.langchain.embeddings import BM25SparseEmbeddings

    if not isinstance(embedding, Embeddings):
        raise ConfigurationError("embedding must be a LangChain Embeddings")
    layout = text_layout(hybrid=hybrid)
    opened = ingest_and_open(
        as_records(documents),
        collection=collection,
        layout=layout,
        encoders=Encoders(dense=embedding),
        **options,
    )
    sparse = None
    if layout.sparse is not None:
        # Documents added later through the store get the collection's BM25 statistics.
        encoder = stored_bm25(opened.info, layout.sparse)
        sparse = BM25SparseEmbeddings(k1=encoder.k1, b=encoder.b, avg_doc_len=encoder.avg_doc_len)
    return QdrantVectorStore(
        client=opened.client,
        collection_name=collection,
        embedding=embedding,
        retrieval_mode=RetrievalMode.HYBRID if hybrid else RetrievalMode.DENSE,
        vector_name=VECTOR_DENSE,
        sparse_embedding=sparse,
        sparse_vector_name=VECTOR_BM25,
        content_payload_key=PAYLOAD_TEXT,
        metadata_payload_key=PAYLOAD_METADATA,
        validate_collection_config=False,  # checked above, with rerankit's typed errors
    )
