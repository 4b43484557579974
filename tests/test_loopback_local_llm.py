"""``LLMReranker`` and both chains against a loopback OpenAI-compatible server backed by a real
model (SmolLM2-135M-Instruct): real tokens and real logprobs over the real wire format, not
scripted replies.

A 135M model judges relevance poorly, so the checks are about mechanics: the logprob path is
taken (scores are not grades), answers are deterministic, and what a chain returns is what the
model generated for the exact prompt the server received.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("openai")

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from llama_index.core.base.base_retriever import BaseRetriever as LIRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rerankit import LLMReranker
from rerankit.langchain import ChatOpenAICompatible, build_rag_chain
from rerankit.llama_index import OpenAICompatibleLLM, build_query_engine
from rerankit.rag import LocalGenerator, read_answer
from rerankit.rag.prompt import numbered_sources
from tests.loopback.local_llm import LocalOpenAI
from tests.loopback.server import LoopbackServer

from ._fixtures import OverlapReranker

pytestmark = pytest.mark.model

QUERY = "What is the capital of France?"
DOCS = ["Paris is the capital of France.", "Bananas are yellow.", "France borders Spain."]


@pytest.fixture
def server(smollm2: str) -> Iterator[LoopbackServer]:
    with LoopbackServer(LocalOpenAI(LocalGenerator(smollm2), max_tokens_cap=12)) as srv:
        yield srv


def test_llm_reranker_scores_from_real_logprobs(server: LoopbackServer) -> None:
    reranker = LLMReranker(model="smollm2", base_url=f"{server.url}/v1", api_key="sk-t")
    results = reranker.rerank(QUERY, DOCS)
    assert results.usage is not None
    assert results.usage["details"] == {"mode": "pointwise", "scoring": "logprobs"}
    assert results.usage["input_tokens"] > 100 and results.usage["output_tokens"] >= 3
    raw = {r.index: r.raw_score for r in results}
    assert sorted(raw) == [0, 1, 2]
    for value in raw.values():
        assert 0.0 < value < 1.0 and round(value * 10) / 10 != pytest.approx(value, abs=1e-9)
    bodies = server.bodies("/v1/chat/completions")
    assert len(bodies) == 3 and all(b["logprobs"] and b["top_logprobs"] == 5 for b in bodies)
    again = {r.index: r.raw_score for r in reranker.rerank(QUERY, DOCS)}
    assert again == pytest.approx(raw)  # greedy and deterministic


def test_llm_reranker_listwise_on_real_text(server: LoopbackServer) -> None:
    reranker = LLMReranker(
        model="smollm2", base_url=f"{server.url}/v1", api_key="sk-t", mode="listwise"
    )
    results = reranker.rerank(QUERY, DOCS)
    assert sorted(r.index for r in results) == [0, 1, 2]
    assert [r.raw_score for r in results] == sorted((r.raw_score for r in results), reverse=True)


class _Fixed(BaseRetriever):
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [Document(page_content=t, id=f"d{i}") for i, t in enumerate(DOCS)]


class _LIFixed(LIRetriever):
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        nodes = [TextNode(text=t, id_=f"d{i}") for i, t in enumerate(DOCS)]
        return [NodeWithScore(node=n, score=0.5) for n in nodes]


def _expected(smollm2: str, body: dict[str, Any], kept: list[str]) -> str:
    """What the model answers to the exact messages the server received, read as the chains
    read answers."""
    messages = [(m["role"], m["content"]) for m in body["messages"]]
    text = LocalGenerator(smollm2).generate(messages, max_new_tokens=12).text
    sources = numbered_sources((t, None, {}, None) for t in kept)
    return read_answer(text, sources).text


def test_chains_return_what_the_real_model_generated(server: LoopbackServer, smollm2: str) -> None:
    chat = ChatOpenAICompatible(model="smollm2", base_url=f"{server.url}/v1", api_key="sk-t")
    chain = build_rag_chain(retriever=_Fixed(), llm=chat, reranker=OverlapReranker(), top_n=2)
    out = chain.invoke(QUERY)
    [body] = server.bodies("/v1/chat/completions")
    assert [m["content"] for m in body["messages"]] == [m.content for m in out["messages"]]
    kept = [d.page_content for d in out["sources"]]
    assert out["answer"].strip() and out["answer"] == _expected(smollm2, body, kept)

    server.clear()
    llm = OpenAICompatibleLLM(model="smollm2", base_url=f"{server.url}/v1", api_key="sk-t")
    engine = build_query_engine(index=_LIFixed(), llm=llm, reranker=OverlapReranker(), top_n=2)
    response = engine.query(QUERY)
    [body] = server.bodies("/v1/chat/completions")
    kept = [n.node.get_content() for n in response.source_nodes]
    assert str(response) == _expected(smollm2, body, kept) == out["answer"]
