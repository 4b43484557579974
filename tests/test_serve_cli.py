"""``rerankit serve`` as a process: user mistakes are one stderr line with exit code 2, and
SIGTERM lets the requests in flight finish before the process exits 0."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading

import httpx
import pytest

from tests.serving import ServerProcess, overlap
from tests.test_cli_errors import rerankit


def assert_one_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rerankit serve: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def taken_port() -> object:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


MISTAKES = [
    (["--reranker", "nope:model"], ["unknown reranker backend 'nope'"]),
    (["--token-env", "RERANKIT_TEST_NO_SUCH_VAR"], ["RERANKIT_TEST_NO_SUCH_VAR is not set"]),
    (["--max-documents", "0"], ["argument --max-documents", "must be 1 or more"]),
    (["--max-in-flight", "many"], ["argument --max-in-flight", "expected a whole number"]),
    (["--port", "70000"], ["--port must be in 0-65535"]),
    (["--reranker", "none", "--shutdown-timeout", "-1"], ["shutdown_timeout must be >= 0"]),
]


@pytest.mark.parametrize(("args", "fragments"), MISTAKES, ids=[m[0][-1] for m in MISTAKES])
def test_serve_mistakes_are_one_line(args: list[str], fragments: list[str]) -> None:
    assert_one_line(rerankit("serve", *args), *fragments)


def test_a_taken_port_is_one_line(taken_port: int) -> None:
    proc = rerankit("serve", "--reranker", "none", "--port", str(taken_port))
    assert_one_line(proc, "ddress already in use")


def test_sigterm_finishes_the_requests_in_flight() -> None:
    server = ServerProcess("--reranker", "slow?delay=1.0").start()
    try:
        answers: list[httpx.Response] = []
        body = {"query": "red apple", "texts": ["red apple pie", "stone"]}
        sender = threading.Thread(
            target=lambda: answers.append(httpx.post(server.url + "/rerank", json=body, timeout=20))
        )
        sender.start()
        for _ in range(200):  # until the request is being scored
            if httpx.get(server.url + "/health").json()["in_flight"] == 1:
                break
            threading.Event().wait(0.02)
        server.signal(signal.SIGTERM)
        sender.join(20)
        assert server.wait(20) == 0
    finally:
        server.stop()
    (answer,) = answers
    assert answer.status_code == 200
    assert [(x["index"], x["score"]) for x in answer.json()] == [
        (0, overlap("red apple", "red apple pie")),
        (1, 0.0),
    ]
