"""Mixedbread Rerank (``POST /v1/reranking``) through the official ``mixedbread`` SDK."""

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
from rerankit.remote.secrets import resolve_api_key
from rerankit.remote.transport import json_client
from rerankit.remote.usage import UsageMeter

if TYPE_CHECKING:
    from pydantic import SecretStr
    from typing_extensions import Unpack

    from rerankit.remote.base import RemoteOptions

__all__ = ["MixedbreadReranker"]

API_DOCUMENT_LIMIT = 1000
"""Documents the Mixedbread API takes per rerank request."""
DEFAULT_URL = "https://api.mixedbread.com"
PLACEHOLDER_KEY = "no-key"
"""What the SDK client is given as its key: the real one travels in each request's headers."""

_REQUEST = "POST /v1/reranking"


class MixedbreadReranker(RemoteReranker):
    """Reranks with Mixedbread Rerank (``mixedbread-ai/mxbai-rerank-large-v2``, ...) through
    the official ``mixedbread`` SDK (``pip install 'rerankit[mixedbread]'``).

    The SDK's clients run on rerankit's budgeted ``httpx`` clients with the SDK's retries off,
    and hold no key: the key (``api_key`` or ``MXBAI_API_KEY``, a ``SecretStr``) is revealed
    into each request's headers only. Bodies are read strictly before the SDK parses them.
    Calls with more than 1,000 documents (the API's limit) are split into batches sent
    concurrently. The raw score is the API's ``score`` (``probability`` space); each document
    is scored on its own, so :class:`~rerankit.CachedReranker` can cache it;
    ``RerankResults.usage["input_tokens"]`` carries the billed tokens. The other keyword
    arguments are those of every remote backend (:class:`~rerankit.remote.RemoteOptions`).

    Example:
        >>> from rerankit import MixedbreadReranker
        >>> reranker = MixedbreadReranker(api_key="...")
        >>> reranker.model
        'mixedbread-ai/mxbai-rerank-large-v2'
        >>> results = reranker.rerank("what is qdrant", ["Qdrant is a DB."])  # doctest: +SKIP
    """

    backend = "mixedbread"
    score_space = ScoreSpace.PROBABILITY
    pointwise: ClassVar[bool] = True

    def __init__(
        self,
        *,
        model: str = "mixedbread-ai/mxbai-rerank-large-v2",
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        batch_size: int = API_DOCUMENT_LIMIT,
        **options: Unpack[RemoteOptions],
    ) -> None:
        check_options(type(self), options)
        model = check_text("model", model)  # type: ignore[assignment]
        base_url = check_text("base_url", base_url, allow_none=True)
        check_positive_int("batch_size", batch_size)
        if base_url is None and batch_size > API_DOCUMENT_LIMIT:
            raise ConfigurationError(
                f"batch_size={batch_size}: the Mixedbread API takes at most "
                f"{API_DOCUMENT_LIMIT} documents per request"
            )
        super().__init__(**options)
        key = resolve_api_key(
            api_key, env="MXBAI_API_KEY", extra="mixedbread", feature="MixedbreadReranker"
        )
        if key is None and base_url is None:
            raise ConfigurationError(
                "MixedbreadReranker needs an API key: pass api_key=... or set MXBAI_API_KEY "
                "(or pass base_url=... for a compatible server that needs none)"
            )
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.batch_size = batch_size
        self._api_key = key

    @property
    def model_name(self) -> str:
        return self.model

    def _endpoint(self) -> str:
        return self.base_url or DEFAULT_URL

    def _settings(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    # -- clients -------------------------------------------------------------------------------

    def _new_client(self) -> Any:
        return self._make_client(asynchronous=False)

    def _new_async_client(self) -> Any:
        return self._make_client(asynchronous=True)

    def _make_client(self, *, asynchronous: bool) -> Any:
        mixedbread = require("mixedbread", extra="mixedbread", feature="MixedbreadReranker")
        httpx = require("httpx", extra="mixedbread", feature="MixedbreadReranker")
        http = json_client(
            httpx, url=self._endpoint(), timeout=self.timeout, asynchronous=asynchronous
        )
        sdk = mixedbread.AsyncMixedbread if asynchronous else mixedbread.Mixedbread
        return sdk(
            api_key=PLACEHOLDER_KEY,
            base_url=self._endpoint(),
            timeout=self.timeout,
            max_retries=0,
            http_client=http,
        )

    def _classify(self, exc: BaseException) -> Failure | None:
        sdk: Any = sys.modules.get("mixedbread")
        if sdk is not None:
            if isinstance(exc, sdk.APITimeoutError):
                return Failure("timeout", "the request timed out")
            if isinstance(exc, sdk.APIConnectionError):
                return Failure("connection", f"connection error ({type(exc).__name__})")
            if isinstance(exc, sdk.APIStatusError):
                return status_failure(exc.status_code, exc.response.headers, exc.body)
            if isinstance(exc, sdk.APIResponseValidationError):
                return Failure("malformed", "the answer does not match the reranking schema")
        return classify_httpx(exc)

    # -- requests ------------------------------------------------------------------------------

    def _request(self, query: str, documents: list[str], timeout: float) -> dict[str, Any]:
        headers = {}
        if self._api_key is not None:  # revealed per request, never kept by the SDK client
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        return {
            "model": self.model,
            "query": query,
            "input": documents,
            "top_k": len(documents),
            "return_input": False,
            "timeout": timeout,
            "extra_headers": headers,
        }

    @staticmethod
    def _read(response: Any, n: int, meter: UsageMeter) -> list[float]:
        meter.add(input_tokens=count(field(field(response, "usage"), "total_tokens")))
        data = field(response, "data")
        if data is None:
            raise BadResponse("the answer has no 'data'")
        return scores_by_index(data, n, score_key="score")

    def _score_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        sdk = self._client()

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
        sdk = self._aclient()

        async def send(documents: list[str], timeout: float) -> list[float]:
            with capture_body() as body:
                response = await sdk.rerank(**self._request(query, documents, timeout))
            return self._read(body.or_else(response), len(documents), meter)

        return await self._ascore_batches(
            texts, send, size=self.batch_size, request=_REQUEST, deadline=deadline, meter=meter
        )
