"""Reports of multi-stage searches: one query's hits stage by stage, and latency per stage.

:func:`render_results` prints one search like ``rerankit demo`` does (the latency of each stage
on one line, then every hit with its rank in each stage); :class:`LatencySummary` aggregates
the timings of many searches (median, p90, mean per stage) as text or markdown.
"""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rerankit.errors import ConfigurationError
from rerankit.multistage.results import MultiStageResults
from rerankit.multistage.stages import STAGE_ENCODE, STAGE_ORDER

__all__ = ["LatencySummary", "StageLatency", "render_results"]

_TIMING_ORDER = (STAGE_ENCODE, *STAGE_ORDER, "pipeline", "total")
_SHORT = {"multivector": "mv"}


def _clip(text: str, width: int) -> str:
    return textwrap.shorten(text, width=width, placeholder="...")


def _clip_id(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _timing_line(timings: Mapping[str, float]) -> str:
    parts = [f"{name} {timings[name]:.1f} ms" for name in _TIMING_ORDER if name in timings]
    return " | ".join(parts)


def render_results(results: MultiStageResults, *, width: int = 60) -> str:
    """One search as text: latency per stage, then each hit's 1-based rank in every stage.

    ``-`` marks a stage whose list did not hold the hit (or that was not observed).

    Example:
        >>> from rerankit.multistage import MultiStageHit, MultiStageResults, StageScore
        >>> stages = {"dense": StageScore(2, 0.7), "sparse": StageScore(None, None),
        ...           "fusion": StageScore(0, 0.5)}
        >>> hit = MultiStageHit(point_id="p1", doc_id="d1", text="Qdrant stores vectors.",
        ...                     metadata={}, score=0.5, rank=0, stages=stages)
        >>> r = MultiStageResults([hit], query="vector db", stages_run=tuple(stages),
        ...                       observed=tuple(stages),
        ...                       timings={"encode": 3.0, "dense": 1.0, "sparse": 0.5,
        ...                                "fusion": 1.5})
        >>> print(render_results(r))
        query: vector db
          encode 3.0 ms | dense 1.0 ms | sparse 0.5 ms | fusion 1.5 ms
          rank  score     dense sparse fusion  id  text
             1  0.500         3      -      1  d1  Qdrant stores vectors.
    """
    stages = [s for s in STAGE_ORDER if s in results.stages_run]
    id_width = max([2, *(len(h.id) for h in results)])
    id_width = min(id_width, 24)
    header = "  rank  score    " + " ".join(f"{_SHORT.get(s, s):>6}" for s in stages)
    lines = [
        f"query: {results.query}",
        f"  {_timing_line(results.timings)}",
        f"{header}  {'id':<{id_width}}  text",
    ]
    for hit in results:
        cells = []
        for stage in stages:
            place = hit.stages.get(stage)
            cells.append(
                f"{place.rank + 1:>6}" if place and place.rank is not None else f"{'-':>6}"
            )
        lines.append(
            f"  {hit.rank + 1:>4} {hit.score:6.3f}    {' '.join(cells)}  "
            f"{_clip_id(hit.id, id_width):<{id_width}}  {_clip(hit.text, width)}"
        )
    rerank = results.rerank_results
    if rerank is not None:
        for dropped in rerank.dropped:
            lines.append(f"  dropped: candidate {dropped.index + 1} [{dropped.reason}]")
    if results.empty_reason:
        lines.append(f"  -> nothing returned: {results.empty_reason}")
    return "\n".join(lines)


@dataclass(frozen=True)
class StageLatency:
    """Latency of one stage over several searches, in milliseconds."""

    stage: str
    count: int
    median: float
    p90: float
    mean: float


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class LatencySummary:
    """Per-stage latency (median, p90, mean in ms) over many :class:`MultiStageResults`.

    Example:
        >>> from rerankit.multistage import LatencySummary, MultiStageResults
        >>> runs = [MultiStageResults([], query="q", stages_run=("dense",), observed=("dense",),
        ...                           timings={"encode": e, "dense": 1.0, "pipeline": e + 1.0})
        ...         for e in (2.0, 4.0, 6.0)]
        >>> summary = LatencySummary.from_results(runs)
        >>> summary.stage("encode").median
        4.0
        >>> print(summary.to_markdown())
        | stage | median ms | p90 ms | mean ms | searches |
        |---|---|---|---|---|
        | encode | 4.0 | 5.6 | 4.0 | 3 |
        | dense | 1.0 | 1.0 | 1.0 | 3 |
        | pipeline | 5.0 | 6.6 | 5.0 | 3 |
    """

    def __init__(self, stages: Iterable[StageLatency]) -> None:
        self.stages: tuple[StageLatency, ...] = tuple(stages)

    @classmethod
    def from_results(cls, results: Iterable[MultiStageResults]) -> LatencySummary:
        """Aggregate the ``timings`` of ``results`` (stages absent from a search are skipped)."""
        samples: dict[str, list[float]] = {}
        for result in results:
            if not isinstance(result, MultiStageResults):
                raise ConfigurationError(f"expected MultiStageResults, got {type(result).__name__}")
            for name, value in result.timings.items():
                samples.setdefault(name, []).append(float(value))
        order = [n for n in _TIMING_ORDER if n in samples] + sorted(
            n for n in samples if n not in _TIMING_ORDER
        )
        return cls(
            StageLatency(
                stage=name,
                count=len(samples[name]),
                median=statistics.median(samples[name]),
                p90=_quantile(samples[name], 0.9),
                mean=statistics.fmean(samples[name]),
            )
            for name in order
        )

    def stage(self, name: str) -> StageLatency:
        """The summary of one stage (``KeyError`` when it never ran)."""
        for item in self.stages:
            if item.stage == name:
                return item
        raise KeyError(name)

    def to_markdown(self) -> str:
        """A markdown table, one row per stage."""
        lines = ["| stage | median ms | p90 ms | mean ms | searches |", "|---|---|---|---|---|"]
        for s in self.stages:
            lines.append(f"| {s.stage} | {s.median:.1f} | {s.p90:.1f} | {s.mean:.1f} | {s.count} |")
        return "\n".join(lines)

    def to_text(self) -> str:
        """A plain-text table, one row per stage."""
        lines = [f"{'stage':<12} {'median ms':>10} {'p90 ms':>10} {'mean ms':>10} {'n':>5}"]
        for s in self.stages:
            lines.append(
                f"{s.stage:<12} {s.median:>10.1f} {s.p90:>10.1f} {s.mean:>10.1f} {s.count:>5}"
            )
        return "\n".join(lines)
