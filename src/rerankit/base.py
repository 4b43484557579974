"""The :class:`Reranker` base class: one rerank core behind every backend and integration."""

from __future__ import annotations

import abc
import asyncio
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rerankit.calibration import Calibration, ScoreSpace, calibrate, default_calibration
from rerankit.candidates import Document, Prepared, prepare, validate_query
from rerankit.errors import BackendError, TruncationWarning
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Dropped, RerankResult, RerankResults

__all__ = ["Reranker", "ScoreBatch"]


@dataclass(frozen=True)
class ScoreBatch:
    """What a backend returns for a batch of texts: one raw score each, plus truncation facts
    and, for remote backends, what the call cost (``usage``, copied to the results)."""

    raw: Sequence[float]
    truncated: Sequence[bool] | None = None
    windows: Sequence[int] | None = None
    usage: Mapping[str, Any] | None = None


class Reranker(abc.ABC):
    """Base class of every reranker.

    A backend implements :meth:`_score` (and, when it has a native async client,
    :meth:`_ascore`); the base class does everything else: validation, duplicate folding,
    calibration to [0, 1], sorting, threshold policies and accounting.

    Rerankers built on other rerankers override a later step of the same flow instead:
    :meth:`_score_prepared` / :meth:`_ascore_prepared` to score the validated candidates
    themselves (e.g. fusion, which needs the candidates' metadata), or
    :meth:`_rerank_prepared` / :meth:`_arerank_prepared` to produce the results some other
    way (e.g. fallback, which returns a member's results).

    Example:
        >>> from rerankit import Reranker, ScoreBatch, ScoreSpace
        >>> class Overlap(Reranker):
        ...     backend = "overlap"
        ...     score_space = ScoreSpace.PROBABILITY
        ...     def _score(self, query, texts):
        ...         q = set(query.lower().split())
        ...         return ScoreBatch([len(q & set(t.lower().split())) / len(q) for t in texts])
        >>> results = Overlap().rerank("red apple", ["green pear", "red apple pie"])
        >>> [(r.index, r.score) for r in results]
        [(1, 1.0), (0, 0.0)]
    """

    backend: ClassVar[str] = "custom"
    """Registered backend name, as used in specs (``cross-encoder``, ``embedding``, ...)."""
    score_space: ClassVar[ScoreSpace] = ScoreSpace.PROBABILITY
    """The space of :attr:`RerankResult.raw_score`; picks the default calibration."""

    def __init__(self, *, calibration: Calibration | None = None, dedupe: bool = True) -> None:
        self.calibration: Calibration = calibration or default_calibration(self.score_space)
        self.dedupe = dedupe
        self._truncation_warned = False
        self._warn_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        """Name of the model behind this reranker (for metadata and logs)."""
        return ""

    @property
    def pointwise(self) -> bool | None:
        """Whether each document's score ignores the other documents in the call.

        ``True`` makes scores cacheable per document (:class:`~rerankit.CachedReranker` accepts
        the reranker as it is); ``False`` means scores depend on the other documents
        (listwise); ``None`` (the default) means unknown. A subclass declares it with a class
        attribute (``pointwise = True``) or, when it depends on options, a property.
        """
        return None

    def __repr__(self) -> str:
        model = f"model={self.model_name!r}" if self.model_name else ""
        return f"{type(self).__name__}({model})"

    # -- backend hooks -------------------------------------------------------------------------

    @abc.abstractmethod
    def _score(self, query: str, texts: Sequence[str]) -> ScoreBatch:
        """Score each text against ``query``; ``raw`` holds one value per text, in order."""

    async def _ascore(self, query: str, texts: Sequence[str]) -> ScoreBatch:
        """Async scoring; by default runs :meth:`_score` in a worker thread."""
        return await asyncio.to_thread(self._score, query, texts)

    # -- public API ----------------------------------------------------------------------------

    def rerank(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        top_n: int | None = None,
        min_score: float | None = None,
        policy: ThresholdPolicy | None = None,
    ) -> RerankResults:
        """Rerank ``documents`` for ``query``, best first.

        ``top_n`` and ``min_score`` are shorthands that override the same fields of ``policy``.
        An empty document list returns an empty result without calling the model.
        """
        query, prepared, resolved = self._begin(query, documents, top_n, min_score, policy)
        if not prepared.unique:
            return self._empty(prepared)
        return self._rerank_prepared(query, prepared, resolved)

    async def arerank(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        top_n: int | None = None,
        min_score: float | None = None,
        policy: ThresholdPolicy | None = None,
    ) -> RerankResults:
        """Async :meth:`rerank`, with the same results."""
        query, prepared, resolved = self._begin(query, documents, top_n, min_score, policy)
        if not prepared.unique:
            return self._empty(prepared)
        return await self._arerank_prepared(query, prepared, resolved)

    # -- steps of rerank() that rerankers built on other rerankers override ----------------------

    def _rerank_prepared(
        self, query: str, prepared: Prepared, policy: ThresholdPolicy
    ) -> RerankResults:
        """Results for validated, non-empty input: score, then :meth:`_finish`.

        ``query`` is validated, ``prepared`` holds at least one candidate to score and
        ``policy`` already includes the ``top_n`` / ``min_score`` shorthands.
        """
        return self._finish(prepared, self._score_prepared(query, prepared), policy)

    async def _arerank_prepared(
        self, query: str, prepared: Prepared, policy: ThresholdPolicy
    ) -> RerankResults:
        """Async :meth:`_rerank_prepared`."""
        return self._finish(prepared, await self._ascore_prepared(query, prepared), policy)

    def _score_prepared(self, query: str, prepared: Prepared) -> ScoreBatch:
        """Scores of ``prepared.unique``, in order; by default :meth:`_score` of their texts."""
        return self._score(query, prepared.texts)

    async def _ascore_prepared(self, query: str, prepared: Prepared) -> ScoreBatch:
        """Async :meth:`_score_prepared`; by default :meth:`_ascore` of the texts."""
        return await self._ascore(query, prepared.texts)

    # -- internals -----------------------------------------------------------------------------

    def _begin(
        self,
        query: str,
        documents: Sequence[Document],
        top_n: int | None,
        min_score: float | None,
        policy: ThresholdPolicy | None,
    ) -> tuple[str, Prepared, ThresholdPolicy]:
        resolved = (policy or ThresholdPolicy()).merged(top_n=top_n, min_score=min_score)
        prepared = prepare(documents, dedupe=self.dedupe)
        query = validate_query(query)
        return query, prepared, resolved

    def _empty(self, prepared: Prepared) -> RerankResults:
        return RerankResults(
            empty_reason="no documents",
            duplicates=prepared.duplicates,
            backend=self.backend,
            model=self.model_name,
        )

    def _finish(
        self, prepared: Prepared, batch: ScoreBatch, policy: ThresholdPolicy
    ) -> RerankResults:
        n = len(prepared.unique)
        raw = list(batch.raw)
        if len(raw) != n:
            raise BackendError(
                f"{type(self).__name__} returned {len(raw)} scores for {n} documents"
            )
        truncated = list(batch.truncated) if batch.truncated is not None else [False] * n
        windows = list(batch.windows) if batch.windows is not None else [1] * n
        if len(truncated) != n or len(windows) != n:
            raise BackendError(
                f"{type(self).__name__} returned {len(truncated)} truncation flags and "
                f"{len(windows)} window counts for {n} documents"
            )
        rows = []
        for pos, index in enumerate(prepared.unique):
            raw_score = float(raw[pos])
            rows.append((calibrate(self.calibration, raw_score), raw_score, index, pos))
        rows.sort(key=lambda row: (-row[0], -row[1], row[2]))
        outcome = policy.apply([row[0] for row in rows])
        results = []
        for rank, position in enumerate(outcome.kept):
            score, raw_score, index, pos = rows[position]
            results.append(
                RerankResult(
                    index=index,
                    score=score,
                    raw_score=raw_score,
                    rank=rank,
                    candidate=prepared.candidates[index],
                    truncated=bool(truncated[pos]),
                    windows=int(windows[pos]),
                )
            )
        dropped = [
            Dropped(index=rows[p][2], score=rows[p][0], raw_score=rows[p][1], reason=why)
            for p, why in sorted(outcome.cut.items())
        ]
        n_truncated = sum(1 for t in truncated if t)
        if n_truncated:
            self._warn_truncation(n_truncated, n)
        return RerankResults(
            results,
            dropped=dropped,
            duplicates=prepared.duplicates,
            empty_reason=outcome.empty_reason,
            truncated=n_truncated,
            backend=self.backend,
            model=self.model_name,
            usage=batch.usage,
        )

    def _warn_truncation(self, count: int, total: int) -> None:
        with self._warn_lock:
            if self._truncation_warned:
                return
            self._truncation_warned = True
        warnings.warn(
            f"{type(self).__name__}: {count} of {total} documents were longer than the model "
            "window and were truncated (reported once per reranker; see RerankResult.truncated, "
            "or pass long_documents='window' to score overlapping windows)",
            TruncationWarning,
            # _warn_truncation < _finish < _rerank_prepared < rerank < the caller of rerank()
            stacklevel=5,
        )
