"""The ``rerankit calibrate`` subcommand: fit, report and write a calibration file."""

from __future__ import annotations

import argparse
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from rerankit.cli_args import guarded

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``calibrate`` subcommand to the ``rerankit`` subparsers."""
    from rerankit.calibrate.fit import METHODS
    from rerankit.eval.cli import add_first_stage_arguments

    p: argparse.ArgumentParser = sub.add_parser(
        "calibrate",
        help="fit raw score -> P(relevant) for a reranker on a BEIR-layout dataset",
        description="Score a first stage's candidates (--run, or the full pipeline) with the "
        "reranker, fit a monotone map from its raw score to the probability of relevance "
        "(Platt scaling or isotonic regression, the lower held-out log-loss wins), report the "
        "expected calibration error before and after, and write a JSON file keyed by the "
        "model's fingerprint. Load it with calibration='FILE' or the spec option "
        "?calibration=FILE; min_score then means an estimated probability of relevance.",
    )
    add_first_stage_arguments(p)
    p.add_argument(
        "--reranker",
        action="append",
        dest="rerankers",
        metavar="SPEC",
        help="reranker spec to calibrate (default: embedding); repeat it with --fuse to "
        "calibrate their fusion",
    )
    p.add_argument(
        "--fuse",
        choices=["rrf", "weighted"],
        default=None,
        help="calibrate a FusionReranker of all --reranker specs and the first-stage score",
    )
    p.add_argument(
        "--output",
        metavar="PATH",
        default=None,
        help="the calibration file to write, or a folder (written as <fingerprint>.json); "
        "default: the calibrations folder ($RERANKIT_CALIBRATIONS, else "
        "~/.cache/rerankit/calibrations), where calibration='auto' finds it",
    )
    p.add_argument(
        "--method",
        choices=list(METHODS),
        default="auto",
        help="auto (default): the lower held-out log-loss of platt and isotonic",
    )
    p.add_argument(
        "--folds",
        type=int,
        default=5,
        metavar="K",
        help="query folds for the held-out figures (default 5)",
    )
    p.add_argument("--plot", metavar="FILE", help="write a reliability plot (PNG, matplotlib)")
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``rerankit calibrate`` for parsed ``args``; returns the exit code (2 with one line on
    stderr for a user mistake)."""
    return guarded("calibrate", lambda: _run(args, out or sys.stdout))


def _reranker(args: argparse.Namespace) -> Any:
    from rerankit.annotate import RETRIEVAL_SCORE_KEY
    from rerankit.backends.fusion import FusionReranker
    from rerankit.errors import ConfigurationError
    from rerankit.registry import as_reranker

    specs = args.rerankers or ["embedding"]
    rerankers = [as_reranker(spec) for spec in specs]
    if args.fuse:
        return FusionReranker(rerankers, method=args.fuse, first_stage=RETRIEVAL_SCORE_KEY)
    if len(rerankers) > 1:
        raise ConfigurationError(
            f"calibrate fits one reranker, got {len(rerankers)} --reranker specs: pass one, "
            "or add --fuse rrf|weighted to calibrate their fusion"
        )
    return rerankers[0]


def _version() -> str:
    try:
        return metadata.version("rerankit")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
        return "unknown"


def _run(args: argparse.Namespace, out: TextIO) -> None:
    from rerankit.calibrate.files import FittedCalibration, calibration_path, calibrations_dir
    from rerankit.calibrate.fingerprint import model_fingerprint
    from rerankit.calibrate.fit import fit_calibration
    from rerankit.calibrate.pairs import score_pairs
    from rerankit.errors import ConfigurationError
    from rerankit.eval.cli import load_first_stage

    if args.folds < 2:
        raise ConfigurationError(f"--folds must be 2 or more, got {args.folds}")
    reranker = _reranker(args)
    data, first_stage, depth, cache = load_first_stage(args)
    top = first_stage.restrict([q for q in data.judged_queries() if q in first_stage]).top(depth)
    if args.max_queries:
        top = top.restrict(list(top)[: args.max_queries])
    in_scope = {e.doc_id for q in top for e in top[q] if e.doc_id in data.corpus}
    cache.attach(
        reranker,
        [data.text(d) for d in data.corpus if d in in_scope],
        queries=[data.queries.get(q) or top.query_texts.get(q, "") for q in top],
        desc="encode documents",
    )
    pairs = score_pairs(
        data,
        top,
        reranker,
        rel_level=args.rel_level,
        progress=not args.quiet,
    )
    fit = fit_calibration(
        pairs.raw,
        pairs.labels,
        pairs.queries,
        default=reranker.calibration,
        method=args.method,
        folds=args.folds,
    )
    fingerprint = model_fingerprint(reranker)
    fitted = FittedCalibration(
        fit.calibration,
        fingerprint,
        score_space=reranker.score_space.value,
        fit={
            **fit.summary(),
            "dataset": data.name,
            "split": data.split,
            "rel_level": args.rel_level,
            "first_stage": first_stage.name,
            "depth": depth,
            "reranker": args.rerankers or ["embedding"],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rerankit": _version(),
        },
    )
    written = fitted.save(args.output or calibration_path(fingerprint, calibrations_dir()))
    out.write(_report(fitted, fit, args, written) + "\n")
    if args.plot:
        from rerankit.calibrate.plot import plot_reliability

        plot_reliability(fit, args.plot, title=f"{fingerprint.describe()} on {data.name}")


def _report(fitted: Any, fit: Any, args: argparse.Namespace, written: Path) -> str:
    lines = [
        f"calibrated {fitted.fingerprint.describe()} on {fitted.fit['dataset']} (split "
        f"{fitted.fit['split']}): {fit.pairs:,} candidates of {fit.queries} queries, "
        f"{fit.positives:,} relevant (grade >= {args.rel_level})",
        "",
        "| calibration | held-out log-loss | ECE (10 bins) |",
        "|---|---:|---:|",
    ]
    for name in ("default", *(n for n in fit.heldout_log_loss if n != "default")):
        mark = " (chosen)" if name == fit.method else ""
        lines.append(
            f"| {name}{mark} | {fit.heldout_log_loss[name]:.4f} | {fit.heldout_ece[name]:.4f} |"
        )
    lines += [
        "",
        f"held out: {fit.folds} folds by query (each query's candidates predicted by a fit on "
        "the other folds); 'default' is the reranker's calibration before fitting",
        f"wrote {written} (fingerprint {fitted.fingerprint.digest})",
        f"use it: calibration={str(written)!r}, or the spec option ?calibration={written}; "
        "min_score=0.5 then means an estimated probability of relevance of at least 0.5",
    ]
    return "\n".join(lines)
