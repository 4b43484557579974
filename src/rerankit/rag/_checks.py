"""Argument checks shared by the LangChain chain and the LlamaIndex query engine.

Framework-free: :func:`check_rag_args` validates what ``build_rag_chain`` and
``build_query_engine`` have in common and resolves the reranker; :func:`check_prompt_args` is
the part ``CitingSynthesizer`` needs too.
"""

from __future__ import annotations

from rerankit.base import Reranker
from rerankit.errors import ConfigurationError
from rerankit.rag.prompt import RagPrompt
from rerankit.registry import as_reranker
from rerankit.threshold import ThresholdPolicy

__all__ = ["check_prompt_args", "check_rag_args"]


def check_prompt_args(prompt: object, source_key: object) -> None:
    """:class:`~rerankit.ConfigurationError` unless ``prompt`` is a :class:`RagPrompt` or None
    and ``source_key`` a str or None."""
    if prompt is not None and not isinstance(prompt, RagPrompt):
        raise ConfigurationError(f"prompt must be a RagPrompt, got {type(prompt).__name__}")
    if source_key is not None and not isinstance(source_key, str):
        raise ConfigurationError("source_key must be a str or None")


def check_rag_args(
    *,
    reranker: object,
    fetch_k: object,
    top_n: int | None,
    min_score: float | None,
    policy: object,
    prompt: object,
    source_key: object,
) -> Reranker:
    """Check a RAG builder's arguments and return the reranker (a spec string resolved).

    ``fetch_k`` must be a positive int (not a bool), ``reranker`` what
    :func:`~rerankit.as_reranker` takes (a reranker, a spec, or ``None``), ``top_n`` and
    ``min_score`` valid
    :class:`~rerankit.ThresholdPolicy` values, ``policy`` a ThresholdPolicy or None, and
    ``prompt`` / ``source_key`` as :func:`check_prompt_args` says. Errors are
    :class:`~rerankit.ConfigurationError`; a spec string may raise what ``from_spec`` raises.
    ``min_score`` on a reranker with rank-derived scores is refused here, before any work.
    """
    if not isinstance(fetch_k, int) or isinstance(fetch_k, bool) or fetch_k < 1:
        raise ConfigurationError(f"fetch_k must be a positive int, got {fetch_k!r}")
    check_prompt_args(prompt, source_key)
    resolved = as_reranker(reranker)  # type: ignore[arg-type]
    resolved.check_policy(ThresholdPolicy.resolve(policy, top_n=top_n, min_score=min_score))
    return resolved
