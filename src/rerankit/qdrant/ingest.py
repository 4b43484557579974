"""The one ingester: every rerankit path writes its documents to Qdrant through :func:`ingest`.

Documents become records (:func:`~rerankit.qdrant.payload.as_records`), each stored at the hash
of its text (:func:`~rerankit.qdrant.point_id`), so ingesting again writes nothing twice and
texts already stored are not encoded again; repeated texts are folded (first kept). Records are
encoded and upserted in batches with a progress bar. The collection is created on first use
with the :class:`~rerankit.qdrant.Layout`'s fields (``recreate=True`` drops it first); an
existing one is checked against the layout first, and an encoder of the wrong size is refused
before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from rerankit._progress import progress_bar
from rerankit.errors import ConfigurationError
from rerankit.qdrant.client import qdrant_models
from rerankit.qdrant.encoding import Encoders
from rerankit.qdrant.names import TITLE_KEY
from rerankit.qdrant.payload import as_records, point_id, to_payload
from rerankit.qdrant.schema import (
    Layout,
    SparseField,
    check_collection,
    check_sizes,
    create_collection,
    stored_bm25,
)
from rerankit.sparse import BM25Encoder
from rerankit.types import Candidate

__all__ = [
    "IngestReport",
    "batched",
    "existing_point_ids",
    "ingest",
    "progress",
    "source_text",
    "unique_by_id",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an ingestion did.

    ``received`` documents came in; ``duplicates`` of them repeated an earlier text (same
    content hash) and were folded; of the rest, ``skipped`` were already stored and
    ``written`` were encoded and upserted. ``point_ids`` holds the point id of every input
    document, in input order.

    Example:
        >>> from rerankit.qdrant import IngestReport
        >>> r = IngestReport(collection="docs", received=3, duplicates=1, skipped=0, written=2,
        ...                  point_ids=("a", "b", "a"))
        >>> r.unique
        2
    """

    collection: str
    received: int
    duplicates: int
    skipped: int
    written: int
    point_ids: tuple[str, ...]

    @property
    def unique(self) -> int:
        """Distinct texts among the inputs."""
        return self.received - self.duplicates


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigurationError(f"batch_size must be a positive int, got {size!r}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def progress(
    *, total: int, desc: str, enabled: bool = True
) -> AbstractContextManager[Callable[[int], None]]:
    """A tqdm progress bar counting documents; yields ``advance(n)``.

    A no-op when ``enabled`` is false or tqdm is not installed.
    """
    return progress_bar(total=total, desc=desc, unit="doc", enabled=enabled)


def existing_point_ids(client: Any, collection: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the collection already holds (none when it does not exist)."""
    if not ids or not client.collection_exists(collection):
        return set()
    found = client.retrieve(collection, ids=list(ids), with_payload=False, with_vectors=False)
    return {str(p.id) for p in found}


def unique_by_id(items: Sequence[T], key: Callable[[T], str]) -> tuple[list[T], list[str]]:
    """``items`` with repeated ids (same content hash) folded, first kept, and their ids."""
    seen: set[str] = set()
    kept: list[T] = []
    ids: list[str] = []
    for item in items:
        pid = key(item)
        if pid in seen:
            continue
        seen.add(pid)
        kept.append(item)
        ids.append(pid)
    return kept, ids


def source_text(record: Candidate, field: SparseField) -> str:
    """The text a sparse field encodes for ``record``: its text, or its title ('' if none)."""
    if field.source == "title":
        title = record.metadata.get(TITLE_KEY)
        return title if isinstance(title, str) else ""
    return record.text


def _check_encoders(layout: Layout, encoders: Encoders) -> None:
    for name, field, encoder in (
        ("dense", layout.dense, encoders.dense),
        ("multivector", layout.multivector, encoders.multivector),
    ):
        if (field is None) != (encoder is None):
            raise ConfigurationError(
                f"the {name} field and the {name} encoder go together: configure both or neither"
            )


def _points(
    todo: Sequence[tuple[Candidate, str]],
    layout: Layout,
    encoders: Encoders,
    bm25: BM25Encoder | None,
) -> tuple[list[Any], dict[str, int]]:
    """The points of ``todo`` and the size of each dense / multivector field, by name."""
    models = qdrant_models()
    dense, tokens = encoders.documents([c.text for c, _ in todo])
    sizes: dict[str, int] = {}
    if dense is not None and layout.dense is not None:
        sizes[layout.dense.vector_name] = len(dense[0])
    if tokens is not None and layout.multivector is not None:
        sizes[layout.multivector.vector_name] = len(tokens[0][0])
    points = []
    for i, (record, pid) in enumerate(todo):
        vector: dict[str, Any] = {}
        if dense is not None and layout.dense is not None:
            vector[layout.dense.vector_name] = dense[i]
        if bm25 is not None and layout.sparse is not None:
            sv = bm25.encode_document(source_text(record, layout.sparse))
            vector[layout.sparse.vector_name] = models.SparseVector(
                indices=sv.indices, values=sv.values
            )
        if tokens is not None and layout.multivector is not None:
            vector[layout.multivector.vector_name] = tokens[i]
        points.append(models.PointStruct(id=pid, vector=vector, payload=to_payload(record)))
    return points, sizes


def ingest(
    client: Any,
    collection: str,
    documents: Sequence[str | Candidate],
    *,
    layout: Layout,
    encoders: Encoders,
    batch_size: int = 64,
    show_progress: bool = True,
    recreate: bool = False,
) -> IngestReport:
    """Write ``documents`` into ``collection`` with every field of ``layout``.

    Each document is a string or a :class:`~rerankit.Candidate` (its ``id`` is kept as
    ``doc_id``, its ``metadata`` in the payload; ``metadata["title"]`` feeds a title field).
    ``encoders`` has an encoder for the dense and the multivector field when the layout has
    them. BM25's average document length is measured on the first ingestion (unless the
    :class:`~rerankit.qdrant.SparseField` sets it) and kept in the collection's metadata.

    Raises:
        InvalidDocumentError: a document is not text, is blank, or cannot be stored (``index``
            says which).
        MissingVectorFieldError: the collection exists without a field of the layout.
        VectorDimensionError: an encoder's vectors differ in size from the collection's.

    Example:
        >>> from rerankit.qdrant import Encoders, Layout, SparseField, ingest, open_client
        >>> client = open_client(path=":memory:")
        >>> report = ingest(client, "docs", ["Qdrant stores vectors.", "Boil pasta."],
        ...                 layout=Layout(sparse=SparseField()), encoders=Encoders(),
        ...                 show_progress=False)
        >>> report.written, client.count("docs").count
        (2, 2)
        >>> client.close()
    """
    if not isinstance(collection, str) or not collection.strip():
        raise ConfigurationError("collection must be a non-empty str")
    if not isinstance(layout, Layout):
        raise ConfigurationError(f"layout must be a Layout, got {type(layout).__name__}")
    _check_encoders(layout, encoders)
    records = as_records(documents)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
    unique, ids = unique_by_id(records, lambda c: point_id(c.text))
    if recreate and client.collection_exists(collection):
        client.delete_collection(collection)
    info = client.get_collection(collection) if client.collection_exists(collection) else None
    expected = check_collection(info, collection, layout) if info is not None else {}
    bm25 = (
        None
        if layout.sparse is None
        else stored_bm25(info, layout.sparse, [source_text(c, layout.sparse) for c in unique])
    )
    written = skipped = 0
    with progress(
        total=len(unique), desc=f"qdrant upsert {collection}", enabled=show_progress
    ) as advance:
        for batch in batched(list(zip(unique, ids, strict=True)), batch_size):
            present = (
                existing_point_ids(client, collection, [pid for _, pid in batch])
                if info is not None
                else set()
            )
            todo = [(c, pid) for c, pid in batch if pid not in present]
            skipped += len(batch) - len(todo)
            if todo:
                points, sizes = _points(todo, layout, encoders, bm25)
                if info is None:
                    info = create_collection(client, collection, layout, sizes, bm25)
                    expected = check_collection(info, collection, layout)
                check_sizes(collection, layout, expected, sizes)
                client.upsert(collection, points=points, wait=True)
                written += len(todo)
            advance(len(batch))
    return IngestReport(
        collection=collection,
        received=len(records),
        duplicates=len(records) - len(unique),
        skipped=skipped,
        written=written,
        point_ids=tuple(point_id(c.text) for c in records),
    )
