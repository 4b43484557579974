"""Ray, on a local cluster started in the test (``ray.init(num_cpus=2)``): the Ray Data job of
``rerankit rerank-run`` gives the in-process reranking of the same run, and the Ray Serve
deployment of ``rerankit serve`` answers the in-process order and scores, batching concurrent
requests with ``@serve.batch``. Skipped where Ray is not installed (``rerankit[ray]``)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rerankit import EmbeddingReranker, HTTPReranker
from rerankit.cli import main
from rerankit.eval import BeirDataset, BeirDocument, Run, read_run, rerank_run
from tests._fixtures import CORPUS

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

pytestmark = pytest.mark.model

TOKEN_ENV = "RERANKIT_TEST_RAY_TOKEN"
TOKEN = "ray-token-0123456789"
QUERIES = {
    "q1": "which database stores vectors",
    "q2": "what is the capital of france",
    "q3": "how long to boil pasta",
    "q4": "how are documents ranked",
    "q5": "coffee water temperature",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    os.environ[TOKEN_ENV] = TOKEN  # the replicas read it from their environment
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        os.environ.pop(TOKEN_ENV, None)


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BeirDataset, Run]:
    import json

    root = tmp_path_factory.mktemp("ray-beir") / "toy"
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as out:
        for key, text in CORPUS:
            out.write(json.dumps({"_id": key, "title": "", "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as out:
        for qid, text in QUERIES.items():
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\tqdrant\t1\n" for q in QUERIES)
    )
    lines = [
        f"{qid} Q0 {key} {rank} {10 - rank} bm25"
        for qid in QUERIES
        for rank, (key, _) in enumerate(CORPUS, start=1)
    ]
    (root / "bm25.run").write_text("\n".join(lines) + "\n")
    corpus = {key: BeirDocument("", text) for key, text in CORPUS}
    data = BeirDataset(corpus=corpus, queries=QUERIES, qrels={})
    return root, data, read_run(root / "bm25.run")


def test_ray_data_job_equals_the_in_process_reranking(
    cluster: Any, beir: tuple[Path, BeirDataset, Run], tmp_path: Path
) -> None:
    root, data, first = beir
    local, _, _ = rerank_run(data, first, EmbeddingReranker(), progress=False)
    output = tmp_path / "reranked.run"
    code = main(
        [
            "rerank-run",
            str(root),
            "--run",
            str(root / "bm25.run"),
            "--reranker",
            "embedding",
            "--output",
            str(output),
            "--actors",
            "1",
        ]
    )
    assert code == 0
    assert output.read_text() == local.to_trec()
    assert read_run(output).scores() == local.scores()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ray_serve_deployment_answers_like_the_in_process_reranker(cluster: Any) -> None:
    from rerankit.serve.ray import RayOptions, deployment

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        app = deployment(
            "embedding",
            token_env=TOKEN_ENV,
            options=RayOptions(max_batch_size=8, batch_wait_timeout_s=0.05),
        )
        serve.run(app, name="rerankit", route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        local = EmbeddingReranker()
        texts = [text for _, text in CORPUS]
        client = HTTPReranker(url=url, api="tei", api_key=TOKEN, timeout=30.0, deadline=60.0)

        async def many() -> list[Any]:
            return list(await asyncio.gather(*(client.arerank(q, texts) for q in QUERIES.values())))

        for query, results in zip(QUERIES.values(), asyncio.run(many()), strict=True):
            want = {r.index: r.score for r in local.rerank(query, texts)}
            assert {r.index: r.score for r in results} == pytest.approx(want, abs=1e-6)
            scores = [r.score for r in results]
            assert scores == sorted(scores, reverse=True)
        denied = httpx.post(url + "/rerank", json={"query": "q", "texts": ["a"]}, timeout=30)
        assert denied.status_code == 401
        metrics = httpx.get(url + "/metrics", timeout=30).text
        count = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("rerankit_serve_batch_requests_count")
        )
        assert 1 <= count < len(QUERIES)  # @serve.batch put several requests in one batch
    finally:
        serve.shutdown()
