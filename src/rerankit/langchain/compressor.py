"""``RerankCompressor``: a LangChain ``BaseDocumentCompressor`` backed by any rerankit reranker."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document

from rerankit.components import RerankSettings
from rerankit.langchain._convert import (
    RerankedDocuments,
    annotated,
    atraced,
    to_candidates,
    traced,
)

__all__ = ["RerankCompressor", "RerankedDocuments"]


class RerankCompressor(RerankSettings, BaseDocumentCompressor):
    """Reranks documents with a rerankit :class:`~rerankit.Reranker` and applies a threshold.

    Drops into ``ContextualCompressionRetriever`` and any LCEL chain. Returns copies of the
    input documents, best first, with ``metadata["relevance_score"]`` (calibrated, in [0, 1]),
    ``metadata["retrieval_score"]`` (the first-stage score, when the input had one there) and
    ``metadata["rerank"]`` (raw score, score space, rank, original rank, backend, model and
    candidate count). ``Document.id`` is kept; the input documents are never
    modified. ``reranker=None`` keeps the retrieval order (no model), with the same metadata.

    Each call is a LangChain child run named ``rerank`` of the ``callbacks`` it is given, so
    callback handlers and LangSmith traces see the query, the documents, their scores, what
    the threshold dropped and why a list is empty, and the latency. The returned list is a
    :class:`RerankedDocuments` (``.results``, ``.empty_reason``).

    Example:
        >>> from langchain_core.documents import Document
        >>> from rerankit.langchain import RerankCompressor
        >>> compressor = RerankCompressor(reranker="embedding", top_n=1)
        >>> docs = [Document("Pasta recipes"), Document("Qdrant stores vectors.", id="q")]
        >>> best = compressor.compress_documents(docs, "vector database")
        >>> best[0].id, round(best[0].metadata["relevance_score"], 2) > 0
        ('q', True)
    """

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``; returns annotated copies, best first."""
        candidates = to_candidates(documents)
        return traced(
            callbacks,
            query,
            documents,
            lambda: annotated(documents, self.rerank_candidates(query, candidates)),
        )

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Async :meth:`compress_documents` (the reranker's async path)."""
        candidates = to_candidates(documents)

        async def run() -> RerankedDocuments:
            return annotated(documents, await self.arerank_candidates(query, candidates))

        return await atraced(callbacks, query, documents, run)
