"""Cohere Rerank through the official ``cohere`` SDK (v2 clients, native async)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rerankit._deps import require
from rerankit.calibration import ScoreSpace
from rerankit.errors import ConfigurationError
from rerankit.remote.base import RemoteReranker, check_options, check_positive_int, check_text
from rerankit.remote.http import classify_httpx, status_failure
from rerankit.remote.parsing import capture_body, count, field, scores_by_index
from rerankit.remote.resilience import BadResponse, Deadline, Failure
from rerankit.remote.secrets import SecretGetter, resolve_api_key
from rerankit.remote.transport import json_client
from rerankit.remote.usage import UsageMeter

if TYPE_CHECKING:
    from pydantic import SecretStr
    from typing_extensions import Unpack

    from rerankit.remote.base import RemoteOptions

__all__ = ["CohereReranker"]

API_DOCUMENT_LIMIT = 1000
"""Documents the Cohere API takes per rerank request."""

_REQUEST = "POST /v2/rerank"


class _Clients:
    """An SDK client and the httpx client under it (which is what needs closing)."""

    def __init__(self, sdk: Any, http: Any) -> None:
        self.sdk = sdk
        self.http = http

    def close(self) -> None:
        self.http.close()

    async def aclose(self) -> None:
        await self.http.aclose()


class CohereReranker(RemoteReranker):
    """Reranks with Cohere Rerank (``/v2/rerank``) through the official ``cohere`` SDK.

    The key comes from ``api_key`` or ``COHERE_API_KEY`` (``CO_API_KEY`` also works) and is held
    as a pydantic ``SecretStr``; it never appears in a repr, a log line, an error or
    :meth:`to_config`. ``base_url`` reaches any Cohere-compatible server (a key is then
    optional). Clients are created on first use: ``cohere.ClientV2`` for :meth:`rerank`,
    ``cohere.AsyncClientV2`` for :meth:`arerank` (native async, one client per event loop), both
    with the SDK's own retries off so that rerankit's policy is the only one.

    Calls with more than ``batch_size`` documents (the API takes at most 1000) are split into
    batches that are sent concurrently (up to ``max_concurrency`` at once) and merged; every
    score is mapped back to its input document. ``max_tokens_per_doc`` is passed to the API,
    which truncates longer documents server-side.

    The raw score is Cohere's ``relevance_score``, already in [0, 1] (``probability`` space);
    each document is scored on its own, so :class:`~rerankit.CachedReranker` can cache them.
    ``RerankResults.usage`` carries the billed search units. The other keyword arguments
    (``timeout``, ``deadline``, ``retry``, ``max_retries``, ``requests_per_minute``,
    ``max_concurrency``, ``on_usage``, ``calibration``, ``dedupe``) are those of every remote
    backend, described in :class:`~rerankit.remote.RemoteOptions`.

    Example:
        >>> from rerankit import CohereReranker
        >>> reranker = CohereReranker(model="rerank-v3.5", api_key="...", max_tokens_per_doc=512)
        >>> reranker
        CohereReranker(model='rerank-v3.5', url='https://api.cohere.com', api_key='**********')
        >>> docs = ["Qdrant is a vector DB.", "Paris"]
        >>> results = reranker.rerank("what is qdrant", docs)  # doctest: +SKIP
        >>> results[0].index, results.usage["search_units"]  # doctest: +SKIP
        (0, 1.0)
    """

    backend = "cohere"
    score_space = ScoreSpace.PROBABILITY
    pointwise: ClassVar[bool] = True
    """Each document's score ignores the other documents (so scores can be cached)."""

    def __init__(
        self,
        *,
        model: str = "rerank-v3.5",
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        max_tokens_per_doc: int | None = None,
        batch_size: int = API_DOCUMENT_LIMIT,
        client_name: str = "rerankit",
        **options: Unpack[RemoteOptions],
    ) -> None:
        check_options(type(self), options)
        model = check_text("model", model)  # type: ignore[assignment]
        base_url = check_text("base_url", base_url, allow_none=True)
        check_positive_int("batch_size", batch_size)
        if base_url is None and batch_size > API_DOCUMENT_LIMIT:
            raise ConfigurationError(
                f"batch_size={batch_size}: the Cohere API takes at most {API_DOCUMENT_LIMIT} "
                "documents per request"
            )
        if max_tokens_per_doc is not None:
            check_positive_int("max_tokens_per_doc", max_tokens_per_doc)
        super().__init__(**options)
        key = resolve_api_key(
            api_key, env="COHERE_API_KEY", extra="cohere", feature="CohereReranker"
        ) or resolve_api_key(None, env="CO_API_KEY", extra="cohere", feature="CohereReranker")
        if key is None and base_url is None:
            raise ConfigurationError(
                "CohereReranker needs an API key: pass api_key=... or set COHERE_API_KEY "
                "(or pass base_url=... for a Cohere-compatible server that needs none)"
            )
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.max_tokens_per_doc = max_tokens_per_doc
        self.batch_size = batch_size
        self.client_name = client_name
        self._api_key = key

    @property
    def model_name(self) -> str:
        return self.model

    def _endpoint(self) -> str:
        return self.base_url or "https://api.cohere.com"

    def _settings(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "max_tokens_per_doc": self.max_tokens_per_doc}

    # -- clients -------------------------------------------------------------------------------

    def _new_client(self) -> _Clients:
        return self._make_clients(asynchronous=False)

    def _new_async_client(self) -> _Clients:
        return self._make_clients(asynchronous=True)

    def _make_clients(self, *, asynchronous: bool) -> _Clients:
        cohere = require("cohere", extra="cohere", feature="CohereReranker")
        httpx = require("httpx", extra="cohere", feature="CohereReranker")
        http = json_client(
            httpx, url=self._endpoint(), timeout=self.timeout, asynchronous=asynchronous
        )
        # A key provider, not the key: the SDK builds the header per request and holds none.
        key = SecretGetter(self._api_key) if self._api_key is not None else "no-key"
        sdk = (cohere.AsyncClientV2 if asynchronous else cohere.ClientV2)(
            api_key=key,
            base_url=self.base_url,
            client_name=self.client_name,
            timeout=self.timeout,
            max_retries=0,
            httpx_client=http,
        )
        return _Clients(sdk, http)

    # -- requests ------------------------------------------------------------------------------

    def _classify(self, exc: BaseException) -> Failure | None:
        api_error: Any = getattr(sys.modules.get("cohere.core.api_error"), "ApiError", None)
        if api_error is not None and isinstance(exc, api_error):
            status = exc.status_code
            if status is None or 200 <= status < 300:
                preview = str(exc.body)[:120] if exc.body is not None else ""
                return Failure("malformed", f"the answer is not valid JSON: {preview!r}")
            return status_failure(status, exc.headers, exc.body)
        return classify_httpx(exc)

    def _request(self, query: str, documents: list[str], timeout: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "query": query,
            "documents": documents,
            "request_options": {"timeout": timeout, "max_retries": 0},
        }
        if self.max_tokens_per_doc is not None:
            kwargs["max_tokens_per_doc"] = self.max_tokens_per_doc
        return kwargs

    @staticmethod
    def _read(response: Any, n: int, meter: UsageMeter) -> list[float]:
        meta = field(response, "meta")
        billed = field(meta, "billed_units")
        tokens = field(meta, "tokens")
        meter.add(
            search_units=count(field(billed, "search_units")),
            input_tokens=count(field(tokens, "input_tokens")),
            output_tokens=count(field(tokens, "output_tokens")),
        )
        results = field(response, "results")
        if results is None:
            raise BadResponse("the answer has no 'results'")
        return scores_by_index(results, n, score_key="relevance_score")

    def _score_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        sdk = self._client().sdk

        def send(documents: list[str], timeout: float) -> list[float]:
            with capture_body() as body:
                response = sdk.rerank(**self._request(query, documents, timeout))
            return self._read(body.or_else(response), len(documents), meter)

        return self._score_batches(
            texts, send, size=self.batch_size, request=_REQUEST, deadline=deadline, meter=meter
        )

    async def _ascore_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        sdk = self._aclient().sdk

        async def send(documents: list[str], timeout: float) -> list[float]:
            with capture_body() as body:
                response = await sdk.rerank(**self._request(query, documents, timeout))
            return self._read(body.or_else(response), len(documents), meter)

        return await self._ascore_batches(
            texts, send, size=self.batch_size, request=_REQUEST, deadline=deadline, meter=meter
        )
