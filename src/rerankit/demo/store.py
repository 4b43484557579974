"""The demo's Qdrant collection, built and searched through rerankit's one Qdrant layer.

The built-in corpus goes to the collection ``rerankit-demo`` with a dense (MiniLM) and a BM25
field, so either first stage searches it. A user corpus goes to a collection named after it,
its content hash and the first stage, holding only the field that stage reads (``dense``,
``bm25``, or ``title_bm25`` for titles only), so a cheap first stage never waits for dense
encoding. Ingestion is :func:`rerankit.qdrant.ingest` (idempotent: a second run writes nothing)
and search is a one-prefetch :class:`~rerankit.multistage.QdrantMultiStage`, so the collection
opens in every other rerankit path too.
"""

from __future__ import annotations

from typing import Any, Literal

from rerankit.demo.documents import DemoCorpus
from rerankit.errors import ConfigurationError, DatasetError, InvalidDocumentError
from rerankit.multistage import DenseStage, QdrantMultiStage, SparseStage
from rerankit.qdrant import (
    VECTOR_BM25,
    VECTOR_TITLE_BM25,
    DenseField,
    Encoders,
    Layout,
    SparseField,
    ingest,
)
from rerankit.qdrant.encoding import DenseEncoder

__all__ = [
    "COLLECTION",
    "STAGE1",
    "STAGE1_LABEL",
    "Stage1",
    "build_collection",
    "collection_for",
    "searcher",
]

Stage1 = Literal["bm25", "dense", "title"]
STAGE1: tuple[Stage1, ...] = ("bm25", "dense", "title")
STAGE1_LABEL = {
    "bm25": "BM25 sparse (Qdrant IDF)",
    "dense": "dense MiniLM",
    "title": "BM25 on titles only (Qdrant IDF)",
}
COLLECTION = "rerankit-demo"
"""The built-in corpus's collection."""

_TITLE = SparseField(vector_name=VECTOR_TITLE_BM25, source="title")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40] or "corpus"


def collection_for(corpus: DemoCorpus, stage1: Stage1) -> tuple[str, Layout]:
    """The collection ``corpus`` goes to for ``stage1``, and its fields.

    Raises:
        ConfigurationError: ``stage1`` is ``"title"`` and no document has a title.
    """
    if stage1 == "title" and not corpus.has_titles:
        raise ConfigurationError(
            f"--stage1 title needs documents with titles, and the {corpus.name} has none: pass "
            "--corpus with a JSONL file that has a 'title' field, or a BEIR folder"
        )
    if corpus.builtin:
        return COLLECTION, Layout(dense=DenseField(), sparse=SparseField())
    name = f"{COLLECTION}-{_slug(corpus.name)}-{stage1}-{corpus.fingerprint()}"
    fields = {
        "bm25": Layout(sparse=SparseField()),
        "dense": Layout(dense=DenseField()),
        "title": Layout(sparse=_TITLE),
    }
    return name, fields[stage1]


def build_collection(
    client: Any,
    corpus: DemoCorpus,
    stage1: Stage1,
    *,
    encoder: DenseEncoder,
    show_progress: bool,
) -> str:
    """Ingest ``corpus`` for ``stage1`` (nothing when it is stored already); its collection."""
    collection, layout = collection_for(corpus, stage1)
    try:
        ingest(
            client,
            collection,
            corpus.documents,
            layout=layout,
            encoders=Encoders(dense=encoder if layout.dense is not None else None),
            show_progress=show_progress,
        )
    except InvalidDocumentError as exc:
        doc = corpus.documents[exc.index]
        raise DatasetError(f"{corpus.name}: document {doc.id!r}: {exc}") from exc
    return collection


def searcher(
    client: Any, collection: str, stage1: Stage1, *, fetch_k: int, encoder: DenseEncoder
) -> QdrantMultiStage:
    """The first stage: one prefetch of ``fetch_k`` points on ``stage1``'s field."""
    dense = DenseStage(limit=fetch_k, encoder=encoder) if stage1 == "dense" else None
    sparse = None
    if stage1 == "bm25":
        sparse = SparseStage(limit=fetch_k, vector_name=VECTOR_BM25)
    elif stage1 == "title":
        sparse = SparseStage(limit=fetch_k, vector_name=VECTOR_TITLE_BM25, source="title")
    return QdrantMultiStage(
        collection=collection, client=client, dense=dense, sparse=sparse, trace=False
    )
