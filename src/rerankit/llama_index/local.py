"""A local LLM as a LlamaIndex LLM: ``llama_index.llms.huggingface.HuggingFaceLLM`` on the shared
model, generating through :class:`rerankit.rag.local_llm.LocalGenerator`.

:func:`local_llm` builds it. The chat, completion, async and streaming methods run on the
framework-free generator, for the reasons :mod:`rerankit.rag.local_llm` gives (HuggingFaceLLM's
async methods block the event loop, and it adds special tokens to a templated prompt).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    MessageRole,
)
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

from rerankit._deps import require
from rerankit._typing import Unpack
from rerankit.rag.local_llm import Generation, LocalGenerator, LocalLLMOptions

require(
    "llama_index.llms.huggingface",
    extra="llama-index-local",
    feature="local_llm",
    package="llama-index-llms-huggingface",
)

from llama_index.llms.huggingface import HuggingFaceLLM  # noqa: E402

__all__ = ["LocalHuggingFaceLLM", "local_llm"]


def _pairs(messages: Sequence[ChatMessage]) -> list[tuple[str, str]]:
    return [(m.role.value, m.content or "") for m in messages]


class LocalHuggingFaceLLM(HuggingFaceLLM):
    """``HuggingFaceLLM`` on a local causal LM, with real async and token streaming.

    Built by :func:`local_llm`. ``stream_chat`` / ``astream_chat`` (and the completion
    twins) yield one delta per token; ``complete`` sends the prompt as one user message
    through the chat template; ``raw`` carries the finish reason, the token counts and the
    time to the first token.

    Example:
        >>> from rerankit.llama_index import local_llm
        >>> for chunk in local_llm().stream_complete("Name a colour."):  # doctest: +SKIP
        ...     print(chunk.delta, end="")
        Blue.
    """

    _generator: LocalGenerator = PrivateAttr()
    """The framework-free generator every method runs on."""

    @classmethod
    def class_name(cls) -> str:
        return "RerankitLocalHuggingFaceLLM"

    @property
    def generator(self) -> LocalGenerator:
        return self._generator

    def _limit(self, kwargs: dict[str, Any]) -> int:
        return int(kwargs.get("max_new_tokens", self.max_new_tokens))

    @staticmethod
    def _raw(generation: Generation) -> dict[str, Any]:
        return {
            "finish_reason": generation.finish_reason,
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "first_token_s": generation.first_token_s,
            "total_s": generation.total_s,
        }

    def _chat_response(self, generation: Generation) -> ChatResponse:
        message = ChatMessage(role=MessageRole.ASSISTANT, content=generation.text)
        return ChatResponse(message=message, raw=self._raw(generation))

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        generation = self._generator.generate(
            _pairs(messages), stop=kwargs.get("stop"), max_new_tokens=self._limit(kwargs)
        )
        return self._chat_response(generation)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        generation = await self._generator.agenerate(
            _pairs(messages), stop=kwargs.get("stop"), max_new_tokens=self._limit(kwargs)
        )
        return self._chat_response(generation)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        deltas = self._generator.stream(
            _pairs(messages), stop=kwargs.get("stop"), max_new_tokens=self._limit(kwargs)
        )

        def gen() -> ChatResponseGen:
            text = ""
            for delta in deltas:
                text += delta
                message = ChatMessage(role=MessageRole.ASSISTANT, content=text)
                yield ChatResponse(message=message, delta=delta)

        return gen()

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        deltas = self._generator.astream(
            _pairs(messages), stop=kwargs.get("stop"), max_new_tokens=self._limit(kwargs)
        )

        async def gen() -> AsyncGenerator[ChatResponse, None]:
            text = ""
            async for delta in deltas:
                text += delta
                message = ChatMessage(role=MessageRole.ASSISTANT, content=text)
                yield ChatResponse(message=message, delta=delta)

        return gen()

    @staticmethod
    def _user(prompt: str) -> list[ChatMessage]:
        return [ChatMessage(role=MessageRole.USER, content=prompt)]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        response = self.chat(self._user(prompt), **kwargs)
        return CompletionResponse(text=response.message.content or "", raw=response.raw)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        response = await self.achat(self._user(prompt), **kwargs)
        return CompletionResponse(text=response.message.content or "", raw=response.raw)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        chunks = self.stream_chat(self._user(prompt), **kwargs)

        def gen() -> CompletionResponseGen:
            for chunk in chunks:
                yield CompletionResponse(text=chunk.message.content or "", delta=chunk.delta)

        return gen()

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        chunks = await self.astream_chat(self._user(prompt), **kwargs)

        async def gen() -> AsyncGenerator[CompletionResponse, None]:
            async for chunk in chunks:
                yield CompletionResponse(text=chunk.message.content or "", delta=chunk.delta)

        return gen()


def local_llm(
    model: str | os.PathLike[str] | None = None, **options: Unpack[LocalLLMOptions]
) -> LocalHuggingFaceLLM:
    """A LlamaIndex LLM on a local causal LM, loaded now (once per process, shared with the
    rerankers and chat models on the same model); ``None`` is the offline SmolLM2. The
    ``options`` are :class:`~rerankit.rag.local_llm.LocalGenerator`'s."""
    generator = LocalGenerator(model, **options)
    lm = generator.load()
    llm = LocalHuggingFaceLLM(  # type: ignore[call-arg]
        model=lm.model,
        tokenizer=lm.tokenizer,
        model_name=generator.name,
        tokenizer_name=generator.name,
        context_window=generator.context_window,
        max_new_tokens=generator.max_new_tokens,
        is_chat_model=True,
        generate_kwargs={"do_sample": generator.temperature > 0},
    )
    llm._generator = generator
    return llm
