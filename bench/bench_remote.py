"""Remote reranking benchmark: batches sent concurrently vs sequentially, on loopback.

    python bench/bench_remote.py

Starts a Cohere-compatible server on 127.0.0.1 that adds 200 ms to every request, and reranks
1,000 documents with :class:`rerankit.CohereReranker` (the real ``cohere`` SDK) cut into
batches of 100: once with the batches in flight together, once one after the other, both sync
(``rerank``) and async (``arerank``). The target: the concurrent wall time within 1.5x of a
single request's latency. Prints a table and writes it into ``docs/benchmarks.md`` under
"## Remote rerankers (loopback)" (only that section is replaced).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import BENCHMARKS_MD, ROOT, cpu_model, version, write_section

sys.path.insert(0, str(ROOT))  # for tests.loopback

from tests.loopback import FakeCohere, LoopbackServer

from rerankit import CohereReranker

HEADING = "## Remote rerankers (loopback)"
QUERY = "how do red apples grow in cold orchards"


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` runs, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(docs_count: int, batch_size: int, latency: float, repeats: int) -> dict[str, object]:
    docs = [
        f"document {i}: red apples {'grow' if i % 3 else 'fall'} in orchard {i % 17}"
        for i in range(docs_count)
    ]
    batches = -(-docs_count // batch_size)
    with LoopbackServer(FakeCohere(), latency=latency) as server:

        def reranker(concurrency: int, size: int = batch_size) -> CohereReranker:
            return CohereReranker(
                api_key="bench-key",
                base_url=server.url,
                batch_size=size,
                max_concurrency=concurrency,
                timeout=30.0,
                deadline=120.0,
            )

        concurrent = reranker(batches)
        sequential = reranker(1)
        whole = reranker(1, size=docs_count)
        for r in (concurrent, sequential, whole):  # clients, imports, connections
            r.rerank(QUERY, docs[:batch_size])

        single = timed(lambda: concurrent.rerank(QUERY, docs[:batch_size]), repeats)
        server.clear()
        conc = timed(lambda: concurrent.rerank(QUERY, docs), repeats)
        in_flight = server.max_in_flight
        requests = server.count() // repeats
        seq = timed(lambda: sequential.rerank(QUERY, docs), repeats)
        one_request = timed(lambda: whole.rerank(QUERY, docs), repeats)

        async def async_runs() -> tuple[float, float]:
            await concurrent.arerank(QUERY, docs[:batch_size])
            await sequential.arerank(QUERY, docs[:batch_size])
            out = []
            for r in (concurrent, sequential):
                times = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    results = await r.arerank(QUERY, docs)
                    times.append(time.perf_counter() - started)
                    assert len(results) == docs_count
                out.append(statistics.median(times))
            return out[0], out[1]

        aconc, aseq = asyncio.run(async_runs())
        check = concurrent.rerank(QUERY, docs)
        assert sorted(r.index for r in check) == list(range(docs_count))
    return {
        "docs": docs_count,
        "batch_size": batch_size,
        "batches": batches,
        "latency": latency,
        "repeats": repeats,
        "single": single,
        "concurrent": conc,
        "sequential": seq,
        "async_concurrent": aconc,
        "async_sequential": aseq,
        "one_request": one_request,
        "requests": requests,
        "in_flight": in_flight,
    }


def markdown(r: dict[str, object]) -> str:
    single = float(r["single"])  # type: ignore[arg-type]

    def row(label: str, key: str, requests: str) -> str:
        value = float(r[key])  # type: ignore[arg-type]
        return f"| {label} | {requests} | {value * 1000:.0f} ms | {value / single:.2f}x |"

    ratio = float(r["concurrent"]) / single  # type: ignore[arg-type]
    aratio = float(r["async_concurrent"]) / single  # type: ignore[arg-type]
    target = "met" if max(ratio, aratio) <= 1.5 else "NOT met"
    batches = r["batches"]
    lines = [
        HEADING,
        "",
        f"`python bench/bench_remote.py`: {r['docs']:,} documents reranked by `CohereReranker` "
        f"(the real `cohere` SDK) against a Cohere-compatible server on 127.0.0.1 that adds "
        f"{float(r['latency']) * 1000:.0f} ms to every request "  # type: ignore[arg-type]
        f"(`tests/loopback`). Batches of {r['batch_size']} documents ({batches} requests); "
        f"median of {r['repeats']} runs.",
        "",
        "| mode | requests | wall time | vs one request |",
        "|---|---|---|---|",
        row(f"one request ({r['batch_size']} documents)", "single", "1"),
        row(f"`rerank`, concurrent (max_concurrency={batches})", "concurrent", f"{batches}"),
        row("`rerank`, sequential (max_concurrency=1)", "sequential", f"{batches}"),
        row(f"`arerank`, concurrent (max_concurrency={batches})", "async_concurrent", f"{batches}"),
        row("`arerank`, sequential (max_concurrency=1)", "async_sequential", f"{batches}"),
        row(f"all {r['docs']:,} in one request (batch_size={r['docs']})", "one_request", "1"),
        "",
        f"Concurrent / one request: {ratio:.2f}x sync, {aratio:.2f}x async (target <= 1.5x: "
        f"{target}); the server saw up to {r['in_flight']} requests in flight. Sequential "
        f"sending costs about one latency per batch.",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}. Date: {datetime.date.today().isoformat()}. Python "
        f"{platform.python_version()}, rerankit {version('rerankit')}, cohere "
        f"{version('cohere')}, httpx {version('httpx')}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added per request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    result = run(args.docs, args.batch_size, args.latency, args.repeats)
    section = markdown(result)
    print(section)
    if not args.no_write:
        write_section(args.output, HEADING, section)
        print(f"written to {args.output}")


if __name__ == "__main__":
    main()
