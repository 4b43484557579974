"""Self-hosted rerank servers over HTTP: Text Embeddings Inference and Cohere-compatible APIs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from rerankit._deps import require
from rerankit.calibration import ScoreSpace
from rerankit.errors import ConfigurationError
from rerankit.remote.base import (
    RemoteReranker,
    check_options,
    check_positive_int,
    check_text,
)
from rerankit.remote.http import classify_httpx
from rerankit.remote.parsing import count, field, read_json, scores_by_index
from rerankit.remote.resilience import BadResponse, Deadline, Failure
from rerankit.remote.secrets import (
    SecretMap,
    basic_credentials,
    resolve_api_key,
)
from rerankit.remote.transport import async_client, sync_client
from rerankit.remote.usage import UsageMeter

if TYPE_CHECKING:
    from pydantic import SecretStr
    from typing_extensions import Unpack

    from rerankit.remote.base import RemoteOptions

__all__ = ["HTTPReranker"]

Api = Literal["tei", "cohere"]

DEFAULT_BATCH_SIZE: dict[str, int] = {"tei": 32, "cohere": 1000}
"""TEI refuses more than ``--max-client-batch-size`` texts (32 by default) per request."""


class _Url(NamedTuple):
    request: str
    """Where requests go: no credentials, no query (both travel apart)."""
    display: str
    user: str
    password: SecretStr | None
    query: SecretMap


def _split_url(url: str) -> _Url:
    """The parts of a server URL; credentials become Basic auth, query parameters whose names
    carry keys become secrets (nothing secret is left in a URL that a library may log)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"url must be an http(s) URL, got {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/rerank") and path != "rerank":
        path = f"{path}/rerank"
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    if ":" in parts.hostname:  # IPv6
        host = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    request = urlunsplit((parts.scheme, host, path, "", ""))
    password = resolve_api_key(
        unquote(parts.password) if parts.password else None,
        env=None,
        extra="http",
        feature="HTTPReranker",
    )
    query = SecretMap("url query", dict(parse_qsl(parts.query, keep_blank_values=True)))
    user = unquote(parts.username) if parts.username else ""
    return _Url(request, request, user, password, query)


class HTTPReranker(RemoteReranker):
    """Reranks with a self-hosted rerank server, over plain HTTP (``httpx``).

    * ``api="tei"``: Hugging Face Text Embeddings Inference, ``POST /rerank`` with
      ``{"query", "texts", "raw_scores", "truncate"}`` answering ``[{"index", "score"}]``.
      Scores are probabilities, or logits with ``raw_scores=True`` (then calibrated with a
      sigmoid). TEI takes at most ``--max-client-batch-size`` texts per request (32 by default),
      so that is the default ``batch_size``.
    * ``api="cohere"``: a Cohere-compatible ``POST /rerank`` (Infinity and others; pass the full
      URL for ``/v2/rerank``), ``{"query", "documents", "model"}`` answering
      ``{"results": [{"index", "relevance_score"}]}``. ``model`` names the served model.

    ``url`` is the server (``/rerank`` is appended unless the path already ends with it). This
    is how reranking scales out to GPU servers: batches are sent concurrently (up to
    ``max_concurrency``), with the retries, deadline and limits of
    :class:`~rerankit.remote.RemoteReranker`. ``api_key`` (or the variable named by
    ``api_key_env``) is sent as a bearer token, and credentials in the URL
    (``https://user:password@host``) as Basic auth; ``headers`` adds others. A header value
    is treated as a secret (held as ``SecretStr``, masked in configs and scrubbed from messages
    and logs) when it is given as a ``SecretStr`` or its name says it carries a credential
    (``Authorization``, ``X-Api-Key``, anything with ``key``, ``token``, ``secret``, ``auth``...);
    the same holds for query parameters of the URL. Servers truncate long inputs themselves
    (``truncate=True`` for TEI); rerankit cannot see that, so ``RerankResult.truncated`` stays
    False. Each document is
    scored on its own, so :class:`~rerankit.CachedReranker` can cache the scores.

    The other keyword arguments (``timeout``, ``deadline``, ``retry``, ``max_retries``,
    ``requests_per_minute``, ``max_concurrency``, ``on_usage``, ``calibration``, ``dedupe``)
    are those of every remote backend, described in :class:`~rerankit.remote.RemoteOptions`.

    Example:
        >>> from rerankit import HTTPReranker
        >>> tei = HTTPReranker(url="http://gpu-1:8080", api="tei")
        >>> infinity = HTTPReranker(
        ...     url="http://gpu-2:7997", api="cohere", model="BAAI/bge-reranker-v2-m3"
        ... )
        >>> tei
        HTTPReranker(model='http://gpu-1:8080/rerank', url='http://gpu-1:8080/rerank', api_key=None)
        >>> docs = ["Qdrant is a vector DB.", "Paris"]
        >>> results = tei.rerank("what is qdrant", docs)  # doctest: +SKIP
    """

    backend = "http"
    pointwise: ClassVar[bool] = True
    """Each document's score ignores the other documents (so scores can be cached)."""

    @property
    def score_space(self) -> ScoreSpace:
        """``probability`` (the server's sigmoid), or ``logit`` with ``raw_scores=True``."""
        return ScoreSpace.LOGIT if self.raw_scores else ScoreSpace.PROBABILITY

    def __init__(
        self,
        *,
        url: str,
        api: Api = "tei",
        model: str | None = None,
        api_key: str | SecretStr | None = None,
        api_key_env: str | None = None,
        headers: Mapping[str, str | SecretStr] | None = None,
        batch_size: int | None = None,
        raw_scores: bool = False,
        truncate: bool = True,
        **options: Unpack[RemoteOptions],
    ) -> None:
        check_options(type(self), options)
        url = check_text("url", url)  # type: ignore[assignment]
        if api not in ("tei", "cohere"):
            raise ConfigurationError(f"api must be 'tei' or 'cohere', got {api!r}")
        model = check_text("model", model, allow_none=True)
        if batch_size is None:
            batch_size = DEFAULT_BATCH_SIZE[api]
        check_positive_int("batch_size", batch_size)
        for name, flag in (("raw_scores", raw_scores), ("truncate", truncate)):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{name} must be a bool, got {flag!r}")
        if raw_scores and api != "tei":
            raise ConfigurationError("raw_scores applies to api='tei' only")
        extra_headers = SecretMap("headers", headers)
        parts = _split_url(url)
        self.raw_scores = raw_scores  # before the base class reads score_space
        super().__init__(**options)
        self.url = parts.display
        self.api: Api = api
        self.model = model
        self.batch_size = batch_size
        self.truncate = truncate
        self._url = parts
        self._headers = extra_headers
        self._api_key = resolve_api_key(
            api_key, env=api_key_env, extra="http", feature="HTTPReranker"
        )

    @classmethod
    def from_spec_options(
        cls,
        *,
        model: str | None = None,
        url: str | None = None,
        served_model: str | None = None,
        **options: Any,
    ) -> HTTPReranker:
        """Factory for specs, where the model slot holds the URL.

        ``http:http://gpu-1:8080?api=tei`` and ``http:http://gpu-2:7997?api=cohere&served_model=bge``
        give the URL in the model slot; ``http:bge?url=http://gpu-2:7997&api=cohere`` gives the
        served model there and the URL as an option.
        """
        if url is None:
            url, model = model, None
        if served_model is not None:
            model = served_model
        if url is None:
            raise ConfigurationError(
                "an http spec needs a URL: http:http://host:8080?api=tei, "
                "or http:<model>?url=http://host:8080&api=cohere"
            )
        return cls(url=url, model=model, **options)

    @property
    def model_name(self) -> str:
        return self.model or self.url

    def _endpoint(self) -> str:
        return self.url

    def _secrets(self) -> list[str]:
        url = self._url
        extra = self._headers.secrets() + url.query.secrets()
        if url.password is not None:
            password = url.password.get_secret_value()
            extra += [password, basic_credentials(url.user, password)]
        return [*super()._secrets(), *extra]

    def _settings(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "batch_size": self.batch_size,
            "raw_scores": self.raw_scores,
            "truncate": self.truncate,
            "headers": self._headers.masked(),
            "query": self._url.query.masked(),
        }

    # -- clients -------------------------------------------------------------------------------

    def _request_headers(self) -> dict[str, str]:
        """The headers of one request, secrets revealed (built per request, never kept)."""
        headers = {"Content-Type": "application/json", **self._headers.reveal()}
        url = self._url
        if url.password is not None:
            token = basic_credentials(url.user, url.password.get_secret_value())
            headers["Authorization"] = f"Basic {token}"
        elif self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        return headers

    def _new_client(self) -> Any:
        httpx = require("httpx", extra="http", feature="HTTPReranker")
        return sync_client(httpx, url=self._url.request, timeout=self.timeout)

    def _new_async_client(self) -> Any:
        httpx = require("httpx", extra="http", feature="HTTPReranker")
        return async_client(httpx, url=self._url.request, timeout=self.timeout)

    def _classify(self, exc: BaseException) -> Failure | None:
        return classify_httpx(exc)

    # -- requests ------------------------------------------------------------------------------

    def _body(self, query: str, documents: list[str]) -> dict[str, Any]:
        if self.api == "tei":
            return {
                "query": query,
                "texts": documents,
                "raw_scores": self.raw_scores,
                "return_text": False,
                "truncate": self.truncate,
            }
        body: dict[str, Any] = {
            "query": query,
            "documents": documents,
            "top_n": len(documents),
            "return_documents": False,
        }
        if self.model is not None:
            body["model"] = self.model
        return body

    def _label(self) -> str:
        return f"POST {urlsplit(self.url).path or '/rerank'}"

    def _read(self, response: Any, n: int, meter: UsageMeter) -> list[float]:
        response.raise_for_status()
        content_type = response.headers.get("content-type")
        if self.api == "tei":
            data = read_json(response.content, expect=(list, dict), content_type=content_type)
            if isinstance(data, Mapping):  # some proxies wrap the list
                if "results" not in data:
                    raise BadResponse("expected a list of results, got an object without 'results'")
                data = data["results"]
            return scores_by_index(data, n, score_key="score")
        data = read_json(response.content, expect=dict, content_type=content_type)
        meta, usage = field(data, "meta"), field(data, "usage")
        meter.add(
            search_units=count(field(field(meta, "billed_units"), "search_units")),
            input_tokens=count(field(field(meta, "tokens"), "input_tokens"))
            or count(field(usage, "prompt_tokens")),
        )
        if "results" not in data:
            raise BadResponse("the answer has no 'results'")
        return scores_by_index(data["results"], n, score_key="relevance_score")

    def _post(self, documents: list[str], query: str, timeout: float) -> dict[str, Any]:
        """The arguments of one ``client.post`` (headers revealed here, per request)."""
        query_params = self._url.query.reveal()
        return {
            "content": json.dumps(self._body(query, documents)),
            "headers": self._request_headers(),
            "params": query_params or None,
            "timeout": timeout,
        }

    def _score_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        client = self._client()

        def send(documents: list[str], timeout: float) -> list[float]:
            response = client.post(self._url.request, **self._post(documents, query, timeout))
            return self._read(response, len(documents), meter)

        return self._score_batches(
            texts, send, size=self.batch_size, request=self._label(), deadline=deadline, meter=meter
        )

    async def _ascore_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        client = self._aclient()

        async def send(documents: list[str], timeout: float) -> list[float]:
            kwargs = self._post(documents, query, timeout)
            response = await client.post(self._url.request, **kwargs)
            return self._read(response, len(documents), meter)

        return await self._ascore_batches(
            texts, send, size=self.batch_size, request=self._label(), deadline=deadline, meter=meter
        )
