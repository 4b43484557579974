"""What the LangChain and LlamaIndex components share: their settings and their rerank call.

:class:`RerankSettings` is a pydantic mixin (both frameworks' components are pydantic models)
declaring ``reranker``, ``top_n``, ``min_score``, ``policy`` and ``policies`` (context policies,
:mod:`rerankit.policies`) once, with one validation rule
and one set of defaults: a spec string or ``None`` (no reranking) for ``reranker`` goes through
:func:`~rerankit.as_reranker`, bad values raise :class:`~rerankit.ConfigurationError` when the
component is built, and ``min_score`` on rank-derived scores is refused there too. The faces
convert their documents with :func:`~rerankit.candidates.candidate_from` and annotate copies
with :func:`~rerankit.annotate.result_metadata`, so the same input gives the same order,
scores and metadata through either framework.

Needs pydantic (which both frameworks bring); imports neither framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rerankit.base import Reranker
from rerankit.errors import ConfigurationError
from rerankit.policies import (
    ContextPolicy,
    arerank_with,
    check_policies,
    rerank_batch_with,
    rerank_with,
)
from rerankit.registry import as_reranker
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate, RerankResults

__all__ = ["RerankSettings", "describe_validation_error"]


def describe_validation_error(owner: str, exc: ValidationError) -> str:
    """One line naming each bad argument of ``owner`` and what is wrong with it."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        parts.append(f"{where}: {error.get('msg', 'invalid')} (got {error.get('input')!r})")
    return f"{owner}: " + "; ".join(parts)


class RerankSettings(BaseModel):
    """The settings every rerank component has (see the module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    reranker: Reranker = Field(
        description="A rerankit Reranker, a spec such as 'embedding', or None (no reranking)."
    )
    top_n: int | None = Field(default=None, ge=0, description="Keep at most this many.")
    min_score: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Drop documents whose calibrated score is lower."
    )
    policy: ThresholdPolicy | None = Field(
        default=None, description="Full threshold policy (ratio, largest gap, min_keep)."
    )
    policies: tuple[ContextPolicy, ...] = Field(
        default=(),
        description="Context policies after reranking (rerankit.policies: MMR, TokenBudget, "
        "MetadataBoost, Cascade, Shadow, LostInTheMiddle), in order.",
    )

    def __init__(self, **data: Any) -> None:
        # The reranker is resolved first, so spec errors surface as themselves (e.g.
        # UnknownBackendError), not wrapped in a pydantic ValidationError.
        if "reranker" in data:
            data["reranker"] = as_reranker(data["reranker"])
        if "policies" in data:
            data["policies"] = check_policies(data["policies"])
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(describe_validation_error(type(self).__name__, exc)) from exc
        self.reranker.check_policy(self.threshold())

    def threshold(self, **overrides: Any) -> ThresholdPolicy:
        """The policy of a call: ``policy`` with ``top_n`` / ``min_score`` applied (per-call
        ``overrides`` win over the component's fields)."""
        top_n = overrides.get("top_n", self.top_n)
        min_score = overrides.get("min_score", self.min_score)
        return ThresholdPolicy.resolve(self.policy, top_n=top_n, min_score=min_score)

    def rerank_candidates(
        self, query: str, candidates: Sequence[Candidate], **overrides: Any
    ) -> RerankResults:
        """Rerank ``candidates`` with the component's reranker, threshold and context policies
        (:func:`~rerankit.policies.rerank_with`)."""
        threshold = self.threshold(**overrides)
        return rerank_with(
            self.reranker, query, candidates, policies=self.policies, policy=threshold
        )

    def rerank_candidate_batch(
        self, queries: Sequence[str], candidates: Sequence[Sequence[Candidate]], **overrides: Any
    ) -> list[RerankResults]:
        """:meth:`rerank_candidates` for several queries, scored in one
        :meth:`~rerankit.Reranker.rerank_batch` (:func:`~rerankit.policies.rerank_batch_with`)."""
        threshold = self.threshold(**overrides)
        return rerank_batch_with(
            self.reranker, queries, candidates, policies=self.policies, policy=threshold
        )

    async def arerank_candidates(
        self, query: str, candidates: Sequence[Candidate], **overrides: Any
    ) -> RerankResults:
        """Async :meth:`rerank_candidates`."""
        threshold = self.threshold(**overrides)
        return await arerank_with(
            self.reranker, query, candidates, policies=self.policies, policy=threshold
        )
