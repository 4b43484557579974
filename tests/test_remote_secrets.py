"""API keys never appear in a repr, a log line, an exception or a serialised config."""

from __future__ import annotations

import copy
import json
import pickle
import traceback
from collections.abc import Callable

import pytest
from langchain_core.load import dumps

from rerankit import (
    CohereReranker,
    FallbackReranker,
    HTTPReranker,
    LLMReranker,
    RemoteStatusError,
)
from rerankit.langchain import RerankCompressor
from rerankit.llama_index import RerankPostprocessor
from rerankit.remote import RemoteReranker
from rerankit.remote.secrets import MASK
from tests.loopback import FakeOpenAI, LoopbackServer, Reply
from tests.loopback.data import FAST, QUERY, SECRET, corpus, leaked

pytest_plugins = ["tests.loopback.fixtures"]

Build = Callable[[LoopbackServer], RemoteReranker]

BUILDERS: dict[str, Build] = {
    "cohere": lambda s: CohereReranker(api_key=SECRET, base_url=s.url, retry=FAST, timeout=1.0),
    "llm": lambda s: LLMReranker(
        model="gpt-4o-mini", api_key=SECRET, base_url=s.url + "/v1", retry=FAST, timeout=1.0
    ),
    "http": lambda s: HTTPReranker(url=s.url, api_key=SECRET, retry=FAST, timeout=1.0),
}


@pytest.fixture(params=sorted(BUILDERS))
def remote(
    request: pytest.FixtureRequest,
) -> tuple[RemoteReranker, LoopbackServer]:
    name = request.param
    if name == "cohere":
        server = request.getfixturevalue("cohere")
    elif name == "llm":
        server = request.getfixturevalue("openai_server")[0]
    else:
        server = request.getfixturevalue("tei")
    return BUILDERS[name](server), server


def echo_key(status: int) -> Reply:
    """A server error whose body echoes the key back (some proxies do)."""
    return Reply(
        status, {"message": f"invalid api key {SECRET}", "error": {"message": f"key {SECRET}"}}
    )


def texts_of(error: BaseException) -> list[str]:
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


def test_reprs_and_configs(remote: tuple[RemoteReranker, LoopbackServer]) -> None:
    reranker, _ = remote
    for text in (repr(reranker), str(reranker), repr(vars(reranker)), str(reranker.api_key)):
        assert not leaked(text)
    config = reranker.to_config()
    assert config["api_key"] == MASK
    assert not leaked(json.dumps(config))
    assert reranker.api_key is not None and reranker.api_key.get_secret_value() == SECRET


def test_pickling_refuses_and_copies_share(remote: tuple[RemoteReranker, LoopbackServer]) -> None:
    reranker, _ = remote
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        pickle.dumps(reranker)
    assert not leaked(str(info.value))
    with pytest.raises(TypeError):
        copy.deepcopy(reranker)
    assert copy.copy(reranker).api_key is reranker.api_key


def test_framework_components_do_not_serialise_the_key(
    remote: tuple[RemoteReranker, LoopbackServer],
) -> None:
    reranker, _ = remote
    compressor = RerankCompressor(reranker=reranker, top_n=2)
    postprocessor = RerankPostprocessor(reranker=reranker, top_n=2)
    fallback = FallbackReranker([reranker])
    for text in (
        repr(compressor),
        str(compressor.model_dump()),
        dumps(compressor),
        repr(postprocessor),
        str(postprocessor.to_dict()),
        repr(fallback),
        fallback.model_name,
    ):
        assert not leaked(text)


def test_errors_and_logs_of_a_failing_run(
    remote: tuple[RemoteReranker, LoopbackServer], debug_logs: pytest.LogCaptureFixture
) -> None:
    reranker, server = remote
    server.push(echo_key(503), echo_key(503), echo_key(401))
    with pytest.raises(RemoteStatusError) as info:
        reranker.rerank(QUERY, ["one document"])
    assert info.value.status_code == 401 and info.value.attempts == 3
    for text in texts_of(info.value):
        assert not leaked(text)
    assert MASK in str(info.value)  # the echoed key was scrubbed, not the message dropped
    # the same through the fallback chain, which logs each failure
    server.push(echo_key(401))
    results = FallbackReranker([reranker]).rerank(QUERY, ["a", "b"])
    assert results.fallback is not None and not leaked(results.fallback)
    assert MASK in results.fallback
    records = debug_logs.records
    assert any(r.name == "rerankit.remote" for r in records)
    for record in records:
        assert not leaked(record.getMessage())
        assert not (record.exc_text and leaked(record.exc_text))
    assert not leaked(debug_logs.text)


async def test_async_errors_do_not_leak(
    remote: tuple[RemoteReranker, LoopbackServer], debug_logs: pytest.LogCaptureFixture
) -> None:
    reranker, server = remote
    server.push(echo_key(500), echo_key(403))
    with pytest.raises(RemoteStatusError) as info:
        await reranker.arerank(QUERY, ["one document"])
    for text in texts_of(info.value):
        assert not leaked(text)
    assert not leaked(debug_logs.text)


def test_the_key_only_travels_in_the_auth_header(
    remote: tuple[RemoteReranker, LoopbackServer],
) -> None:
    reranker, server = remote
    reranker.rerank(QUERY, corpus(3))
    for request in server.requests:
        assert SECRET not in request.body.decode()
        assert SECRET not in request.path + request.query
        assert request.headers["authorization"] == f"Bearer {SECRET}"


def test_usage_holds_no_key(remote: tuple[RemoteReranker, LoopbackServer]) -> None:
    reranker, _ = remote
    results = reranker.rerank(QUERY, corpus(2))
    assert results.usage is not None and not leaked(json.dumps(dict(results.usage)))


def test_fake_openai_is_reset(openai_server: tuple[LoopbackServer, FakeOpenAI]) -> None:
    _, fake = openai_server
    assert fake.logprobs and fake.listwise_output is None
