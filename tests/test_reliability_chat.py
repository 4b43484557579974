"""The chat models and the LLM reranker on the one OpenAI-compatible client layer: the same
deadlines, retries and typed errors as the rerankers, and async clients that live and die with
their event loop (no "Event loop is closed", no "Task exception was never retrieved")."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from rerankit import (
    DeadlineExceededError,
    MalformedResponseError,
    RateLimitedError,
    RemoteError,
)
from rerankit.langchain import ChatOpenAICompatible
from rerankit.llama_index import OpenAICompatibleLLM
from tests.loopback import FakeOpenAI, LoopbackServer, Reply, faults

pytest_plugins = ["tests.loopback.fixtures"]

ROOT = Path(__file__).resolve().parents[1]
GRACE = 0.6
Server = tuple[LoopbackServer, FakeOpenAI]


def _ask(chat: Any, mode: str) -> Any:
    if isinstance(chat, ChatOpenAICompatible):
        return chat.invoke("hello") if mode == "sync" else asyncio.run(chat.ainvoke("hello"))
    return chat.complete("hello") if mode == "sync" else asyncio.run(chat.acomplete("hello"))


def _text(answer: Any) -> str:
    return str(getattr(answer, "content", None) or getattr(answer, "text", ""))


CLASSES = [ChatOpenAICompatible, OpenAICompatibleLLM]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("cls", CLASSES)
def test_chat_models_keep_their_deadline(openai_server: Server, cls: type, mode: str) -> None:
    server, _ = openai_server
    chat = cls(model="m", base_url=server.url + "/v1", timeout=0.3, deadline=0.8, max_retries=9)
    server.push_many(faults.trickled_status_line(), 50)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError, match=r"chat completion ran out of its 0\.8 s"):
        _ask(chat, mode)
    assert time.monotonic() - started <= 0.8 + GRACE
    server.clear()
    assert server.wait_idle(1.5)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("cls", CLASSES)
def test_chat_models_retry_and_fail_typed(openai_server: Server, cls: type, mode: str) -> None:
    server, _ = openai_server
    chat = cls(model="m", base_url=server.url + "/v1", max_retries=2)
    server.push(faults.status(503), faults.status(429, retry_after="0.05"))
    assert _text(_ask(chat, mode))  # answered after two retries
    assert server.count() == 3
    server.clear()
    server.push_many(faults.status(429, retry_after="0"), 3)
    with pytest.raises(RateLimitedError) as info:
        _ask(chat, mode)
    assert info.value.attempts == 3
    server.push(Reply(200, b"<html>captive portal</html>", {"Content-Type": "text/html"}))
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        _ask(chat, mode)


def test_a_second_event_loop_gets_its_own_client(openai_server: Server) -> None:
    server, _ = openai_server
    chat = ChatOpenAICompatible(model="m", base_url=server.url + "/v1")
    first = asyncio.run(chat.ainvoke("one"))
    second = asyncio.run(chat.ainvoke("two"))  # the first loop's keep-alive client is gone
    assert _text(first) and _text(second)


_SCRIPT = textwrap.dedent(
    """
    import asyncio, gc
    from rerankit import LLMReranker
    from rerankit.langchain import ChatOpenAICompatible
    from tests.loopback import FakeOpenAI, LoopbackServer
    from tests.loopback.data import QUERY, corpus

    with LoopbackServer(FakeOpenAI()) as server:
        url = server.url + "/v1"
        reranker = LLMReranker(model="m", api_key="sk-test-key-0000", base_url=url)
        chat = ChatOpenAICompatible(model="m", base_url=url)
        asyncio.run(reranker.arerank(QUERY, corpus(3)))
        asyncio.run(chat.ainvoke("hello"))
        asyncio.run(chat.ainvoke("again"))  # a second loop, same keep-alive server

        async def later():
            global reranker, chat
            del reranker, chat  # garbage-collected under a later loop
            gc.collect()
            await asyncio.sleep(0.1)

        asyncio.run(later())
        gc.collect()
    print("done")
    """
)


def test_clients_die_with_their_loop_without_noise() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    run = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _SCRIPT],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("done")
    for noise in ("Event loop is closed", "Task exception was never retrieved", "Traceback"):
        assert noise not in run.stderr, run.stderr
    assert "unclosed" not in run.stderr.lower(), run.stderr  # every socket was closed


def test_errors_are_typed_remote_errors(openai_server: Server) -> None:
    server, _ = openai_server
    chat = OpenAICompatibleLLM(model="m", base_url=server.url + "/v1", max_retries=0)
    server.push(faults.status(500))
    with pytest.raises(RemoteError, match=r"OpenAICompatibleLLM\(model='m'\): chat completion"):
        chat.complete("hello")
