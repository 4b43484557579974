"""The stages of a multi-stage Qdrant search, one frozen config each.

1. :class:`DenseStage` and :class:`SparseStage`: the prefetches (a dense vector; BM25 sparse
   vectors scored with Qdrant's IDF modifier, tokenised locally by :mod:`rerankit.sparse`);
2. :class:`FusionStage`: RRF or DBSF over the two prefetches (Qdrant's ``FusionQuery``);
3. :class:`MultivectorStage`: MaxSim rescoring with a multivector field, as a nested prefetch;
4. then any rerankit reranker on the short list (configured on
   :class:`~rerankit.multistage.QdrantMultiStage`).

Every stage has a ``limit``: how many points it passes on. ``vector_name`` is the field it
reads in the collection (and that ingestion writes).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Literal

from rerankit.errors import ConfigurationError
from rerankit.multistage.encoders import DenseEncoder, MultivectorEncoder

__all__ = [
    "DENSE",
    "ENCODE",
    "FUSION",
    "MULTIVECTOR",
    "RERANK",
    "SPARSE",
    "STAGE_ORDER",
    "DenseStage",
    "FusionStage",
    "MultivectorStage",
    "SparseStage",
]

ENCODE = "encode"
DENSE = "dense"
SPARSE = "sparse"
FUSION = "fusion"
MULTIVECTOR = "multivector"
RERANK = "rerank"
STAGE_ORDER = (DENSE, SPARSE, FUSION, MULTIVECTOR, RERANK)
"""Stage names, in pipeline order (the keys of ``metadata["stages"]``)."""

Distance = Literal["cosine", "dot"]
_DISTANCES = ("cosine", "dot")


def _check_limit(owner: str, limit: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"{owner}.limit must be a positive int, got {limit!r}")


def _check_name(owner: str, name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{owner}.vector_name must be a non-empty str, got {name!r}")


def _check_distance(owner: str, distance: object) -> None:
    if distance not in _DISTANCES:
        raise ConfigurationError(f"{owner}.distance must be one of {_DISTANCES}, got {distance!r}")


def _check_encoder(owner: str, encoder: object, protocol: type, methods: str) -> None:
    if encoder is not None and not isinstance(encoder, protocol):
        raise ConfigurationError(
            f"{owner}.encoder must have {methods}, got {type(encoder).__name__}"
        )


@dataclass(frozen=True, kw_only=True)
class DenseStage:
    """Prefetch by a dense vector.

    ``encoder`` is any :class:`~rerankit.multistage.DenseEncoder` (a LangChain ``Embeddings``
    fits); ``None`` is the offline all-MiniLM-L6-v2. ``distance`` is used when ingestion creates
    the field.

    Example:
        >>> from rerankit.multistage import DenseStage
        >>> DenseStage(limit=50).vector_name
        'dense'
    """

    limit: int = 100
    vector_name: str = "dense"
    encoder: DenseEncoder | None = None
    distance: Distance = "cosine"

    def __post_init__(self) -> None:
        _check_limit("DenseStage", self.limit)
        _check_name("DenseStage", self.vector_name)
        _check_distance("DenseStage", self.distance)
        _check_encoder(
            "DenseStage", self.encoder, DenseEncoder, "embed_documents() and embed_query()"
        )


@dataclass(frozen=True, kw_only=True)
class SparseStage:
    """Prefetch by BM25 sparse vectors, with Qdrant's IDF modifier (no model involved).

    Documents get BM25 term weights (``k1``, ``b``, ``avg_doc_len``), queries weight 1 per
    term, and Qdrant multiplies by IDF, so the score is BM25. ``avg_doc_len=None`` measures it
    on the first ingestion into the collection and keeps it in the collection's metadata.

    Example:
        >>> from rerankit.multistage import SparseStage
        >>> SparseStage(limit=50, k1=0.9, b=0.4).vector_name
        'bm25'
    """

    limit: int = 100
    vector_name: str = "bm25"
    k1: float = 1.2
    b: float = 0.75
    avg_doc_len: float | None = None

    def __post_init__(self) -> None:
        _check_limit("SparseStage", self.limit)
        _check_name("SparseStage", self.vector_name)
        if not isinstance(self.k1, numbers.Real) or isinstance(self.k1, bool) or self.k1 < 0:
            raise ConfigurationError(f"SparseStage.k1 must be a number >= 0, got {self.k1!r}")
        if not isinstance(self.b, numbers.Real) or isinstance(self.b, bool) or not 0 <= self.b <= 1:
            raise ConfigurationError(f"SparseStage.b must be in [0, 1], got {self.b!r}")
        if self.avg_doc_len is not None and (
            not isinstance(self.avg_doc_len, numbers.Real)
            or isinstance(self.avg_doc_len, bool)
            or self.avg_doc_len <= 0
        ):
            raise ConfigurationError(
                f"SparseStage.avg_doc_len must be a positive number or None, got "
                f"{self.avg_doc_len!r}"
            )


@dataclass(frozen=True, kw_only=True)
class FusionStage:
    """Fuse the dense and sparse prefetches inside Qdrant: ``"rrf"`` or ``"dbsf"``.

    Applies when both prefetches are configured (with one there is nothing to fuse).
    ``limit`` may not exceed the two prefetch limits added up.

    Example:
        >>> from rerankit.multistage import FusionStage
        >>> FusionStage(method="dbsf", limit=30).method
        'dbsf'
    """

    method: Literal["rrf", "dbsf"] = "rrf"
    limit: int = 50

    def __post_init__(self) -> None:
        if self.method not in ("rrf", "dbsf"):
            raise ConfigurationError(
                f"FusionStage.method must be 'rrf' or 'dbsf', got {self.method!r}"
            )
        _check_limit("FusionStage", self.limit)


@dataclass(frozen=True, kw_only=True)
class MultivectorStage:
    """Rescore the previous stage's points inside Qdrant by MaxSim over a multivector field.

    Runs as the outer query of a nested prefetch, so Qdrant scores only the points the earlier
    stages pass on (embedded Qdrant computes MaxSim for every stored point and then keeps those,
    which costs time proportional to the collection). ``encoder`` is any
    :class:`~rerankit.multistage.MultivectorEncoder`; ``None`` is the token embeddings of the
    offline all-MiniLM-L6-v2. The default ``distance="dot"`` suits unit-length token embeddings
    (what the default encoder gives: dot equals cosine) and spares embedded Qdrant a
    re-normalisation of every stored matrix on each query.

    Example:
        >>> from rerankit.multistage import MultivectorStage
        >>> MultivectorStage(limit=10).vector_name
        'multivector'
    """

    limit: int = 20
    vector_name: str = "multivector"
    encoder: MultivectorEncoder | None = None
    distance: Distance = "dot"

    def __post_init__(self) -> None:
        _check_limit("MultivectorStage", self.limit)
        _check_name("MultivectorStage", self.vector_name)
        _check_distance("MultivectorStage", self.distance)
        _check_encoder(
            "MultivectorStage",
            self.encoder,
            MultivectorEncoder,
            "embed_document_tokens() and embed_query_tokens()",
        )
