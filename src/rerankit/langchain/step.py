"""``RerankStep``: reranking as one element of an LCEL chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import Field

from rerankit.components import RerankSettings
from rerankit.errors import ConfigurationError
from rerankit.langchain._convert import annotated, to_candidates

__all__ = ["RerankStep"]

StepInput = Mapping[str, Any]


class RerankStep(RerankSettings, RunnableSerializable[StepInput, dict[str, Any]]):
    """Reranks the documents of a chain's state: add it to an existing chain as one element.

    Takes a mapping that holds the query under ``query_key`` and the retrieved documents (a
    list of LangChain ``Document``) under ``documents_key``, and returns the same mapping with
    the documents replaced by their reranked, annotated copies (a
    :class:`~rerankit.langchain.RerankedDocuments`, exactly as from
    :class:`~rerankit.langchain.RerankCompressor`); the other keys pass through. So a chain
    that retrieves into a mapping gains reranking by one ``| step``, and the step is a run of
    its own in traces. ``reranker=None`` keeps the retrieval order, which makes it a switch
    for ``configurable_alternatives``.

    Example:
        >>> from langchain_core.documents import Document
        >>> from langchain_core.runnables import RunnableLambda, RunnablePassthrough
        >>> from rerankit.langchain import RerankStep
        >>> retriever = RunnableLambda(
        ...     lambda q: [Document("Pasta recipes"), Document("Qdrant stores vectors.")])
        >>> chain = {"query": RunnablePassthrough(), "documents": retriever} | RerankStep(
        ...     reranker="embedding", top_n=1)
        >>> chain.invoke("vector database")["documents"][0].page_content
        'Qdrant stores vectors.'
    """

    query_key: str = Field(default="query", min_length=1, description="Key of the query.")
    documents_key: str = Field(
        default="documents", min_length=1, description="Key of the documents."
    )

    def _split(self, value: StepInput) -> tuple[str, Sequence[Document]]:
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                f"RerankStep takes a mapping with {self.query_key!r} and {self.documents_key!r}, "
                f"got {type(value).__name__}; e.g. {{'query': RunnablePassthrough(), "
                f"'documents': retriever}} | step"
            )
        missing = [k for k in (self.query_key, self.documents_key) if k not in value]
        if missing:
            raise ConfigurationError(
                f"RerankStep input has no {missing} (it has {sorted(value)}); set query_key / "
                "documents_key to the names your chain uses"
            )
        return value[self.query_key], value[self.documents_key]

    def _run(self, value: StepInput, run_manager: CallbackManagerForChainRun) -> dict[str, Any]:
        query, documents = self._split(value)
        results = self.rerank_candidates(query, to_candidates(documents))
        return {**value, self.documents_key: annotated(documents, results)}

    async def _arun(
        self, value: StepInput, run_manager: AsyncCallbackManagerForChainRun
    ) -> dict[str, Any]:
        query, documents = self._split(value)
        results = await self.arerank_candidates(query, to_candidates(documents))
        return {**value, self.documents_key: annotated(documents, results)}

    def invoke(
        self, input: StepInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Rerank the documents of ``input`` (see the class docstring)."""
        return self._call_with_config(self._run, input, config, run_type="chain")

    async def ainvoke(
        self, input: StepInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Async :meth:`invoke` (the reranker's async path)."""
        return await self._acall_with_config(self._arun, input, config, run_type="chain")
