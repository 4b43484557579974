"""``evaluate``: rerank a first stage's candidates with each reranker and measure everything."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from rerankit.annotate import RETRIEVAL_SCORE_KEY
from rerankit.base import Reranker
from rerankit.errors import ConfigurationError, DatasetError, TruncationWarning
from rerankit.eval._progress import iterate
from rerankit.eval.beir import BeirDataset
from rerankit.eval.cache import EmbeddingCache
from rerankit.eval.metrics import PRIMARY, Evaluator, compare, default_measures
from rerankit.eval.report import EvalReport, ScoreHistogram, SystemResult, environment
from rerankit.eval.runs import Run, RunEntry
from rerankit.sentence import default_model
from rerankit.types import Candidate, RerankResults

__all__ = ["RETRIEVAL_RANK_KEY", "display_model", "evaluate", "rerank_run", "run_candidates"]

RETRIEVAL_RANK_KEY = "retrieval_rank"
"""Candidate metadata key of the first-stage rank (1-based) set by :func:`rerank_run`."""


def display_model(model: str) -> str:
    """A short, readable model name: ``all-MiniLM-L6-v2`` for the offline default."""
    if not model:
        return ""
    if model == default_model():
        return "all-MiniLM-L6-v2"
    path = Path(model)
    if path.is_dir():
        return path.name if path.name != "model" else path.parent.name
    return model


def _name(reranker: Reranker) -> str:
    """``backend (model)``; for a fusion ``method(member + member + first stage)``."""
    from rerankit.backends.fusion import FusionReranker

    if isinstance(reranker, FusionReranker):
        parts = [m.backend for m in reranker.rerankers]
        if reranker.first_stage:
            parts.append("first stage")
        return f"{reranker.method}({' + '.join(parts)})"
    model = display_model(reranker.model_name)
    return f"{reranker.backend} ({model})" if model else reranker.backend


def _ordered(results: RerankResults, n: int) -> list[tuple[int, float]]:
    """Every input position with its calibrated score, in the reranker's order.

    Duplicates follow the copy that was scored; documents a policy dropped come last.
    """
    followers: dict[int, list[int]] = {}
    for duplicate, kept in sorted(results.duplicates.items()):
        followers.setdefault(kept, []).append(duplicate)
    order: list[tuple[int, float]] = []
    scored = [(r.index, r.score) for r in results]
    scored += [(d.index, d.score) for d in sorted(results.dropped, key=lambda d: -d.score)]
    for index, score in scored:
        order.append((index, score))
        order.extend((dup, score) for dup in followers.get(index, []))
    if sorted(i for i, _ in order) != list(range(n)):
        raise ConfigurationError("a reranker's results do not account for every candidate")
    return order


def run_candidates(dataset: BeirDataset, run: Run, qid: str) -> tuple[str, list[Candidate]]:
    """Query ``qid``'s text and its candidates in ``run``, as :func:`rerank_run` reranks them:
    the document's id and text (title + text), the first-stage score and rank in
    ``metadata["retrieval_score"]`` and ``metadata["retrieval_rank"]``."""
    candidates = [
        Candidate(
            dataset.text(e.doc_id),
            id=e.doc_id,
            metadata={RETRIEVAL_SCORE_KEY: e.score, RETRIEVAL_RANK_KEY: e.rank},
        )
        for e in run[qid]
    ]
    return _query_text(dataset, run, qid), candidates


def rerank_run(
    dataset: BeirDataset,
    run: Run,
    reranker: Reranker,
    *,
    name: str | None = None,
    progress: bool = True,
) -> tuple[Run, dict[str, list[float]], int]:
    """Rerank each query's candidates of ``run``; returns the new run, scores and truncations.

    Each candidate is a :class:`~rerankit.Candidate` with the document's id, its text
    (title + text) and the first-stage score and rank in ``metadata["retrieval_score"]`` and
    ``metadata["retrieval_rank"]`` (which is how a :class:`~rerankit.FusionReranker` sees the
    first stage). The new run's scores are ``n, n-1, ..., 1`` in the reranker's order, so any
    trec_eval reproduces its figures; the calibrated scores come back separately, per query in
    the new order.
    """
    label = name or _name(reranker)
    entries: dict[str, tuple[RunEntry, ...]] = {}
    scores: dict[str, list[float]] = {}
    truncated = 0
    for qid in iterate(run, total=len(run), desc=label, unit="query", enabled=progress):
        first = run[qid]
        query, candidates = run_candidates(dataset, run, qid)
        with warnings.catch_warnings():
            # Counted and reported instead (SystemResult.truncated).
            warnings.simplefilter("ignore", TruncationWarning)
            results = reranker.rerank(query, candidates)
        truncated += results.truncated
        order = _ordered(results, len(candidates))
        n = len(order)
        entries[qid] = tuple(
            RunEntry(first[index].doc_id, float(n - rank), rank + 1)
            for rank, (index, _) in enumerate(order)
        )
        scores[qid] = [score for _, score in order]
    return Run(entries, name=label), scores, truncated


def evaluate(
    dataset: BeirDataset,
    first_stage: Run,
    rerankers: Mapping[str, Reranker] | Sequence[Reranker] = (),
    *,
    depth: int | None = None,
    rel_level: int = 1,
    measures: Sequence[str] | None = None,
    cache: EmbeddingCache | None = None,
    max_queries: int | None = None,
    first_stage_name: str | None = None,
    save_runs: str | Path | None = None,
    progress: bool = True,
) -> EvalReport:
    """Measure ``first_stage`` and each reranker over its top ``depth`` candidates per query.

    Queries are the dataset split's judged queries that the first stage has candidates for
    (the first ``max_queries`` of them, if set). The first stage is measured on its scores as
    given (trec_eval semantics); rerankers on their order. qrels are the split's full qrels,
    so judged documents the first stage missed still count in the ideal DCG.

    ``measures`` default to :func:`default_measures` (nDCG@10, RR@10, R@10 and R@depth, binary
    measures at grade >= ``rel_level``). ``cache`` (an :class:`EmbeddingCache`) lets embedding
    rerankers reuse document embeddings across runs. ``save_runs`` writes each system's run
    as a TREC run file into that folder.

    Example:
        >>> from rerankit import EmbeddingReranker
        >>> from rerankit.eval import evaluate, load_beir, read_run
        >>> data = load_beir("path/to/trec-dl-2019-passage")  # doctest: +SKIP
        >>> bm25 = read_run("path/to/trec-dl-2019-passage/bm25_top100.jsonl")  # doctest: +SKIP
        >>> report = evaluate(data, bm25, [EmbeddingReranker()], rel_level=2)  # doctest: +SKIP
        >>> print(report.to_markdown())  # doctest: +SKIP
    """
    if isinstance(rerankers, Mapping):
        named = list(rerankers.items())
    else:
        named = []
        for reranker in rerankers:
            if not isinstance(reranker, Reranker):
                raise ConfigurationError(
                    f"rerankers must be Reranker objects, got {type(reranker).__name__}"
                )
            stem = label = _name(reranker)
            i = 2
            while label in {n for n, _ in named}:
                label, i = f"{stem} #{i}", i + 1
            named.append((label, reranker))
    for label, reranker in named:
        if not isinstance(reranker, Reranker):
            raise ConfigurationError(f"{label!r} is not a Reranker: {type(reranker).__name__}")
    if max_queries is not None and (
        isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 1
    ):
        raise ConfigurationError(f"max_queries must be a positive int or None, got {max_queries!r}")
    judged = dataset.judged_queries()
    qids = [q for q in judged if q in first_stage]
    missing = len(judged) - len(qids)
    if max_queries is not None:
        qids = qids[:max_queries]
    if not qids:
        raise DatasetError(
            f"{dataset.name}: the first stage has candidates for none of the {len(judged)} "
            f"judged queries of split {dataset.split!r}"
        )
    run = first_stage.restrict(qids).top(depth)
    absent = sorted({e.doc_id for q in run for e in run[q] if e.doc_id not in dataset.corpus})
    if absent:
        raise DatasetError(
            f"{dataset.name}: {len(absent)} candidate documents are not in the corpus, "
            f"e.g. {absent[:5]}"
        )
    effective_depth = depth or max(len(run[q]) for q in run)
    measures = (
        list(measures) if measures else default_measures(depth=effective_depth, rel_level=rel_level)
    )
    # Only the evaluated queries' qrels: ir-measures scores a judged query with no run as 0.
    evaluator = Evaluator({q: dataset.qrels[q] for q in run}, measures=measures)
    primary = PRIMARY if PRIMARY in evaluator.measures else evaluator.measures[0]
    if save_runs is not None:
        Path(save_runs).mkdir(parents=True, exist_ok=True)

    base_scores = run.scores()
    base_name = first_stage_name or run.name
    base = SystemResult(
        name=base_name,
        kind="first-stage",
        aggregate=evaluator.aggregate(base_scores),
        per_query=evaluator.per_query(base_scores),
    )
    systems = [base]
    if save_runs is not None:
        run.write_trec(Path(save_runs) / f"{_slug(base_name)}.run", tag=_slug(base_name))

    in_scope = {e.doc_id for q in run for e in run[q]}
    scope_texts = [dataset.text(d) for d in dataset.corpus if d in in_scope]
    query_texts = [_query_text(dataset, run, q) for q in run]
    for label, reranker in named:
        if cache is not None:
            cache.attach(
                reranker, scope_texts, queries=query_texts, desc=f"encode documents for {label}"
            )
        warm = getattr(reranker, "warm_up", None)
        if callable(warm):
            warm()
        started = time.perf_counter()
        reranked, scores, truncated = rerank_run(
            dataset, run, reranker, name=label, progress=progress
        )
        seconds = time.perf_counter() - started
        rank_scores = reranked.rank_scores()
        per_query = evaluator.per_query(rank_scores)
        system = SystemResult(
            name=label,
            kind="reranker",
            backend=reranker.backend,
            model=reranker.model_name,
            aggregate=evaluator.aggregate(rank_scores),
            per_query=per_query,
            seconds=round(seconds, 3),
            truncated=truncated,
            histogram=_histogram(dataset, reranked, scores, rel_level),
        )
        for measure in evaluator.measures:
            delta, diffs = compare(base.per_query, per_query, measure)
            system.deltas[measure] = delta
            if measure == primary:
                system.per_query_delta = diffs
        systems.append(system)
        if save_runs is not None:
            reranked.write_trec(Path(save_runs) / f"{_slug(label)}.run", tag=_slug(label))

    return EvalReport(
        dataset={
            "name": dataset.name,
            "path": str(dataset.path) if dataset.path else None,
            "split": dataset.split,
            "queries": len(base.per_query),
            "judged_queries": len(judged),
            "judged_queries_without_candidates": missing,
            "documents": len(dataset.corpus),
            "qrels": sum(len(d) for d in dataset.qrels.values()),
        },
        settings={
            "first_stage": base_name,
            "depth": effective_depth,
            "rel_level": rel_level,
            "measures": evaluator.measures,
            "primary": primary,
            "max_queries": max_queries,
        },
        systems=systems,
        environment=environment(),
    )


def _query_text(dataset: BeirDataset, run: Run, qid: str) -> str:
    query = dataset.queries.get(qid) or run.query_texts.get(qid)
    if not query:
        raise DatasetError(f"{dataset.name}: query {qid!r} has no text")
    return query


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label).strip("_") or "run"


def _histogram(
    dataset: BeirDataset, run: Run, scores: Mapping[str, Sequence[float]], rel_level: int
) -> ScoreHistogram:
    relevant: list[float] = []
    other: list[float] = []
    for qid in run:
        judged = dataset.qrels.get(qid, {})
        for entry, score in zip(run[qid], scores[qid], strict=True):
            (relevant if judged.get(entry.doc_id, 0) >= rel_level else other).append(score)
    return ScoreHistogram.build(relevant, other)
