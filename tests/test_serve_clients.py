"""Every client against ``rerankit serve`` on 127.0.0.1, over real models: the ``cohere`` SDK
(sync and async), LlamaIndex's own TEI rerank postprocessor, ``HTTPReranker`` in both wire
formats, and rerankit's own LangChain and LlamaIndex components. Each answers the order and
scores of the in-process reranker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import cohere
import httpx
import pytest
from pydantic import SecretStr

from rerankit import CrossEncoderReranker, EmbeddingReranker, HTTPReranker
from rerankit.serve import BackgroundServer, RerankService, create_app
from tests._fixtures import CORPUS

pytestmark = pytest.mark.model

TOKEN = "clients-token-42"
QUERY = "which database stores vectors"
TEXTS = [text for _, text in CORPUS]


@pytest.fixture(scope="module")
def embedding() -> EmbeddingReranker:
    return EmbeddingReranker()


@pytest.fixture(scope="module")
def server(embedding: EmbeddingReranker) -> Iterator[BackgroundServer]:
    app = create_app(RerankService(embedding, token=SecretStr(TOKEN)))
    with BackgroundServer(app) as running:
        yield running


def expected(reranker: object, query: str = QUERY) -> list[tuple[int, float]]:
    results = reranker.rerank(query, TEXTS)  # type: ignore[attr-defined]
    return [(r.index, r.score) for r in results]


def close(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """The same documents with the same scores, best first. (Documents whose cosines clip to
    the same calibrated 0.0 are tied for a client: only the server sees their raw cosines.)"""
    scores = [s for _, s in got]
    mine, theirs = dict(got), dict(want)
    return (
        len(got) == len(want)
        and mine.keys() == theirs.keys()
        and all(abs(mine[i] - theirs[i]) < 1e-6 for i in mine)
        and scores == sorted(scores, reverse=True)
    )


def test_the_cohere_sdk_unchanged(server: BackgroundServer, embedding: EmbeddingReranker) -> None:
    client = cohere.ClientV2(api_key=TOKEN, base_url=server.url)
    response = client.rerank(model="served", query=QUERY, documents=TEXTS, top_n=3)
    got = [(r.index, r.relevance_score) for r in response.results]
    assert close(got, expected(embedding)[:3])

    async def asynchronous() -> list[tuple[int, float]]:
        aclient = cohere.AsyncClientV2(api_key=TOKEN, base_url=server.url)
        answer = await aclient.rerank(model="served", query=QUERY, documents=TEXTS)
        return [(r.index, r.relevance_score) for r in answer.results]

    assert close(asyncio.run(asynchronous()), expected(embedding))
    with pytest.raises(cohere.core.api_error.ApiError) as denied:
        cohere.ClientV2(api_key="wrong", base_url=server.url).rerank(
            model="served", query=QUERY, documents=TEXTS
        )
    assert denied.value.status_code == 401


@pytest.mark.parametrize(
    "build",
    [
        lambda url: HTTPReranker(url=url, api="tei", api_key=TOKEN),
        lambda url: HTTPReranker(url=url, api="cohere", api_key=TOKEN, model="served"),
        lambda url: HTTPReranker(url=f"{url}/v2/rerank", api="cohere", api_key=TOKEN),
        lambda url: HTTPReranker(url=url, api="tei", api_key=TOKEN, batch_size=2),
    ],
    ids=["tei", "infinity-body", "cohere-v2", "tei-batched"],
)
def test_http_reranker_sync_and_async(
    server: BackgroundServer, embedding: EmbeddingReranker, build: object
) -> None:
    client = build(server.url)  # type: ignore[operator]
    results = client.rerank(QUERY, TEXTS, min_score=0.1)
    local = embedding.rerank(QUERY, TEXTS, min_score=0.1)
    assert close([(r.index, r.score) for r in results], [(r.index, r.score) for r in local])
    assert {d.index for d in results.dropped} == {d.index for d in local.dropped}
    again = asyncio.run(client.arerank(QUERY, TEXTS))
    assert close([(r.index, r.score) for r in again], expected(embedding))


def test_llama_index_tei_postprocessor_unchanged(
    server: BackgroundServer, embedding: EmbeddingReranker
) -> None:
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.tei_rerank import TextEmbeddingInference

    nodes = [NodeWithScore(node=TextNode(text=text, id_=key)) for key, text in CORPUS]
    post = TextEmbeddingInference(base_url=server.url, top_n=3, auth_token=f"Bearer {TOKEN}")
    kept = post.postprocess_nodes(nodes, query_str=QUERY)
    got = [(TEXTS.index(n.node.get_content()), n.score or 0.0) for n in kept]
    assert close(got, expected(embedding)[:3])
    assert [n.node.node_id for n in kept] == [CORPUS[i][0] for i, _ in got]


def test_rerankit_components_through_the_server(
    server: BackgroundServer, embedding: EmbeddingReranker
) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerankit.langchain import RerankCompressor
    from rerankit.llama_index import RerankPostprocessor

    spec = f"http:{server.url}?api=tei"
    remote = HTTPReranker.from_spec_options(model=server.url, api="tei", api_key=TOKEN)
    want = expected(embedding)[:3]
    docs = [Document(text, id=key) for key, text in CORPUS]
    compressed = RerankCompressor(reranker=remote, top_n=3).compress_documents(docs, QUERY)
    got = [(TEXTS.index(d.page_content), d.metadata["relevance_score"]) for d in compressed]
    assert close(got, want)
    assert [d.id for d in compressed] == [CORPUS[i][0] for i, _ in want]
    nodes = [NodeWithScore(node=TextNode(text=text, id_=key)) for key, text in CORPUS]
    post = RerankPostprocessor(reranker=remote, top_n=3)
    kept = post.postprocess_nodes(nodes, query_str=QUERY)
    assert close([(TEXTS.index(n.node.get_content()), n.score or 0.0) for n in kept], want)
    assert spec.startswith("http:http://")  # the same server as a spec string works too


def test_micro_batched_cross_encoder_shares_batches(cross_encoder_path: str) -> None:
    served = CrossEncoderReranker(
        model=cross_encoder_path, dtype="float32", micro_batching=True, micro_batch_wait_ms=20
    )
    local = CrossEncoderReranker(model=cross_encoder_path, dtype="float32")
    service = RerankService(served)
    queries = [f"{QUERY} {i}" for i in range(12)]
    with BackgroundServer(create_app(service)) as running:
        client = HTTPReranker(url=running.url, api="tei")

        async def many() -> list[list[tuple[int, float]]]:
            answers = await asyncio.gather(*(client.arerank(q, TEXTS) for q in queries))
            return [[(r.index, r.score) for r in a] for a in answers]

        answers = asyncio.run(many())
        metrics = httpx.get(running.url + "/metrics").text
    service.close()
    for query, got in zip(queries, answers, strict=True):
        want = expected(local, query)
        assert [i for i, _ in got] == [i for i, _ in want]
        assert all(abs(a - b) < 1e-4 for (_, a), (_, b) in zip(got, want, strict=True))
    line = next(
        x for x in metrics.splitlines() if x.startswith("rerankit_serve_batch_requests_count")
    )
    total = next(
        x for x in metrics.splitlines() if x.startswith("rerankit_serve_batch_requests_sum")
    )
    batches, requests = float(line.split()[-1]), float(total.split()[-1])
    assert requests == len(queries)
    assert batches < requests  # some forward passes served several requests
