"""Argument checks shared by the LangChain chain and the LlamaIndex query engine.

Framework-free: :class:`RagOptions` are the options ``build_rag_chain`` and
``build_query_engine`` have in common, and :func:`rag_settings` checks them and resolves the
reranker; :func:`check_prompt_args` is
the part ``CitingSynthesizer`` needs too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from rerankit.base import Reranker
from rerankit.errors import ConfigurationError
from rerankit.policies import ContextPolicy, check_policies
from rerankit.rag.prompt import RagPrompt
from rerankit.registry import as_reranker
from rerankit.threshold import ThresholdPolicy

__all__ = ["RagOptions", "RagSettings", "check_prompt_args", "rag_settings"]


def check_prompt_args(prompt: object, source_key: object) -> None:
    """:class:`~rerankit.ConfigurationError` unless ``prompt`` is a :class:`RagPrompt` or None
    and ``source_key`` a str or None."""
    if prompt is not None and not isinstance(prompt, RagPrompt):
        raise ConfigurationError(f"prompt must be a RagPrompt, got {type(prompt).__name__}")
    if source_key is not None and not isinstance(source_key, str):
        raise ConfigurationError("source_key must be a str or None")


class RagOptions(TypedDict, total=False):
    """The options both RAG builders take (``build_rag_chain``, ``build_query_engine``).

    All optional; the defaults are those of :class:`RagSettings`.
    """

    reranker: Reranker | str | None
    """A reranker, a spec such as ``"embedding"`` (the default) or ``None`` (no reranking)."""
    fetch_k: int
    """Candidates retrieved before reranking (default 20)."""
    top_n: int | None
    """Passages that reach the prompt at most (default 4)."""
    min_score: float | None
    """Drop passages whose calibrated score is lower (default ``None``)."""
    policy: ThresholdPolicy | None
    """A full :class:`~rerankit.ThresholdPolicy` (ratio, largest gap, ``min_keep``)."""
    policies: Sequence[ContextPolicy] | None
    """Context policies after reranking (:mod:`rerankit.policies`: MMR, token budget, ...)."""
    prompt: RagPrompt | None
    """The prompt templates (default :class:`~rerankit.rag.RagPrompt`)."""
    source_key: str | None
    """Metadata key of the source id the prompt shows (default: the first of ``SOURCE_KEYS``)."""


@dataclass(frozen=True)
class RagSettings:
    """:class:`RagOptions` checked, with the defaults filled in and the reranker resolved."""

    reranker: Reranker
    fetch_k: int = 20
    top_n: int | None = 4
    min_score: float | None = None
    policy: ThresholdPolicy | None = None
    prompt: RagPrompt = field(default_factory=RagPrompt)
    source_key: str | None = None
    policies: tuple[ContextPolicy, ...] = ()

    def threshold(self) -> dict[str, Any]:
        """The rerank component's threshold fields (and its context policies)."""
        return {
            "top_n": self.top_n,
            "min_score": self.min_score,
            "policy": self.policy,
            "policies": self.policies,
        }


def rag_settings(owner: str, options: Mapping[str, Any]) -> RagSettings:
    """Check a RAG builder's ``options`` (see :class:`RagOptions`) and resolve the reranker.

    ``fetch_k`` must be a positive int (not a bool), ``reranker`` what
    :func:`~rerankit.as_reranker` takes, ``top_n`` / ``min_score`` / ``policy`` a valid
    threshold for that reranker (``min_score`` on rank-derived scores is refused here, before
    any work), and ``prompt`` / ``source_key`` as :func:`check_prompt_args` says. Errors are
    :class:`~rerankit.ConfigurationError` (an unknown option is a ``TypeError``, as Python
    gives for a keyword argument); a spec string may raise what ``from_spec`` raises.
    """
    unknown = sorted(set(options) - set(RagOptions.__optional_keys__))
    if unknown:
        raise TypeError(f"{owner}() got unexpected keyword arguments: {unknown}")
    fetch_k = options.get("fetch_k", 20)
    if not isinstance(fetch_k, int) or isinstance(fetch_k, bool) or fetch_k < 1:
        raise ConfigurationError(f"fetch_k must be a positive int, got {fetch_k!r}")
    prompt, source_key = options.get("prompt"), options.get("source_key")
    check_prompt_args(prompt, source_key)
    reranker = as_reranker(options.get("reranker", "embedding"))
    top_n, min_score = options.get("top_n", 4), options.get("min_score")
    policy = options.get("policy")
    reranker.check_policy(ThresholdPolicy.resolve(policy, top_n=top_n, min_score=min_score))
    return RagSettings(
        reranker=reranker,
        fetch_k=fetch_k,
        top_n=top_n,
        min_score=min_score,
        policy=policy,
        prompt=prompt or RagPrompt(),
        source_key=source_key,
        policies=check_policies(options.get("policies")),
    )
