"""Planning one multi-stage search: the query's vectors, the Qdrant requests, what came back.

:meth:`~rerankit.multistage.QdrantMultiStage.search` and
:meth:`~rerankit.multistage.QdrantMultiStage.asearch` differ only in how they call Qdrant and
the reranker; what to ask, in which order, and what came back is kept here, once.

Stages 1-3 are one nested Query API request: the dense and sparse prefetches, fused, rescored
by MaxSim. With ``trace=True`` the earlier stages are also queried on their own, to learn their
lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rerankit.multistage.config import PipelineConfig
from rerankit.multistage.stages import (
    STAGE_DENSE,
    STAGE_ENCODE,
    STAGE_FUSION,
    STAGE_MULTIVECTOR,
    STAGE_RERANK,
    STAGE_SPARSE,
)
from rerankit.qdrant.client import qdrant_models
from rerankit.qdrant.encoding import Encoders
from rerankit.qdrant.schema import check_sizes
from rerankit.sparse import BM25Encoder
from rerankit.threshold import ThresholdPolicy
from rerankit.types import RerankResults

__all__ = ["Plan", "QueryVectors", "SearchRun", "encode_query", "plan_search", "start_run"]


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
        self.timings[STAGE_RERANK] = elapsed_ms


def encode_query(
    config: PipelineConfig, encoders: Encoders, query: str, sizes: Mapping[str, int]
) -> QueryVectors:
    """The query's vectors; ``sizes`` (by vector name) are the collection's, checked here."""
    dense, tokens = encoders.query(query)
    sparse = None
    if config.sparse is not None:
        # Query weights do not depend on the corpus statistics: 1 per distinct term.
        sv = BM25Encoder(k1=config.sparse.k1, b=config.sparse.b).encode_query(query)
        if sv.indices:
            sparse = qdrant_models().SparseVector(indices=sv.indices, values=sv.values)
    got: dict[str, int] = {}
    if dense is not None and config.dense is not None:
        got[config.dense.vector_name] = len(dense)
    if tokens is not None and config.multivector is not None:
        got[config.multivector.vector_name] = len(tokens[0])
    check_sizes(config.collection, config.layout, sizes, got)
    return QueryVectors(dense=dense, sparse=sparse, tokens=tokens)


def plan_search(config: PipelineConfig, vectors: QueryVectors, query_filter: Any) -> Plan:
    """The Qdrant request ending at each stage, for ``vectors``."""
    models = qdrant_models()
    requests: dict[str, dict[str, Any]] = {}
    skipped: set[str] = set()
    prefetches: list[Any] = []
    if config.dense is not None:
        requests[STAGE_DENSE] = {
            "query": vectors.dense,
            "using": config.dense.vector_name,
            "limit": config.dense.limit,
        }
        prefetches.append(models.Prefetch(**requests[STAGE_DENSE]))
    if config.sparse is not None:
        if vectors.sparse is None:
            skipped.add(STAGE_SPARSE)
        else:
            requests[STAGE_SPARSE] = {
                "query": vectors.sparse,
                "using": config.sparse.vector_name,
                "limit": config.sparse.limit,
            }
            prefetches.append(models.Prefetch(**requests[STAGE_SPARSE]))
    upstream: Any = prefetches[0] if len(prefetches) == 1 else None
    if config.fusion is not None:
        fusion = models.Fusion.RRF if config.fusion.method == "rrf" else models.Fusion.DBSF
        requests[STAGE_FUSION] = {
            "prefetch": prefetches,
            "query": models.FusionQuery(fusion=fusion),
            "limit": config.fusion.limit,
        }
        upstream = models.Prefetch(**requests[STAGE_FUSION]) if prefetches else None
    if config.multivector is not None and vectors.tokens is not None:
        if upstream is None:
            skipped.add(STAGE_MULTIVECTOR)
        else:
            requests[STAGE_MULTIVECTOR] = {
                "prefetch": upstream,
                "query": vectors.tokens,
                "using": config.multivector.vector_name,
                "limit": config.multivector.limit,
            }
    if STAGE_FUSION in requests and not prefetches:
        del requests[STAGE_FUSION]
        skipped.add(STAGE_FUSION)
    if query_filter is not None:
        for request in requests.values():
            request["query_filter"] = query_filter
    return Plan(requests=requests, skipped=frozenset(skipped))


def start_run(
    config: PipelineConfig,
    query: str,
    policy: ThresholdPolicy,
    started: float,
    vectors: QueryVectors,
    query_filter: Any,
    *,
    encode_ms: float,
) -> SearchRun:
    """The run of one search once its query is encoded: the plan and the calls to make."""
    plan = plan_search(config, vectors, query_filter)
    final = next((s for s in reversed(config.qdrant_stages) if s in plan.requests), None)
    traced = (
        tuple(s for s in config.qdrant_stages if s != final and s in plan.requests)
        if config.trace
        else ()
    )
    return SearchRun(
        query=query,
        policy=policy,
        started=started,
        plan=plan,
        final=final,
        traced=traced,
        timings={STAGE_ENCODE: encode_ms},
    )
