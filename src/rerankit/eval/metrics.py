"""Retrieval measures through ir-measures (trec_eval semantics), and per-query comparisons.

Nothing here re-implements a measure: :class:`Evaluator` hands qrels and runs to
`ir-measures <https://ir-measur.es>`_, whose default provider for these measures is
``pytrec_eval`` (trec_eval's own code). nDCG uses the graded judgements as linear gains with a
log2 discount, and the ideal DCG counts every judged document of the query, retrieved or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rerankit._deps import require
from rerankit.errors import ConfigurationError

__all__ = ["Delta", "Evaluator", "compare", "default_measures"]

PRIMARY = "nDCG@10"
"""The measure that wins, ties and losses are counted on first."""

PerQuery = dict[str, dict[str, float]]
"""``{query id: {measure: value}}``."""


def _ir_measures() -> Any:
    return require("ir_measures", extra="eval", feature="rerankit eval", package="ir-measures")


def default_measures(*, depth: int, rel_level: int = 1) -> list[str]:
    """nDCG@10, RR@10, R@10 and R@``depth`` (binary measures count grades >= ``rel_level``).

    Example:
        >>> from rerankit.eval import default_measures
        >>> default_measures(depth=100, rel_level=2)
        ['nDCG@10', 'RR(rel=2)@10', 'R(rel=2)@10', 'R(rel=2)@100']
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigurationError(f"depth must be a positive int, got {depth!r}")
    if isinstance(rel_level, bool) or not isinstance(rel_level, int) or rel_level < 1:
        raise ConfigurationError(f"rel_level must be an int >= 1, got {rel_level!r}")
    rel = "" if rel_level == 1 else f"(rel={rel_level})"
    cutoffs = [10] if depth == 10 else [10, depth]
    return [PRIMARY, f"RR{rel}@10", *(f"R{rel}@{k}" for k in cutoffs)]


class Evaluator:
    """Computes measures for runs against one set of qrels, per query and on average.

    ``measures`` are ir-measures names (``"nDCG@10"``, ``"RR(rel=2)@10"``, ``"R@100"``, ...).
    Only queries that are both judged and in the run are evaluated (trec_eval's default).

    Example:
        >>> from rerankit.eval import Evaluator
        >>> ev = Evaluator({"q1": {"a": 2, "b": 0, "c": 1, "z": 3}}, measures=["nDCG@10", "RR@10"])
        >>> per_query = ev.per_query({"q1": {"a": 3.0, "b": 2.0, "c": 1.0}})
        >>> round(per_query["q1"]["nDCG@10"], 4), per_query["q1"]["RR@10"]
        (0.525, 1.0)
    """

    def __init__(self, qrels: Mapping[str, Mapping[str, int]], *, measures: Sequence[str]) -> None:
        ir = _ir_measures()
        if isinstance(measures, str) or not measures:
            raise ConfigurationError("measures must be a non-empty list of measure names")
        parsed = []
        for name in measures:
            try:
                parsed.append(ir.parse_measure(name))
            except (ValueError, TypeError, NameError, SyntaxError) as exc:
                raise ConfigurationError(f"unknown measure {name!r}: {exc}") from None
        self.measures: list[str] = [str(m) for m in parsed]
        if len(set(self.measures)) != len(self.measures):
            raise ConfigurationError(f"measures repeat: {measures!r}")
        self._qrels = {q: dict(docs) for q, docs in qrels.items()}
        self._evaluator = ir.evaluator(parsed, self._qrels)

    def per_query(self, scores: Mapping[str, Mapping[str, float]]) -> PerQuery:
        """``{query id: {measure: value}}`` for a run given as ``{query: {doc: score}}``."""
        out: PerQuery = {}
        for metric in self._evaluator.iter_calc({q: dict(d) for q, d in scores.items()}):
            out.setdefault(str(metric.query_id), {})[str(metric.measure)] = float(metric.value)
        return out

    def aggregate(self, scores: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        """The mean of each measure over the evaluated queries (ir-measures' aggregate)."""
        result = self._evaluator.calc_aggregate({q: dict(d) for q, d in scores.items()})
        by_name = {str(m): float(v) for m, v in result.items()}
        return {name: by_name.get(name, 0.0) for name in self.measures}


@dataclass(frozen=True, slots=True)
class Delta:
    """How a system compares with a baseline on one measure, over the same queries.

    ``mean`` is the mean per-query difference (system - baseline); a query is a win, tie or
    loss when its difference is above ``tolerance``, within it, or below ``-tolerance``.

    Example:
        >>> from rerankit.eval import Delta
        >>> Delta(mean=0.05, wins=3, ties=1, losses=1).as_dict()["wins"]
        3
    """

    mean: float
    wins: int
    ties: int
    losses: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "wins": self.wins, "ties": self.ties, "losses": self.losses}


def compare(
    baseline: PerQuery, system: PerQuery, measure: str, *, tolerance: float = 1e-9
) -> tuple[Delta, dict[str, float]]:
    """Per-query differences ``system - baseline`` on ``measure``, and their summary.

    Queries missing from either side are left out.

    Example:
        >>> from rerankit.eval import compare
        >>> base = {"q1": {"m": 0.5}, "q2": {"m": 0.5}, "q3": {"m": 0.2}}
        >>> new = {"q1": {"m": 0.7}, "q2": {"m": 0.5}, "q3": {"m": 0.1}}
        >>> summary, per_query = compare(base, new, "m")
        >>> summary.wins, summary.ties, summary.losses, round(summary.mean, 3)
        (1, 1, 1, 0.033)
    """
    diffs = {
        q: system[q][measure] - baseline[q][measure]
        for q in baseline
        if q in system and measure in system[q] and measure in baseline[q]
    }
    values = list(diffs.values())
    delta = Delta(
        mean=sum(values) / len(values) if values else 0.0,
        wins=sum(1 for v in values if v > tolerance),
        ties=sum(1 for v in values if abs(v) <= tolerance),
        losses=sum(1 for v in values if v < -tolerance),
    )
    return delta, diffs
