"""Building blocks shared by every remote reranker: resilience, usage, typed errors.

Nothing here imports a client library; the backends (:class:`~rerankit.CohereReranker`,
:class:`~rerankit.LLMReranker`, :class:`~rerankit.HTTPReranker`) import theirs on first use.
"""

from rerankit.remote.base import RemoteOptions, RemoteReranker
from rerankit.remote.errors import (
    DeadlineExceededError,
    FallbackExhaustedError,
    MalformedResponseError,
    RateLimitedError,
    RemoteConnectionError,
    RemoteError,
    RemoteStatusError,
    RemoteTimeoutError,
)
from rerankit.remote.resilience import (
    ConcurrencyLimiter,
    Deadline,
    RateLimiter,
    Resilience,
    RetryPolicy,
    parse_retry_after,
)
from rerankit.remote.secrets import MASK
from rerankit.remote.usage import Usage, UsageCallback

__all__ = [
    "MASK",
    "ConcurrencyLimiter",
    "Deadline",
    "DeadlineExceededError",
    "FallbackExhaustedError",
    "MalformedResponseError",
    "RateLimitedError",
    "RateLimiter",
    "RemoteConnectionError",
    "RemoteError",
    "RemoteOptions",
    "RemoteReranker",
    "RemoteStatusError",
    "RemoteTimeoutError",
    "Resilience",
    "RetryPolicy",
    "Usage",
    "UsageCallback",
    "parse_retry_after",
]
