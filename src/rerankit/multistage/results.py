"""What a multi-stage search returns: hits with their rank and score in every stage, timings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rerankit.annotate import RELEVANCE_SCORE_KEY, RERANK_KEY, rerank_block
from rerankit.qdrant.names import PAYLOAD_DOC_ID
from rerankit.types import RerankResult, RerankResults

__all__ = [
    "DOC_ID_KEY",
    "POINT_ID_KEY",
    "STAGES_KEY",
    "STAGES_RUN_KEY",
    "MultiStageHit",
    "MultiStageResults",
    "StageScore",
]

DOC_ID_KEY = PAYLOAD_DOC_ID
"""Metadata key of the document's own id (``None`` when it had none)."""
POINT_ID_KEY = "point_id"
"""Metadata key of the Qdrant point id (the content hash of the text)."""
STAGES_KEY = "stages"
"""Metadata key of the per-stage ranks and scores: ``{stage: {"rank", "score"}}``."""
STAGES_RUN_KEY = "stages_run"
"""Metadata key of the list of stages that ran, in order."""


@dataclass(frozen=True, slots=True)
class StageScore:
    """A document's place in one stage's list: 0-based ``rank`` and the stage's ``score``.

    Both are ``None`` when the document was not in that stage's list (e.g. a point that only
    the sparse prefetch found has no dense rank).

    Example:
        >>> from rerankit.multistage import StageScore
        >>> StageScore(rank=0, score=0.8).as_dict()
        {'rank': 0, 'score': 0.8}
    """

    rank: int | None
    score: float | None

    def as_dict(self) -> dict[str, Any]:
        """``{"rank": ..., "score": ...}`` (plain JSON-able values)."""
        return {"rank": self.rank, "score": self.score}


@dataclass(frozen=True, slots=True)
class MultiStageHit:
    """One retrieved document.

    Attributes:
        point_id: the Qdrant point id (the content hash of ``text``).
        doc_id: the document's own id as ingested, or ``None``.
        text: the stored text.
        metadata: the stored metadata (read-only copy of the payload's).
        score: the final score: the reranker's calibrated score in [0, 1] when a reranker ran,
            else the last Qdrant stage's score (cosine, BM25, RRF/DBSF or MaxSim).
        rank: 0-based position in the results.
        stages: the document's :class:`StageScore` in each stage that was observed (see
            :class:`MultiStageResults` for which are).
        rerank: the reranker's :class:`~rerankit.RerankResult`, when a reranker ran.

    Example:
        >>> from rerankit.multistage import MultiStageHit, StageScore
        >>> hit = MultiStageHit(point_id="p1", doc_id=None, text="Qdrant stores vectors.",
        ...                     metadata={"source": "faq"}, score=0.9, rank=0,
        ...                     stages={"dense": StageScore(rank=0, score=0.9)})
        >>> hit.id, hit.stages["dense"].rank
        ('p1', 0)
    """

    point_id: str
    doc_id: str | None
    text: str
    metadata: Mapping[str, Any]
    score: float
    rank: int
    stages: Mapping[str, StageScore]
    rerank: RerankResult | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        if not isinstance(self.stages, MappingProxyType):
            object.__setattr__(self, "stages", MappingProxyType(dict(self.stages)))

    @property
    def id(self) -> str:
        """The document's own id, else the point id."""
        return self.doc_id if self.doc_id is not None else self.point_id


class MultiStageResults(list[MultiStageHit]):
    """The results of one multi-stage search, best first, and how they were obtained.

    * ``stages_run``: the stages that ran, in order (``dense``, ``sparse``, ``fusion``,
      ``multivector``, ``rerank``).
    * ``observed``: the stages whose rank and score each hit records in ``hit.stages``. With
      ``trace=True`` (the default) that is every stage: the intermediate Qdrant stages are also
      run as queries of their own to learn their lists. With ``trace=False`` only the last
      Qdrant stage (whose list the nested query returns) and the rerank stage are observed.
    * ``timings``: milliseconds per stage. ``encode`` is the query encoding; a Qdrant stage's
      time is the wall time of the Qdrant query that ends with that stage, nested prefetches
      included (so ``fusion`` includes running the dense and sparse prefetches inside Qdrant,
      and the last Qdrant stage's time is the pipeline's whole Qdrant cost); ``rerank`` is the
      reranker and threshold; ``pipeline`` is ``encode`` + the last Qdrant stage + ``rerank``,
      what the search costs without tracing; ``total`` is the whole call, trace queries
      included.
    * ``rerank_results``: the reranker's :class:`~rerankit.RerankResults` (what the threshold
      dropped and why), or ``None`` without a reranker.
    * ``empty_reason``: why the list is empty, or ``None``.
    * ``candidates``: how many points the last Qdrant stage returned.
    * ``stage_lists``: each observed Qdrant stage's whole list, ``(point id, score)`` best
      first (the hits only record their own place in it).

    Example:
        >>> from rerankit.multistage import MultiStageResults
        >>> r = MultiStageResults([], query="q", stages_run=("dense",), observed=("dense",),
        ...                       timings={"encode": 1.0}, empty_reason="no point matched")
        >>> bool(r), r.empty_reason
        (False, 'no point matched')
    """

    def __init__(
        self,
        hits: Iterable[MultiStageHit] = (),
        *,
        query: str,
        stages_run: Sequence[str],
        observed: Sequence[str],
        timings: Mapping[str, float],
        rerank_results: RerankResults | None = None,
        empty_reason: str | None = None,
        candidates: int = 0,
        collection: str = "",
        stage_lists: Mapping[str, Sequence[tuple[str, float]]] | None = None,
    ) -> None:
        super().__init__(hits)
        self.query = query
        self.stages_run: tuple[str, ...] = tuple(stages_run)
        self.observed: tuple[str, ...] = tuple(observed)
        self.timings: Mapping[str, float] = MappingProxyType(dict(timings))
        self.rerank_results = rerank_results
        self.empty_reason = empty_reason
        self.candidates = candidates
        self.collection = collection
        self.stage_lists: Mapping[str, tuple[tuple[str, float], ...]] = MappingProxyType(
            {stage: tuple(found) for stage, found in (stage_lists or {}).items()}
        )

    @property
    def traced(self) -> bool:
        """True when every stage was observed."""
        return set(self.stages_run) <= set(self.observed)

    def metadata_for(self, hit: MultiStageHit) -> dict[str, Any]:
        """The metadata the framework faces attach: the stored metadata plus ``doc_id``,
        ``point_id``, ``stages`` (``{stage: {"rank", "score"}}``), ``stages_run`` and, when a
        reranker ran, ``relevance_score`` and the ``rerank`` block (plain JSON-able values)."""
        metadata: dict[str, Any] = dict(hit.metadata)
        metadata[DOC_ID_KEY] = hit.doc_id
        metadata[POINT_ID_KEY] = hit.point_id
        metadata[STAGES_KEY] = {name: score.as_dict() for name, score in hit.stages.items()}
        metadata[STAGES_RUN_KEY] = list(self.stages_run)
        if hit.rerank is not None and self.rerank_results is not None:
            metadata[RELEVANCE_SCORE_KEY] = hit.rerank.score
            metadata[RERANK_KEY] = rerank_block(
                hit.rerank,
                backend=self.rerank_results.backend,
                model=self.rerank_results.model,
            )
        return metadata

    def __repr__(self) -> str:
        return (
            f"MultiStageResults({len(self)} hits, stages_run={list(self.stages_run)}, "
            f"empty_reason={self.empty_reason!r})"
        )
