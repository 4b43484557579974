"""Qdrant for LlamaIndex: ingest with rerankit's one ingester, get a ``VectorStoreIndex``.

:func:`build_qdrant_index` writes documents or nodes through :func:`rerankit.qdrant.ingest`
(batched, with a progress bar, idempotent by content hash) and returns a ``VectorStoreIndex``
over a :class:`RerankitQdrantVectorStore`: LlamaIndex's ``QdrantVectorStore`` configured with
rerankit's vector names (``dense_vector_name``, ``sparse_vector_name``) and reading and writing
rerankit's payload (``text``, ``doc_id``, ``metadata``; :mod:`rerankit.qdrant.names`) instead of
LlamaIndex's own, so the collection also opens in :class:`rerankit.multistage.QdrantMultiStage`,
:func:`rerankit.langchain.build_qdrant_store`, ``rerankit eval`` and ``rerankit demo``, and a
collection built by any of those opens here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.schema import (
    BaseNode,
    MetadataMode,
    NodeRelationship,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import VectorStoreQueryResult

from rerankit._deps import require
from rerankit._typing import Unpack
from rerankit.errors import ConfigurationError
from rerankit.qdrant import (
    MEMORY,
    PAYLOAD_TEXT,
    VECTOR_BM25,
    VECTOR_DENSE,
    Encoders,
    SparseField,
    StoreOptions,
    ingest,
)
from rerankit.qdrant.client import qdrant_client_module
from rerankit.qdrant.payload import from_payload
from rerankit.qdrant.schema import stored_bm25
from rerankit.qdrant.stores import check_documents, ingest_and_open, text_layout
from rerankit.sparse import BM25Encoder
from rerankit.types import Candidate

require(
    "llama_index.vector_stores.qdrant",
    extra="llama-index",
    feature="rerankit.llama_index.store",
    package="llama-index-vector-stores-qdrant",
)

from llama_index.vector_stores.qdrant import QdrantVectorStore  # noqa: E402

__all__ = ["RerankitQdrantVectorStore", "as_records", "build_qdrant_index", "to_text_node"]

_KINDS = "LlamaIndex Documents or nodes"
_EACH = "a LlamaIndex Document or node"


def as_records(nodes: Sequence[BaseNode]) -> list[Candidate]:
    """LlamaIndex documents or nodes as rerankit records: the text without metadata, the
    document id (``ref_doc_id``, else the node's own id) and the metadata (inputs untouched)."""
    check_documents(nodes, kinds=BaseNode, sequence_of=_KINDS, each=_EACH)
    return [
        Candidate(
            node.get_content(metadata_mode=MetadataMode.NONE),
            id=node.ref_doc_id or node.node_id,
            metadata=node.metadata,
        )
        for node in nodes
    ]


def to_text_node(
    point_id: str,
    text: str,
    doc_id: str | None,
    metadata: dict[str, Any],
    *,
    hidden: Sequence[str] = (),
    embedding: list[float] | None = None,
) -> TextNode:
    """The ``TextNode`` of a stored point: its id is the point id (unique), its source the
    document (``ref_doc_id``); ``hidden`` metadata keys are kept out of LLM and embed text."""
    return TextNode(
        id_=point_id,
        text=text,
        metadata=metadata,
        relationships=(
            {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)} if doc_id else {}
        ),
        excluded_llm_metadata_keys=list(hidden),
        excluded_embed_metadata_keys=list(hidden),
        embedding=embedding,
    )


def _bm25_fns(encoder: BM25Encoder) -> tuple[Any, Any]:
    def docs(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        vectors = [encoder.encode_document(t) for t in texts]
        return [v.indices for v in vectors], [v.values for v in vectors]

    def queries(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        vectors = [encoder.encode_query(t) for t in texts]
        return [v.indices for v in vectors], [v.values for v in vectors]

    return docs, queries


class _Embedded:
    """A dense encoder over vectors computed already (LlamaIndex embeds nodes before ``add``)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self._vectors = vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:  # pragma: no cover - ingestion only
        raise ConfigurationError("precomputed embeddings cannot encode a query")


class _EmbedModel:
    """A LlamaIndex embedding model as a rerankit dense encoder."""

    def __init__(self, model: BaseEmbedding) -> None:
        self._model = model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._model.get_text_embedding_batch(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._model.get_query_embedding(text)


class RerankitQdrantVectorStore(QdrantVectorStore):
    """LlamaIndex's ``QdrantVectorStore`` over rerankit's collection layout.

    Queries, hybrid search (BM25 on the ``bm25`` field with rerankit's local encoder), filters
    and deletion by ``ref_doc_id`` are LlamaIndex's; reading a point and :meth:`add` use
    rerankit's payload. A point reads back as a ``TextNode`` whose id is the point id and whose
    ``ref_doc_id`` is the document's own id. Nodes added through the index (``insert``) are
    stored by content hash, with the embedding LlamaIndex computed for them. Metadata lives
    under ``metadata`` in the payload: filter on ``"metadata.<key>"``.

    Example:
        >>> from rerankit.llama_index.store import RerankitQdrantVectorStore
        >>> from rerankit.qdrant import open_client
        >>> client = open_client(path=":memory:")
        >>> store = RerankitQdrantVectorStore(collection_name="docs", client=client)
        >>> store.dense_vector_name, store.text_key
        ('dense', 'text')
        >>> client.close()
    """

    def __init__(
        self,
        *,
        collection_name: str,
        client: Any,
        aclient: Any = None,
        hybrid: bool = False,
        bm25: BM25Encoder | None = None,
        index_doc_id: bool = False,
        batch_size: int = 64,
    ) -> None:
        options: dict[str, Any] = {}
        if hybrid:
            doc_fn, query_fn = _bm25_fns(bm25 or BM25Encoder())
            options = {"sparse_doc_fn": doc_fn, "sparse_query_fn": query_fn}
        super().__init__(
            collection_name=collection_name,
            client=client,
            aclient=aclient,
            batch_size=batch_size,
            enable_hybrid=hybrid,
            index_doc_id=index_doc_id,
            text_key=PAYLOAD_TEXT,
            dense_vector_name=VECTOR_DENSE,
            sparse_vector_name=VECTOR_BM25,
            **options,
        )

    @classmethod
    def class_name(cls) -> str:
        return "RerankitQdrantVectorStore"

    def parse_to_query_result(self, response: list[Any]) -> VectorStoreQueryResult:
        """Points as ``TextNode`` objects (rerankit's payload; others as LlamaIndex reads them)."""
        nodes: list[BaseNode] = []
        similarities: list[float] = []
        ids: list[str] = []
        for point in response:
            payload = point.payload or {}
            if not isinstance(payload.get(PAYLOAD_TEXT), str) or "_node_content" in payload:
                theirs = super().parse_to_query_result([point])
                nodes.extend(theirs.nodes or [])
            else:
                stored = from_payload(payload, collection=self.collection_name, point=point.id)
                vector = point.vector
                embedding = vector.get(VECTOR_DENSE) if isinstance(vector, dict) else None
                nodes.append(
                    to_text_node(
                        str(point.id),
                        stored.text,
                        stored.doc_id,
                        dict(stored.metadata),
                        embedding=embedding,
                    )
                )
            ids.append(str(point.id))
            similarities.append(float(getattr(point, "score", None) or 1.0))
        return VectorStoreQueryResult(nodes=nodes, similarities=similarities, ids=ids)

    def add(
        self, nodes: Sequence[BaseNode], shard_identifier: Any | None = None, **add_kwargs: Any
    ) -> list[str]:
        """Store ``nodes`` (embedded already) in rerankit's layout; return their point ids."""
        if shard_identifier is not None:
            raise ConfigurationError("rerankit's Qdrant store does not write to shards")
        records = as_records(nodes)
        vectors = {}
        for record, node in zip(records, nodes, strict=True):
            if node.embedding is None:
                raise ConfigurationError(f"node {node.node_id} has no embedding to store")
            vectors[record.text] = list(node.embedding)
        report = ingest(
            self.client,
            self.collection_name,
            records,
            layout=text_layout(hybrid=self.enable_hybrid),
            encoders=Encoders(dense=_Embedded(vectors)),
            batch_size=self.batch_size,
            show_progress=False,
        )
        return list(report.point_ids)

    async def async_add(
        self, nodes: Sequence[BaseNode], shard_identifier: Any | None = None, **kwargs: Any
    ) -> list[str]:
        """:meth:`add` in a worker thread."""
        return await asyncio.to_thread(self.add, nodes, shard_identifier)


def _is_embedded(client: Any) -> bool:
    options = getattr(client, "init_options", None) or {}
    return bool(options.get("path")) or options.get("location") == MEMORY


def build_qdrant_index(
    documents: Sequence[BaseNode],
    embed_model: BaseEmbedding,
    *,
    collection: str,
    hybrid: bool = False,
    **options: Unpack[StoreOptions],
) -> VectorStoreIndex:
    """Ingest ``documents`` (Documents or nodes) into Qdrant; return a ``VectorStoreIndex``.

    Where and how: ``options`` (:class:`rerankit.qdrant.StoreOptions`: a ``client``, a server
    ``url`` with ``api_key``, or an embedded ``path``, by default under the cache;
    ``batch_size``, ``show_progress``, ``recreate``). A client opened here belongs to the
    caller: ``index.vector_store.client.close()`` releases an embedded folder.

    Each document becomes one point (split long documents with a node parser first), written
    by :func:`rerankit.qdrant.ingest` in batches with a progress bar: its text (without
    metadata) is embedded and stored at its content hash, so re-running never duplicates
    points and texts already stored are not embedded again. Retrieved nodes have the
    point id as id and the document (a Document's id, a node's ``ref_doc_id`` or own id) as
    ``ref_doc_id``. Inputs are not modified. With no documents, an existing collection is
    opened.

    ``hybrid=True`` adds BM25 sparse vectors (:class:`rerankit.sparse.BM25Encoder`, with
    Qdrant's IDF modifier) so the index can retrieve in ``"hybrid"`` mode.
    ``recreate=True`` drops the collection first.

    Raises:
        CollectionNotFoundError: no documents and no collection to open.
        MissingVectorFieldError: the collection lacks a field (e.g. ``hybrid=True`` on a
            collection built without BM25).
        VectorDimensionError: ``embed_model`` gives vectors of another size than the
            collection's.

    Example:
        >>> from llama_index.core import Document
        >>> from rerankit.llama_index import SentenceTransformerEmbedding, build_qdrant_index
        >>> docs = [Document(text="Qdrant stores vectors.", metadata={"source": "faq"})]
        >>> index = build_qdrant_index(docs, SentenceTransformerEmbedding(), collection="faq",
        ...                            path=":memory:", show_progress=False)
        >>> index.as_retriever().retrieve("vector database")[0].node.metadata["source"]
        'faq'
        >>> index.vector_store.client.close()
    """
    if not isinstance(embed_model, BaseEmbedding):
        raise ConfigurationError("embed_model must be a LlamaIndex BaseEmbedding")
    sparse = SparseField() if hybrid else None
    opened = ingest_and_open(
        as_records(documents),
        collection=collection,
        layout=text_layout(hybrid=hybrid),
        encoders=Encoders(dense=_EmbedModel(embed_model)),
        **options,
    )
    url, api_key = options.get("url"), options.get("api_key")
    try:
        aclient = None
        if url is not None and opened.opened:
            # A server can be reached by an async client too, so aquery() is natively async.
            aclient = qdrant_client_module().AsyncQdrantClient(url=url, api_key=api_key)
        store = RerankitQdrantVectorStore(
            collection_name=collection,
            client=opened.client,
            aclient=aclient,
            hybrid=hybrid,
            bm25=None if sparse is None else stored_bm25(opened.info, sparse),
            index_doc_id=not _is_embedded(opened.client),
            batch_size=options.get("batch_size", 64),
        )
    except BaseException:
        if opened.opened:
            opened.client.close()
        raise
    return VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
