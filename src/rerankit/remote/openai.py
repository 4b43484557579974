"""The one OpenAI-compatible client layer, under the LLM reranker and the chat models.

:class:`OpenAIEndpoint` is where a ``/chat/completions`` server is and how to reach it: the
``openai`` SDK's clients (made here, over the budgeted ``httpx2`` clients of
:mod:`rerankit.remote.transport`, with the SDK's own retries off), the key and the gateway
headers and query parameters (held as ``SecretStr`` and revealed only into each request's
``extra_headers`` / ``extra_query``, so the SDK's client objects hold none of them), the
classification of SDK errors, and the reading of a completion. :class:`OpenAIChat` adds the
one retry rule and deadline of :class:`~rerankit.remote.Resilience` for the chat models
(:class:`rerankit.langchain.ChatOpenAICompatible`,
:class:`rerankit.llama_index.OpenAICompatibleLLM`); :class:`~rerankit.LLMReranker` uses the
endpoint under its own :class:`~rerankit.remote.RemoteReranker` resilience. Async clients are
made per event loop and closed with it (:mod:`rerankit.remote.loops`).

The ``openai`` SDK is imported when a client is made (``pip install 'rerankit[openai]'``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rerankit._deps import require
from rerankit.remote.http import status_failure
from rerankit.remote.limits import Deadline, RetryPolicy
from rerankit.remote.loops import Clients
from rerankit.remote.parsing import capture_body, count, field
from rerankit.remote.resilience import BadResponse, Failure, Resilience
from rerankit.remote.secrets import SecretMap, guard_logs, redact
from rerankit.remote.transport import json_client
from rerankit.remote.usage import UsageMeter

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["Completion", "OpenAIChat", "OpenAIEndpoint", "read_completion"]

PLACEHOLDER_KEY = "no-key"
"""What the SDK is given as its key: the real one travels in each request's headers (and
keyless OpenAI-compatible servers take any)."""

DEFAULT_BASE_URL = "https://api.openai.com/v1"


async def _aclose(client: Any) -> None:
    await client.close()


def _close(client: Any) -> None:
    client.close()


class OpenAIEndpoint:
    """An OpenAI-compatible endpoint: ``openai`` clients, per-request secrets, SDK errors.

    Example:
        >>> from rerankit.remote.openai import OpenAIEndpoint
        >>> endpoint = OpenAIEndpoint(base_url="http://localhost:11434/v1", timeout=30.0)
        >>> endpoint.url, endpoint.masked_headers()
        ('http://localhost:11434/v1', {})
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: SecretStr | None = None,
        default_headers: Mapping[str, str | SecretStr] | None = None,
        default_query: Mapping[str, str | SecretStr] | None = None,
        timeout: float = 60.0,
        feature: str = "the OpenAI-compatible client",
    ) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = float(timeout)
        self.feature = feature
        self._api_key = api_key
        self._headers = (
            default_headers
            if isinstance(default_headers, SecretMap)
            else SecretMap("default_headers", default_headers)
        )
        self._query = (
            default_query
            if isinstance(default_query, SecretMap)
            else SecretMap("default_query", default_query)
        )
        self.clients: Clients[Any] = Clients(
            self._new_client, self._new_async_client, _close, _aclose
        )
        guard_logs(self)

    @property
    def url(self) -> str:
        return self.base_url or DEFAULT_BASE_URL

    @property
    def api_key(self) -> SecretStr | None:
        return self._api_key

    def masked_headers(self) -> dict[str, str]:
        return self._headers.masked()

    def masked_query(self) -> dict[str, str]:
        return self._query.masked()

    def _secrets(self) -> list[str]:
        key = [self._api_key.get_secret_value()] if self._api_key is not None else []
        return [*key, *self._headers.secrets(), *self._query.secrets()]

    def redact(self, text: str) -> str:
        return redact(text, self._secrets())

    def __repr__(self) -> str:
        return f"OpenAIEndpoint(url={self.url!r})"

    # -- clients -------------------------------------------------------------------------------

    def _openai(self) -> Any:
        return require("openai", extra="openai", feature=self.feature)

    def _new_client(self) -> Any:
        openai = self._openai()
        http = json_client(
            require("httpx2", extra="openai", feature=self.feature),
            url=self.url,
            timeout=self.timeout,
            asynchronous=False,
            follow_redirects=True,
        )
        return openai.OpenAI(
            api_key=PLACEHOLDER_KEY,
            base_url=self.url,
            timeout=self.timeout,
            max_retries=0,
            http_client=http,
        )

    def _new_async_client(self) -> Any:
        openai = self._openai()
        http = json_client(
            require("httpx2", extra="openai", feature=self.feature),
            url=self.url,
            timeout=self.timeout,
            asynchronous=True,
            follow_redirects=True,
        )
        return openai.AsyncOpenAI(
            api_key=PLACEHOLDER_KEY,
            base_url=self.url,
            timeout=self.timeout,
            max_retries=0,
            http_client=http,
        )

    def request_extras(self) -> dict[str, Any]:
        """``extra_headers`` / ``extra_query`` for one request: the key and the gateway
        headers and parameters, revealed here and nowhere else."""
        headers = self._headers.reveal()
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        extras: dict[str, Any] = {}
        if headers:
            extras["extra_headers"] = headers
        query = self._query.reveal()
        if query:
            extras["extra_query"] = query
        return extras

    # -- errors --------------------------------------------------------------------------------

    @staticmethod
    def classify(exc: BaseException) -> Failure | None:
        """An ``openai`` SDK exception as a :class:`~rerankit.remote.resilience.Failure`."""
        openai: Any = sys.modules.get("openai")
        if openai is None:
            return None
        if isinstance(exc, openai.APITimeoutError):
            return Failure("timeout", "the request timed out")
        if isinstance(exc, openai.APIConnectionError):
            return Failure("connection", f"connection error ({type(exc).__name__})")
        if isinstance(exc, openai.APIStatusError):
            return status_failure(exc.status_code, exc.response.headers, exc.body)
        if isinstance(exc, openai.APIResponseValidationError):
            return Failure("malformed", "the answer does not match the chat completion schema")
        return None


@dataclass(frozen=True)
class Completion:
    """The answer text of a chat completion and what the server said about it."""

    text: str
    model: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    logprobs: Any = None
    """The first choice's ``logprobs.content`` (``None`` when absent)."""


def read_completion(response: Any, meter: UsageMeter | None = None) -> Completion:
    """The first choice of a chat completion; :class:`BadResponse` when there is none or its
    content is not text."""
    usage = field(response, "usage")
    prompt, completion = field(usage, "prompt_tokens"), field(usage, "completion_tokens")
    if meter is not None:
        meter.add(input_tokens=count(prompt), output_tokens=count(completion))
    choices = field(response, "choices")
    if not isinstance(choices, list) or not choices:
        raise BadResponse("the answer has no choices")
    choice = choices[0]
    content = field(field(choice, "message"), "content")
    if content is not None and not isinstance(content, str):
        raise BadResponse(f"choices[0].message.content is a {type(content).__name__}, not text")
    finish = field(choice, "finish_reason")
    model = field(response, "model")
    return Completion(
        text=content or "",
        model=model if isinstance(model, str) else "",
        finish_reason=finish if isinstance(finish, str) else None,
        prompt_tokens=count(prompt) if prompt is not None else None,
        completion_tokens=count(completion) if completion is not None else None,
        logprobs=field(field(choice, "logprobs"), "content"),
    )


_REQUEST = "chat completion"


class OpenAIChat:
    """Chat completions for the chat models: one :class:`OpenAIEndpoint`, the retry rule and
    deadline of :class:`~rerankit.remote.Resilience` (429, 5xx and connection errors retried,
    up to ``retry.max_retries``; a total ``timeout`` per request; ``deadline`` per call).

    Failures raise the typed :class:`~rerankit.remote.RemoteError` subclasses (so
    :class:`~rerankit.BackendError`), e.g. ``"...: chat completion failed after 3 attempts
    (...)"``.

    Example:
        >>> from rerankit.remote import RetryPolicy
        >>> from rerankit.remote.openai import OpenAIChat, OpenAIEndpoint
        >>> chat = OpenAIChat(name=lambda: "Chat(model='llama3')",
        ...                   endpoint=OpenAIEndpoint(base_url="http://localhost:11434/v1"),
        ...                   retry=RetryPolicy(max_retries=2), deadline=30.0)
        >>> chat.resilience.retry.max_attempts, chat.deadline
        (3, 30.0)
        >>> body = {"model": "llama3", "messages": [{"role": "user", "content": "Hi"}]}
        >>> chat.complete(body).text  # doctest: +SKIP
        'Hello!'
    """

    def __init__(
        self,
        *,
        name: Callable[[], str],
        endpoint: OpenAIEndpoint,
        retry: RetryPolicy,
        deadline: float | None,
        max_concurrency: int = 64,
    ) -> None:
        self.endpoint = endpoint
        self.deadline = deadline
        self.resilience = Resilience(
            name=name,
            timeout=endpoint.timeout,
            retry=retry,
            max_concurrency=max_concurrency,
            requests_per_minute=None,
            classify=endpoint.classify,
            redact=endpoint.redact,
        )

    def _kwargs(self, body: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        return {**body, **self.endpoint.request_extras(), "timeout": timeout}

    def complete(self, body: Mapping[str, Any]) -> Completion:
        """POST ``/chat/completions`` with ``body`` (model, messages, ...) on the sync client."""
        deadline = Deadline(self.deadline)  # from the call's start: making a client counts
        client = self.endpoint.clients.sync()

        def job(timeout: float) -> Completion:
            with capture_body() as sent:
                response = client.chat.completions.create(**self._kwargs(body, timeout))
            return read_completion(sent.or_else(response))

        return self.resilience.call(job, deadline=deadline, meter=UsageMeter(), what=_REQUEST)

    async def acomplete(self, body: Mapping[str, Any]) -> Completion:
        """Async :meth:`complete`, on the running loop's client."""
        deadline = Deadline(self.deadline)
        client = self.endpoint.clients.current()

        async def job(timeout: float) -> Completion:
            with capture_body() as sent:
                response = await client.chat.completions.create(**self._kwargs(body, timeout))
            return read_completion(sent.or_else(response))

        return await self.resilience.acall(
            job, deadline=deadline, meter=UsageMeter(), what=_REQUEST
        )

    def close(self) -> None:
        self.endpoint.clients.close()

    async def aclose(self) -> None:
        await self.endpoint.clients.aclose()
