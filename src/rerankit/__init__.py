"""rerankit: reranking for RAG pipelines.

One rerank core (:class:`Reranker`) with local and hosted backends, wrapped as LangChain
(:mod:`rerankit.langchain`) and LlamaIndex (:mod:`rerankit.llama_index`) components.
This package imports no framework and no torch until a backend is used.
"""

from rerankit._models import clear_model_cache
from rerankit.backends import CrossEncoderReranker, EmbeddingReranker, LateInteractionReranker
from rerankit.backends.causal_lm import CausalLMReranker
from rerankit.backends.cohere import CohereReranker
from rerankit.backends.fallback import FallbackReranker
from rerankit.backends.fusion import FusionReranker
from rerankit.backends.http import HTTPReranker
from rerankit.backends.jina import JinaReranker
from rerankit.backends.llm import LLMReranker
from rerankit.backends.mixedbread import MixedbreadReranker
from rerankit.backends.passthrough import PassthroughReranker
from rerankit.backends.voyage import VoyageReranker
from rerankit.base import Reranker, ScoreBatch
from rerankit.batching import MicroBatcher
from rerankit.cache import CachedReranker, ScoreCache
from rerankit.calibration import Clip, Linear, ScoreSpace, Sigmoid
from rerankit.errors import (
    BackendError,
    CalibrationError,
    ConfigurationError,
    EmptyQueryError,
    InvalidDocumentError,
    InvalidQueryError,
    InvalidScoreError,
    MissingDependencyError,
    RerankError,
    RerankWarning,
    TruncationWarning,
    UnknownBackendError,
)
from rerankit.registry import (
    as_reranker,
    available_backends,
    from_spec,
    parse_spec,
    register_backend,
)
from rerankit.remote import (
    DeadlineExceededError,
    FallbackExhaustedError,
    MalformedResponseError,
    RateLimitedError,
    RemoteConnectionError,
    RemoteError,
    RemoteStatusError,
    RemoteTimeoutError,
    RetryPolicy,
    Usage,
)
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate, Dropped, RerankResult, RerankResults

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CachedReranker",
    "CalibrationError",
    "Candidate",
    "CausalLMReranker",
    "Clip",
    "CohereReranker",
    "ConfigurationError",
    "CrossEncoderReranker",
    "DeadlineExceededError",
    "Dropped",
    "EmbeddingReranker",
    "EmptyQueryError",
    "FallbackExhaustedError",
    "FallbackReranker",
    "FusionReranker",
    "HTTPReranker",
    "InvalidDocumentError",
    "InvalidQueryError",
    "InvalidScoreError",
    "JinaReranker",
    "LLMReranker",
    "LateInteractionReranker",
    "Linear",
    "MalformedResponseError",
    "MicroBatcher",
    "MissingDependencyError",
    "MixedbreadReranker",
    "PassthroughReranker",
    "RateLimitedError",
    "RemoteConnectionError",
    "RemoteError",
    "RemoteStatusError",
    "RemoteTimeoutError",
    "RerankError",
    "RerankResult",
    "RerankResults",
    "RerankWarning",
    "Reranker",
    "RetryPolicy",
    "ScoreBatch",
    "ScoreCache",
    "ScoreSpace",
    "Sigmoid",
    "ThresholdPolicy",
    "TruncationWarning",
    "UnknownBackendError",
    "Usage",
    "VoyageReranker",
    "__version__",
    "as_reranker",
    "available_backends",
    "clear_model_cache",
    "from_spec",
    "parse_spec",
    "register_backend",
]
