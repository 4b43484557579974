"""The ``rerankit`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rerankit.errors import RerankError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rerankit", description="Reranking for RAG pipelines.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="retrieve from embedded Qdrant, rerank, threshold, and show what changed",
        description="Offline end-to-end demo: builds a small Qdrant collection, retrieves "
        "candidates for a few queries, reranks them and applies the threshold.",
    )
    demo.add_argument(
        "--reranker",
        default="embedding",
        metavar="SPEC",
        help="reranker spec, e.g. 'embedding', 'late-interaction', "
        "'cross-encoder:<model>' (default: embedding, the offline MiniLM)",
    )
    demo.add_argument(
        "--query",
        action="append",
        dest="queries",
        metavar="TEXT",
        help="a query to run (repeatable; default: the demo's example queries)",
    )
    demo.add_argument("--top-n", type=int, default=3, help="keep at most N documents (default 3)")
    demo.add_argument(
        "--min-score",
        type=float,
        default=0.35,
        help="drop documents whose calibrated score is below this (default 0.35)",
    )
    demo.add_argument("--fetch-k", type=int, default=8, help="stage-1 candidates (default 8)")
    demo.add_argument(
        "--stage1",
        choices=["bm25", "dense"],
        default="bm25",
        help="first-stage retrieval in Qdrant (default bm25)",
    )
    demo.add_argument("--qdrant-url", default=None, help="use a Qdrant server instead of embedded")
    demo.add_argument(
        "--qdrant-path",
        default=None,
        help="folder of the embedded Qdrant store (default: a cache folder; "
        "':memory:' keeps it in memory)",
    )
    demo.add_argument(
        "--answer",
        action="store_true",
        help="also answer each query offline (extractive: the context sentences most relevant "
        "to the question, no LLM) and print the answer, its citations and the prompt",
    )
    from rerankit.eval.cli import add_parser as add_eval_parser

    add_eval_parser(sub)
    return parser


def _quiet_model_loading() -> None:
    """Hide weight-loading progress bars: the demo prints its own report."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the demo reports the missing extra itself
        return
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "eval":
        _quiet_model_loading()
        from rerankit.eval.cli import run as run_eval

        return run_eval(args)
    if args.command == "demo":
        _quiet_model_loading()
        from rerankit.demo import DemoConfig, run_demo
        from rerankit.demo.store import DENSE, SPARSE

        config = DemoConfig(
            reranker=args.reranker,
            fetch_k=args.fetch_k,
            top_n=args.top_n,
            min_score=args.min_score,
            stage1=SPARSE if args.stage1 == "bm25" else DENSE,
            qdrant_url=args.qdrant_url,
            qdrant_path=args.qdrant_path,
            answer=args.answer,
        )
        if args.queries:
            config.queries = args.queries
        try:
            run_demo(config, sys.stdout)
        except RerankError as exc:
            sys.stderr.write(f"rerankit demo: error: {exc}\n")
            return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
