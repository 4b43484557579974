"""Serving benchmark: ``rerankit serve`` against the in-process call and a real Infinity server,
then a 30-second load and a kill-one-of-two fault run, all on loopback.

    python bench/bench_serve.py [--seconds 8] [--load-seconds 30] [--infinity-venv DIR]

One model for all three: a MiniLM cross-encoder folder (MiniLM weights and a seeded 1-logit
head, as the tests build it), fp32 on the CPU. Requests are DL19 queries, each with its 20 best
BM25 passages (``../shared/datasets/trec-dl-2019-passage``); 1, 8 and 64 concurrent clients
(aiohttp on one event loop; in-process: coroutines calling ``arerank`` on a micro-batching
``CrossEncoderReranker``) run for ``--seconds`` each. Infinity (``infinity-emb``, which pins
older numpy and sentence-transformers) runs in its own virtual environment, created under /tmp
at run time when ``--infinity-venv`` is not given (never committed), serving the same folder;
its scores are checked against rerankit's ``CrossEncoderReranker`` first (bf16/fp32 tolerance).

The load run: 64 clients for ``--load-seconds`` against ``rerankit serve``, every answer's
documents checked against its own request's ids (``return_documents``), with throughput,
p50/p95/p99 and the shared batch sizes from ``/metrics``. The fault run: two server processes,
64 client threads on ``FallbackReranker([HTTPReranker(a), HTTPReranker(b)])`` (half of them
preferring each), one server killed (SIGKILL) a third of the way in; lost requests are counted.
Writes "## Serving (rerankit serve, Infinity)" in ``docs/benchmarks.md``. The machine is shared:
medians are quoted and the load average is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import (
    BENCHMARKS_MD,
    DATASETS,
    ROOT,
    CpuMeter,
    cpu_model,
    load_average,
    version,
    write_section,
)
from bench_speed import build_cross_encoder

HEADING = "## Serving (rerankit serve, Infinity)"
DATA = DATASETS / "trec-dl-2019-passage"
DOCS_PER_REQUEST = 10
WORDS_PER_PASSAGE = 48
"""Passages are cut to their first words: on a 2-core machine shared with other jobs, full DL19
passages leave every system model-bound at a few requests per second, and the serving overheads
(what this compares) disappear in the noise."""
INFINITY = "infinity-emb[server,torch]==0.0.78"


# -- workload ------------------------------------------------------------------------------------


def workload() -> list[tuple[str, list[str]]]:
    texts: dict[str, str] = {}
    with (DATA / "corpus.jsonl").open() as f:
        for line in f:
            record = json.loads(line)
            texts[record["_id"]] = record["text"]
    out = []
    with (DATA / "bm25_top100.jsonl").open() as f:
        for line in f:
            record = json.loads(line)
            ids = [c["docid"] for c in record["candidates"][:DOCS_PER_REQUEST]]
            cut = [" ".join(texts[i].split()[:WORDS_PER_PASSAGE]) for i in ids]
            out.append((record["query"], cut))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


async def drive(
    call: Callable[[int, int], Awaitable[None]], clients: int, seconds: float
) -> dict[str, float]:
    """``clients`` coroutines calling ``call(client, n)`` until ``seconds`` pass."""
    latencies: list[float] = []
    end = time.monotonic() + seconds

    async def one(client: int) -> None:
        n = 0
        while time.monotonic() < end:
            started = time.perf_counter()
            await call(client, n)
            latencies.append(time.perf_counter() - started)
            n += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(clients)))
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "pairs_per_s": len(latencies) * DOCS_PER_REQUEST / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


# -- servers -------------------------------------------------------------------------------------


class Process:
    """A server process; ``ready`` is a regex its output prints once it listens."""

    def __init__(self, argv: list[str], ready: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self.match: re.Match[str] | None = None
        found = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if len(self.lines) < 500:
                    self.lines.append(line)
                if self.match is None:
                    self.match = re.search(ready, line)
                    if self.match:
                        found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(300) or self.match is None:
            self.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.lines[-30:]))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


def rerankit_serve(model: str) -> tuple[Process, str]:
    spec = f"cross-encoder:{model}?dtype=float32"
    env = {"PYTHONPATH": str(ROOT / "src"), "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    process = Process(
        [
            sys.executable,
            "-m",
            "rerankit.cli",
            "serve",
            "--reranker",
            spec,
            "--port",
            "0",
            "--max-in-flight",
            "256",
        ],
        r" on (http://\S+)",
        env,
    )
    assert process.match is not None
    return process, process.match.group(1)


def infinity_venv(given: str | None) -> Path:
    if given:
        return Path(given)
    venv = Path(tempfile.gettempdir()) / "rerankit-bench-infinity"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", INFINITY], check=True)
    return venv


def infinity_serve(venv: Path, model: str, port: int) -> tuple[Process, str]:
    process = Process(
        [
            str(venv / "bin" / "infinity_emb"),
            "v2",
            "--model-id",
            model,
            "--port",
            str(port),
            "--engine",
            "torch",
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--no-bettertransformer",
            "--batch-size",
            "32",
            "--host",
            "127.0.0.1",
        ],
        r"Uvicorn running on|Application startup complete",
        {
            "OMP_WAIT_POLICY": "PASSIVE",
            "HF_HUB_OFFLINE": "1",
            "INFINITY_ANONYMOUS_USAGE_STATS": "0",
            "DO_NOT_TRACK": "1",
        },
    )
    return process, f"http://127.0.0.1:{port}"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the measurements ---------------------------------------------------------------------------


def throughput_http(
    url: str,
    path: str,
    body: Callable[[str, list[str]], dict[str, Any]],
    work: list[tuple[str, list[str]]],
    levels: list[int],
    seconds: float,
) -> dict[int, dict[str, float]]:
    import aiohttp

    out = {}
    for clients in levels:

        async def run(clients: int = clients) -> dict[str, float]:
            connector = aiohttp.TCPConnector(limit=clients)
            async with aiohttp.ClientSession(url, connector=connector) as http:

                async def call(client: int, n: int) -> None:
                    query, texts = work[(client * 7 + n) % len(work)]
                    async with http.post(path, json=body(query, texts)) as r:
                        r.raise_for_status()
                        await r.read()

                await call(0, 0)  # warm up
                return await drive(call, clients, seconds)

        out[clients] = asyncio.run(run())
    return out


def throughput_in_process(
    model: str, work: list[tuple[str, list[str]]], levels: list[int], seconds: float
) -> dict[int, dict[str, float]]:
    from rerankit import CrossEncoderReranker

    reranker = CrossEncoderReranker(model=model, dtype="float32", micro_batching=True)
    reranker.rerank("warm up", ["warm up"])
    out = {}
    for clients in levels:

        async def call(client: int, n: int) -> None:
            query, texts = work[(client * 7 + n) % len(work)]
            await reranker.arerank(query, texts)

        out[clients] = asyncio.run(drive(call, clients, seconds))
    return out


def parity(url: str, model: str, work: list[tuple[str, list[str]]]) -> float:
    """Largest score difference between Infinity (through HTTPReranker) and rerankit."""
    from rerankit import CrossEncoderReranker, HTTPReranker

    remote = HTTPReranker(url=url, api="cohere", model=model)
    local = CrossEncoderReranker(model=model, dtype="float32")
    worst = 0.0
    for query, texts in work[:10]:
        theirs = {r.index: r.score for r in remote.rerank(query, texts)}
        mine = {r.index: r.score for r in local.rerank(query, texts)}
        worst = max(worst, max(abs(theirs[i] - mine[i]) for i in mine))
    return worst


def batch_counters(url: str) -> dict[str, float]:
    """The shared-batch counters of a server's ``/metrics``."""
    import httpx

    text = httpx.get(url + "/metrics", timeout=30).text
    pattern = r"^(rerankit_serve_batch_\w+?_(?:sum|count)) (\S+)$"
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, text, re.M)}


def load_run(url: str, work: list[tuple[str, list[str]]], seconds: float) -> dict[str, Any]:
    import aiohttp

    errors: list[str] = []

    async def run() -> dict[str, float]:
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(url, connector=connector) as http:

            async def call(client: int, n: int) -> None:
                query, base = work[(client * 7 + n) % len(work)]
                texts = [f"[c{client}-r{n}-d{j}] {t}" for j, t in enumerate(base)]
                body = {"query": query, "documents": texts, "return_documents": True}
                async with http.post("/v2/rerank", json=body) as r:
                    if r.status != 200:
                        errors.append(f"status {r.status}")
                        return
                    rows = (await r.json())["results"]
                if sorted(x["index"] for x in rows) != list(range(len(texts))) or any(
                    x["document"]["text"] != texts[x["index"]] for x in rows
                ):
                    errors.append("misattributed")

            return await drive(call, 64, seconds)

    before = batch_counters(url)
    figures: dict[str, Any] = dict(asyncio.run(run()))
    after = batch_counters(url)
    value = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    batches = value.get("rerankit_serve_batch_requests_count", 0.0)
    figures["errors"] = len(errors)
    figures["batches"] = batches
    figures["requests_per_batch"] = value.get("rerankit_serve_batch_requests_sum", 0.0) / (
        batches or 1
    )
    figures["pairs_per_batch"] = value.get("rerankit_serve_batch_documents_sum", 0.0) / (
        batches or 1
    )
    return figures


def fault_run(
    model: str, work: list[tuple[str, list[str]]], seconds: float, clients: int
) -> dict[str, Any]:
    from rerankit import FallbackReranker, HTTPReranker, RetryPolicy

    (a, url_a), (b, url_b) = rerankit_serve(model), rerankit_serve(model)
    fast = RetryPolicy(max_retries=2, base_delay=0.05, max_delay=0.2)
    done: list[tuple[float, str]] = []
    lost: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        urls = (url_a, url_b) if number % 2 else (url_b, url_a)
        reranker = FallbackReranker(
            [HTTPReranker(url=u, api="tei", timeout=30, deadline=60, retry=fast) for u in urls]
        )
        n = 0
        while not stop.is_set():
            query, texts = work[(number * 7 + n) % len(work)]
            n += 1
            try:
                results = reranker.rerank(query, texts)
                ok = results.backend == "http" and results.candidates == len(texts)
            except Exception as exc:
                with lock:
                    lost.append(type(exc).__name__)
                continue
            with lock:
                done.append((time.monotonic(), "ok" if ok else "degraded"))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds / 3)
    killed_at = time.monotonic()
    a.kill()
    time.sleep(seconds * 2 / 3)
    stop.set()
    for t in threads:
        t.join(120)
    b.kill()
    wall = time.monotonic() - started
    return {
        "requests": len(done),
        "before_kill": sum(1 for at, _ in done if at < killed_at),
        "after_kill": sum(1 for at, _ in done if at >= killed_at),
        "degraded": sum(1 for _, how in done if how != "ok"),
        "lost": len(lost),
        "rps": len(done) / wall,
        "clients": clients,
    }


# -- the report ----------------------------------------------------------------------------------


def medians(
    found: list[dict[int, dict[str, float]]], levels: list[int]
) -> dict[int, dict[str, float]]:
    """Per concurrency level, the median of each figure over the rounds."""
    return {
        clients: {
            key: statistics.median(r[clients][key] for r in found) for key in found[0][clients]
        }
        for clients in levels
    }


def table(rows: dict[str, dict[int, dict[str, float]]], levels: list[int]) -> str:
    lines = [
        "| system | clients | requests/s | pairs/s | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, by_level in rows.items():
        for clients in levels:
            f = by_level.get(clients)
            if f is None:
                continue
            lines.append(
                f"| {name} | {clients} | {f['rps']:.1f} | {f['pairs_per_s']:.0f} | "
                f"{f['p50_ms']:.0f} | {f['p95_ms']:.0f} | {f['p99_ms']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--fault-seconds", type=float, default=20.0)
    parser.add_argument("--fault-clients", type=int, default=16)
    parser.add_argument("--levels", default="1,8,64")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (medians are quoted)")
    parser.add_argument("--infinity-venv", default=None)
    parser.add_argument("--no-infinity", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    work = workload()
    load_before = load_average()
    meter = CpuMeter()
    rows: dict[str, dict[int, dict[str, float]]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build_cross_encoder(Path(tmp))
        server, url = rerankit_serve(model)
        infinity: Process | None = None
        worst: float | None = None
        if not args.no_infinity:
            venv = infinity_venv(args.infinity_venv)
            infinity, iurl = infinity_serve(venv, model, free_port())
            worst = parity(iurl, model, work)
            infinity_name = f"Infinity {version_in(venv)} (/rerank)"
        runs: dict[str, list[dict[int, dict[str, float]]]] = {}
        try:
            # Rounds interleave the systems, so that a change in the machine's load hits all.
            for _ in range(args.repeats):
                runs.setdefault("in-process (arerank, micro-batching)", []).append(
                    throughput_in_process(model, work, levels, args.seconds)
                )
                runs.setdefault("rerankit serve (TEI /rerank)", []).append(
                    throughput_http(
                        url,
                        "/rerank",
                        lambda q, t: {"query": q, "texts": t},
                        work,
                        levels,
                        args.seconds,
                    )
                )
                if infinity is not None:
                    runs.setdefault(infinity_name, []).append(
                        throughput_http(
                            iurl,
                            "/rerank",
                            lambda q, t: {"query": q, "documents": t, "model": model},
                            work,
                            levels,
                            args.seconds,
                        )
                    )
            if infinity is not None:
                infinity.kill(signal.SIGTERM)
            load = load_run(url, work, args.load_seconds)
        finally:
            server.kill(signal.SIGTERM)
            if infinity is not None:
                infinity.kill(signal.SIGTERM)
        rows = {name: medians(found, levels) for name, found in runs.items()}
        fault = fault_run(model, work, args.fault_seconds, args.fault_clients)
    share = meter.stop()
    print(table(rows, levels))
    print(json.dumps({"load": load, "fault": fault, "parity": worst}, indent=1))
    if worst is not None:
        notes.append(
            f'Infinity\'s scores, read through `HTTPReranker(api="cohere")`, match '
            f"`CrossEncoderReranker` on the same folder to {worst:.1e} at most (10 queries x "
            f"{DOCS_PER_REQUEST} passages; both fp32)."
        )
    section = f"""{HEADING}

`python bench/bench_serve.py` ({datetime.date.today().isoformat()}, {cpu_model()},
{os.cpu_count()} cores, Python {platform.python_version()}, torch {version("torch")},
uvicorn {version("uvicorn")}). One model for every system: a MiniLM cross-encoder folder (MiniLM
weights, seeded 1-logit head), fp32 on the CPU; each request is a DL19 query with its
{DOCS_PER_REQUEST} best BM25 passages, cut to their first {WORDS_PER_PASSAGE} words;
{args.seconds:.0f} s of requests per row (plus the drain of those in flight), clients on
loopback (aiohttp on one event loop, in the same process as the in-process rows). Each figure
is the median of {args.repeats} rounds that interleave the systems. Load average before the
run: {load_before}; after: {load_average()}. {share.describe()}

{table(rows, levels)}

{" ".join(notes)}

**Load** (64 clients, {args.load_seconds:.0f} s, `rerankit serve`, every answer's documents checked
against its own request's ids): {load["requests"]} requests, {load["rps"]:.1f} requests/s
({load["pairs_per_s"]:.0f} pairs/s), p50 {load["p50_ms"]:.0f} ms, p95 {load["p95_ms"]:.0f} ms,
p99 {load["p99_ms"]:.0f} ms; **{load["errors"]} errors or misattributed documents**; the
micro-batcher ran {load["batches"]:.0f} shared batches of {load["requests_per_batch"]:.1f} requests
({load["pairs_per_batch"]:.0f} pairs) on average.

**Fault** (two `rerankit serve` processes, {fault["clients"]} client threads on
`FallbackReranker([HTTPReranker(a), HTTPReranker(b)])`, half preferring each, one server
SIGKILLed a third into {args.fault_seconds:.0f} s): {fault["requests"]} requests
({fault["before_kill"]} before the kill, {fault["after_kill"]} after), **{fault["lost"]} lost**,
{fault["degraded"]} degraded to the retrieval order (both servers failing it),
{fault["rps"]:.1f} requests/s overall.
"""
    if not args.no_write:
        write_section(BENCHMARKS_MD, HEADING, section)
        print(f"wrote {HEADING!r} in {BENCHMARKS_MD}")


def version_in(venv: Path) -> str:
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('infinity-emb'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    main()
