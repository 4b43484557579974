"""End-to-end RAG in LangChain: Qdrant retrieval, rerank, threshold, prompt, any chat model.

* :func:`build_qdrant_store`: ingest documents into a ``QdrantVectorStore`` (embedded store
  under a cache folder by default, ``url=`` for a server), in batches with a progress bar,
  with content-hash point ids so re-running never duplicates points;
* :func:`build_rag_chain`: the LCEL chain ``retrieve -> RerankCompressor (+ threshold) ->
  prompt -> chat model``, which abstains without calling the model when nothing passes;
* :func:`generator_from_env` picks :class:`~rerankit.langchain.ChatOpenAICompatible` (in
  :mod:`rerankit.langchain.chat`) when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set and
  the offline :class:`~rerankit.rag.ExtractiveAnswerer` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import (
    Runnable,
    RunnableBranch,
    RunnableLambda,
    RunnablePassthrough,
)
from langchain_core.vectorstores import VectorStore

from rerankit.annotate import RELEVANCE_SCORE_KEY
from rerankit.base import Reranker
from rerankit.candidates import validate_query
from rerankit.errors import ConfigurationError
from rerankit.langchain.chat import ChatOpenAICompatible
from rerankit.langchain.compressor import RerankCompressor, RerankedDocuments
from rerankit.qdrant import (
    check_ingest_args,
    open_client,
    point_id,
    qdrant_models,
    upsert_missing,
)
from rerankit.rag import (
    ABSTAIN_ANSWER,
    ABSTAINED,
    EXTRACTIVE,
    Citation,
    ExtractiveAnswerer,
    RagPrompt,
    Source,
    format_prompt,
    openai_configured,
    parse_citations,
    resolve_source_id,
)
from rerankit.rag._checks import check_rag_args
from rerankit.threshold import ThresholdPolicy

__all__ = [
    "ChatOpenAICompatible",
    "RagChainOutput",
    "build_qdrant_store",
    "build_rag_chain",
    "generator_from_env",
]

_ROLE = {"system": "system", "human": "user", "ai": "assistant", "developer": "developer"}


def generator_from_env(**overrides: Any) -> ChatOpenAICompatible | ExtractiveAnswerer:
    """The examples' generator: an OpenAI-compatible chat model when ``OPENAI_API_KEY`` or
    ``OPENAI_BASE_URL`` is set, else the offline, clearly labelled ExtractiveAnswerer.

    ``overrides`` go to :meth:`ChatOpenAICompatible.from_env`.
    """
    if openai_configured():
        return ChatOpenAICompatible.from_env(**overrides)
    return ExtractiveAnswerer()


# -- Qdrant ingestion ---------------------------------------------------------------------------


def build_qdrant_store(
    documents: Sequence[Document],
    embedding: Embeddings,
    *,
    collection: str,
    url: str | None = None,
    path: str | None = None,
    api_key: str | None = None,
    client: Any = None,
    hybrid: bool = False,
    sparse_embedding: Any = None,
    batch_size: int = 64,
    show_progress: bool = True,
    recreate: bool = False,
) -> Any:
    """Ingest ``documents`` into a Qdrant collection and return its ``QdrantVectorStore``.

    Where: ``client`` if given, else a server at ``url``, else the embedded store at ``path``
    (default: a folder under the cache, see :func:`rerankit.qdrant.default_qdrant_path`;
    ``":memory:"`` works). The caller owns the client: ``store.client.close()`` releases an
    embedded folder.

    Points are upserted in batches of ``batch_size`` with a progress bar. Each point id is the
    hash of the document text (:func:`rerankit.qdrant.point_id`), so re-running never
    duplicates points, and texts already stored are not embedded again. A document's own
    ``id`` is kept in ``metadata["doc_id"]`` (on the stored copy; inputs are not modified).

    ``hybrid=True`` adds BM25 sparse vectors (:class:`BM25SparseEmbeddings`, or
    ``sparse_embedding``) with Qdrant's IDF modifier, and the store retrieves with dense + sparse
    fusion. ``recreate=True`` drops the collection first.

    Example:
        >>> from langchain_core.documents import Document
        >>> from rerankit.langchain import SentenceTransformerEmbeddings, build_qdrant_store
        >>> docs = [Document("Qdrant stores vectors.", metadata={"source": "faq"})]
        >>> store = build_qdrant_store(docs, SentenceTransformerEmbeddings(), collection="faq",
        ...                            path=":memory:", show_progress=False)
        >>> store.similarity_search("vector database", k=1)[0].metadata["source"]
        'faq'
        >>> store.client.close()
    """
    from langchain_qdrant import QdrantVectorStore, RetrievalMode
    from langchain_qdrant.qdrant import QdrantVectorStoreError

    from rerankit.langchain.embeddings import BM25SparseEmbeddings

    check_ingest_args(
        documents,
        collection=collection,
        kinds=Document,
        sequence_of="LangChain Documents",
        each="a LangChain Document",
        batch_size=batch_size,
        client=client,
        url=url,
        path=path,
        api_key=api_key,
    )
    if not isinstance(embedding, Embeddings):
        raise ConfigurationError("embedding must be a LangChain Embeddings")

    models = qdrant_models()
    client = client if client is not None else open_client(url=url, path=path, api_key=api_key)
    sparse_name = QdrantVectorStore.SPARSE_VECTOR_NAME
    if recreate and client.collection_exists(collection):
        client.delete_collection(collection)
    if not client.collection_exists(collection):
        size = len(embedding.embed_query("dimension probe"))
        client.create_collection(
            collection,
            vectors_config={
                QdrantVectorStore.VECTOR_NAME: models.VectorParams(
                    size=size, distance=models.Distance.COSINE
                )
            },
            sparse_vectors_config=(
                {sparse_name: models.SparseVectorParams(modifier=models.Modifier.IDF)}
                if hybrid
                else None
            ),
        )
    if hybrid and sparse_embedding is None:
        sparse_embedding = BM25SparseEmbeddings.fit([d.page_content for d in documents])
    try:
        store = QdrantVectorStore(
            client=client,
            collection_name=collection,
            embedding=embedding,
            retrieval_mode=RetrievalMode.HYBRID if hybrid else RetrievalMode.DENSE,
            sparse_embedding=sparse_embedding if hybrid else None,
        )
    except QdrantVectorStoreError as exc:
        raise ConfigurationError(
            f"collection {collection!r} exists with another configuration ({exc}); "
            "use another collection name or recreate=True"
        ) from exc

    def write(todo: Sequence[tuple[Document, str]]) -> None:
        store.add_documents([_stored_copy(doc) for doc, _ in todo], ids=[pid for _, pid in todo])

    upsert_missing(
        client,
        collection,
        documents,
        key=lambda d: point_id(d.page_content),
        batch_size=batch_size,
        show_progress=show_progress,
        write=write,
    )
    return store


def _stored_copy(doc: Document) -> Document:
    metadata = dict(doc.metadata)
    if doc.id and "doc_id" not in metadata:
        metadata["doc_id"] = doc.id
    return Document(page_content=doc.page_content, metadata=metadata)


# -- the chain --------------------------------------------------------------------------------


class RagChainOutput(TypedDict):
    """What :func:`build_rag_chain` returns.

    ``sources`` are the documents that passed the threshold, in reranked order (= prompt
    order, source ``[1]`` first), as copies with ``metadata["relevance_score"]``; the list also
    carries ``.results`` (the full :class:`~rerankit.RerankResults`, with what was dropped).
    ``messages`` is the exact prompt (``None`` when abstained) and ``prompt`` the same as text.
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


def _chat_prompt(prompt: RagPrompt) -> ChatPromptTemplate:
    system = prompt.system.replace("{", "{{").replace("}", "}}")
    return ChatPromptTemplate.from_messages([("system", system), ("human", prompt.user)])


def _role(message: BaseMessage) -> str:
    return _ROLE.get(message.type, message.type)


def _sources(documents: Sequence[Document], source_key: str | None) -> list[Source]:
    out = []
    for number, doc in enumerate(documents, start=1):
        doc_id = doc.id or doc.metadata.get("_id")
        score = doc.metadata.get(RELEVANCE_SCORE_KEY)
        out.append(
            Source(
                number=number,
                source_id=resolve_source_id(
                    doc.metadata,
                    doc_id=str(doc_id) if doc_id is not None else None,
                    number=number,
                    key=source_key,
                ),
                text=doc.page_content,
                score=float(score) if isinstance(score, int | float) else None,
            )
        )
    return out


def _llm_name(llm: BaseChatModel) -> str:
    name = getattr(llm, "model_name", None) or getattr(llm, "model", None) or llm._llm_type
    return f"llm: {name}"


def build_rag_chain(
    *,
    retriever: VectorStore | BaseRetriever,
    llm: BaseChatModel | ExtractiveAnswerer,
    reranker: Reranker | str = "embedding",
    fetch_k: int = 20,
    top_n: int | None = 4,
    min_score: float | None = None,
    policy: ThresholdPolicy | None = None,
    prompt: RagPrompt | None = None,
    source_key: str | None = None,
) -> Runnable[Any, RagChainOutput]:
    """An LCEL chain: retrieve, rerank and threshold, prompt, generate, with citations.

    Steps (each a named runnable, visible in traces):

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

    The input is the question (a str, or ``{"question": ...}``); the output is a
    :class:`RagChainOutput` dict. ``invoke``, ``ainvoke`` and ``batch`` all work.

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
    resolved = check_rag_args(
        reranker=reranker,
        fetch_k=fetch_k,
        top_n=top_n,
        min_score=min_score,
        policy=policy,
        prompt=prompt,
        source_key=source_key,
    )
    compressor = RerankCompressor(
        reranker=resolved, top_n=top_n, min_score=min_score, policy=policy
    )
    rag_prompt = prompt or RagPrompt()
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

    def output(state: dict[str, Any], answer: str, generator: str) -> RagChainOutput:
        value: PromptValue = state["prompt_value"]
        messages = value.to_messages()
        return RagChainOutput(
            question=state["question"],
            answer=answer,
            citations=parse_citations(answer, state["numbered"]),
            sources=state["sources"],
            retrieved=state["retrieved"],
            prompt=format_prompt((_role(m), m.text) for m in messages),
            messages=messages,
            abstained=False,
            empty_reason=None,
            generator=generator,
        )

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
        name = _llm_name(llm)
        call = (lambda state: state["prompt_value"]) | llm | StrOutputParser()
        generate = (
            with_prompt
            | RunnablePassthrough.assign(answer=call).with_config(run_name="generate")
            | RunnableLambda(lambda state: output(state, state["answer"], name), name="cite")
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
