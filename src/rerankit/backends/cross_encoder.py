"""Local cross-encoder reranking through sentence-transformers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankit._deps import require
from rerankit._models import shared_model
from rerankit._torch import DTYPES, resolve_device, resolve_dtype, torch_module
from rerankit.backends._segments import LongDocuments, check_long_documents, segment
from rerankit.base import Reranker, ScoreBatch
from rerankit.calibration import Calibration, ScoreSpace
from rerankit.errors import BackendError, ConfigurationError

__all__ = ["CrossEncoderReranker"]


def _check_common(batch_size: int, max_length: int | None, dtype: str) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
    if max_length is not None and (not isinstance(max_length, int) or max_length < 8):
        raise ConfigurationError(f"max_length must be an int >= 8 or None, got {max_length!r}")
    if dtype not in DTYPES:
        raise ConfigurationError(f"dtype must be one of {DTYPES}, got {dtype!r}")


class CrossEncoderReranker(Reranker):
    """Scores (query, document) pairs with a sentence-transformers ``CrossEncoder``.

    ``model`` is a Hugging Face hub id or a local directory. The model loads lazily on first use,
    once per process: every reranker naming the same model, device and dtype shares it.
    The raw score is the model's logit (``logit`` space, calibrated with a sigmoid).

    ``dtype="auto"`` runs bf16 where the CPU (AMX / AVX512-BF16) or GPU supports it; pass
    ``dtype="float32"`` to turn that off. Batches are sorted by length to cut padding.

    Example:
        >>> from rerankit import CrossEncoderReranker
        >>> reranker = CrossEncoderReranker(model="cross-encoder/ms-marco-MiniLM-L6-v2")
        >>> docs = ["Qdrant is a vector DB.", "Paris"]
        >>> results = reranker.rerank("what is qdrant", docs)  # doctest: +SKIP
    """

    backend = "cross-encoder"
    score_space = ScoreSpace.LOGIT

    def __init__(
        self,
        *,
        model: str,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        dtype: str = "auto",
        long_documents: LongDocuments = "truncate",
        window_overlap: int = 64,
        trust_remote_code: bool = False,
        calibration: Calibration | None = None,
        dedupe: bool = True,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError("model must be a non-empty hub id or local path")
        _check_common(batch_size, max_length, dtype)
        check_long_documents(long_documents, window_overlap)
        super().__init__(calibration=calibration, dedupe=dedupe)
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.dtype = dtype
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
            st = require(
                "sentence_transformers",
                extra="local",
                feature="CrossEncoderReranker",
                package="sentence-transformers",
            )
            device = resolve_device(self.device)
            dtype = resolve_dtype(self.dtype, device)

            def load() -> Any:
                encoder = st.CrossEncoder(
                    self.model, device=device, trust_remote_code=self.trust_remote_code
                )
                encoder.to(dtype)
                encoder.eval()
                return encoder

            key = ("cross-encoder", self.model, device, str(dtype), self.trust_remote_code)
            self._loaded = shared_model(key, load)
        return self._loaded

    def _window(self, encoder: Any) -> int:
        # sentence-transformers >= 5 renamed CrossEncoder.max_length to max_seq_length (the old
        # name warns); older releases only have max_length.
        native = getattr(encoder, "max_seq_length", None) or getattr(encoder, "max_length", None)
        limit = self.max_length or native or 512
        return int(min(limit, getattr(encoder.tokenizer, "model_max_length", limit) or limit))

    def _score(self, query: str, texts: Sequence[str]) -> ScoreBatch:
        torch = torch_module()
        encoder = self._load()
        tokenizer = encoder.tokenizer
        max_length = self._window(encoder)
        n_query = len(tokenizer(query, add_special_tokens=False)["input_ids"])
        budget = max_length - n_query - tokenizer.num_special_tokens_to_add(pair=True)
        if budget < 1:
            raise ConfigurationError(
                f"the query is {n_query} tokens, which leaves no room for documents in the "
                f"model's {max_length}-token window"
            )
        segments = segment(
            tokenizer, texts, budget, mode=self.long_documents, overlap=self.window_overlap
        )
        order = sorted(range(len(segments.texts)), key=lambda i: segments.lengths[i])
        raw = [0.0] * len(segments.texts)
        model = encoder.model
        num_labels = int(getattr(model.config, "num_labels", 1))
        if num_labels not in (1, 2):
            raise ConfigurationError(
                f"{self.model} has {num_labels} output labels; a reranker needs 1 (a relevance "
                "logit) or 2 (not relevant / relevant)"
            )
        device = model.device
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            features = tokenizer(
                [query] * len(chunk),
                [segments.texts[i] for i in chunk],
                padding=True,
                truncation="only_second",
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            try:
                with torch.inference_mode():
                    logits = model(**features).logits.float()
            except RuntimeError as exc:
                raise BackendError(f"{self.model} failed to score a batch: {exc}") from exc
            values = logits[:, 0] if num_labels == 1 else logits[:, 1] - logits[:, 0]
            for i, value in zip(chunk, values.tolist(), strict=True):
                raw[i] = float(value)
        return ScoreBatch(
            raw=segments.aggregate_max(raw),
            truncated=segments.truncated,
            windows=segments.windows,
        )
