"""Opening Qdrant: the embedded store (default) or a server, with errors that name the fix.

* :func:`open_client`: a ``QdrantClient``. ``url=`` reaches a server, checked first (a
  malformed URL is :class:`~rerankit.errors.InvalidQdrantURLError`; a server that does not
  answer within ``timeout`` seconds is :class:`~rerankit.errors.QdrantUnreachableError`, no
  long retry). Otherwise the embedded store in the folder ``path`` (default: under
  :func:`cache_dir`; ``":memory:"`` keeps it in memory). Embedded Qdrant locks its folder, so a
  folder can be open in one client at a time: a locked one is
  :class:`~rerankit.errors.QdrantStoreLockedError`, naming the folder and the process holding it.
* :class:`QdrantClients`: the client a component works with (given, or opened and then closed
  by it) and, on a server, its async twin.

Nothing here imports ``qdrant-client`` until a client is opened.
"""

from __future__ import annotations

import inspect
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rerankit._deps import require
from rerankit.errors import (
    ConfigurationError,
    InvalidQdrantURLError,
    QdrantStoreLockedError,
    QdrantUnreachableError,
)
from rerankit.qdrant.locks import is_locked, lock_holder, process_name

__all__ = [
    "MEMORY",
    "PROBE_TIMEOUT",
    "QdrantClients",
    "cache_dir",
    "check_url",
    "default_qdrant_path",
    "describe_location",
    "open_client",
    "qdrant_client_module",
    "qdrant_models",
]

MEMORY = ":memory:"
"""Pass as ``path`` for an in-memory embedded store."""

PROBE_TIMEOUT = 3.0
"""Seconds a server has to answer the first request before it counts as unreachable."""


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


def check_url(url: object) -> str:
    """``url`` if it is ``http(s)://host[:port][/prefix]``, else
    :class:`~rerankit.errors.InvalidQdrantURLError`.

    Example:
        >>> from rerankit.qdrant.client import check_url
        >>> check_url("http://localhost:6333")
        'http://localhost:6333'
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidQdrantURLError(str(url), "not a non-empty str")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise InvalidQdrantURLError(url, "no http:// or https:// scheme")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidQdrantURLError(url, f"bad port: {exc}") from exc
    if not parts.hostname:
        raise InvalidQdrantURLError(url, "no host")
    if port == 0:
        raise InvalidQdrantURLError(url, "port 0")
    return url.strip()


def _accepts(function: Any, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _probe(module: Any, url: str, api_key: str | None, timeout: float) -> None:
    """One cheap request with a short timeout, so a dead URL fails now and fast."""
    options: dict[str, Any] = {"url": url, "api_key": api_key, "timeout": math.ceil(timeout)}
    if _accepts(module.QdrantClient.__init__, "check_compatibility"):
        options["check_compatibility"] = False  # its warning would only repeat our error
    probe = module.QdrantClient(**options)
    try:
        probe.get_collections()
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        if status in (401, 403):
            raise ConfigurationError(
                f"the Qdrant server at {url} refused the request (HTTP {status}): pass its API "
                "key (api_key=, or QDRANT_API_KEY)"
            ) from exc
        source = getattr(exc, "source", None) or exc
        reason = f"HTTP {status}" if status else (str(source) or type(source).__name__)
        raise QdrantUnreachableError(url, " ".join(reason.split()), timeout=timeout) from exc
    finally:
        probe.close()


def _embedded_folder(path: str | None) -> Path:
    folder = Path(path).expanduser() if path is not None else Path(default_qdrant_path())
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot use {folder} as an embedded Qdrant store ({exc.strerror or exc}): pass "
            "another path (--qdrant-path / path=) or ':memory:'"
        ) from exc
    return folder


def _locked(folder: Path) -> QdrantStoreLockedError:
    pid = lock_holder(folder)
    return QdrantStoreLockedError(
        str(folder),
        holder_pid=pid,
        holder=None if pid is None else process_name(pid),
        same_process=pid == os.getpid(),
    )


def open_client(
    *,
    url: str | None = None,
    path: str | None = None,
    api_key: str | None = None,
    timeout: float = PROBE_TIMEOUT,
) -> Any:
    """A Qdrant client: a server at ``url``, else the embedded store at ``path``.

    ``path=None`` is the default cache folder (:func:`default_qdrant_path`), created if needed;
    ``path=":memory:"`` keeps the store in memory. A server is asked for its collections first,
    with ``timeout`` seconds to answer.

    Raises:
        InvalidQdrantURLError: ``url`` is not ``http(s)://host[:port]``.
        QdrantUnreachableError: nothing answered at ``url`` in time.
        QdrantStoreLockedError: the folder is open in another client (the error names it and,
            when it can be found, the process holding it).
        ConfigurationError: conflicting arguments, or a folder that cannot be created.

    Example:
        >>> from rerankit.qdrant import open_client
        >>> client = open_client(path=":memory:")
        >>> client.collection_exists("docs")
        False
        >>> client.close()
    """
    if url is not None and path is not None:
        raise ConfigurationError(
            "pass a Qdrant server url or an embedded store path, not both (--qdrant-url and "
            "--qdrant-path are alternatives)"
        )
    module = qdrant_client_module()
    if url is not None:
        url = check_url(url)
        _probe(module, url, api_key, timeout)
        return module.QdrantClient(url=url, api_key=api_key)
    if api_key is not None:
        raise ConfigurationError("api_key needs url= (the embedded store has no key)")
    if path == MEMORY:
        return module.QdrantClient(location=MEMORY)
    folder = _embedded_folder(path)
    if is_locked(folder):  # checked first: opening loads the whole store before it locks
        raise _locked(folder)
    try:
        return module.QdrantClient(path=str(folder))
    except RuntimeError as exc:
        if is_locked(folder):  # taken in between
            raise _locked(folder) from exc
        raise


def describe_location(*, url: str | None, path: str | None) -> str:
    """Where a store is, for reports: the URL, ``in memory`` or the folder."""
    if url is not None:
        return url
    if path == MEMORY:
        return "in memory"
    return str(Path(path).expanduser()) if path is not None else default_qdrant_path()


class QdrantClients:
    """The Qdrant clients one component works with, and which of them it must close.

    ``client`` if given (left open by :meth:`close`), else one opened by :func:`open_client`
    for ``url`` / ``path`` / ``api_key`` (closed by :meth:`close`). On a server, :meth:`aclient`
    is an ``AsyncQdrantClient`` (``aclient`` if given, else opened on first use for ``url``);
    elsewhere it is ``None`` and callers run the sync client in a worker thread.

    Example:
        >>> from rerankit.qdrant import QdrantClients
        >>> clients = QdrantClients(path=":memory:")
        >>> clients.client.collection_exists("docs"), clients.aclient()
        (False, None)
        >>> clients.close()
    """

    def __init__(
        self,
        *,
        client: Any = None,
        aclient: Any = None,
        url: str | None = None,
        path: str | None = None,
        api_key: str | None = None,
    ) -> None:
        if client is not None and (url is not None or path is not None or api_key is not None):
            raise ConfigurationError("pass either client= or url=/path=/api_key=, not both")
        self._owns_client = client is None
        self.client: Any = (
            client if client is not None else open_client(url=url, path=path, api_key=api_key)
        )
        self._url = url
        self._api_key = api_key
        self._aclient: Any = aclient
        self._owns_aclient = False

    def aclient(self) -> Any:
        """The async client (opened for a server URL on first use), or ``None``."""
        if self._aclient is None and self._url:
            self._aclient = qdrant_client_module().AsyncQdrantClient(
                url=self._url, api_key=self._api_key
            )
            self._owns_aclient = True
        return self._aclient

    def close(self) -> None:
        """Close the sync client if it was opened here (a given client is left open)."""
        if self._owns_client:
            self.client.close()

    async def aclose(self) -> None:
        """Close every client opened here, the async one included."""
        if self._owns_aclient and self._aclient is not None:
            await self._aclient.close()
            self._aclient = None
        self.close()
