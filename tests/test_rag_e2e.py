"""End-to-end RAG through LangChain and LlamaIndex: embedded Qdrant, the offline MiniLM, a
reranker, the threshold, and the ``openai`` SDK talking to a loopback OpenAI-compatible server.

The server speaks the real ``/v1/chat/completions`` wire format and records every request, so
the tests check what an LLM actually receives: exactly the documents that passed the threshold,
in reranked order, numbered with their source ids and without scores; and, on the abstain
path, that no request is made at all.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("openai")
pytest.importorskip("langchain_qdrant")
pytest.importorskip("llama_index.vector_stores.qdrant")

from langchain_core.documents import Document
from llama_index.core import Document as LIDocument
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload, LlamaDebugHandler
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from rerankit import (
    BackendError,
    ConfigurationError,
    EmptyQueryError,
    InvalidQueryError,
    Reranker,
    from_spec,
)
from rerankit.demo.corpus import PASSAGES
from rerankit.errors import MissingVectorFieldError
from rerankit.langchain import (
    ChatOpenAICompatible,
    RerankCompressor,
    SentenceTransformerEmbeddings,
    build_qdrant_store,
    build_rag_chain,
)
from rerankit.langchain import generator_from_env as lc_generator_from_env
from rerankit.llama_index import (
    CitingSynthesizer,
    OpenAICompatibleLLM,
    RerankPostprocessor,
    SentenceTransformerEmbedding,
    build_qdrant_index,
    build_query_engine,
)
from rerankit.llama_index import generator_from_env as li_generator_from_env
from rerankit.rag import (
    ABSTAIN_ANSWER,
    ABSTAINED,
    EXTRACTIVE,
    EXTRACTIVE_LABEL,
    ExtractiveAnswerer,
)

from ._fixtures import OverlapReranker

QUESTION = "Which rover collects rock samples on Mars?"
OFF_TOPIC = "How long can a python snake grow?"
FETCH_K = 8
TOP_N = 3
MIN_SCORE = 0.3
_HEADER = re.compile(r"^\[(\d+)\] \(source: ([^)]+)\)$", re.MULTILINE)
_DECIMAL = re.compile(r"\d\.\d")


# -- a loopback OpenAI-compatible server ------------------------------------------------------


class ChatServer:
    """``POST /v1/chat/completions`` on 127.0.0.1; records each request body.

    Its "model" cites the passages it is given: it answers with the numbers of the last and the
    first passage, e.g. ``"... [3] ... [1]."``. ``fail`` makes it answer HTTP 500.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body, "auth": self.headers})
                if server.fail:
                    self._send(500, {"error": {"message": "boom", "type": "server_error"}})
                    return
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                user = next(m["content"] for m in body["messages"] if m["role"] == "user")
                numbers = [int(n) for n, _ in _HEADER.findall(user)]
                text = (
                    f"Perseverance does [{numbers[-1]}], see also [{numbers[0]}]."
                    if numbers
                    else ABSTAIN_ANSWER
                )
                self._send(
                    200,
                    {
                        "id": "chatcmpl-loopback",
                        "object": "chat.completion",
                        "created": 1_700_000_000,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def chats(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]


def prompt_sources(body: dict[str, Any]) -> list[tuple[int, str]]:
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return [(int(n), source) for n, source in _HEADER.findall(user)]


def assert_no_scores(body: dict[str, Any]) -> None:
    for message in body["messages"]:
        text = message["content"]
        assert not _DECIMAL.search(text), f"a number like a score reached the LLM: {text!r}"
        assert "relevance_score" not in text and "retrieval_score" not in text


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def reranker() -> Reranker:
    # Late interaction orders the candidates differently from the dense first stage, so
    # "reranked order" is a real claim, not the retrieval order passed through.
    return from_spec("late-interaction")


# -- LangChain -------------------------------------------------------------------------------


def lc_docs() -> list[Document]:
    return [Document(page_content=t, metadata={"source": i}) for i, t in PASSAGES]


@pytest.fixture(scope="module")
def lc_store() -> Iterator[Any]:
    store = build_qdrant_store(
        lc_docs(),
        SentenceTransformerEmbeddings(),
        collection="rag-lc",
        path=":memory:",
        show_progress=False,
    )
    yield store
    store.client.close()


def lc_chain(store: Any, llm: Any, reranker: Reranker, **kwargs: Any) -> Any:
    settings = {"fetch_k": FETCH_K, "top_n": TOP_N, "min_score": MIN_SCORE, **kwargs}
    return build_rag_chain(retriever=store, llm=llm, reranker=reranker, **settings)


def test_langchain_prompt_holds_exactly_the_kept_documents_in_reranked_order(
    lc_store: Any, reranker: Reranker, server: ChatServer
) -> None:
    llm = ChatOpenAICompatible(model="loopback-model", base_url=server.base_url, api_key="sk-t")
    out = lc_chain(lc_store, llm, reranker).invoke(QUESTION)

    # What the first stage returned and what the compressor keeps, computed independently.
    retrieved = lc_store.similarity_search(QUESTION, k=FETCH_K)
    expected = RerankCompressor(
        reranker=reranker, top_n=TOP_N, min_score=MIN_SCORE
    ).compress_documents(retrieved, QUESTION)
    expected_ids = [d.metadata["source"] for d in expected]
    stage1_ids = [d.metadata["source"] for d in retrieved]
    assert 0 < len(expected_ids) < len(stage1_ids)
    assert any(d.reason == "min_score" for d in expected.results.dropped)
    assert expected_ids != [i for i in stage1_ids if i in expected_ids]  # order really changed

    [body] = server.chats()
    assert body["model"] == "loopback-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert prompt_sources(body) == list(enumerate(expected_ids, start=1))
    user = body["messages"][1]["content"]
    assert user.endswith(f"Question: {QUESTION}")
    for doc in retrieved:
        assert (doc.page_content in user) == (doc.metadata["source"] in expected_ids)
    assert_no_scores(body)

    # The output: sources with scores (prompt order), the exact prompt, the citations.
    assert [d.metadata["source"] for d in out["sources"]] == expected_ids
    scores = [d.metadata["relevance_score"] for d in out["sources"]]
    assert scores == sorted(scores, reverse=True) and min(scores) >= MIN_SCORE
    assert [m.content for m in out["messages"]] == [m["content"] for m in body["messages"]]
    assert out["prompt"] is not None and user in out["prompt"]
    last = len(expected_ids)
    assert out["answer"] == f"Perseverance does [{last}], see also [1]."
    assert [(c.number, c.source_id) for c in out["citations"]] == [
        (last, expected_ids[-1]),
        (1, expected_ids[0]),
    ]
    assert out["citations"][1].score == pytest.approx(scores[0])
    assert out["abstained"] is False and out["empty_reason"] is None
    assert out["generator"] == "llm: loopback-model"
    assert [d.metadata["source"] for d in out["retrieved"]] == stage1_ids


def test_langchain_abstains_without_calling_the_llm(
    lc_store: Any, reranker: Reranker, server: ChatServer
) -> None:
    llm = ChatOpenAICompatible(model="m", base_url=server.base_url)
    chain = lc_chain(lc_store, llm, reranker, min_score=0.6)
    out = chain.invoke({"question": OFF_TOPIC})
    assert server.requests == []  # zero LLM calls
    assert out["answer"] == ABSTAIN_ANSWER
    assert out["abstained"] is True
    assert out["empty_reason"] is not None and "min_score=0.6" in out["empty_reason"]
    assert out["generator"] == ABSTAINED
    assert out["prompt"] is None and out["messages"] is None and out["citations"] == []
    assert list(out["sources"]) == [] and len(out["retrieved"]) == FETCH_K
    assert len(out["sources"].results.dropped) == FETCH_K


async def test_langchain_async_sends_the_same_prompt(
    lc_store: Any, reranker: Reranker, server: ChatServer
) -> None:
    llm = ChatOpenAICompatible(model="m", base_url=server.base_url)
    chain = lc_chain(lc_store, llm, reranker)
    sync = chain.invoke(QUESTION)
    asyn = await chain.ainvoke(QUESTION)
    first, second = server.chats()
    assert first == second
    assert asyn["answer"] == sync["answer"] and asyn["prompt"] == sync["prompt"]
    abstained = await lc_chain(lc_store, llm, reranker, min_score=0.6).ainvoke(OFF_TOPIC)
    assert abstained["abstained"] is True and len(server.requests) == 2


def test_langchain_extractive_answer_is_labelled_and_cited(
    lc_store: Any, reranker: Reranker
) -> None:
    # The answerer picks sentences with the chain's reranker (default: the MiniLM embedding).
    out = lc_chain(lc_store, ExtractiveAnswerer(reranker=reranker), reranker).invoke(QUESTION)
    assert out["generator"] == EXTRACTIVE
    assert out["answer"].startswith(EXTRACTIVE_LABEL)
    assert out["citations"] and out["citations"][0].source_id == "mars-1"
    assert "Perseverance landed in Jezero Crater" in out["answer"]
    assert out["prompt"] is not None and "[1] (source: mars-1)" in out["prompt"]


def test_langchain_chat_model_errors_and_validation(server: ChatServer) -> None:
    server.fail = True
    llm = ChatOpenAICompatible(model="m", base_url=server.base_url, max_retries=0)
    with pytest.raises(BackendError, match="chat completion failed"):
        llm.invoke("hello")
    secret = ChatOpenAICompatible(api_key="sk-very-secret", base_url=server.base_url)
    assert "sk-very-secret" not in repr(secret)
    with pytest.raises(ConfigurationError):
        build_rag_chain(retriever="not a store", llm=ExtractiveAnswerer())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        build_rag_chain(retriever=object(), llm=ExtractiveAnswerer())  # type: ignore[arg-type]


def test_langchain_rejects_bad_arguments(lc_store: Any) -> None:
    with pytest.raises(ConfigurationError, match="llm"):
        build_rag_chain(retriever=lc_store, llm="gpt")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="fetch_k"):
        build_rag_chain(retriever=lc_store, llm=ExtractiveAnswerer(), fetch_k=0)
    with pytest.raises(ConfigurationError):
        build_rag_chain(retriever=lc_store, llm=ExtractiveAnswerer(), reranker="nope:x")
    chain = build_rag_chain(retriever=lc_store, llm=ExtractiveAnswerer())
    with pytest.raises(EmptyQueryError):
        chain.invoke("   ")
    with pytest.raises(InvalidQueryError):
        chain.invoke({"question": 42})


def test_generator_from_env(monkeypatch: pytest.MonkeyPatch, server: ChatServer) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert isinstance(lc_generator_from_env(), ExtractiveAnswerer)
    assert isinstance(li_generator_from_env(), ExtractiveAnswerer)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    lc = lc_generator_from_env()
    li = li_generator_from_env()
    assert isinstance(lc, ChatOpenAICompatible) and lc.model == "env-model"
    assert isinstance(li, OpenAICompatibleLLM) and li.base_url == server.base_url
    assert lc.invoke("hi").content == ABSTAIN_ANSWER  # no passages in a bare message
    assert li.complete("hi").text == ABSTAIN_ANSWER
    assert [b["model"] for b in server.chats()] == ["env-model", "env-model"]


def test_build_qdrant_store_is_idempotent_and_leaves_inputs_alone(tmp_path: Any) -> None:
    docs = [*lc_docs()[:6], Document(page_content=PASSAGES[0][1], id="again")]  # a repeat
    docs.append(Document(page_content="Doc with only an id.", id="only-id"))
    before = copy.deepcopy(docs)
    path = str(tmp_path / "q")
    embeddings = SentenceTransformerEmbeddings()
    for _ in range(2):
        store = build_qdrant_store(
            docs, embeddings, collection="c", path=path, batch_size=3, show_progress=False
        )
        assert store.client.count("c").count == 7
        store.client.close()
    assert docs == before
    store = build_qdrant_store(
        [], embeddings, collection="c", path=path, show_progress=False
    )  # reopen: nothing to add, the points are there
    found = store.similarity_search("Doc with only an id.", k=1)[0]
    assert found.metadata["doc_id"] == "only-id"
    with pytest.raises(MissingVectorFieldError, match="no sparse field 'bm25'"):
        build_qdrant_store([], embeddings, collection="c", client=store.client, hybrid=True)
    store.client.close()


def test_hybrid_store_retrieves_with_bm25_and_dense(reranker: Reranker) -> None:
    store = build_qdrant_store(
        lc_docs(),
        SentenceTransformerEmbeddings(),
        collection="hybrid",
        path=":memory:",
        hybrid=True,
        show_progress=False,
    )
    try:
        assert store.retrieval_mode.value == "hybrid"
        out = build_rag_chain(
            retriever=store, llm=ExtractiveAnswerer(), reranker=reranker, min_score=MIN_SCORE
        ).invoke("What water temperature for pour-over coffee?")
        assert out["sources"][0].metadata["source"] == "coffee-1"
    finally:
        store.client.close()


def test_langchain_embeddings_work_in_test_style_code() -> None:
    from langchain_qdrant import QdrantVectorStore

    store = QdrantVectorStore.from_documents(
        lc_docs(), SentenceTransformerEmbeddings(), location=":memory:", collection_name="x"
    )
    assert store.similarity_search("espresso pressure", k=1)[0].metadata["source"] == "coffee-2"
    vectors = SentenceTransformerEmbeddings().embed_documents(["a", "b"])
    assert len(vectors) == 2 and abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-4
    with pytest.raises(ConfigurationError):
        SentenceTransformerEmbeddings(batch_size=0)


# -- LlamaIndex ------------------------------------------------------------------------------


def li_docs() -> list[LIDocument]:
    return [LIDocument(text=t, id_=i, metadata={"source": i}) for i, t in PASSAGES]


@pytest.fixture(scope="module")
def li_index() -> Iterator[Any]:
    index = build_qdrant_index(
        li_docs(),
        SentenceTransformerEmbedding(),
        collection="rag-li",
        path=":memory:",
        show_progress=False,
    )
    yield index
    index.vector_store.client.close()


def li_engine(index: Any, llm: Any, reranker: Reranker, **kwargs: Any) -> Any:
    settings = {"fetch_k": FETCH_K, "top_n": TOP_N, "min_score": MIN_SCORE, **kwargs}
    return build_query_engine(index=index, llm=llm, reranker=reranker, **settings)


def test_llama_index_prompt_holds_exactly_the_kept_nodes_in_reranked_order(
    li_index: Any, reranker: Reranker, server: ChatServer
) -> None:
    llm = OpenAICompatibleLLM(model="loopback-model", base_url=server.base_url)
    response = li_engine(li_index, llm, reranker).query(QUESTION)

    retrieved = li_index.as_retriever(similarity_top_k=FETCH_K).retrieve(QUESTION)
    expected = RerankPostprocessor(
        reranker=reranker, top_n=TOP_N, min_score=MIN_SCORE
    ).postprocess_nodes(retrieved, query_str=QUESTION)
    expected_ids = [n.node.metadata["source"] for n in expected]
    stage1_ids = [n.node.metadata["source"] for n in retrieved]
    assert 0 < len(expected_ids) < len(stage1_ids)
    assert expected_ids != [i for i in stage1_ids if i in expected_ids]

    [body] = server.chats()
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert prompt_sources(body) == list(enumerate(expected_ids, start=1))
    user = body["messages"][1]["content"]
    for node in retrieved:
        text = node.node.get_content(metadata_mode=MetadataMode.NONE)
        assert (text in user) == (node.node.metadata["source"] in expected_ids)
    assert_no_scores(body)

    assert [n.node.metadata["source"] for n in response.source_nodes] == expected_ids
    assert [n.score for n in response.source_nodes] == [n.score for n in expected]
    meta = response.metadata
    assert meta["abstained"] is False and meta["empty_reason"] is None
    assert meta["generator"] == "llm: loopback-model"
    assert [m.content for m in meta["messages"]] == [m["content"] for m in body["messages"]]
    last = len(expected_ids)
    assert str(response) == f"Perseverance does [{last}], see also [1]."
    assert [c.source_id for c in meta["citations"]] == [expected_ids[-1], expected_ids[0]]


def test_llama_index_abstains_without_calling_the_llm(
    li_index: Any, reranker: Reranker, server: ChatServer
) -> None:
    llm = OpenAICompatibleLLM(model="m", base_url=server.base_url)
    response = li_engine(li_index, llm, reranker, min_score=0.6).query(OFF_TOPIC)
    assert server.requests == []
    assert str(response) == ABSTAIN_ANSWER
    assert response.source_nodes == []
    meta = response.metadata
    assert meta["abstained"] is True and meta["generator"] == ABSTAINED
    assert "min_score=0.6" in meta["empty_reason"]
    assert meta["prompt"] is None and meta["messages"] is None


async def test_llama_index_async_matches_sync(
    li_index: Any, reranker: Reranker, server: ChatServer
) -> None:
    llm = OpenAICompatibleLLM(model="m", base_url=server.base_url)
    engine = li_engine(li_index, llm, reranker)
    sync = engine.query(QUESTION)
    asyn = await engine.aquery(QUESTION)
    first, second = server.chats()
    assert first == second and str(sync) == str(asyn)
    abstained = await li_engine(li_index, llm, reranker, min_score=0.6).aquery(OFF_TOPIC)
    assert abstained.metadata["abstained"] is True and len(server.requests) == 2


def test_llama_index_extractive_and_hand_built_engine(li_index: Any, reranker: Reranker) -> None:
    from llama_index.core.query_engine import RetrieverQueryEngine

    engine = RetrieverQueryEngine(
        retriever=li_index.as_retriever(similarity_top_k=FETCH_K),
        response_synthesizer=CitingSynthesizer(llm=ExtractiveAnswerer()),
        node_postprocessors=[RerankPostprocessor(reranker=reranker, min_score=0.9)],
    )
    response = engine.query(QUESTION)  # a plain postprocessor: generic reason
    assert response.metadata["abstained"] is True and response.metadata["empty_reason"]
    answerer = ExtractiveAnswerer(reranker=reranker)
    response = li_engine(li_index, answerer, reranker).query(QUESTION)
    assert str(response).startswith(EXTRACTIVE_LABEL)
    assert response.metadata["generator"] == EXTRACTIVE
    assert response.metadata["citations"][0].source_id == "mars-1"


def test_build_qdrant_index_is_idempotent_hybrid_and_leaves_inputs_alone(tmp_path: Any) -> None:
    docs = li_docs()[:6]
    before = [(d.id_, d.text, dict(d.metadata)) for d in docs]
    path = str(tmp_path / "q")
    embed = SentenceTransformerEmbedding()
    for _ in range(2):
        index = build_qdrant_index(
            docs, embed, collection="c", path=path, hybrid=True, batch_size=4, show_progress=False
        )
        client = index.vector_store.client
        assert client.count("c").count == 6
        nodes = index.as_retriever(
            similarity_top_k=2, vector_store_query_mode="hybrid", sparse_top_k=2
        ).retrieve("Cross-country skiing encoders")
        assert nodes[0].node.metadata["source"] == "rerank-3"
        assert nodes[0].node.ref_doc_id == "rerank-3"
        client.close()
    assert [(d.id_, d.text, dict(d.metadata)) for d in docs] == before
    with pytest.raises(ConfigurationError):
        build_qdrant_index(["text"], embed, collection="c", path=":memory:")  # type: ignore[list-item]


def test_llama_index_embedding_works_in_test_style_code() -> None:
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    client = QdrantClient(location=":memory:")
    try:
        index = VectorStoreIndex.from_documents(
            li_docs(),
            storage_context=StorageContext.from_defaults(
                vector_store=QdrantVectorStore(
                    client=client, collection_name="x", index_doc_id=False
                )
            ),
            embed_model=SentenceTransformerEmbedding(),
        )
        top = index.as_retriever(similarity_top_k=1).retrieve("espresso pressure")[0]
        assert top.node.metadata["source"] == "coffee-2"
    finally:
        client.close()
    assert SentenceTransformerEmbedding(model=None).model_name


# -- behaviour kept through the shared helpers -------------------------------------------------


def test_adapters_make_each_openai_client_once_per_instance(server: ChatServer) -> None:
    lc = ChatOpenAICompatible(model="m", base_url=server.base_url)
    li = OpenAICompatibleLLM(model="m", base_url=server.base_url)
    lc.invoke("one")
    li.complete("one")
    first = (lc._client().endpoint.clients.sync(), li._client().endpoint.clients.sync())
    lc.invoke("two")
    li.chat([ChatMessage(role="user", content="two")])
    assert (lc._client().endpoint.clients.sync(), li._client().endpoint.clients.sync()) == first
    assert len(server.chats()) == 4
    other = ChatOpenAICompatible(model="m", base_url=server.base_url)
    assert other._client() is not lc._client()  # a holder per instance


def test_builders_reject_bad_ingestion_arguments(lc_store: Any) -> None:
    lc_embed, li_embed = SentenceTransformerEmbeddings(), SentenceTransformerEmbedding()
    where = {"collection": "x", "path": ":memory:", "show_progress": False}
    with pytest.raises(ConfigurationError, match="sequence of LangChain Documents"):
        build_qdrant_store("text", lc_embed, **where)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"documents\[0\] must be a LangChain Document"):
        build_qdrant_store([LIDocument(text="t")], lc_embed, **where)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="embedding must be a LangChain Embeddings"):
        build_qdrant_store([], li_embed, **where)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="batch_size"):
        build_qdrant_store([], lc_embed, batch_size=0, **where)
    with pytest.raises(ConfigurationError, match="not both"):
        build_qdrant_store([], lc_embed, client=lc_store.client, **where)
    with pytest.raises(ConfigurationError, match="sequence of LlamaIndex Documents or nodes"):
        build_qdrant_index(iter([]), li_embed, **where)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"documents\[1\] must be a LlamaIndex Document"):
        build_qdrant_index([LIDocument(text="t"), Document("t")], li_embed, **where)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="embed_model must be a LlamaIndex"):
        build_qdrant_index([], lc_embed, **where)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="collection must be a non-empty str"):
        build_qdrant_index([], li_embed, collection="", path=":memory:")


def test_rag_builders_reject_bad_chain_arguments(lc_store: Any, li_index: Any) -> None:
    answerer = ExtractiveAnswerer(reranker=OverlapReranker())
    cases = [
        ({"fetch_k": True}, "fetch_k"),
        ({"reranker": 3}, "reranker must be a Reranker, a spec string"),
        ({"top_n": -1}, "top_n"),
        ({"min_score": 2.0}, "min_score"),
        ({"policy": "strict"}, "policy must be a ThresholdPolicy"),
        ({"prompt": "Q: {question}"}, "prompt must be a RagPrompt"),
        ({"source_key": 1}, "source_key must be a str or None"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigurationError, match=message):
            build_rag_chain(retriever=lc_store, llm=answerer, **kwargs)
        with pytest.raises(ConfigurationError, match=message):
            build_query_engine(index=li_index, llm=answerer, **kwargs)
    for kwargs, message in cases[-2:]:
        with pytest.raises(ConfigurationError, match=message):
            CitingSynthesizer(llm=answerer, **kwargs)
    spec = build_query_engine(index=li_index, llm=answerer, reranker="embedding")
    [post] = spec._node_postprocessors
    assert post.reranker.backend == "embedding"


class _Recorder(BaseEventHandler):
    events: list[Any]

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)


async def test_citing_synthesizer_events_sync_async_and_on_error(server: ChatServer) -> None:
    from rerankit.llama_index import rag as li_rag

    text = "Perseverance collects rock samples."
    nodes = [NodeWithScore(node=TextNode(text=text, id_="n1"), score=0.8)]
    debug = LlamaDebugHandler()
    recorder = _Recorder(events=[])
    li_rag.dispatcher.add_event_handler(recorder)
    llm = OpenAICompatibleLLM(model="m", base_url=server.base_url, max_retries=0)
    synth = CitingSynthesizer(llm=llm, callback_manager=CallbackManager([debug]))
    extra = NodeWithScore(node=TextNode(text="extra", id_="n2"), score=None)
    try:
        answered = synth.synthesize(QUESTION, nodes, additional_source_nodes=[extra])
        abstained = await synth.asynthesize(QueryBundle(query_str=OFF_TOPIC), [])
        async_answer = await synth.asynthesize(QUESTION, nodes)
        server.fail = True
        with pytest.raises(BackendError):
            synth.synthesize(QUESTION, nodes)
        with pytest.raises(BackendError):
            await synth.asynthesize(QUESTION, nodes)
    finally:
        li_rag.dispatcher.event_handlers.remove(recorder)

    assert [n.node.node_id for n in answered.source_nodes] == ["n1", "n2"]
    assert str(async_answer) == str(answered) == "Perseverance does [1], see also [1]."
    assert abstained.metadata["abstained"] is True and len(server.requests) == 4
    pairs = debug.get_event_pairs(CBEventType.SYNTHESIZE)
    assert len(pairs) == 5 and all(len(p) == 2 for p in pairs)
    starts = [p[0].payload[EventPayload.QUERY_STR] for p in pairs]
    assert starts == [QUESTION, OFF_TOPIC, QUESTION, QUESTION, QUESTION]
    ends = [p[1].payload for p in pairs]
    assert [e[EventPayload.RESPONSE] for e in ends[:3]] == [answered, abstained, async_answer]
    # a failed call's event is ended without a response (the LLM event recorded the error)
    assert all(not e or EventPayload.RESPONSE not in e for e in ends[3:])
    kinds = [type(e).__name__ for e in recorder.events if "Synthesize" in type(e).__name__]
    start, end = "SynthesizeStartEvent", "SynthesizeEndEvent"
    assert kinds == [start, end] * 3 + [start] * 2  # a failed call starts but never ends
    ended = [e for e in recorder.events if type(e).__name__ == "SynthesizeEndEvent"]
    assert [e.response for e in ended] == [answered, abstained, async_answer]
    assert [e.query.query_str for e in ended] == [QUESTION, OFF_TOPIC, QUESTION]
