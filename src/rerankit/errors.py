"""The one exception hierarchy of rerankit, and its warnings.

Every error that rerankit raises on purpose is a :class:`RerankError`, so a caller can catch one
type. Subclasses say what went wrong; messages name the offending input by index.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BackendError",
    "CalibrationError",
    "CollectionNotFoundError",
    "ConfigurationError",
    "DatasetError",
    "EmptyQueryError",
    "InvalidDocumentError",
    "InvalidQueryError",
    "InvalidScoreError",
    "MissingDependencyError",
    "MissingVectorFieldError",
    "ModelUnavailableError",
    "RerankError",
    "RerankWarning",
    "TruncationWarning",
    "UnknownBackendError",
    "VectorFieldError",
    "VectorFieldMismatchError",
]


class RerankError(Exception):
    """Base class of every error rerankit raises."""


class ConfigurationError(RerankError, ValueError):
    """A constructor or call argument is invalid (negative ``top_n``, unknown dtype, ...)."""


class InvalidQueryError(RerankError, TypeError):
    """The query is not a string."""


class EmptyQueryError(RerankError, ValueError):
    """The query is empty or only whitespace."""


class InvalidDocumentError(RerankError, TypeError):
    """A document is not text (or a :class:`~rerankit.Candidate` holding text).

    ``index`` is the position of the offending document in the input.
    """

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


class CalibrationError(RerankError, ValueError):
    """A calibration produced a score that is not a finite number in [0, 1]."""


class UnknownBackendError(ConfigurationError):
    """A backend spec names no registered backend."""


class MissingDependencyError(RerankError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'rerankit[{extra}]'"
        )
        self.package = package
        self.extra = extra


class ModelUnavailableError(ConfigurationError):
    """A local model cannot be loaded: no such folder, no such hub model, or the hub is out of
    reach (or ``HF_HUB_OFFLINE`` is set) and the model is not cached.

    ``model`` is the model as given. The message says how to make it available.
    """

    def __init__(self, model: str, feature: str, why: str) -> None:
        super().__init__(
            f"{feature} cannot load the model {model!r}: {why}. Make it available by passing "
            "a local folder (model='/path/to/model'), by downloading it into the Hugging Face "
            "cache on a machine with access (huggingface-cli download <model>, then copy "
            "~/.cache/huggingface), or by unsetting HF_HUB_OFFLINE where the hub is reachable"
        )
        self.model = model


class BackendError(RerankError, RuntimeError):
    """A backend failed to score (model error, remote failure, malformed answer)."""


class InvalidScoreError(BackendError, CalibrationError):
    """A backend returned a score that is not a finite number (``None``, text, ``NaN``, ...).

    ``index`` is the input position of the document; ``backend`` names the reranker.
    """

    def __init__(self, message: str, *, index: int, backend: str) -> None:
        super().__init__(message)
        self.index = index
        self.backend = backend


class DatasetError(ConfigurationError):
    """An evaluation input (dataset folder, run file, qrels) is missing or malformed.

    The message names the file and, for a malformed line, its line number.
    """


# -- multi-stage retrieval (rerankit.multistage): each names the collection and the field ---------


class CollectionNotFoundError(ConfigurationError):
    """The Qdrant collection does not exist (ingest documents first).

    Example:
        >>> from rerankit.errors import CollectionNotFoundError
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
        >>> from rerankit.errors import MissingVectorFieldError
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


# -- warnings -------------------------------------------------------------------------------------


class RerankWarning(UserWarning):
    """Base class of rerankit's warnings."""


class TruncationWarning(RerankWarning):
    """Some documents were longer than the model's window and were truncated."""
