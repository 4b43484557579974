"""Jina AI Reranker (``POST /v1/rerank``) over its documented HTTP API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rerankit.backends.hosted import HostedReranker

if TYPE_CHECKING:
    from pydantic import SecretStr
    from typing_extensions import Unpack

    from rerankit.remote.base import RemoteOptions

__all__ = ["JinaReranker"]


class JinaReranker(HostedReranker):
    """Reranks with the Jina AI Reranker API (``jina-reranker-v2-base-multilingual``,
    ``jina-reranker-v3``, ...).

    Jina publishes no Python SDK for it, so this calls the documented HTTP API: ``POST
    https://api.jina.ai/v1/rerank`` with ``{"model", "query", "documents", "top_n",
    "return_documents"}``, answered with ``{"results": [{"index", "relevance_score"}],
    "usage": {"total_tokens"}}``. The key comes from ``api_key`` or ``JINA_API_KEY``, held as a
    ``SecretStr``. Calls with more than ``batch_size`` documents (default 1,000) are split into
    batches sent concurrently. The raw score is Jina's ``relevance_score`` (``probability``
    space). Some Jina models read the documents of a request together (listwise), so whether
    scores are per document depends on the model: ``pointwise`` is left unknown, and
    :class:`~rerankit.CachedReranker` needs ``pointwise=True`` to vouch for a pointwise model.
    The other keyword arguments are those of every remote backend
    (:class:`~rerankit.remote.RemoteOptions`).

    Example:
        >>> from rerankit import JinaReranker
        >>> reranker = JinaReranker(api_key="...")
        >>> reranker.model
        'jina-reranker-v2-base-multilingual'
        >>> results = reranker.rerank("what is qdrant", ["Qdrant is a DB."])  # doctest: +SKIP
    """

    backend = "jina"
    default_url = "https://api.jina.ai/v1"
    key_env = "JINA_API_KEY"

    def __init__(
        self,
        *,
        model: str = "jina-reranker-v2-base-multilingual",
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        batch_size: int | None = None,
        **options: Unpack[RemoteOptions],
    ) -> None:
        super().__init__(
            model=model, api_key=api_key, base_url=base_url, batch_size=batch_size, **options
        )

    def _body(self, query: str, documents: list[str]) -> dict[str, Any]:
        return {
            "model": self.model,
            "query": query,
            "documents": documents,
            "top_n": len(documents),
            "return_documents": False,
        }
