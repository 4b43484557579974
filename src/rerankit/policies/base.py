"""What every context policy is (:class:`ContextPolicy`) and the one way a policy builds its
output from its input (:func:`rebuilt`), so that drops are accounted for and nothing is mutated."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rerankit.types import Candidate, Dropped, DropReason, RerankResult, RerankResults

__all__ = ["ContextPolicy", "drop", "rebuilt"]


class ContextPolicy(abc.ABC):
    """A step after reranking that decides what reaches the prompt, and in which order.

    A policy gets the query, the reranked :class:`~rerankit.RerankResults` and the input
    candidates (by input index), and returns new results: a subset of the kept documents, in
    some order, with whatever it drops added to ``dropped`` under its reason, what it noted
    about a document in ``annotations[index][name]`` and one record of what it did appended to
    ``applied``. It never changes its inputs. :func:`~rerankit.policies.rerank_with` runs a
    chain of them; the LangChain and LlamaIndex components and the RAG builders take the same
    objects as ``policies=``.

    ``final`` policies (lost-in-the-middle) arrange the final list: they come last in a chain,
    and ``top_n`` is applied before them.

    Example:
        >>> from rerankit.policies import ContextPolicy, rebuilt
        >>> class Reverse(ContextPolicy):
        ...     name = "reverse"
        ...     def apply(self, query, results, candidates):
        ...         return rebuilt(results, list(reversed(results)), record={"policy": "reverse"})
    """

    name: ClassVar[str] = "policy"
    """Key of the policy's notes in ``annotations`` and its records in ``applied``."""
    final: ClassVar[bool] = False
    """Arranges the final list: must come last; ``top_n`` is applied before it."""

    @abc.abstractmethod
    def apply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        """The results after this policy (see the class docstring)."""

    async def aapply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        """Async :meth:`apply`; by default :meth:`apply` itself (policies that call a model or
        a service override it)."""
        return self.apply(query, results, candidates)


def drop(result: RerankResult, reason: DropReason) -> Dropped:
    """The :class:`~rerankit.Dropped` entry of a kept ``result`` that a policy cuts."""
    return Dropped(
        index=result.index, score=result.score, raw_score=result.raw_score, reason=reason
    )


def rebuilt(
    results: RerankResults,
    kept: Sequence[RerankResult],
    *,
    dropped: Sequence[Dropped] = (),
    notes: Mapping[int, Mapping[str, Any]] | None = None,
    record: Mapping[str, Any] | None = None,
    empty_reason: str | None = None,
    **changes: Any,
) -> RerankResults:
    """New results from ``results``: ``kept`` in this order (ranks renumbered), ``dropped``
    added to the drops, ``notes`` (input index -> this policy's notes, keyed by the policy
    name) merged into the annotations, ``record`` appended to ``applied``. When ``kept`` is
    empty although ``results`` was not, ``empty_reason`` says why. ``changes`` set other
    attributes (``backend``, ``fallback``, ...)."""
    annotations = {k: dict(v) for k, v in results.annotations.items()}
    for index, note in (notes or {}).items():
        annotations.setdefault(index, {}).update(note)
    if kept:
        reason = None
    elif results:
        reason = empty_reason or "a context policy kept no document"
    else:
        reason = results.empty_reason
    return results.replace(
        results=[dataclasses.replace(r, rank=rank) for rank, r in enumerate(kept)],
        dropped=(*results.dropped, *dropped),
        annotations=annotations,
        applied=(*results.applied, *((record,) if record is not None else ())),
        empty_reason=reason,
        **changes,
    )
