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

from rerankit.cache.fingerprint import score_fingerprint
from rerankit.cache.reranker import CachedReranker
from rerankit.cache.store import CachedScore, CacheKey, ScoreCache, default_cache_dir, digest

__all__ = [
    "CacheKey",
    "CachedReranker",
    "CachedScore",
    "ScoreCache",
    "default_cache_dir",
    "digest",
    "score_fingerprint",
]
