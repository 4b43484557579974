"""``RerankCompressor``: a LangChain ``BaseDocumentCompressor`` backed by any rerankit reranker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field

from rerankit.base import Reranker
from rerankit.langchain._convert import (
    RerankedDocuments,
    annotated,
    resolve_reranker,
    to_candidates,
)
from rerankit.threshold import ThresholdPolicy

__all__ = ["RerankCompressor", "RerankedDocuments"]


class RerankCompressor(BaseDocumentCompressor):
    """Reranks documents with a rerankit :class:`~rerankit.Reranker` and applies a threshold.

    Drops into ``ContextualCompressionRetriever`` and any LCEL chain. Returns copies of the
    input documents, best first, with ``metadata["relevance_score"]`` (calibrated, in [0, 1])
    and ``metadata["rerank"]`` (raw score, rank, original rank, backend, model). ``Document.id``
    is kept; the input documents are never modified.

    Example:
        >>> from langchain_core.documents import Document
        >>> from rerankit.langchain import RerankCompressor
        >>> compressor = RerankCompressor(reranker="embedding", top_n=1)
        >>> docs = [Document("Pasta recipes"), Document("Qdrant stores vectors.", id="q")]
        >>> best = compressor.compress_documents(docs, "vector database")
        >>> best[0].id, round(best[0].metadata["relevance_score"], 2) > 0
        ('q', True)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    reranker: Reranker = Field(description="A rerankit Reranker, or a spec such as 'embedding'.")
    top_n: int | None = Field(default=None, ge=0, description="Keep at most this many documents.")
    min_score: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Drop documents whose calibrated score is lower."
    )
    policy: ThresholdPolicy | None = Field(
        default=None, description="Full threshold policy (ratio, largest gap, min_keep)."
    )

    def __init__(self, **data: Any) -> None:
        # Resolve a spec string before validation, so spec errors surface as RerankError.
        super().__init__(**resolve_reranker(data))

    def _call_kwargs(self) -> dict[str, Any]:
        return {"top_n": self.top_n, "min_score": self.min_score, "policy": self.policy}

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``; returns annotated copies, best first."""
        results = self.reranker.rerank(query, to_candidates(documents), **self._call_kwargs())
        return annotated(documents, results)

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Async :meth:`compress_documents`."""
        results = await self.reranker.arerank(
            query, to_candidates(documents), **self._call_kwargs()
        )
        return annotated(documents, results)
