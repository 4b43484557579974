"""A PNG of an evaluation: per-query change against the first stage, and score distributions.

matplotlib is imported here, on use (``pip install 'rerankit[eval]'``).
"""

from __future__ import annotations

from pathlib import Path

from rerankit._deps import require
from rerankit.errors import ConfigurationError
from rerankit.eval.report import EvalReport

__all__ = ["plot_report"]


def plot_report(report: EvalReport, path: str | Path, *, dpi: int = 110) -> Path:
    """Write a PNG with, per reranker, its per-query change in the primary measure (sorted
    bars: above zero is a win) and the distribution of its calibrated scores for relevant and
    other candidates. Returns the path written.

    Example:
        >>> from rerankit.eval import plot_report
        >>> plot_report(report, "dl19.png")  # doctest: +SKIP
    """
    matplotlib = require("matplotlib", extra="eval", feature="rerankit eval --plot")
    matplotlib.use("Agg")
    pyplot = require("matplotlib.pyplot", extra="eval", feature="rerankit eval --plot")
    rerankers = [s for s in report.systems if s.kind == "reranker"]
    if not rerankers:
        raise ConfigurationError("the report has no reranker to plot")
    primary = report.primary
    figure, axes = pyplot.subplots(
        len(rerankers), 2, figsize=(11, 2.8 * len(rerankers)), squeeze=False
    )
    for row, system in enumerate(rerankers):
        left, right = axes[row]
        deltas = sorted(system.per_query_delta.values(), reverse=True)
        colours = ["#2a9d8f" if d > 0 else ("#e76f51" if d < 0 else "#999999") for d in deltas]
        left.bar(range(len(deltas)), deltas, color=colours, width=1.0)
        left.axhline(0, color="black", linewidth=0.6)
        delta = system.deltas.get(primary)
        summary = (
            f" (mean {delta.mean:+.4f}; {delta.wins}W/{delta.ties}T/{delta.losses}L)"
            if delta
            else ""
        )
        left.set_title(f"{system.name}\nΔ {primary} per query{summary}", fontsize=8)
        left.set_xlabel("queries, sorted", fontsize=8)
        left.set_ylabel(f"Δ {primary}", fontsize=8)
        hist = system.histogram
        if hist is not None:
            centres = [(a + b) / 2 for a, b in zip(hist.edges, hist.edges[1:], strict=False)]
            width = hist.edges[1] - hist.edges[0] if len(hist.edges) > 1 else 0.05
            for label, counts, colour in (
                ("other", hist.other, "#8d99ae"),
                ("relevant", hist.relevant, "#2a9d8f"),
            ):
                total = max(1, sum(counts))
                right.bar(
                    centres,
                    [c / total for c in counts],
                    width=width,
                    alpha=0.55,
                    label=f"{label} ({sum(counts)})",
                    color=colour,
                )
            right.legend(fontsize=7)
        right.set_title(f"{system.name}\ncalibrated scores", fontsize=8)
        right.set_xlabel("score", fontsize=8)
        right.set_ylabel("share", fontsize=8)
    d = report.dataset
    figure.suptitle(
        f"{d.get('name', '')} ({d.get('split', '')}, {d.get('queries', '?')} queries) vs "
        f"{report.settings.get('first_stage', 'first stage')}",
        fontsize=10,
    )
    height = 2.8 * len(rerankers)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.45 / height))
    out = Path(path)
    figure.savefig(out, dpi=dpi)
    pyplot.close(figure)
    return out
