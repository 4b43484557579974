"""Streamed answers of :class:`~rerankit.llama_index.CitingSynthesizer`: the LLM's token deltas,
cleaned as they arrive, in a LlamaIndex ``StreamingResponse`` / ``AsyncStreamingResponse``.

The cleaning is :func:`rerankit.rag.answer_text.stream_answer` (thinking sections and citations
past the passages removed); what is read from the whole answer (``citations``, ``abstained``,
``abstain_reason``) lands in the response's metadata when the stream ends.
"""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any

from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from llama_index.core.schema import NodeWithScore

from rerankit.rag.answer_text import ReadAnswer, astream_answer, stream_answer
from rerankit.rag.prompt import Source

__all__ = ["atoken_deltas", "one_chunk", "streaming_response", "token_deltas"]


def token_deltas(chunks: Iterable[ChatResponse]) -> Iterator[str]:
    """The text deltas of a ``stream_chat``."""
    for chunk in chunks:
        if chunk.delta:
            yield chunk.delta


async def atoken_deltas(chunks: AsyncIterable[ChatResponse]) -> AsyncIterator[str]:
    """The text deltas of an ``astream_chat``."""
    async for chunk in chunks:
        if chunk.delta:
            yield chunk.delta


async def one_chunk(text: str) -> AsyncIterator[str]:
    """``text`` as a one-chunk async stream (the extractive answer)."""
    yield text


def streaming_response(
    tokens: Iterable[str] | AsyncIterable[str],
    sources: Sequence[Source],
    source_nodes: list[NodeWithScore],
    metadata: dict[str, Any],
) -> StreamingResponse | AsyncStreamingResponse:
    """A streaming response over ``tokens`` (async when they are), ``metadata`` completed with
    the citations and the abstention when the stream ends."""

    def land(item: str | ReadAnswer) -> str | None:
        if isinstance(item, str):
            return item
        metadata.update(
            citations=list(item.citations), abstained=item.abstained, abstain_reason=item.reason
        )
        return None

    if isinstance(tokens, AsyncIterable):

        async def agen() -> AsyncGenerator[str, None]:
            async for item in astream_answer(tokens, sources):
                text = land(item)
                if text is not None:
                    yield text

        return AsyncStreamingResponse(agen(), source_nodes=source_nodes, metadata=metadata)

    def gen() -> Generator[str, None, None]:
        for item in stream_answer(tokens, sources):
            text = land(item)
            if text is not None:
                yield text

    return StreamingResponse(gen(), source_nodes=source_nodes, metadata=metadata)
