"""The ``rerankit rerank-run`` subcommand: rerank a first-stage run on Ray, write a TREC run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rerankit.cli_args import guarded, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``rerank-run`` subcommand to the ``rerankit`` subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "rerank-run",
        help="rerank a TREC run or candidate JSONL with Ray Data, write a TREC run",
        description="Rerank every query of a first-stage run on a Ray cluster (a local one "
        "unless --ray-address is given) with Ray Data: each actor builds the reranker once and "
        "reranks whole queries. The output equals the in-process reranking (rerankit eval) of "
        "the same run. Needs 'pip install rerankit[ray]'.",
    )
    p.add_argument(
        "data", metavar="DATA", help="BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/)"
    )
    p.add_argument("--split", default="test", help="qrels split: qrels/<SPLIT>.tsv (default test)")
    p.add_argument(
        "--run",
        required=True,
        metavar="FILE",
        help='the first stage: a TREC run file, or JSONL {"query_id", "query", "candidates"}',
    )
    p.add_argument("--run-format", choices=["auto", "trec", "jsonl"], default="auto")
    p.add_argument(
        "--reranker", default="embedding", metavar="SPEC", help="reranker spec (default: embedding)"
    )
    p.add_argument("--output", required=True, metavar="FILE", help="where to write the TREC run")
    p.add_argument(
        "--depth",
        type=positive_int,
        default=None,
        metavar="K",
        help="rerank the top K candidates of each query (default: all)",
    )
    p.add_argument(
        "--actors",
        type=positive_int,
        default=1,
        metavar="N",
        help="Ray actors, each with its own copy of the model (default 1)",
    )
    p.add_argument(
        "--num-cpus",
        type=float,
        default=1.0,
        metavar="N",
        help="CPUs each actor reserves (default 1)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="Ray cluster to join, e.g. ray://head:10001 or auto (default: local)",
    )
    p.add_argument("--tag", default=None, help="run tag in the TREC file (default: the reranker)")
    return p


def _run(args: argparse.Namespace) -> None:
    from rerankit._deps import require
    from rerankit.eval import load_beir, read_run
    from rerankit.eval.distributed import rerank_run_ray

    ray: Any = require("ray", extra="ray", feature="rerankit rerank-run")
    data = load_beir(args.data, split=args.split)
    first = read_run(args.run, format=args.run_format)
    output = Path(args.output).expanduser()
    if not output.parent.is_dir():
        raise FileNotFoundError(2, "no such folder", str(output.parent))
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=args.ray_address, log_to_driver=False)
    try:
        reranked = rerank_run_ray(
            data,
            first,
            args.reranker,
            depth=args.depth,
            actors=args.actors,
            num_cpus=args.num_cpus,
        )
    finally:
        if started_here:
            ray.shutdown()
    reranked.write_trec(output, tag=args.tag)
    sys.stdout.write(f"{len(reranked)} queries reranked with {args.reranker} -> {output}\n")


def run(args: argparse.Namespace) -> int:
    """Run ``rerankit rerank-run`` with parsed ``args``; returns the exit code."""
    return guarded("rerank-run", lambda: _run(args))
