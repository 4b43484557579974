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
from rerankit.annotate import RERANK_KEY, RETRIEVAL_SCORE_KEY, rerank_block
from rerankit.base import Reranker
from rerankit.errors import ConfigurationError
from rerankit.registry import from_spec
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate, RerankResults

__all__ = ["RerankPostprocessor", "RerankedNodes"]

dispatcher = get_dispatcher(__name__)

_HIDDEN_KEYS = (RETRIEVAL_SCORE_KEY, RERANK_KEY)


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


class RerankPostprocessor(BaseNodePostprocessor):
    """Reranks retrieved nodes with a rerankit :class:`~rerankit.Reranker`.

    Returns new ``NodeWithScore`` objects, best first, whose ``score`` is the calibrated
    rerank score in [0, 1]. Each node is a copy (same ``node_id``) whose metadata gains
    ``retrieval_score`` (the first-stage score) and a ``rerank`` block; both keys are excluded
    from the text LLMs and embedders see. The input nodes are never modified. Emits
    LlamaIndex's ``ReRankStartEvent`` / ``ReRankEndEvent`` and the ``RERANKING`` callback event.
    The returned list is a :class:`RerankedNodes`, which also carries the rerank results and,
    when nothing passed the threshold, ``empty_reason``.

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

    reranker: Reranker = Field(description="A rerankit Reranker, or a spec such as 'embedding'.")
    top_n: int | None = Field(default=None, ge=0, description="Keep at most this many nodes.")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    policy: ThresholdPolicy | None = Field(default=None)
    metadata_mode: MetadataMode = Field(default=MetadataMode.NONE)
    keep_retrieval_score: bool = Field(default=True)

    def __init__(self, **data: Any) -> None:
        # Resolve a spec string before validation, so spec errors surface as RerankError.
        if isinstance(data.get("reranker"), str):
            data = {**data, "reranker": from_spec(data["reranker"])}
        super().__init__(**data)

    @classmethod
    def class_name(cls) -> str:
        return "RerankitRerankPostprocessor"

    # -- helpers -------------------------------------------------------------------------------

    def _candidates(self, nodes: list[NodeWithScore]) -> list[Candidate]:
        return [
            Candidate(n.node.get_content(metadata_mode=self.metadata_mode), id=n.node.node_id)
            for n in nodes
        ]

    def _query(self, query_bundle: QueryBundle | None) -> str:
        if query_bundle is None:
            raise ConfigurationError(
                "RerankPostprocessor needs a query (query_bundle or query_str)"
            )
        return query_bundle.query_str

    def _call_kwargs(self) -> dict[str, Any]:
        return {"top_n": self.top_n, "min_score": self.min_score, "policy": self.policy}

    def _rebuild(self, nodes: list[NodeWithScore], results: RerankResults) -> RerankedNodes:
        out = []
        for result in results:
            original = nodes[result.index]
            node = original.node
            metadata = dict(node.metadata)
            if self.keep_retrieval_score:
                metadata[RETRIEVAL_SCORE_KEY] = original.score
            metadata[RERANK_KEY] = rerank_block(
                result, backend=results.backend, model=results.model
            )
            copy = node.model_copy(
                update={
                    "metadata": metadata,
                    "excluded_llm_metadata_keys": _with_unique(
                        list(node.excluded_llm_metadata_keys), _HIDDEN_KEYS
                    ),
                    "excluded_embed_metadata_keys": _with_unique(
                        list(node.excluded_embed_metadata_keys), _HIDDEN_KEYS
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
        self._start(nodes, query_bundle)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            results = self.reranker.rerank(query, self._candidates(nodes), **self._call_kwargs())
            new_nodes = self._rebuild(nodes, results)
            event.on_end(payload={EventPayload.NODES: new_nodes})
        dispatcher.event(ReRankEndEvent(nodes=new_nodes))
        return new_nodes

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = self._query(query_bundle)
        self._start(nodes, query_bundle)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            results = await self.reranker.arerank(
                query, self._candidates(nodes), **self._call_kwargs()
            )
            new_nodes = self._rebuild(nodes, results)
            event.on_end(payload={EventPayload.NODES: new_nodes})
        dispatcher.event(ReRankEndEvent(nodes=new_nodes))
        return new_nodes
