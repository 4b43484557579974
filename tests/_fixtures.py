"""Small shared test helpers: a fake scorer at the model boundary and a tiny corpus."""

from __future__ import annotations

from collections.abc import Sequence

from rerankit import Reranker, ScoreBatch, ScoreSpace

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

    def _score(self, query: str, texts: Sequence[str]) -> ScoreBatch:
        self.calls.append(list(texts))
        words = {w.strip("?.,").lower() for w in query.split()}
        return ScoreBatch(
            [len(words & {w.strip("?.,").lower() for w in t.split()}) / len(words) for t in texts]
        )
