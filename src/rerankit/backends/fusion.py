"""Fusion of several rerankers, and optionally of the first-stage score, into one ranking."""

from __future__ import annotations

import asyncio
import math
import numbers
from collections.abc import Sequence
from typing import Literal

from rerankit.base import Reranker, ScoreBatch, ScoreRequest, per_candidate
from rerankit.calibration import CalibrationSource, ScoreSpace
from rerankit.errors import ConfigurationError, InvalidDocumentError
from rerankit.types import RETRIEVAL_SCORE_KEY, Candidate, RerankResults

__all__ = ["FusionReranker"]

FusionMethod = Literal["rrf", "weighted"]
Normalization = Literal["minmax", "calibrated"]
METHODS = ("rrf", "weighted")
NORMALIZATIONS = ("minmax", "calibrated")


class FusionReranker(Reranker):
    """Combines several rerankers (and the first-stage score) into one ranking.

    Each member reranks the same candidates; their scores are fused per query:

    * ``method="weighted"`` (the default): ``sum(w * s) / sum(w)`` where ``s`` is each
      signal's score scaled to [0, 1] over the query's candidates (``normalize="minmax"``), or
      the members' calibrated scores (``normalize="calibrated"``; the first-stage score is
      always min-max scaled).
    * ``method="rrf"`` (reciprocal rank fusion): ``sum(w / (rrf_k + rank))`` over the signals,
      with 1-based ranks. Only each signal's order matters.

    The first-stage score is a signal when ``first_stage`` names where it is:
    ``first_stage="retrieval_score"`` reads :attr:`Candidate.retrieval_score
    <rerankit.Candidate.retrieval_score>` (what the LangChain and LlamaIndex components fill
    from the retriever, and ``rerankit eval`` sets), or ``metadata["retrieval_score"]``; any
    other name is a :attr:`Candidate.metadata <rerankit.Candidate.metadata>` key. Higher must
    mean better, and every candidate must carry a finite number there (plain strings cannot).
    With ``first_stage=None`` (the default) only the members are fused.

    The result's ``raw_score`` is the fused score in [0, 1] (for RRF, divided by the best
    attainable value, ``sum(w) / (rrf_k + 1)``) and ``score`` equals it. RRF, min-max scaling
    and the first-stage score are relative to the candidate list, so such a fusion declares the
    ``rank`` score space: use ``top_n`` or ``min_ratio`` (``min_score`` raises
    :class:`~rerankit.ConfigurationError`). ``method="weighted", normalize="calibrated"``
    without ``first_stage`` averages the members' calibrated scores and declares
    ``probability``, so ``min_score`` applies. Ties keep the input (first-stage) order.

    Why these defaults: the figures in ``docs/benchmarks.md`` (section "Quality (rerankit
    eval)", TREC DL 2019 and SciFact, offline MiniLM embedding and late-interaction rerankers)
    decided them. Weighted fusion beat RRF over the same signals in 8 of 11 comparisons, so it
    is the default method. Fusion is no sure win: the best fusion beat the best single
    reranker on DL19 (+0.004 nDCG@10) and on SciFact over a BM25 first stage (+0.029, with the
    first-stage score), but not on SciFact over a dense first stage (-0.014). Adding the
    first-stage score helped over SciFact's BM25 first stage but hurt on DL19 and over the
    dense first stage, so it is opt-in.

    Example:
        >>> from rerankit import Candidate, FusionReranker, Reranker, ScoreBatch
        >>> class Length(Reranker):
        ...     def _score(self, query, candidates):
        ...         return ScoreBatch([len(c.text) / 100 for c in candidates])
        >>> fused = FusionReranker([Length()], method="weighted", first_stage="retrieval_score")
        >>> docs = [
        ...     Candidate("short", id="a", retrieval_score=9.0),
        ...     Candidate("a much longer text", id="b", retrieval_score=1.0),
        ...     Candidate("a medium text", id="c", retrieval_score=5.0),
        ... ]
        >>> [r.id for r in fused.rerank("query", docs)]
        ['c', 'a', 'b']
    """

    backend = "fusion"

    def __init__(
        self,
        rerankers: Sequence[Reranker | str],
        *,
        method: FusionMethod = "weighted",
        weights: Sequence[float] | None = None,
        first_stage: str | None = None,
        first_stage_weight: float = 1.0,
        rrf_k: float = 60.0,
        normalize: Normalization = "minmax",
        calibration: CalibrationSource | None = None,
        dedupe: bool = True,
    ) -> None:
        if isinstance(rerankers, str | bytes) or not isinstance(rerankers, Sequence):
            raise ConfigurationError("rerankers must be a list of Reranker objects or specs")
        from rerankit.registry import as_reranker

        members = [as_reranker(m, name=f"rerankers[{i}]") for i, m in enumerate(rerankers)]
        if method not in METHODS:
            raise ConfigurationError(f"method must be one of {METHODS}, got {method!r}")
        if normalize not in NORMALIZATIONS:
            raise ConfigurationError(
                f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}"
            )
        if first_stage is not None and (not isinstance(first_stage, str) or not first_stage):
            raise ConfigurationError("first_stage must be a metadata key (a non-empty str) or None")
        if weights is None:
            weights = [1.0] * len(members)
        if isinstance(weights, str | bytes) or len(weights) != len(members):
            raise ConfigurationError(
                f"weights must hold one number per reranker ({len(members)}), got {weights!r}"
            )
        all_weights = [*weights, first_stage_weight] if first_stage else list(weights)
        for weight in all_weights:
            if (
                isinstance(weight, bool)
                or not isinstance(weight, numbers.Real)
                or not math.isfinite(float(weight))
                or weight < 0
            ):
                raise ConfigurationError(f"weights must be finite and >= 0, got {weight!r}")
        if len(all_weights) < 2:
            raise ConfigurationError(
                "fusion needs at least two signals: two rerankers, or one and first_stage"
            )
        if sum(float(w) for w in all_weights) <= 0:
            raise ConfigurationError("at least one weight must be positive")
        if (
            isinstance(rrf_k, bool)
            or not isinstance(rrf_k, numbers.Real)
            or not math.isfinite(float(rrf_k))
            or rrf_k < 0
        ):
            raise ConfigurationError(f"rrf_k must be a finite number >= 0, got {rrf_k!r}")
        self.rerankers: tuple[Reranker, ...] = tuple(members)
        self.method: FusionMethod = method
        self.weights: tuple[float, ...] = tuple(float(w) for w in weights)
        self.first_stage: str | None = first_stage
        self.first_stage_weight: float = float(first_stage_weight)
        self.rrf_k: float = float(rrf_k)
        self.normalize: Normalization = normalize
        super().__init__(calibration=calibration, dedupe=dedupe)

    @property
    def score_space(self) -> ScoreSpace:
        """``probability`` for a weighted mean of calibrated member scores; ``rank`` otherwise
        (RRF, min-max scaling and the first-stage score are relative to the candidate list)."""
        if self.method == "weighted" and self.normalize == "calibrated" and not self.first_stage:
            return ScoreSpace.PROBABILITY
        return ScoreSpace.RANK

    @property
    def model_name(self) -> str:
        parts = [
            f"{m.backend}:{m.model_name}" if m.model_name else m.backend for m in self.rerankers
        ]
        if self.first_stage:
            parts.append(f"first-stage:{self.first_stage}")
        return f"{self.method}({', '.join(parts)})"

    def warm_up(self) -> None:
        """Load every member's model now instead of on the first call."""
        for member in self.rerankers:
            warm = getattr(member, "warm_up", None)
            if callable(warm):
                warm()

    # -- scoring ---------------------------------------------------------------------------------

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        first = self._first_stage_scores(candidates)
        outputs = [member.rerank(query, candidates) for member in self.rerankers]
        return self._fuse(outputs, first, len(candidates))

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        first = self._first_stage_scores(candidates)
        outputs = await asyncio.gather(
            *(member.arerank(query, candidates) for member in self.rerankers)
        )
        return self._fuse(list(outputs), first, len(candidates))

    def _score_many(self, requests: Sequence[ScoreRequest]) -> list[ScoreBatch]:
        """Each member reranks every query at once (``rerank_batch``), then each is fused."""
        queries = [query for query, _ in requests]
        lists = [list(candidates) for _, candidates in requests]
        firsts = [self._first_stage_scores(candidates) for candidates in lists]
        per_member = [member.rerank_batch(queries, lists) for member in self.rerankers]
        return [
            self._fuse([outputs[i] for outputs in per_member], firsts[i], len(lists[i]))
            for i in range(len(requests))
        ]

    def _first_stage_scores(self, candidates: Sequence[Candidate]) -> list[float] | None:
        key = self.first_stage
        if key is None:
            return None
        scores = []
        for position, candidate in enumerate(candidates):
            value: object = candidate.metadata.get(key)
            if value is None and key == RETRIEVAL_SCORE_KEY:
                value = candidate.retrieval_score
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(float(value))
            ):
                raise InvalidDocumentError(
                    f"document {position}: FusionReranker(first_stage={key!r}) needs a finite "
                    f"number in Candidate.metadata[{key!r}]"
                    + (" or Candidate.retrieval_score" if key == RETRIEVAL_SCORE_KEY else "")
                    + f", got {value!r}",
                    index=position,
                )
            scores.append(float(value))
        return scores

    def _fuse(
        self, outputs: Sequence[RerankResults], first: Sequence[float] | None, n: int
    ) -> ScoreBatch:
        signals: list[tuple[float, list[float], list[float]]] = []  # (weight, raw, calibrated)
        truncated = [False] * n
        windows = [1] * n
        for weight, results in zip(self.weights, outputs, strict=True):
            aligned = per_candidate(results, n)
            signals.append((weight, [r.raw_score for r in aligned], [r.score for r in aligned]))
            for position, r in enumerate(aligned):
                truncated[position] = truncated[position] or r.truncated
                windows[position] = max(windows[position], r.windows)
        if first is not None:
            signals.append((self.first_stage_weight, list(first), list(first)))
        total = sum(weight for weight, _, _ in signals)
        fused = [0.0] * n
        if self.method == "rrf":
            for weight, raw, calibrated in signals:
                for position, rank in enumerate(_ranks(calibrated, raw)):
                    fused[position] += weight / (self.rrf_k + rank)
            best = total / (self.rrf_k + 1)
            fused = [f / best for f in fused]
        else:
            for index, (weight, raw, calibrated) in enumerate(signals):
                is_first = first is not None and index == len(signals) - 1
                use_calibrated = self.normalize == "calibrated" and not is_first
                for position, value in enumerate(calibrated if use_calibrated else _minmax(raw)):
                    fused[position] += weight * value
            fused = [f / total for f in fused]
        return ScoreBatch(
            raw=[min(1.0, max(0.0, f)) for f in fused], truncated=truncated, windows=windows
        )


def _ranks(primary: Sequence[float], secondary: Sequence[float]) -> list[int]:
    """1-based rank of each position: by ``primary`` desc, then ``secondary`` desc, then input."""
    order = sorted(range(len(primary)), key=lambda i: (-primary[i], -secondary[i], i))
    ranks = [0] * len(primary)
    for rank, position in enumerate(order, start=1):
        ranks[position] = rank
    return ranks


def _minmax(values: Sequence[float]) -> list[float]:
    """``values`` scaled to [0, 1]; all equal (or one) maps to 1."""
    low, high = min(values), max(values)
    if high - low <= 0:
        return [1.0] * len(values)
    return [(v - low) / (high - low) for v in values]
