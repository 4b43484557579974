"""Typed errors of the multi-stage retriever: every one is a :class:`~rerankit.ConfigurationError`
(so a :class:`~rerankit.RerankError`), and each names the collection and the field at fault."""

from __future__ import annotations

from collections.abc import Sequence

from rerankit.errors import ConfigurationError

__all__ = [
    "CollectionNotFoundError",
    "MissingVectorFieldError",
    "VectorFieldError",
    "VectorFieldMismatchError",
]


class CollectionNotFoundError(ConfigurationError):
    """The Qdrant collection does not exist (ingest documents first).

    Example:
        >>> from rerankit.multistage import CollectionNotFoundError
        >>> err = CollectionNotFoundError("docs")
        >>> err.collection, str(err)
        ('docs', "Qdrant collection 'docs' does not exist: ingest documents into it first")
    """

    def __init__(self, collection: str) -> None:
        super().__init__(
            f"Qdrant collection {collection!r} does not exist: ingest documents into it first"
        )
        self.collection = collection


class VectorFieldError(ConfigurationError):
    """A vector field the configuration needs is absent or unusable.

    ``field`` is the vector name, ``kind`` what the stage needs (``"dense"``, ``"sparse"`` or
    ``"multivector"``) and ``collection`` the collection.
    """

    def __init__(self, message: str, *, collection: str, field: str, kind: str) -> None:
        super().__init__(message)
        self.collection = collection
        self.field = field
        self.kind = kind


class MissingVectorFieldError(VectorFieldError):
    """The collection has no vector field of the configured name and kind.

    ``available`` lists the fields the collection has, as ``name (kind)``.

    Example:
        >>> from rerankit.multistage import MissingVectorFieldError
        >>> err = MissingVectorFieldError(collection="docs", field="colbert", kind="multivector",
        ...                               available=["dense (dense)"])
        >>> err.field
        'colbert'
        >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
        Qdrant collection 'docs' has no multivector field 'colbert' (it has: dense (dense));
        ingest with this configuration into a new collection, or pass recreate=True
    """

    def __init__(
        self, *, collection: str, field: str, kind: str, available: Sequence[str] = ()
    ) -> None:
        have = ", ".join(available) if available else "no vector fields"
        super().__init__(
            f"Qdrant collection {collection!r} has no {kind} field {field!r} "
            f"(it has: {have}); ingest with this configuration into a new collection, "
            "or pass recreate=True",
            collection=collection,
            field=field,
            kind=kind,
        )
        self.available = tuple(available)


class VectorFieldMismatchError(VectorFieldError):
    """The field exists but does not fit the stage (wrong kind, size, comparator or modifier)."""
