"""Voyage AI Rerank (``POST /v1/rerank``) over its documented HTTP API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rerankit.backends.hosted import HostedReranker
from rerankit.errors import ConfigurationError

if TYPE_CHECKING:
    from pydantic import SecretStr
    from typing_extensions import Unpack

    from rerankit.remote.base import RemoteOptions

__all__ = ["VoyageReranker"]


class VoyageReranker(HostedReranker):
    """Reranks with Voyage AI Rerank (``rerank-2.5``, ``rerank-2.5-lite``, ...).

    It calls the documented HTTP API (``POST https://api.voyageai.com/v1/rerank`` with
    ``{"query", "documents", "model", "truncation"}``, answered with ``{"data": [{"index",
    "relevance_score"}], "usage": {"total_tokens"}}``) on rerankit's own ``httpx`` transport,
    not the ``voyageai`` SDK: the SDK's ``requests`` / ``aiohttp`` sessions cannot take that
    transport, so its calls would not keep rerankit's total request budget and deadlines.

    The key comes from ``api_key`` or ``VOYAGE_API_KEY`` and is held as a ``SecretStr``.
    ``truncation=False`` makes the API refuse over-long inputs instead of cutting them.
    Calls with more than 1,000 documents (the API's limit) are split into batches sent
    concurrently. The raw score is Voyage's ``relevance_score`` (``probability`` space); each
    document is scored on its own, so :class:`~rerankit.CachedReranker` can cache it.
    ``RerankResults.usage["input_tokens"]`` carries the billed tokens. The other keyword
    arguments are those of every remote backend (:class:`~rerankit.remote.RemoteOptions`).

    Example:
        >>> from rerankit import VoyageReranker
        >>> reranker = VoyageReranker(model="rerank-2.5", api_key="...")
        >>> reranker
        VoyageReranker(model='rerank-2.5', url='https://api.voyageai.com/v1', api_key='**********')
        >>> results = reranker.rerank("what is qdrant", ["Qdrant is a DB."])  # doctest: +SKIP
    """

    backend = "voyage"
    pointwise: ClassVar[bool] = True
    default_url = "https://api.voyageai.com/v1"
    key_env = "VOYAGE_API_KEY"
    document_limit = 1000
    results_key = "data"

    def __init__(
        self,
        *,
        model: str = "rerank-2.5",
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        truncation: bool = True,
        batch_size: int | None = None,
        **options: Unpack[RemoteOptions],
    ) -> None:
        if not isinstance(truncation, bool):
            raise ConfigurationError(f"truncation must be a bool, got {truncation!r}")
        super().__init__(
            model=model, api_key=api_key, base_url=base_url, batch_size=batch_size, **options
        )
        self.truncation = truncation

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "truncation": self.truncation}

    def _body(self, query: str, documents: list[str]) -> dict[str, Any]:
        return {
            "query": query,
            "documents": documents,
            "model": self.model,
            "truncation": self.truncation,
            "return_documents": False,
        }
