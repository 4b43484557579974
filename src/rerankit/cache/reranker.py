"""``CachedReranker``: any pointwise reranker, with repeated (query, document) pairs served
from a :class:`~rerankit.cache.ScoreCache`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rerankit.base import Reranker, ScoreBatch, ScoreRequest, per_candidate
from rerankit.cache.fingerprint import _is_pointwise, score_fingerprint
from rerankit.cache.store import CachedScore, CacheKey, ScoreCache, digest
from rerankit.calibration import ScoreSpace
from rerankit.errors import ConfigurationError
from rerankit.types import Candidate, RerankResults

__all__ = ["CachedReranker"]


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

    def _source(self) -> str:
        return self.reranker.backend

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
            backend=self._source(),
        )

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        keys, found, missing = self._lookup(query, candidates)
        results = self.reranker.rerank(query, [candidates[i] for i in missing]) if missing else None
        return self._merge(keys, found, missing, results)

    def _score_many(self, requests: Sequence[ScoreRequest]) -> list[ScoreBatch]:
        """The misses of every query go to the wrapped reranker's ``rerank_batch`` at once."""
        looked = [self._lookup(query, candidates) for query, candidates in requests]
        todo = [i for i, (_, _, missing) in enumerate(looked) if missing]
        fresh = self.reranker.rerank_batch(
            [requests[i][0] for i in todo],
            [[requests[i][1][j] for j in looked[i][2]] for i in todo],
        )
        results: dict[int, RerankResults] = dict(zip(todo, fresh, strict=True))
        return [
            self._merge(keys, found, missing, results.get(i))
            for i, (keys, found, missing) in enumerate(looked)
        ]

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
