"""``RerankPostprocessor``: a LlamaIndex ``BaseNodePostprocessor`` backed by rerankit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from rerankit._results_list import ResultsList
from rerankit.annotate import HIDDEN_KEYS, result_metadata
from rerankit.candidates import candidate_from
from rerankit.components import RerankSettings
from rerankit.errors import ConfigurationError
from rerankit.types import Candidate, RerankResults

__all__ = ["RerankPostprocessor", "RerankedNodes"]

dispatcher = get_dispatcher(__name__)


def _with_unique(keys: list[str], extra: tuple[str, ...]) -> list[str]:
    return [*keys, *(k for k in extra if k not in keys)]


class RerankedNodes(ResultsList[NodeWithScore, RerankResults]):
    """Reranked nodes, best first: a plain list that also carries the
    :class:`~rerankit.RerankResults` (``.results``), so a query engine can see what the
    threshold dropped and why the list is empty (``.empty_reason``).

    Example:
        >>> from rerankit import RerankResults
        >>> from rerankit.llama_index import RerankedNodes
        >>> nodes = RerankedNodes([], RerankResults(empty_reason="no documents"))
        >>> list(nodes), nodes.empty_reason
        ([], 'no documents')
    """

    def __init__(self, nodes: Sequence[NodeWithScore], results: RerankResults) -> None:
        super().__init__(nodes, results)


class RerankPostprocessor(RerankSettings, BaseNodePostprocessor):
    """Reranks retrieved nodes with a rerankit :class:`~rerankit.Reranker`.

    Returns new ``NodeWithScore`` objects, best first, whose ``score`` is the calibrated
    rerank score in [0, 1]. Each node is a copy (same ``node_id``) whose metadata gains the
    same keys as the LangChain components add: ``relevance_score``, ``retrieval_score`` (the
    node's first-stage score, when it had one) and the ``rerank`` block; all three are excluded
    from the text LLMs and embedders see. The input nodes are never modified. The first-stage
    score reaches the reranker as :attr:`Candidate.retrieval_score
    <rerankit.Candidate.retrieval_score>`, so ``FusionReranker(first_stage="retrieval_score")``
    works here as through LangChain. ``reranker=None`` keeps the retrieval order.

    Emits LlamaIndex's ``ReRankStartEvent`` / ``ReRankEndEvent`` and the ``RERANKING``
    callback event. The returned list is a :class:`RerankedNodes`, which also carries the
    rerank results (with timings) and, when nothing passed the threshold, ``empty_reason``.

    The text scored is ``node.get_content(metadata_mode=...)``; the default
    ``MetadataMode.NONE`` scores the same text the LangChain components score.

    Example:
        >>> from llama_index.core.schema import NodeWithScore, TextNode
        >>> from rerankit.llama_index import RerankPostprocessor
        >>> post = RerankPostprocessor(reranker="embedding", top_n=1)
        >>> nodes = [NodeWithScore(node=TextNode(text="Pasta recipes"), score=0.9),
        ...          NodeWithScore(node=TextNode(text="Qdrant stores vectors."), score=0.4)]
        >>> best = post.postprocess_nodes(nodes, query_str="vector database")
        >>> best[0].node.get_content(), best[0].node.metadata["retrieval_score"]
        ('Qdrant stores vectors.', 0.4)
    """

    metadata_mode: MetadataMode = Field(default=MetadataMode.NONE)

    @classmethod
    def class_name(cls) -> str:
        return "RerankitRerankPostprocessor"

    # -- helpers -------------------------------------------------------------------------------

    def _candidates(self, nodes: Sequence[NodeWithScore]) -> list[Candidate]:
        out = []
        for index, item in enumerate(nodes):
            if not isinstance(item, NodeWithScore):
                raise ConfigurationError(
                    f"nodes[{index}] must be a NodeWithScore, got {type(item).__name__}"
                )
            node = item.node
            out.append(
                candidate_from(
                    node.get_content(metadata_mode=self.metadata_mode),
                    id=node.node_id,
                    metadata=node.metadata,
                    score=item.score,
                )
            )
        return out

    @staticmethod
    def _query(query_bundle: QueryBundle | None) -> str:
        if query_bundle is None:
            raise ConfigurationError(
                "RerankPostprocessor needs a query (query_bundle or query_str)"
            )
        return query_bundle.query_str

    @staticmethod
    def _rebuild(nodes: list[NodeWithScore], results: RerankResults) -> RerankedNodes:
        out = []
        for result in results:
            node = nodes[result.index].node
            copy = node.model_copy(
                update={
                    "metadata": {**node.metadata, **result_metadata(result, results)},
                    "excluded_llm_metadata_keys": _with_unique(
                        list(node.excluded_llm_metadata_keys), HIDDEN_KEYS
                    ),
                    "excluded_embed_metadata_keys": _with_unique(
                        list(node.excluded_embed_metadata_keys), HIDDEN_KEYS
                    ),
                }
            )
            out.append(NodeWithScore(node=copy, score=result.score))
        return RerankedNodes(out, results)

    def _start(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None) -> None:
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle,
                nodes=nodes,
                top_n=self.top_n if self.top_n is not None else len(nodes),
                model_name=self.reranker.model_name or self.reranker.backend,
            )
        )

    def _payload(self, nodes: list[NodeWithScore], query: str) -> dict[str, Any]:
        return {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.reranker.model_name or self.reranker.backend,
            EventPayload.QUERY_STR: query,
            EventPayload.TOP_K: self.top_n,
        }

    # -- BaseNodePostprocessor -----------------------------------------------------------------

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = self._query(query_bundle)
        candidates = self._candidates(nodes)
        self._start(nodes, query_bundle)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            new_nodes = self._rebuild(nodes, self.rerank_candidates(query, candidates))
            event.on_end(payload={EventPayload.NODES: new_nodes})
        dispatcher.event(ReRankEndEvent(nodes=new_nodes))
        return new_nodes

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = self._query(query_bundle)
        candidates = self._candidates(nodes)
        self._start(nodes, query_bundle)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            new_nodes = self._rebuild(nodes, await self.arerank_candidates(query, candidates))
            event.on_end(payload={EventPayload.NODES: new_nodes})
        dispatcher.event(ReRankEndEvent(nodes=new_nodes))
        return new_nodes
