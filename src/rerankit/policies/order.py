"""Lost-in-the-middle reordering: the strongest passages at both ends of the prompt."""

from __future__ import annotations

from collections.abc import Sequence

from rerankit.policies.base import ContextPolicy, rebuilt
from rerankit.types import Candidate, RerankResults

__all__ = ["LostInTheMiddle"]


def ends_first(n: int) -> list[int]:
    """Positions 0..n-1 (best first) laid out best at the start, second best at the end, third
    second, fourth second to last, ...: the weakest end up in the middle."""
    front: list[int] = []
    back: list[int] = []
    for position in range(n):
        (front if position % 2 == 0 else back).append(position)
    return front + back[::-1]


class LostInTheMiddle(ContextPolicy):
    """Reorders the final list so the best passages sit at the start and the end of the prompt.

    Language models use what is at the beginning and the end of a long context best and what
    is in the middle worst (Liu et al., 2023, "Lost in the Middle"); with passages ``1..n``
    best first the prompt order is ``1, 3, 5, ..., 6, 4, 2``. Nothing is dropped; ``rank`` is
    the prompt position and ``annotations[i]["lost_in_the_middle"]["relevance_rank"]`` the
    position by relevance. It is a ``final`` policy: it comes last, after ``top_n``.

    Example:
        >>> from rerankit import PassthroughReranker
        >>> from rerankit.policies import LostInTheMiddle, rerank_with
        >>> docs = ["1", "2", "3", "4", "5"]
        >>> [r.text for r in rerank_with(PassthroughReranker(), "q", docs,
        ...                              policies=[LostInTheMiddle()])]
        ['1', '3', '5', '4', '2']
    """

    name = "lost_in_the_middle"
    final = True

    def __repr__(self) -> str:
        return "LostInTheMiddle()"

    def apply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        order = ends_first(len(results))
        notes = {r.index: {self.name: {"relevance_rank": rank}} for rank, r in enumerate(results)}
        return rebuilt(
            results,
            [results[p] for p in order],
            notes=notes,
            record={"policy": self.name, "passages": len(results)},
        )
