"""Fitted calibrations: thresholds that mean the same on every backend.

``rerankit calibrate DATASET --reranker SPEC`` scores a BEIR-layout dataset's candidates and
fits a monotone map from the reranker's raw score to the probability that a document is
relevant (:func:`fit_calibration`: Platt scaling or isotonic regression, whichever has the lower
held-out log-loss). It reports the expected calibration error before and after, draws a
reliability plot and writes a small JSON file keyed by the model's fingerprint
(:class:`FittedCalibration`, :class:`ModelFingerprint`). Any reranker loads it:

* ``EmbeddingReranker(calibration="embedding.json")``, or in a spec
  ``embedding?calibration=embedding.json``;
* ``calibration="auto"``: the file of the reranker's own fingerprint in the calibrations folder
  (``$RERANKIT_CALIBRATIONS``, else ``~/.cache/rerankit/calibrations``; :func:`calibrations_dir`).

With a fitted calibration ``min_score=0.5`` means "estimated probability of relevance at least
0.5", on every backend (rank-derived scores included). A file loaded onto a different model or
options warns once (:class:`~rerankit.CalibrationMismatchWarning`).

Example:
    >>> from rerankit import EmbeddingReranker
    >>> reranker = EmbeddingReranker(calibration="embedding.json")  # doctest: +SKIP
    >>> reranker.rerank("q", ["a", "b"], min_score=0.5)  # doctest: +SKIP

Fitting needs scikit-learn (``pip install 'rerankit[eval]'``); loading needs nothing extra.
"""

from rerankit.calibrate.files import (
    AUTO,
    ENV_FOLDER,
    FittedCalibration,
    calibration_path,
    calibrations_dir,
    check_fingerprint,
    find_calibration,
    load_calibration,
)
from rerankit.calibrate.fingerprint import ModelFingerprint, model_fingerprint, weights_revision
from rerankit.calibrate.fit import (
    CalibrationFit,
    ReliabilityBin,
    expected_calibration_error,
    fit_calibration,
    fit_isotonic,
    fit_platt,
    log_loss,
    reliability,
)

__all__ = [
    "AUTO",
    "ENV_FOLDER",
    "CalibrationFit",
    "FittedCalibration",
    "ModelFingerprint",
    "ReliabilityBin",
    "calibration_path",
    "calibrations_dir",
    "check_fingerprint",
    "expected_calibration_error",
    "find_calibration",
    "fit_calibration",
    "fit_isotonic",
    "fit_platt",
    "load_calibration",
    "log_loss",
    "model_fingerprint",
    "reliability",
    "weights_revision",
]
