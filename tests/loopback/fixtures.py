"""pytest fixtures: loopback servers (one per test module) reset before each test.

Test modules load them with ``pytest_plugins = ["tests.loopback.fixtures"]``; the shared test
data (key, retry policy, corpus) is in :mod:`tests.loopback.data`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.loopback.apis import FakeCohere, FakeOpenAI, FakeTEI
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


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every logger at DEBUG (SDKs and httpx included)."""
    caplog.set_level(logging.DEBUG)
    return caplog
