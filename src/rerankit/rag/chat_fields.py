"""The fields the LangChain and LlamaIndex chat models over OpenAI-compatible servers share.

:class:`OpenAIChatFields` is a pydantic mixin (both frameworks' models are pydantic models):
the connection fields, their validation, the masking of secret fields in every serialisation,
the refusal to pickle, ``from_env`` and the chat client, declared once. The faces add only the
framework's own message types (:class:`rerankit.langchain.ChatOpenAICompatible`,
:class:`rerankit.llama_index.OpenAICompatibleLLM`).

Needs pydantic (which both frameworks bring); imports neither framework.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    field_serializer,
    field_validator,
)
from typing_extensions import Self

from rerankit.rag.openai_settings import (
    DEFAULT_OPENAI_MODEL,
    ChatHolder,
    OpenAISettings,
    dump_secret,
    env_values,
    refuse_pickle,
    secret_key,
    secret_mapping,
    settings_of,
)
from rerankit.remote.openai import OpenAIChat

__all__ = ["OpenAIChatFields"]


class OpenAIChatFields(BaseModel):
    """Connection fields and client of a chat model over an OpenAI-compatible server."""

    model: str = Field(default=DEFAULT_OPENAI_MODEL, min_length=1, description="Model name.")
    api_key: SecretStr | None = Field(default=None, description="API key (else OPENAI_API_KEY).")
    base_url: str | None = Field(default=None, description="Endpoint, e.g. http://host/v1.")
    temperature: float | None = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    timeout: float = Field(default=60.0, gt=0, description="Seconds per request, in total.")
    deadline: float | None = Field(default=120.0, gt=0, description="Seconds per call.")
    max_retries: int = Field(default=2, ge=0)
    default_headers: dict[str, str | SecretStr] | None = Field(default=None)
    default_query: dict[str, str | SecretStr] | None = Field(default=None)

    _chat: ChatHolder = PrivateAttr(default_factory=ChatHolder)

    @field_validator("api_key", mode="before")
    @classmethod
    def _key(cls, value: Any) -> Any:
        return secret_key(value)

    @field_validator("default_headers", "default_query", mode="before")
    @classmethod
    def _mapping(cls, value: Any, info: Any) -> Any:
        return secret_mapping(info.field_name, value)

    @field_serializer("api_key", "default_headers", "default_query")
    def _dump(self, value: Any) -> Any:
        return dump_secret(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    def __str__(self) -> str:
        return repr(self)

    def __getstate__(self) -> dict[Any, Any]:
        refuse_pickle(self)
        return {}  # pragma: no cover

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """From ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and ``OPENAI_MODEL``; ``overrides`` win."""
        return cls(**{**env_values(), **overrides})

    def _settings(self) -> OpenAISettings:
        return settings_of(self)

    def _client(self) -> OpenAIChat:
        return self._chat.get(lambda: self._settings().chat(self._name))

    def _name(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"
