"""The ``rerankit`` command line: ``demo``, ``eval``, ``calibrate``, ``serve`` and ``rerank-run``.

A user mistake is one line on stderr naming the problem and the fix, with exit code 2
(:mod:`rerankit.cli_args`); never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rerankit.cli_args import OneLineParser, guarded, non_negative_int, positive_int, unit_float


def add_qdrant_options(parser: Any, *, path_help: str) -> None:
    """``--qdrant-url`` and ``--qdrant-path``: alternatives, so passing both is an error."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--qdrant-url",
        default=None,
        metavar="URL",
        help="use a Qdrant server (http://host:port) instead of the embedded store",
    )
    where.add_argument("--qdrant-path", default=None, metavar="DIR", help=path_help)


def _parser() -> OneLineParser:
    parser = OneLineParser(prog="rerankit", description="Reranking for RAG pipelines.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="retrieve from embedded Qdrant, rerank, threshold, and show what changed",
        description="Offline end-to-end demo: builds a Qdrant collection (from a small "
        "built-in corpus, or from --corpus), retrieves candidates for a few queries, reranks "
        "them and applies the threshold.",
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
        help="a query to run (repeatable; default: the built-in example queries, or the first "
        "queries of a --corpus BEIR folder)",
    )
    demo.add_argument(
        "--corpus",
        default=None,
        metavar="PATH",
        help='your own documents: a JSONL file of {"id", "text", "title"} lines '
        "(title optional) or a BEIR folder (corpus.jsonl, queries.jsonl)",
    )
    demo.add_argument(
        "--top-n", type=non_negative_int, default=3, help="keep at most N documents (default 3)"
    )
    demo.add_argument(
        "--min-score",
        type=unit_float,
        default=0.35,
        help="drop documents whose calibrated score is below this (default 0.35)",
    )
    demo.add_argument(
        "--fetch-k", type=positive_int, default=8, help="stage-1 candidates (default 8)"
    )
    demo.add_argument(
        "--stage1",
        choices=["bm25", "dense", "title"],
        default="bm25",
        help="first-stage retrieval in Qdrant: BM25, dense MiniLM, or BM25 on titles only "
        "(needs --corpus with titles) (default bm25)",
    )
    add_qdrant_options(
        demo,
        path_help="folder of the embedded Qdrant store (default: a cache folder; "
        "':memory:' keeps it in memory)",
    )
    demo.add_argument(
        "--answer",
        action="store_true",
        help="also answer each query and print the answer, its citations and the prompt "
        "(see --generator)",
    )
    demo.add_argument(
        "--generator",
        choices=["extractive", "local"],
        default="extractive",
        help="what answers with --answer: 'extractive' (the context sentences most relevant "
        "to the question, no LLM) or 'local' (a local LLM: --llm, else RERANKIT_LOCAL_LLM, "
        "else the offline SmolLM2-135M-Instruct) (default extractive)",
    )
    demo.add_argument(
        "--llm",
        default=None,
        metavar="MODEL",
        help="the local LLM of --generator local: a hub id, a model folder or a .gguf file",
    )
    from rerankit.eval.cli import add_parser as add_eval_parser

    add_eval_parser(sub)
    from rerankit.serve.cli import add_parser as add_serve_parser

    add_serve_parser(sub)
    from rerankit.eval.rerank_cli import add_parser as add_rerank_run_parser

    add_rerank_run_parser(sub)
    from rerankit.calibrate.cli import add_parser as add_calibrate_parser

    add_calibrate_parser(sub)
    return parser


def _quiet_model_loading() -> None:
    """Hide weight-loading progress bars: the demo prints its own report."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the demo reports the missing extra itself
        return
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    # transformers' notes on how it loads (a .gguf's dtype advice) are not the user's concern
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rerankit`` with ``argv``; returns the exit code (argument errors exit with 2)."""
    args = _parser().parse_args(argv)
    _quiet_model_loading()
    if args.command == "eval":
        from rerankit.eval.cli import run as run_eval

        return run_eval(args)
    if args.command == "serve":
        from rerankit.serve.cli import run as run_serve

        return run_serve(args)
    if args.command == "rerank-run":
        from rerankit.eval.rerank_cli import run as run_rerank_run

        return run_rerank_run(args)
    if args.command == "calibrate":
        from rerankit.calibrate.cli import run as run_calibrate

        return run_calibrate(args)
    from rerankit.demo import DemoConfig, run_demo

    config = DemoConfig(
        reranker=args.reranker,
        queries=args.queries,
        fetch_k=args.fetch_k,
        top_n=args.top_n,
        min_score=args.min_score,
        stage1=args.stage1,
        qdrant_url=args.qdrant_url,
        qdrant_path=args.qdrant_path,
        answer=args.answer,
        generator=args.generator,
        llm=args.llm,
        corpus=args.corpus,
    )
    return guarded("demo", lambda: run_demo(config, sys.stdout))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
