"""The score contract: every backend declares the space of its raw score and maps it to [0, 1].

A threshold such as ``min_score=0.5`` compares the calibrated ``score``:

===============  =========================================  ===================  =========
space            raw score                                  default calibration  absolute?
===============  =========================================  ===================  =========
``logit``        unbounded logit (cross-encoder)            ``sigmoid(raw)``     yes
``probability``  in [0, 1] (Cohere, LLM P(yes))             identity             yes
``grade``        a 0-10 grade (LLM without logprobs)        ``raw / 10``         yes
``cosine``       cosine similarity in [-1, 1]               ``clip(raw, 0, 1)``  yes
``rank``         from positions, or normalised over one     identity             no
                 list (listwise LLM, fusion, no reranker)
===============  =========================================  ===================  =========

"Absolute" scores can be compared with a fixed ``min_score`` across queries. Cosines are
absolute but not probabilities: their default is a clip, so fit a calibration or tune the
threshold per model. A ``rank`` score only orders one list (the best document of every list
gets about the same score however relevant it is), so ``min_score`` on a reranker that declares
it raises :class:`~rerankit.ConfigurationError`: use ``top_n`` or ``min_ratio``, or pass a
``calibration`` you fitted.

Any callable ``float -> float`` can replace the default (pass ``calibration=`` to a backend);
:class:`Sigmoid` and :class:`Linear` cover the usual fits (Platt scaling, min-max) and
:class:`Isotonic` a monotone piecewise-linear map. ``rerankit calibrate`` fits a Sigmoid or an
Isotonic from raw score to the probability of relevance (:mod:`rerankit.calibrate`), and a
reranker loads the file it writes with ``calibration="file.json"``.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from rerankit.errors import CalibrationError, ConfigurationError

__all__ = [
    "Calibration",
    "CalibrationSource",
    "Clip",
    "Identity",
    "Isotonic",
    "Linear",
    "ScoreSpace",
    "Sigmoid",
    "calibrate",
    "default_calibration",
]

Calibration = Callable[[float], float]
CalibrationSource = Calibration | str | os.PathLike[str]
"""What ``calibration=`` takes: a callable, the path of a fitted calibration file (written by
``rerankit calibrate``), or ``"auto"`` / a folder to look the reranker's fingerprint up in."""


class ScoreSpace(str, Enum):
    """The space a backend's raw score lives in."""

    LOGIT = "logit"
    PROBABILITY = "probability"
    COSINE = "cosine"
    GRADE = "grade"
    RANK = "rank"

    @property
    def absolute(self) -> bool:
        """Whether a fixed ``min_score`` means the same on every candidate list (not ``rank``)."""
        return self is not ScoreSpace.RANK


@dataclass(frozen=True)
class Sigmoid:
    """``1 / (1 + exp(-(scale * raw + shift)))``: Platt scaling of a logit."""

    scale: float = 1.0
    shift: float = 0.0

    def __call__(self, raw: float) -> float:
        z = self.scale * raw + self.shift
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


@dataclass(frozen=True)
class Linear:
    """``clip((raw - low) / (high - low), 0, 1)``: maps a known raw range onto [0, 1]."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise CalibrationError(f"Linear needs high > low, got low={self.low}, high={self.high}")

    def __call__(self, raw: float) -> float:
        return min(1.0, max(0.0, (raw - self.low) / (self.high - self.low)))


@dataclass(frozen=True)
class Clip:
    """``clip(raw, 0, 1)``: for scores that are already probabilities or non-negative cosines."""

    def __call__(self, raw: float) -> float:
        return min(1.0, max(0.0, raw))


Identity = Clip


@dataclass(frozen=True)
class Isotonic:
    """A monotone piecewise-linear map through the knots ``(x[i], y[i])``, flat beyond the ends.

    What isotonic regression fits (``rerankit calibrate`` exports scikit-learn's knots): ``x``
    strictly increasing, ``y`` non-decreasing in [0, 1]. Between knots the value is linearly
    interpolated, below ``x[0]`` it is ``y[0]`` and above ``x[-1]`` it is ``y[-1]``.

    Example:
        >>> from rerankit.calibration import Isotonic
        >>> iso = Isotonic(x=(0.0, 0.5, 1.0), y=(0.0, 0.2, 0.9))
        >>> iso(-3.0), iso(0.25), iso(0.75), iso(7.0)
        (0.0, 0.1, 0.55, 0.9)
    """

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __post_init__(self) -> None:
        x = tuple(float(v) for v in self.x)
        y = tuple(float(v) for v in self.y)
        if not x or len(x) != len(y):
            raise CalibrationError(
                f"Isotonic needs as many y as x knots (at least one), got {len(x)} and {len(y)}"
            )
        if not all(math.isfinite(v) for v in x + y):
            raise CalibrationError("Isotonic knots must be finite numbers")
        if any(b <= a for a, b in itertools.pairwise(x)):
            raise CalibrationError("Isotonic x knots must be strictly increasing")
        if any(b < a for a, b in itertools.pairwise(y)) or y[0] < 0.0 or y[-1] > 1.0:
            raise CalibrationError("Isotonic y knots must be non-decreasing and in [0, 1]")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def __call__(self, raw: float) -> float:
        x, y = self.x, self.y
        if raw <= x[0]:
            return y[0]
        if raw >= x[-1]:
            return y[-1]
        i = bisect.bisect_right(x, raw)  # x[i - 1] <= raw < x[i]
        x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
        return min(y1, max(y0, y0 + (y1 - y0) * (raw - x0) / (x1 - x0)))


def default_calibration(space: ScoreSpace) -> Calibration:
    """The documented default calibration of a score space."""
    try:
        space = ScoreSpace(space)  # also accept the plain string value, e.g. "logit"
    except ValueError as exc:
        raise ConfigurationError(f"unknown score space {space!r}") from exc
    if space is ScoreSpace.LOGIT:
        return Sigmoid()
    if space is ScoreSpace.GRADE:
        return Linear(0.0, 10.0)
    return Clip()


def calibrate(calibration: Calibration, raw: float) -> float:
    """Apply ``calibration`` and check the contract: a finite float in [0, 1]."""
    if not math.isfinite(raw):
        raise CalibrationError(f"the backend emitted a non-finite raw score: {raw!r}")
    score = float(calibration(raw))
    if not (0.0 <= score <= 1.0):  # also rejects NaN
        raise CalibrationError(
            f"calibration {calibration!r} mapped raw score {raw!r} to {score!r}, outside [0, 1]"
        )
    return score
