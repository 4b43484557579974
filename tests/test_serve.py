"""``rerankit serve`` on 127.0.0.1 (uvicorn on a thread) over a fake scorer at the model
boundary: the three wire formats, thresholds, bad requests (4xx JSON naming the field, refused
before any model work), limits, auth, metrics, access logs and graceful stop."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from pydantic import SecretStr

from rerankit import BackendError, Candidate, ScoreBatch
from rerankit.serve import BackgroundServer, Limits, RerankService, create_app
from tests._fixtures import OverlapReranker

TOKEN = "serve-token-0123456789-SECRET"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUERY = "red apple pie"
DOCS = ["green pear tart", "red apple pie", "apple juice", "red wine", "stone"]


class Gate(OverlapReranker):
    """Overlap scores; waits for ``release`` when ``hold`` is set; fails when ``fail`` is."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = False

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        if self.fail:
            raise BackendError("the model fell over")
        if self.hold:
            self.entered.set()
            assert self.release.wait(10)
        return super()._score(query, candidates)


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate()


@pytest.fixture(scope="module")
def server(gate: Gate) -> Iterator[BackgroundServer]:
    limits = Limits(max_documents=1000, max_request_bytes=1024 * 1024, max_in_flight=2)
    service = RerankService(gate, limits=limits, token=SecretStr(TOKEN))
    with BackgroundServer(create_app(service)) as running:
        yield running


@pytest.fixture
def http(server: BackgroundServer, gate: Gate) -> Iterator[httpx.Client]:
    gate.hold, gate.fail = False, False
    gate.entered.clear()
    gate.release.clear()
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=10.0) as client:
        yield client


def local(top_n: int | None = None, min_score: float | None = None) -> list[tuple[int, float]]:
    results = OverlapReranker().rerank(QUERY, DOCS, top_n=top_n, min_score=min_score)
    return [(r.index, r.score) for r in results]


# -- the wire formats ----------------------------------------------------------------------------


def test_cohere_v2_answers_the_in_process_order_and_scores(http: httpx.Client) -> None:
    r = http.post("/v2/rerank", json={"model": "m", "query": QUERY, "documents": DOCS})
    assert r.status_code == 200
    body = r.json()
    assert [(x["index"], x["relevance_score"]) for x in body["results"]] == local()
    assert body["meta"]["api_version"]["version"] == "2"
    assert "document" not in body["results"][0]
    assert body["rerankit"]["score_space"] == "probability"


def test_top_n_return_documents_and_min_score(http: httpx.Client) -> None:
    body = http.post(
        "/v2/rerank",
        json={
            "model": "m",
            "query": QUERY,
            "documents": DOCS,
            "top_n": 2,
            "return_documents": True,
        },
    ).json()
    assert [(x["index"], x["relevance_score"]) for x in body["results"]] == local(top_n=2)
    assert [x["document"]["text"] for x in body["results"]] == [DOCS[i] for i, _ in local(2)]
    body = http.post("/rerank", json={"query": QUERY, "documents": DOCS, "min_score": 0.5}).json()
    assert [(x["index"], x["relevance_score"]) for x in body["results"]] == local(min_score=0.5)
    assert body["rerankit"]["dropped"] == len(DOCS) - len(local(min_score=0.5))
    empty = http.post("/rerank", json={"query": QUERY, "texts": ["stone"], "min_score": 0.9})
    assert empty.status_code == 200 and empty.json() == []


def test_tei_body_raw_scores_and_return_text(http: httpx.Client) -> None:
    r = http.post(
        "/rerank",
        json={
            "query": QUERY,
            "texts": DOCS,
            "return_text": True,
            "raw_scores": True,
            "truncate": True,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list)
    assert [(x["index"], x["score"]) for x in body] == local()  # overlap: raw == calibrated
    assert [x["text"] for x in body] == [DOCS[i] for i, _ in local()]


def test_infinity_and_jina_body_on_rerank(http: httpx.Client) -> None:
    docs: list[object] = [{"text": d} for d in DOCS[:2]] + DOCS[2:]
    body = http.post(
        "/rerank",
        json={
            "model": "bge",
            "query": QUERY,
            "documents": docs,
            "top_n": 3,
            "return_documents": True,
        },
    ).json()
    assert body["object"] == "rerank" and body["model"] == "bge"
    assert [(x["index"], x["relevance_score"]) for x in body["results"]] == local(top_n=3)


def test_duplicate_documents_each_get_their_copy_score(http: httpx.Client, gate: Gate) -> None:
    before = len(gate.calls)
    body = http.post("/rerank", json={"query": QUERY, "texts": ["apple", "stone", "apple"]})
    rows = {x["index"]: x["score"] for x in body.json()}
    assert sorted(rows) == [0, 1, 2] and rows[0] == rows[2]
    assert gate.calls[before:] == [["apple", "stone"]]  # scored once


# -- bad requests ----------------------------------------------------------------------------------


BIG = "x" * (10 * 1024 * 1024)
BAD = [
    ("no token", "/v2/rerank", {"query": QUERY, "documents": DOCS}, {}, 401, ""),
    (
        "wrong token",
        "/v2/rerank",
        {"query": QUERY, "documents": DOCS},
        {"Authorization": "Bearer nope"},
        401,
        "",
    ),
    (
        "wrong scheme",
        "/rerank",
        {"query": QUERY, "texts": DOCS},
        {"Authorization": f"Basic {TOKEN}"},
        401,
        "",
    ),
    ("empty query", "/v2/rerank", {"query": "  ", "documents": DOCS}, AUTH, 422, "query"),
    ("no documents", "/v2/rerank", {"query": QUERY, "documents": []}, AUTH, 422, "documents"),
    ("no texts", "/rerank", {"query": QUERY, "texts": []}, AUTH, 422, "texts"),
    (
        "10001 documents",
        "/rerank",
        {"query": QUERY, "texts": ["d"] * 10_001},
        AUTH,
        413,
        "documents",
    ),
    ("10 MB document", "/rerank", {"query": QUERY, "texts": [BIG]}, AUTH, 413, ""),
    ("query not a string", "/v2/rerank", {"query": 3, "documents": DOCS}, AUTH, 422, "query"),
    (
        "documents a string",
        "/v2/rerank",
        {"query": QUERY, "documents": "d"},
        AUTH,
        422,
        "documents",
    ),
    ("document a number", "/rerank", {"query": QUERY, "texts": ["a", 2]}, AUTH, 422, "texts.1"),
    (
        "top_n a string",
        "/v2/rerank",
        {"query": QUERY, "documents": DOCS, "top_n": "2"},
        AUTH,
        422,
        "top_n",
    ),
    (
        "top_n zero",
        "/v2/rerank",
        {"query": QUERY, "documents": DOCS, "top_n": 0},
        AUTH,
        422,
        "top_n",
    ),
    (
        "flag a string",
        "/rerank",
        {"query": QUERY, "texts": DOCS, "raw_scores": "yes"},
        AUTH,
        422,
        "raw_scores",
    ),
    (
        "min_score over 1",
        "/rerank",
        {"query": QUERY, "texts": DOCS, "min_score": 2},
        AUTH,
        422,
        "min_score",
    ),
    (
        "unknown field",
        "/v2/rerank",
        {"query": QUERY, "documents": DOCS, "temperature": 1},
        AUTH,
        422,
        "temperature",
    ),
    (
        "unknown document field",
        "/rerank",
        {"query": QUERY, "documents": [{"txt": "a"}]},
        AUTH,
        422,
        "documents.0",
    ),
    ("not an object", "/rerank", [QUERY], AUTH, 400, ""),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "field"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_bad_requests_get_a_json_4xx_before_any_model_work(
    server: BackgroundServer,
    gate: Gate,
    path: str,
    body: object,
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    before = len(gate.calls)
    r = httpx.post(server.url + path, json=body, headers=headers, timeout=30.0)
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem["message"] and problem["error"] == problem["message"]
    if field:
        assert problem["field"] == field
        assert problem["message"].startswith(f"{field}: ")
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    assert len(gate.calls) == before  # refused before the model


def test_malformed_json_and_unknown_routes_are_json_4xx(http: httpx.Client) -> None:
    r = http.post("/rerank", content=b'{"query": "a", "texts": [', headers=AUTH)
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = http.post("/rerank", content=b"\xff\xfe", headers=AUTH)
    assert r.status_code == 400
    assert http.get("/v1/nothing").status_code == 404
    assert http.get("/rerank").json()["message"] == "method not allowed: GET /rerank"


def test_a_body_over_the_limit_without_content_length_is_refused(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "a", "texts": ["'
        for _ in range(40):
            yield b"y" * 32768
        yield b'"]}'

    r = http.post("/rerank", content=chunks())
    assert r.status_code == 413 and "larger than" in r.json()["message"]


def test_a_backend_failure_is_a_502_and_the_server_goes_on(http: httpx.Client, gate: Gate) -> None:
    gate.fail = True
    r = http.post("/rerank", json={"query": QUERY, "texts": DOCS})
    assert r.status_code == 502 and "fell over" in r.json()["message"]
    gate.fail = False
    assert http.post("/rerank", json={"query": QUERY, "texts": DOCS}).status_code == 200


def test_requests_over_the_in_flight_limit_get_429_with_retry_after(
    server: BackgroundServer, http: httpx.Client, gate: Gate
) -> None:
    gate.hold = True
    body = {"query": QUERY, "texts": DOCS}
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(http.post, "/rerank", json=body) for _ in range(2)]
        assert gate.entered.wait(10)
        for _ in range(500):  # until both slots are taken (both requests wait for the model)
            if httpx.get(server.url + "/health").json()["in_flight"] == 2:
                break
            threading.Event().wait(0.01)
        before = len(gate.calls)
        r = httpx.post(server.url + "/rerank", json=body, headers=AUTH, timeout=10.0)
        assert r.status_code == 429
        assert len(gate.calls) == before
        assert r.headers["retry-after"] == "1"
        assert "retry later" in r.json()["message"]
        gate.release.set()
        assert [f.result().status_code for f in held] == [200, 200]


def test_health_and_metrics(server: BackgroundServer, http: httpx.Client) -> None:
    http.post("/rerank", json={"query": QUERY, "texts": DOCS})
    httpx.post(server.url + "/rerank", json={"query": QUERY, "texts": DOCS})  # no token
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["backend"] == "overlap"
    text = httpx.get(server.url + "/metrics").text
    assert 'rerankit_serve_requests_total{route="/rerank",status="200"}' in text
    assert 'rerankit_serve_rejected_total{reason="unauthorized"}' in text
    assert 'rerankit_serve_documents_bucket{le="8.0",route="/rerank"}' in text
    assert "rerankit_serve_request_seconds_bucket" in text
    assert "rerankit_serve_in_flight 0.0" in text


def test_access_logs_have_no_body_no_query_and_no_token(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_query = "zebra-private-question"
    http.post("/rerank", json={"query": secret_query, "texts": ["private-document-text"]})
    records = [r for r in caplog.records if r.name == "rerankit.serve.access"]
    assert records, "no access log"
    fields = records[-1].fields  # type: ignore[attr-defined]
    assert fields["status"] == 200 and fields["documents"] == 1 and fields["path"] == "/rerank"
    everything = " ".join(
        f"{r.getMessage()} {json.dumps(getattr(r, 'fields', {}))}" for r in caplog.records
    )
    for hidden in (TOKEN, secret_query, "private-document-text"):
        assert hidden not in everything


def test_stop_finishes_the_requests_in_flight() -> None:
    gate = Gate()
    gate.hold = True
    running = BackgroundServer(create_app(RerankService(gate))).start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            httpx.post, running.url + "/rerank", json={"query": QUERY, "texts": DOCS}, timeout=20
        )
        assert gate.entered.wait(10)
        stopper = threading.Thread(target=running.stop)
        stopper.start()
        gate.release.set()
        response = pending.result()
        stopper.join(20)
    assert response.status_code == 200
    assert [(x["index"], x["score"]) for x in response.json()] == local()
    assert not stopper.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.post(running.url + "/rerank", json={"query": QUERY, "texts": DOCS}, timeout=2)
