"""``QdrantMultiStageRetriever`` for LlamaIndex: hybrid prefetch, fusion, MaxSim rescoring inside
Qdrant and a rerankit reranker, as one ``BaseRetriever``.

A thin face over :class:`rerankit.multistage.QdrantMultiStage` (the framework-free core).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import (
    BaseNode,
    MetadataMode,
    NodeWithScore,
    QueryBundle,
    TextNode,
)

from rerankit._results_list import ResultsList
from rerankit.annotate import RELEVANCE_SCORE_KEY, RERANK_KEY
from rerankit.errors import ConfigurationError
from rerankit.multistage import (
    DOC_ID_KEY,
    POINT_ID_KEY,
    STAGES_KEY,
    STAGES_RUN_KEY,
    IngestReport,
    MultiStageResults,
    QdrantMultiStage,
)
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate

__all__ = ["MultiStageNodes", "QdrantMultiStageRetriever"]

HIDDEN_KEYS = (
    DOC_ID_KEY,
    POINT_ID_KEY,
    STAGES_KEY,
    STAGES_RUN_KEY,
    RELEVANCE_SCORE_KEY,
    RERANK_KEY,
)
"""Metadata keys kept out of the text LLMs and embedders see."""


class MultiStageNodes(ResultsList[NodeWithScore, MultiStageResults]):
    """Retrieved nodes, best first: a plain list that also carries the core's
    :class:`~rerankit.multistage.MultiStageResults` (``.results``: per-stage timings, what the
    threshold dropped) and ``.empty_reason``."""

    def __init__(self, nodes: Sequence[NodeWithScore], results: MultiStageResults) -> None:
        super().__init__(nodes, results)


def to_node(results: MultiStageResults, index: int) -> NodeWithScore:
    """The ``NodeWithScore`` of ``results[index]`` (a new ``TextNode``)."""
    hit = results[index]
    node = TextNode(
        id_=hit.id,
        text=hit.text,
        metadata=results.metadata_for(hit),
        excluded_llm_metadata_keys=list(HIDDEN_KEYS),
        excluded_embed_metadata_keys=list(HIDDEN_KEYS),
    )
    return NodeWithScore(node=node, score=hit.score)


class QdrantMultiStageRetriever(BaseRetriever):
    """Multi-stage Qdrant retrieval (dense + BM25 prefetch, RRF/DBSF fusion, optional MaxSim
    multivector rescoring, optional reranker) as a LlamaIndex retriever.

    ``pipeline`` is a :class:`~rerankit.multistage.QdrantMultiStage`: it holds the stages,
    their limits, the reranker and the threshold; ``top_n`` / ``min_score`` /
    ``query_filter`` here override it for every call. :meth:`add_documents` ingests LlamaIndex
    documents or nodes with every vector field the pipeline needs.

    Nodes come back as new ``TextNode`` objects whose id is the document's own id (the
    ingested node's ``node_id``; else the Qdrant point id) and whose score is the final score
    (the reranker's calibrated score, else the last Qdrant stage's). ``metadata`` is the stored
    metadata plus ``doc_id``, ``point_id``, ``stages`` (``{stage: {"rank", "score"}}``,
    0-based ranks), ``stages_run`` and, with a reranker, ``relevance_score`` and the ``rerank``
    block; these keys are excluded from the text LLMs and embedders see. :meth:`search` returns
    a :class:`MultiStageNodes` whose ``.results.timings`` split the latency per stage
    (``retrieve`` returns LlamaIndex's plain list).

    Example:
        >>> from llama_index.core.schema import TextNode
        >>> from rerankit.llama_index import QdrantMultiStageRetriever
        >>> from rerankit.multistage import FusionStage, QdrantMultiStage
        >>> pipeline = QdrantMultiStage(collection="faq", path=":memory:",
        ...                             fusion=FusionStage(limit=4), reranker="embedding")
        >>> retriever = QdrantMultiStageRetriever(pipeline=pipeline, top_n=1)
        >>> _ = retriever.add_documents([
        ...     TextNode(id_="q1", text="Qdrant stores vectors.", metadata={"source": "faq"}),
        ...     TextNode(id_="p1", text="Boil pasta for nine minutes.")], show_progress=False)
        >>> best = retriever.retrieve("vector database")[0]
        >>> best.node.node_id, best.node.metadata["source"], best.node.metadata["stages_run"]
        ('q1', 'faq', ['dense', 'sparse', 'fusion', 'rerank'])
        >>> pipeline.close()
    """

    def __init__(
        self,
        *,
        pipeline: QdrantMultiStage,
        top_n: int | None = None,
        min_score: float | None = None,
        query_filter: Any = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        if not isinstance(pipeline, QdrantMultiStage):
            raise ConfigurationError(
                f"pipeline must be a QdrantMultiStage, got {type(pipeline).__name__}"
            )
        ThresholdPolicy(top_n=top_n, min_score=min_score)  # typed errors for bad values
        super().__init__(callback_manager=callback_manager)
        self._pipeline = pipeline
        self._top_n = top_n
        self._min_score = min_score
        self._query_filter = query_filter

    @property
    def pipeline(self) -> QdrantMultiStage:
        """The multi-stage core."""
        return self._pipeline

    def add_documents(
        self,
        documents: Sequence[BaseNode],
        *,
        batch_size: int = 64,
        show_progress: bool = True,
        recreate: bool = False,
    ) -> IngestReport:
        """Ingest LlamaIndex documents or nodes (text without metadata, ``node_id``,
        ``metadata``); see :meth:`QdrantMultiStage.ingest`. The inputs are not modified."""
        if isinstance(documents, str) or not isinstance(documents, Sequence):
            raise ConfigurationError("documents must be a sequence of LlamaIndex documents/nodes")
        candidates = []
        for index, node in enumerate(documents):
            if not isinstance(node, BaseNode):
                raise ConfigurationError(
                    f"documents[{index}] must be a LlamaIndex Document or node, got "
                    f"{type(node).__name__}"
                )
            candidates.append(
                Candidate(
                    node.get_content(metadata_mode=MetadataMode.NONE),
                    id=node.node_id,
                    metadata=node.metadata,
                )
            )
        return self._pipeline.ingest(
            candidates, batch_size=batch_size, show_progress=show_progress, recreate=recreate
        )

    def _call(self) -> dict[str, Any]:
        return {
            "top_n": self._top_n,
            "min_score": self._min_score,
            "query_filter": self._query_filter,
        }

    @staticmethod
    def _nodes(results: MultiStageResults) -> MultiStageNodes:
        return MultiStageNodes([to_node(results, i) for i in range(len(results))], results)

    @staticmethod
    def _query(query: str | QueryBundle) -> str:
        return query.query_str if isinstance(query, QueryBundle) else query

    def search(self, query: str | QueryBundle) -> MultiStageNodes:
        """Retrieve, returning the nodes with the core's results attached (``.results``)."""
        return self._nodes(self._pipeline.search(self._query(query), **self._call()))

    async def asearch(self, query: str | QueryBundle) -> MultiStageNodes:
        """Async :meth:`search`."""
        return self._nodes(await self._pipeline.asearch(self._query(query), **self._call()))

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.search(query_bundle)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await self.asearch(query_bundle)
