"""The score store: raw scores in memory (LRU), optionally persisted to SQLite."""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from rerankit.errors import BackendError, ConfigurationError

__all__ = ["CACHE_FORMAT", "CacheKey", "CachedScore", "ScoreCache", "default_cache_dir", "digest"]

CACHE_FORMAT = 1
"""Bumped whenever the meaning of a cached entry changes; part of every fingerprint."""

_DB_NAME = "scores.sqlite3"


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
    return isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(float(raw))
