"""``FallbackReranker``: try rerankers in turn; keep the retrieval order as the last resort."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from rerankit.base import Reranker, ScoreBatch
from rerankit.calibration import ScoreSpace
from rerankit.candidates import Prepared
from rerankit.errors import (
    ConfigurationError,
    EmptyQueryError,
    InvalidDocumentError,
    InvalidQueryError,
)
from rerankit.remote.errors import FallbackExhaustedError
from rerankit.threshold import ThresholdPolicy
from rerankit.types import RerankResults

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
    ``1 - i / n``; of the threshold policy only ``top_n`` applies then, since those scores say
    nothing about relevance. With ``retrieval_order=False`` a
    :class:`~rerankit.remote.FallbackExhaustedError` holding every failure is raised instead.

    A reranker is skipped when it raises any of ``fallback_on`` (default: any ``Exception``).
    Invalid input (an empty query, a document that is not text) is reported at once, as it
    would fail everywhere. Each failure is logged as a warning on ``rerankit.remote``.
    Rerankers may be given as specs (``"cohere:rerank-v3.5"``).

    Example:
        >>> from rerankit import FallbackReranker, Reranker, ScoreBatch
        >>> class Down(Reranker):
        ...     def _score(self, query, texts):
        ...         raise RuntimeError("service unavailable")
        >>> reranker = FallbackReranker([Down()])
        >>> results = reranker.rerank("q", ["first hit", "second hit"])
        >>> [r.index for r in results], results.backend, results[0].fallback[:26]
        ([0, 1], 'retrieval-order', 'all rerankers failed: Down')
    """

    backend = "fallback"
    score_space = ScoreSpace.PROBABILITY

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
        resolved: list[Reranker] = []
        for i, item in enumerate(rerankers):
            if isinstance(item, str):
                from rerankit.registry import from_spec

                item = from_spec(item)
            if not isinstance(item, Reranker):
                raise ConfigurationError(
                    f"rerankers[{i}] must be a Reranker or a spec, got {type(item).__name__}"
                )
            resolved.append(item)
        if not isinstance(retrieval_order, bool):
            raise ConfigurationError(f"retrieval_order must be a bool, got {retrieval_order!r}")
        if (
            not isinstance(fallback_on, tuple)
            or not fallback_on
            or not all(isinstance(t, type) and issubclass(t, BaseException) for t in fallback_on)
        ):
            raise ConfigurationError("fallback_on must be a non-empty tuple of exception types")
        super().__init__(dedupe=dedupe)
        self.rerankers: tuple[Reranker, ...] = tuple(resolved)
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

    def _score(self, query: str, texts: Sequence[str]) -> ScoreBatch:
        """The last resort: rank-based placeholder scores that keep the input order."""
        n = len(texts)
        return ScoreBatch([1.0 - i / n for i in range(n)])

    # -- the flow ------------------------------------------------------------------------------

    # Members get every candidate (duplicates too, the same objects in the same order) and the
    # merged policy, so their results carry the caller's indices, ids, candidates and
    # thresholds. Their own rerank() validates and folds duplicates by their own settings.

    def _rerank_prepared(
        self, query: str, prepared: Prepared, policy: ThresholdPolicy
    ) -> RerankResults:
        errors: list[tuple[Reranker, BaseException]] = []
        for reranker in self.rerankers:
            try:
                results = reranker.rerank(query, prepared.candidates, policy=policy)
            except _INPUT_ERRORS:
                raise
            except self.fallback_on as exc:
                self._failed(reranker, exc, errors)
                continue
            return self._mark(results, errors)
        return self._last_resort(prepared, policy, errors)

    async def _arerank_prepared(
        self, query: str, prepared: Prepared, policy: ThresholdPolicy
    ) -> RerankResults:
        errors: list[tuple[Reranker, BaseException]] = []
        for reranker in self.rerankers:
            try:
                results = await reranker.arerank(query, prepared.candidates, policy=policy)
            except _INPUT_ERRORS:
                raise
            except self.fallback_on as exc:
                self._failed(reranker, exc, errors)
                continue
            return self._mark(results, errors)
        return self._last_resort(prepared, policy, errors)

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

    def _mark(
        self,
        results: RerankResults,
        errors: list[tuple[Reranker, BaseException]],
        *,
        prefix: str = "",
        backend: str | None = None,
        model: str | None = None,
    ) -> RerankResults:
        if not errors:
            return results
        reason = prefix + "; ".join(_reason(r, e) for r, e in errors)
        return RerankResults(
            [replace(r, fallback=reason) for r in results],
            dropped=results.dropped,
            duplicates=results.duplicates,
            empty_reason=results.empty_reason,
            truncated=results.truncated,
            backend=results.backend if backend is None else backend,
            model=results.model if model is None else model,
            fallback=reason,
            usage=results.usage,
        )

    def _last_resort(
        self,
        prepared: Prepared,
        policy: ThresholdPolicy,
        errors: list[tuple[Reranker, BaseException]],
    ) -> RerankResults:
        if not self.retrieval_order:
            reasons = "; ".join(_reason(r, e) for r, e in errors)
            raise FallbackExhaustedError(
                f"all {len(errors)} rerankers failed: {reasons}", errors=[e for _, e in errors]
            ) from errors[-1][1]
        batch = self._score("", prepared.texts)
        results = self._finish(prepared, batch, ThresholdPolicy(top_n=policy.top_n))
        return self._mark(
            results,
            errors,
            prefix="all rerankers failed: ",
            backend=RETRIEVAL_ORDER,
            model="",
        )
