"""Every remote backend through the LangChain and LlamaIndex components, unchanged."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rerankit import (
    CohereReranker,
    FallbackReranker,
    HTTPReranker,
    LLMReranker,
    Reranker,
)
from rerankit.langchain import RerankCompressor, RerankRetriever
from rerankit.llama_index import RerankPostprocessor
from tests.loopback import LoopbackServer, Reply, expected_order
from tests.loopback.data import FAST, QUERY, SECRET, corpus

pytest_plugins = ["tests.loopback.fixtures"]

DOCS = corpus(9)
EXPECTED = expected_order(QUERY, DOCS)


def _servers(request: pytest.FixtureRequest) -> dict[str, LoopbackServer]:
    return {
        "cohere": request.getfixturevalue("cohere"),
        "openai": request.getfixturevalue("openai_server")[0],
        "tei": request.getfixturevalue("tei"),
        "infinity": request.getfixturevalue("infinity"),
    }


BACKENDS: dict[str, Callable[[dict[str, LoopbackServer]], Reranker | str]] = {
    "cohere": lambda s: CohereReranker(api_key=SECRET, base_url=s["cohere"].url, retry=FAST),
    "cohere-spec": lambda s: f"cohere:rerank-v3.5?base_url={s['cohere'].url}&max_tokens_per_doc=64",
    "llm-pointwise": lambda s: LLMReranker(
        model="gpt-4o-mini", api_key=SECRET, base_url=s["openai"].url + "/v1", retry=FAST
    ),
    "llm-listwise-spec": lambda s: f"llm:gpt-4o-mini?mode=listwise&base_url={s['openai'].url}/v1",
    "http-tei-spec": lambda s: f"http:{s['tei'].url}?api=tei&batch_size=4",
    "http-cohere": lambda s: HTTPReranker(url=s["infinity"].url, api="cohere", model="bge"),
    "fallback": lambda s: FallbackReranker(
        [
            CohereReranker(api_key=SECRET, base_url=s["cohere"].url, retry=FAST),
            HTTPReranker(url=s["tei"].url, retry=FAST),
        ]
    ),
}
BACKEND_NAMES = {
    "cohere": "cohere",
    "cohere-spec": "cohere",
    "llm-pointwise": "llm",
    "llm-listwise-spec": "llm",
    "http-tei-spec": "http",
    "http-cohere": "http",
    "fallback": "http",  # the primary is down in these tests
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Reranker | str, dict[str, LoopbackServer]]:
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    servers = _servers(request)
    if request.param == "fallback":
        servers["cohere"].push_many(Reply(503, {"message": "down"}), 8)
    return request.param, BACKENDS[request.param](servers), servers


def lc_docs() -> list[Document]:
    return [Document(page_content=t, id=f"d{i}", metadata={"pos": i}) for i, t in enumerate(DOCS)]


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=t, id_=f"d{i}"), score=1.0 - i / 10)
        for i, t in enumerate(DOCS)
    ]


def check_block(name: str, block: dict[str, object]) -> None:
    assert block["backend"] == BACKEND_NAMES[name]
    assert block["fallback"] is (name == "fallback")
    if name == "fallback":
        assert "CohereReranker" in str(block["fallback_reason"])


async def test_langchain_compressor(
    backend: tuple[str, Reranker | str, dict[str, LoopbackServer]],
) -> None:
    name, reranker, servers = backend
    compressor = RerankCompressor(reranker=reranker, top_n=5)
    out = compressor.compress_documents(lc_docs(), QUERY)
    assert [d.id for d in out] == [f"d{i}" for i in EXPECTED[:5]]
    for doc in out:
        assert doc.page_content == DOCS[doc.metadata["pos"]]
        check_block(name, doc.metadata["rerank"])
        assert doc.metadata["relevance_score"] == doc.metadata["rerank"]["score"]
    if name == "fallback":
        servers["cohere"].push_many(Reply(503, {"message": "down"}), 8)
    aout = await compressor.acompress_documents(lc_docs(), QUERY)
    assert [d.id for d in aout] == [d.id for d in out]
    assert [d.metadata["relevance_score"] for d in aout] == [
        d.metadata["relevance_score"] for d in out
    ]


def test_langchain_retriever(
    backend: tuple[str, Reranker | str, dict[str, LoopbackServer]],
) -> None:
    name, reranker, _ = backend

    class Fixed(BaseRetriever):
        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            return lc_docs()

    retriever = RerankRetriever(base_retriever=Fixed(), reranker=reranker, fetch_k=9, top_n=3)
    out = retriever.invoke(QUERY)
    assert [d.id for d in out] == [f"d{i}" for i in EXPECTED[:3]]
    check_block(name, out[0].metadata["rerank"])


async def test_llama_index_postprocessor(
    backend: tuple[str, Reranker | str, dict[str, LoopbackServer]],
) -> None:
    name, reranker, servers = backend
    post = RerankPostprocessor(reranker=reranker, top_n=4)
    out = post.postprocess_nodes(nodes(), query_bundle=QueryBundle(QUERY))
    assert [n.node.node_id for n in out] == [f"d{i}" for i in EXPECTED[:4]]
    for n in out:
        block = n.node.metadata["rerank"]
        check_block(name, block)
        assert n.score == block["score"]
        assert n.node.metadata["retrieval_score"] == pytest.approx(
            1.0 - int(n.node.node_id[1:]) / 10
        )
    if name == "fallback":
        servers["cohere"].push_many(Reply(503, {"message": "down"}), 8)
    aout = await post.apostprocess_nodes(nodes(), query_bundle=QueryBundle(QUERY))
    assert [(n.node.node_id, n.score) for n in aout] == [(n.node.node_id, n.score) for n in out]


def test_same_reranker_same_answer_in_both_frameworks(
    backend: tuple[str, Reranker | str, dict[str, LoopbackServer]],
) -> None:
    name, reranker, servers = backend
    compressor = RerankCompressor(reranker=reranker)
    shared = compressor.reranker
    lc = compressor.compress_documents(lc_docs(), QUERY)
    if name == "fallback":
        servers["cohere"].push_many(Reply(503, {"message": "down"}), 8)
    li = RerankPostprocessor(reranker=shared).postprocess_nodes(nodes(), query_str=QUERY)
    assert [d.id for d in lc] == [n.node.node_id for n in li]
    assert [d.metadata["relevance_score"] for d in lc] == [n.score for n in li]


def test_all_down_reaches_the_frameworks_as_retrieval_order(
    cohere: LoopbackServer, tei: LoopbackServer
) -> None:
    cohere.push_many(Reply(500, {"message": "down"}), 20)
    tei.push_many(Reply(503, {"message": "down"}), 20)
    reranker = FallbackReranker(
        [
            CohereReranker(api_key=SECRET, base_url=cohere.url, retry=FAST),
            HTTPReranker(url=tei.url, retry=FAST),
        ]
    )
    out = RerankCompressor(reranker=reranker, top_n=3).compress_documents(lc_docs(), QUERY)
    assert [d.id for d in out] == ["d0", "d1", "d2"]
    block = out[0].metadata["rerank"]
    assert block["fallback"] is True and block["backend"] == "retrieval-order"
    assert block["fallback_reason"].startswith("all rerankers failed")
    li = RerankPostprocessor(reranker=reranker, top_n=3).postprocess_nodes(nodes(), query_str=QUERY)
    assert [n.node.node_id for n in li] == ["d0", "d1", "d2"]
    assert li[0].node.metadata["rerank"]["fallback"] is True
