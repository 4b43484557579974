"""The one result shape the framework components attach to each reranked document.

The LangChain and LlamaIndex components (and the multi-stage retriever) add the same keys to a
reranked document's metadata, from :func:`result_metadata`:

* ``relevance_score``: the calibrated score in [0, 1];
* ``retrieval_score``: the first-stage score, when the retriever gave one;
* ``rerank``: :func:`rerank_block`, how the document was reranked (plain JSON-able values),
  with ``rerank["policies"]``: what the context policies recorded about it, when any ran.

Framework-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerankit.types import RETRIEVAL_SCORE_KEY, RerankResult, RerankResults

__all__ = [
    "HIDDEN_KEYS",
    "RELEVANCE_SCORE_KEY",
    "RERANK_KEY",
    "RETRIEVAL_SCORE_KEY",
    "rerank_block",
    "result_metadata",
]

RELEVANCE_SCORE_KEY = "relevance_score"
RERANK_KEY = "rerank"
HIDDEN_KEYS = (RELEVANCE_SCORE_KEY, RETRIEVAL_SCORE_KEY, RERANK_KEY)
"""Metadata keys that must never reach the text an LLM or an embedder sees."""


def rerank_block(
    result: RerankResult,
    *,
    backend: str,
    model: str,
    results: RerankResults | None = None,
) -> dict[str, Any]:
    """``metadata["rerank"]``: how this document was reranked (plain JSON-able values).

    ``rank`` is the 0-based position after reranking and ``original_rank`` the position in the
    retrieved list. ``fallback`` is True when the document was not reranked by the primary
    reranker of a :class:`~rerankit.FallbackReranker`; ``fallback_reason`` then says why. With
    ``results``, the block also says what the whole call did: the score space and how many
    documents came in and were returned. (Timings stay on the list, ``.results.timings``, and
    in the framework's trace, so equal inputs give equal metadata.)
    """
    block: dict[str, Any] = {
        "score": result.score,
        "raw_score": result.raw_score,
        "rank": result.rank,
        "original_rank": result.index,
        "backend": backend,
        "model": model,
        "truncated": result.truncated,
        "windows": result.windows,
        "fallback": result.fallback is not None,
    }
    if result.fallback is not None:
        block["fallback_reason"] = result.fallback
    if results is not None:
        block["score_space"] = results.score_space
        block["candidates"] = results.candidates
        block["returned"] = len(results)
    return block


def result_metadata(result: RerankResult, results: RerankResults) -> dict[str, Any]:
    """The metadata keys a component adds to the document of ``result`` (see the module)."""
    metadata: dict[str, Any] = {
        RELEVANCE_SCORE_KEY: result.score,
        RERANK_KEY: rerank_block(
            result, backend=results.backend, model=results.model, results=results
        ),
    }
    if result.candidate.retrieval_score is not None:
        metadata[RETRIEVAL_SCORE_KEY] = result.candidate.retrieval_score
    notes = results.annotations.get(result.index)
    if notes:  # what the context policies recorded (rerankit.policies), e.g. a boost
        metadata[RERANK_KEY]["policies"] = _plain(notes)
    return metadata


def _plain(value: Any) -> Any:
    """``value`` with every mapping a plain dict and every tuple a list (JSON-able copies)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
