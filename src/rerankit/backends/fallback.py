"""``FallbackReranker``: try rerankers in turn; keep the retrieval order as the last resort."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rerankit.base import Reranker, ScoreBatch, per_candidate
from rerankit.calibration import ScoreSpace
from rerankit.errors import (
    ConfigurationError,
    EmptyQueryError,
    InvalidDocumentError,
    InvalidQueryError,
)
from rerankit.remote.errors import FallbackExhaustedError
from rerankit.types import Candidate, RerankResults

__all__ = ["RETRIEVAL_ORDER", "FallbackReranker"]

log = logging.getLogger("rerankit.remote")

RETRIEVAL_ORDER = "retrieval-order"
"""``backend`` of results that kept the retrieval order because every reranker failed."""

_INPUT_ERRORS = (InvalidQueryError, EmptyQueryError, InvalidDocumentError)
_REASON_LIMIT = 300


def _reason(reranker: Reranker, exc: BaseException) -> str:
    text = f"{reranker!r} failed: {type(exc).__name__}: {exc}"
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 3] + "..."


class FallbackReranker(Reranker):
    """Tries each reranker in turn until one succeeds.

    Results of the first reranker are returned as they are. Results of a later one are marked:
    ``RerankResults.fallback`` and each ``RerankResult.fallback`` hold the reason (which
    rerankers failed and how), and the LangChain / LlamaIndex metadata block gets
    ``"fallback": True`` and ``"fallback_reason"``. When every reranker fails, the last resort
    (``retrieval_order=True``, the default) returns the documents in their retrieval order,
    marked the same way, with ``backend="retrieval-order"`` and rank-based placeholder scores
    ``1 - i / n`` (score space ``rank``); of the threshold policy only ``top_n`` applies then,
    since those scores say nothing about relevance. Each member reranks without a threshold;
    the threshold applies to the calibrated scores of the member that answered. With
    ``retrieval_order=False`` a
    :class:`~rerankit.remote.FallbackExhaustedError` holding every failure is raised instead.

    A reranker is skipped when it raises any of ``fallback_on`` (default: any ``Exception``).
    Invalid input (an empty query, a document that is not text) is reported at once, as it
    would fail everywhere. Each failure is logged as a warning on ``rerankit.remote``.
    Rerankers may be given as specs (``"cohere:rerank-v3.5"``).

    Example:
        >>> from rerankit import FallbackReranker, Reranker, ScoreBatch
        >>> class Down(Reranker):
        ...     def _score(self, query, candidates):
        ...         raise RuntimeError("service unavailable")
        >>> reranker = FallbackReranker([Down()])
        >>> results = reranker.rerank("q", ["first hit", "second hit"])
        >>> [r.index for r in results], results.backend, results[0].fallback[:26]
        ([0, 1], 'retrieval-order', 'all rerankers failed: Down')
    """

    backend = "fallback"

    def __init__(
        self,
        rerankers: Sequence[Reranker | str],
        *,
        retrieval_order: bool = True,
        fallback_on: tuple[type[BaseException], ...] = (Exception,),
        dedupe: bool = True,
    ) -> None:
        if isinstance(rerankers, str | Reranker) or not isinstance(rerankers, Sequence):
            raise ConfigurationError("rerankers must be a list of rerankers or specs")
        if not rerankers:
            raise ConfigurationError("FallbackReranker needs at least one reranker")
        from rerankit.registry import as_reranker

        resolved = [as_reranker(r, name=f"rerankers[{i}]") for i, r in enumerate(rerankers)]
        if not isinstance(retrieval_order, bool):
            raise ConfigurationError(f"retrieval_order must be a bool, got {retrieval_order!r}")
        if (
            not isinstance(fallback_on, tuple)
            or not fallback_on
            or not all(isinstance(t, type) and issubclass(t, BaseException) for t in fallback_on)
        ):
            raise ConfigurationError("fallback_on must be a non-empty tuple of exception types")
        self.rerankers: tuple[Reranker, ...] = tuple(resolved)
        super().__init__(dedupe=dedupe)
        self.retrieval_order = retrieval_order
        self.fallback_on = fallback_on

    @property
    def model_name(self) -> str:
        chain = [
            f"{r.backend}:{r.model_name}" if r.model_name else r.backend for r in self.rerankers
        ]
        if self.retrieval_order:
            chain.append(RETRIEVAL_ORDER)
        return " > ".join(chain)

    def __repr__(self) -> str:
        inner = ", ".join(repr(r) for r in self.rerankers)
        return f"FallbackReranker([{inner}], retrieval_order={self.retrieval_order})"

    @property
    def score_space(self) -> ScoreSpace:
        """The first reranker's score space (the last resort's scores are ``rank``)."""
        return self.rerankers[0].score_space

    @property
    def custom_calibration(self) -> bool:
        """Whether the first reranker was given a calibration."""
        return self.rerankers[0].custom_calibration

    # -- the flow ------------------------------------------------------------------------------

    # Members get the validated candidates and no threshold; the threshold applies to the
    # scores of the member that answered, calibrated by that member.

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        errors: list[tuple[Reranker, BaseException]] = []
        for reranker in self.rerankers:
            try:
                results = reranker.rerank(query, candidates)
            except _INPUT_ERRORS:
                raise
            except self.fallback_on as exc:
                self._failed(reranker, exc, errors)
                continue
            return self._batch(results, len(candidates), errors)
        return self._last_resort(len(candidates), errors)

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        errors: list[tuple[Reranker, BaseException]] = []
        for reranker in self.rerankers:
            try:
                results = await reranker.arerank(query, candidates)
            except _INPUT_ERRORS:
                raise
            except self.fallback_on as exc:
                self._failed(reranker, exc, errors)
                continue
            return self._batch(results, len(candidates), errors)
        return self._last_resort(len(candidates), errors)

    # -- internals -----------------------------------------------------------------------------

    def _failed(
        self,
        reranker: Reranker,
        exc: BaseException,
        errors: list[tuple[Reranker, BaseException]],
    ) -> None:
        errors.append((reranker, exc))
        remaining = len(self.rerankers) - len(errors)
        then = (
            f"trying the next of {remaining}"
            if remaining
            else ("keeping the retrieval order" if self.retrieval_order else "giving up")
        )
        log.warning("%s; %s", _reason(reranker, exc), then)

    @staticmethod
    def _batch(
        results: RerankResults, n: int, errors: list[tuple[Reranker, BaseException]]
    ) -> ScoreBatch:
        aligned = per_candidate(results, n)
        return ScoreBatch(
            raw=[r.raw_score for r in aligned],
            scores=[r.score for r in aligned],
            truncated=[r.truncated for r in aligned],
            windows=[r.windows for r in aligned],
            usage=results.usage,
            space=ScoreSpace(results.score_space) if results.score_space else None,
            backend=results.backend,
            model=results.model,
            fallback="; ".join(_reason(r, e) for r, e in errors) if errors else None,
        )

    def _last_resort(self, n: int, errors: list[tuple[Reranker, BaseException]]) -> ScoreBatch:
        reasons = "; ".join(_reason(r, e) for r, e in errors)
        if not self.retrieval_order:
            raise FallbackExhaustedError(
                f"all {len(errors)} rerankers failed: {reasons}", errors=[e for _, e in errors]
            ) from errors[-1][1]
        return ScoreBatch(
            raw=[1.0 - i / n for i in range(n)],
            space=ScoreSpace.RANK,
            backend=RETRIEVAL_ORDER,
            model="",
            fallback="all rerankers failed: " + reasons,
        )
