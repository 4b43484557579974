"""What the framework RAG builders share: their options, their argument checks, and ingesting
then opening a collection for a framework's vector store.

:func:`rerankit.langchain.build_qdrant_store` and :func:`rerankit.llama_index.build_qdrant_index`
take the same keyword options (:class:`StoreOptions`), check them here and call
:func:`ingest_and_open`, so the two differ only in the framework objects they build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from rerankit.errors import CollectionNotFoundError, ConfigurationError
from rerankit.qdrant.client import open_client
from rerankit.qdrant.encoding import Encoders
from rerankit.qdrant.ingest import ingest
from rerankit.qdrant.schema import (
    DenseField,
    Layout,
    SparseField,
    check_collection,
    check_sizes,
)
from rerankit.types import Candidate

__all__ = [
    "IngestOptions",
    "OpenedCollection",
    "StoreOptions",
    "check_documents",
    "check_ingest_args",
    "ingest_and_open",
    "text_layout",
]


def check_documents(
    documents: object, *, kinds: type | tuple[type, ...], sequence_of: str, each: str
) -> None:
    """:class:`~rerankit.ConfigurationError` unless ``documents`` is a sequence (not a str) of
    ``kinds`` instances; messages name them as ``sequence_of`` (e.g. "LangChain Documents")
    and ``each`` (e.g. "a LangChain Document")."""
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise ConfigurationError(f"documents must be a sequence of {sequence_of}")
    for index, doc in enumerate(documents):
        if not isinstance(doc, kinds):
            raise ConfigurationError(f"documents[{index}] must be {each}, got {type(doc).__name__}")


def check_ingest_args(
    documents: object,
    *,
    collection: object,
    kinds: type | tuple[type, ...],
    sequence_of: str,
    each: str,
    batch_size: object,
    client: object,
    url: str | None,
    path: str | None,
    api_key: str | None,
) -> None:
    """:class:`~rerankit.ConfigurationError` for bad arguments of a framework's ingestion.

    ``documents`` as :func:`check_documents` says; ``collection`` a non-empty str;
    ``batch_size`` a positive int; and ``client`` excludes ``url``, ``path`` and ``api_key``.
    """
    if not isinstance(collection, str) or not collection.strip():
        raise ConfigurationError("collection must be a non-empty str")
    check_documents(documents, kinds=kinds, sequence_of=sequence_of, each=each)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
    if client is not None and (url is not None or path is not None or api_key is not None):
        raise ConfigurationError("pass either client= or url=/path=/api_key=, not both")


class IngestOptions(TypedDict, total=False):
    """How to ingest (the keyword options every rerankit ingestion takes).

    * ``batch_size`` (default 64): documents encoded and upserted per batch;
    * ``show_progress`` (default ``True``): a progress bar counting documents;
    * ``recreate`` (default ``False``): drop the collection first.

    Example:
        >>> from rerankit.qdrant import IngestOptions
        >>> IngestOptions(batch_size=32, show_progress=False)
        {'batch_size': 32, 'show_progress': False}
    """

    batch_size: int
    show_progress: bool
    recreate: bool


class StoreOptions(IngestOptions, total=False):
    """Where to ingest, and how (the keyword options of the RAG builders).

    Where: ``client`` (a ``QdrantClient``) if given, else a server at ``url`` (with
    ``api_key``), else the embedded store in the folder ``path`` (default: under the cache,
    :func:`rerankit.qdrant.default_qdrant_path`; ``":memory:"`` works). How: as
    :class:`IngestOptions`.

    Example:
        >>> from rerankit.qdrant import StoreOptions
        >>> StoreOptions(path=":memory:", recreate=True)
        {'path': ':memory:', 'recreate': True}
    """

    url: str | None
    path: str | None
    api_key: str | None
    client: Any


@dataclass(frozen=True)
class OpenedCollection:
    """A collection after :func:`ingest_and_open`: the client, whether it was opened there
    (so the caller owns it), the field sizes by vector name and the collection's info.

    Example:
        >>> from rerankit.qdrant import Encoders, Layout, SparseField
        >>> from rerankit.qdrant.stores import ingest_and_open
        >>> opened = ingest_and_open(["Qdrant stores vectors."], collection="docs",
        ...                          layout=Layout(sparse=SparseField()), encoders=Encoders(),
        ...                          path=":memory:", show_progress=False)
        >>> opened.opened, opened.client.count("docs").count
        (True, 1)
        >>> opened.client.close()
    """

    client: Any
    opened: bool
    sizes: dict[str, int]
    info: Any


def ingest_and_open(
    records: Sequence[str | Candidate],
    *,
    collection: str,
    layout: Layout,
    encoders: Encoders,
    client: Any = None,
    url: str | None = None,
    path: str | None = None,
    api_key: str | None = None,
    batch_size: int = 64,
    show_progress: bool = True,
    recreate: bool = False,
) -> OpenedCollection:
    """Ingest ``records`` (none is fine) and check the collection, for a framework's store.

    The arguments are :class:`StoreOptions`. Opens a client for ``url`` / ``path`` unless
    ``client`` is given (and closes it again if anything fails); checks that the dense
    encoder's size fits the collection even when nothing was written.

    Raises:
        ConfigurationError: bad arguments (``collection``, ``batch_size``, both ``client`` and
            ``url`` / ``path`` / ``api_key``).
        CollectionNotFoundError: no documents and no collection to open.
        MissingVectorFieldError: the collection lacks a field of ``layout``.
        VectorDimensionError: the dense encoder's size differs from the collection's.
    """
    check_ingest_args(
        records,
        collection=collection,
        kinds=(str, Candidate),
        sequence_of="str or Candidate",
        each="a str or Candidate",
        batch_size=batch_size,
        client=client,
        url=url,
        path=path,
        api_key=api_key,
    )
    opened = client is None
    if opened:
        client = open_client(url=url, path=path, api_key=api_key)
    try:
        report = ingest(
            client,
            collection,
            records,
            layout=layout,
            encoders=encoders,
            batch_size=batch_size,
            show_progress=show_progress,
            recreate=recreate,
        )
        if not client.collection_exists(collection):
            raise CollectionNotFoundError(collection)
        info = client.get_collection(collection)
        sizes = check_collection(info, collection, layout)
        if not report.written and layout.dense is not None and encoders.dense is not None:
            probe, _ = Encoders(dense=encoders.dense).query("dimension probe")
            if probe is not None:
                check_sizes(collection, layout, sizes, {layout.dense.vector_name: len(probe)})
    except BaseException:
        if opened:
            client.close()
        raise
    return OpenedCollection(client=client, opened=opened, sizes=sizes, info=info)


def text_layout(*, hybrid: bool) -> Layout:
    """The RAG builders' layout: the dense field, plus the BM25 field when ``hybrid``."""
    return Layout(dense=DenseField(), sparse=SparseField() if hybrid else None)
