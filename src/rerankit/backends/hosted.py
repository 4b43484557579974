"""The shared shape of hosted rerank APIs called over plain HTTP (Voyage, Jina): one JSON
``POST`` with a bearer key, answered with ``[{"index", "relevance_score"}]`` under one key.

:class:`HostedReranker` holds what they share (key from ``api_key`` or the API's variable,
``base_url`` for a compatible server or a proxy, batches of at most the API's document limit
sent concurrently, strict reading of the answer, token usage); a backend names its endpoint,
its body and where its results are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rerankit._deps import require
from rerankit.calibration import ScoreSpace
from rerankit.errors import ConfigurationError
from rerankit.remote.base import RemoteReranker, check_options, check_positive_int, check_text
from rerankit.remote.http import classify_httpx
from rerankit.remote.parsing import count, field, read_json, scores_by_index
from rerankit.remote.resilience import BadResponse, Deadline, Failure
from rerankit.remote.secrets import resolve_api_key
from rerankit.remote.transport import async_client, sync_client
from rerankit.remote.usage import UsageMeter

if TYPE_CHECKING:
    from pydantic import SecretStr
    from typing_extensions import Unpack

    from rerankit.remote.base import RemoteOptions

__all__ = ["HostedReranker"]


class HostedReranker(RemoteReranker):
    """Base of the hosted rerank APIs reached over HTTP; see :class:`~rerankit.VoyageReranker`
    and :class:`~rerankit.JinaReranker`."""

    score_space = ScoreSpace.PROBABILITY
    default_url: ClassVar[str] = ""
    """The API root (``https://api.voyageai.com/v1``); ``base_url`` replaces it."""
    path: ClassVar[str] = "/rerank"
    key_env: ClassVar[str] = ""
    """The variable the key is read from when ``api_key`` is not given."""
    default_batch_size: ClassVar[int] = 1000
    """Documents per request unless ``batch_size`` says otherwise."""
    document_limit: ClassVar[int | None] = None
    """Documents the API documents it takes per request (the largest ``batch_size``)."""
    results_key: ClassVar[str] = "results"

    def __init__(
        self,
        *,
        model: str,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        batch_size: int | None = None,
        **options: Unpack[RemoteOptions],
    ) -> None:
        check_options(type(self), options)
        model = check_text("model", model)  # type: ignore[assignment]
        base_url = check_text("base_url", base_url, allow_none=True)
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}")
        batch_size = self.default_batch_size if batch_size is None else batch_size
        check_positive_int("batch_size", batch_size)
        limit = self.document_limit
        if base_url is None and limit is not None and batch_size > limit:
            raise ConfigurationError(
                f"batch_size={batch_size}: the {self._api_name()} API takes at most "
                f"{limit} documents per request"
            )
        super().__init__(**options)
        name = type(self).__name__
        key = resolve_api_key(api_key, env=self.key_env, extra="http", feature=name)
        if key is None and base_url is None:
            raise ConfigurationError(
                f"{name} needs an API key: pass api_key=... or set {self.key_env} (or pass "
                "base_url=... for a compatible server that needs none)"
            )
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.batch_size = batch_size
        self._api_key = key

    @classmethod
    def _api_name(cls) -> str:
        return cls.__name__.removesuffix("Reranker")

    @property
    def model_name(self) -> str:
        return self.model

    def _endpoint(self) -> str:
        return self.base_url or self.default_url

    def _settings(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    # -- the API ------------------------------------------------------------------------------

    def _body(self, query: str, documents: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def _url(self) -> str:
        return self._endpoint() + self.path

    # -- clients -------------------------------------------------------------------------------

    def _new_client(self) -> Any:
        httpx = require("httpx", extra="http", feature=type(self).__name__)
        return sync_client(httpx, url=self._url(), timeout=self.timeout)

    def _new_async_client(self) -> Any:
        httpx = require("httpx", extra="http", feature=type(self).__name__)
        return async_client(httpx, url=self._url(), timeout=self.timeout)

    def _classify(self, exc: BaseException) -> Failure | None:
        return classify_httpx(exc)

    def _post(self, query: str, documents: list[str], timeout: float) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key is not None:  # revealed per request, never kept in a client
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        return {
            "content": json.dumps(self._body(query, documents)),
            "headers": headers,
            "timeout": timeout,
        }

    def _read(self, response: Any, n: int, meter: UsageMeter) -> list[float]:
        response.raise_for_status()
        content_type = response.headers.get("content-type")
        data = read_json(response.content, expect=dict, content_type=content_type)
        usage = field(data, "usage")
        meter.add(input_tokens=count(field(usage, "total_tokens")))
        if self.results_key not in data:
            raise BadResponse(f"the answer has no {self.results_key!r}")
        return scores_by_index(data[self.results_key], n, score_key="relevance_score")

    def _label(self) -> str:
        return f"POST {self.path}"

    def _score_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        client = self._client()

        def send(documents: list[str], timeout: float) -> list[float]:
            response = client.post(self._url(), **self._post(query, documents, timeout))
            return self._read(response, len(documents), meter)

        return self._score_batches(
            texts, send, size=self.batch_size, request=self._label(), deadline=deadline, meter=meter
        )

    async def _ascore_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        client = self._aclient()

        async def send(documents: list[str], timeout: float) -> list[float]:
            response = await client.post(self._url(), **self._post(query, documents, timeout))
            return self._read(response, len(documents), meter)

        return await self._ascore_batches(
            texts, send, size=self.batch_size, request=self._label(), deadline=deadline, meter=meter
        )
