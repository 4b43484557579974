"""``QdrantMultiStageRetriever`` for LlamaIndex: hybrid prefetch, fusion, MaxSim rescoring
inside Qdrant and a rerankit reranker, as one ``BaseRetriever``.

A thin face over :class:`rerankit.multistage.QdrantMultiStage` (the framework-free core), with
the contract it shares with :class:`rerankit.langchain.QdrantMultiStageRetriever`
(:mod:`rerankit.multistage.options`). Per-call settings travel in a :class:`MultiStageQuery`,
a ``QueryBundle`` with ``top_n``, ``min_score`` and ``query_filter``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle

from rerankit._results_list import ResultsList
from rerankit._typing import Unpack
from rerankit.annotate import RELEVANCE_SCORE_KEY, RERANK_KEY
from rerankit.llama_index.store import as_records, to_text_node
from rerankit.multistage import (
    DOC_ID_KEY,
    POINT_ID_KEY,
    STAGES_KEY,
    STAGES_RUN_KEY,
    IngestReport,
    MultiStageHit,
    MultiStageResults,
    QdrantMultiStage,
)
from rerankit.multistage.options import SearchOptions, check_pipeline, convert_hits
from rerankit.qdrant import IngestOptions

__all__ = ["MultiStageNodes", "MultiStageQuery", "QdrantMultiStageRetriever"]

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
    :class:`~rerankit.multistage.MultiStageResults` (``.results``) and ``.empty_reason``."""


@dataclass
class MultiStageQuery(QueryBundle):
    """A query with per-call settings for :class:`QdrantMultiStageRetriever`.

    ``top_n``, ``min_score`` and ``query_filter`` (a Qdrant ``Filter``) override the
    retriever's for this call; ``None`` keeps the retriever's. Works wherever a
    ``QueryBundle`` does (``retrieve``, a query engine's ``query``).

    Example:
        >>> from rerankit.llama_index import MultiStageQuery
        >>> MultiStageQuery("vector database", top_n=2).top_n
        2
    """

    top_n: int | None = None
    min_score: float | None = None
    query_filter: Any = None


def to_nodes(results: MultiStageResults) -> MultiStageNodes:
    """One ``NodeWithScore`` per hit: a new ``TextNode`` (id: the point id; ``ref_doc_id``:
    the document's own id), scored with the final score."""

    def node(hit: MultiStageHit, metadata: dict[str, Any]) -> NodeWithScore:
        text = to_text_node(hit.point_id, hit.text, hit.doc_id, metadata, hidden=HIDDEN_KEYS)
        return NodeWithScore(node=text, score=hit.score)

    return MultiStageNodes(convert_hits(results, node), results)


class QdrantMultiStageRetriever(BaseRetriever):
    """Multi-stage Qdrant retrieval (dense + BM25 prefetch, RRF/DBSF fusion, optional MaxSim
    multivector rescoring, optional reranker) as a LlamaIndex retriever.

    Its contract is the LangChain face's (:mod:`rerankit.multistage.options`): keyword
    arguments and read-only attributes ``pipeline``, ``top_n``, ``min_score``,
    ``query_filter``; per call ``retriever.retrieve(MultiStageQuery(query, top_n=3, ...))``;
    and :meth:`add_documents`.

    Results are new ``TextNode`` objects: the id is the Qdrant point id (unique, the content
    hash; LlamaIndex folds nodes with equal ids), ``ref_doc_id`` the document's own id, the
    score the final one (the reranker's calibrated score, else the last Qdrant stage's).
    ``metadata``: the stored metadata with ``doc_id``, ``point_id``, ``stages``,
    ``stages_run`` and, with a reranker, ``relevance_score`` and ``rerank``; those keys are
    kept out of the text LLMs and embedders see.

    Example:
        >>> from llama_index.core.schema import TextNode
        >>> from rerankit.llama_index import MultiStageQuery, QdrantMultiStageRetriever
        >>> from rerankit.multistage import FusionStage, QdrantMultiStage
        >>> pipeline = QdrantMultiStage(collection="faq", path=":memory:",
        ...                             fusion=FusionStage(limit=4), reranker="embedding")
        >>> retriever = QdrantMultiStageRetriever(pipeline=pipeline, top_n=1)
        >>> _ = retriever.add_documents([
        ...     TextNode(id_="q1", text="Qdrant stores vectors.", metadata={"source": "faq"}),
        ...     TextNode(id_="p1", text="Boil pasta for nine minutes.")], show_progress=False)
        >>> best = retriever.retrieve("vector database")[0]
        >>> best.node.ref_doc_id, best.node.metadata["source"], best.node.metadata["stages_run"]
        ('q1', 'faq', ['dense', 'sparse', 'fusion', 'rerank'])
        >>> len(retriever.retrieve(MultiStageQuery("vector database", top_n=2)))
        2
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
        self._pipeline = check_pipeline(pipeline)
        self._options = SearchOptions(top_n, min_score, query_filter)
        super().__init__(callback_manager=callback_manager)

    @property
    def pipeline(self) -> QdrantMultiStage:
        """The multi-stage core."""
        return self._pipeline

    @property
    def top_n(self) -> int | None:
        return self._options.top_n

    @property
    def min_score(self) -> float | None:
        return self._options.min_score

    @property
    def query_filter(self) -> Any:
        return self._options.query_filter

    def add_documents(
        self, documents: Sequence[BaseNode], **options: Unpack[IngestOptions]
    ) -> IngestReport:
        """Ingest LlamaIndex documents or nodes through the pipeline: each one's text without
        metadata, ``ref_doc_id`` (else ``node_id``) and ``metadata``; inputs stay as they are.
        ``options`` are those of :meth:`QdrantMultiStage.ingest`."""
        return self._pipeline.ingest(as_records(documents), **options)

    def _call(self, bundle: QueryBundle) -> SearchOptions:
        if isinstance(bundle, MultiStageQuery):
            return self._options.merged(
                {
                    "top_n": bundle.top_n,
                    "min_score": bundle.min_score,
                    "query_filter": bundle.query_filter,
                }
            )
        return self._options

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        results = self._call(query_bundle).search(self._pipeline, query_bundle.query_str)
        return to_nodes(results)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        options = self._call(query_bundle)
        return to_nodes(await options.asearch(self._pipeline, query_bundle.query_str))
