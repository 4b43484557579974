"""Reranking with context policies: the threshold's score rules, the policies in order, then
``top_n`` (before a ``final`` policy such as lost-in-the-middle)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from rerankit.base import Reranker
from rerankit.candidates import Document, prepare
from rerankit.errors import ConfigurationError
from rerankit.policies.base import ContextPolicy, drop, rebuilt
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate, RerankResults

__all__ = ["apply_policies", "arerank_with", "check_policies", "rerank_batch_with", "rerank_with"]


def check_policies(policies: object, *, name: str = "policies") -> tuple[ContextPolicy, ...]:
    """``policies`` as a tuple: ``None``, one :class:`ContextPolicy` or a sequence of them;
    ``final`` ones (lost-in-the-middle) last. :class:`~rerankit.ConfigurationError` naming the
    position of anything else."""
    if policies is None:
        return ()
    if isinstance(policies, ContextPolicy):
        return (policies,)
    if isinstance(policies, str | bytes) or not isinstance(policies, Sequence):
        raise ConfigurationError(
            f"{name} must be a list of context policies (rerankit.policies), got "
            f"{type(policies).__name__}"
        )
    chain = tuple(policies)
    for i, item in enumerate(chain):
        if not isinstance(item, ContextPolicy):
            raise ConfigurationError(
                f"{name}[{i}] must be a context policy (rerankit.policies: MMR, TokenBudget, "
                f"MetadataBoost, Cascade, Shadow, LostInTheMiddle), got {type(item).__name__}"
            )
    finals = [i for i, p in enumerate(chain) if p.final]
    if finals and finals[0] != len(chain) - len(finals):
        first = chain[finals[0]]
        raise ConfigurationError(
            f"{name}[{finals[0]}] ({type(first).__name__}) arranges the final list, so it must "
            "come after every other policy"
        )
    return chain


def _split(threshold: ThresholdPolicy) -> tuple[ThresholdPolicy, int | None]:
    return dataclasses.replace(threshold, top_n=None), threshold.top_n


def _cap(results: RerankResults, top_n: int | None) -> RerankResults:
    if top_n is None or len(results) <= top_n:
        return results
    cut = [drop(r, "top_n") for r in results[top_n:]]
    return rebuilt(results, results[:top_n], dropped=cut, empty_reason=f"top_n={top_n}")


def _pool(documents: Sequence[Document]) -> list[Candidate]:
    return prepare(documents, dedupe=False).candidates


def apply_policies(
    query: str,
    results: RerankResults,
    documents: Sequence[Document],
    policies: Sequence[ContextPolicy] | ContextPolicy | None,
    *,
    top_n: int | None = None,
) -> RerankResults:
    """Run ``policies`` on ``results`` (reranked from ``documents`` with a threshold that had no
    ``top_n``), then apply ``top_n`` (before the ``final`` policies). What
    :func:`rerank_with` does after reranking."""
    pool = _pool(documents)
    limit = top_n
    for step in check_policies(policies):
        if step.final:
            results, limit = _cap(results, limit), None
        results = step.apply(query, results, pool)
    return _cap(results, limit)


def rerank_with(
    reranker: Reranker,
    query: str,
    documents: Sequence[Document],
    *,
    policies: Sequence[ContextPolicy] | ContextPolicy | None = (),
    policy: ThresholdPolicy | None = None,
    top_n: int | None = None,
    min_score: float | None = None,
) -> RerankResults:
    """Rerank, threshold and apply context ``policies``; returns the final results.

    The threshold's score rules (``min_score``, ``min_ratio``, ``largest_gap``, ``min_keep``)
    run first, on the reranker's calibrated scores; then each policy in order; then ``top_n``
    (before the ``final`` policies, which arrange the list that reaches the prompt). Without
    policies this is exactly ``reranker.rerank(query, documents, policy=...)``. Every input is
    accounted for: in the list, in ``dropped`` (with the rule or policy that cut it) or in
    ``duplicates``.

    Example:
        >>> from rerankit import EmbeddingReranker
        >>> from rerankit.policies import LostInTheMiddle, TokenBudget, rerank_with
        >>> docs = ["Qdrant stores vectors.", "Pasta recipes", "Vector search in Qdrant"]
        >>> results = rerank_with(EmbeddingReranker(), "vector database", docs, top_n=2,
        ...                       policies=[TokenBudget(max_tokens=50, tokenizer=lambda t:
        ...                                 len(t.split())), LostInTheMiddle()])
        >>> len(results), results.applied[0]["policy"]
        (2, 'token_budget')
    """
    threshold = ThresholdPolicy.resolve(policy, top_n=top_n, min_score=min_score)
    chain = check_policies(policies)
    if not chain:
        return reranker.rerank(query, documents, policy=threshold)
    scoring, limit = _split(threshold)
    results = reranker.rerank(query, documents, policy=scoring)
    return apply_policies(query, results, documents, chain, top_n=limit)


def rerank_batch_with(
    reranker: Reranker,
    queries: Sequence[str],
    documents: Sequence[Sequence[Document]],
    *,
    policies: Sequence[ContextPolicy] | ContextPolicy | None = (),
    policy: ThresholdPolicy | None = None,
    top_n: int | None = None,
    min_score: float | None = None,
) -> list[RerankResults]:
    """:func:`rerank_with` for several queries, scored in one
    :meth:`~rerankit.Reranker.rerank_batch` (shared model passes); each result equals its own
    :func:`rerank_with` call."""
    threshold = ThresholdPolicy.resolve(policy, top_n=top_n, min_score=min_score)
    chain = check_policies(policies)
    if not chain:
        return reranker.rerank_batch(queries, documents, policy=threshold)
    scoring, limit = _split(threshold)
    batch = reranker.rerank_batch(queries, documents, policy=scoring)
    return [
        apply_policies(q, r, d, chain, top_n=limit)
        for q, r, d in zip(queries, batch, documents, strict=True)
    ]


async def arerank_with(
    reranker: Reranker,
    query: str,
    documents: Sequence[Document],
    *,
    policies: Sequence[ContextPolicy] | ContextPolicy | None = (),
    policy: ThresholdPolicy | None = None,
    top_n: int | None = None,
    min_score: float | None = None,
) -> RerankResults:
    """Async :func:`rerank_with` (the reranker's and the policies' async paths)."""
    threshold = ThresholdPolicy.resolve(policy, top_n=top_n, min_score=min_score)
    chain = check_policies(policies)
    if not chain:
        return await reranker.arerank(query, documents, policy=threshold)
    scoring, limit = _split(threshold)
    results = await reranker.arerank(query, documents, policy=scoring)
    pool = _pool(documents)
    for step in chain:
        if step.final:
            results, limit = _cap(results, limit), None
        results = await step.aapply(query, results, pool)
    return _cap(results, limit)
