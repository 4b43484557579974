"""The (raw score, relevant?) pairs a calibration is fitted on: every candidate of a first stage
scored by the reranker, labelled by the dataset's qrels."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from rerankit._progress import progress_bar
from rerankit.base import Reranker, per_candidate
from rerankit.errors import ConfigurationError, DatasetError, TruncationWarning
from rerankit.eval.beir import BeirDataset
from rerankit.eval.runner import run_candidates
from rerankit.eval.runs import Run

__all__ = ["ScoredPairs", "score_pairs"]


@dataclass(frozen=True)
class ScoredPairs:
    """One entry per (query, candidate): the reranker's raw and calibrated score, the 0/1
    label (qrels grade >= ``rel_level``; an unjudged candidate counts as not relevant) and the
    query id.

    Example:
        >>> from rerankit.calibrate.pairs import ScoredPairs
        >>> pairs = ScoredPairs(raw=(2.0, -1.0), scores=(0.88, 0.27), labels=(1, 0),
        ...                     queries=("q1", "q1"))
        >>> len(pairs), pairs.positives
        (2, 1)
    """

    raw: tuple[float, ...]
    scores: tuple[float, ...]
    labels: tuple[int, ...]
    queries: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.raw)
        if not len(self.scores) == len(self.labels) == len(self.queries) == n:
            raise ConfigurationError("ScoredPairs fields must have one entry per pair")

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def positives(self) -> int:
        """How many pairs are relevant."""
        return sum(self.labels)

    def restrict(self, queries: Sequence[str]) -> ScoredPairs:
        """The pairs of ``queries`` only."""
        keep = set(queries)
        rows = [i for i, q in enumerate(self.queries) if q in keep]
        return ScoredPairs(
            raw=tuple(self.raw[i] for i in rows),
            scores=tuple(self.scores[i] for i in rows),
            labels=tuple(self.labels[i] for i in rows),
            queries=tuple(self.queries[i] for i in rows),
        )


def score_pairs(
    dataset: BeirDataset,
    run: Run,
    reranker: Reranker,
    *,
    rel_level: int = 1,
    depth: int | None = None,
    max_queries: int | None = None,
    progress: bool = True,
    desc: str = "score candidates",
) -> ScoredPairs:
    """Score the top ``depth`` candidates of ``run`` for each judged query of ``dataset``
    (the first ``max_queries`` of them) with ``reranker`` and label them.

    Candidates are built as ``rerankit eval`` builds them
    (:func:`~rerankit.eval.runner.run_candidates`), and reranked without a threshold.
    """
    if isinstance(rel_level, bool) or not isinstance(rel_level, int) or rel_level < 0:
        raise ConfigurationError(f"rel_level must be an int >= 0, got {rel_level!r}")
    judged = dataset.judged_queries()
    qids = [q for q in judged if q in run]
    if max_queries is not None:
        qids = qids[:max_queries]
    if not qids:
        raise DatasetError(
            f"{dataset.name}: the first stage has candidates for none of the {len(judged)} "
            f"judged queries of split {dataset.split!r}"
        )
    top = run.restrict(qids).top(depth)
    raw: list[float] = []
    scores: list[float] = []
    labels: list[int] = []
    queries: list[str] = []
    with progress_bar(
        total=len(top), desc=desc, unit="query", enabled=progress, leave=False
    ) as advance:
        for qid in top:
            query, candidates = run_candidates(dataset, top, qid)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TruncationWarning)
                results = reranker.rerank(query, candidates)
            grades = dataset.qrels.get(qid, {})
            for candidate, result in zip(
                candidates, per_candidate(results, len(candidates)), strict=True
            ):
                raw.append(result.raw_score)
                scores.append(result.score)
                labels.append(int(grades.get(candidate.id or "", 0) >= rel_level))
                queries.append(qid)
            advance(1)
    return ScoredPairs(tuple(raw), tuple(scores), tuple(labels), tuple(queries))
