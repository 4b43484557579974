"""Fitting a monotone map from raw score to P(relevant), and measuring how well it is calibrated.

:func:`fit_calibration` fits two candidates with scikit-learn, both non-decreasing (a
calibration must never reorder a reranker's list):

* **Platt scaling**: a logistic regression on the raw score (with Platt's smoothed targets, so
  separable data cannot run the slope to infinity), exported as a
  :class:`~rerankit.Sigmoid`; a fitted slope below zero (scores that go *against* relevance) is
  replaced by a flat line at the base rate;
* **isotonic regression**, exported as a :class:`~rerankit.calibration.Isotonic` with its knots.

It picks the one with the lower log-loss on held-out queries (grouped K-fold: every query's
candidates stay in one fold, so the score of a query never helps predict itself), then refits
it on everything. ECE "after" is measured on those held-out predictions, not in-sample.

:func:`expected_calibration_error` and :func:`reliability` are the usual 10-bin reliability
measures (equal-width bins over [0, 1]; the last bin includes 1.0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rerankit._deps import require
from rerankit.calibration import Calibration, Isotonic, Sigmoid
from rerankit.errors import CalibrationError, ConfigurationError

__all__ = [
    "METHODS",
    "CalibrationFit",
    "ReliabilityBin",
    "expected_calibration_error",
    "fit_calibration",
    "fit_isotonic",
    "fit_platt",
    "log_loss",
    "reliability",
]

Method = Literal["auto", "platt", "isotonic"]
METHODS = ("auto", "platt", "isotonic")
EPS = 1e-6
"""Probabilities are clipped to [EPS, 1 - EPS] inside the log-loss (an isotonic map can reach
0 and 1 exactly)."""


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram: predictions in ``[lower, upper)``.

    Example:
        >>> from rerankit.calibrate import reliability
        >>> first = reliability([0.05, 0.08, 0.95], [0, 1, 1])[0]
        >>> first.count, round(first.mean_predicted, 3), first.observed
        (2, 0.065, 0.5)
    """

    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed: float
    """Share of relevant documents among the bin's predictions (NaN for an empty bin)."""


def _arrays(probabilities: Sequence[float], labels: Sequence[int]) -> tuple[Any, Any]:
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels, dtype=float)
    if p.shape != y.shape or p.ndim != 1:
        raise ConfigurationError("probabilities and labels must be two lists of equal length")
    return p, y


def reliability(
    probabilities: Sequence[float], labels: Sequence[int], *, bins: int = 10
) -> list[ReliabilityBin]:
    """The reliability diagram of ``probabilities`` against 0/1 ``labels`` in ``bins``
    equal-width bins."""
    p, y = _arrays(probabilities, labels)
    which = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        out.append(
            ReliabilityBin(
                lower=b / bins,
                upper=(b + 1) / bins,
                count=count,
                mean_predicted=float(p[mask].mean()) if count else math.nan,
                observed=float(y[mask].mean()) if count else math.nan,
            )
        )
    return out


def expected_calibration_error(
    probabilities: Sequence[float], labels: Sequence[int], *, bins: int = 10
) -> float:
    """ECE: the count-weighted mean of ``|observed - mean predicted|`` over the bins.

    Example:
        >>> from rerankit.calibrate import expected_calibration_error
        >>> expected_calibration_error([0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0])  # (0.4 + 0.1) / 2
        0.25
    """
    table = reliability(probabilities, labels, bins=bins)
    total = sum(b.count for b in table)
    if not total:
        return math.nan
    error = sum(b.count * abs(b.observed - b.mean_predicted) for b in table if b.count)
    return round(error / total, 12)


def log_loss(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    """Mean negative log-likelihood of 0/1 ``labels`` (probabilities clipped by :data:`EPS`)."""
    p, y = _arrays(probabilities, labels)
    p = np.clip(p, EPS, 1.0 - EPS)
    return float(-(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)).mean())


def fit_platt(raw: Sequence[float], labels: Sequence[int]) -> Sigmoid:
    """Platt scaling (logistic regression on the raw score, Platt's smoothed targets) as a
    non-decreasing :class:`~rerankit.Sigmoid`."""
    linear_model = require(
        "sklearn.linear_model", extra="eval", feature="rerankit calibrate", package="scikit-learn"
    )
    x, y = _arrays(raw, labels)
    positives = float(y.sum())
    negatives = float(len(y) - positives)
    if positives == 0 or negatives == 0:
        rate = (positives + 1.0) / (len(y) + 2.0)
        return Sigmoid(scale=0.0, shift=math.log(rate / (1.0 - rate)))
    # Platt (1999): targets (N+ + 1) / (N+ + 2) and 1 / (N- + 2) instead of 1 and 0, written as
    # each point twice, once per label, weighted by its target.
    high, low = (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0)
    target = np.where(y > 0.5, high, low)
    mean, spread = float(x.mean()), float(x.std()) or 1.0
    z = ((x - mean) / spread).reshape(-1, 1)
    model = linear_model.LogisticRegression(C=1e6, max_iter=1000)
    model.fit(
        np.vstack([z, z]),
        np.concatenate([np.ones(len(y)), np.zeros(len(y))]),
        sample_weight=np.concatenate([target, 1.0 - target]),
    )
    a, b = float(model.coef_[0][0]), float(model.intercept_[0])
    if a <= 0.0:  # no increasing relation: the best monotone map is the base rate
        rate = float(target.mean())
        return Sigmoid(scale=0.0, shift=math.log(rate / (1.0 - rate)))
    return Sigmoid(scale=a / spread, shift=b - a * mean / spread)


def fit_isotonic(raw: Sequence[float], labels: Sequence[int]) -> Isotonic:
    """Isotonic regression (non-decreasing, in [0, 1]) as an
    :class:`~rerankit.calibration.Isotonic` through scikit-learn's knots."""
    isotonic = require(
        "sklearn.isotonic", extra="eval", feature="rerankit calibrate", package="scikit-learn"
    )
    x, y = _arrays(raw, labels)
    model = isotonic.IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(x, y)
    knots_x = [float(v) for v in model.X_thresholds_]
    knots_y = [min(1.0, max(0.0, float(v))) for v in model.y_thresholds_]
    return Isotonic(tuple(knots_x), tuple(knots_y))


_FITTERS: dict[str, Callable[[Sequence[float], Sequence[int]], Calibration]] = {
    "platt": fit_platt,
    "isotonic": fit_isotonic,
}


@dataclass(frozen=True)
class CalibrationFit:
    """What :func:`fit_calibration` found.

    ``calibration`` is the chosen map, refit on every pair; ``heldout_log_loss`` and
    ``heldout_ece`` hold the held-out log-loss and ECE of each method tried and of
    ``"default"`` (the reranker's calibration before fitting, which needs no fitting, so it is
    measured on every pair); ``ece_before`` / ``ece_after`` are the 10-bin ECE of the default
    calibration and of the held-out predictions of the chosen method, with their
    reliability diagrams.

    Example:
        >>> from rerankit import Sigmoid
        >>> from rerankit.calibrate import fit_calibration
        >>> fit = fit_calibration([0.1, 0.2, 0.8, 0.9] * 10, [0, 0, 1, 1] * 10,
        ...                       [str(i % 5) for i in range(40)], default=Sigmoid())
        >>> fit.method in ("platt", "isotonic"), fit.pairs, fit.queries
        (True, 40, 5)
    """

    calibration: Sigmoid | Isotonic
    method: str
    heldout_log_loss: dict[str, float]
    heldout_ece: dict[str, float]
    ece_before: float
    ece_after: float
    reliability_before: tuple[ReliabilityBin, ...]
    reliability_after: tuple[ReliabilityBin, ...]
    pairs: int
    positives: int
    queries: int
    folds: int

    def summary(self) -> dict[str, Any]:
        """The plain JSON-able figures (what a calibration file records under ``"fit"``)."""
        return {
            "method": self.method,
            "heldout_log_loss": {k: round(v, 6) for k, v in self.heldout_log_loss.items()},
            "heldout_ece": {k: round(v, 6) for k, v in self.heldout_ece.items()},
            "ece_before": round(self.ece_before, 6),
            "ece_after": round(self.ece_after, 6),
            "pairs": self.pairs,
            "positives": self.positives,
            "queries": self.queries,
            "folds": self.folds,
        }


def _folds(groups: Sequence[str], folds: int) -> list[tuple[Any, Any]]:
    model_selection = require(
        "sklearn.model_selection",
        extra="eval",
        feature="rerankit calibrate",
        package="scikit-learn",
    )
    splitter = model_selection.GroupKFold(n_splits=folds)
    index = np.arange(len(groups))
    return list(splitter.split(index, groups=np.asarray(groups)))


def fit_calibration(
    raw: Sequence[float],
    labels: Sequence[int],
    groups: Sequence[str],
    *,
    default: Calibration,
    method: Method = "auto",
    folds: int = 5,
) -> CalibrationFit:
    """Fit raw score -> P(relevant) on (``raw``, ``labels``) pairs grouped by query.

    ``labels`` are 0/1, ``groups`` the query id of each pair, ``default`` the calibration the
    reranker used before (for the "before" figures). ``method="auto"`` tries Platt scaling and
    isotonic regression and keeps the lower held-out log-loss; ``"platt"`` / ``"isotonic"``
    fit that one only (its held-out figures are still reported). Needs scikit-learn
    (``rerankit[eval]``).

    Example:
        >>> import random
        >>> from rerankit import Sigmoid
        >>> from rerankit.calibrate import fit_calibration
        >>> rng = random.Random(0)
        >>> raw = [rng.uniform(-4, 4) for _ in range(4000)]
        >>> labels = [int(rng.random() < Sigmoid(2.0, -1.0)(r)) for r in raw]
        >>> fit = fit_calibration(raw, labels, [str(i // 40) for i in range(4000)],
        ...                       default=Sigmoid(), method="platt")
        >>> round(fit.calibration.scale, 1), round(fit.calibration.shift, 1)  # doctest: +SKIP
        (2.0, -1.0)
    """
    if method not in METHODS:
        raise ConfigurationError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigurationError(f"folds must be an int >= 2, got {folds!r}")
    x, y = _arrays(raw, labels)
    if len(groups) != len(x):
        raise ConfigurationError("groups must hold one query id per pair")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ConfigurationError("labels must be 0 or 1")
    if not np.isfinite(x).all():
        raise CalibrationError("raw scores must be finite numbers")
    positives = int(y.sum())
    n_queries = len(set(groups))
    if positives == 0 or positives == len(y):
        what = "relevant" if positives == 0 else "non-relevant"
        raise CalibrationError(
            f"cannot fit a calibration: none of the {len(y)} scored candidates is {what} "
            "(check the qrels split and the relevance level)"
        )
    if n_queries < 2:
        raise CalibrationError(
            "cannot fit a calibration on one query: held-out queries choose the method"
        )
    k = min(folds, n_queries)
    tried = list(_FITTERS) if method == "auto" else [method]
    heldout = {name: np.zeros(len(y)) for name in tried}
    for train, test in _folds(groups, k):
        for name in tried:
            fitted = _FITTERS[name](x[train].tolist(), y[train].tolist())
            heldout[name][test] = [fitted(float(v)) for v in x[test]]
    labels01 = y.astype(int).tolist()
    before = [min(1.0, max(0.0, float(default(float(v))))) for v in x]
    losses = {name: log_loss(heldout[name].tolist(), labels01) for name in tried}
    chosen = min(tried, key=lambda name: (losses[name], name))
    losses["default"] = log_loss(before, labels01)
    eces = {name: expected_calibration_error(heldout[name].tolist(), labels01) for name in tried}
    eces["default"] = expected_calibration_error(before, labels01)
    final = _FITTERS[chosen](x.tolist(), labels01)
    assert isinstance(final, Sigmoid | Isotonic)
    after = heldout[chosen].tolist()
    return CalibrationFit(
        calibration=final,
        method=chosen,
        heldout_log_loss=losses,
        heldout_ece=eces,
        ece_before=eces["default"],
        ece_after=eces[chosen],
        reliability_before=tuple(reliability(before, labels01)),
        reliability_after=tuple(reliability(after, labels01)),
        pairs=len(y),
        positives=positives,
        queries=n_queries,
        folds=k,
    )
