"""What a user of the remote rerankers touches: their base class and options, the retry policy,
usage reports and the typed errors. The mechanisms live in the submodules (``limits``,
``resilience``, ``transport``, ``secrets``, ``openai``).

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
from rerankit.remote.limits import RetryPolicy
from rerankit.remote.usage import Usage, UsageCallback

__all__ = [
    "DeadlineExceededError",
    "FallbackExhaustedError",
    "MalformedResponseError",
    "RateLimitedError",
    "RemoteConnectionError",
    "RemoteError",
    "RemoteOptions",
    "RemoteReranker",
    "RemoteStatusError",
    "RemoteTimeoutError",
    "RetryPolicy",
    "Usage",
    "UsageCallback",
]
