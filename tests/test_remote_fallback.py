"""FallbackReranker: primary -> secondary -> retrieval order, marked with the reason."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from rerankit import (
    Candidate,
    CohereReranker,
    ConfigurationError,
    EmptyQueryError,
    FallbackExhaustedError,
    FallbackReranker,
    HTTPReranker,
    MalformedResponseError,
    RemoteStatusError,
    Reranker,
    RerankResults,
    ScoreBatch,
    ThresholdPolicy,
)
from rerankit.annotate import rerank_block
from rerankit.backends.fallback import RETRIEVAL_ORDER
from tests.loopback import LoopbackServer, Reply, Request, expected_order
from tests.loopback.data import FAST, QUERY, SECRET, corpus

pytest_plugins = ["tests.loopback.fixtures"]


def chain(cohere: LoopbackServer, tei: LoopbackServer, **kwargs: object) -> FallbackReranker:
    primary = CohereReranker(api_key=SECRET, base_url=cohere.url, retry=FAST, timeout=0.5)
    secondary = HTTPReranker(url=tei.url, retry=FAST, timeout=0.5)
    return FallbackReranker([primary, secondary], **kwargs)  # type: ignore[arg-type]


def accounted(results: RerankResults, n: int) -> list[int]:
    return sorted(
        [r.index for r in results] + [d.index for d in results.dropped] + list(results.duplicates)
    )


def test_primary_answers_unmarked(cohere: LoopbackServer, tei: LoopbackServer) -> None:
    docs = corpus(8)
    results = chain(cohere, tei).rerank(QUERY, docs)
    assert results.backend == "cohere" and results.fallback is None
    assert [r.index for r in results] == expected_order(QUERY, docs)
    block = rerank_block(results[0], backend=results.backend, model=results.model)
    assert block["fallback"] is False and "fallback_reason" not in block
    assert tei.count() == 0


def test_secondary_takes_over_when_the_primary_is_down(
    cohere: LoopbackServer, tei: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    cohere.push_many(Reply(503, {"message": "down"}), 10)
    docs = corpus(8)
    with caplog.at_level(logging.WARNING, logger="rerankit.remote"):
        results = chain(cohere, tei).rerank(QUERY, docs, top_n=5)
    assert results.backend == "http"
    assert [r.index for r in results] == expected_order(QUERY, docs)[:5]
    assert cohere.count() == 4 and tei.count() == 1
    reason = results.fallback
    assert reason is not None
    assert "CohereReranker" in reason and "HTTP 503" in reason and "4 attempts" in reason
    assert all(r.fallback == reason for r in results)
    block = rerank_block(results[0], backend=results.backend, model=results.model)
    assert block["fallback"] is True and block["fallback_reason"] == reason
    assert "trying the next of 1" in caplog.text


def test_malformed_primary_answer_falls_back(cohere: LoopbackServer, tei: LoopbackServer) -> None:
    def duplicated(request: Request, handler: object) -> Reply:
        body = handler(request).body  # type: ignore[operator]
        body["results"][1]["index"] = body["results"][0]["index"]
        return Reply(200, body)

    cohere.push(duplicated)
    docs = corpus(6)
    results = chain(cohere, tei).rerank(QUERY, docs)
    assert results.backend == "http"
    assert results.fallback is not None and "MalformedResponseError" in results.fallback
    assert [r.index for r in results] == expected_order(QUERY, docs)


def test_all_down_keeps_the_retrieval_order(cohere: LoopbackServer, tei: LoopbackServer) -> None:
    cohere.push_many(Reply(500, {"message": "boom"}), 10)
    tei.push_many(Reply(502, b"bad gateway"), 10)
    docs = corpus(7)
    results = chain(cohere, tei).rerank(QUERY, docs, top_n=4, min_score=0.99)
    assert [r.index for r in results] == [0, 1, 2, 3]  # min_score ignored, top_n applied
    assert [r.score for r in results] == pytest.approx([1.0, 6 / 7, 5 / 7, 4 / 7])
    assert {d.index: d.reason for d in results.dropped} == {4: "top_n", 5: "top_n", 6: "top_n"}
    assert accounted(results, 7) == list(range(7))
    assert results.backend == RETRIEVAL_ORDER
    reason = results.fallback
    assert reason is not None and reason.startswith("all rerankers failed: ")
    assert "CohereReranker" in reason and "HTTPReranker" in reason and "HTTP 502" in reason
    block = rerank_block(results[0], backend=results.backend, model=results.model)
    assert block["fallback"] is True and block["backend"] == RETRIEVAL_ORDER


async def test_async_fallback_matches_sync(cohere: LoopbackServer, tei: LoopbackServer) -> None:
    docs = corpus(9)
    reranker = chain(cohere, tei)
    cohere.push_many(Reply(503, {"message": "down"}), 4)
    sync = reranker.rerank(QUERY, docs, top_n=6)
    cohere.push_many(Reply(503, {"message": "down"}), 4)
    asy = await reranker.arerank(QUERY, docs, top_n=6)
    assert [(r.index, r.score) for r in sync] == [(r.index, r.score) for r in asy]
    assert sync.fallback is not None and asy.fallback is not None


def test_without_last_resort_every_failure_is_raised(
    cohere: LoopbackServer, tei: LoopbackServer
) -> None:
    cohere.push(Reply(401, {"message": "bad key"}))
    tei.push(Reply(200, b"not json"))
    with pytest.raises(FallbackExhaustedError) as info:
        chain(cohere, tei, retrieval_order=False).rerank(QUERY, corpus(3))
    first, second = info.value.errors
    assert isinstance(first, RemoteStatusError) and first.status_code == 401
    assert isinstance(second, MalformedResponseError)
    assert "all 2 rerankers failed" in str(info.value)


def test_invalid_input_is_raised_at_once(cohere: LoopbackServer, tei: LoopbackServer) -> None:
    with pytest.raises(EmptyQueryError):
        chain(cohere, tei).rerank("   ", corpus(3))
    assert cohere.count() == 0 and tei.count() == 0
    assert list(chain(cohere, tei).rerank(QUERY, [])) == []


def test_only_listed_errors_fall_back(cohere: LoopbackServer, tei: LoopbackServer) -> None:
    cohere.push(Reply(403, {"message": "forbidden"}))
    reranker = chain(cohere, tei, fallback_on=(MalformedResponseError,))
    with pytest.raises(RemoteStatusError):
        reranker.rerank(QUERY, corpus(3))
    assert tei.count() == 0


def test_specs_and_repr(cohere: LoopbackServer, tei: LoopbackServer) -> None:
    reranker = FallbackReranker([f"http:{tei.url}?api=tei"])
    assert isinstance(reranker.rerankers[0], HTTPReranker)
    assert reranker.model_name == f"http:{tei.url}/rerank > retrieval-order"
    assert repr(reranker).startswith("FallbackReranker([HTTPReranker(")


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ([], {}),
        (["embedding"], {"retrieval_order": "yes"}),
        ([42], {}),
        (["embedding"], {"fallback_on": ()}),
        (["embedding"], {"fallback_on": (int,)}),
    ],
)
def test_invalid_configuration(args: list[object], kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        FallbackReranker(args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        FallbackReranker("embedding")  # type: ignore[arg-type]


# -- what a member receives (no server needed) ----------------------------------------------------


class _Down(Reranker):
    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        raise RuntimeError("service unavailable")


class _Table(Reranker):
    backend = "table"

    def __init__(self, table: dict[str, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        return ScoreBatch([self.table.get(t, 0.0) for t in texts])


def _snapshot(results: RerankResults) -> list[object]:
    return [
        [(r.index, r.score, r.rank, r.candidate, r.id) for r in results],
        results.dropped,
        dict(results.duplicates),
        results.empty_reason,
        results.backend,
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"top_n": 2},
        {"min_score": 0.45},
        {"policy": ThresholdPolicy(min_ratio=0.5), "top_n": 3},
        {"policy": ThresholdPolicy(top_n=1), "min_score": 0.9},
    ],
)
async def test_a_member_answers_as_if_called_directly(kwargs: dict[str, Any]) -> None:
    doc_b = Candidate("b", id="id-b", metadata={"k": 1})
    documents: list[str | Candidate] = ["a", doc_b, "c", "a", Candidate("other", id="id-b"), "d"]
    table = {"a": 0.9, "b": 0.5, "c": 0.4, "d": 0.7, "other": 0.95}
    for dedupe in (True, False):
        member = _Table(table, dedupe=dedupe)
        fallback = FallbackReranker([_Down(), member], dedupe=dedupe)
        direct = member.rerank(QUERY, documents, **kwargs)
        for results in (
            fallback.rerank(QUERY, documents, **kwargs),
            await fallback.arerank(QUERY, documents, **kwargs),
        ):
            assert _snapshot(results) == _snapshot(direct)
            assert results.fallback is not None and "_Down" in results.fallback
            for r in results:
                if isinstance(documents[r.index], Candidate):
                    assert r.candidate is documents[r.index]
    # The fallback's own dedupe rule decides what its members see.
    folded = FallbackReranker([_Down(), _Table(table, dedupe=False)]).rerank(QUERY, documents)
    assert dict(folded.duplicates) == {3: 0, 4: 1}
