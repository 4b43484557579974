"""Building what a multi-stage search returns from what Qdrant and the reranker gave back.

:func:`candidates` turns the last Qdrant stage's points into the reranker's input;
:func:`build_results` makes the :class:`~rerankit.multistage.MultiStageResults`: each hit with
its rank and score in every observed stage, the timings, and why the list is empty when it is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rerankit.multistage.config import PipelineConfig
from rerankit.multistage.plan import SearchRun
from rerankit.multistage.results import MultiStageHit, MultiStageResults, StageScore
from rerankit.multistage.stages import STAGE_ENCODE, STAGE_RERANK
from rerankit.qdrant.payload import StoredDocument, from_payload
from rerankit.types import Candidate

__all__ = ["build_results", "candidates", "elapsed_ms"]


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` value)."""
    return (time.perf_counter() - start) * 1000.0


def _stored(collection: str, point: Any) -> StoredDocument:
    return from_payload(point.payload, collection=collection, point=point.id)


def candidates(collection: str, points: Sequence[Any]) -> list[Candidate]:
    """The reranker's input: one candidate per point (id: the point id)."""
    out = []
    for point in points:
        stored = _stored(collection, point)
        out.append(Candidate(stored.text, id=str(point.id), metadata=stored.metadata))
    return out


def _hit(
    collection: str,
    point: Any,
    *,
    score: float,
    rank: int,
    stages: dict[str, StageScore],
    rerank: Any = None,
) -> MultiStageHit:
    stored = _stored(collection, point)
    return MultiStageHit(
        point_id=str(point.id),
        doc_id=stored.doc_id,
        text=stored.text,
        metadata=stored.metadata,
        score=score,
        rank=rank,
        stages=stages,
        rerank=rerank,
    )


def build_results(config: PipelineConfig, run: SearchRun) -> MultiStageResults:
    """The results of a finished run."""
    observed, points, final = run.observed, run.points, run.final
    rerank_results, timings = run.rerank_results, run.timings
    for stage in run.plan.skipped:
        # Nothing to run (no BM25 term in the query): an empty list, observed.
        observed.setdefault(stage, [])
    places = {
        stage: {pid: (rank, score) for rank, (pid, score) in enumerate(found)}
        for stage, found in observed.items()
    }
    order = [s for s in config.qdrant_stages if s in observed]

    def stage_scores(pid: str) -> dict[str, StageScore]:
        scores = {}
        for stage in order:
            place = places[stage].get(pid)
            scores[stage] = StageScore(*place) if place else StageScore(None, None)
        return scores

    collection = config.collection
    hits: list[MultiStageHit] = []
    empty_reason: str | None = None
    if not points:
        empty_reason = (
            "the query has no BM25 term and no other prefetch ran"
            if final is None
            else "no point matched"
        )
    elif rerank_results is not None:
        for result in rerank_results:
            point = points[result.index]
            scores = stage_scores(str(point.id))
            scores[STAGE_RERANK] = StageScore(result.rank, result.score)
            hits.append(
                _hit(
                    collection,
                    point,
                    score=result.score,
                    rank=result.rank,
                    stages=scores,
                    rerank=result,
                )
            )
        empty_reason = rerank_results.empty_reason
    else:
        keep = points if run.policy.top_n is None else points[: run.policy.top_n]
        for rank, point in enumerate(keep):
            hits.append(
                _hit(
                    collection,
                    point,
                    score=float(point.score),
                    rank=rank,
                    stages=stage_scores(str(point.id)),
                )
            )
        if not hits:
            empty_reason = "top_n=0"
    timings["pipeline"] = (
        timings.get(STAGE_ENCODE, 0.0)
        + (timings.get(final, 0.0) if final is not None else 0.0)
        + timings.get(STAGE_RERANK, 0.0)
    )
    timings["total"] = elapsed_ms(run.started)
    observed_stages = [*order, *([STAGE_RERANK] if rerank_results is not None else [])]
    return MultiStageResults(
        hits,
        query=run.query,
        stages_run=config.stages,
        observed=observed_stages,
        timings=timings,
        rerank_results=rerank_results,
        empty_reason=empty_reason,
        candidates=len(points),
        collection=collection,
        stage_lists={stage: observed[stage] for stage in order},
    )
