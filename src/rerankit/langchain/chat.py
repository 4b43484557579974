""":class:`ChatOpenAICompatible`: a LangChain chat model for any OpenAI-compatible
``/v1/chat/completions``, on rerankit's one OpenAI-compatible client layer
(:mod:`rerankit.remote.openai`, the LLM reranker's too).

Why not ``langchain_openai.ChatOpenAI``: see :mod:`rerankit.rag.openai_settings` (it keeps its own
retry rule, shares one async client across event loops, and has no total time budget for sync
calls); it still works in :func:`rerankit.langchain.build_rag_chain`, like any chat model.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from rerankit.errors import ConfigurationError
from rerankit.rag.chat_fields import OpenAIChatFields
from rerankit.rag.openai_settings import (
    Completion,
    request,
)

__all__ = ["ChatOpenAICompatible", "chat_result"]

_ROLE = {"system": "system", "human": "user", "ai": "assistant", "developer": "developer"}


def chat_result(
    text: str, prompt_tokens: int | None, completion_tokens: int | None, **metadata: Any
) -> ChatResult:
    """One generation as a ``ChatResult``: the text, the token usage when both counts are
    known, and ``metadata`` as the message's ``response_metadata``."""
    usage: UsageMetadata | None = None
    if prompt_tokens is not None and completion_tokens is not None:
        usage = UsageMetadata(
            input_tokens=prompt_tokens,
            output_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
    message = AIMessage(content=text, response_metadata=metadata, usage_metadata=usage)
    return ChatResult(generations=[ChatGeneration(message=message)])


class ChatOpenAICompatible(OpenAIChatFields, BaseChatModel):
    """A minimal LangChain chat model for any OpenAI-compatible ``/v1/chat/completions``.

    Built on the ``openai`` SDK (``pip install 'rerankit[openai]'``) through rerankit's
    OpenAI-compatible client layer, so it follows the same rules as the remote rerankers:
    ``timeout`` bounds each request in total (also when a server trickles its answer),
    ``deadline`` each call, retries included; 429, 5xx and connection errors are retried up to
    ``max_retries`` times with backoff honouring ``Retry-After``; failures raise the typed
    :class:`~rerankit.remote.RemoteError` subclasses (so :class:`~rerankit.BackendError`). Text
    in, text out: no tools, no streaming of tokens.

    ``from_env()`` reads ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and ``OPENAI_MODEL`` (default
    ``gpt-4o-mini``); a keyless local server only needs ``base_url``. ``default_headers`` and
    ``default_query`` reach Azure-style gateways; like ``api_key``, values that carry keys are
    held as ``SecretStr`` and masked in every repr and serialisation. It cannot be pickled.

    Example:
        >>> from rerankit.langchain import ChatOpenAICompatible
        >>> llm = ChatOpenAICompatible(model="llama3", base_url="http://localhost:11434/v1")
        >>> llm.model, llm.temperature
        ('llama3', 0.0)
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url, "temperature": self.temperature}

    def _body(self, messages: list[BaseMessage], stop: list[str] | None) -> dict[str, Any]:
        pairs = []
        for message in messages:
            role = getattr(message, "role", None) if message.type == "chat" else None
            role = role or _ROLE.get(message.type)
            if role is None:
                raise ConfigurationError(
                    f"ChatOpenAICompatible cannot send a {message.type!r} message"
                )
            pairs.append((role, message.text))
        return request(
            self._settings(),
            pairs,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=stop,
        )

    @staticmethod
    def _result(completion: Completion) -> ChatResult:
        return chat_result(
            completion.text,
            completion.prompt_tokens,
            completion.completion_tokens,
            model_name=completion.model,
            finish_reason=completion.finish_reason,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(self._client().complete(self._body(messages, stop)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(await self._client().acomplete(self._body(messages, stop)))

    def close(self) -> None:
        """Close the sync client (a new one is made on next use)."""
        self._client().close()

    async def aclose(self) -> None:
        """Close the running event loop's client and the sync client."""
        await self._client().aclose()
