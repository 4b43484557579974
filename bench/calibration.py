"""Calibration and context-policy benchmarks: one command, two sections of docs/benchmarks.md.

    .venv/bin/python bench/calibration.py          # see --help for subsampling

"## Calibration (rerankit calibrate)": each offline reranker (``embedding``,
``late-interaction``, their weighted fusion, and, for the mechanics only, the MiniLM
cross-encoder with a seeded random head) is calibrated on SciFact **train** (BM25 top-100 from
embedded Qdrant, grade >= 1 relevant) with :func:`rerankit.calibrate.fit_calibration` (what
``rerankit calibrate`` runs), then measured on SciFact **test** (same first stage: in-domain)
and on TREC DL 2019 (BM25 top-100 as given, grade >= 2 relevant: another domain): expected
calibration error (10 bins) before and after, and for ``min_score`` in {0.3, 0.5, 0.7} the
precision and recall of the kept (query, passage) pairs. For reference it also reports the
held-out ECE of a calibration fitted on DL19 itself (5 folds by query).

"## Context policies (MMR, token budget)": on SciFact test and DL19, the context a RAG prompt
would get from the calibrated ``late-interaction`` and ``embedding`` rerankers: no policy (top
10), MMR (``rerankit.policies.MMR`` over MiniLM passage embeddings) and a token budget
(``rerankit.policies.TokenBudget``, MiniLM's tokenizer standing in for the generator's): nDCG@10
of the context list, relevant passages in it and distinct relevant passages (near-duplicates,
cosine >= 0.9 between passage embeddings, counted once).

Raw scores are cached on disk (``--cache-dir``: a :class:`rerankit.ScoreCache` plus the
embedding cache), so a second run re-scores nothing; only the first run pays for the models.
The machine is shared (2 cores): ``--train-queries`` and ``--ce-queries`` subsample, and the
section says what was subsampled.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from _common import BENCHMARKS_MD, DATASETS, CpuMeter, write_section

from rerankit import (
    CachedReranker,
    CrossEncoderReranker,
    EmbeddingReranker,
    FusionReranker,
    LateInteractionReranker,
    ScoreCache,
)
from rerankit.base import Reranker
from rerankit.calibrate import (
    FittedCalibration,
    expected_calibration_error,
    fit_calibration,
    model_fingerprint,
)
from rerankit.calibrate.pairs import ScoredPairs, score_pairs
from rerankit.eval import (
    BeirDataset,
    EmbeddingCache,
    Evaluator,
    Run,
    load_beir,
    read_run,
    retrieve,
)
from rerankit.eval.report import environment
from rerankit.eval.runner import run_candidates
from rerankit.policies import MMR, ContextPolicy, TokenBudget, rerank_with

HEADING = "## Calibration (rerankit calibrate)"
POLICY_HEADING = "## Context policies (MMR, token budget)"
THRESHOLDS = (0.3, 0.5, 0.7)
GOAL_ECE = 0.05
GOAL_SPREAD = 0.1
NAMES = {
    "embedding": "embedding",
    "late-interaction": "late-interaction",
    "fusion": "weighted(embedding + late-interaction)",
    "cross-encoder": "cross-encoder (random head)",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Setup:
    key: str
    title: str
    data: BeirDataset
    run: Run
    rel_level: int


@dataclass
class Row:
    """One reranker's figures on one evaluation setup."""

    ece_before: float
    ece_after: float
    pairs: int
    positives: int
    queries: int
    before: dict[float, tuple[float, float, float]] = field(default_factory=dict)
    after: dict[float, tuple[float, float, float]] = field(default_factory=dict)
    own_ece: float | None = None
    """Held-out ECE of a calibration fitted on this setup itself (5 folds by query)."""


def kept_figures(
    probabilities: Sequence[float], labels: Sequence[int], queries: int, threshold: float
) -> tuple[float, float, float]:
    """Precision and recall of the pairs with probability >= threshold, and kept per query."""
    kept = [y for p, y in zip(probabilities, labels, strict=True) if p >= threshold]
    relevant = sum(labels)
    precision = sum(kept) / len(kept) if kept else math.nan
    recall = sum(kept) / relevant if relevant else math.nan
    return precision, recall, len(kept) / max(1, queries)


def setups(args: argparse.Namespace, cache: EmbeddingCache) -> tuple[Setup, list[Setup]]:
    """The fitting setup (SciFact train) and the evaluation setups (SciFact test, DL19)."""
    root = Path(args.data)
    store = str(Path(args.cache_dir) / "qdrant")
    train = load_beir(root / "scifact", split="train")
    test = load_beir(root / "scifact", split="test")
    train_ids = train.judged_queries()[: args.train_queries]
    test_ids = test.judged_queries()[: args.test_queries]
    log(f"SciFact: BM25 top-100 for {len(train_ids)} train and {len(test_ids)} test queries")
    quiet = not cache.progress
    train_run = retrieve(
        train,
        depth=100,
        stage1="bm25",
        query_ids=train_ids,
        qdrant_path=store,
        cache=cache,
        progress=not quiet,
    )
    test_run = retrieve(
        test,
        depth=100,
        stage1="bm25",
        query_ids=test_ids,
        qdrant_path=store,
        cache=cache,
        progress=not quiet,
    )
    dl19 = load_beir(root / "trec-dl-2019-passage", split="test")
    bm25 = read_run(root / "trec-dl-2019-passage" / "bm25_top100.jsonl")
    return Setup("train", "SciFact train", train, train_run, 1), [
        Setup("scifact", "SciFact test (in-domain)", test, test_run, 1),
        Setup("dl19", "TREC DL 2019 (another domain)", dl19, bm25, 2),
    ]


def rerankers(args: argparse.Namespace, cache: EmbeddingCache, texts: list[str]) -> dict[str, Any]:
    """The rerankers, each wrapped in a CachedReranker over one on-disk ScoreCache."""
    scores = ScoreCache(path=Path(args.cache_dir) / "scores")
    emb = EmbeddingReranker()
    late = LateInteractionReranker()
    cache.attach(emb, texts, desc="encode passages (embedding)")
    cache.attach(late)
    out: dict[str, Any] = {
        "embedding": CachedReranker(reranker=emb, cache=scores),
        "late-interaction": CachedReranker(reranker=late, cache=scores),
    }
    out["fusion"] = FusionReranker([out["embedding"], out["late-interaction"]], method="weighted")
    if args.ce_queries:
        from bench_speed import build_cross_encoder

        folder = Path(args.cache_dir) / "random-head-ce"
        path = folder / "minilm-cross-encoder"
        if not path.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            build_cross_encoder(folder)
        ce = CrossEncoderReranker(model=str(path), max_length=128, dtype="float32")
        out["cross-encoder"] = CachedReranker(reranker=ce, cache=scores)
    return out


def score(
    setup: Setup, reranker: Reranker, name: str, limit: int | None, progress: bool
) -> ScoredPairs:
    started = time.perf_counter()
    pairs = score_pairs(
        setup.data,
        setup.run,
        reranker,
        rel_level=setup.rel_level,
        max_queries=limit,
        progress=progress,
        desc=f"{name} on {setup.key}",
    )
    log(f"  {name} on {setup.key}: {len(pairs):,} pairs in {time.perf_counter() - started:.0f} s")
    return pairs


def evaluate(fitted: FittedCalibration, pairs: ScoredPairs, own: bool) -> Row:
    after = [fitted(r) for r in pairs.raw]
    queries = len(set(pairs.queries))
    row = Row(
        ece_before=expected_calibration_error(pairs.scores, pairs.labels),
        ece_after=expected_calibration_error(after, pairs.labels),
        pairs=len(pairs),
        positives=pairs.positives,
        queries=queries,
    )
    for t in THRESHOLDS:
        row.before[t] = kept_figures(pairs.scores, pairs.labels, queries, t)
        row.after[t] = kept_figures(after, pairs.labels, queries, t)
    if own:
        own_fit = fit_calibration(
            pairs.raw, pairs.labels, pairs.queries, default=fitted.function, folds=5
        )
        row.own_ece = own_fit.ece_after
    return row


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def calibration_section(
    fits: dict[str, FittedCalibration],
    rows: dict[tuple[str, str], Row],
    evals: list[Setup],
    args: argparse.Namespace,
    minutes: float,
    share: str,
) -> str:
    env = environment()
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    subsampled = []
    if args.train_queries:
        subsampled.append(f"SciFact train: the first {args.train_queries} judged queries (of 809)")
    if args.test_queries:
        subsampled.append(f"SciFact test: the first {args.test_queries} (of 300)")
    if "cross-encoder" in fits:
        subsampled.append(
            f"the random-head cross-encoder: the first {args.ce_queries} queries of each setup, "
            "max_length=128"
        )
    lines = [
        HEADING,
        "",
        f"Measured with `python bench/calibration.py` on {time.strftime('%Y-%m-%d')}: "
        f"{env['cpu']}, {env['cores']} cores, Python {env['python']}; {versions}. "
        f"Whole run {minutes:.0f} min with the scores cached from earlier runs where they were. "
        f"{share}",
        "",
        "Each reranker is calibrated on SciFact **train** (BM25 top-100 from embedded Qdrant, "
        "grade >= 1 relevant) with `fit_calibration`, what `rerankit calibrate` runs: Platt "
        "scaling and isotonic regression (scikit-learn), the lower log-loss on held-out queries "
        "(5 folds by query) wins. It is then applied to SciFact **test** (same first stage, "
        "same domain) and to **TREC DL 2019** (BM25 top-100 as given, grade >= 2 relevant: web "
        "questions instead of scientific claims). ECE is the 10-bin expected calibration error "
        "over every (query, candidate) pair; 'before' is the default calibration (clip of the "
        "cosine, min-max of the fusion, sigmoid of the logit). For each `min_score`, P / R are "
        "the precision and recall of the pairs kept (recall over the relevant candidates) and "
        "'kept/q' the passages kept per query. Unjudged candidates count as not relevant.",
        "",
    ]
    if subsampled:
        lines += ["Subsampled to fit the shared machine: " + "; ".join(subsampled) + ".", ""]
    lines += [
        "### Fits (SciFact train)",
        "",
        "| reranker | pairs | relevant | method | held-out log-loss platt / isotonic / default "
        "| held-out ECE before -> after |",
        "|---|---:|---:|---|---|---|",
    ]
    for key, fitted in fits.items():
        f = fitted.fit
        loss = f["heldout_log_loss"]
        lines.append(
            f"| {NAMES[key]} | {f['pairs']:,} | {f['positives']:,} | {f['method']} | "
            f"{loss['platt']:.4f} / {loss['isotonic']:.4f} / {loss['default']:.4f} | "
            f"{f['ece_before']:.3f} -> {f['ece_after']:.3f} |"
        )
    for setup in evals:
        lines += [
            "",
            f"### {setup.title}",
            "",
            "| reranker | ECE before | ECE after | ECE, fitted on this set (5-fold) | "
            + " | ".join(f"min_score={t} P / R / kept/q before -> after" for t in THRESHOLDS)
            + " |",
            "|---|---:|---:|---:|" + "---|" * len(THRESHOLDS),
        ]
        for key in fits:
            row = rows.get((setup.key, key))
            if row is None:
                continue
            cells = []
            for t in THRESHOLDS:
                pb, rb, kb = row.before[t]
                pa, ra, ka = row.after[t]
                cells.append(
                    f"{_f(pb, 2)} / {_f(rb, 2)} / {kb:.1f} -> {_f(pa, 2)} / {_f(ra, 2)} / {ka:.1f}"
                )
            lines.append(
                f"| {NAMES[key]} | {row.ece_before:.3f} | **{row.ece_after:.3f}** | "
                f"{_f(row.own_ece if row.own_ece is not None else math.nan)} | "
                + " | ".join(cells)
                + " |"
            )
        d = rows[(setup.key, "embedding")]
        lines += [
            "",
            f"{d.queries} queries, {d.pairs:,} pairs, {d.positives:,} relevant "
            f"({100 * d.positives / d.pairs:.1f}%).",
        ]
    lines += ["", *verdict(fits, rows)]
    return "\n".join(lines)


def verdict(fits: dict[str, FittedCalibration], rows: dict[tuple[str, str], Row]) -> list[str]:
    real = [k for k in fits if k != "cross-encoder"]
    out = ["### What the figures say", ""]
    for setup, label in (("scifact", "in-domain (SciFact test)"), ("dl19", "on DL19")):
        eces = {k: rows[(setup, k)].ece_after for k in real}
        worst = max(eces, key=lambda k: eces[k])
        met = all(v <= GOAL_ECE for v in eces.values())
        out.append(
            f"- ECE after calibration {label}: "
            + ", ".join(f"{NAMES[k]} {v:.3f}" for k, v in eces.items())
            + f"; goal <= {GOAL_ECE} {'met by every backend' if met else 'missed'}"
            + ("" if met else f" (worst: {NAMES[worst]})")
            + "."
        )
        precisions = {k: rows[(setup, k)].after[0.5][0] for k in real}
        known = {k: v for k, v in precisions.items() if not math.isnan(v)}
        spread = max(known.values()) - min(known.values()) if len(known) > 1 else math.nan
        before = {k: rows[(setup, k)].before[0.5][0] for k in real}
        known_before = [v for v in before.values() if not math.isnan(v)]
        spread_before = max(known_before) - min(known_before) if len(known_before) > 1 else math.nan
        out.append(
            f"- Precision of the pairs kept at min_score=0.5 {label}: "
            + ", ".join(f"{NAMES[k]} {_f(v, 2)}" for k, v in precisions.items())
            + f" (spread {_f(spread, 2)}; goal within {GOAL_SPREAD}; before calibration the "
            f"spread was {_f(spread_before, 2)})."
        )
    if "cross-encoder" in fits:
        ce = fits["cross-encoder"]
        out.append(
            f"- The random-head cross-encoder (mechanics only): its logits carry no relevance "
            f"signal, so the fit ({ce.fit['method']}) is close to a flat line at the base rate "
            f"(held-out log-loss {ce.fit['heldout_log_loss'][ce.fit['method']]:.4f} against "
            f"{ce.fit['heldout_log_loss']['default']:.4f} for the sigmoid); its low ECE after "
            "calibration says it predicts the base rate honestly, not that it ranks: at "
            "min_score=0.5 it keeps nothing."
        )
    return out


# -- context policies ----------------------------------------------------------------------------

CONTEXT = 10
BUDGET = 512
NEAR_DUPLICATE = 0.9


def passage_vectors(cache: EmbeddingCache, texts: list[str]) -> dict[str, Any]:
    """MiniLM passage embeddings (from the embedding cache: the embedding reranker's own)."""
    reranker = EmbeddingReranker()
    matrix = cache.embeddings(reranker.loaded_model(), texts, model=reranker.model, desc="")
    return {t: matrix[i] for i, t in enumerate(texts)}


def policy_menu(vectors: dict[str, Any]) -> tuple[dict[str, list[ContextPolicy]], TokenBudget]:
    from transformers import AutoTokenizer

    from rerankit.sentence import default_model

    tokenizer = AutoTokenizer.from_pretrained(default_model())
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731

    def embed(texts: list[str]) -> list[Any]:
        return [vectors[t] for t in texts]

    budget = TokenBudget(BUDGET, tokenizer=count)
    return {
        f"no policy (top {CONTEXT})": [],
        "MMR lambda=0.5": [MMR(embed, lambda_mult=0.5)],
        "MMR lambda=0.7": [MMR(embed, lambda_mult=0.7)],
        f"token budget {BUDGET}": [budget],
        f"MMR lambda=0.7 + token budget {BUDGET}": [MMR(embed, lambda_mult=0.7), budget],
    }, budget


def distinct_relevant(
    ids: list[str], relevant: set[str], texts: dict[str, str], vectors: dict[str, Any]
) -> int:
    """Relevant passages in the context, near-duplicates (cosine >= 0.9) counted once."""
    kept: list[Any] = []
    for doc in ids:
        if doc not in relevant:
            continue
        v = vectors[texts[doc]]
        if all(float(v @ w) < NEAR_DUPLICATE for w in kept):
            kept.append(v)
    return len(kept)


def policy_rows(
    setups_: list[Setup], models: dict[str, Any], vectors: dict[str, Any]
) -> list[dict[str, Any]]:
    menu, budget = policy_menu(vectors)
    rows = []
    for setup in setups_:
        qrels = {q: setup.data.qrels[q] for q in setup.run if q in setup.data.qrels}
        evaluator = Evaluator(qrels, measures=["nDCG@10"])
        for key in ("embedding", "late-interaction"):
            for label, chain in menu.items():
                started = time.perf_counter()
                scores: dict[str, dict[str, float]] = {}
                found = distinct = passages = tokens = over = 0
                for qid in qrels:
                    query, candidates = run_candidates(setup.data, setup.run, qid)
                    results = rerank_with(
                        models[key], query, candidates, policies=chain, top_n=CONTEXT
                    )
                    ids = [r.id or "" for r in results]
                    scores[qid] = {d: float(len(ids) - i) for i, d in enumerate(ids)}
                    relevant = {d for d, g in setup.data.qrels[qid].items() if g >= setup.rel_level}
                    texts = {r.id or "": r.text for r in results}
                    found += sum(1 for d in ids if d in relevant)
                    distinct += distinct_relevant(ids, relevant, texts, vectors)
                    passages += len(ids)
                    used = sum(budget.tokens(r.text) for r in results)
                    tokens += used
                    over += used > BUDGET
                n = len(qrels)
                rows.append(
                    {
                        "setup": setup.title,
                        "reranker": NAMES[key],
                        "policy": label,
                        "ndcg": evaluator.aggregate(scores)["nDCG@10"],
                        "relevant": found / n,
                        "distinct": distinct / n,
                        "passages": passages / n,
                        "tokens": tokens / n,
                        "over": over / n,
                        "seconds": time.perf_counter() - started,
                    }
                )
                log(f"  {setup.key} {key} {label}: nDCG@10 {rows[-1]['ndcg']:.4f}")
    return rows


def policy_section(rows: list[dict[str, Any]], share: str) -> str:
    lines = [
        POLICY_HEADING,
        "",
        f"Measured with `python bench/calibration.py` on {time.strftime('%Y-%m-%d')} (same run "
        f"and candidates as the calibration section). {share}",
        "",
        f"The context is what `rerank_with(reranker, query, candidates, policies=..., top_n="
        f"{CONTEXT})` returns for each query's top-100 candidates (no score threshold). "
        f"`MMR` picks {CONTEXT} from the 100 over MiniLM passage embeddings "
        f"(relevance: the reranker's score min-max scaled over the list); `TokenBudget("
        f"{BUDGET})` keeps the best passages whose MiniLM-tokenizer tokens fit {BUDGET} (the "
        "generator's tokenizer is not available offline; MiniLM's WordPiece stands in). nDCG@10 "
        "is ir-measures' over the context list; 'relevant' and 'distinct' are relevant passages "
        "in the context per query (SciFact grade >= 1, DL19 grade >= 2), distinct counting "
        f"near-duplicates (cosine >= {NEAR_DUPLICATE}) once; 'over budget' is the share of "
        f"queries whose context exceeds {BUDGET} tokens.",
        "",
        "| setup | reranker | policy | nDCG@10 | relevant | distinct relevant | passages | "
        "tokens | over budget |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setup']} | {r['reranker']} | {r['policy']} | {r['ndcg']:.4f} | "
            f"{r['relevant']:.2f} | {r['distinct']:.2f} | {r['passages']:.1f} | "
            f"{r['tokens']:.0f} | {100 * r['over']:.0f}% |"
        )
    lines += ["", *policy_verdict(rows)]
    return "\n".join(lines)


def policy_verdict(rows: list[dict[str, Any]]) -> list[str]:
    out = ["What the figures say:", ""]
    by = {(r["setup"], r["reranker"], r["policy"]): r for r in rows}
    base_label = f"no policy (top {CONTEXT})"
    for setup in dict.fromkeys(r["setup"] for r in rows):
        for reranker in dict.fromkeys(r["reranker"] for r in rows):
            base = by[(setup, reranker, base_label)]
            parts = []
            for label in dict.fromkeys(r["policy"] for r in rows):
                if label == base_label:
                    continue
                r = by[(setup, reranker, label)]
                parts.append(
                    f"{label}: nDCG@10 {r['ndcg'] - base['ndcg']:+.4f}, distinct relevant "
                    f"{r['distinct'] - base['distinct']:+.2f}, tokens {r['tokens']:.0f}"
                )
            out.append(
                f"- {setup}, {reranker} (no policy: nDCG@10 {base['ndcg']:.4f}, "
                f"{base['distinct']:.2f} distinct relevant, {base['tokens']:.0f} tokens): "
                + "; ".join(parts)
                + "."
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATASETS))
    parser.add_argument("--docs", default=str(BENCHMARKS_MD))
    parser.add_argument(
        "--cache-dir", default=str(Path.home() / ".cache" / "rerankit" / "bench-calibration")
    )
    parser.add_argument(
        "--train-queries", type=int, default=400, help="SciFact train queries (default 400)"
    )
    parser.add_argument("--test-queries", type=int, default=None, help="SciFact test queries")
    parser.add_argument(
        "--ce-queries", type=int, default=30, help="queries per setup for the cross-encoder"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--only", choices=["calibration", "policies"], default=None)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if not Path(args.data).is_dir():
        sys.stderr.write(f"no datasets at {args.data} (pass --data)\n")
        return 2
    meter = CpuMeter()
    progress = not args.quiet
    cache = EmbeddingCache(
        directory=Path(args.cache_dir) / "embeddings",
        memory_bytes=6 * 1024**3,
        progress=progress,
    )
    train, evals = setups(args, cache)
    # Every passage of both corpora, so the embedding file on disk serves any subsample.
    texts = sorted({s.data.text(d) for s in (train, *evals) for d in s.data.corpus})
    models = rerankers(args, cache, texts)
    fits: dict[str, FittedCalibration] = {}
    rows: dict[tuple[str, str], Row] = {}
    scored: dict[tuple[str, str], ScoredPairs] = {}
    for key, reranker in models.items():
        if args.only == "policies":
            break
        limit = args.ce_queries if key == "cross-encoder" else None
        log(f"{NAMES[key]}")
        pairs = score(train, reranker, key, limit, progress)
        fit = fit_calibration(pairs.raw, pairs.labels, pairs.queries, default=reranker.calibration)
        fits[key] = FittedCalibration(
            fit.calibration,
            model_fingerprint(reranker),
            score_space=reranker.score_space.value,
            fit=fit.summary(),
        )
        log(f"  fit: {fit.summary()}")
        for setup in evals:
            scored[(setup.key, key)] = pairs = score(setup, reranker, key, limit, progress)
            rows[(setup.key, key)] = evaluate(fits[key], pairs, own=True)
    out = Path(args.cache_dir) / "calibrations"
    for key, fitted in fits.items():
        fitted.save(out / f"{key}.json")
    policy_text = None
    if args.only != "calibration":
        log("context policies")
        vectors = passage_vectors(cache, texts)
        policy_text = policy_rows(evals, models, vectors)
    share = meter.stop().describe()
    minutes = meter.stop().wall_s / 60
    if fits:
        text = calibration_section(fits, rows, evals, args, minutes, share)
        print("\n" + text)
        if not args.no_write:
            write_section(Path(args.docs), HEADING, text)
    if policy_text is not None:
        text = policy_section(policy_text, share)
        print("\n" + text)
        if not args.no_write:
            write_section(Path(args.docs), POLICY_HEADING, text)
    if not args.no_write:
        log(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
