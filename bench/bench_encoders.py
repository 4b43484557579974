"""The bi-encoder rerankers uncached and cached, and multi-query batches against one call each.

    python bench/bench_encoders.py                 # 12 DL19 queries x 100 BM25 candidates
    python bench/bench_encoders.py --queries 43    # all of them
    python bench/bench_encoders.py --no-write      # print, leave docs/benchmarks.md alone

Part 1, the embedding and late-interaction rerankers (offline all-MiniLM-L6-v2, real weights):
each call's time with nothing cached (every document encoded in the call, unpadded by default
and with ``unpadded=False`` through sentence-transformers' ``encode``), with the documents'
embeddings already in an :class:`~rerankit.eval.EmbeddingCache` (what ``rerankit eval`` does on
a second run, and what a store that keeps vectors gives), and ``encode`` alone on the same
texts. In float32 (the default of both) and with ``dtype="auto"`` (bf16 where the CPU has it).

Part 2, several queries at once: ``rerank_batch`` over the queries, one ``rerank`` per query,
and ``asyncio.gather`` over ``arerank``, for the cross-encoder (the random-head MiniLM of
``bench_speed.py``: speed only) and the embedding reranker; the results are checked equal.

Every figure is the median over interleaved rounds (the systems take turns), on a machine that
may be shared: read the ratios, taken side by side. Torch runs 2 threads with
``OMP_WAIT_POLICY=PASSIVE``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import asyncio
import datetime as dt
import importlib.util
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    BENCHMARKS_MD,
    CpuMeter,
    cpu_flags,
    cpu_model,
    load_average,
    version,
    write_section,
)
from bench_speed import build_cross_encoder, load_dl19

HEADING = "## Bi-encoders and multi-query batches"


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def _interleaved(systems: dict[str, Callable[[int], Any]], calls: int, rounds: int) -> dict:
    """Seconds per call of each system, taking turns call by call (the order rotating)."""
    times: dict[str, list[float]] = {name: [] for name in systems}
    names = list(systems)
    for r in range(rounds):
        for i in range(calls):
            shift = (i + r) % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                systems[name](i)
                times[name].append(time.perf_counter() - start)
    return times


def encoders(queries: list[Any], rounds: int) -> list[str]:
    """Part 1: uncached, model alone, cached; float32 and auto."""
    from rerankit import EmbeddingReranker, LateInteractionReranker
    from rerankit.eval import EmbeddingCache

    rows = []
    for dtype in ("float32", "auto"):
        embedding = EmbeddingReranker(device="cpu", dtype=dtype)
        padded = EmbeddingReranker(device="cpu", dtype=dtype, unpadded=False)
        late = LateInteractionReranker(device="cpu", dtype=dtype, encoder="sentence-transformers")
        late_padded = LateInteractionReranker(
            device="cpu", dtype=dtype, encoder="sentence-transformers", unpadded=False
        )
        cached_embedding = EmbeddingReranker(device="cpu", dtype=dtype)
        cached_late = LateInteractionReranker(
            device="cpu", dtype=dtype, encoder="sentence-transformers"
        )
        cache = EmbeddingCache(progress=False)
        texts = sorted({p for q in queries for p in q.passages})
        cache.attach(cached_embedding, texts, queries=[q.text for q in queries])
        cache.attach(cached_late, texts, queries=[q.text for q in queries])
        for q in queries:  # token embeddings are memoised on first sight
            cached_late.rerank(q.text, q.passages)
        model = embedding._load()

        def encode_only(i: int, model: Any = model) -> None:
            model.encode(queries[i].passages, batch_size=32, show_progress_bar=False)

        systems = {
            "embedding": lambda i, r=embedding: r.rerank(queries[i].text, queries[i].passages),
            "embedding, encode() (unpadded=False)": lambda i, r=padded: r.rerank(
                queries[i].text, queries[i].passages
            ),
            "embedding, documents cached": lambda i, r=cached_embedding: r.rerank(
                queries[i].text, queries[i].passages
            ),
            "late interaction": lambda i, r=late: r.rerank(queries[i].text, queries[i].passages),
            "late interaction, encode() (unpadded=False)": lambda i, r=late_padded: r.rerank(
                queries[i].text, queries[i].passages
            ),
            "late interaction, token embeddings cached": lambda i, r=cached_late: r.rerank(
                queries[i].text, queries[i].passages
            ),
            "encode() alone (the model)": encode_only,
        }
        for name in systems:
            systems[name](0)  # warm-up
        times = _interleaved(systems, len(queries), rounds)
        model_ms = _median_ms(times["encode() alone (the model)"])
        for name, values in times.items():
            ms = _median_ms(values)
            share = "" if "alone" in name or "cached" in name else f"{100 * model_ms / ms:.0f}%"
            rows.append(f"| {name} | {dtype} | {ms:.0f} ms | {1000 * 100 / ms:.0f} | {share} |")
    return rows


def batch_rerankers(path: str) -> list[tuple[str, Any]]:
    """The rerankers of part 2 (the OpenVINO runtime where ``openvino`` is installed)."""
    from rerankit import CrossEncoderReranker, EmbeddingReranker

    out = [("cross-encoder (bf16, unpadded)", CrossEncoderReranker(model=path, device="cpu"))]
    if importlib.util.find_spec("openvino") is not None:
        openvino = CrossEncoderReranker(model=path, runtime="openvino")
        out.append(("cross-encoder (OpenVINO runtime)", openvino))
    out.append(("embedding (float32, unpadded)", EmbeddingReranker(device="cpu")))
    return out


def batches(
    queries: list[Any], rerankers: list[tuple[str, Any]], rounds: int
) -> tuple[list[str], list[str]]:
    """Part 2: rerank_batch vs one call per query vs asyncio.gather over arerank."""
    rows, checks = [], []
    groups = [queries[i : i + 4] for i in range(0, len(queries) - 3, 4)]
    for label, reranker in rerankers:
        for n in (20, 100):

            def batch(i: int, r: Any = reranker, n: int = n) -> Any:
                group = groups[i]
                return r.rerank_batch([q.text for q in group], [q.passages[:n] for q in group])

            def each(i: int, r: Any = reranker, n: int = n) -> Any:
                return [r.rerank(q.text, q.passages[:n]) for q in groups[i]]

            def gathered(i: int, r: Any = reranker, n: int = n) -> Any:
                async def run() -> Any:
                    calls = (r.arerank(q.text, q.passages[:n]) for q in groups[i])
                    return await asyncio.gather(*calls)

                return asyncio.run(run())

            systems = {
                "rerank_batch": batch,
                "one rerank per query": each,
                "gather(arerank)": gathered,
            }
            for f in systems.values():
                f(0)
            a, b = batch(0), each(0)
            worst = max(
                abs(x.raw_score - y.raw_score)
                for ra, rb in zip(a, b, strict=True)
                for x, y in zip(
                    sorted(ra, key=lambda r: r.index),
                    sorted(rb, key=lambda r: r.index),
                    strict=True,
                )
            )
            checks.append(
                f"{label}, {n} candidates: largest score difference, `rerank_batch` vs one "
                f"call each: {worst:.1e}"
            )
            times = _interleaved(systems, len(groups), rounds)
            base = _median_ms(times["one rerank per query"])
            for name, values in times.items():
                ms = _median_ms(values)
                rows.append(
                    f"| {label} | {n} | {name} | {ms:.0f} ms | {4 * n * 1000 / ms:.0f} | "
                    f"{base / ms:.2f}x |"
                )
    return rows, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    queries, _ = load_dl19(args.queries)
    meter = CpuMeter()
    start_load = load_average()
    part1 = encoders(queries, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        rerankers = batch_rerankers(build_cross_encoder(Path(tmp)))
        part2, checks = batches(queries, rerankers, args.rounds)
    share = meter.stop()
    flags = [f for f in cpu_flags() if "bf16" in f or f in ("avx512f", "amx_tile")]
    section = "\n".join(
        [
            HEADING,
            "",
            f"Generated by `python bench/bench_encoders.py --queries {args.queries}` on "
            f"{dt.date.today().isoformat()}: {cpu_model()}, {os.cpu_count()} cores "
            f"({', '.join(flags)}), torch threads 2, Python {platform.python_version()}, "
            f"torch {version('torch')}, transformers {version('transformers')}, "
            f"sentence-transformers {version('sentence-transformers')}. {len(queries)} TREC DL "
            f"2019 queries, each with its 100 BM25 candidates. {share.describe()} Load average "
            f"{start_load} at the start, {load_average()} at the end; the run took "
            f"{share.wall_s / 60:.1f} min.",
            "",
            "### Embedding and late-interaction rerankers: uncached and cached",
            "",
            "Per call of 100 candidates (median over interleaved calls). The default encodes "
            "unpadded (`unpadded=None`: on, on the CPU); `unpadded=False` runs "
            'sentence-transformers\' `encode()`. "encode() share": the time of `encode()` '
            "alone on the same 100 passages over the call's time (above 100%: the call is "
            "faster than `encode()`).",
            "",
            "| reranker | dtype | per call | pairs/s | encode() share |",
            "|---|---|---|---|---|",
            *part1,
            "",
            "### Several queries at once",
            "",
            "Four queries per step, 20 or 100 candidates each (median over interleaved "
            "steps): `rerank_batch` against four `rerank` calls and `asyncio.gather` over "
            "four `arerank` calls.",
            "",
            "| reranker | candidates per query | how | per 4 queries | pairs/s "
            "| vs one call each |",
            "|---|---|---|---|---|---|",
            *part2,
            "",
            *[f"- {c}" for c in checks],
        ]
    )
    print(section)
    if not args.no_write:
        write_section(BENCHMARKS_MD, HEADING, section)


if __name__ == "__main__":
    main()
