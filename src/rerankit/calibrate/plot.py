"""A reliability plot of a calibration fit: observed frequency of relevance against the
predicted probability, before and after fitting, with how many predictions fall in each bin.

matplotlib is imported here, on use (``pip install 'rerankit[eval]'``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rerankit._deps import require
from rerankit.calibrate.fit import CalibrationFit, ReliabilityBin

__all__ = ["plot_reliability"]


def _curve(bins: Sequence[ReliabilityBin]) -> tuple[list[float], list[float]]:
    kept = [b for b in bins if b.count and not math.isnan(b.observed)]
    return [b.mean_predicted for b in kept], [b.observed for b in kept]


def plot_reliability(
    fit: CalibrationFit, path: str | Path, *, title: str = "", dpi: int = 110
) -> Path:
    """Write a PNG: the reliability diagram before (the default calibration) and after (held-out
    predictions of the fitted one), and a log-scale histogram of the predictions. Returns the
    path written.

    Example:
        >>> from rerankit.calibrate.plot import plot_reliability
        >>> plot_reliability(fit, "reliability.png", title="embedding on SciFact")  # doctest: +SKIP
    """
    matplotlib = require("matplotlib", extra="eval", feature="rerankit calibrate --plot")
    matplotlib.use("Agg")
    pyplot = require("matplotlib.pyplot", extra="eval", feature="rerankit calibrate --plot")
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4.2))
    left.plot([0, 1], [0, 1], color="#999999", linestyle=":", label="perfect")
    for bins, label, colour in (
        (fit.reliability_before, f"before (ECE {fit.ece_before:.3f})", "#e76f51"),
        (fit.reliability_after, f"{fit.method}, held out (ECE {fit.ece_after:.3f})", "#2a9d8f"),
    ):
        xs, ys = _curve(bins)
        left.plot(xs, ys, marker="o", color=colour, label=label)
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_xlabel("predicted probability of relevance (bin mean)")
    left.set_ylabel("observed share relevant")
    left.legend(loc="upper left", fontsize=8)
    width = 0.045
    for bins, offset, colour, label in (
        (fit.reliability_before, -width / 2, "#e76f51", "before"),
        (fit.reliability_after, width / 2, "#2a9d8f", "after"),
    ):
        centres = [(b.lower + b.upper) / 2 + offset for b in bins]
        right.bar(centres, [max(b.count, 0) for b in bins], width=width, color=colour, label=label)
    right.set_yscale("log")
    right.set_xlim(0, 1)
    right.set_xlabel("predicted probability (10 bins)")
    right.set_ylabel("candidates")
    right.legend(fontsize=8)
    figure.suptitle(
        title or f"{fit.pairs:,} candidates, {fit.positives:,} relevant, {fit.queries} queries"
    )
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=dpi)
    pyplot.close(figure)
    return target
