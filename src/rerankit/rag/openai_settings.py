"""What the LangChain and LlamaIndex chat models over OpenAI-compatible servers share.

Framework-free and thin: the requests, retries, deadlines, per-event-loop clients and secret
handling are those of the one OpenAI-compatible client layer, :mod:`rerankit.remote.openai`
(the LLM reranker's too). Here are only the settings (:class:`OpenAISettings`, from the
environment), the wire messages, and the helpers the two pydantic models use for their secret
fields. ``openai`` is imported when a client is made (``pip install 'rerankit[openai]'``).

Why not the ecosystem adapters: ``llama-index-llms-openai-like`` does not install next to the
pinned ``transformers`` 5 (it requires ``transformers<5``); ``langchain-openai`` (1.7.3)
installs, but its ``ChatOpenAI`` keeps the SDK's own retry rule, builds one process-wide
``httpx.AsyncClient`` (``lru_cache``) shared by every event loop, so a second ``asyncio.run``
against a keep-alive server fails with "Event loop is closed", and has no total time budget
for sync calls. Making it follow rerankit's rules would mean replacing its clients and its
``_generate`` / ``_agenerate``, i.e. all of it but the message conversion. ``ChatOpenAI``
still works in :func:`rerankit.langchain.build_rag_chain`, like any chat model.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from rerankit.errors import ConfigurationError
from rerankit.remote.limits import RetryPolicy
from rerankit.remote.openai import Completion, OpenAIChat, OpenAIEndpoint
from rerankit.remote.secrets import MASK, SecretMap, is_secret, resolve_api_key

if TYPE_CHECKING:
    from pydantic import SecretStr

    from rerankit.rag.extractive import ExtractiveAnswerer

T = TypeVar("T")
L = TypeVar("L")

__all__ = [
    "DEFAULT_OPENAI_MODEL",
    "ChatHolder",
    "Completion",
    "OpenAIFields",
    "OpenAISettings",
    "env_values",
    "LOCAL_LLM_ENV",
    "generator_from_env",
    "local_llm_from_env",
    "openai_configured",
    "settings_of",
]

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
_ROLES = frozenset({"system", "user", "assistant", "developer"})
_FEATURE = "The OpenAI-compatible chat model"


def openai_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set (and not empty).

    The examples use an OpenAI-compatible chat model then, and the offline extractive answerer
    otherwise.
    """
    env = os.environ if environ is None else environ
    return bool(env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"))


def _check_float(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class OpenAISettings:
    """Where an OpenAI-compatible chat endpoint is and which model to ask.

    ``from_env()`` reads ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and ``OPENAI_MODEL`` (default
    ``gpt-4o-mini``). The key (and every gateway header or query parameter that carries one) is
    held as a pydantic ``SecretStr`` and never appears in ``repr``. ``timeout`` bounds each
    request in total, ``deadline`` each call (retries included), ``max_retries`` the retries of
    429, 5xx and connection errors.

    Example:
        >>> from rerankit.rag import OpenAISettings
        >>> settings = OpenAISettings.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"})
        >>> settings.model, settings.base_url
        ('gpt-4o-mini', 'http://127.0.0.1:8000/v1')
    """

    model: str = DEFAULT_OPENAI_MODEL
    api_key: SecretStr | None = field(default=None, repr=False)
    base_url: str | None = None
    timeout: float = 60.0
    max_retries: int = 2
    deadline: float | None = 120.0
    default_headers: Mapping[str, str | SecretStr] = field(default_factory=dict, repr=False)
    default_query: Mapping[str, str | SecretStr] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigurationError("model must be a non-empty str")
        _check_float("timeout", self.timeout)
        _check_float("deadline", self.deadline, allow_none=True)
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ConfigurationError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        key = resolve_api_key(self.api_key, env=None, extra="openai", feature=_FEATURE)
        object.__setattr__(self, "api_key", key)
        for name in ("default_headers", "default_query"):
            value = getattr(self, name)
            held = value if isinstance(value, SecretMap) else SecretMap(name, value)
            object.__setattr__(self, name, held)

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

    def endpoint(self) -> OpenAIEndpoint:
        """The :class:`~rerankit.remote.openai.OpenAIEndpoint` of these settings; the key is
        ``api_key``, else ``OPENAI_API_KEY``."""
        key = self.api_key or resolve_api_key(
            None, env="OPENAI_API_KEY", extra="openai", feature=_FEATURE
        )
        return OpenAIEndpoint(
            base_url=self.base_url,
            api_key=key,
            default_headers=self.default_headers,
            default_query=self.default_query,
            timeout=self.timeout,
            feature=_FEATURE,
        )

    def chat(self, name: Callable[[], str]) -> OpenAIChat:
        """Chat completions with these settings (``name`` names the model in errors)."""
        if self.api_key is None and self.base_url is None and not os.environ.get("OPENAI_API_KEY"):
            raise ConfigurationError(
                "the OpenAI-compatible chat model needs a key for the OpenAI API: pass "
                "api_key=..., set OPENAI_API_KEY, or set base_url (OPENAI_BASE_URL) for a "
                "keyless OpenAI-compatible server"
            )
        return OpenAIChat(
            name=name,
            endpoint=self.endpoint(),
            retry=RetryPolicy(max_retries=self.max_retries),
            deadline=self.deadline,
        )


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

    @property
    def deadline(self) -> float | None: ...

    @property
    def default_headers(self) -> Mapping[str, Any] | None: ...

    @property
    def default_query(self) -> Mapping[str, Any] | None: ...


LOCAL_LLM_ENV = "RERANKIT_LOCAL_LLM"
"""Environment variable naming a local model for :func:`generator_from_env` (a hub id, a model
folder or a ``.gguf`` file)."""


def local_llm_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``RERANKIT_LOCAL_LLM`` when set (and not blank), else ``None``."""
    env = os.environ if environ is None else environ
    value = (env.get(LOCAL_LLM_ENV) or "").strip()
    return value or None


def generator_from_env(
    make: Callable[..., T],
    *,
    local: str | None = None,
    make_local: Callable[[str], L] | None = None,
    **overrides: Any,
) -> T | L | ExtractiveAnswerer:
    """The examples' generator, in this order:

    1. ``make(**overrides)`` (a chat model's ``from_env``) when ``OPENAI_API_KEY`` or
       ``OPENAI_BASE_URL`` is set;
    2. ``make_local(model)`` when a local model is given: ``local`` (a hub id, a model folder
       or a ``.gguf`` file), else ``RERANKIT_LOCAL_LLM``;
    3. the offline, clearly labelled :class:`~rerankit.rag.ExtractiveAnswerer`.

    The faces' ``generator_from_env`` call it with their chat models.
    """
    from rerankit.rag.extractive import ExtractiveAnswerer

    if openai_configured():
        return make(**overrides)
    if local is not None and (not isinstance(local, str) or not local.strip()):
        raise ConfigurationError("local must be a hub id, model folder or .gguf path, or None")
    model = local or local_llm_from_env()
    if model is not None and make_local is not None:
        return make_local(model)
    return ExtractiveAnswerer()


def env_values() -> dict[str, Any]:
    """``model``, ``api_key`` and ``base_url`` from the environment, as an adapter's
    ``from_env`` passes them to its constructor (see :meth:`OpenAISettings.from_env`)."""
    settings = OpenAISettings.from_env()
    return {"model": settings.model, "api_key": settings.api_key, "base_url": settings.base_url}


def settings_of(fields: OpenAIFields) -> OpenAISettings:
    """The :class:`OpenAISettings` of an adapter model."""
    return OpenAISettings(
        model=fields.model,
        api_key=fields.api_key,  # type: ignore[arg-type]
        base_url=fields.base_url,
        timeout=fields.timeout,
        max_retries=fields.max_retries,
        deadline=fields.deadline,
        default_headers=dict(fields.default_headers or {}),
        default_query=dict(fields.default_query or {}),
    )


class ChatHolder:
    """An adapter's :class:`~rerankit.remote.openai.OpenAIChat`, made on first use.

    A copy of the adapter gets a new, empty holder (clients are not shared or copied).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chat: OpenAIChat | None = None

    def get(self, make: Callable[[], OpenAIChat]) -> OpenAIChat:
        with self._lock:
            if self._chat is None:
                self._chat = make()
            return self._chat

    def __deepcopy__(self, memo: dict[int, Any]) -> ChatHolder:
        return ChatHolder()

    def __repr__(self) -> str:
        return "ChatHolder()"


# -- pydantic helpers of the two adapters ------------------------------------------------------


def secret_key(value: Any) -> Any:
    """``api_key`` as the adapters validate it: a ``SecretStr`` (``None`` when blank); a
    masked key (what a serialisation holds) is refused rather than sent."""
    if value is None:
        return None
    text = value.get_secret_value() if is_secret(value) else value
    if text == MASK:
        raise ConfigurationError(
            "api_key is masked ('**********', as serialisations show it): pass the real key, "
            "or leave it unset to read OPENAI_API_KEY"
        )
    return resolve_api_key(value, env=None, extra="openai", feature=_FEATURE)


def secret_mapping(name: str, value: Any) -> dict[str, Any] | None:
    """Gateway headers or query parameters, their secret values as ``SecretStr``."""
    if value is None:
        return None
    held = SecretMap(name, value)
    if any(v == MASK for v in held.reveal().values()):
        raise ConfigurationError(f"{name} holds masked values: pass the real ones")
    return dict(held)


def dump_secret(value: Any) -> Any:
    """A secret field as serialisations show it: :data:`MASK` for secrets."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: MASK if is_secret(v) else v for k, v in value.items()}
    return MASK if is_secret(value) else value


def refuse_pickle(owner: object) -> None:
    raise TypeError(
        f"{type(owner).__name__} cannot be pickled (it holds an API key and live clients); "
        "build it again from its settings and the key"
    )


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
