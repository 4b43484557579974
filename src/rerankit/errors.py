"""The one exception hierarchy of rerankit, and its warnings.

Every error that rerankit raises on purpose is a :class:`RerankError`, so a caller can catch one
type. Subclasses say what went wrong; messages name the offending input by index.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BackendError",
    "CalibrationError",
    "CalibrationMismatchWarning",
    "CollectionNotFoundError",
    "ConfigurationError",
    "DatasetError",
    "EmptyQueryError",
    "InvalidDocumentError",
    "InvalidQdrantURLError",
    "InvalidQueryError",
    "InvalidScoreError",
    "MissingDependencyError",
    "MissingVectorFieldError",
    "ModelUnavailableError",
    "QdrantStoreLockedError",
    "QdrantUnreachableError",
    "RerankError",
    "RerankWarning",
    "TruncationWarning",
    "UnknownBackendError",
    "VectorDimensionError",
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


class VectorDimensionError(VectorFieldMismatchError):
    """An encoder gives vectors of another size than the collection's field holds.

    ``expected`` is the field's size, ``got`` the encoder's.

    Example:
        >>> from rerankit.errors import VectorDimensionError
        >>> err = VectorDimensionError(collection="docs", field="dense", kind="dense",
        ...                            expected=384, got=768)
        >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
        Qdrant collection 'docs': dense field 'dense' holds 384-dimensional vectors, the encoder
        gives 768: use the encoder the collection was built with, or another collection (or
        recreate=True)
    """

    def __init__(self, *, collection: str, field: str, kind: str, expected: int, got: int) -> None:
        super().__init__(
            f"Qdrant collection {collection!r}: {kind} field {field!r} holds "
            f"{expected}-dimensional vectors, the encoder gives {got}: use the encoder the "
            "collection was built with, "
            "or another collection (or recreate=True)",
            collection=collection,
            field=field,
            kind=kind,
        )
        self.expected = expected
        self.got = got


# -- reaching the Qdrant store (rerankit.qdrant) --------------------------------------------------


class InvalidQdrantURLError(ConfigurationError):
    """A Qdrant server URL that is not ``http(s)://host[:port]``; ``url`` holds it.

    Example:
        >>> from rerankit.errors import InvalidQdrantURLError
        >>> print(InvalidQdrantURLError("notaurl"))  # doctest: +NORMALIZE_WHITESPACE
        Qdrant URL 'notaurl' is malformed: expected http://host:port or https://host:port
        (e.g. http://localhost:6333)
    """

    def __init__(self, url: str, reason: str = "") -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"Qdrant URL {url!r} is malformed{detail}: expected http://host:port or "
            "https://host:port (e.g. http://localhost:6333)"
        )
        self.url = url


class QdrantUnreachableError(RerankError, ConnectionError):
    """No Qdrant server answered at ``url`` within the probe's timeout; ``reason`` says why.

    Example:
        >>> from rerankit.errors import QdrantUnreachableError
        >>> err = QdrantUnreachableError("http://localhost:9", "connection refused", timeout=3)
        >>> err.url, "cannot reach a Qdrant server" in str(err)
        ('http://localhost:9', True)
    """

    def __init__(self, url: str, reason: str, *, timeout: float) -> None:
        super().__init__(
            f"cannot reach a Qdrant server at {url} ({reason}; timeout {timeout:g} s): start "
            "the server, check the URL, or drop the URL (--qdrant-url / url=) to use the "
            "embedded store"
        )
        self.url = url
        self.reason = reason


class QdrantStoreLockedError(RerankError, RuntimeError):
    """The embedded Qdrant folder ``path`` is open in another client.

    Embedded (local) Qdrant locks its folder: one client at a time, in this process or another.
    ``holder_pid`` is the process holding the lock when it could be found (else ``None``).

    Example:
        >>> from rerankit.errors import QdrantStoreLockedError
        >>> err = QdrantStoreLockedError("/tmp/store", holder_pid=4242, holder="python demo.py")
        >>> err.holder_pid
        4242
        >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
        the embedded Qdrant store /tmp/store is open in another client (process 4242: python
        demo.py): close that client, or pass another path (--qdrant-path / path=) or
        ':memory:', or use a Qdrant server (--qdrant-url / url=)
    """

    def __init__(
        self,
        path: str,
        *,
        holder_pid: int | None = None,
        holder: str | None = None,
        same_process: bool = False,
    ) -> None:
        if same_process:
            who = " in this process (client.close() it, or pass that client as client=)"
        elif holder_pid is not None:
            who = f" (process {holder_pid}" + (f": {holder})" if holder else ")")
        else:
            who = ""
        super().__init__(
            f"the embedded Qdrant store {path} is open in another client{who}: close that "
            "client, or pass another path (--qdrant-path / path=) or ':memory:', or use a "
            "Qdrant server (--qdrant-url / url=)"
        )
        self.path = path
        self.holder_pid = holder_pid


# -- warnings -------------------------------------------------------------------------------------


class RerankWarning(UserWarning):
    """Base class of rerankit's warnings."""


class TruncationWarning(RerankWarning):
    """Some documents were longer than the model's window and were truncated."""


class CalibrationMismatchWarning(RerankWarning):
    """A fitted calibration was loaded onto a model other than the one it was fitted for."""
