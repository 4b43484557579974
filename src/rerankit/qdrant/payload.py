"""The records rerankit writes to Qdrant and reads back: validation, payloads, point ids.

A record is a :class:`~rerankit.Candidate`: its ``text`` (stored and encoded), its ``id`` (the
document's own id, kept as ``doc_id``) and its ``metadata``. The payload is
``{"text": ..., "doc_id": ..., "metadata": {...}}`` (:mod:`rerankit.qdrant.names`). The
document's own id is also kept in the stored metadata as ``doc_id`` unless the metadata has that
key already, so readers that see only the metadata (LangChain's ``QdrantVectorStore``) still
see it; :func:`from_payload` takes that copy out again. The point id is the hash of the text
(:func:`point_id`), which makes ingestion idempotent.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rerankit.errors import ConfigurationError, InvalidDocumentError
from rerankit.qdrant.names import PAYLOAD_DOC_ID, PAYLOAD_METADATA, PAYLOAD_TEXT, TITLE_KEY
from rerankit.types import Candidate

__all__ = ["StoredDocument", "as_records", "from_payload", "point_id", "to_payload"]


def point_id(text: str) -> str:
    """A stable point id from the content hash, so re-running never duplicates points.

    Example:
        >>> from rerankit.qdrant import point_id
        >>> point_id("hello")
        '2cf24dba-5fb0-a30e-26e8-3b2ac5b9e29e'
    """
    return str(uuid.UUID(hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]))


def _check_unicode(value: str, index: int, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidDocumentError(
            f"document {index}: its {what} is not valid Unicode (a lone surrogate "
            f"{value[exc.start]!r} at position {exc.start}); clean it first, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8')",
            index=index,
        ) from None


def as_records(documents: object) -> list[Candidate]:
    """``documents`` (str or :class:`~rerankit.Candidate` each) as checked records.

    Raises:
        ConfigurationError: ``documents`` is not a sequence (or is a single str).
        InvalidDocumentError: a document is not text, is blank, has a non-str id or title, or
            holds text that cannot be stored (a lone surrogate); ``index`` says which.

    Example:
        >>> from rerankit.qdrant.payload import as_records
        >>> [r.text for r in as_records(["Qdrant stores vectors."])]
        ['Qdrant stores vectors.']
    """
    if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
        raise ConfigurationError("documents must be a sequence of str or Candidate")
    out = []
    for index, doc in enumerate(documents):
        if isinstance(doc, str):
            cand = Candidate(doc)
        elif isinstance(doc, Candidate) and isinstance(doc.text, str):
            cand = doc
        else:
            raise InvalidDocumentError(
                f"document {index}: expected str or Candidate with str text, got "
                f"{type(doc).__name__}",
                index=index,
            )
        if not cand.text.strip():
            raise InvalidDocumentError(f"document {index}: the text is blank", index=index)
        _check_unicode(cand.text, index, "text")
        if cand.id is not None:
            if not isinstance(cand.id, str):
                raise InvalidDocumentError(
                    f"document {index}: id must be a str or None, got {type(cand.id).__name__}",
                    index=index,
                )
            _check_unicode(cand.id, index, "id")
        title = cand.metadata.get(TITLE_KEY)
        if title is not None:
            if not isinstance(title, str):
                raise InvalidDocumentError(
                    f"document {index}: metadata[{TITLE_KEY!r}] must be a str, got "
                    f"{type(title).__name__}",
                    index=index,
                )
            _check_unicode(title, index, "title")
        out.append(cand)
    return out


def to_payload(record: Candidate) -> dict[str, Any]:
    """The payload of ``record``: text, doc_id and metadata (see the module docstring)."""
    metadata = dict(record.metadata)
    if record.id is not None:
        metadata.setdefault(PAYLOAD_DOC_ID, record.id)
    return {PAYLOAD_TEXT: record.text, PAYLOAD_DOC_ID: record.id, PAYLOAD_METADATA: metadata}


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A point's document as rerankit stored it: text, own id, metadata (read-only).

    Example:
        >>> from rerankit import Candidate
        >>> from rerankit.qdrant.payload import from_payload, to_payload
        >>> stored = from_payload(to_payload(Candidate("Qdrant", id="d1", metadata={"s": 1})),
        ...                       collection="docs", point="p1")
        >>> stored.text, stored.doc_id, dict(stored.metadata)
        ('Qdrant', 'd1', {'s': 1})
    """

    text: str
    doc_id: str | None
    metadata: Mapping[str, Any]


def from_payload(
    payload: Mapping[str, Any] | None, *, collection: str, point: Any
) -> StoredDocument:
    """The document in a point's ``payload``.

    Raises:
        ConfigurationError: the payload has no ``text`` (the point was written by something
            else than rerankit's ingestion).
    """
    payload = payload or {}
    text = payload.get(PAYLOAD_TEXT)
    if not isinstance(text, str):
        raise ConfigurationError(
            f"Qdrant point {point} in {collection!r} has no {PAYLOAD_TEXT!r} text in its "
            "payload: the collection was not built by rerankit's ingestion (rerankit.qdrant."
            "ingest, QdrantMultiStage.ingest or a rerankit RAG builder)"
        )
    raw_id = payload.get(PAYLOAD_DOC_ID)
    doc_id = None if raw_id is None else str(raw_id)
    stored = payload.get(PAYLOAD_METADATA)
    metadata = dict(stored) if isinstance(stored, Mapping) else {}
    if doc_id is not None and metadata.get(PAYLOAD_DOC_ID) == doc_id:
        del metadata[PAYLOAD_DOC_ID]
    return StoredDocument(text, doc_id, MappingProxyType(metadata))
