"""Qdrant-native multi-stage retrieval as one object, framework-free.

:class:`QdrantMultiStage` prefetches by a dense vector and BM25 sparse vectors (Qdrant's IDF
modifier, local tokenisation), fuses them with RRF or DBSF, optionally rescores inside Qdrant
with a MaxSim multivector field (nested prefetch), then runs any rerankit reranker with the
threshold policies on the short list. Every hit records its rank and score in each stage;
``timings`` split the latency per stage (:func:`render_results`, :class:`LatencySummary`).
It reads and writes collections in the one layout of :mod:`rerankit.qdrant`.

The framework faces are :class:`rerankit.langchain.QdrantMultiStageRetriever` and
:class:`rerankit.llama_index.QdrantMultiStageRetriever`. Needs ``pip install 'rerankit[qdrant]'``
(and ``rerankit[local]`` for the default MiniLM encoder); nothing heavy is imported until used.

Example:
    >>> from rerankit.multistage import DenseStage, FusionStage, QdrantMultiStage, SparseStage
    >>> ms = QdrantMultiStage(collection="notes", path=":memory:",
    ...                       dense=DenseStage(limit=10), sparse=SparseStage(limit=10),
    ...                       fusion=FusionStage(method="rrf", limit=5),
    ...                       reranker="embedding", top_n=1)
    >>> _ = ms.ingest(["Qdrant stores vectors.", "Pasta recipes"], show_progress=False)
    >>> hit = ms.search("vector database")[0]
    >>> hit.text, sorted(hit.stages)
    ('Qdrant stores vectors.', ['dense', 'fusion', 'rerank', 'sparse'])
    >>> ms.close()
"""

from rerankit.multistage.encoders import (
    DenseEncoder,
    MultivectorEncoder,
    SentenceTransformerEncoder,
)
from rerankit.multistage.pipeline import QdrantMultiStage
from rerankit.multistage.report import LatencySummary, StageLatency, render_results
from rerankit.multistage.results import (
    DOC_ID_KEY,
    POINT_ID_KEY,
    STAGES_KEY,
    STAGES_RUN_KEY,
    MultiStageHit,
    MultiStageResults,
    StageScore,
)
from rerankit.multistage.stages import (
    STAGE_DENSE,
    STAGE_ENCODE,
    STAGE_FUSION,
    STAGE_MULTIVECTOR,
    STAGE_ORDER,
    STAGE_RERANK,
    STAGE_SPARSE,
    DenseStage,
    FusionStage,
    MultivectorStage,
    SparseStage,
)
from rerankit.qdrant.ingest import IngestReport

__all__ = [
    "DOC_ID_KEY",
    "POINT_ID_KEY",
    "STAGES_KEY",
    "STAGES_RUN_KEY",
    "STAGE_DENSE",
    "STAGE_ENCODE",
    "STAGE_FUSION",
    "STAGE_MULTIVECTOR",
    "STAGE_ORDER",
    "STAGE_RERANK",
    "STAGE_SPARSE",
    "DenseEncoder",
    "DenseStage",
    "FusionStage",
    "IngestReport",
    "LatencySummary",
    "MultiStageHit",
    "MultiStageResults",
    "MultivectorEncoder",
    "MultivectorStage",
    "QdrantMultiStage",
    "SentenceTransformerEncoder",
    "SparseStage",
    "StageLatency",
    "StageScore",
    "render_results",
]
