"""Both RAG chains generating with a real local LLM offline (SmolLM2-135M-Instruct): invoke,
async, token streaming, and abstention both ways (nothing passes: no LLM call; the LLM itself
says the passages do not cover the question).

The retrievers return a fixed, tiny corpus and the reranker is the word-overlap fake: what is
under test here is the generation step, on real tokens.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("langchain_huggingface")
pytest.importorskip("llama_index.llms.huggingface")

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.callbacks import CallbackManagerForRetrieverRun as LCRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever as LCRetriever
from llama_index.core.base.base_retriever import BaseRetriever as LIRetriever
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rerankit.langchain import build_rag_chain, generator_from_env, local_chat_model
from rerankit.llama_index import build_query_engine, local_llm
from rerankit.llama_index import generator_from_env as li_generator_from_env
from rerankit.rag import ABSTAIN_ANSWER, ABSTAINED, LLM_ABSTAINED, ExtractiveAnswerer, RagPrompt
from rerankit.rag.openai_settings import LOCAL_LLM_ENV

from ._fixtures import OverlapReranker

pytestmark = pytest.mark.model

PASSAGES = [
    ("mars-1", "Perseverance collects rock samples on Mars in sealed tubes."),
    ("mars-2", "Curiosity explores Gale Crater on Mars."),
    ("food-1", "Boil the pasta for nine minutes."),
]
QUESTION = "Which rover collects rock samples on Mars?"
TOKENS = 12
# A 135M model does not follow "if the passages do not contain the answer, reply exactly ...",
# but it does echo: asked to repeat the abstention sentence, the real model generates it.
ECHO = RagPrompt(user="{context}\n\nRepeat exactly: {question}")


class LCFixed(LCRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: LCRun) -> list[Document]:
        return [Document(page_content=t, id=i, metadata={"source": i}) for i, t in PASSAGES]


class LIFixed(LIRetriever):
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=TextNode(text=t, id_=i, metadata={"source": i}), score=0.5)
            for i, t in PASSAGES
        ]


class ChatStarts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.starts += 1


@pytest.fixture
def chat(smollm2: str) -> Any:
    return local_chat_model(smollm2, max_new_tokens=TOKENS)


@pytest.fixture
def llm(smollm2: str) -> Any:
    return local_llm(smollm2, max_new_tokens=TOKENS)


def lc_chain(chat: Any, **options: Any) -> Any:
    settings = {"reranker": OverlapReranker(), "top_n": 2, **options}
    return build_rag_chain(retriever=LCFixed(), llm=chat, **settings)


def test_langchain_chain_generates_and_streams_token_by_token(chat: Any) -> None:
    chain = lc_chain(chat)
    starts = ChatStarts()
    out = chain.invoke(QUESTION, config={"callbacks": [starts]})
    assert starts.starts == 1
    assert out["answer"].strip() and out["generator"].startswith("llm: SmolLM2")
    assert out["abstained"] is False and out["abstain_reason"] is None
    assert [d.metadata["source"] for d in out["sources"]] == ["mars-1", "mars-2"]
    assert out["messages"] is not None and QUESTION in out["prompt"]

    chunks = list(chain.stream(QUESTION))
    first, *middle, last = chunks
    assert "sources" in first and first["answer"] == "" and "citations" not in first
    assert [d.metadata["source"] for d in first["sources"]] == ["mars-1", "mars-2"]
    deltas = [c["answer"] for c in middle]
    assert len(deltas) > 1 and all(set(c) == {"answer"} for c in middle)
    assert "".join(deltas) == out["answer"]  # greedy: the same tokens as invoke
    assert set(last) == {"citations", "abstained", "abstain_reason"}

    async def run() -> tuple[Any, list[Any]]:
        return await chain.ainvoke(QUESTION), [c async for c in chain.astream(QUESTION)]

    aout, achunks = asyncio.run(run())
    assert aout["answer"] == out["answer"]
    assert "".join(c.get("answer", "") for c in achunks) == out["answer"]


def test_langchain_chain_abstains_both_ways(chat: Any) -> None:
    starts = ChatStarts()
    out = lc_chain(chat, min_score=0.99).invoke(QUESTION, config={"callbacks": [starts]})
    assert starts.starts == 0  # nothing passed: the LLM was not called
    assert out["abstained"] and out["generator"] == ABSTAINED and out["answer"] == ABSTAIN_ANSWER
    assert out["abstain_reason"] == out["empty_reason"] is not None

    out = lc_chain(chat, prompt=ECHO).invoke(ABSTAIN_ANSWER, config={"callbacks": [starts]})
    assert starts.starts == 1  # the LLM was asked, and said the passages do not cover it
    assert out["abstained"] and out["abstain_reason"] == LLM_ABSTAINED
    assert out["citations"] == [] and out["empty_reason"] is None
    assert out["generator"].startswith("llm: SmolLM2") and out["messages"] is not None


def li_engine(llm: Any, **options: Any) -> Any:
    settings = {"reranker": OverlapReranker(), "top_n": 2, **options}
    return build_query_engine(index=LIFixed(), llm=llm, **settings)


def test_llama_index_engine_generates_and_streams(llm: Any) -> None:
    response = li_engine(llm).query(QUESTION)
    assert str(response).strip() and not response.metadata["abstained"]
    assert response.metadata["generator"].startswith("llm: SmolLM2")

    streamed = li_engine(llm, streaming=True).query(QUESTION)
    assert isinstance(streamed, StreamingResponse)
    tokens = list(streamed.response_gen)
    assert len(tokens) > 1 and "".join(tokens) == str(response)
    assert streamed.metadata is not None
    assert streamed.metadata["citations"] == response.metadata["citations"]
    assert [n.node.metadata["source"] for n in streamed.source_nodes] == ["mars-1", "mars-2"]

    async def run() -> tuple[list[str], Any]:
        answer = await li_engine(llm, streaming=True).aquery(QUESTION)
        assert isinstance(answer, AsyncStreamingResponse)
        return [t async for t in answer.async_response_gen()], answer.metadata

    atokens, metadata = asyncio.run(run())
    assert "".join(atokens) == str(response) and metadata["abstained"] is False


def test_llama_index_engine_abstains_both_ways(llm: Any) -> None:
    nothing = li_engine(llm, min_score=0.99).query(QUESTION)
    assert nothing.metadata["abstained"] and nothing.metadata["generator"] == ABSTAINED
    assert str(nothing) == ABSTAIN_ANSWER and nothing.metadata["messages"] is None
    said = li_engine(llm, prompt=ECHO).query(ABSTAIN_ANSWER)
    assert said.metadata["abstained"] and said.metadata["abstain_reason"] == LLM_ABSTAINED
    assert said.metadata["citations"] == [] and said.metadata["messages"] is not None
    streamed = li_engine(llm, prompt=ECHO, streaming=True).query(ABSTAIN_ANSWER)
    "".join(streamed.response_gen)
    assert streamed.metadata["abstained"] and streamed.metadata["abstain_reason"] == LLM_ABSTAINED


def test_generator_from_env_picks_openai_then_local_then_extractive(
    smollm2: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv(LOCAL_LLM_ENV, raising=False)
    assert isinstance(generator_from_env(), ExtractiveAnswerer)
    assert generator_from_env(smollm2).generator.model == smollm2  # type: ignore[union-attr]
    monkeypatch.setenv(LOCAL_LLM_ENV, smollm2)
    assert type(generator_from_env()).__name__ == "LocalChatHuggingFace"
    assert type(li_generator_from_env()).__name__ == "LocalHuggingFaceLLM"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert type(generator_from_env()).__name__ == "ChatOpenAICompatible"
    assert type(li_generator_from_env()).__name__ == "OpenAICompatibleLLM"
