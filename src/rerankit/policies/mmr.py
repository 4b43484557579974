"""Maximal marginal relevance: passages that are relevant and unlike the ones picked before."""

from __future__ import annotations

import asyncio
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rerankit.errors import ConfigurationError
from rerankit.policies.base import ContextPolicy, drop, rebuilt
from rerankit.types import Candidate, RerankResults

__all__ = ["MMR"]

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]


def _embed_with(embedder: object) -> Embedder:
    documents = getattr(embedder, "embed_documents", None)  # rerankit, LangChain
    if callable(documents):
        return documents  # type: ignore[no-any-return]
    batch = getattr(embedder, "get_text_embedding_batch", None)  # LlamaIndex
    if callable(batch):
        return batch  # type: ignore[no-any-return]
    if callable(embedder):
        return embedder  # type: ignore[return-value]
    raise ConfigurationError(
        "embedder must have embed_documents(texts) (rerankit's SentenceEmbedder, a LangChain "
        "Embeddings), get_text_embedding_batch(texts) (a LlamaIndex embedding) or be a callable "
        f"texts -> vectors, got {type(embedder).__name__}"
    )


class MMR(ContextPolicy):
    """Maximal marginal relevance over the reranked list: relevant *and* diverse passages.

    Picks greedily: first the best passage, then each time the one maximising
    ``lambda_mult * relevance - (1 - lambda_mult) * (highest cosine to a picked passage)``.
    ``relevance`` is the reranker's score min-max scaled over the list (so ``lambda_mult``
    means the same under any calibration), the cosine is between the passages' embeddings
    from ``embedder`` (rerankit's :class:`~rerankit.backends.local.SentenceEmbedder`, a
    LangChain ``Embeddings``, a LlamaIndex embedding, or a callable texts -> vectors).
    ``lambda_mult=1`` keeps the reranker's order; lower values trade relevance for
    diversity. With ``k`` it keeps ``k`` passages and drops the rest (reason ``"mmr"``);
    without, it reorders them all. Notes per passage: ``annotations[i]["mmr"]`` =
    ``{"pick": order picked, "relevance": ..., "redundancy": highest cosine to those before}``.

    Example:
        >>> from rerankit.backends.local import SentenceEmbedder
        >>> from rerankit.policies import MMR
        >>> mmr = MMR(SentenceEmbedder(), lambda_mult=0.7, k=4)
    """

    name = "mmr"

    def __init__(self, embedder: Any, *, lambda_mult: float = 0.5, k: int | None = None) -> None:
        self._embed = _embed_with(embedder)
        self.embedder = embedder
        if (
            isinstance(lambda_mult, bool)
            or not isinstance(lambda_mult, numbers.Real)
            or not 0.0 <= float(lambda_mult) <= 1.0
        ):
            raise ConfigurationError(f"lambda_mult must be a number in [0, 1], got {lambda_mult!r}")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigurationError(f"k must be a positive int or None, got {k!r}")
        self.lambda_mult: float = float(lambda_mult)
        self.k: int | None = k

    def __repr__(self) -> str:
        return f"MMR(lambda_mult={self.lambda_mult}, k={self.k})"

    def _vectors(self, texts: list[str]) -> Any:
        vectors = np.asarray(self._embed(texts), dtype=float)
        if vectors.ndim != 2 or len(vectors) != len(texts) or not np.isfinite(vectors).all():
            raise ConfigurationError(
                f"MMR: the embedder returned {vectors.shape} for {len(texts)} texts; it must "
                "return one finite vector per text"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def apply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        if not results:
            return rebuilt(results, [], record=self._record(0, 0))
        return self._select(results, self._vectors([r.text for r in results]))

    async def aapply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        if not results:
            return rebuilt(results, [], record=self._record(0, 0))
        vectors = await asyncio.to_thread(self._vectors, [r.text for r in results])
        return self._select(results, vectors)

    def _record(self, kept: int, dropped: int) -> dict[str, Any]:
        return {
            "policy": self.name,
            "lambda_mult": self.lambda_mult,
            "k": self.k,
            "kept": kept,
            "dropped": dropped,
        }

    def _select(self, results: RerankResults, vectors: Any) -> RerankResults:
        n = len(results)
        scores = np.array([r.score for r in results], dtype=float)
        spread = float(scores.max() - scores.min())
        relevance = (scores - scores.min()) / spread if spread > 0 else np.ones(n)
        similarity = vectors @ vectors.T
        want = min(self.k or n, n)
        picked: list[int] = []
        redundancy = np.full(n, -math.inf)
        notes: dict[int, dict[str, Any]] = {}
        left = list(range(n))
        while len(picked) < want:
            if picked:
                gain = self.lambda_mult * relevance - (1.0 - self.lambda_mult) * redundancy
            else:
                gain = relevance.copy()
            # The best remaining passage; ties keep the reranker's order.
            best = max(left, key=lambda i: (gain[i], -i))
            notes[results[best].index] = {
                self.name: {
                    "pick": len(picked),
                    "relevance": float(relevance[best]),
                    "redundancy": float(redundancy[best]) if picked else None,
                }
            }
            picked.append(best)
            left.remove(best)
            redundancy = np.maximum(redundancy, similarity[best])
        cut = [drop(results[i], "mmr") for i in left]
        return rebuilt(
            results,
            [results[i] for i in picked],
            dropped=cut,
            notes=notes,
            record=self._record(len(picked), len(cut)),
        )
