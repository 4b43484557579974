"""The one naming scheme of rerankit's Qdrant collections: vector fields and payload keys.

Every rerankit writer (:func:`rerankit.qdrant.ingest`, so the multi-stage retriever, both RAG
builders, ``rerankit eval`` and ``rerankit demo``) lays a point out the same way, and every
reader expects it, so a collection built by one opens in all the others:

* vector fields: ``dense`` (:data:`VECTOR_DENSE`), BM25 sparse ``bm25`` with Qdrant's IDF
  modifier (:data:`VECTOR_BM25`), BM25 over titles ``title_bm25`` (:data:`VECTOR_TITLE_BM25`),
  MaxSim multivector ``multivector`` (:data:`VECTOR_MULTIVECTOR`);
* payload: ``{"text": str, "doc_id": str | None, "metadata": {...}}``
  (:data:`PAYLOAD_TEXT`, :data:`PAYLOAD_DOC_ID`, :data:`PAYLOAD_METADATA`).

These are *vector* names. The stages of a multi-stage search have names of their own
(``"dense"``, ``"sparse"``, ``"fusion"``, ... in :mod:`rerankit.multistage.stages`, as
``STAGE_*``): the sparse *stage* reads the ``bm25`` *field*.

Example:
    >>> from rerankit.qdrant.names import PAYLOAD_TEXT, VECTOR_BM25
    >>> VECTOR_BM25, PAYLOAD_TEXT
    ('bm25', 'text')
"""

from __future__ import annotations

__all__ = [
    "COLLECTION_METADATA_KEY",
    "PAYLOAD_DOC_ID",
    "PAYLOAD_METADATA",
    "PAYLOAD_TEXT",
    "TITLE_KEY",
    "VECTOR_BM25",
    "VECTOR_DENSE",
    "VECTOR_MULTIVECTOR",
    "VECTOR_TITLE_BM25",
]

VECTOR_DENSE = "dense"
"""The dense vector field (one embedding per text)."""
VECTOR_BM25 = "bm25"
"""The BM25 sparse vector field over the text (Qdrant's IDF modifier)."""
VECTOR_TITLE_BM25 = "title_bm25"
"""The BM25 sparse vector field over the title (``metadata["title"]``)."""
VECTOR_MULTIVECTOR = "multivector"
"""The multivector field (one vector per token, compared by MaxSim)."""

PAYLOAD_TEXT = "text"
"""Payload key of the document text."""
PAYLOAD_DOC_ID = "doc_id"
"""Payload key of the document's own id (``None`` when it had none)."""
PAYLOAD_METADATA = "metadata"
"""Payload key of the document's metadata (a JSON object)."""

TITLE_KEY = "title"
"""Metadata key a title field reads."""

COLLECTION_METADATA_KEY = "rerankit"
"""Key of rerankit's entry in a collection's metadata (its fields and BM25 statistics)."""
