"""``RerankRetriever``: wraps any LangChain retriever with a rerank stage."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from rerankit.base import Reranker
from rerankit.errors import ConfigurationError
from rerankit.langchain._convert import annotated, resolve_reranker, to_candidates
from rerankit.threshold import ThresholdPolicy

__all__ = ["RerankRetriever"]


class RerankRetriever(BaseRetriever):
    """Fetches ``fetch_k`` candidates from ``base_retriever`` and reranks them.

    ``fetch_k`` is passed to the base retriever as ``k`` (vector-store retrievers honour it)
    and the candidates are capped at ``fetch_k``. ``top_n`` and ``min_score`` can also be
    given per call: ``retriever.invoke(query, top_n=3)``. Documents come back as annotated
    copies, exactly as from :class:`~rerankit.langchain.RerankCompressor`.

    Example:
        >>> from langchain_core.documents import Document
        >>> from langchain_core.retrievers import BaseRetriever
        >>> from rerankit.langchain import RerankRetriever
        >>> class Fixed(BaseRetriever):
        ...     def _get_relevant_documents(self, query, *, run_manager):
        ...         return [Document("Pasta recipes"), Document("Qdrant stores vectors.")]
        >>> retriever = RerankRetriever(base_retriever=Fixed(), reranker="embedding", top_n=1)
        >>> retriever.invoke("vector database")[0].page_content
        'Qdrant stores vectors.'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    base_retriever: BaseRetriever = Field(description="The first-stage retriever.")
    reranker: Reranker = Field(description="A rerankit Reranker, or a spec such as 'embedding'.")
    fetch_k: int = Field(default=20, ge=1, description="Candidates to fetch before reranking.")
    top_n: int | None = Field(default=4, ge=0, description="Documents to return.")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    policy: ThresholdPolicy | None = None

    def __init__(self, **data: Any) -> None:
        # Resolve a spec string before validation, so spec errors surface as RerankError.
        super().__init__(**resolve_reranker(data))

    def _call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(kwargs) - {"top_n", "min_score", "fetch_k"}
        if unknown:
            raise ConfigurationError(f"unexpected arguments: {sorted(unknown)}")
        return {
            "top_n": kwargs.get("top_n", self.top_n),
            "min_score": kwargs.get("min_score", self.min_score),
            "policy": self.policy,
        }

    def _base_kwargs(self, fetch_k: int) -> dict[str, Any]:
        # Only retrievers whose _get_relevant_documents takes **kwargs receive ``k``.
        return {"k": fetch_k} if getattr(self.base_retriever, "_expects_other_args", False) else {}

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        call = self._call_kwargs(kwargs)
        fetch_k = int(kwargs.get("fetch_k", self.fetch_k))
        candidates = self.base_retriever.invoke(
            query, config={"callbacks": run_manager.get_child()}, **self._base_kwargs(fetch_k)
        )[:fetch_k]
        results = self.reranker.rerank(query, to_candidates(candidates), **call)
        return annotated(candidates, results)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        call = self._call_kwargs(kwargs)
        fetch_k = int(kwargs.get("fetch_k", self.fetch_k))
        config: RunnableConfig = {"callbacks": run_manager.get_child()}
        kwargs_ = self._base_kwargs(fetch_k)
        base = self.base_retriever
        if (
            kwargs_
            and type(base)._aget_relevant_documents is BaseRetriever._aget_relevant_documents
        ):
            # The default async path drops extra kwargs: run the sync one off the event loop.
            found = await run_in_executor(None, base.invoke, query, config, **kwargs_)
        else:
            found = await base.ainvoke(query, config=config, **kwargs_)
        candidates = found[:fetch_k]
        results = await self.reranker.arerank(query, to_candidates(candidates), **call)
        return annotated(candidates, results)
