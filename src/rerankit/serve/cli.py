"""The ``rerankit serve`` subcommand: its arguments and what it runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rerankit.cli_args import guarded, positive_int

__all__ = ["add_parser", "build_reranker", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to the ``rerankit`` subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="serve a reranker over HTTP (Cohere v2, TEI, Infinity and Jina wire formats)",
        description="Serve any rerankit reranker: POST /v2/rerank (Cohere v2), POST /rerank "
        "(TEI, Infinity, Jina), GET /health, GET /metrics (Prometheus). Scores are rerankit's "
        "calibrated scores. Requests need 'Authorization: Bearer <token>' when the token "
        "variable is set.",
    )
    p.add_argument(
        "--reranker",
        default="embedding",
        metavar="SPEC",
        help="reranker spec, e.g. 'embedding' or 'cross-encoder:/models/ce' (default: embedding)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument(
        "--token-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the bearer token (default RERANKIT_SERVE_TOKEN; "
        "when that is unset the server takes requests without a token)",
    )
    p.add_argument(
        "--max-documents",
        type=positive_int,
        default=1000,
        metavar="N",
        help="documents per request at most (default 1000; 413 above)",
    )
    p.add_argument(
        "--max-request-bytes",
        type=positive_int,
        default=8 * 1024 * 1024,
        metavar="BYTES",
        help="bytes per request body at most (default 8 MiB; 413)",
    )
    p.add_argument(
        "--max-in-flight",
        type=positive_int,
        default=64,
        metavar="N",
        help="requests answered at once at most (default 64; 429 above)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long requests in flight may take to finish (default 30)",
    )
    p.add_argument(
        "--no-micro-batching",
        action="store_true",
        help="do not share model batches between concurrent requests (cross-encoder specs "
        "micro-batch by default)",
    )
    p.add_argument(
        "--ray",
        action="store_true",
        help="deploy on Ray Serve instead (replicas, @serve.batch, autoscaling)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="Ray cluster to join (default: start a local one)",
    )
    p.add_argument(
        "--replicas",
        type=positive_int,
        default=1,
        metavar="N",
        help="Ray Serve replicas to start with (default 1)",
    )
    p.add_argument(
        "--max-replicas",
        type=positive_int,
        default=None,
        metavar="N",
        help="autoscale Ray Serve replicas up to N (default: no autoscaling)",
    )
    return p


def build_reranker(spec: str, *, micro_batching: bool = True) -> Any:
    """The reranker of ``spec``; a cross-encoder spec micro-batches unless it says otherwise
    (or ``micro_batching=False``)."""
    from rerankit.backends.cross_encoder import CrossEncoderReranker
    from rerankit.registry import from_spec, parse_spec

    name, _, options = parse_spec(spec)
    overrides: dict[str, Any] = {}
    if micro_batching and name == CrossEncoderReranker.backend and "micro_batching" not in options:
        overrides["micro_batching"] = True
    return from_spec(spec, **overrides)


def _serve(args: argparse.Namespace) -> None:
    from rerankit.serve import Limits, token_from_env
    from rerankit.serve.logs import configure, log

    limits = Limits(
        max_documents=args.max_documents,
        max_request_bytes=args.max_request_bytes,
        max_in_flight=args.max_in_flight,
    )
    token = token_from_env(args.token_env)
    configure()
    if args.ray:
        from rerankit.serve.ray import RayOptions, run_ray

        run_ray(
            args.reranker,
            limits=limits,
            token_env=args.token_env,
            options=RayOptions(
                replicas=args.replicas,
                max_replicas=args.max_replicas,
                micro_batching=not args.no_micro_batching,
            ),
            host=args.host,
            port=args.port,
            address=args.ray_address,
        )
        return
    from rerankit.serve import RerankService, create_app
    from rerankit.serve import run as run_server

    reranker = build_reranker(args.reranker, micro_batching=not args.no_micro_batching)
    reranker.rerank("warm up", ["warm up"])  # load the model now: a bad spec fails here
    service = RerankService(reranker, limits=limits, token=token)

    def ready(url: str) -> None:
        if token is None:
            log.warning("no bearer token set: the server takes requests from anyone")
        sys.stderr.write(f"rerankit serve: {reranker!r} on {url}\n")
        sys.stderr.flush()

    run_server(
        create_app(service),
        host=args.host,
        port=args.port,
        shutdown_timeout=args.shutdown_timeout,
        on_ready=ready,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``rerankit serve`` with parsed ``args``; returns the exit code."""
    if not 0 <= args.port <= 65535:
        sys.stderr.write(f"rerankit serve: error: --port must be in 0-65535, got {args.port}\n")
        return 2
    return guarded("serve", lambda: _serve(args))
