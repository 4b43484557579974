"""The ``rerankit eval`` subcommand (its arguments and what it runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rerankit.annotate import RETRIEVAL_SCORE_KEY
from rerankit.base import Reranker
from rerankit.cli_args import guarded, non_negative_int, positive_int

if TYPE_CHECKING:
    from rerankit.eval.beir import BeirDataset
    from rerankit.eval.cache import EmbeddingCache
    from rerankit.eval.runs import Run

__all__ = ["add_first_stage_arguments", "add_parser", "load_first_stage", "run"]


def default_cache_dir() -> Path:
    """``<rerankit cache>/eval/embeddings``: where ``rerankit eval`` keeps embeddings."""
    from rerankit.qdrant.client import cache_dir

    return cache_dir() / "eval" / "embeddings"


def add_first_stage_arguments(p: argparse.ArgumentParser) -> None:
    """The dataset and first-stage arguments ``rerankit eval`` and ``rerankit calibrate`` share:
    DATA, ``--split``, ``--run`` / ``--run-format``, ``--depth``, ``--stage1`` /
    ``--stage1-model``, the Qdrant options, ``--rel-level``, ``--max-queries``, the embedding
    cache and ``--quiet``."""
    p.add_argument(
        "data", metavar="DATA", help="BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/)"
    )
    p.add_argument("--split", default="test", help="qrels split: qrels/<SPLIT>.tsv (default test)")
    p.add_argument(
        "--run",
        metavar="FILE",
        help="first-stage candidates to rerank: a TREC run file, or JSONL with one line per "
        'query {"query_id", "query", "candidates": [{"docid", "rank", "score"}, ...]}',
    )
    p.add_argument("--run-format", choices=["auto", "trec", "jsonl"], default="auto")
    p.add_argument(
        "--depth",
        type=positive_int,
        default=None,
        metavar="K",
        help="candidates per query: retrieved in full-pipeline mode (default 100), or the top K "
        "of the run (default: all of them)",
    )
    p.add_argument(
        "--stage1",
        choices=["dense", "bm25"],
        default="dense",
        help="full-pipeline first stage in Qdrant (default dense)",
    )
    p.add_argument(
        "--stage1-model",
        default=None,
        metavar="MODEL",
        help="sentence-transformers model of the dense first stage (default: offline MiniLM)",
    )
    from rerankit.cli import add_qdrant_options

    add_qdrant_options(
        p, path_help="folder of an embedded Qdrant store to keep the index in (default: in memory)"
    )
    p.add_argument(
        "--rel-level",
        type=non_negative_int,
        default=1,
        help="lowest grade counted relevant by RR and recall (default 1; TREC DL uses 2)",
    )
    p.add_argument(
        "--max-queries", type=positive_int, default=None, help="use the first N queries only"
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="embedding cache folder (default: ~/.cache/rerankit/eval/embeddings)",
    )
    p.add_argument("--no-cache", action="store_true", help="keep embeddings in memory only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def load_first_stage(
    args: argparse.Namespace,
) -> tuple[BeirDataset, Run, int | None, EmbeddingCache]:
    """The dataset, the first stage (``--run``, or the full pipeline), the depth and the
    embedding cache that :func:`add_first_stage_arguments`' arguments name."""
    from rerankit.eval import EmbeddingCache, load_beir, read_run, retrieve

    progress = not args.quiet
    data = load_beir(args.data, split=args.split)
    cache_dir = None if args.no_cache else Path(args.cache_dir or default_cache_dir())
    cache = EmbeddingCache(directory=cache_dir, progress=progress)
    if args.run:
        return data, read_run(args.run, format=args.run_format), args.depth, cache
    depth = args.depth or 100
    judged = data.judged_queries()
    first_stage = retrieve(
        data,
        depth=depth,
        stage1=args.stage1,
        model=args.stage1_model,
        query_ids=judged[: args.max_queries] if args.max_queries else judged,
        qdrant_url=args.qdrant_url,
        qdrant_path=args.qdrant_path,
        cache=cache,
        progress=progress,
    )
    return data, first_stage, depth, cache


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to the ``rerankit`` subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "eval",
        help="measure rerankers on a BEIR-layout dataset (nDCG@10, RR@10, recall)",
        description="Rerank a first stage's candidates with each reranker and measure "
        "nDCG@10, RR@10 and recall with ir-measures (trec_eval semantics), with per-query "
        "wins/ties/losses against the first stage. The first stage is a run file (--run) or, "
        "without one, the full pipeline: the corpus indexed into Qdrant, top --depth retrieved.",
    )
    add_first_stage_arguments(p)
    p.add_argument(
        "--reranker",
        action="append",
        dest="rerankers",
        metavar="SPEC",
        help="reranker spec to evaluate (repeatable; default: embedding)",
    )
    p.add_argument(
        "--fuse",
        choices=["rrf", "weighted"],
        default=None,
        help="also evaluate a FusionReranker of all --reranker specs and the first-stage score",
    )
    p.add_argument(
        "--measure",
        action="append",
        dest="measures",
        metavar="NAME",
        help="ir-measures measure, e.g. 'nDCG@10', 'R@100' (repeatable; replaces the defaults "
        "nDCG@10, RR@10, R@10, R@depth)",
    )
    p.add_argument("--json", metavar="FILE", help="write the full report (per query) as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the markdown table to FILE")
    p.add_argument("--plot", metavar="FILE", help="write a PNG (needs matplotlib)")
    p.add_argument("--save-runs", metavar="DIR", help="write each system's run as a TREC file")
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``rerankit eval`` for parsed ``args``; returns the exit code (2 with one line on
    stderr for a user mistake)."""
    return guarded("eval", lambda: _run(args, out or sys.stdout))


def _run(args: argparse.Namespace, out: TextIO) -> None:
    from rerankit.backends.fusion import FusionReranker
    from rerankit.eval import evaluate, plot_report
    from rerankit.registry import as_reranker

    progress = not args.quiet
    # the specs first: a mistyped one fails before any retrieval work
    rerankers: list[Reranker] = [as_reranker(spec) for spec in (args.rerankers or ["embedding"])]
    if args.fuse:
        rerankers.append(
            FusionReranker(list(rerankers), method=args.fuse, first_stage=RETRIEVAL_SCORE_KEY)
        )
    data, first_stage, depth, cache = load_first_stage(args)
    report = evaluate(
        data,
        first_stage,
        rerankers,
        depth=depth,
        rel_level=args.rel_level,
        measures=args.measures,
        cache=cache,
        max_queries=args.max_queries,
        save_runs=args.save_runs,
        progress=progress,
    )
    table = report.to_markdown()
    out.write(table + "\n")
    if args.markdown:
        report.write_markdown(args.markdown)
    if args.json:
        report.write_json(args.json)
    if args.plot:
        plot_report(report, args.plot)
