"""LangChain Document <-> rerankit Candidate, without mutating the caller's documents, and the
rerank step's LangChain run (what callback handlers and LangSmith traces see)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager, Callbacks
from langchain_core.documents import Document

from rerankit._results_list import ResultsList
from rerankit.annotate import result_metadata
from rerankit.candidates import candidate_from
from rerankit.errors import ConfigurationError
from rerankit.types import Candidate, RerankResults

log = logging.getLogger("rerankit")

RUN_NAME = "rerank"
"""Name of the LangChain run of each rerank step."""


class RerankedDocuments(ResultsList[Document, RerankResults]):
    """Reranked documents, best first: a plain list that also carries the
    :class:`~rerankit.RerankResults` (``.results``), so a chain can see what the threshold
    dropped and why the list is empty (``.empty_reason``)."""

    def __init__(self, documents: Sequence[Document], results: RerankResults) -> None:
        super().__init__(documents, results)


def to_candidates(documents: Sequence[Document]) -> list[Candidate]:
    """The candidates of LangChain documents (see :func:`~rerankit.candidates.candidate_from`)."""
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise ConfigurationError(
            f"documents must be a list of LangChain Documents, got {type(documents).__name__}"
        )
    out = []
    for index, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise ConfigurationError(
                f"documents[{index}] must be a LangChain Document, got {type(doc).__name__}"
            )
        out.append(candidate_from(doc.page_content, id=doc.id, metadata=doc.metadata))
    return out


def annotated(documents: Sequence[Document], results: RerankResults) -> RerankedDocuments:
    """Copies of the kept documents, best first, with the rerank metadata added."""
    out = []
    for result in results:
        doc = documents[result.index]
        metadata: dict[str, Any] = {**doc.metadata, **result_metadata(result, results)}
        out.append(doc.model_copy(update={"metadata": metadata}))
    return RerankedDocuments(out, results)


def _outputs(documents: RerankedDocuments) -> dict[str, Any]:
    results = documents.results
    return {
        "documents": list(documents),
        "scores": [r.score for r in results],
        "dropped": [
            {"index": d.index, "score": d.score, "reason": d.reason} for d in results.dropped
        ],
        "duplicates": dict(results.duplicates),
        "empty_reason": results.empty_reason,
        "fallback": results.fallback,
        "backend": results.backend,
        "model": results.model,
        "timings_ms": dict(results.timings),
    }


def _start_args(query: str, documents: Sequence[Document]) -> tuple[dict[str, Any], str]:
    return {"query": query, "documents": len(documents)}, RUN_NAME


def _log_empty(documents: RerankedDocuments) -> None:
    if not documents and documents.results.candidates:
        log.info("rerank kept no document: %s", documents.empty_reason)


def traced(
    callbacks: Callbacks | None,
    query: str,
    documents: Sequence[Document],
    run: Callable[[], RerankedDocuments],
) -> RerankedDocuments:
    """``run()`` as a LangChain child run named ``rerank`` of ``callbacks``' parent, with the
    query and document count as inputs and the documents, scores, drops, empty reason and
    timings as outputs. An empty result is also logged (INFO, ``rerankit``), since a caller that
    copies the list (as ``ContextualCompressionRetriever`` does) loses ``.empty_reason``."""
    manager = CallbackManager.configure(inheritable_callbacks=callbacks)
    inputs, name = _start_args(query, documents)
    run_manager = manager.on_chain_start(None, inputs, name=name, run_type="chain")
    try:
        out = run()
    except BaseException as exc:
        run_manager.on_chain_error(exc)
        raise
    run_manager.on_chain_end(_outputs(out))
    _log_empty(out)
    return out


async def atraced(
    callbacks: Callbacks | None,
    query: str,
    documents: Sequence[Document],
    run: Callable[[], Awaitable[RerankedDocuments]],
) -> RerankedDocuments:
    """Async :func:`traced`."""
    manager = AsyncCallbackManager.configure(inheritable_callbacks=callbacks)
    inputs, name = _start_args(query, documents)
    run_manager = await manager.on_chain_start(None, inputs, name=name, run_type="chain")
    try:
        out = await run()
    except BaseException as exc:
        await run_manager.on_chain_error(exc)
        raise
    await run_manager.on_chain_end(_outputs(out))
    _log_empty(out)
    return out
