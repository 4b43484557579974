"""The stages of a multi-stage Qdrant search, one frozen config each.

1. :class:`DenseStage` and :class:`SparseStage`: the prefetches (a dense vector; BM25 sparse
   vectors scored with Qdrant's IDF modifier, tokenised locally by :mod:`rerankit.sparse`);
2. :class:`FusionStage`: RRF or DBSF over the two prefetches (Qdrant's ``FusionQuery``);
3. :class:`MultivectorStage`: MaxSim rescoring with a multivector field, as a nested prefetch;
4. then any rerankit reranker on the short list (configured on
   :class:`~rerankit.multistage.QdrantMultiStage`).

Every stage has a ``limit``: how many points it passes on. A stage that reads a vector field is
that field's :mod:`rerankit.qdrant` schema entry plus its limit (and encoder): ``vector_name``
is the field it reads (and that ingestion writes), named as :mod:`rerankit.qdrant.names` says by
default. Stage names (``STAGE_*``: ``"dense"``, ``"sparse"``, ...) are not vector names: the
sparse stage reads the ``"bm25"`` field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rerankit.errors import ConfigurationError
from rerankit.qdrant.encoding import DenseEncoder, MultivectorEncoder
from rerankit.qdrant.schema import DenseField, MultivectorField, SparseField

__all__ = [
    "STAGE_DENSE",
    "STAGE_ENCODE",
    "STAGE_FUSION",
    "STAGE_MULTIVECTOR",
    "STAGE_ORDER",
    "STAGE_RERANK",
    "STAGE_SPARSE",
    "DenseStage",
    "FusionStage",
    "MultivectorStage",
    "SparseStage",
]

STAGE_ENCODE = "encode"
STAGE_DENSE = "dense"
STAGE_SPARSE = "sparse"
STAGE_FUSION = "fusion"
STAGE_MULTIVECTOR = "multivector"
STAGE_RERANK = "rerank"
STAGE_ORDER = (STAGE_DENSE, STAGE_SPARSE, STAGE_FUSION, STAGE_MULTIVECTOR, STAGE_RERANK)
"""Stage names, in pipeline order (the keys of ``metadata["stages"]``)."""


def _check_limit(owner: str, limit: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"{owner}.limit must be a positive int, got {limit!r}")


def _check_encoder(owner: str, encoder: object, protocol: type, methods: str) -> None:
    if encoder is not None and not isinstance(encoder, protocol):
        raise ConfigurationError(
            f"{owner}.encoder must have {methods}, got {type(encoder).__name__}"
        )


@dataclass(frozen=True, kw_only=True)
class DenseStage(DenseField):
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
    encoder: DenseEncoder | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_limit("DenseStage", self.limit)
        _check_encoder(
            "DenseStage", self.encoder, DenseEncoder, "embed_documents() and embed_query()"
        )


@dataclass(frozen=True, kw_only=True)
class SparseStage(SparseField):
    """Prefetch by BM25 sparse vectors, with Qdrant's IDF modifier (no model involved).

    Documents get BM25 term weights (``k1``, ``b``, ``avg_doc_len``), queries weight 1 per
    term, and Qdrant multiplies by IDF, so the score is BM25. ``avg_doc_len=None`` measures it
    on the first ingestion into the collection and keeps it in the collection's metadata.
    ``source="title"`` reads titles only (``metadata["title"]``; use
    ``vector_name="title_bm25"``, :data:`rerankit.qdrant.VECTOR_TITLE_BM25`): the cheap first
    stage of a search over many long documents.

    Example:
        >>> from rerankit.multistage import SparseStage
        >>> SparseStage(limit=50, k1=0.9, b=0.4).vector_name
        'bm25'
    """

    limit: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_limit("SparseStage", self.limit)


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
class MultivectorStage(MultivectorField):
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
    encoder: MultivectorEncoder | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_limit("MultivectorStage", self.limit)
        _check_encoder(
            "MultivectorStage",
            self.encoder,
            MultivectorEncoder,
            "embed_document_tokens() and embed_query_tokens()",
        )
