"""``RerankRetriever``: wraps any LangChain retriever with a rerank stage."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManager,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list, patch_config, run_in_executor
from pydantic import Field

from rerankit.components import RerankSettings
from rerankit.errors import ConfigurationError, RerankWarning
from rerankit.langchain._convert import (
    RerankedDocuments,
    annotated,
    atraced,
    to_candidates,
    traced,
)
from rerankit.types import RerankResults

__all__ = ["RerankRetriever"]

_CALL_KWARGS = frozenset({"top_n", "min_score", "fetch_k"})


class RerankRetriever(RerankSettings, BaseRetriever):
    """Fetches ``fetch_k`` candidates from ``base_retriever`` and reranks them.

    ``fetch_k`` reaches the base retriever: as its ``k`` field when it has one (BM25 and
    most retrievers), as ``search_kwargs["k"]`` (vector-store retrievers), or as a ``k``
    keyword when it takes keywords. A retriever that takes none of these gets a
    :class:`~rerankit.RerankWarning` once, and the documents it returns are reranked as they
    come (at most ``fetch_k``). ``top_n``, ``min_score`` and ``fetch_k`` can also be given per
    call: ``retriever.invoke(query, top_n=3)``. Documents come back as annotated copies,
    exactly as from :class:`~rerankit.langchain.RerankCompressor` (``reranker=None`` keeps the
    retrieval order); the list is a :class:`~rerankit.langchain.RerankedDocuments` whose
    ``.results.timings`` include ``"retrieve"``. The base retrieval and the rerank step are
    child runs of this retriever's run.

    Example:
        >>> from langchain_core.documents import Document
        >>> from langchain_core.retrievers import BaseRetriever
        >>> from rerankit.langchain import RerankRetriever
        >>> class Fixed(BaseRetriever):
        ...     k: int = 4
        ...     def _get_relevant_documents(self, query, *, run_manager):
        ...         return [Document("Pasta recipes"), Document("Qdrant stores vectors.")][:self.k]
        >>> retriever = RerankRetriever(base_retriever=Fixed(), reranker="embedding", top_n=1)
        >>> retriever.invoke("vector database")[0].page_content
        'Qdrant stores vectors.'
    """

    base_retriever: BaseRetriever = Field(description="The first-stage retriever.")
    fetch_k: int = Field(default=20, ge=1, description="Candidates to fetch before reranking.")

    def _overrides(self, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        unknown = set(kwargs) - _CALL_KWARGS
        if unknown:
            raise ConfigurationError(f"unexpected arguments: {sorted(unknown)}")
        fetch_k = kwargs.get("fetch_k", self.fetch_k)
        if isinstance(fetch_k, bool) or not isinstance(fetch_k, int) or fetch_k < 1:
            raise ConfigurationError(f"fetch_k must be a positive int, got {fetch_k!r}")
        overrides: dict[str, Any] = {k: kwargs[k] for k in ("top_n", "min_score") if k in kwargs}
        self.threshold(**overrides)  # typed errors for bad per-call values
        return fetch_k, overrides

    def _base(self, fetch_k: int) -> tuple[BaseRetriever, dict[str, Any]]:
        """The base retriever set to return ``fetch_k`` documents, and keywords to call it with."""
        base = self.base_retriever
        fields = type(base).model_fields
        if "k" in fields and isinstance(getattr(base, "k", None), int):
            return base.model_copy(update={"k": fetch_k}), {}
        search = getattr(base, "search_kwargs", None)
        if "search_kwargs" in fields and isinstance(search, dict):
            return base.model_copy(update={"search_kwargs": {**search, "k": fetch_k}}), {}
        if getattr(base, "_expects_other_args", False):
            return base, {"k": fetch_k}
        warnings.warn(
            f"RerankRetriever: fetch_k={fetch_k} cannot reach {type(base).__name__} (it has no "
            "k field, no search_kwargs and takes no keywords); reranking the documents it "
            "returns, at most fetch_k",
            RerankWarning,
            stacklevel=4,
        )
        return base, {}

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        fetch_k, overrides = self._overrides(kwargs)
        base, base_kwargs = self._base(fetch_k)
        started = time.perf_counter()
        found = base.invoke(query, config={"callbacks": run_manager.get_child()}, **base_kwargs)
        candidates = found[:fetch_k]
        retrieve_ms = (time.perf_counter() - started) * 1000.0
        converted = to_candidates(candidates)
        return traced(
            run_manager.get_child(),
            query,
            candidates,
            lambda: annotated(
                candidates,
                _with_retrieval(self.rerank_candidates(query, converted, **overrides), retrieve_ms),
            ),
        )

    def batch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[list[Document]]:
        """Several queries at once: the base retriever's ``batch``, then one
        :meth:`~rerankit.Reranker.rerank_batch` over all of them, so the reranker shares its
        model passes across the queries. Each query is a retriever run of its own."""
        if return_exceptions or not inputs:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        fetch_k, overrides = self._overrides(kwargs)
        configs = get_config_list(config, len(inputs))
        runs = _retriever_runs(self, inputs, configs)
        try:
            base, base_kwargs = self._base(fetch_k)
            started = time.perf_counter()
            children = [
                patch_config(c, callbacks=run.get_child())
                for c, run in zip(configs, runs, strict=True)
            ]
            found = base.batch(inputs, children, **base_kwargs)
            retrieve_ms = (time.perf_counter() - started) * 1000.0
            candidates = [docs[:fetch_k] for docs in found]
            results = self.rerank_candidate_batch(
                inputs, [to_candidates(docs) for docs in candidates], **overrides
            )
        except BaseException as exc:
            for run in runs:
                run.on_retriever_error(exc)
            raise
        out: list[list[Document]] = []
        for run, docs, result in zip(runs, candidates, results, strict=True):
            reranked = annotated(docs, _with_retrieval(result, retrieve_ms))
            run.on_retriever_end(reranked)
            out.append(reranked)
        return out

    async def abatch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[list[Document]]:
        """Async :meth:`batch` (it runs in a worker thread, off the event loop)."""
        if return_exceptions or not inputs:
            return await super().abatch(
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        return await run_in_executor(None, self.batch, inputs, config, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        fetch_k, overrides = self._overrides(kwargs)
        base, base_kwargs = self._base(fetch_k)
        config: RunnableConfig = {"callbacks": run_manager.get_child()}
        started = time.perf_counter()
        if (
            base_kwargs
            and type(base)._aget_relevant_documents is BaseRetriever._aget_relevant_documents
        ):
            # The default async path drops extra keywords: run the sync one off the event loop.
            found = await run_in_executor(None, base.invoke, query, config, **base_kwargs)
        else:
            found = await base.ainvoke(query, config=config, **base_kwargs)
        candidates = found[:fetch_k]
        retrieve_ms = (time.perf_counter() - started) * 1000.0
        converted = to_candidates(candidates)

        async def run() -> RerankedDocuments:
            results = await self.arerank_candidates(query, converted, **overrides)
            return annotated(candidates, _with_retrieval(results, retrieve_ms))

        return await atraced(run_manager.get_child(), query, candidates, run)


def _retriever_runs(
    retriever: BaseRetriever, inputs: Sequence[str], configs: Sequence[RunnableConfig]
) -> list[CallbackManagerForRetrieverRun]:
    """One retriever run per input, as ``BaseRetriever.invoke`` starts it."""
    runs = []
    for query, config in zip(inputs, configs, strict=True):
        manager = CallbackManager.configure(
            config.get("callbacks"),
            None,
            inheritable_tags=config.get("tags"),
            local_tags=retriever.tags,
            inheritable_metadata=config.get("metadata"),
            local_metadata=retriever.metadata,
        )
        runs.append(
            manager.on_retriever_start(
                None, query, name=config.get("run_name") or retriever.get_name()
            )
        )
    return runs


def _with_retrieval(results: RerankResults, retrieve_ms: float) -> RerankResults:
    """``results`` whose timings also hold the base retrieval."""
    return results.replace(timings={"retrieve": retrieve_ms, **results.timings})
