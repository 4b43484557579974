"""Collection schemas: which vector fields a collection holds, creating it, checking it.

A :class:`Layout` lists the fields: a :class:`DenseField`, a :class:`SparseField` (BM25 with
Qdrant's IDF modifier, over the text or the title) and a :class:`MultivectorField` (MaxSim),
each optional, named by default as :mod:`rerankit.qdrant.names` says. :func:`create_collection`
makes a collection for a layout (and keeps the BM25 statistics in the collection's metadata);
:func:`check_collection` checks that an existing one has every field, of the right kind, and
returns their sizes, raising typed errors that name the collection and the field.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rerankit.errors import (
    ConfigurationError,
    MissingVectorFieldError,
    VectorDimensionError,
    VectorFieldMismatchError,
)
from rerankit.qdrant.client import qdrant_models
from rerankit.qdrant.names import (
    COLLECTION_METADATA_KEY,
    VECTOR_BM25,
    VECTOR_DENSE,
    VECTOR_MULTIVECTOR,
)
from rerankit.sparse import BM25Encoder

__all__ = [
    "DENSE",
    "MULTIVECTOR",
    "SPARSE",
    "DenseField",
    "Distance",
    "Layout",
    "MultivectorField",
    "SparseField",
    "TextSource",
    "check_collection",
    "check_sizes",
    "create_collection",
    "stored_bm25",
]

Distance = Literal["cosine", "dot"]
TextSource = Literal["text", "title"]
_DISTANCES = ("cosine", "dot")
_SOURCES = ("text", "title")

DENSE = "dense"
SPARSE = "sparse"
MULTIVECTOR = "multivector"
"""Field kinds (what an error's ``kind`` says)."""


def _check_name(owner: str, name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{owner}.vector_name must be a non-empty str, got {name!r}")


def _check_distance(owner: str, distance: object) -> None:
    if distance not in _DISTANCES:
        raise ConfigurationError(f"{owner}.distance must be one of {_DISTANCES}, got {distance!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class DenseField:
    """A dense vector field (one embedding per text).

    Example:
        >>> from rerankit.qdrant import DenseField
        >>> DenseField().vector_name, DenseField(distance="dot").distance
        ('dense', 'dot')
    """

    vector_name: str = VECTOR_DENSE
    distance: Distance = "cosine"

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.vector_name)
        _check_distance(type(self).__name__, self.distance)


@dataclass(frozen=True, kw_only=True)
class SparseField:
    """A BM25 sparse vector field, scored with Qdrant's IDF modifier.

    ``source="text"`` encodes the text, ``"title"`` the ``metadata["title"]``.
    ``avg_doc_len=None`` measures it on the first ingestion and keeps it in the collection.

    Example:
        >>> from rerankit.qdrant import VECTOR_TITLE_BM25, SparseField
        >>> title = SparseField(vector_name=VECTOR_TITLE_BM25, source="title")
        >>> SparseField().vector_name, title.vector_name, title.source
        ('bm25', 'title_bm25', 'title')
    """

    vector_name: str = VECTOR_BM25
    k1: float = 1.2
    b: float = 0.75
    avg_doc_len: float | None = None
    source: TextSource = "text"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _check_name(owner, self.vector_name)
        if not _is_number(self.k1) or self.k1 < 0:
            raise ConfigurationError(f"{owner}.k1 must be a number >= 0, got {self.k1!r}")
        if not _is_number(self.b) or not 0 <= self.b <= 1:
            raise ConfigurationError(f"{owner}.b must be in [0, 1], got {self.b!r}")
        if self.avg_doc_len is not None and (
            not _is_number(self.avg_doc_len) or self.avg_doc_len <= 0
        ):
            raise ConfigurationError(
                f"{owner}.avg_doc_len must be a positive number or None, got {self.avg_doc_len!r}"
            )
        if self.source not in _SOURCES:
            raise ConfigurationError(
                f"{owner}.source must be one of {_SOURCES}, got {self.source!r}"
            )


@dataclass(frozen=True, kw_only=True)
class MultivectorField:
    """A multivector field (one vector per token), compared by MaxSim.

    Example:
        >>> from rerankit.qdrant import MultivectorField
        >>> MultivectorField().vector_name
        'multivector'
    """

    vector_name: str = VECTOR_MULTIVECTOR
    distance: Distance = "dot"

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.vector_name)
        _check_distance(type(self).__name__, self.distance)


@dataclass(frozen=True)
class Layout:
    """The vector fields of a collection (at least one).

    Example:
        >>> from rerankit.qdrant import DenseField, Layout, SparseField
        >>> Layout(dense=DenseField(), sparse=SparseField()).names
        ('dense', 'bm25')
    """

    dense: DenseField | None = None
    sparse: SparseField | None = None
    multivector: MultivectorField | None = None

    def __post_init__(self) -> None:
        if self.dense is None and self.sparse is None and self.multivector is None:
            raise ConfigurationError("a collection needs at least one vector field")
        for value, kind in (
            (self.dense, DenseField),
            (self.sparse, SparseField),
            (self.multivector, MultivectorField),
        ):
            if value is not None and not isinstance(value, kind):
                raise ConfigurationError(f"expected a {kind.__name__} or None, got {value!r}")
        if len(set(self.names)) != len(self.names):
            raise ConfigurationError(f"the vector names must differ, got {list(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        """The fields' names: dense, sparse, multivector (those configured)."""
        return tuple(f.vector_name for f in (self.dense, self.sparse, self.multivector) if f)


def _fields(info: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The collection's dense, multivector and sparse fields, by name."""
    vectors = info.config.params.vectors
    if vectors is None:
        named: dict[str, Any] = {}
    elif isinstance(vectors, Mapping):
        named = dict(vectors)
    else:  # one unnamed vector
        named = {"": vectors}
    dense = {n: p for n, p in named.items() if getattr(p, "multivector_config", None) is None}
    multi = {n: p for n, p in named.items() if n not in dense}
    sparse = dict(info.config.params.sparse_vectors or {})
    return dense, multi, sparse


def check_collection(info: Any, collection: str, layout: Layout) -> dict[str, int]:
    """Check the collection (``info`` from ``get_collection``) against ``layout``; return the
    size of each dense and multivector field, by vector name.

    Raises:
        MissingVectorFieldError: a field is absent (the error names it, and what is there).
        VectorFieldMismatchError: a field has the wrong kind, comparator or modifier.
    """
    models = qdrant_models()
    dense, multi, sparse = _fields(info)
    kinds = {
        **{n: DENSE for n in dense},
        **{n: MULTIVECTOR for n in multi},
        **{n: SPARSE for n in sparse},
    }
    available = [f"{n or '<unnamed>'} ({k})" for n, k in kinds.items()]
    sizes: dict[str, int] = {}

    def need(name: str, kind: str, fields: Mapping[str, Any]) -> Any:
        if name in fields:
            return fields[name]
        if name in kinds:
            raise VectorFieldMismatchError(
                f"Qdrant collection {collection!r}: field {name!r} is a {kinds[name]} field, "
                f"but a {kind} field is needed",
                collection=collection,
                field=name,
                kind=kind,
            )
        raise MissingVectorFieldError(
            collection=collection, field=name, kind=kind, available=available
        )

    if layout.dense is not None:
        name = layout.dense.vector_name
        sizes[name] = int(need(name, DENSE, dense).size)
    if layout.sparse is not None:
        name = layout.sparse.vector_name
        if need(name, SPARSE, sparse).modifier != models.Modifier.IDF:
            raise VectorFieldMismatchError(
                f"Qdrant collection {collection!r}: sparse field {name!r} has no IDF "
                "modifier, which BM25 needs (SparseVectorParams(modifier=Modifier.IDF))",
                collection=collection,
                field=name,
                kind=SPARSE,
            )
    if layout.multivector is not None:
        name = layout.multivector.vector_name
        params = need(name, MULTIVECTOR, multi)
        if params.multivector_config.comparator != models.MultiVectorComparator.MAX_SIM:
            raise VectorFieldMismatchError(
                f"Qdrant collection {collection!r}: multivector field {name!r} does not "
                "compare by MAX_SIM",
                collection=collection,
                field=name,
                kind=MULTIVECTOR,
            )
        sizes[name] = int(params.size)
    return sizes


def check_sizes(
    collection: str, layout: Layout, expected: Mapping[str, int], got: Mapping[str, int]
) -> None:
    """:class:`~rerankit.errors.VectorDimensionError` when an encoder's size (``got``, by
    vector name) differs from the field's (``expected``)."""
    kinds = {}
    if layout.dense is not None:
        kinds[layout.dense.vector_name] = DENSE
    if layout.multivector is not None:
        kinds[layout.multivector.vector_name] = MULTIVECTOR
    for name, size in got.items():
        want = expected.get(name)
        if want is not None and want != size:
            raise VectorDimensionError(
                collection=collection,
                field=name,
                kind=kinds.get(name, DENSE),
                expected=want,
                got=size,
            )


def stored_bm25(info: Any, field: SparseField, texts: Sequence[str] = ()) -> BM25Encoder:
    """The document encoder of ``field``: its ``avg_doc_len`` if set, else the one kept in the
    collection's metadata (``info``; ``None`` for a new collection), else measured on
    ``texts``."""
    avg = field.avg_doc_len
    if avg is None and info is not None:
        metadata = getattr(info.config, "metadata", None) or {}
        entry = metadata.get(COLLECTION_METADATA_KEY) if isinstance(metadata, Mapping) else None
        stats = entry.get("bm25") if isinstance(entry, Mapping) else None
        mine = stats.get(field.vector_name) if isinstance(stats, Mapping) else None
        stored = mine.get("avg_doc_len") if isinstance(mine, Mapping) else None
        avg = float(stored) if isinstance(stored, int | float) and stored > 0 else None
    if avg is None:
        return BM25Encoder.fit(texts, k1=field.k1, b=field.b)
    return BM25Encoder(k1=field.k1, b=field.b, avg_doc_len=avg)


def _accepts(function: Any, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def create_collection(
    client: Any,
    collection: str,
    layout: Layout,
    sizes: Mapping[str, int],
    bm25: BM25Encoder | None,
) -> Any:
    """Create ``collection`` with ``layout``'s fields (dense and multivector of ``sizes``, by
    vector name) and keep ``bm25``'s statistics in its metadata; return its info."""
    models = qdrant_models()
    distance = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT}
    vectors: dict[str, Any] = {}
    fields: dict[str, str] = {}
    if layout.dense is not None:
        name = layout.dense.vector_name
        vectors[name] = models.VectorParams(
            size=sizes[name], distance=distance[layout.dense.distance]
        )
        fields[DENSE] = name
    if layout.multivector is not None:
        name = layout.multivector.vector_name
        vectors[name] = models.VectorParams(
            size=sizes[name],
            distance=distance[layout.multivector.distance],
            multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM
            ),
            # Only used to rescore prefetched points: no HNSW graph needed.
            hnsw_config=models.HnswConfigDiff(m=0),
        )
        fields[MULTIVECTOR] = name
    sparse = None
    entry: dict[str, Any] = {"fields": fields}
    if layout.sparse is not None:
        name = layout.sparse.vector_name
        sparse = {name: models.SparseVectorParams(modifier=models.Modifier.IDF)}
        fields[SPARSE] = name
        if bm25 is not None:
            entry["bm25"] = {
                name: {
                    "k1": bm25.k1,
                    "b": bm25.b,
                    "avg_doc_len": bm25.avg_doc_len,
                    "source": layout.sparse.source,
                }
            }
    extra: dict[str, Any] = {}
    if _accepts(client.create_collection, "metadata"):
        # Collection metadata keeps the BM25 statistics for later ingestions (clients without
        # it fall back to SparseField.avg_doc_len or a placeholder).
        extra["metadata"] = {COLLECTION_METADATA_KEY: entry}
    client.create_collection(
        collection, vectors_config=vectors or {}, sparse_vectors_config=sparse, **extra
    )
    return client.get_collection(collection)
