"""``QdrantMultiStageRetriever`` for LangChain: hybrid prefetch, fusion, MaxSim rescoring inside
Qdrant and a rerankit reranker, as one ``BaseRetriever``.

A thin face over :class:`rerankit.multistage.QdrantMultiStage` (the framework-free core), with
the contract it shares with :class:`rerankit.llama_index.QdrantMultiStageRetriever`
(:mod:`rerankit.multistage.options`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from rerankit._results_list import ResultsList
from rerankit._typing import Unpack
from rerankit.langchain.store import as_records
from rerankit.multistage import IngestReport, MultiStageResults, QdrantMultiStage
from rerankit.multistage.options import SearchOptions, convert_hits
from rerankit.qdrant import IngestOptions

__all__ = ["MultiStageDocuments", "QdrantMultiStageRetriever"]


class MultiStageDocuments(ResultsList[Document, MultiStageResults]):
    """Retrieved documents, best first: a plain list that also carries the core's
    :class:`~rerankit.multistage.MultiStageResults` (``.results``: per-stage timings, what the
    threshold dropped) and ``.empty_reason``."""


def to_documents(results: MultiStageResults) -> MultiStageDocuments:
    """The LangChain ``Document`` of each hit (new objects), with the results attached."""
    documents = convert_hits(
        results, lambda hit, meta: Document(page_content=hit.text, id=hit.id, metadata=meta)
    )
    return MultiStageDocuments(documents, results)


class QdrantMultiStageRetriever(BaseRetriever):
    """Multi-stage Qdrant retrieval (dense + BM25 prefetch, RRF/DBSF fusion, optional MaxSim
    multivector rescoring, optional reranker) as a LangChain retriever.

    Its contract is the LlamaIndex face's (:mod:`rerankit.multistage.options`): pydantic
    fields ``pipeline``, ``top_n``, ``min_score``, ``query_filter``; per call
    ``retriever.invoke(query, top_n=3, min_score=0.5, query_filter=...)``; and
    :meth:`add_documents`.

    Each result is a new ``Document``: ``id`` is the document's own id (else the Qdrant point
    id); ``metadata`` holds the stored metadata with ``doc_id``, ``point_id``, ``stages``
    (``{stage: {"rank", "score"}}``, 0-based, ``None`` outside a stage's list), ``stages_run``
    and, with a reranker, ``relevance_score`` and the ``rerank`` block. ``invoke`` returns a
    :class:`MultiStageDocuments`, which carries the core's results (``.results.timings``).

    Example:
        >>> from langchain_core.documents import Document
        >>> from rerankit.langchain import QdrantMultiStageRetriever
        >>> from rerankit.multistage import FusionStage, QdrantMultiStage
        >>> pipeline = QdrantMultiStage(collection="faq", path=":memory:",
        ...                             fusion=FusionStage(limit=4), reranker="embedding")
        >>> retriever = QdrantMultiStageRetriever(pipeline=pipeline, top_n=1)
        >>> _ = retriever.add_documents([
        ...     Document("Qdrant stores vectors.", id="q1", metadata={"source": "faq"}),
        ...     Document("Boil pasta for nine minutes.", id="p1")], show_progress=False)
        >>> doc = retriever.invoke("vector database")[0]
        >>> doc.id, doc.metadata["source"], sorted(doc.metadata["stages"])
        ('q1', 'faq', ['dense', 'fusion', 'rerank', 'sparse'])
        >>> len(retriever.invoke("vector database", top_n=2))
        2
        >>> pipeline.close()
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    pipeline: QdrantMultiStage = Field(description="The multi-stage core: stages and reranker.")
    top_n: int | None = Field(default=None, ge=0, description="Documents to return.")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    query_filter: Any = Field(default=None, description="A Qdrant Filter for every stage.")

    def add_documents(
        self, documents: Sequence[Document], **options: Unpack[IngestOptions]
    ) -> IngestReport:
        """Ingest LangChain documents (``page_content``, ``id``, ``metadata``, left unchanged)
        with :meth:`QdrantMultiStage.ingest`; ``options``: ``batch_size``,
        ``show_progress``, ``recreate``."""
        return self.pipeline.ingest(as_records(documents), **options)

    def _options(self, overrides: dict[str, Any]) -> SearchOptions:
        return SearchOptions(self.top_n, self.min_score, self.query_filter).merged(overrides)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return to_documents(self._options(kwargs).search(self.pipeline, query))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return to_documents(await self._options(kwargs).asearch(self.pipeline, query))
