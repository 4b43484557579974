"""Score cache: a repeated (model, query, document) skips the model.

:class:`ScoreCache` holds raw scores in memory (LRU), optionally backed by a SQLite file in a
cache folder that survives restarts. :class:`CachedReranker` wraps any pointwise reranker:
documents already scored for the same query by the same model and options come from the cache,
only the rest reach the model, and the results are identical to the first call's (same raw
scores, same ``truncated`` and ``windows`` flags, hence same calibrated scores and order).

The key is ``(fingerprint, hash(query), hash(text))``. The fingerprint names everything that
changes a raw score: the backend class, the model (and, for a local model folder, the size and
modification time of its files), the resolved device and dtype, ``max_length``,
``long_documents`` / ``window_overlap``, prompts, and the versions of rerankit, torch,
transformers and sentence-transformers. Queries and texts are stored as BLAKE2b digests only.

Example:
    >>> from rerankit import CachedReranker, Reranker, ScoreBatch, ScoreCache
    >>> class Length(Reranker):
    ...     pointwise = True  # each document's score ignores the other documents
    ...     def _score(self, query, candidates):
    ...         return ScoreBatch([len(c.text) / 100 for c in candidates])
    >>> cached = CachedReranker(reranker=Length(), cache=ScoreCache(max_entries=1000))
    >>> first = cached.rerank("q", ["a long document", "short"])
    >>> again = cached.rerank("q", ["a long document", "short"])  # served from the cache
    >>> [r.raw_score for r in again] == [r.raw_score for r in first], cached.cache.hits
    (True, 2)
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
import math
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rerankit.base import Reranker, ScoreBatch, per_candidate
from rerankit.calibration import ScoreSpace
from rerankit.errors import BackendError, ConfigurationError
from rerankit.types import Candidate, RerankResults

__all__ = [
    "CacheKey",
    "CachedReranker",
    "CachedScore",
    "ScoreCache",
    "default_cache_dir",
    "score_fingerprint",
]

CACHE_FORMAT = 1
"""Bumped whenever the meaning of a cached entry changes; part of every fingerprint."""

_DB_NAME = "scores.sqlite3"
_VERSIONED = ("torch", "transformers", "sentence-transformers")
_SECRET_WORDS = ("key", "secret", "token", "password", "auth", "credential")
_NOT_SCORE_OPTIONS = frozenset(
    {
        "calibration",
        "dedupe",
        "batch_size",
        "micro_batching",
        "micro_batch_wait_ms",
        "micro_batch_pairs",
        "timeout",
        "deadline",
        "max_retries",
        "requests_per_minute",
        "max_concurrency",
    }
)


class CachedScore(NamedTuple):
    """One cached outcome: the raw score and the truncation facts of that document."""

    raw: float
    truncated: bool = False
    windows: int = 1


class CacheKey(NamedTuple):
    """``(fingerprint, query digest, text digest)``; all hex strings."""

    fingerprint: str
    query: str
    text: str


def digest(text: str) -> str:
    """A 128-bit BLAKE2b hex digest of ``text`` (UTF-8)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def default_cache_dir() -> Path:
    """``$RERANKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/rerankit``, else ``~/.cache/rerankit``."""
    explicit = os.environ.get("RERANKIT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "rerankit"


class ScoreCache:
    """A thread-safe LRU cache of raw scores, optionally persisted to SQLite.

    Args:
        max_entries: entries kept in memory; the least recently used are evicted first.
        path: a folder for the on-disk cache (created if missing; the file inside is
            ``scores.sqlite3``). ``None`` (default) keeps the cache in memory only. The disk
            cache is unbounded: :meth:`clear` empties it.

    Lookups check memory first, then disk (a disk hit is copied to memory). New scores go to
    both. One cache may serve many rerankers: keys carry each reranker's fingerprint.

    Example:
        >>> from rerankit import ScoreCache
        >>> from rerankit.cache import CacheKey, CachedScore
        >>> cache = ScoreCache(max_entries=2)
        >>> cache.put_many({CacheKey("m", "q", "d"): CachedScore(1.5)})
        >>> cache.get_many([CacheKey("m", "q", "d"), CacheKey("m", "q", "x")])
        [CachedScore(raw=1.5, truncated=False, windows=1), None]
    """

    def __init__(
        self, *, max_entries: int = 100_000, path: str | os.PathLike[str] | None = None
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"max_entries must be a positive int, got {max_entries!r}")
        if path is not None and not isinstance(path, str | os.PathLike):
            raise ConfigurationError(f"path must be a folder path or None, got {path!r}")
        self.max_entries = max_entries
        self.path: Path | None = Path(path).expanduser() if path is not None else None
        self.hits = 0
        """Documents served from the cache so far."""
        self.misses = 0
        """Documents that had to be scored so far."""
        self._memory: OrderedDict[CacheKey, CachedScore] = OrderedDict()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self._db = self._open(self.path)

    @staticmethod
    def _open(folder: Path) -> sqlite3.Connection:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(folder / _DB_NAME), check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS scores (fingerprint TEXT NOT NULL, "
                "query TEXT NOT NULL, doc TEXT NOT NULL, raw REAL NOT NULL, "
                "truncated INTEGER NOT NULL, windows INTEGER NOT NULL, "
                "PRIMARY KEY (fingerprint, query, doc)) WITHOUT ROWID"
            )
            db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the score cache in {folder}: {exc}") from exc
        return db

    def __len__(self) -> int:
        """Entries held in memory."""
        with self._lock:
            return len(self._memory)

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        return f"ScoreCache(max_entries={self.max_entries}{where})"

    def get_many(self, keys: Sequence[CacheKey]) -> list[CachedScore | None]:
        """Cached entries for ``keys``, ``None`` where absent (counts hits and misses)."""
        found: list[CachedScore | None] = [None] * len(keys)
        with self._lock:
            missing: list[int] = []
            for i, key in enumerate(keys):
                entry = self._memory.get(key)
                if entry is None:
                    missing.append(i)
                else:
                    self._memory.move_to_end(key)
                    found[i] = entry
            if missing and self._db is not None:
                for i, entry in zip(missing, self._read([keys[i] for i in missing]), strict=True):
                    if entry is not None:
                        found[i] = entry
                        self._remember(keys[i], entry)
            hits = sum(1 for entry in found if entry is not None)
            self.hits += hits
            self.misses += len(keys) - hits
        return found

    def put_many(self, entries: Mapping[CacheKey, CachedScore]) -> None:
        """Store ``entries`` in memory and, if configured, on disk.

        An entry whose score is not a finite number is never stored (it would poison every
        later call); the caller's backend reports it instead.
        """
        entries = {k: e for k, e in entries.items() if _valid(e)}
        if not entries:
            return
        with self._lock:
            for key, entry in entries.items():
                self._remember(key, entry)
            if self._db is not None:
                try:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?)",
                        [
                            (*key, float(e.raw), int(bool(e.truncated)), int(e.windows))
                            for key, e in entries.items()
                        ],
                    )
                    self._db.commit()
                except sqlite3.Error as exc:
                    raise BackendError(f"cannot write the score cache: {exc}") from exc

    def clear(self) -> None:
        """Empty the cache (memory and disk) and reset the hit / miss counters."""
        with self._lock:
            self._memory.clear()
            self.hits = self.misses = 0
            if self._db is not None:
                self._db.execute("DELETE FROM scores")
                self._db.commit()

    def close(self) -> None:
        """Close the disk cache (memory entries stay usable)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _remember(self, key: CacheKey, entry: CachedScore) -> None:
        self._memory[key] = entry
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_entries:
            self._memory.popitem(last=False)

    def _read(self, keys: Sequence[CacheKey]) -> list[CachedScore | None]:
        assert self._db is not None
        out: dict[CacheKey, CachedScore] = {}
        by_query: dict[tuple[str, str], list[str]] = {}
        for key in keys:
            by_query.setdefault((key.fingerprint, key.query), []).append(key.text)
        try:
            for (fingerprint, query), docs in by_query.items():
                for start in range(0, len(docs), 500):
                    chunk = docs[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(
                        "SELECT doc, raw, truncated, windows FROM scores "
                        f"WHERE fingerprint = ? AND query = ? AND doc IN ({marks})",
                        (fingerprint, query, *chunk),
                    ).fetchall()
                    for doc, raw, truncated, windows in rows:
                        entry = CachedScore(raw, bool(truncated), int(windows))
                        if _valid(entry):  # a non-finite score on disk reads as a miss
                            out[CacheKey(fingerprint, query, doc)] = entry
        except sqlite3.Error as exc:
            raise BackendError(f"cannot read the score cache: {exc}") from exc
        return [out.get(key) for key in keys]


def _valid(entry: CachedScore) -> bool:
    raw = entry.raw
    return (
        isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(float(raw))
    )


# -- fingerprints ------------------------------------------------------------------------------


def _scalar(value: Any) -> bool:
    """Plain immutable values (and tuples of them); mutable state such as lists is left out."""
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    return isinstance(value, tuple) and all(_scalar(v) for v in value)


def _local_revision(model: str) -> str | None:
    """Size and modification time of a local model folder's files (None for hub ids)."""
    try:
        folder = Path(model).expanduser()
        if not folder.is_dir():
            return None
        parts = []
        for item in sorted(folder.iterdir()):
            if item.is_file():
                stat = item.stat()
                parts.append(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns}")
    except OSError:
        return None
    return digest("|".join(parts))


def _versions(names: Iterable[str]) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def _resolved_device_dtype(fields: dict[str, Any]) -> None:
    """Replace ``device=None`` / ``dtype="auto"`` by what they resolve to on this machine."""
    if "dtype" not in fields and "device" not in fields:
        return
    try:
        from rerankit._torch import resolve_device, resolve_dtype

        device = resolve_device(fields.get("device"))
        fields["device"] = device
        if "dtype" in fields:
            fields["dtype"] = str(resolve_dtype(str(fields["dtype"]), device))
    except ImportError:  # no torch: the reranker cannot run locally either
        pass


def score_fingerprint(reranker: Reranker) -> str:
    """A digest of everything that changes ``reranker``'s raw scores.

    A reranker may describe itself with a ``cache_fingerprint()`` method returning a mapping of
    JSON-able values; otherwise its public attributes holding plain immutable values (str, int,
    float, bool, None, tuples of them) are used, minus options that do not change scores (such
    as ``batch_size``) and anything that looks like a credential. Backends whose scores depend
    on other state should define ``cache_fingerprint()``.
    ``device=None`` and ``dtype="auto"`` are resolved, so caches written on machines that run
    different dtypes never mix.
    """
    hook = getattr(reranker, "cache_fingerprint", None)
    fields: dict[str, Any]
    if callable(hook):
        fields = dict(hook())
    else:
        fields = {
            name: value
            for name, value in vars(reranker).items()
            if not name.startswith("_")
            and name not in _NOT_SCORE_OPTIONS
            and not any(word in name.lower() for word in _SECRET_WORDS)
            and _scalar(value)
        }
        _resolved_device_dtype(fields)
        fields["versions"] = _versions(_VERSIONED)
    cls = type(reranker)
    fields.setdefault("class", f"{cls.__module__}.{cls.__qualname__}")
    fields.setdefault("backend", reranker.backend)
    fields.setdefault("model", reranker.model_name)
    model = fields.get("model")
    if isinstance(model, str) and model:
        fields.setdefault("model_revision", _local_revision(model))
    fields["rerankit"] = _versions(["rerankit"])["rerankit"]
    fields["cache_format"] = CACHE_FORMAT
    return digest(json.dumps(fields, sort_keys=True, default=repr))


def _is_pointwise(reranker: Reranker) -> bool | None:
    """The reranker's :attr:`~rerankit.Reranker.pointwise` declaration (``None``: unknown)."""
    declared = reranker.pointwise
    return declared if isinstance(declared, bool) else None


# -- the wrapper -------------------------------------------------------------------------------


class CachedReranker(Reranker):
    """Wraps a reranker with a :class:`ScoreCache`: repeated (query, document) pairs skip the model.

    Only documents missing from the cache are sent to the wrapped reranker (sync or async, so a
    micro-batching backend still batches them). Results are identical to uncached ones: the
    cache stores each document's raw score with its ``truncated`` / ``windows`` flags, and the
    wrapper uses the wrapped reranker's calibration, dedupe setting, backend and model name.

    Caching per document is only sound when a document's score does not depend on the other
    documents in the call. Rerankers declare it with :attr:`~rerankit.Reranker.pointwise`: the
    local backends (cross-encoder, embedding, late interaction), Cohere, HTTP rerank servers and
    ``LLMReranker(mode="pointwise")`` qualify; listwise or fusion rerankers are refused. For a
    reranker that declares nothing, pass ``pointwise=True`` to vouch for it.

    Args:
        reranker: the reranker to wrap, or a spec such as ``"cross-encoder:/models/ce"``.
        cache: the cache to use (share one between rerankers if you like); default: a new
            in-memory :class:`ScoreCache`. ``ScoreCache(path=default_cache_dir())`` persists.
        pointwise: ``None`` to detect, ``True`` to vouch that scores are per document.

    Example:
        >>> from rerankit import CachedReranker, EmbeddingReranker, ScoreCache
        >>> reranker = CachedReranker(reranker=EmbeddingReranker(), cache=ScoreCache())
        >>> docs = ["Qdrant stores vectors.", "Pasta recipes"]
        >>> first = reranker.rerank("vector database", docs)   # scored by the model
        >>> again = reranker.rerank("vector database", docs)   # from the cache
        >>> [(r.index, r.score) for r in again] == [(r.index, r.score) for r in first]
        True
    """

    backend = "cache"
    pointwise = True

    def __init__(
        self,
        *,
        reranker: Reranker | str,
        cache: ScoreCache | None = None,
        pointwise: bool | None = None,
    ) -> None:
        from rerankit.registry import as_reranker

        reranker = as_reranker(reranker)
        if cache is not None and not isinstance(cache, ScoreCache):
            raise ConfigurationError(f"cache must be a ScoreCache, got {type(cache).__name__}")
        if pointwise is not None and not isinstance(pointwise, bool):
            raise ConfigurationError(f"pointwise must be a bool or None, got {pointwise!r}")
        if isinstance(reranker, CachedReranker):
            raise ConfigurationError("the reranker is already a CachedReranker")
        detected = _is_pointwise(reranker)
        if pointwise is None:
            if detected is None:
                raise ConfigurationError(
                    f"cannot tell whether {reranker!r} scores each document on its own; pass "
                    "pointwise=True if it does (listwise or fusion rerankers cannot be cached "
                    "per document)"
                )
            pointwise = detected
        if not pointwise:
            raise ConfigurationError(
                f"{reranker!r} is not pointwise: its scores depend on the other documents, so "
                "they cannot be cached per document"
            )
        self.reranker = reranker
        super().__init__(calibration=reranker.calibration, dedupe=reranker.dedupe)
        self.cache = cache if cache is not None else ScoreCache()
        self._fingerprint: str | None = None

    @property
    def score_space(self) -> ScoreSpace:
        """The wrapped reranker's score space."""
        return self.reranker.score_space

    @property
    def custom_calibration(self) -> bool:
        """Whether the wrapped reranker was given a calibration."""
        return self.reranker.custom_calibration

    @property
    def model_name(self) -> str:
        return self.reranker.model_name

    def __repr__(self) -> str:
        return f"CachedReranker({self.reranker!r}, cache={self.cache!r})"

    @property
    def fingerprint(self) -> str:
        """The wrapped reranker's :func:`score_fingerprint` (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = score_fingerprint(self.reranker)
        return self._fingerprint

    def warm_up(self) -> None:
        """Load the wrapped reranker's model now, if it has one."""
        warm = getattr(self.reranker, "warm_up", None)
        if callable(warm):
            warm()

    # -- scoring -------------------------------------------------------------------------------

    def _lookup(
        self, query: str, candidates: Sequence[Candidate]
    ) -> tuple[list[CacheKey], list[CachedScore | None], list[int]]:
        """Keys, cached entries (``None`` where absent) and the positions to score."""
        fingerprint, q = self.fingerprint, digest(query)
        keys = [CacheKey(fingerprint, q, digest(c.text)) for c in candidates]
        found = list(self.cache.get_many(keys))
        seen: set[CacheKey] = set()
        missing = []
        for i, (key, entry) in enumerate(zip(keys, found, strict=True)):
            if entry is None and key not in seen:
                seen.add(key)
                missing.append(i)
        return keys, found, missing

    def _merge(
        self,
        keys: Sequence[CacheKey],
        found: list[CachedScore | None],
        missing: Sequence[int],
        results: RerankResults | None,
    ) -> ScoreBatch:
        """Store the fresh scores and return the batch of every candidate."""
        if results is not None:
            aligned = per_candidate(results, len(missing))
            fresh = {
                keys[i]: CachedScore(r.raw_score, r.truncated, r.windows)
                for i, r in zip(missing, aligned, strict=True)
            }
            self.cache.put_many(fresh)
            for i, key in enumerate(keys):
                if found[i] is None:
                    found[i] = fresh[key]
        entries = [e for e in found if e is not None]
        return ScoreBatch(
            raw=[e.raw for e in entries],
            truncated=[e.truncated for e in entries],
            windows=[e.windows for e in entries],
            usage=results.usage if results is not None else None,
            backend=self.reranker.backend,
        )

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        keys, found, missing = self._lookup(query, candidates)
        results = (
            self.reranker.rerank(query, [candidates[i] for i in missing]) if missing else None
        )
        return self._merge(keys, found, missing, results)

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        on_disk = self.cache.path is not None  # keep SQLite I/O off the event loop
        if on_disk:
            keys, found, missing = await asyncio.to_thread(self._lookup, query, candidates)
        else:
            keys, found, missing = self._lookup(query, candidates)
        results = (
            await self.reranker.arerank(query, [candidates[i] for i in missing])
            if missing
            else None
        )
        if on_disk and results is not None:
            return await asyncio.to_thread(self._merge, keys, found, missing, results)
        return self._merge(keys, found, missing, results)
