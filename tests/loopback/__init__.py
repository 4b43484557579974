"""Loopback HTTP servers (127.0.0.1) speaking the Cohere, TEI and OpenAI wire formats."""

from tests.loopback.apis import FakeCohere, FakeOpenAI, FakeTEI, expected_order, relevance
from tests.loopback.server import Fault, LoopbackServer, Reply, Request

__all__ = [
    "Fault",
    "FakeCohere",
    "FakeOpenAI",
    "FakeTEI",
    "LoopbackServer",
    "Reply",
    "Request",
    "expected_order",
    "relevance",
]
