""":class:`OpenAICompatibleLLM`: a LlamaIndex LLM for any OpenAI-compatible
``/v1/chat/completions``, on rerankit's one OpenAI-compatible client layer
(:mod:`rerankit.remote.openai`, the LLM reranker's too).

Why not ``llama-index-llms-openai-like``: it requires ``transformers<5`` and does not install
next to the pinned ``transformers`` 5 (see :mod:`rerankit.rag.openai_settings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import (
    Field,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

from rerankit.rag.chat_fields import OpenAIChatFields
from rerankit.rag.openai_settings import (
    Completion,
    request,
)

__all__ = ["OpenAICompatibleLLM"]


class OpenAICompatibleLLM(OpenAIChatFields, CustomLLM):
    """A minimal LlamaIndex LLM for any OpenAI-compatible ``/v1/chat/completions``.

    Built on the ``openai`` SDK (``pip install 'rerankit[openai]'``) through rerankit's
    OpenAI-compatible client layer: ``timeout`` bounds each request in total, ``deadline``
    each call, retries included; 429, 5xx and connection errors are retried up to
    ``max_retries`` times; failures raise the typed :class:`~rerankit.remote.RemoteError`
    subclasses (so :class:`~rerankit.BackendError`). ``chat`` sends the messages as they are
    (real chat roles); ``complete`` sends the prompt as one user message. Streaming yields the
    whole answer as one chunk. ``from_env()`` reads ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and
    ``OPENAI_MODEL`` (default ``gpt-4o-mini``); a keyless local server only needs
    ``base_url``. Keys (``api_key``, and ``default_headers`` / ``default_query`` values that
    carry one) are held as ``SecretStr`` and masked in ``to_dict()`` and ``json()``. It cannot
    be pickled.

    Example:
        >>> from rerankit.llama_index import OpenAICompatibleLLM
        >>> llm = OpenAICompatibleLLM(model="llama3", base_url="http://localhost:11434/v1")
        >>> llm.metadata.model_name, llm.metadata.is_chat_model
        ('llama3', True)
    """

    context_window: int = Field(default=8192, gt=0)

    @classmethod
    def class_name(cls) -> str:
        return "RerankitOpenAICompatibleLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens or 256,
            is_chat_model=True,
            model_name=self.model,
        )

    def _body(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> dict[str, Any]:
        pairs = [(m.role.value, m.content or "") for m in messages]
        return request(
            self._settings(),
            pairs,
            temperature=kwargs.get("temperature", self.temperature),
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            stop=kwargs.get("stop"),
        )

    @staticmethod
    def _chat_response(completion: Completion) -> ChatResponse:
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=completion.text),
            raw={
                "model": completion.model,
                "finish_reason": completion.finish_reason,
                "usage": {
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                },
            },
        )

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat_response(self._client().complete(self._body(messages, kwargs)))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        completion = await self._client().acomplete(self._body(messages, kwargs))
        return self._chat_response(completion)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        response = self.chat(messages, **kwargs)

        def gen() -> ChatResponseGen:
            yield ChatResponse(
                message=response.message, raw=response.raw, delta=response.message.content
            )

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        message = ChatMessage(role=MessageRole.USER, content=prompt)
        completion = self._client().complete(self._body([message], kwargs))
        return CompletionResponse(text=completion.text, raw={"model": completion.model})

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        message = ChatMessage(role=MessageRole.USER, content=prompt)
        completion = await self._client().acomplete(self._body([message], kwargs))
        return CompletionResponse(text=completion.text, raw={"model": completion.model})

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        response = self.complete(prompt, formatted=formatted, **kwargs)

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=response.text, delta=response.text, raw=response.raw)

        return gen()

    def close(self) -> None:
        """Close the sync client (a new one is made on next use)."""
        self._client().close()

    async def aclose(self) -> None:
        """Close the running event loop's client and the sync client."""
        await self._client().aclose()
