"""BM25 sparse vectors computed locally (no model download), for Qdrant's IDF modifier.

Documents get BM25 term-frequency weights
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))``;
queries get weight 1 per distinct term. Qdrant multiplies by IDF when the sparse vector is
configured with ``modifier=IDF``, so the dot product is the BM25 score. Every rerankit BM25
field (``bm25``, ``title_bm25`` in :mod:`rerankit.qdrant.names`) is encoded here.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["BM25Encoder", "SparseVector", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "does",
        "do",
        "don't",
        "not",
        "no",
        "can",
    ]
)


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric tokens, stop words removed, a light plural strip."""
    tokens = []
    for token in _TOKEN.findall(text.lower()):
        if token in STOPWORDS:
            continue
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        tokens.append(token)
    return tokens


def token_id(token: str) -> int:
    """A stable 31-bit index for a token (CRC32), the same in every process."""
    return zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF


@dataclass(frozen=True)
class SparseVector:
    """Sorted term ids (:func:`token_id`) and their weights, as Qdrant's ``SparseVector`` takes.

    Example:
        >>> from rerankit.sparse import BM25Encoder
        >>> vector = BM25Encoder(avg_doc_len=2).encode_query("vector vector database")
        >>> len(vector.indices), vector.values
        (2, [1.0, 1.0])
    """

    indices: list[int]
    values: list[float]


class BM25Encoder:
    """Encodes documents and queries as BM25 sparse vectors.

    Example:
        >>> from rerankit.sparse import BM25Encoder
        >>> enc = BM25Encoder(avg_doc_len=4)
        >>> len(enc.encode_query("vector databases").indices)
        2
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_doc_len: float = 64.0) -> None:
        self.k1 = k1
        self.b = b
        self.avg_doc_len = avg_doc_len

    @classmethod
    def fit(cls, texts: Iterable[str], *, k1: float = 1.2, b: float = 0.75) -> BM25Encoder:
        """An encoder whose average document length is measured on ``texts``."""
        lengths = [len(tokenize(t)) for t in texts]
        avg = sum(lengths) / len(lengths) if lengths else 64.0
        return cls(k1=k1, b=b, avg_doc_len=max(avg, 1.0))

    def encode_document(self, text: str) -> SparseVector:
        """The BM25 term weights of a document (Qdrant's IDF modifier supplies the IDF)."""
        tokens = tokenize(text)
        counts = Counter(token_id(t) for t in tokens)
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avg_doc_len)
        indices = sorted(counts)
        values = [counts[i] * (self.k1 + 1) / (counts[i] + norm) for i in indices]
        return SparseVector(indices, values)

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1 per distinct query term (independent of the corpus statistics)."""
        indices = sorted({token_id(t) for t in tokenize(text)})
        return SparseVector(indices, [1.0] * len(indices))
