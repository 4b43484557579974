"""End-to-end RAG in LangChain: Qdrant retrieval, rerank, threshold, prompt, any chat model.

* :func:`build_rag_chain`: the LCEL chain ``retrieve -> RerankCompressor (+ threshold) ->
  prompt -> chat model``, which abstains without calling the model when nothing passes;
* :func:`generator_from_env`: the chat model of the examples.

Chat models live in :mod:`rerankit.langchain.chat`, the Qdrant ingestion in
:mod:`rerankit.langchain.store`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, TypedDict, cast

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import (
    Runnable,
    RunnableBranch,
    RunnableConfig,
    RunnableGenerator,
    RunnableLambda,
    RunnablePassthrough,
)
from langchain_core.runnables.utils import AddableDict
from langchain_core.vectorstores import VectorStore

from rerankit._typing import Unpack
from rerankit.annotate import RELEVANCE_SCORE_KEY
from rerankit.candidates import validate_query
from rerankit.errors import ConfigurationError
from rerankit.langchain.chat import ChatOpenAICompatible
from rerankit.langchain.compressor import RerankCompressor, RerankedDocuments
from rerankit.rag import (
    ABSTAIN_ANSWER,
    ABSTAINED,
    EXTRACTIVE,
    Citation,
    ExtractiveAnswerer,
    RagPrompt,
    Source,
    format_prompt,
    parse_citations,
)
from rerankit.rag.answer_text import ReadAnswer, astream_answer, stream_answer
from rerankit.rag.checks import RagOptions, rag_settings
from rerankit.rag.openai_settings import generator_from_env as pick_generator
from rerankit.rag.prompt import numbered_sources

__all__ = [
    "ChatOpenAICompatible",
    "RagChainOutput",
    "build_rag_chain",
    "generator_from_env",
]

_ROLE = {"system": "system", "human": "user", "ai": "assistant", "developer": "developer"}


def _local_chat(model: str) -> BaseChatModel:
    from rerankit.langchain.local import local_chat_model

    return local_chat_model(model)


def generator_from_env(
    local_llm: str | None = None, **kw: Any
) -> BaseChatModel | ExtractiveAnswerer:
    """The examples' chat model: :class:`ChatOpenAICompatible` (``from_env(**kw)``) when
    ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set; else :func:`local_chat_model` of
    ``local_llm`` or ``RERANKIT_LOCAL_LLM`` when either names a model; else the offline
    ExtractiveAnswerer (see :func:`rerankit.rag.openai_settings.generator_from_env`)."""
    return pick_generator(
        ChatOpenAICompatible.from_env, local=local_llm, make_local=_local_chat, **kw
    )


# -- the chain --------------------------------------------------------------------------------


class RagChainOutput(TypedDict):
    """What :func:`build_rag_chain` returns.

    ``sources`` are the documents that passed the threshold, in reranked order (= prompt
    order, source ``[1]`` first), as copies with ``metadata["relevance_score"]``; the list also
    carries ``.results`` (the full :class:`~rerankit.RerankResults`, with what was dropped).
    ``messages`` is the exact prompt (``None`` when nothing passed) and ``prompt`` the same as
    text. ``abstained`` is true when nothing passed the threshold (``empty_reason`` says why; no
    LLM call) or when the LLM answered that the passages do not cover the question;
    ``abstain_reason`` says which.
    """

    question: str
    answer: str
    citations: list[Citation]
    sources: RerankedDocuments
    retrieved: list[Document]
    prompt: str | None
    messages: list[BaseMessage] | None
    abstained: bool
    empty_reason: str | None
    generator: str
    abstain_reason: str | None


def _chat_prompt(prompt: RagPrompt) -> ChatPromptTemplate:
    system = prompt.system.replace("{", "{{").replace("}", "}}")
    return ChatPromptTemplate.from_messages([("system", system), ("human", prompt.user)])


def _role(message: BaseMessage) -> str:
    return _ROLE.get(message.type, message.type)


def _sources(documents: Sequence[Document], source_key: str | None) -> list[Source]:
    def passage(doc: Document) -> tuple[str, str | None, Mapping[str, Any], float | None]:
        doc_id = doc.id or doc.metadata.get("_id")
        score = doc.metadata.get(RELEVANCE_SCORE_KEY)
        return (
            doc.page_content,
            str(doc_id) if doc_id is not None else None,
            doc.metadata,
            float(score) if isinstance(score, int | float) else None,
        )

    return numbered_sources((passage(d) for d in documents), key=source_key)


def _llm_name(llm: BaseChatModel) -> str:
    name = (
        getattr(llm, "model_name", None)
        or getattr(llm, "model", None)
        or getattr(llm, "model_id", None)
        or llm._llm_type
    )
    return f"llm: {name}"


def _merged(chunks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for chunk in chunks:
        state.update(chunk)
    return state


def build_rag_chain(
    *,
    retriever: VectorStore | BaseRetriever,
    llm: BaseChatModel | ExtractiveAnswerer,
    **options: Unpack[RagOptions],
) -> Runnable[Any, RagChainOutput]:
    """An LCEL chain: retrieve, rerank and threshold, prompt, generate, with citations.

    The options are those of :func:`rerankit.llama_index.build_query_engine` too
    (:class:`~rerankit.rag.checks.RagOptions`): ``reranker`` (default ``"embedding"``;
    ``None`` for none), ``fetch_k`` (20), ``top_n`` (4), ``min_score``, ``policy``, ``prompt``
    and ``source_key``, and ``policies`` (context policies after the threshold:
    :mod:`rerankit.policies`). Steps (each a named runnable, visible in traces):

    1. ``retrieve``: ``fetch_k`` candidates from ``retriever`` (a ``QdrantVectorStore`` or any
       vector store, searched with ``k=fetch_k``; or any retriever);
    2. ``rerank``: a :class:`RerankCompressor` with ``reranker`` and the threshold
       (``top_n``, ``min_score``, ``policy``);
    3. ``prompt``: the kept documents in reranked order, numbered ``[1]``, ``[2]``, ... with
       their source ids (see :class:`~rerankit.rag.RagPrompt`; no scores);
    4. ``generate``: ``llm``, any LangChain chat model, or an
       :class:`~rerankit.rag.ExtractiveAnswerer` (offline, labelled as extractive).

    When no document passes the threshold the chain does not call ``llm``: the answer is
    :data:`~rerankit.rag.ABSTAIN_ANSWER`, ``abstained`` is true and ``empty_reason`` says why.
    The answer is read by :func:`rerankit.rag.answer_text.read_answer`: thinking sections
    removed, citations past the passages removed from the text and the list, and an answer
    saying that the passages do not cover the question marked ``abstained``.

    The input is the question (a str, or ``{"question": ...}``); the output is a
    :class:`RagChainOutput` dict. ``invoke``, ``ainvoke``, ``batch``, ``stream`` and ``astream``
    all work. A stream yields the sources first, as one event (``question``, ``sources``,
    ``retrieved``, ``prompt``, ``messages``, ``generator`` and ``answer=""``), then the answer
    as the chat model streams it (``{"answer": delta}``; thinking sections and citations past
    the passages already removed), then ``citations``, ``abstained`` and ``abstain_reason``;
    the chunks add up to the invoke output.

    Example:
        >>> from langchain_core.documents import Document
        >>> from rerankit.langchain import (SentenceTransformerEmbeddings, build_qdrant_store,
        ...                                 build_rag_chain)
        >>> from rerankit.rag import ExtractiveAnswerer
        >>> docs = [Document("Qdrant stores vectors with payloads.", metadata={"source": "q"}),
        ...         Document("Boil pasta for nine minutes.", metadata={"source": "p"})]
        >>> store = build_qdrant_store(docs, SentenceTransformerEmbeddings(), collection="d",
        ...                            path=":memory:", show_progress=False)
        >>> chain = build_rag_chain(retriever=store, llm=ExtractiveAnswerer(), min_score=0.3)
        >>> out = chain.invoke("Which database stores vectors?")
        >>> [c.source_id for c in out["citations"]], out["abstained"]
        (['q'], False)
        >>> chain.invoke("When did the Roman empire fall?")["abstained"]
        True
        >>> store.client.close()
    """
    if not isinstance(retriever, VectorStore | BaseRetriever):
        raise ConfigurationError(
            f"retriever must be a LangChain VectorStore or BaseRetriever, got "
            f"{type(retriever).__name__}"
        )
    if not isinstance(llm, BaseChatModel | ExtractiveAnswerer):
        raise ConfigurationError(
            "llm must be a LangChain chat model (BaseChatModel) or an ExtractiveAnswerer, got "
            f"{type(llm).__name__}"
        )
    settings = rag_settings("build_rag_chain", options)
    compressor = RerankCompressor(reranker=settings.reranker, **settings.threshold())
    fetch_k, source_key, rag_prompt = settings.fetch_k, settings.source_key, settings.prompt
    chat_prompt = _chat_prompt(rag_prompt)
    base: BaseRetriever = (
        retriever.as_retriever(search_kwargs={"k": fetch_k})
        if isinstance(retriever, VectorStore)
        else retriever
    )

    def start(value: Any) -> dict[str, Any]:
        question = value.get("question") if isinstance(value, Mapping) else value
        return {"question": validate_query(question)}

    def cap(docs: list[Document]) -> list[Document]:
        return list(docs)[:fetch_k]

    def rerank(state: dict[str, Any]) -> Sequence[Document]:
        return compressor.compress_documents(state["retrieved"], state["question"])

    async def arerank(state: dict[str, Any]) -> Sequence[Document]:
        return await compressor.acompress_documents(state["retrieved"], state["question"])

    def with_sources(state: dict[str, Any]) -> dict[str, Any]:
        sources = _sources(state["sources"], source_key)
        return {**state, "numbered": sources}

    def prompt_inputs(state: dict[str, Any]) -> dict[str, str]:
        return {"context": rag_prompt.context(state["numbered"]), "question": state["question"]}

    def head(state: dict[str, Any], generator: str) -> dict[str, Any]:
        """Everything but the answer and what is read from it: the stream's first event."""
        value: PromptValue = state["prompt_value"]
        messages = value.to_messages()
        return {
            "question": state["question"],
            "sources": state["sources"],
            "retrieved": state["retrieved"],
            "prompt": format_prompt((_role(m), m.text) for m in messages),
            "messages": messages,
            "empty_reason": None,
            "generator": generator,
        }

    def output(state: dict[str, Any], answer: str, generator: str) -> RagChainOutput:
        out = {
            **head(state, generator),
            "answer": answer,
            "citations": parse_citations(answer, state["numbered"]),
            "abstained": False,
            "abstain_reason": None,
        }
        return cast(RagChainOutput, out)

    def abstain(state: dict[str, Any]) -> RagChainOutput:
        reason = state["sources"].empty_reason or "no document passed the threshold"
        return RagChainOutput(
            question=state["question"],
            answer=ABSTAIN_ANSWER,
            citations=[],
            sources=state["sources"],
            retrieved=state["retrieved"],
            prompt=None,
            messages=None,
            abstained=True,
            empty_reason=reason,
            generator=ABSTAINED,
            abstain_reason=reason,
        )

    generate: Runnable[Any, RagChainOutput]
    with_prompt = RunnablePassthrough.assign(
        prompt_value=RunnableLambda(prompt_inputs) | chat_prompt
    ).with_config(run_name="prompt")
    if isinstance(llm, ExtractiveAnswerer):
        answerer = llm

        def extract(state: dict[str, Any]) -> RagChainOutput:
            text = answerer.answer(state["question"], state["numbered"]).text
            return output(state, text, EXTRACTIVE)

        async def aextract(state: dict[str, Any]) -> RagChainOutput:
            text = (await answerer.aanswer(state["question"], state["numbered"])).text
            return output(state, text, EXTRACTIVE)

        generate = with_prompt | RunnableLambda(extract, afunc=aextract, name="generate")
    else:
        chat, name = llm, _llm_name(llm)

        def event(item: str | ReadAnswer) -> AddableDict:
            if isinstance(item, str):
                return AddableDict(answer=item)
            return AddableDict(
                citations=list(item.citations),
                abstained=item.abstained,
                abstain_reason=item.reason,
            )

        def answer(chunks: Iterator[dict[str, Any]], config: RunnableConfig) -> Iterator[Any]:
            state = _merged(list(chunks))
            yield AddableDict(head(state, name), answer="")  # the sources first, as one event
            deltas = (c.text for c in chat.stream(state["prompt_value"], config=config))
            for item in stream_answer(deltas, state["numbered"]):
                yield event(item)

        async def aanswer(
            chunks: AsyncIterator[dict[str, Any]], config: RunnableConfig
        ) -> AsyncIterator[Any]:
            state = _merged([c async for c in chunks])
            yield AddableDict(head(state, name), answer="")
            stream = chat.astream(state["prompt_value"], config=config)
            async for item in astream_answer((c.text async for c in stream), state["numbered"]):
                yield event(item)

        generate = with_prompt | RunnableGenerator(
            answer,  # type: ignore[arg-type]
            aanswer,  # type: ignore[arg-type]
            name="generate",
        )

    chain: Runnable[Any, RagChainOutput] = (
        RunnableLambda(start, name="question")
        | RunnablePassthrough.assign(
            retrieved=(lambda state: state["question"]) | base | RunnableLambda(cap)
        ).with_config(run_name="retrieve")
        | RunnablePassthrough.assign(
            sources=RunnableLambda(rerank, afunc=arerank, name="rerank")
        ).with_config(run_name="rerank")
        | RunnableLambda(with_sources, name="number_sources")
        | RunnableBranch(
            (lambda state: not state["numbered"], RunnableLambda(abstain, name="abstain")),
            generate,
        ).with_config(run_name="answer")
    )
    return chain.with_config(run_name="rerankit_rag")
