"""Small shared test helpers: a fake scorer at the model boundary, a tiny corpus, a snapshot of
what a result list shows, and the settings rerankit's retrievers give LangChain's standard
retriever suite."""

from __future__ import annotations

from collections.abc import Sequence

from rerankit import Candidate, Reranker, RerankResults, ScoreBatch, ScoreSpace

CORPUS = [
    ("qdrant", "Qdrant is a vector database that stores embeddings and searches them with HNSW."),
    ("pasta", "Boil the pasta in salted water for nine minutes, then drain it."),
    ("rerank", "A cross-encoder reranker scores each query and passage pair jointly."),
    ("paris", "Paris is the capital of France and sits on the Seine."),
    ("bm25", "BM25 ranks documents by term frequency and inverse document frequency."),
    ("coffee", "Pour-over coffee tastes best with water at about 93 degrees Celsius."),
]


class OverlapReranker(Reranker):
    """Deterministic fake scorer: the fraction of query words found in the text."""

    backend = "overlap"
    score_space = ScoreSpace.PROBABILITY

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    @property
    def model_name(self) -> str:
        return "word-overlap"

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        self.calls.append(list(texts))
        words = {w.strip("?.,").lower() for w in query.split()}
        return ScoreBatch(
            [len(words & {w.strip("?.,").lower() for w in t.split()}) / len(words) for t in texts]
        )


def snapshot(results: RerankResults, *, source: bool = True) -> tuple[object, ...]:
    """Everything a caller can observe in a result list (with ``source``, also the backend and
    model that made it), for comparing two runs."""
    observed: tuple[object, ...] = (
        [
            (r.index, r.score, r.raw_score, r.rank, r.candidate, r.truncated, r.windows)
            for r in results
        ],
        results.dropped,
        dict(results.duplicates),
        results.empty_reason,
        results.truncated,
    )
    return (*observed, results.backend, results.model) if source else observed


class RetrieverSuiteSettings:
    """The query and result-count argument of rerankit's retrievers in LangChain's standard
    retriever suite: list it before ``RetrieversIntegrationTests`` in the bases."""

    @property
    def retriever_query_example(self) -> str:
        return "which database stores vectors"

    @property
    def num_results_arg_name(self) -> str:
        return "top_n"
