"""The :class:`Reranker` base class: one rerank core behind every backend and integration.

The sync, async and batch paths of :class:`Reranker` share one preparation and one finishing
step (validation, de-duplication, calibration, the threshold, timings, accounting); they stay
in one class, which is why this module runs past 400 lines.
"""

from __future__ import annotations

import abc
import asyncio
import math
import numbers
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rerankit.calibration import (
    Calibration,
    CalibrationSource,
    ScoreSpace,
    calibrate,
    default_calibration,
)
from rerankit.candidates import Document, Prepared, prepare, validate_query
from rerankit.errors import (
    BackendError,
    ConfigurationError,
    InvalidScoreError,
    RerankError,
    TruncationWarning,
)
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate, Dropped, RerankResult, RerankResults

__all__ = ["Reranker", "ScoreBatch", "ScoreRequest", "per_candidate"]


@dataclass(frozen=True)
class ScoreBatch:
    """What a backend returns for the candidates it was given: one raw score each, in order.

    ``truncated`` / ``windows`` say which documents were cut to the model window or scored as
    overlapping windows; ``usage`` is what the call cost a remote backend (copied to the
    results).

    A reranker that returns another reranker's scores (:class:`~rerankit.FallbackReranker`)
    also says whose they are: ``scores`` (already calibrated, in [0, 1]), ``space`` (the space
    of ``raw`` when it is not this reranker's :attr:`~Reranker.score_space`), ``backend`` /
    ``model`` and ``fallback`` (why these are not the primary reranker's scores).
    """

    raw: Sequence[float]
    truncated: Sequence[bool] | None = None
    windows: Sequence[int] | None = None
    usage: Mapping[str, Any] | None = None
    scores: Sequence[float] | None = None
    space: ScoreSpace | None = None
    backend: str | None = None
    model: str | None = None
    fallback: str | None = None


ScoreRequest = tuple[str, Sequence[Candidate]]
"""One query and its validated candidates, as :meth:`Reranker._score_many` takes them."""


class Reranker(abc.ABC):
    """Base class of every reranker.

    A backend implements one hook, :meth:`_score` (and, when it has a native async client,
    :meth:`_ascore`): given the query and the validated, de-duplicated candidates (text, id,
    metadata and first-stage score), return a :class:`ScoreBatch` with one raw score per
    candidate. The base class does everything else: validation, duplicate folding,
    calibration to [0, 1], sorting, threshold policies, accounting and timings. Rerankers
    built on other rerankers (fusion, fallback, cache) implement the same hook by calling the
    other rerankers' public :meth:`rerank` / :meth:`arerank`.

    Example:
        >>> from rerankit import Reranker, ScoreBatch, ScoreSpace
        >>> class Overlap(Reranker):
        ...     backend = "overlap"
        ...     score_space = ScoreSpace.PROBABILITY
        ...     def _score(self, query, candidates):
        ...         q = set(query.lower().split())
        ...         return ScoreBatch(
        ...             [len(q & set(c.text.lower().split())) / len(q) for c in candidates])
        >>> results = Overlap().rerank("red apple", ["green pear", "red apple pie"])
        >>> [(r.index, r.score) for r in results]
        [(1, 1.0), (0, 0.0)]
    """

    backend: ClassVar[str] = "custom"
    """Registered backend name, as used in specs (``cross-encoder``, ``embedding``, ...)."""

    def __init__(
        self,
        *,
        calibration: CalibrationSource | None = None,
        dedupe: bool = True,
    ) -> None:
        # A str / path is a fitted calibration's file, or a calibrations folder ("auto": the
        # default one) in which the file of this reranker's fingerprint is looked up on first
        # use (the subclass has not set its options yet).
        folder = None
        if isinstance(calibration, str | os.PathLike):
            from rerankit.calibrate.files import open_source

            calibration, folder = open_source(calibration)
        if calibration is not None and not callable(calibration):
            raise ConfigurationError(
                "calibration must be a callable float -> float, the path of a calibration "
                f"file or folder, 'auto', or None, got {calibration!r}"
            )
        if not isinstance(dedupe, bool):
            raise ConfigurationError(f"dedupe must be a bool, got {dedupe!r}")
        self._calibration: Calibration = calibration or default_calibration(self.score_space)
        self._custom_calibration = calibration is not None or folder is not None
        self._calibration_folder = folder
        self._calibration_checked = False
        self._calibration_lock = threading.Lock()
        self.dedupe = dedupe
        self._truncation_warned = False
        self._warn_lock = threading.Lock()

    @property
    def score_space(self) -> ScoreSpace:
        """The space of :attr:`RerankResult.raw_score`; picks the default calibration.

        A backend declares it with a class attribute (``score_space = ScoreSpace.LOGIT``) or,
        when it depends on options, a property.
        """
        return ScoreSpace.PROBABILITY

    @property
    def custom_calibration(self) -> bool:
        """Whether ``calibration`` was given (else the score space's default is used)."""
        return self._custom_calibration

    @property
    def calibration(self) -> Calibration:
        """The map from raw score to [0, 1]: the one given, or the score space's default.

        A fitted calibration (:class:`~rerankit.calibrate.FittedCalibration`, loaded from a
        file or from a calibrations folder) makes the score an estimated probability of
        relevance; on first use its fingerprint is compared with this reranker's, and a
        mismatch warns once (:class:`~rerankit.CalibrationMismatchWarning`).
        """
        if not self._calibration_checked:
            self._check_calibration()
        return self._calibration

    @calibration.setter
    def calibration(self, value: Calibration) -> None:
        self._calibration = value

    def _check_calibration(self) -> None:
        if not self._custom_calibration:
            self._calibration_checked = True
            return
        with self._calibration_lock:
            if not self._calibration_checked:
                from rerankit.calibrate.files import settle

                self._calibration = settle(self, self._calibration, self._calibration_folder)
                self._calibration_checked = True

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

    # -- the backend hook ----------------------------------------------------------------------

    @abc.abstractmethod
    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        """Score each candidate against ``query``; ``raw`` holds one value per candidate."""

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        """Async scoring; by default runs :meth:`_score` in a worker thread."""
        return await asyncio.to_thread(self._score, query, candidates)

    def _score_many(self, requests: Sequence[ScoreRequest]) -> list[ScoreBatch]:
        """Score several ``(query, candidates)`` requests (for :meth:`rerank_batch`).

        By default one :meth:`_score` call each. A backend that can share model passes across
        queries (the local ones) overrides it; it must return what :meth:`_score` would.
        """
        return [self._score(query, candidates) for query, candidates in requests]

    async def _ascore_many(self, requests: Sequence[ScoreRequest]) -> list[ScoreBatch]:
        """Async :meth:`_score_many`: one :meth:`_ascore` each, concurrently, by default;
        a backend that overrides :meth:`_score_many` runs it in a worker thread."""
        if type(self)._score_many is not Reranker._score_many:
            return await asyncio.to_thread(self._score_many, requests)
        return list(await asyncio.gather(*(self._ascore(q, c) for q, c in requests)))

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
        started = time.perf_counter()
        query, prepared, resolved = self._begin(query, documents, top_n, min_score, policy)
        if not prepared.unique:
            return self._empty(prepared, started)
        batch = self._guarded(self._score, query, prepared.scored)
        return self._finish(prepared, batch, resolved, started, time.perf_counter())

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
        started = time.perf_counter()
        query, prepared, resolved = self._begin(query, documents, top_n, min_score, policy)
        if not prepared.unique:
            return self._empty(prepared, started)
        try:
            batch = await self._ascore(query, prepared.scored)
        except RerankError:
            raise
        except Exception as exc:
            raise self._wrapped(exc) from exc
        return self._finish(prepared, batch, resolved, started, time.perf_counter())

    def rerank_batch(
        self,
        queries: Sequence[str],
        documents: Sequence[Sequence[Document]],
        *,
        top_n: int | None = None,
        min_score: float | None = None,
        policy: ThresholdPolicy | None = None,
    ) -> list[RerankResults]:
        """Rerank ``documents[i]`` for ``queries[i]``, for every ``i``, sharing model passes.

        Each result equals ``rerank(queries[i], documents[i], ...)``; the local backends score
        the documents of all queries in shared, length-sorted batches (the embedding backends
        encode each distinct text once), so a batch of queries costs less than the calls one by
        one. The threshold applies to each query's list. ``timings["score"]`` of each result is
        the shared scoring time.

        Example:
            >>> from rerankit import EmbeddingReranker
            >>> lists = EmbeddingReranker().rerank_batch(
            ...     ["vector database", "pasta"],
            ...     [["Qdrant stores vectors.", "Pasta recipes"], ["Pasta recipes", "Qdrant"]],
            ...     top_n=1)
            >>> [r[0].text for r in lists]
            ['Qdrant stores vectors.', 'Pasta recipes']
        """
        started = time.perf_counter()
        begun, requests = self._begin_batch(queries, documents, top_n, min_score, policy)
        batches = self._guarded_many(requests)
        return self._finish_batch(begun, batches, started, time.perf_counter())

    async def arerank_batch(
        self,
        queries: Sequence[str],
        documents: Sequence[Sequence[Document]],
        *,
        top_n: int | None = None,
        min_score: float | None = None,
        policy: ThresholdPolicy | None = None,
    ) -> list[RerankResults]:
        """Async :meth:`rerank_batch`, with the same results."""
        started = time.perf_counter()
        begun, requests = self._begin_batch(queries, documents, top_n, min_score, policy)
        try:
            batches = await self._ascore_many(requests) if requests else []
        except RerankError:
            raise
        except Exception as exc:
            raise self._wrapped(exc) from exc
        return self._finish_batch(begun, batches, started, time.perf_counter())

    # -- internals -----------------------------------------------------------------------------

    def _begin_batch(
        self,
        queries: Sequence[str],
        documents: Sequence[Sequence[Document]],
        top_n: int | None,
        min_score: float | None,
        policy: ThresholdPolicy | None,
    ) -> tuple[list[tuple[str, Prepared, ThresholdPolicy]], list[ScoreRequest]]:
        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise ConfigurationError(f"queries must be a list of str, got {type(queries).__name__}")
        if isinstance(documents, str) or not isinstance(documents, Sequence):
            raise ConfigurationError("documents must be a list with one document list per query")
        if len(queries) != len(documents):
            raise ConfigurationError(
                f"{len(queries)} queries but {len(documents)} document lists: give one list "
                "per query"
            )
        begun = [
            self._begin(q, d, top_n, min_score, policy)
            for q, d in zip(queries, documents, strict=True)
        ]
        requests: list[ScoreRequest] = [
            (q, prepared.scored) for q, prepared, _ in begun if prepared.unique
        ]
        return begun, requests

    def _guarded_many(self, requests: Sequence[ScoreRequest]) -> list[ScoreBatch]:
        if not requests:
            return []
        try:
            batches = self._score_many(requests)
        except RerankError:
            raise
        except Exception as exc:
            raise self._wrapped(exc) from exc
        return list(batches)

    def _finish_batch(
        self,
        begun: Sequence[tuple[str, Prepared, ThresholdPolicy]],
        batches: Sequence[ScoreBatch],
        started: float,
        scored: float,
    ) -> list[RerankResults]:
        expected = sum(1 for _, prepared, _ in begun if prepared.unique)
        if len(batches) != expected:
            raise BackendError(
                f"{type(self).__name__} returned {len(batches)} score batches for "
                f"{expected} queries"
            )
        pending = iter(batches)
        return [
            self._finish(prepared, next(pending), policy, started, scored)
            if prepared.unique
            else self._empty(prepared, started)
            for _, prepared, policy in begun
        ]

    def _begin(
        self,
        query: str,
        documents: Sequence[Document],
        top_n: int | None,
        min_score: float | None,
        policy: ThresholdPolicy | None,
    ) -> tuple[str, Prepared, ThresholdPolicy]:
        resolved = ThresholdPolicy.resolve(policy, top_n=top_n, min_score=min_score)
        self.check_policy(resolved)
        if not self._calibration_checked:
            self._check_calibration()
        prepared = prepare(documents, dedupe=self.dedupe)
        query = validate_query(query)
        return query, prepared, resolved

    def check_policy(self, policy: ThresholdPolicy) -> None:
        """Raise :class:`~rerankit.ConfigurationError` if ``policy`` cannot apply to this
        reranker's scores: ``min_score`` on rank-derived scores without a calibration.

        :meth:`rerank` checks this before any work; components check it when they are built.
        """
        if policy.min_score is None or self.score_space.absolute or self.custom_calibration:
            return
        raise ConfigurationError(
            f"{type(self).__name__} scores are rank-derived (score space "
            f"{self.score_space.value!r}): they only order one candidate list, so "
            f"min_score={policy.min_score:g} would keep the same share of every list however "
            "relevant it is; use top_n or min_ratio instead, or pass a calibration fitted to "
            "these scores"
        )

    def _wrapped(self, exc: Exception) -> BackendError:
        return BackendError(f"{type(self).__name__} failed to score: {type(exc).__name__}: {exc}")

    def _guarded(
        self,
        hook: Callable[[str, Sequence[Candidate]], ScoreBatch],
        query: str,
        candidates: Sequence[Candidate],
    ) -> ScoreBatch:
        """``hook(query, candidates)``; an exception that is not a RerankError is wrapped."""
        try:
            return hook(query, candidates)
        except RerankError:
            raise
        except Exception as exc:
            raise self._wrapped(exc) from exc

    def _source(self) -> str:
        """The backend that results name when no score batch says otherwise."""
        return self.backend

    def _empty(self, prepared: Prepared, started: float) -> RerankResults:
        return RerankResults(
            empty_reason="no documents",
            duplicates=prepared.duplicates,
            backend=self._source(),
            model=self.model_name,
            score_space=self.score_space.value,
            timings={"score": 0.0, "rerank": _ms(started)},
            candidates=len(prepared.candidates),
        )

    def _raw_scores(self, batch: object, prepared: Prepared) -> list[float]:
        """The batch's raw scores as floats; an :class:`InvalidScoreError` names the document
        (by input index) of the first one that is not a finite number."""
        name = type(self).__name__
        if not isinstance(batch, ScoreBatch):
            raise BackendError(f"{name} returned {type(batch).__name__}, not a ScoreBatch")
        raw = list(batch.raw)
        n = len(prepared.unique)
        if len(raw) != n:
            raise BackendError(f"{name} returned {len(raw)} scores for {n} documents")
        for position, value in enumerate(raw):
            number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not number or not math.isfinite(float(value)):
                index = prepared.unique[position]
                raise InvalidScoreError(
                    f"{name} returned {value!r} ({type(value).__name__}) as the score of "
                    f"document {index}; a score must be a finite number",
                    index=index,
                    backend=self.backend,
                )
        return [float(v) for v in raw]

    def _finish(
        self,
        prepared: Prepared,
        batch: ScoreBatch,
        policy: ThresholdPolicy,
        started: float,
        scored: float,
    ) -> RerankResults:
        n = len(prepared.unique)
        raw = self._raw_scores(batch, prepared)
        truncated = list(batch.truncated) if batch.truncated is not None else [False] * n
        windows = list(batch.windows) if batch.windows is not None else [1] * n
        if len(truncated) != n or len(windows) != n:
            raise BackendError(
                f"{type(self).__name__} returned {len(truncated)} truncation flags and "
                f"{len(windows)} window counts for {n} documents"
            )
        if batch.scores is not None:
            calibrated = [float(s) for s in batch.scores]
            if len(calibrated) != n or not all(0.0 <= s <= 1.0 for s in calibrated):
                raise BackendError(f"{type(self).__name__} returned invalid calibrated scores")
        else:
            calibrated = [calibrate(self.calibration, r) for r in raw]
        space = batch.space or self.score_space
        if batch.fallback is not None and not space.absolute:
            # The call degraded to scores that only order the list (a fallback's listwise
            # member or its retrieval order): no score threshold can be judged on them.
            policy = policy.ordering_only
        rows = sorted(
            ((calibrated[pos], raw[pos], index, pos) for pos, index in enumerate(prepared.unique)),
            key=lambda row: (-row[0], -row[1], row[2]),
        )
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
                    fallback=batch.fallback,
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
            backend=batch.backend if batch.backend is not None else self.backend,
            model=batch.model if batch.model is not None else self.model_name,
            fallback=batch.fallback,
            usage=batch.usage,
            score_space=space.value,
            timings={"score": (scored - started) * 1000.0, "rerank": _ms(started)},
            candidates=len(prepared.candidates),
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
            # _warn_truncation < _finish < rerank < the caller of rerank()
            stacklevel=4,
        )


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def per_candidate(results: RerankResults, n: int) -> list[RerankResult]:
    """Each of the ``n`` input positions' result, for results of a call without a threshold.

    A duplicate gets the result of the copy that was scored. For rerankers built on other
    rerankers, which call them with no threshold so that nothing is dropped.
    """
    found: list[RerankResult | None] = [None] * n
    for result in results:
        found[result.index] = result
    for duplicate, kept in results.duplicates.items():
        found[duplicate] = found[kept]
    missing = [i for i, r in enumerate(found) if r is None]
    if missing:
        raise BackendError(
            f"a {results.backend or 'member'} reranker left documents {missing[:5]} unaccounted for"
        )
    return [r for r in found if r is not None]
