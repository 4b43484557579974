"""Micro-batching: concurrent requests share model batches and get unbatched results."""

from __future__ import annotations

import asyncio
import doctest
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from rerankit import (
    ConfigurationError,
    CrossEncoderReranker,
    MicroBatcher,
    RerankResults,
)
from rerankit.batching import BatcherClosedError, Request
from tests._fixtures import CORPUS

TEXTS = [text for _, text in CORPUS]
QUERIES = [
    "what is a vector database",
    "how long to cook pasta",
    "capital of France",
    "how does a reranker score passages",
    "coffee brewing temperature",
    "term frequency ranking",
]

pytestmark = pytest.mark.filterwarnings("ignore::rerankit.TruncationWarning")


class Recorder:
    """A ``score_many`` that records the groups it was given; ``"boom"`` queries fail."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.groups: list[list[Request]] = []
        self.gate = gate
        self.entered = threading.Event()
        """Set once the worker has taken a group and waits at the gate."""

    def __call__(self, requests: Sequence[Request]) -> list[list[int]]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(5)
        self.groups.append(list(requests))
        if any(query == "boom" for query, _ in requests):
            raise ValueError("boom")
        return [[len(query) + len(t) for t in texts] for query, texts in requests]


# -- MicroBatcher ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"score_many": None}, "callable"),
        ({"max_wait_ms": -1}, "max_wait_ms"),
        ({"max_wait_ms": True}, "max_wait_ms"),
        ({"max_wait_ms": "2"}, "max_wait_ms"),
        ({"max_pairs": 0}, "max_pairs"),
        ({"max_pairs": 2.5}, "max_pairs"),
    ],
)
def test_batcher_validates_options(kwargs: dict[str, object], match: str) -> None:
    options: dict[str, object] = {"score_many": Recorder(), **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        MicroBatcher(**options)  # type: ignore[arg-type]


async def test_concurrent_async_requests_share_calls() -> None:
    gate = threading.Event()
    recorder = Recorder(gate)
    with MicroBatcher(score_many=recorder, max_wait_ms=50, max_pairs=1000) as batcher:
        tasks = [asyncio.ensure_future(batcher.ascore(f"q{i}", ["a", "bb"])) for i in range(10)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(*tasks)
    assert results == [[len(f"q{i}") + 1, len(f"q{i}") + 2] for i in range(10)]
    assert batcher.requests == 10
    assert batcher.batches < 10
    assert sum(len(group) for group in recorder.groups) == 10


def test_sync_requests_from_threads_share_calls() -> None:
    recorder = Recorder()
    with (
        MicroBatcher(score_many=recorder, max_wait_ms=100, max_pairs=8) as batcher,
        ThreadPoolExecutor(8) as pool,
    ):
        results = list(pool.map(lambda i: batcher.score(f"q{i}", ["x"] * 2), range(8)))
    assert results == [[len(f"q{i}") + 1] * 2 for i in range(8)]
    assert batcher.batches < 8
    # a group stops gathering once it holds max_pairs documents
    assert all(sum(len(t) for _, t in group) <= 8 for group in recorder.groups)


async def test_one_failing_request_fails_alone() -> None:
    gate = threading.Event()
    recorder = Recorder(gate)
    with MicroBatcher(score_many=recorder, max_wait_ms=50) as batcher:
        good = asyncio.ensure_future(batcher.ascore("fine", ["a"]))
        bad = asyncio.ensure_future(batcher.ascore("boom", ["a"]))
        also = asyncio.ensure_future(batcher.ascore("also fine", ["a"]))
        await asyncio.sleep(0.02)
        gate.set()
        assert await good == [5]
        with pytest.raises(ValueError, match="boom"):
            await bad
        assert await also == [10]


def test_closed_batcher_refuses_requests() -> None:
    batcher = MicroBatcher(score_many=Recorder())
    assert batcher.score("q", ["a"]) == [2]
    batcher.close()
    batcher.close()  # idempotent
    with pytest.raises(BatcherClosedError):
        batcher.submit("q", ["a"])
    assert "MicroBatcher(" in repr(batcher)


def test_wrong_result_count_is_an_error() -> None:
    with (
        MicroBatcher(score_many=lambda requests: []) as batcher,
        pytest.raises(RuntimeError, match="0 results for 1 requests"),
    ):
        batcher.score("q", ["a"])


async def test_cancelled_request_is_skipped() -> None:
    gate = threading.Event()
    recorder = Recorder(gate)
    with MicroBatcher(score_many=recorder, max_wait_ms=0) as batcher:
        first = asyncio.ensure_future(batcher.ascore("first", ["a"]))
        # Wait until the worker holds "first" at the gate (not a fixed sleep: a loaded
        # machine may take longer to start the worker).
        assert await asyncio.to_thread(recorder.entered.wait, 5)
        second = asyncio.ensure_future(batcher.ascore("second", ["a"]))
        await asyncio.sleep(0)
        second.cancel()
        # Awaiting the cancelled call lets the loop hand the cancellation to the batcher's
        # request before the worker is released to take it.
        with pytest.raises(asyncio.CancelledError):
            await second
        gate.set()
        assert await first == [6]
        third = await batcher.ascore("third", ["a"])
    assert third == [6]
    assert all(query != "second" for group in recorder.groups for query, _ in group)


# -- CrossEncoderReranker(micro_batching=True) -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"micro_batching": "yes"}, "micro_batching"),
        ({"micro_batch_wait_ms": -0.5}, "micro_batch_wait_ms"),
        ({"micro_batch_wait_ms": 5000}, "micro_batch_wait_ms"),
        ({"micro_batch_pairs": 0}, "micro_batch_pairs"),
        ({"batch_size": True}, "batch_size"),
    ],
)
def test_cross_encoder_validates_micro_batching_options(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CrossEncoderReranker(model="some/model", **kwargs)  # type: ignore[arg-type]


def raw_by_index(results: RerankResults) -> dict[int, float]:
    return {r.index: r.raw_score for r in results}


def assert_same(a: RerankResults, b: RerankResults, tol: float) -> None:
    assert set(raw_by_index(a)) == set(raw_by_index(b))
    for index, raw in raw_by_index(a).items():
        assert raw_by_index(b)[index] == pytest.approx(raw, abs=tol)
    assert [(r.index, r.truncated, r.windows) for r in sorted(a, key=lambda r: r.index)] == [
        (r.index, r.truncated, r.windows) for r in sorted(b, key=lambda r: r.index)
    ]


TOLERANCE = {"float32": 1e-4, "auto": 0.05}
"""Same pairs padded differently: fp32 agrees to rounding; bf16 to its 8-bit mantissa."""


@pytest.mark.model
@pytest.mark.parametrize("dtype", ["float32", "auto"])
async def test_micro_batched_equals_unbatched_sync_and_async(
    cross_encoder_path: str, dtype: str
) -> None:
    plain = CrossEncoderReranker(model=cross_encoder_path, dtype=dtype, batch_size=4)
    batched = CrossEncoderReranker(
        model=cross_encoder_path,
        dtype=dtype,
        batch_size=4,
        micro_batching=True,
        micro_batch_wait_ms=20,
    )
    expected = [plain.rerank(q, TEXTS) for q in QUERIES]
    concurrent = await asyncio.gather(*(batched.arerank(q, TEXTS) for q in QUERIES))
    for want, got in zip(expected, concurrent, strict=True):
        assert_same(want, got, TOLERANCE[dtype])
    batcher = batched._micro_batcher()
    assert batcher.batches < batcher.requests  # requests really shared forward passes
    sync = [batched.rerank(q, TEXTS) for q in QUERIES]
    for want, got in zip(expected, sync, strict=True):
        assert_same(want, got, TOLERANCE[dtype])
    unbatched_async = [await plain.arerank(q, TEXTS) for q in QUERIES]
    for want, got in zip(expected, unbatched_async, strict=True):
        assert [(r.index, r.raw_score) for r in want] == [(r.index, r.raw_score) for r in got]


@pytest.mark.model
async def test_micro_batching_with_windows_and_truncation(cross_encoder_path: str) -> None:
    long_doc = " ".join(TEXTS)
    docs = [*TEXTS, long_doc]
    for mode in ("window", "truncate"):
        plain = CrossEncoderReranker(
            model=cross_encoder_path, dtype="float32", max_length=32, long_documents=mode
        )
        batched = CrossEncoderReranker(
            model=cross_encoder_path,
            dtype="float32",
            max_length=32,
            long_documents=mode,
            micro_batching=True,
            micro_batch_wait_ms=20,
        )
        got = await asyncio.gather(*(batched.arerank(q, docs) for q in QUERIES))
        for query, result in zip(QUERIES, got, strict=True):
            assert_same(plain.rerank(query, docs), result, 1e-4)
        if mode == "window":
            assert max(r.windows for r in got[0]) > 1
        else:
            assert got[0].truncated > 0


@pytest.mark.model
async def test_micro_batched_request_errors_stay_with_their_caller(
    cross_encoder_path: str,
) -> None:
    batched = CrossEncoderReranker(
        model=cross_encoder_path, max_length=16, micro_batching=True, micro_batch_wait_ms=20
    )
    too_long = " ".join(["word"] * 40)
    good, bad = await asyncio.gather(
        batched.arerank("short query", TEXTS),
        batched.arerank(too_long, TEXTS),
        return_exceptions=True,
    )
    assert isinstance(good, RerankResults) and len(good) == len(TEXTS)
    assert isinstance(bad, ConfigurationError)


@pytest.mark.model
def test_rerankers_with_the_same_model_share_one_batcher(cross_encoder_path: str) -> None:
    options = {"model": cross_encoder_path, "micro_batching": True, "micro_batch_wait_ms": 1.0}
    a = CrossEncoderReranker(**options)  # type: ignore[arg-type]
    b = CrossEncoderReranker(**options)  # type: ignore[arg-type]
    c = CrossEncoderReranker(**{**options, "max_length": 64})  # type: ignore[arg-type]
    assert a._micro_batcher() is b._micro_batcher()
    assert a._micro_batcher() is not c._micro_batcher()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda q: a.rerank(q, TEXTS), QUERIES))
    assert [len(r) for r in results] == [len(TEXTS)] * len(QUERIES)


def test_docstring_examples_run() -> None:
    import rerankit.batching as module

    failures, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0
    assert failures == 0
