"""End-to-end RAG in LlamaIndex: a Qdrant-backed index, rerank, threshold, cited answers.

* :func:`build_query_engine`: a ``RetrieverQueryEngine`` with :class:`RerankPostprocessor`
  and :class:`CitingSynthesizer`, which abstains without calling the LLM when nothing passes;
* :func:`generator_from_env`: the LLM of the examples (an OpenAI-compatible one when the
  environment configures it, else the offline extractive answerer).

See :mod:`rerankit.llama_index.llm` for the LLM and :mod:`rerankit.llama_index.store` for
building the index. The synthesiser and the engine builder it serves stay in one module (a
little past 400 lines): the synthesiser's sync and async paths share its run context.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from llama_index.core import VectorStoreIndex
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.llms.types import (
    ChatMessage,
    MessageRole,
)
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.synthesis import (
    SynthesizeEndEvent,
    SynthesizeStartEvent,
)
from llama_index.core.llms import LLM
from llama_index.core.llms.mock import MockLLM
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers import BaseSynthesizer
from llama_index.core.schema import (
    MetadataMode,
    NodeWithScore,
    QueryBundle,
)

from rerankit._typing import Unpack
from rerankit.errors import ConfigurationError
from rerankit.llama_index.answer_stream import (
    atoken_deltas,
    one_chunk,
    streaming_response,
    token_deltas,
)
from rerankit.llama_index.llm import OpenAICompatibleLLM
from rerankit.llama_index.postprocessor import RerankPostprocessor
from rerankit.rag import (
    ABSTAIN_ANSWER,
    ABSTAINED,
    EXTRACTIVE,
    ExtractiveAnswerer,
    PromptMessage,
    RagPrompt,
    Source,
    format_prompt,
    parse_citations,
)
from rerankit.rag.answer_text import read_answer
from rerankit.rag.checks import RagOptions, check_prompt_args, rag_settings
from rerankit.rag.openai_settings import generator_from_env as pick_generator
from rerankit.rag.prompt import numbered_sources

__all__ = [
    "CitingSynthesizer",
    "OpenAICompatibleLLM",
    "build_query_engine",
    "generator_from_env",
]

dispatcher = get_dispatcher(__name__)


def generator_from_env(local_llm: str | None = None, **overrides: Any) -> LLM | ExtractiveAnswerer:
    """The examples' LLM, in the order of :func:`rerankit.rag.openai_settings.generator_from_env`:
    an :class:`OpenAICompatibleLLM` when the environment configures one (``overrides`` go to its
    ``from_env``), a :func:`~rerankit.llama_index.local_llm` when ``local_llm`` or
    ``RERANKIT_LOCAL_LLM`` names a model, else the offline ExtractiveAnswerer.
    """
    return pick_generator(
        OpenAICompatibleLLM.from_env,
        local=local_llm,
        make_local=lambda model: import_module("rerankit.llama_index.local").local_llm(model),
        **overrides,
    )


# -- retrieval in a worker thread ------------------------------------------------------------


class _ThreadedAsyncRetriever(BaseRetriever):
    """Runs ``inner``'s sync retrieval in a worker thread for ``aretrieve``."""

    def __init__(self, inner: BaseRetriever) -> None:
        super().__init__(callback_manager=inner.callback_manager)
        self._inner = inner

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._inner.retrieve(query_bundle)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._inner.retrieve, query_bundle)


# -- the synthesiser ----------------------------------------------------------------------------


def _sources(nodes: Sequence[NodeWithScore], source_key: str | None) -> list[Source]:
    return numbered_sources(
        (
            (
                item.node.get_content(metadata_mode=MetadataMode.NONE),
                item.node.ref_doc_id or item.node.node_id,
                item.node.metadata,
                item.score,
            )
            for item in nodes
        ),
        key=source_key,
    )


def _once(text: str) -> Generator[str, None, None]:
    yield text


def _chat(messages: Sequence[PromptMessage]) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole(m.role), content=m.content) for m in messages]


@dataclass
class _Synthesis:
    """The state of one :meth:`CitingSynthesizer.synthesize` call (see ``_synthesis``)."""

    question: str
    sources: list[Source]
    generated: tuple[str, list[PromptMessage]] | None = None
    streamed: tuple[Any, list[PromptMessage]] | None = None
    """A token stream (a generator, or an async one) and its prompt, when streaming."""
    response: Response | StreamingResponse | AsyncStreamingResponse = field(init=False)


class CitingSynthesizer(BaseSynthesizer):
    """A response synthesiser that answers from numbered sources and cites them.

    The nodes it receives (the reranked, thresholded ones, best first) become the prompt's
    sources ``[1]``, ``[2]``, ... with their source ids and no scores (see
    :class:`~rerankit.rag.RagPrompt`). ``llm`` is any LlamaIndex LLM (called once, with chat
    messages) or an :class:`~rerankit.rag.ExtractiveAnswerer`. With no nodes it answers
    :data:`~rerankit.rag.ABSTAIN_ANSWER` without calling the LLM.

    ``Response.metadata`` holds ``question``, ``citations``, ``prompt`` (text), ``messages``
    (the exact ``ChatMessage`` list; ``None`` when nothing passed), ``abstained``,
    ``empty_reason``, ``abstain_reason`` and ``generator``. ``Response.source_nodes`` are the
    nodes, scored by the reranker. The answer is read by
    :func:`rerankit.rag.answer_text.read_answer` (thinking sections and citations past the
    passages removed; an LLM answer saying the passages do not cover the question is
    ``abstained``).

    With ``streaming=True`` the synthesiser returns a ``StreamingResponse`` (an
    ``AsyncStreamingResponse`` from ``asynthesize``) whose tokens are the LLM's, cleaned as
    they arrive; ``citations``, ``abstained`` and ``abstain_reason`` are in its metadata once
    the stream is consumed.

    Example:
        >>> from llama_index.core.schema import NodeWithScore, TextNode
        >>> from rerankit.llama_index import CitingSynthesizer
        >>> from rerankit.rag import ExtractiveAnswerer
        >>> synth = CitingSynthesizer(llm=ExtractiveAnswerer())
        >>> node = NodeWithScore(node=TextNode(text="Qdrant stores vectors.",
        ...                                    metadata={"source": "faq"}), score=0.7)
        >>> response = synth.synthesize("What stores vectors?", [node])
        >>> response.metadata["citations"][0].source_id
        'faq'
        >>> synth.synthesize("What stores vectors?", []).metadata["abstained"]
        True
    """

    def __init__(
        self,
        *,
        llm: LLM | ExtractiveAnswerer,
        prompt: RagPrompt | None = None,
        source_key: str | None = None,
        callback_manager: CallbackManager | None = None,
        streaming: bool = False,
    ) -> None:
        if not isinstance(llm, LLM | ExtractiveAnswerer):
            raise ConfigurationError(
                f"llm must be a LlamaIndex LLM or an ExtractiveAnswerer, got {type(llm).__name__}"
            )
        check_prompt_args(prompt, source_key)
        self._answerer = llm if isinstance(llm, ExtractiveAnswerer) else None
        # BaseSynthesizer needs an LLM object; the extractive path never calls it.
        if not isinstance(streaming, bool):
            raise ConfigurationError(f"streaming must be a bool, got {streaming!r}")
        super().__init__(
            llm=llm if isinstance(llm, LLM) else MockLLM(),
            callback_manager=callback_manager,
            streaming=streaming,
        )
        self._rag_prompt = prompt or RagPrompt()
        self._source_key = source_key

    @property
    def rag_prompt(self) -> RagPrompt:
        """The prompt layout."""
        return self._rag_prompt

    def _get_prompts(self) -> PromptDictType:
        return {}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        """The prompt is a :class:`~rerankit.rag.RagPrompt`; pass ``prompt=`` instead."""

    def _generator_name(self) -> str:
        if self._answerer is not None:
            return EXTRACTIVE
        return f"llm: {self._llm.metadata.model_name}"

    def _abstain(self, question: str, nodes: Sequence[NodeWithScore]) -> Response:
        reason = getattr(nodes, "empty_reason", None) or "no retrieved node passed the threshold"
        return Response(
            ABSTAIN_ANSWER,
            source_nodes=[],
            metadata={
                "question": question,
                "citations": [],
                "prompt": None,
                "messages": None,
                "abstained": True,
                "empty_reason": reason,
                "abstain_reason": reason,
                "generator": ABSTAINED,
            },
        )

    def _metadata(self, question: str, messages: list[PromptMessage]) -> dict[str, Any]:
        return {
            "question": question,
            "citations": [],
            "prompt": format_prompt(messages),
            "messages": _chat(messages),
            "abstained": False,
            "empty_reason": None,
            "abstain_reason": None,
            "generator": self._generator_name(),
        }

    def _response(
        self,
        question: str,
        text: str,
        sources: list[Source],
        messages: list[PromptMessage],
        source_nodes: list[NodeWithScore],
    ) -> Response:
        metadata = self._metadata(question, messages)
        if self._answerer is not None:  # extractive: its own text, its own citations
            metadata["citations"] = parse_citations(text, sources)
            return Response(text, source_nodes=source_nodes, metadata=metadata)
        read = read_answer(text, sources)
        metadata.update(
            citations=list(read.citations), abstained=read.abstained, abstain_reason=read.reason
        )
        return Response(read.text, source_nodes=source_nodes, metadata=metadata)

    def _stream_deltas(self, question: str, sources: list[Source]) -> Any:
        messages = self._rag_prompt.messages(question, sources)
        if self._answerer is not None:
            return iter([self._answerer.answer(question, sources).text]), messages
        return token_deltas(self._llm.stream_chat(_chat(messages))), messages

    async def _astream_deltas(self, question: str, sources: list[Source]) -> Any:
        messages = self._rag_prompt.messages(question, sources)
        if self._answerer is not None:
            return one_chunk((await self._answerer.aanswer(question, sources)).text), messages
        return atoken_deltas(await self._llm.astream_chat(_chat(messages))), messages

    def _generate(self, question: str, sources: list[Source]) -> tuple[str, list[PromptMessage]]:
        messages = self._rag_prompt.messages(question, sources)
        if self._answerer is not None:
            return self._answerer.answer(question, sources).text, messages
        return self._llm.chat(_chat(messages)).message.content or "", messages

    async def _agenerate(
        self, question: str, sources: list[Source]
    ) -> tuple[str, list[PromptMessage]]:
        messages = self._rag_prompt.messages(question, sources)
        if self._answerer is not None:
            return (await self._answerer.aanswer(question, sources)).text, messages
        return (await self._llm.achat(_chat(messages))).message.content or "", messages

    @staticmethod
    def _chunk_sources(text_chunks: Sequence[str]) -> list[Source]:
        return [
            Source(number=i, source_id=f"doc-{i}", text=chunk)
            for i, chunk in enumerate(text_chunks, start=1)
        ]

    def get_response(self, query_str: str, text_chunks: Sequence[str], **kwargs: Any) -> str:
        """Answer from plain text chunks (numbered ``doc-1``, ``doc-2``, ...)."""
        if not text_chunks:
            return ABSTAIN_ANSWER
        return self._generate(query_str, self._chunk_sources(text_chunks))[0]

    async def aget_response(self, query_str: str, text_chunks: Sequence[str], **kwargs: Any) -> str:
        """Async :meth:`get_response`."""
        if not text_chunks:
            return ABSTAIN_ANSWER
        return (await self._agenerate(query_str, self._chunk_sources(text_chunks)))[0]

    @contextmanager
    def _synthesis(
        self,
        query: str | QueryBundle,
        nodes: Sequence[NodeWithScore],
        additional_source_nodes: Sequence[NodeWithScore] | None,
    ) -> Iterator[_Synthesis]:
        """One synthesize call: the start and end events, the SYNTHESIZE callback event, and
        the response, around the caller's generation step.

        The caller sets ``run.generated`` when ``run.sources`` is not empty; otherwise the
        response abstains. ``run.response`` is set on a normal exit.
        """
        bundle = QueryBundle(query_str=query) if isinstance(query, str) else query
        dispatcher.event(SynthesizeStartEvent(query=bundle))
        question = bundle.query_str
        with self._callback_manager.event(
            CBEventType.SYNTHESIZE, payload={EventPayload.QUERY_STR: question}
        ) as event:
            run = _Synthesis(question=question, sources=_sources(nodes, self._source_key))
            yield run
            source_nodes = [*nodes, *(additional_source_nodes or [])]
            response: Any
            if run.streamed is not None:
                tokens, messages = run.streamed
                response = streaming_response(
                    tokens, run.sources, source_nodes, self._metadata(question, messages)
                )
            elif run.generated is None:
                response = self._abstain(question, nodes)
                if self._streaming:
                    response = StreamingResponse(
                        _once(response.response or ""), metadata=response.metadata
                    )
            else:
                text, messages = run.generated
                response = self._response(question, text, run.sources, messages, source_nodes)
            event.on_end(payload={EventPayload.RESPONSE: response})
        dispatcher.event(SynthesizeEndEvent(query=bundle, response=response))
        run.response = response

    @dispatcher.span  # type: ignore[untyped-decorator]
    def synthesize(
        self,
        query: str | QueryBundle,
        nodes: list[NodeWithScore],
        additional_source_nodes: Sequence[NodeWithScore] | None = None,
        **response_kwargs: Any,
    ) -> Response:
        """Answer ``query`` from ``nodes`` (in their order), or abstain when there are none."""
        with self._synthesis(query, nodes, additional_source_nodes) as run:
            if run.sources and self._streaming:
                run.streamed = self._stream_deltas(run.question, run.sources)
            elif run.sources:
                run.generated = self._generate(run.question, run.sources)
        return run.response  # type: ignore[return-value]

    @dispatcher.span  # type: ignore[untyped-decorator]
    async def asynthesize(
        self,
        query: str | QueryBundle,
        nodes: list[NodeWithScore],
        additional_source_nodes: Sequence[NodeWithScore] | None = None,
        **response_kwargs: Any,
    ) -> Response:
        """Async :meth:`synthesize`."""
        with self._synthesis(query, nodes, additional_source_nodes) as run:
            if run.sources and self._streaming:
                run.streamed = await self._astream_deltas(run.question, run.sources)
            elif run.sources:
                run.generated = await self._agenerate(run.question, run.sources)
        return run.response  # type: ignore[return-value]


# -- the query engine --------------------------------------------------------------------------


def build_query_engine(
    *,
    index: VectorStoreIndex | BaseRetriever,
    llm: LLM | ExtractiveAnswerer,
    hybrid: bool | None = None,
    streaming: bool = False,
    **options: Unpack[RagOptions],
) -> RetrieverQueryEngine:
    """A query engine: retrieve from the index, rerank and threshold, answer with citations.

    The options are those of :func:`rerankit.langchain.build_rag_chain` too
    (:class:`~rerankit.rag.checks.RagOptions`): ``reranker`` (default ``"embedding"``;
    ``None`` for none), ``fetch_k`` (20), ``top_n`` (4), ``min_score``, ``policy``, ``prompt``
    and ``source_key``, and ``policies`` (context policies after the threshold:
    :mod:`rerankit.policies`).

    1. retrieve ``fetch_k`` nodes from ``index`` (a ``VectorStoreIndex``, e.g. from
       :func:`build_qdrant_index`; ``hybrid`` mode when its Qdrant store has sparse vectors,
       or as ``hybrid`` says), or from any retriever;
    2. :class:`RerankPostprocessor` with ``reranker`` and the threshold (``top_n``,
       ``min_score``, ``policy``);
    3. :class:`CitingSynthesizer` with ``llm`` (any LlamaIndex LLM, or an
       :class:`~rerankit.rag.ExtractiveAnswerer`) and ``prompt``.

    When no node passes the threshold the LLM is not called: the response is
    :data:`~rerankit.rag.ABSTAIN_ANSWER` with ``metadata["abstained"]`` true and
    ``metadata["empty_reason"]`` saying why. ``query`` and ``aquery`` both work; with
    ``streaming=True`` they return a ``StreamingResponse`` / ``AsyncStreamingResponse`` whose
    ``response_gen`` yields the answer token by token (see :class:`CitingSynthesizer`).

    Example:
        >>> from llama_index.core import Document
        >>> from rerankit.llama_index import (SentenceTransformerEmbedding, build_qdrant_index,
        ...                                   build_query_engine)
        >>> from rerankit.rag import ExtractiveAnswerer
        >>> docs = [Document(text="Qdrant stores vectors with payloads.", metadata={"source": "q"}),
        ...         Document(text="Boil pasta for nine minutes.", metadata={"source": "p"})]
        >>> index = build_qdrant_index(docs, SentenceTransformerEmbedding(), collection="d",
        ...                            path=":memory:", show_progress=False)
        >>> engine = build_query_engine(index=index, llm=ExtractiveAnswerer(), min_score=0.3)
        >>> response = engine.query("Which database stores vectors?")
        >>> [c.source_id for c in response.metadata["citations"]]
        ['q']
        >>> engine.query("When did the Roman empire fall?").metadata["abstained"]
        True
        >>> index.vector_store.client.close()
    """
    if not isinstance(index, VectorStoreIndex | BaseRetriever):
        raise ConfigurationError(
            f"index must be a VectorStoreIndex or a retriever, got {type(index).__name__}"
        )
    settings = rag_settings("build_query_engine", options)
    postprocessor = RerankPostprocessor(reranker=settings.reranker, **settings.threshold())
    synthesizer = CitingSynthesizer(
        llm=llm, prompt=settings.prompt, source_key=settings.source_key, streaming=streaming
    )
    fetch_k = settings.fetch_k
    if isinstance(index, VectorStoreIndex):
        if hybrid is None:
            hybrid = bool(getattr(index.vector_store, "enable_hybrid", False))
        mode: dict[str, Any] = (
            {
                "vector_store_query_mode": "hybrid",
                "sparse_top_k": fetch_k,
                "hybrid_top_k": fetch_k,
            }
            if hybrid
            else {}
        )
        retriever = index.as_retriever(similarity_top_k=fetch_k, **mode)
        if getattr(index.vector_store, "_aclient", False) is None:
            # An embedded Qdrant store has no async client: aquery retrieves in a thread.
            retriever = _ThreadedAsyncRetriever(retriever)
    else:
        if hybrid:
            raise ConfigurationError("hybrid= applies to a VectorStoreIndex, not a retriever")
        retriever = index
    return RetrieverQueryEngine(
        retriever=retriever,
        response_synthesizer=synthesizer,
        node_postprocessors=[postprocessor],
    )
