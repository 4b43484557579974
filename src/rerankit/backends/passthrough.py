"""``PassthroughReranker``: no reranking, the retrieval order as it came (spec ``"none"``)."""

from __future__ import annotations

from collections.abc import Sequence

from rerankit.base import Reranker, ScoreBatch
from rerankit.calibration import ScoreSpace
from rerankit.types import Candidate

__all__ = ["PassthroughReranker"]


class PassthroughReranker(Reranker):
    """Keeps the retrieval order: the switch that turns reranking off.

    ``reranker=None`` in the LangChain and LlamaIndex components (or the spec ``"none"``)
    means this reranker, so an "enable reranking" flag needs no other code: documents come
    back in their input order with the same metadata shape as reranked ones. Scores are the
    placeholders ``1 - i / n`` in the ``rank`` score space, so ``top_n`` and ``min_ratio``
    apply and ``min_score`` raises :class:`~rerankit.ConfigurationError` (there is no
    relevance score to compare). No model is loaded.

    Example:
        >>> from rerankit import PassthroughReranker
        >>> results = PassthroughReranker().rerank("q", ["first hit", "second hit", "third"],
        ...                                        top_n=2)
        >>> [r.index for r in results], [d.reason for d in results.dropped]
        ([0, 1], ['top_n'])
    """

    backend = "none"
    score_space = ScoreSpace.RANK
    pointwise = False

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        n = len(candidates)
        return ScoreBatch([1.0 - i / n for i in range(n)])

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return self._score(query, candidates)
