"""Qdrant helpers shared by the demo and the RAG ingestion: clients, point ids, batched upserts.

The embedded store is the default and lives under a cache folder (``$XDG_CACHE_HOME/rerankit``
or ``~/.cache/rerankit``); ``url=`` reaches a Qdrant server instead. Point ids are content
hashes (:func:`point_id`), so ingesting the same text twice writes one point.

This module imports no framework; ``qdrant-client`` and ``tqdm`` are imported when used.
The LangChain and LlamaIndex ingestion functions built on it are
:func:`rerankit.langchain.build_qdrant_store` and :func:`rerankit.llama_index.build_qdrant_index`.

Example:
    >>> from rerankit.qdrant import open_client, point_id
    >>> point_id("Qdrant stores vectors.") == point_id("Qdrant stores vectors.")
    True
    >>> client = open_client(path=":memory:")
    >>> client.collection_exists("docs")
    False
    >>> client.close()
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from rerankit._deps import require
from rerankit._progress import progress_bar
from rerankit.errors import ConfigurationError

__all__ = [
    "MEMORY",
    "batched",
    "cache_dir",
    "check_ingest_args",
    "default_qdrant_path",
    "existing_point_ids",
    "open_client",
    "point_id",
    "progress",
    "qdrant_client_module",
    "qdrant_models",
    "unique_by_id",
    "upsert_missing",
]

T = TypeVar("T")

MEMORY = ":memory:"
"""Pass as ``path`` for an in-memory embedded store."""


def point_id(text: str) -> str:
    """A stable point id from the content hash, so re-running never duplicates points.

    Example:
        >>> from rerankit.qdrant import point_id
        >>> point_id("hello")
        '2cf24dba-5fb0-a30e-26e8-3b2ac5b9e29e'
    """
    return str(uuid.UUID(hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]))


def cache_dir() -> Path:
    """rerankit's cache folder: ``$XDG_CACHE_HOME/rerankit``, else ``~/.cache/rerankit``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rerankit"


def default_qdrant_path(name: str = "qdrant") -> str:
    """Folder of an embedded Qdrant store under :func:`cache_dir` (not created here)."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ConfigurationError(f"name must be a plain folder name, got {name!r}")
    return str(cache_dir() / name)


def qdrant_client_module() -> Any:
    """``qdrant_client``, or :class:`~rerankit.MissingDependencyError` naming the extra."""
    return require(
        "qdrant_client", extra="qdrant", feature="The Qdrant store", package="qdrant-client"
    )


def qdrant_models() -> Any:
    """``qdrant_client.models``, or :class:`~rerankit.MissingDependencyError` naming the extra."""
    return require(
        "qdrant_client.models", extra="qdrant", feature="The Qdrant store", package="qdrant-client"
    )


def open_client(
    *, url: str | None = None, path: str | None = None, api_key: str | None = None
) -> Any:
    """A Qdrant client: a server at ``url``, else the embedded store at ``path``.

    ``path=None`` is the default cache folder (:func:`default_qdrant_path`), created if needed;
    ``path=":memory:"`` keeps the store in memory. An embedded folder can be open in one client
    at a time: close it (``client.close()``) before opening it again.
    """
    qdrant_client = qdrant_client_module()
    if url:
        return qdrant_client.QdrantClient(url=url, api_key=api_key)
    if api_key is not None:
        raise ConfigurationError("api_key needs url= (the embedded store has no key)")
    if path == MEMORY:
        return qdrant_client.QdrantClient(location=MEMORY)
    folder = Path(path) if path is not None else Path(default_qdrant_path())
    folder.mkdir(parents=True, exist_ok=True)
    return qdrant_client.QdrantClient(path=str(folder))


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    if not isinstance(size, int) or size < 1:
        raise ConfigurationError(f"batch_size must be a positive int, got {size!r}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def progress(
    *, total: int, desc: str, enabled: bool = True
) -> AbstractContextManager[Callable[[int], None]]:
    """A tqdm progress bar counting documents; yields ``advance(n)``.

    A no-op when ``enabled`` is false or tqdm is not installed. The plain text bar is used in
    notebooks too (the widget bar needs ipywidgets).
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
    """:class:`~rerankit.ConfigurationError` for bad ingestion arguments.

    ``documents`` must be a sequence (not a str) of ``kinds`` instances (messages name them as
    ``sequence_of``, e.g. "LangChain Documents", and ``each``, e.g. "a LangChain Document");
    ``collection`` a non-empty str; ``batch_size`` a positive int; and ``client`` excludes
    ``url``, ``path`` and ``api_key``.
    """
    if not isinstance(collection, str) or not collection.strip():
        raise ConfigurationError("collection must be a non-empty str")
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise ConfigurationError(f"documents must be a sequence of {sequence_of}")
    for index, doc in enumerate(documents):
        if not isinstance(doc, kinds):
            raise ConfigurationError(f"documents[{index}] must be {each}, got {type(doc).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
    if client is not None and (url is not None or path is not None or api_key is not None):
        raise ConfigurationError("pass either client= or url=/path=/api_key=, not both")


def upsert_missing(
    client: Any,
    collection: str,
    items: Sequence[T],
    *,
    key: Callable[[T], str],
    batch_size: int,
    show_progress: bool,
    write: Callable[[Sequence[tuple[T, str]]], None],
) -> int:
    """Write the ``items`` the collection does not hold yet, in batches; return how many.

    ``key(item)`` is the item's point id (e.g. :func:`point_id` of its text); items with a
    repeated id are folded, first kept (:func:`unique_by_id`). Batch by batch, the ids already
    in ``collection`` are looked up (:func:`existing_point_ids`) and ``write`` gets the missing
    ``(item, point id)`` pairs (it is not called for a batch with none), so items already
    stored are neither embedded nor written again. A progress bar counts the unique items.

    Example:
        >>> from rerankit.qdrant import open_client, point_id, upsert_missing
        >>> client = open_client(path=":memory:")
        >>> written = []
        >>> upsert_missing(client, "docs", ["a", "b", "a"], key=point_id, batch_size=2,
        ...                show_progress=False, write=written.extend)
        2
        >>> [text for text, _ in written]
        ['a', 'b']
        >>> client.close()
    """
    unique, ids = unique_by_id(list(items), key)
    count = 0
    with progress(
        total=len(unique), desc=f"qdrant upsert {collection}", enabled=show_progress
    ) as advance:
        for batch in batched(list(zip(unique, ids, strict=True)), batch_size):
            present = existing_point_ids(client, collection, [pid for _, pid in batch])
            todo = [(item, pid) for item, pid in batch if pid not in present]
            if todo:
                write(todo)
                count += len(todo)
            advance(len(batch))
    return count
