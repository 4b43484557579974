"""A real peer server: Infinity (``infinity-emb``) serving the local cross-encoder folder on
127.0.0.1, called through ``HTTPReranker(api="cohere")``: its scores match rerankit's own
``CrossEncoderReranker`` on the same folder (both fp32).

Infinity pins older numpy and sentence-transformers, so it lives in its own virtual environment,
which takes minutes to create: this test runs only when ``RERANKIT_INFINITY_VENV`` names one
(``python -m venv DIR && DIR/bin/pip install torch==2.13.0 'infinity-emb[server,torch]==0.0.78'``)
and is skipped otherwise, as in CI; ``bench/bench_serve.py`` creates the environment itself and
runs the same check before its figures.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rerankit import CrossEncoderReranker, HTTPReranker
from tests._fixtures import CORPUS

VENV = os.environ.get("RERANKIT_INFINITY_VENV")
pytestmark = [
    pytest.mark.model,
    pytest.mark.infinity,
    pytest.mark.skipif(
        not VENV or not (Path(VENV) / "bin" / "infinity_emb").exists(),
        reason="set RERANKIT_INFINITY_VENV to a virtual environment with infinity-emb",
    ),
]

QUERIES = ["which database stores vectors", "how long to boil pasta", "capital of france"]
TEXTS = [text for _, text in CORPUS]


@pytest.fixture(scope="module")
def infinity(cross_encoder_path: str) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
    }
    proc = subprocess.Popen(
        [
            f"{VENV}/bin/infinity_emb",
            "v2",
            "--model-id",
            cross_encoder_path,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--engine",
            "torch",
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--no-bettertransformer",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 180
        while time.monotonic() < end and proc.poll() is None:
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("Infinity did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_http_reranker_against_real_infinity_matches_cross_encoder(
    infinity: str, cross_encoder_path: str
) -> None:
    remote = HTTPReranker(url=infinity, api="cohere", model=cross_encoder_path, batch_size=4)
    local = CrossEncoderReranker(model=cross_encoder_path, dtype="float32")
    for query in QUERIES:
        theirs = remote.rerank(query, TEXTS)
        mine = local.rerank(query, TEXTS)
        assert [r.index for r in theirs] == [r.index for r in mine]
        for a, b in zip(theirs, mine, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)
    again = asyncio.run(remote.arerank(QUERIES[0], TEXTS))
    assert [r.index for r in again] == [r.index for r in local.rerank(QUERIES[0], TEXTS)]
