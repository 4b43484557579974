"""``QdrantMultiStageRetriever`` for LangChain: hybrid prefetch, fusion, MaxSim rescoring inside
Qdrant and a rerankit reranker, as one ``BaseRetriever``.

A thin face over :class:`rerankit.multistage.QdrantMultiStage` (the framework-free core).
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
from rerankit.errors import ConfigurationError
from rerankit.multistage import IngestReport, MultiStageResults, QdrantMultiStage
from rerankit.types import Candidate

__all__ = ["MultiStageDocuments", "QdrantMultiStageRetriever"]

_CALL_KWARGS = frozenset({"top_n", "min_score", "query_filter"})


class MultiStageDocuments(ResultsList[Document, MultiStageResults]):
    """Retrieved documents, best first: a plain list that also carries the core's
    :class:`~rerankit.multistage.MultiStageResults` (``.results``: per-stage timings, what the
    threshold dropped) and ``.empty_reason``."""

    def __init__(self, documents: Sequence[Document], results: MultiStageResults) -> None:
        super().__init__(documents, results)


def to_document(results: MultiStageResults, index: int) -> Document:
    """The LangChain ``Document`` of ``results[index]`` (a new object)."""
    hit = results[index]
    return Document(page_content=hit.text, id=hit.id, metadata=results.metadata_for(hit))


class QdrantMultiStageRetriever(BaseRetriever):
    """Multi-stage Qdrant retrieval (dense + BM25 prefetch, RRF/DBSF fusion, optional MaxSim
    multivector rescoring, optional reranker) as a LangChain retriever.

    ``pipeline`` is a :class:`~rerankit.multistage.QdrantMultiStage`: it holds the stages,
    their limits, the reranker and the threshold. ``top_n`` / ``min_score`` here (or per call:
    ``retriever.invoke(q, top_n=3)``) override its threshold; ``query_filter`` (a Qdrant
    ``Filter``) can be passed per call. :meth:`add_documents` ingests LangChain documents with
    every vector field the pipeline needs.

    Returned documents are new objects: ``id`` is the document's own id (else the Qdrant point
    id) and ``metadata`` is the stored metadata plus ``doc_id``, ``point_id``, ``stages``
    (``{stage: {"rank", "score"}}``, 0-based ranks, ``None`` when the document was not in that
    stage's list), ``stages_run`` and, with a reranker, ``relevance_score`` and the ``rerank``
    block. The list is a :class:`MultiStageDocuments` whose ``.results.timings`` split the
    latency per stage.

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
        >>> pipeline.close()
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    pipeline: QdrantMultiStage = Field(description="The multi-stage core: stages and reranker.")
    top_n: int | None = Field(default=None, ge=0, description="Documents to return.")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)

    def add_documents(
        self,
        documents: Sequence[Document],
        *,
        batch_size: int = 64,
        show_progress: bool = True,
        recreate: bool = False,
    ) -> IngestReport:
        """Ingest LangChain documents (``page_content``, ``id``, ``metadata``); see
        :meth:`QdrantMultiStage.ingest`. The documents are not modified."""
        if isinstance(documents, str) or not isinstance(documents, Sequence):
            raise ConfigurationError("documents must be a sequence of LangChain Documents")
        candidates = []
        for index, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise ConfigurationError(
                    f"documents[{index}] must be a LangChain Document, got {type(doc).__name__}"
                )
            candidates.append(Candidate(doc.page_content, id=doc.id, metadata=doc.metadata))
        return self.pipeline.ingest(
            candidates, batch_size=batch_size, show_progress=show_progress, recreate=recreate
        )

    def _call(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(kwargs) - _CALL_KWARGS
        if unknown:
            raise ConfigurationError(f"unexpected arguments: {sorted(unknown)}")
        return {
            "top_n": kwargs.get("top_n", self.top_n),
            "min_score": kwargs.get("min_score", self.min_score),
            "query_filter": kwargs.get("query_filter"),
        }

    @staticmethod
    def _documents(results: MultiStageResults) -> MultiStageDocuments:
        return MultiStageDocuments([to_document(results, i) for i in range(len(results))], results)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._documents(self.pipeline.search(query, **self._call(kwargs)))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._documents(await self.pipeline.asearch(query, **self._call(kwargs)))
