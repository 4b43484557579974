"""LangChain Document <-> rerankit Candidate, without mutating the caller's documents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from rerankit._results_list import ResultsList
from rerankit.annotate import RELEVANCE_SCORE_KEY, RERANK_KEY, rerank_block
from rerankit.registry import from_spec
from rerankit.types import Candidate, RerankResults


class RerankedDocuments(ResultsList[Document, RerankResults]):
    """Reranked documents, best first: a plain list that also carries the
    :class:`~rerankit.RerankResults` (``.results``), so a chain can see what the threshold
    dropped and why the list is empty (``.empty_reason``)."""

    def __init__(self, documents: Sequence[Document], results: RerankResults) -> None:
        super().__init__(documents, results)


def to_candidates(documents: Sequence[Document]) -> list[Candidate]:
    return [Candidate(doc.page_content, id=doc.id, metadata=doc.metadata) for doc in documents]


def annotated(documents: Sequence[Document], results: RerankResults) -> RerankedDocuments:
    """Copies of the kept documents, best first, with the rerank metadata added."""
    out = []
    for result in results:
        doc = documents[result.index]
        metadata: dict[str, Any] = {
            **doc.metadata,
            RELEVANCE_SCORE_KEY: result.score,
            RERANK_KEY: rerank_block(result, backend=results.backend, model=results.model),
        }
        out.append(doc.model_copy(update={"metadata": metadata}))
    return RerankedDocuments(out, results)


def resolve_reranker(data: dict[str, Any]) -> dict[str, Any]:
    """Constructor data with a ``reranker`` spec string replaced by the reranker it names."""
    value = data.get("reranker")
    if isinstance(value, str):
        return {**data, "reranker": from_spec(value)}
    return data
