"""rerankit's one Qdrant layer: clients, the collection schema, one ingester. Framework-free.

Every rerankit path that writes to or reads from Qdrant goes through here: the multi-stage
retriever (:class:`rerankit.multistage.QdrantMultiStage`), the RAG builders
(:func:`rerankit.langchain.build_qdrant_store`, :func:`rerankit.llama_index.build_qdrant_index`),
``rerankit eval`` and ``rerankit demo``. They share one naming scheme
(:mod:`rerankit.qdrant.names`: vector fields ``dense``, ``bm25``, ``title_bm25``,
``multivector``; payload ``text``, ``doc_id``, ``metadata``), so a collection built by any of
them opens in all the others.

* :mod:`~rerankit.qdrant.client`: :func:`open_client` (embedded store by default, under
  :func:`cache_dir`; ``url=`` for a server) with typed errors for a malformed or unreachable
  URL and a locked folder; :class:`QdrantClients` (client lifecycle).
* :mod:`~rerankit.qdrant.schema`: :class:`Layout` of :class:`DenseField`,
  :class:`SparseField`, :class:`MultivectorField`; creating and checking collections.
* :mod:`~rerankit.qdrant.payload`: records, payloads and content-hash point ids
  (:func:`point_id`).
* :mod:`~rerankit.qdrant.encoding`: the encoder protocols and :class:`Encoders`.
* :mod:`~rerankit.qdrant.ingest`: :func:`ingest`, idempotent and batched with a progress bar;
  :mod:`~rerankit.qdrant.stores`: what the framework builders share on top of it.

``qdrant-client`` and ``tqdm`` are imported when used (``pip install 'rerankit[qdrant]'``).

Example:
    >>> from rerankit.qdrant import (DenseField, Encoders, Layout, SparseField, ingest,
    ...                              open_client, point_id)
    >>> point_id("Qdrant stores vectors.") == point_id("Qdrant stores vectors.")
    True
    >>> client = open_client(path=":memory:")
    >>> report = ingest(client, "docs", ["Qdrant stores vectors."],
    ...                 layout=Layout(sparse=SparseField()), encoders=Encoders(),
    ...                 show_progress=False)
    >>> report.written
    1
    >>> client.close()
"""

from rerankit.qdrant.client import (
    MEMORY,
    QdrantClients,
    cache_dir,
    default_qdrant_path,
    open_client,
)
from rerankit.qdrant.encoding import DenseEncoder, Encoders, MultivectorEncoder
from rerankit.qdrant.ingest import IngestReport, ingest
from rerankit.qdrant.names import (
    PAYLOAD_DOC_ID,
    PAYLOAD_METADATA,
    PAYLOAD_TEXT,
    VECTOR_BM25,
    VECTOR_DENSE,
    VECTOR_MULTIVECTOR,
    VECTOR_TITLE_BM25,
)
from rerankit.qdrant.payload import point_id
from rerankit.qdrant.schema import (
    DenseField,
    Layout,
    MultivectorField,
    SparseField,
    check_collection,
    create_collection,
)
from rerankit.qdrant.stores import IngestOptions, StoreOptions

__all__ = [
    "MEMORY",
    "PAYLOAD_DOC_ID",
    "PAYLOAD_METADATA",
    "PAYLOAD_TEXT",
    "VECTOR_BM25",
    "VECTOR_DENSE",
    "VECTOR_MULTIVECTOR",
    "VECTOR_TITLE_BM25",
    "DenseEncoder",
    "DenseField",
    "Encoders",
    "IngestOptions",
    "IngestReport",
    "Layout",
    "MultivectorEncoder",
    "MultivectorField",
    "QdrantClients",
    "SparseField",
    "StoreOptions",
    "cache_dir",
    "check_collection",
    "create_collection",
    "default_qdrant_path",
    "ingest",
    "open_client",
    "point_id",
]
