"""The metadata block that the framework components attach to each reranked document."""

from __future__ import annotations

from typing import Any

from rerankit.types import RerankResult

__all__ = ["RELEVANCE_SCORE_KEY", "RERANK_KEY", "RETRIEVAL_SCORE_KEY", "rerank_block"]

RELEVANCE_SCORE_KEY = "relevance_score"
RERANK_KEY = "rerank"
RETRIEVAL_SCORE_KEY = "retrieval_score"


def rerank_block(result: RerankResult, *, backend: str, model: str) -> dict[str, Any]:
    """``metadata["rerank"]``: how this document was reranked (plain JSON-able values).

    ``fallback`` is True when the document was not reranked by the primary reranker of a
    :class:`~rerankit.FallbackReranker`; ``fallback_reason`` then says why.
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
    return block
