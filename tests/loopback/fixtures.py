"""pytest fixtures: loopback servers (one per test module) reset before each test.

Test modules load them with ``pytest_plugins = ["tests.loopback.fixtures"]``; the shared test
data (key, retry policy, corpus) is in :mod:`tests.loopback.data`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.loopback.apis import FakeCohere, FakeOpenAI, FakeTEI
from tests.loopback.hosted import FakeJina, FakeMixedbread, FakeVoyage
from tests.loopback.server import LoopbackServer


@pytest.fixture(scope="module")
def _cohere_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(FakeCohere()) as server:
        yield server


@pytest.fixture
def cohere(_cohere_server: LoopbackServer) -> Iterator[LoopbackServer]:
    """A Cohere v2 server (``/v2/rerank``) on 127.0.0.1."""
    _cohere_server.clear()
    _cohere_server.latency = 0.0
    yield _cohere_server
    _cohere_server.clear()


@pytest.fixture(scope="module")
def _infinity_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(FakeCohere(flavour="infinity")) as server:
        yield server


@pytest.fixture
def infinity(_infinity_server: LoopbackServer) -> Iterator[LoopbackServer]:
    """A Cohere-compatible ``/rerank`` server in Infinity's flavour."""
    _infinity_server.clear()
    yield _infinity_server
    _infinity_server.clear()


@pytest.fixture(scope="module")
def _tei_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(FakeTEI()) as server:
        yield server


@pytest.fixture
def tei(_tei_server: LoopbackServer) -> Iterator[LoopbackServer]:
    """A Text Embeddings Inference ``/rerank`` server (max client batch size 32)."""
    _tei_server.clear()
    yield _tei_server
    _tei_server.clear()


@pytest.fixture(scope="module")
def _openai_server() -> Iterator[tuple[LoopbackServer, FakeOpenAI]]:
    fake = FakeOpenAI()
    with LoopbackServer(fake) as server:
        yield server, fake


@pytest.fixture
def openai_server(
    _openai_server: tuple[LoopbackServer, FakeOpenAI],
) -> Iterator[tuple[LoopbackServer, FakeOpenAI]]:
    """An OpenAI ``/v1/chat/completions`` server and its fake model (knobs reset per test)."""
    server, fake = _openai_server
    server.clear()
    fake.logprobs = True
    fake.listwise_output = None
    fake.pointwise_output = None
    yield server, fake
    server.clear()


def _hosted(fake: object) -> Iterator[LoopbackServer]:
    with LoopbackServer(fake) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture(scope="module")
def _voyage_server() -> Iterator[LoopbackServer]:
    yield from _hosted(FakeVoyage())


@pytest.fixture(scope="module")
def _jina_server() -> Iterator[LoopbackServer]:
    yield from _hosted(FakeJina())


@pytest.fixture(scope="module")
def _mixedbread_server() -> Iterator[LoopbackServer]:
    yield from _hosted(FakeMixedbread())


@pytest.fixture
def voyage(_voyage_server: LoopbackServer) -> Iterator[LoopbackServer]:
    """Voyage AI ``/v1/rerank`` on 127.0.0.1."""
    _voyage_server.clear()
    yield _voyage_server
    _voyage_server.clear()


@pytest.fixture
def jina(_jina_server: LoopbackServer) -> Iterator[LoopbackServer]:
    """Jina AI ``/v1/rerank`` on 127.0.0.1."""
    _jina_server.clear()
    yield _jina_server
    _jina_server.clear()


@pytest.fixture
def mixedbread(_mixedbread_server: LoopbackServer) -> Iterator[LoopbackServer]:
    """Mixedbread ``/v1/reranking`` on 127.0.0.1."""
    _mixedbread_server.clear()
    yield _mixedbread_server
    _mixedbread_server.clear()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every logger at DEBUG (SDKs and httpx included)."""
    caplog.set_level(logging.DEBUG)
    return caplog
