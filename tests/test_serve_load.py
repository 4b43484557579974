"""Load and failover, bounded and on loopback only: 64 concurrent clients against a real
``rerankit serve`` process for a few seconds, every answer checked against its own request's
documents; then two server processes, one killed mid-load, clients on ``FallbackReranker``
losing no request. (The 30-second version with figures is ``bench/bench_serve.py``.)"""

from __future__ import annotations

import asyncio
import signal
import statistics
import threading
import time

import aiohttp

from rerankit import FallbackReranker, HTTPReranker, RetryPolicy
from tests.serving import ServerProcess, overlap

CLIENTS = 64
SECONDS = 3.0
WORDS = ["red", "apple", "pie", "green", "pear", "tart", "stone", "river", "cold", "orchard"]


def documents(client: int, n: int) -> tuple[str, list[str]]:
    """A query and 8 documents that carry this request's id (``c<client>-r<n>-d<j>``)."""
    query = " ".join(WORDS[(client + n + k) % len(WORDS)] for k in range(3))
    texts = [
        f"c{client}-r{n}-d{j} "
        + " ".join(WORDS[(client * 7 + n * 3 + j * k) % 10] for k in range(4))
        for j in range(8)
    ]
    return query, texts


def test_64_concurrent_clients_every_answer_is_its_own() -> None:
    with ServerProcess("--reranker", "overlap") as server:
        latencies: list[float] = []
        errors: list[str] = []

        async def client(number: int, http: aiohttp.ClientSession, end: float) -> int:
            done = 0
            while time.monotonic() < end:
                query, texts = documents(number, done)
                started = time.perf_counter()
                body = {"query": query, "documents": texts, "return_documents": True}
                async with http.post("/v2/rerank", json=body) as r:
                    status, answer = r.status, await r.json(content_type=None)
                latencies.append(time.perf_counter() - started)
                done += 1
                if status != 200:
                    errors.append(f"{status}: {str(answer)[:80]}")
                    continue
                rows = answer["results"]
                if sorted(x["index"] for x in rows) != list(range(len(texts))):
                    errors.append("indices")
                for x in rows:
                    text = x["document"]["text"]
                    if text != texts[x["index"]] or not text.startswith(f"c{number}-r{done - 1}-"):
                        errors.append(f"misattributed: {text[:20]}")
                    if abs(x["relevance_score"] - overlap(query, text)) > 1e-9:
                        errors.append("score")
            return done

        async def load() -> int:
            # aiohttp: httpx's own pool, not the server, is the bottleneck at 64 connections.
            connector = aiohttp.TCPConnector(limit=CLIENTS)
            async with aiohttp.ClientSession(server.url, connector=connector) as http:
                end = time.monotonic() + SECONDS
                counts = await asyncio.gather(*(client(i, http, end) for i in range(CLIENTS)))
            return sum(counts)

        total = asyncio.run(load())
    assert errors == []
    assert total >= CLIENTS
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"\n{total} requests in {SECONDS:.0f} s ({total / SECONDS:.0f}/s), "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
    )


def test_killing_one_of_two_servers_mid_load_loses_no_request() -> None:
    fast = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)
    with ServerProcess("--reranker", "overlap") as a, ServerProcess("--reranker", "overlap") as b:

        def member(url: str) -> HTTPReranker:
            return HTTPReranker(url=url, api="tei", timeout=5.0, deadline=10.0, retry=fast)

        pairs = [(a.url, b.url), (b.url, a.url)]
        outcomes: list[tuple[float, str, bool]] = []
        failures: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client(number: int) -> None:
            first, second = pairs[number % 2]
            reranker = FallbackReranker([member(first), member(second)], retrieval_order=True)
            n = 0
            while not stop.is_set():
                query, texts = documents(number, n)
                n += 1
                try:
                    results = reranker.rerank(query, texts)
                except Exception as exc:  # a lost request
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                ok = (
                    results.backend == "http"
                    and all(abs(r.score - overlap(query, texts[r.index])) < 1e-9 for r in results)
                    and len(results) == len(texts)
                )
                with lock:
                    outcomes.append((time.monotonic(), results.backend, ok))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        started = time.monotonic()
        while len(outcomes) < 100 and time.monotonic() - started < 30:
            time.sleep(0.05)  # under load on both servers: now kill one
        killed_at = time.monotonic()
        a.signal(signal.SIGKILL)
        time.sleep(SECONDS)
        stop.set()
        for t in threads:
            t.join(60)
    assert failures == []
    before = [o for o in outcomes if o[0] < killed_at]
    after = [o for o in outcomes if o[0] > killed_at + 0.5]
    assert len(before) >= 100 and after, (len(before), len(after))
    assert all(ok for _, _, ok in outcomes), [o for o in outcomes if not o[2]][:3]
    print(f"\n{len(before)} requests before the kill, {len(after)} after it, none lost")
