"""The bits of the ``openai`` SDK that the LangChain and LlamaIndex chat adapters share.

Framework-free; ``openai`` is imported when a client is made (``pip install 'rerankit[openai]'``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rerankit._deps import require
from rerankit.errors import BackendError, ConfigurationError

__all__ = [
    "DEFAULT_OPENAI_MODEL",
    "OpenAIClients",
    "OpenAIFields",
    "OpenAISettings",
    "chat_completion",
    "env_values",
    "openai_configured",
    "settings_of",
]

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
_PLACEHOLDER_KEY = "not-needed"  # OpenAI-compatible servers often need no key; the SDK wants one
_ROLES = frozenset({"system", "user", "assistant", "developer"})


def openai_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set (and not empty).

    The examples use an OpenAI-compatible chat model then, and the offline extractive answerer
    otherwise.
    """
    env = os.environ if environ is None else environ
    return bool(env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"))


@dataclass(frozen=True, kw_only=True)
class OpenAISettings:
    """Where an OpenAI-compatible chat endpoint is and which model to ask.

    ``from_env()`` reads ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and ``OPENAI_MODEL`` (default
    ``gpt-4o-mini``). The key never appears in ``repr``.

    Example:
        >>> from rerankit.rag import OpenAISettings
        >>> settings = OpenAISettings.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"})
        >>> settings.model, settings.base_url
        ('gpt-4o-mini', 'http://127.0.0.1:8000/v1')
    """

    model: str = DEFAULT_OPENAI_MODEL
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    timeout: float = 60.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigurationError("model must be a non-empty str")
        if not isinstance(self.timeout, int | float) or self.timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number, got {self.timeout!r}")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, got {self.max_retries!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> OpenAISettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "model": env.get("OPENAI_MODEL") or DEFAULT_OPENAI_MODEL,
            "api_key": env.get("OPENAI_API_KEY") or None,
            "base_url": env.get("OPENAI_BASE_URL") or None,
        }
        values.update(overrides)
        return cls(**values)

    def client_kwargs(self) -> dict[str, Any]:
        return {
            # An explicit key, else the SDK's own lookup (OPENAI_API_KEY); a placeholder for
            # keyless OpenAI-compatible servers reached through base_url.
            "api_key": self.api_key
            or os.environ.get("OPENAI_API_KEY")
            or (_PLACEHOLDER_KEY if self.base_url else None),
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }

    def client(self) -> Any:
        """A synchronous ``openai.OpenAI`` client."""
        return self._make("OpenAI")

    def async_client(self) -> Any:
        """An ``openai.AsyncOpenAI`` client."""
        return self._make("AsyncOpenAI")

    def _make(self, cls: str) -> Any:
        openai = _openai()
        try:
            return getattr(openai, cls)(**self.client_kwargs())
        except openai.OpenAIError as exc:
            raise ConfigurationError(
                f"cannot make an OpenAI client ({exc}); set OPENAI_API_KEY, or OPENAI_BASE_URL "
                "for a keyless OpenAI-compatible server"
            ) from exc


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


class OpenAIFields(Protocol):
    """The connection fields of an adapter model (``ChatOpenAICompatible``,
    ``OpenAICompatibleLLM``); ``api_key`` is a secret such as pydantic's ``SecretStr``."""

    @property
    def model(self) -> str: ...

    @property
    def api_key(self) -> _Secret | None: ...

    @property
    def base_url(self) -> str | None: ...

    @property
    def timeout(self) -> float: ...

    @property
    def max_retries(self) -> int: ...


def env_values() -> dict[str, Any]:
    """``model``, ``api_key`` and ``base_url`` from the environment, as an adapter's
    ``from_env`` passes them to its constructor (see :meth:`OpenAISettings.from_env`)."""
    settings = OpenAISettings.from_env()
    return {"model": settings.model, "api_key": settings.api_key, "base_url": settings.base_url}


def settings_of(fields: OpenAIFields) -> OpenAISettings:
    """The :class:`OpenAISettings` of an adapter model, with its secret key revealed."""
    return OpenAISettings(
        model=fields.model,
        api_key=fields.api_key.get_secret_value() if fields.api_key is not None else None,
        base_url=fields.base_url,
        timeout=fields.timeout,
        max_retries=fields.max_retries,
    )


class OpenAIClients:
    """An adapter's ``openai`` clients, each made on first use and then reused.

    The settings are read (``settings()``) only when a client is made.
    """

    def __init__(self) -> None:
        self._sync: Any = None
        self._async: Any = None

    def sync_client(self, settings: Callable[[], OpenAISettings]) -> Any:
        """The ``openai.OpenAI`` client, made from ``settings()`` the first time."""
        if self._sync is None:
            self._sync = settings().client()
        return self._sync

    def async_client(self, settings: Callable[[], OpenAISettings]) -> Any:
        """The ``openai.AsyncOpenAI`` client, made from ``settings()`` the first time."""
        if self._async is None:
            self._async = settings().async_client()
        return self._async


def _openai() -> Any:
    return require("openai", extra="openai", feature="The OpenAI-compatible chat model")


def wire_messages(messages: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """``(role, content)`` pairs as the ``messages`` of a /v1/chat/completions request."""
    out = []
    for role, content in messages:
        if role not in _ROLES:
            raise ConfigurationError(
                f"unsupported chat role {role!r} (use one of {sorted(_ROLES)})"
            )
        out.append({"role": role, "content": content})
    return out


def request(
    settings: OpenAISettings,
    messages: Sequence[tuple[str, str]],
    *,
    temperature: float | None,
    max_tokens: int | None,
    stop: Sequence[str] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": settings.model, "messages": wire_messages(messages)}
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if stop:
        body["stop"] = list(stop)
    return body


@dataclass(frozen=True)
class Completion:
    """The answer text of a chat completion and what the server said about it."""

    text: str
    model: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


def parse_completion(response: Any) -> Completion:
    try:
        choice = response.choices[0]
        text = choice.message.content or ""
    except (AttributeError, IndexError, TypeError) as exc:
        raise BackendError(f"malformed chat completion: {response!r}") from exc
    usage = getattr(response, "usage", None)
    return Completion(
        text=text,
        model=str(getattr(response, "model", "") or ""),
        finish_reason=getattr(choice, "finish_reason", None),
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
    )


def chat_completion(client: Any, body: dict[str, Any]) -> Completion:
    """POST /v1/chat/completions with the sync client; SDK errors become BackendError."""
    openai = _openai()
    try:
        response = client.chat.completions.create(**body)
    except openai.OpenAIError as exc:
        raise BackendError(f"chat completion failed: {exc}") from exc
    return parse_completion(response)


async def achat_completion(client: Any, body: dict[str, Any]) -> Completion:
    """Async :func:`chat_completion`."""
    openai = _openai()
    try:
        response = await client.chat.completions.create(**body)
    except openai.OpenAIError as exc:
        raise BackendError(f"chat completion failed: {exc}") from exc
    return parse_completion(response)
