"""One known key, set through every option of every remote backend and chat model, searched for
everywhere it must not be: reprs, ``str``, configs, pickles, ``vars()`` (deep, for rerankit's
own objects), error messages, ``__cause__`` chains, tracebacks rendered with their locals,
framework serialisations, and every log record at DEBUG (rerankit, httpx, httpcore, openai,
cohere), while the server echoes the request's headers and URL back in its error bodies and
headers. Values that are not secrets (``X-Tenant: 1``) stay readable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.load import dumps

from rerankit import (
    CohereReranker,
    HTTPReranker,
    JinaReranker,
    LLMReranker,
    MixedbreadReranker,
    RemoteError,
    RemoteStatusError,
    VoyageReranker,
)
from rerankit.langchain import ChatOpenAICompatible
from rerankit.llama_index import OpenAICompatibleLLM
from rerankit.remote.secrets import MASK
from tests.loopback import LoopbackServer, Reply, Request
from tests.loopback.data import QUERY, SECRET, corpus

pytest_plugins = ["tests.loopback.fixtures"]

FAST = {"timeout": 2.0, "deadline": 5.0, "max_retries": 1}


def leaks(text: str) -> bool:
    """The key, or a telling piece of it, in ``text``."""
    return SECRET in text or SECRET[8:24] in text or "0123456789-SECRET" in text


def echo(request: Request, handler: object) -> Reply:
    """An error that echoes the request back (as some proxies and gateways do): every header
    and the URL in the body, the credentials in response headers."""
    url = f"{request.path}?{request.query}"
    echoed = {
        k: v for k, v in request.headers.items() if k in ("authorization", "api-key", "x-api-key")
    }
    others = {k: v for k, v in request.headers.items() if k not in echoed}
    seen = " ".join(f"{k}={v}" for k, v in [*echoed.items(), *others.items()])
    return Reply(
        401,
        {"message": f"denied at {url}: {seen}", "error": {"message": f"at {url} with {seen}"}},
        headers={f"X-Echo-{k}": v for k, v in echoed.items()} | {"X-Echo-Url": url},
    )


# -- every backend, every option -----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    server: str
    build: Callable[[LoopbackServer], Any]
    where: Callable[[Request], str]
    """Where the key must arrive at the server (the request still works)."""


def _authorization(r: Request) -> str:
    return r.headers.get("authorization", "")


CASES = [
    Case(
        "cohere-api_key",
        "cohere",
        lambda s: CohereReranker(api_key=SECRET, base_url=s.url, **FAST),
        _authorization,
    ),
    Case(
        "http-api_key",
        "tei",
        lambda s: HTTPReranker(url=s.url, api_key=SECRET, **FAST),
        _authorization,
    ),
    Case(
        "http-url-password",
        "tei",
        lambda s: HTTPReranker(url=s.url.replace("//", f"//user:{SECRET}@"), **FAST),
        _authorization,  # as Basic auth: decoded below
    ),
    Case(
        "http-url-query",
        "tei",
        lambda s: HTTPReranker(url=f"{s.url}/rerank?key={SECRET}", **FAST),
        lambda r: r.query,
    ),
    Case(
        "http-headers",
        "tei",
        lambda s: HTTPReranker(url=s.url, headers={"X-Api-Key": SECRET, "X-Tenant": "1"}, **FAST),
        lambda r: r.headers.get("x-api-key", ""),
    ),
    Case(
        "llm-api_key",
        "openai_server",
        lambda s: LLMReranker(model="m", api_key=SECRET, base_url=s.url + "/v1", **FAST),
        _authorization,
    ),
    Case(
        "llm-default_headers",
        "openai_server",
        lambda s: LLMReranker(
            model="m", base_url=s.url + "/v1", default_headers={"api-key": SECRET}, **FAST
        ),
        lambda r: r.headers.get("api-key", ""),
    ),
    Case(
        "llm-default_query",
        "openai_server",
        lambda s: LLMReranker(
            model="m", base_url=s.url + "/v1", default_query={"key": SECRET}, **FAST
        ),
        lambda r: r.query,
    ),
]
CASES += [
    Case(
        "voyage-api_key",
        "voyage",
        lambda s: VoyageReranker(api_key=SECRET, base_url=s.url + "/v1", **FAST),
        _authorization,
    ),
    Case(
        "jina-api_key",
        "jina",
        lambda s: JinaReranker(api_key=SECRET, base_url=s.url + "/v1", **FAST),
        _authorization,
    ),
    Case(
        "mixedbread-api_key",
        "mixedbread",
        lambda s: MixedbreadReranker(api_key=SECRET, base_url=s.url, **FAST),
        _authorization,
    ),
]
CHAT_CASES = [
    (cls, option)
    for cls in (ChatOpenAICompatible, OpenAICompatibleLLM)
    for option in ("api_key", "default_headers", "default_query")
]


def _chat(cls: type, option: str, server: LoopbackServer) -> Any:
    value: Any = {
        "api_key": SECRET,
        "default_headers": {"api-key": SECRET},
        "default_query": {"key": SECRET},
    }[option]
    return cls(
        model="m", base_url=server.url + "/v1", max_retries=1, timeout=2.0, **{option: value}
    )


def server_of(request: pytest.FixtureRequest, name: str) -> LoopbackServer:
    value = request.getfixturevalue(name)
    return value[0] if isinstance(value, tuple) else value  # type: ignore[no-any-return]


def texts_of_error(error: BaseException) -> Iterator[str]:
    """Everything an error shows: message, repr, its chain, and its tracebacks rendered plain
    and with every frame's locals (as Sentry-style reporters do)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        current = current.__cause__ or current.__context__
    yield "".join(traceback.format_exception(error))
    rendered = traceback.TracebackException.from_exception(error, capture_locals=True)
    yield "".join(rendered.format())


def deep_vars(obj: Any, depth: int = 4, seen: set[int] | None = None) -> Iterator[str]:
    """``repr`` of every attribute of ``obj``, and of rerankit's objects inside it."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth == 0:
        return
    seen.add(id(obj))
    try:
        attributes = dict(vars(obj))
    except TypeError:
        attributes = {}
    slots = getattr(type(obj), "__slots__", ())
    for name in slots if isinstance(slots, tuple) else ():
        if hasattr(obj, name):
            attributes[name] = getattr(obj, name)
    for value in attributes.values():
        yield repr(value)
        values = value.values() if isinstance(value, dict) else [value]
        for item in values:
            if type(item).__module__.startswith(("rerankit", "tests")):
                yield from deep_vars(item, depth - 1, seen)


def record_texts(records: list[logging.LogRecord]) -> Iterator[str]:
    for record in records:
        yield record.getMessage()
        yield record.exc_text or ""
        yield repr({k: v for k, v in vars(record).items() if k not in ("msg", "args")})


def assert_clean(texts: Iterator[str] | list[str], what: str) -> None:
    for text in texts:
        assert not leaks(text), f"the key leaks through {what}: {text[:300]}"


def fail_once(run: Callable[[], Any]) -> RemoteError:
    with pytest.raises(RemoteError) as info:
        run()
    return info.value


# -- rerankers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_key_never_shows_in_a_reranker(
    request: pytest.FixtureRequest, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = server_of(request, case.server)
    reranker = case.build(server)

    # it works, and the key reached the server where it belongs
    assert len(reranker.rerank(QUERY, corpus(3))) == 3
    import base64

    arrived = case.where(server.requests[-1])
    if case.name == "http-url-password":
        arrived = base64.b64decode(arrived.removeprefix("Basic ")).decode()
    assert SECRET in arrived.replace("%2D", "-")

    # reprs, configs, vars, pickles
    assert_clean([repr(reranker), str(reranker), json.dumps(reranker.to_config())], "reprs")
    assert_clean(deep_vars(reranker), "vars()")
    with pytest.raises(TypeError) as refused:
        pickle.dumps(reranker)
    assert_clean([str(refused.value)], "the pickling error")

    # a server that echoes the request in its errors, sync and async
    errors = []
    for run in (
        lambda: reranker.rerank(QUERY, corpus(2)),
        lambda: asyncio.run(reranker.arerank(QUERY, corpus(2))),
    ):
        server.clear()
        server.push_many(echo, 4)
        errors.append(fail_once(run))
    for error in errors:
        assert isinstance(error, RemoteStatusError) and error.status_code == 401
        assert MASK in str(error)  # the echoed key was masked, the message kept
        assert_clean(texts_of_error(error), "the error")

    # every log record of the run, at DEBUG, from every library
    names = {r.name.split(".")[0] for r in caplog.records}
    assert {"httpx", "httpcore"} & names or "httpx2" in names or "httpcore2" in names
    assert_clean(record_texts(caplog.records), "a log record")
    assert_clean([caplog.text], "the log output")


def test_query_keys_are_masked_in_request_log_lines(
    tei: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    HTTPReranker(url=f"{tei.url}/rerank?key={SECRET}&tenant=blue", **FAST).rerank(QUERY, ["a"])
    [line] = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert "key=**********" in line and "tenant=blue" in line and not leaks(line)


def test_non_secret_headers_stay_readable(tei: LoopbackServer) -> None:
    reranker = HTTPReranker(url=tei.url, headers={"X-Tenant": "1", "X-Api-Key": SECRET}, **FAST)
    assert reranker.to_config()["headers"] == {"X-Tenant": "1", "X-Api-Key": MASK}
    tei.push(Reply(403, {"message": "tenant 1 is over quota"}))
    error = fail_once(lambda: reranker.rerank(QUERY, ["a"]))
    assert "HTTP 403: tenant 1 is over quota" in str(error)
    assert tei.requests[-1].headers["x-tenant"] == "1"


def test_secret_values_can_be_declared(tei: LoopbackServer) -> None:
    from pydantic import SecretStr

    reranker = HTTPReranker(url=tei.url, headers={"X-Tenant": SecretStr("tenant-secret-7")})
    assert reranker.to_config()["headers"] == {"X-Tenant": MASK}
    assert reranker._redact("echo tenant-secret-7") == f"echo {MASK}"


# -- chat models -------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "option"), CHAT_CASES)
def test_the_key_never_shows_in_a_chat_model(
    openai_server: tuple[LoopbackServer, Any],
    caplog: pytest.LogCaptureFixture,
    cls: type,
    option: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    server, _ = openai_server
    chat = _chat(cls, option, server)
    ask = chat.invoke if cls is ChatOpenAICompatible else chat.complete
    aask = chat.ainvoke if cls is ChatOpenAICompatible else chat.acomplete
    ask("hello")
    sent = server.requests[-1]
    assert SECRET in " ".join([*sent.headers.values(), sent.query])

    serialised = [repr(chat), str(chat), str(chat.model_dump()), chat.model_dump_json()]
    if cls is ChatOpenAICompatible:
        serialised.append(dumps(chat))
    else:
        serialised += [str(chat.to_dict()), chat.to_json(), chat.json()]
    assert_clean(serialised, "a serialisation")
    assert MASK in chat.model_dump_json()
    assert_clean(deep_vars(chat), "vars()")
    with pytest.raises(TypeError) as refused:
        pickle.dumps(chat)
    assert_clean([str(refused.value)], "the pickling error")

    server.push(echo, echo)
    errors = [fail_once(lambda: ask("hello"))]
    errors.append(fail_once(lambda: asyncio.run(aask("hello"))))
    for error in errors:
        assert isinstance(error, RemoteStatusError) and MASK in str(error)
        assert "chat completion failed after 1 attempt" in str(error)
        assert_clean(texts_of_error(error), "the error")
    assert_clean(record_texts(caplog.records), "a log record")
    assert_clean([caplog.text], "the log output")


def test_a_masked_key_is_refused_not_sent(openai_server: tuple[LoopbackServer, Any]) -> None:
    from pydantic import ValidationError

    server, _ = openai_server
    chat = _chat(ChatOpenAICompatible, "api_key", server)
    dumped = chat.model_dump()
    assert dumped["api_key"] == MASK
    with pytest.raises(ValidationError, match="api_key is masked"):
        ChatOpenAICompatible(**dumped)
