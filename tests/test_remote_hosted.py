"""Voyage, Jina and Mixedbread against loopback servers that speak each documented wire
format: the request each sends, scores mapped back by index, batching, usage, specs, and
failures (statuses, Retry-After, malformed answers, a hung server against the deadline)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rerankit import (
    ConfigurationError,
    DeadlineExceededError,
    JinaReranker,
    MalformedResponseError,
    MixedbreadReranker,
    RateLimitedError,
    RemoteError,
    RemoteStatusError,
    VoyageReranker,
    from_spec,
)
from rerankit.remote import RemoteReranker
from tests.loopback import LoopbackServer, expected_order, relevance
from tests.loopback import faults as f
from tests.loopback.data import FAST, QUERY, SECRET, corpus

pytest_plugins = ["tests.loopback.fixtures"]


@dataclass(frozen=True)
class Api:
    name: str
    server: str
    path: str
    build: Callable[..., RemoteReranker]
    documents: str
    results: str
    score: str
    body: Callable[[list[str]], dict[str, Any]]
    """The body the backend must send for these documents (besides the query)."""


APIS = [
    Api(
        "voyage",
        "voyage",
        "/v1/rerank",
        lambda url, **kw: VoyageReranker(model="rerank-2.5", base_url=f"{url}/v1", **kw),
        "documents",
        "data",
        "relevance_score",
        lambda docs: {
            "documents": docs,
            "model": "rerank-2.5",
            "truncation": True,
            "return_documents": False,
        },
    ),
    Api(
        "jina",
        "jina",
        "/v1/rerank",
        lambda url, **kw: JinaReranker(model="jina-reranker-v3", base_url=f"{url}/v1", **kw),
        "documents",
        "results",
        "relevance_score",
        lambda docs: {
            "documents": docs,
            "model": "jina-reranker-v3",
            "top_n": len(docs),
            "return_documents": False,
        },
    ),
    Api(
        "mixedbread",
        "mixedbread",
        "/v1/reranking",
        lambda url, **kw: MixedbreadReranker(model="mxbai", base_url=url, **kw),
        "input",
        "data",
        "score",
        lambda docs: {"input": docs, "model": "mxbai", "top_k": len(docs), "return_input": False},
    ),
]
IDS = [a.name for a in APIS]


@pytest.fixture(params=APIS, ids=IDS)
def api(request: pytest.FixtureRequest) -> tuple[Api, LoopbackServer]:
    spec: Api = request.param
    return spec, request.getfixturevalue(spec.server)


def build(api: Api, server: LoopbackServer, **options: Any) -> RemoteReranker:
    settings = {"api_key": SECRET, "retry": FAST, "timeout": 2.0, "deadline": 5.0, **options}
    return api.build(server.url, **settings)


def test_the_request_is_the_documented_one_and_scores_map_back(
    api: tuple[Api, LoopbackServer],
) -> None:
    spec, server = api
    docs = corpus(7)
    results = build(spec, server).rerank(QUERY, docs)
    assert [r.index for r in results] == expected_order(QUERY, docs)
    assert all(r.raw_score == relevance(QUERY, docs[r.index]) for r in results)
    (request,) = server.requests
    assert request.method == "POST" and request.path == spec.path
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.json() == {"query": QUERY, **spec.body(docs)}
    tokens = sum(len(QUERY.split()) + len(d.split()) for d in docs)
    assert results.usage is not None and results.usage["input_tokens"] == tokens
    assert results.score_space == "probability"


def test_async_and_batches_sent_concurrently(api: tuple[Api, LoopbackServer]) -> None:
    spec, server = api
    docs = corpus(25)
    reranker = build(spec, server, batch_size=10)
    results = asyncio.run(reranker.arerank(QUERY, docs))
    assert [r.index for r in results] == expected_order(QUERY, docs)
    sizes = sorted(len(r.json()[spec.documents]) for r in server.requests)
    assert sizes == [5, 10, 10]


@pytest.mark.parametrize(
    ("fault", "retried"),
    [
        (f.status(429, retry_after="0"), True),
        (f.status(503), True),
        (f.status(401), False),
        (f.status(422, body={"detail": "bad input"}), False),
    ],
    ids=["429", "503", "401", "422"],
)
def test_statuses_are_retried_or_raised(
    api: tuple[Api, LoopbackServer], fault: Any, retried: bool
) -> None:
    spec, server = api
    server.push(fault)
    reranker = build(spec, server)
    docs = corpus(3)
    if retried:
        results = reranker.rerank(QUERY, docs)
        assert [r.index for r in results] == expected_order(QUERY, docs)
        assert server.count(spec.path) == 2
        assert results.usage is not None and results.usage["retries"] == 1
    else:
        with pytest.raises(RemoteStatusError) as info:
            reranker.rerank(QUERY, docs)
        assert info.value.status_code == fault.status
        assert server.count(spec.path) == 1


def test_rate_limits_that_persist_raise_rate_limited(api: tuple[Api, LoopbackServer]) -> None:
    spec, server = api
    server.push_many(f.status(429, retry_after="0"), 5)
    with pytest.raises(RateLimitedError):
        build(spec, server).rerank(QUERY, corpus(2))


def _corrupt(spec: Api, how: str) -> Callable[[Any], Any]:
    def change(data: Any) -> Any:
        rows = data[spec.results]
        if how == "missing":
            rows.pop()
        elif how == "nan":
            rows[0][spec.score] = math.nan
        elif how == "string":
            rows[0][spec.score] = "0.9"
        elif how == "duplicate":
            rows[1]["index"] = rows[0]["index"]
        elif how == "no-results":
            del data[spec.results]
        return data

    return change


@pytest.mark.parametrize("how", ["missing", "nan", "string", "duplicate", "no-results"])
def test_malformed_answers_are_refused_never_repaired(
    api: tuple[Api, LoopbackServer], how: str
) -> None:
    spec, server = api
    server.push_many(f.mutate(_corrupt(spec, how)), 4)
    with pytest.raises(MalformedResponseError):
        build(spec, server, max_retries=0).rerank(QUERY, corpus(3))


@pytest.mark.parametrize("fault", [f.gzip_undeclared(), f.short_body()], ids=["gzip", "short"])
def test_broken_bodies_are_typed_errors(api: tuple[Api, LoopbackServer], fault: Any) -> None:
    spec, server = api
    server.push_many(fault, 4)
    with pytest.raises(RemoteError):
        build(spec, server, max_retries=0).rerank(QUERY, corpus(3))


def test_a_hung_server_is_cut_off_at_the_deadline_sync_and_async(
    api: tuple[Api, LoopbackServer],
) -> None:
    spec, server = api
    reranker = build(spec, server, timeout=0.5, deadline=1.0)
    for call in (
        lambda: reranker.rerank(QUERY, corpus(2)),
        lambda: asyncio.run(reranker.arerank(QUERY, corpus(2))),
    ):
        server.clear()
        server.push_many(f.trickled_status_line(0.1), 6)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            call()
        assert time.monotonic() - started < 1.0 + 2.0  # the deadline, with generous grace


@pytest.mark.parametrize(
    ("spec", "cls", "model"),
    [
        ("voyage:rerank-2.5-lite", VoyageReranker, "rerank-2.5-lite"),
        ("jina:jina-reranker-m0", JinaReranker, "jina-reranker-m0"),
        (
            "mixedbread:mixedbread-ai/mxbai-rerank-base-v2",
            MixedbreadReranker,
            "mixedbread-ai/mxbai-rerank-base-v2",
        ),
    ],
)
def test_specs(spec: str, cls: type, model: str) -> None:
    reranker = from_spec(f"{spec}?api_key=k&max_retries=5")
    assert isinstance(reranker, cls)
    assert reranker.model_name == model
    assert reranker.retry.max_retries == 5  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [VoyageReranker, JinaReranker, MixedbreadReranker])
def test_a_key_is_required_for_the_hosted_api(cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VOYAGE_API_KEY", "JINA_API_KEY", "MXBAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="needs an API key"):
        cls()
    with pytest.raises(ConfigurationError, match="batch_size"):
        cls(api_key="k", batch_size=0)


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOYAGE_API_KEY", "v-key")
    monkeypatch.setenv("JINA_API_KEY", "j-key")
    monkeypatch.setenv("MXBAI_API_KEY", "m-key")
    for cls, key in (
        (VoyageReranker, "v-key"),
        (JinaReranker, "j-key"),
        (MixedbreadReranker, "m-key"),
    ):
        reranker = cls()
        assert reranker.api_key is not None and reranker.api_key.get_secret_value() == key


def test_documented_limits() -> None:
    with pytest.raises(ConfigurationError, match="at most 1000"):
        VoyageReranker(api_key="k", batch_size=1001)
    with pytest.raises(ConfigurationError, match="at most 1000"):
        MixedbreadReranker(api_key="k", batch_size=1001)
    assert VoyageReranker(api_key="k").pointwise is True
    assert MixedbreadReranker(api_key="k").pointwise is True
    assert JinaReranker(api_key="k").pointwise is None  # depends on the model
