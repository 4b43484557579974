"""rerankit: reranking for RAG pipelines.

One rerank core (:class:`Reranker`) with local and hosted backends, wrapped as LangChain
(:mod:`rerankit.langchain`) and LlamaIndex (:mod:`rerankit.llama_index`) components.
This package imports no framework and no torch until a backend is used.
"""

from rerankit._models import clear_model_cache
from rerankit.backends import CrossEncoderReranker, EmbeddingReranker, LateInteractionReranker
from rerankit.base import Reranker, ScoreBatch
from rerankit.calibration import Clip, Linear, ScoreSpace, Sigmoid
from rerankit.errors import (
    BackendError,
    CalibrationError,
    ConfigurationError,
    EmptyQueryError,
    InvalidDocumentError,
    InvalidQueryError,
    MissingDependencyError,
    RerankError,
    RerankWarning,
    TruncationWarning,
    UnknownBackendError,
)
from rerankit.registry import available_backends, from_spec, parse_spec, register_backend
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate, Dropped, RerankResult, RerankResults

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CalibrationError",
    "Candidate",
    "Clip",
    "ConfigurationError",
    "CrossEncoderReranker",
    "Dropped",
    "EmbeddingReranker",
    "EmptyQueryError",
    "InvalidDocumentError",
    "InvalidQueryError",
    "LateInteractionReranker",
    "Linear",
    "MissingDependencyError",
    "RerankError",
    "RerankResult",
    "RerankResults",
    "RerankWarning",
    "Reranker",
    "ScoreBatch",
    "ScoreSpace",
    "Sigmoid",
    "ThresholdPolicy",
    "TruncationWarning",
    "UnknownBackendError",
    "__version__",
    "available_backends",
    "clear_model_cache",
    "from_spec",
    "parse_spec",
    "register_backend",
]
