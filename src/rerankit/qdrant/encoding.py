"""Encoders of the vector fields, and the checks on what they return.

Two small protocols say what a field needs:

* :class:`DenseEncoder`: ``embed_documents(texts)`` and ``embed_query(text)``, one vector each.
  Any LangChain ``Embeddings`` fits as it is.
* :class:`MultivectorEncoder`: ``embed_document_tokens(texts)`` and ``embed_query_tokens(text)``,
  one ``(tokens, dim)`` matrix each, for Qdrant's MaxSim multivector fields.

An encoder that also has ``embed_documents_with_tokens`` / ``embed_query_with_tokens``
(:class:`JointEncoder`, e.g. :class:`rerankit.multistage.SentenceTransformerEncoder`) and serves
both fields computes both in one forward pass. :class:`Encoders` runs them and checks their
output: finite, non-empty, one row per text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rerankit.errors import ConfigurationError

__all__ = [
    "DenseEncoder",
    "Encoders",
    "JointEncoder",
    "MultivectorEncoder",
    "as_matrix",
    "as_vector",
]


@runtime_checkable
class DenseEncoder(Protocol):
    """Encodes texts as one vector each (a LangChain ``Embeddings`` fits)."""

    def embed_documents(self, texts: list[str]) -> Any:
        """One vector per text: a ``(n, dim)`` array or a list of lists."""

    def embed_query(self, text: str) -> Any:
        """The query's vector."""


@runtime_checkable
class MultivectorEncoder(Protocol):
    """Encodes texts as one ``(tokens, dim)`` matrix each, for MaxSim late interaction."""

    def embed_document_tokens(self, texts: list[str]) -> Sequence[Any]:
        """One ``(tokens, dim)`` matrix per text."""

    def embed_query_tokens(self, text: str) -> Any:
        """The query's ``(tokens, dim)`` matrix."""


@runtime_checkable
class JointEncoder(Protocol):
    """Gives the dense and the token embeddings of a text in one pass."""

    def embed_documents_with_tokens(self, texts: list[str]) -> tuple[Any, Sequence[Any]]:
        """``(n, dim)`` sentence embeddings and one ``(tokens, dim)`` matrix per text."""

    def embed_query_with_tokens(self, text: str) -> tuple[Any, Any]:
        """The query's sentence embedding and ``(tokens, dim)`` matrix."""


def as_vector(value: Any) -> list[float]:
    """``value`` as one finite, non-empty float vector (else :class:`ConfigurationError`)."""
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ConfigurationError(
            f"the dense encoder must give one finite, non-empty vector per text, got shape "
            f"{array.shape}"
        )
    values: list[float] = array.tolist()
    return values


def as_matrix(value: Any) -> list[list[float]]:
    """``value`` as one finite ``(tokens, dim)`` matrix (else :class:`ConfigurationError`)."""
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 2 or 0 in array.shape or not np.all(np.isfinite(array)):
        raise ConfigurationError(
            "the multivector encoder must give one finite (tokens, dim) matrix per text, got "
            f"shape {array.shape}"
        )
    rows: list[list[float]] = array.tolist()
    return rows


class Encoders:
    """The dense and multivector encoders of a collection's fields (either may be ``None``).

    Example:
        >>> from rerankit.qdrant import Encoders
        >>> class Letters:
        ...     def embed_documents(self, texts): return [[len(t), 1.0] for t in texts]
        ...     def embed_query(self, text): return [len(text), 1.0]
        >>> Encoders(dense=Letters()).documents(["ab", "abc"])
        ([[2.0, 1.0], [3.0, 1.0]], None)
    """

    def __init__(
        self, *, dense: DenseEncoder | None = None, multivector: MultivectorEncoder | None = None
    ) -> None:
        if dense is not None and not isinstance(dense, DenseEncoder):
            raise ConfigurationError(
                f"the dense encoder must have embed_documents() and embed_query(), got "
                f"{type(dense).__name__}"
            )
        if multivector is not None and not isinstance(multivector, MultivectorEncoder):
            raise ConfigurationError(
                "the multivector encoder must have embed_document_tokens() and "
                f"embed_query_tokens(), got {type(multivector).__name__}"
            )
        self.dense = dense
        self.multivector = multivector

    def _joint(self) -> JointEncoder | None:
        dense: object = self.dense
        if dense is not None and dense is self.multivector and isinstance(dense, JointEncoder):
            return dense
        return None

    def documents(
        self, texts: list[str]
    ) -> tuple[list[list[float]] | None, list[list[list[float]]] | None]:
        """Dense rows and token matrices of ``texts`` (``None`` for an encoder that is off)."""
        joint = self._joint()
        dense: Any
        tokens: Sequence[Any] | None
        if joint is not None:
            dense, tokens = joint.embed_documents_with_tokens(texts)
        else:
            dense = None if self.dense is None else self.dense.embed_documents(texts)
            tokens = (
                None if self.multivector is None else self.multivector.embed_document_tokens(texts)
            )
        dense_rows = None if dense is None else [as_vector(v) for v in dense]
        token_rows = None if tokens is None else [as_matrix(m) for m in tokens]
        for name, rows in (("dense", dense_rows), ("multivector", token_rows)):
            if rows is not None and len(rows) != len(texts):
                raise ConfigurationError(
                    f"the {name} encoder returned {len(rows)} embeddings for {len(texts)} texts"
                )
        return dense_rows, token_rows

    def query(self, text: str) -> tuple[list[float] | None, list[list[float]] | None]:
        """The query's dense vector and token matrix (``None`` for an encoder that is off)."""
        joint = self._joint()
        if joint is not None:
            dense, tokens = joint.embed_query_with_tokens(text)
        else:
            dense = None if self.dense is None else self.dense.embed_query(text)
            tokens = None if self.multivector is None else self.multivector.embed_query_tokens(text)
        return (
            None if dense is None else as_vector(dense),
            None if tokens is None else as_matrix(tokens),
        )
