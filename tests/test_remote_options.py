"""The keyword arguments every remote backend shares (``RemoteOptions``), and the batch fan-out."""

from __future__ import annotations

import inspect

import pytest

from rerankit import (
    CohereReranker,
    ConfigurationError,
    HTTPReranker,
    LLMReranker,
    MalformedResponseError,
    RetryPolicy,
    from_spec,
)
from rerankit.calibration import Linear
from rerankit.remote import RemoteOptions, RemoteReranker
from tests.loopback import LoopbackServer, Reply
from tests.loopback.data import FAST, QUERY, SECRET, corpus

pytest_plugins = ["tests.loopback.fixtures"]

BACKENDS: dict[str, tuple[type[RemoteReranker], dict[str, object]]] = {
    "cohere": (CohereReranker, {"api_key": SECRET}),
    "http": (HTTPReranker, {"url": "http://127.0.0.1:9"}),
    "llm": (LLMReranker, {"model": "gpt-4o-mini", "api_key": SECRET}),
}


def test_the_typed_options_are_the_base_keywords() -> None:
    parameters = inspect.signature(RemoteReranker.__init__).parameters
    keywords = {n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(RemoteOptions.__optional_keys__) == keywords
    assert not RemoteOptions.__required_keys__


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_option_is_accepted_by_name(name: str) -> None:
    cls, required = BACKENDS[name]
    usage: list[object] = []
    reranker = cls(
        **required,  # type: ignore[arg-type]
        timeout=3.5,
        deadline=None,
        retry=FAST,
        max_retries=5,
        requests_per_minute=120.0,
        max_concurrency=3,
        on_usage=usage.append,
        calibration=Linear(low=-1.0, high=1.0),
        dedupe=False,
    )
    assert reranker.timeout == 3.5 and reranker.deadline is None
    assert reranker.retry == RetryPolicy(
        max_retries=5, base_delay=FAST.base_delay, max_delay=FAST.max_delay, jitter=FAST.jitter
    )
    assert reranker.requests_per_minute == 120.0 and reranker.max_concurrency == 3
    assert reranker.on_usage == usage.append and reranker.dedupe is False
    assert reranker.calibration == Linear(low=-1.0, high=1.0)


@pytest.mark.parametrize(
    ("name", "timeout", "deadline"),
    [("cohere", 30.0, 60.0), ("http", 30.0, 60.0), ("llm", 60.0, 120.0)],
)
def test_defaults(name: str, timeout: float, deadline: float) -> None:
    cls, required = BACKENDS[name]
    reranker = cls(**required)  # type: ignore[arg-type]
    assert (reranker.timeout, reranker.deadline) == (timeout, deadline)
    assert reranker.retry == RetryPolicy()
    assert reranker.requests_per_minute is None and reranker.max_concurrency == 8
    assert reranker.on_usage is None and reranker.dedupe is True
    overridden = cls(**required, timeout=5.0, deadline=None)  # type: ignore[arg-type]
    assert (overridden.timeout, overridden.deadline) == (5.0, None)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_an_unknown_keyword_is_refused_like_python_does(name: str) -> None:
    cls, required = BACKENDS[name]
    expected = f"{cls.__name__}.__init__() got an unexpected keyword argument 'max_retry'"
    with pytest.raises(TypeError) as info:
        cls(**required, max_retry=5)  # type: ignore[call-arg]
    assert str(info.value) == expected


def test_unknown_keyword_wins_over_bad_values() -> None:
    # As before, the signature is checked before any value.
    with pytest.raises(TypeError, match="bogus"):
        CohereReranker(api_key=SECRET, batch_size=0, bogus=1)  # type: ignore[call-arg]


def test_specs_pass_the_shared_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    reranker = from_spec("cohere:rerank-v3.5?max_retries=5&timeout=2.5&max_concurrency=2")
    assert isinstance(reranker, CohereReranker)
    assert reranker.retry.max_retries == 5
    assert (reranker.timeout, reranker.max_concurrency) == (2.5, 2)
    llm = from_spec("llm:m?base_url=http://127.0.0.1:9/v1&deadline=none&requests_per_minute=30")
    assert isinstance(llm, LLMReranker)
    assert llm.deadline is None and llm.requests_per_minute == 30


@pytest.mark.parametrize(
    "spec",
    [
        "cohere:rerank-v3.5?no_such_option=1",
        "llm:m?base_url=http://127.0.0.1:9/v1&retries=2",
        "http:http://127.0.0.1:9?api=tei&bogus=true",
    ],
)
def test_specs_with_unknown_options_are_configuration_errors(
    spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    with pytest.raises(ConfigurationError, match="unexpected keyword argument"):
        from_spec(spec)


@pytest.mark.parametrize(
    "spec",
    [
        "cohere:rerank-v3.5?max_retries=-1",
        "cohere:rerank-v3.5?timeout=0",
        "http:http://127.0.0.1:9?max_concurrency=0",
        "llm:m?base_url=http://127.0.0.1:9/v1&deadline=-1",
    ],
)
def test_specs_with_bad_option_values_are_configuration_errors(
    spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    with pytest.raises(ConfigurationError):
        from_spec(spec)


# -- the batch fan-out ---------------------------------------------------------------------------


def test_http_batch_errors_name_the_batch_and_its_path(tei: LoopbackServer) -> None:
    tei.push(Reply(200, {"unexpected": True}))
    reranker = HTTPReranker(url=tei.url, batch_size=2, max_concurrency=1, retry=FAST)
    label = r"POST /rerank \(batch 1 of 3, documents 0-1\)"
    with pytest.raises(MalformedResponseError, match=label):
        reranker.rerank(QUERY, corpus(6))


def test_single_batch_errors_name_the_document_count(cohere: LoopbackServer) -> None:
    cohere.push(Reply(200, {"unexpected": True}))
    reranker = CohereReranker(api_key=SECRET, base_url=cohere.url, retry=FAST)
    with pytest.raises(MalformedResponseError, match=r"POST /v2/rerank \(3 documents\)"):
        reranker.rerank(QUERY, corpus(3))


async def test_async_batches_keep_the_input_order(tei: LoopbackServer) -> None:
    docs = corpus(9)
    reranker = HTTPReranker(url=tei.url, batch_size=2, retry=FAST)
    sync = reranker.rerank(QUERY, docs)
    tei.clear()
    results = await reranker.arerank(QUERY, docs)
    assert [(r.index, r.raw_score) for r in results] == [(r.index, r.raw_score) for r in sync]
    assert sorted(len(b["texts"]) for b in tei.bodies("/rerank")) == [1, 2, 2, 2, 2]
