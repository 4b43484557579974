"""The state of one multi-stage search between its IO calls.

:meth:`~rerankit.multistage.QdrantMultiStage.search` and
:meth:`~rerankit.multistage.QdrantMultiStage.asearch` differ only in how they call Qdrant and
the reranker; what to ask, in which order, and what came back is kept here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rerankit.multistage.stages import RERANK
from rerankit.threshold import ThresholdPolicy
from rerankit.types import RerankResults

__all__ = ["Plan", "QueryVectors", "SearchRun"]


@dataclass(frozen=True)
class QueryVectors:
    """The query's vectors, one per configured stage (``None`` for a stage that is off)."""

    dense: list[float] | None
    sparse: Any  # models.SparseVector, or None when the query has no BM25 term
    tokens: list[list[float]] | None


@dataclass(frozen=True)
class Plan:
    """The Qdrant queries of one search: one per stage, each ending at that stage."""

    requests: dict[str, dict[str, Any]]
    """Stage -> ``query_points`` keyword arguments (the query ending at that stage)."""
    skipped: frozenset[str]
    """Stages with nothing to run (a sparse prefetch for a query with no BM25 term)."""


@dataclass
class SearchRun:
    """One search: its plan, the calls it makes, and what each call returned."""

    query: str
    policy: ThresholdPolicy
    started: float
    """``time.perf_counter()`` when the search began (for the ``total`` timing)."""
    plan: Plan
    final: str | None
    """The last Qdrant stage that runs: its query returns the points, with their payloads."""
    traced: tuple[str, ...]
    """Earlier stages queried on their own (``trace=True``) to record their lists."""
    timings: dict[str, float]
    observed: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    """Stage -> the (point id, score) list it returned."""
    points: list[Any] = field(default_factory=list)
    """The final stage's points (``ScoredPoint`` objects with payloads)."""
    rerank_results: RerankResults | None = None

    def calls(self) -> list[tuple[str, dict[str, Any], bool]]:
        """The Qdrant queries to make, in order: ``(stage, query_points kwargs, with_payload)``."""
        calls = [(stage, self.plan.requests[stage], False) for stage in self.traced]
        if self.final is not None:
            calls.append((self.final, self.plan.requests[self.final], True))
        return calls

    def record(self, stage: str, points: Sequence[Any], elapsed_ms: float) -> None:
        """Keep what one Qdrant query returned, and how long it took."""
        self.timings[stage] = elapsed_ms
        self.observed[stage] = [(str(p.id), float(p.score)) for p in points]
        if stage == self.final:
            self.points = list(points)

    def reranked(self, results: RerankResults, elapsed_ms: float) -> None:
        """Keep the reranker's results, and how long it took."""
        self.rerank_results = results
        self.timings[RERANK] = elapsed_ms
