"""Calibration files: :class:`FittedCalibration`, the JSON file ``rerankit calibrate`` writes,
the calibrations folder, and the fingerprint check when a reranker loads one.

A file holds (format ``rerankit-calibration/1``)::

    {"format": "rerankit-calibration/1",
     "fingerprint": {"digest", "backend", "model", "revision", "options", "members"},
     "score_space": "cosine",
     "calibration": {"kind": "isotonic", "x": [...], "y": [...]}     # or
                    {"kind": "platt", "scale": 31.2, "shift": -17.9},
     "fit": {"method", "heldout_log_loss", "ece_before", "ece_after", "pairs", "positives",
             "queries", "folds", "dataset", "split", "rel_level", ...}}

The **calibrations folder** is ``$RERANKIT_CALIBRATIONS``, else ``calibrations`` in rerankit's
cache folder (``~/.cache/rerankit/calibrations``); it holds one file per fingerprint, named
``<digest>.json``. A reranker built with ``calibration="auto"`` (or with the path of a folder)
loads the file of its own fingerprint from there on first use.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankit.base import Reranker
from rerankit.calibrate.fingerprint import ModelFingerprint, model_fingerprint
from rerankit.calibration import Isotonic, Sigmoid
from rerankit.errors import CalibrationError, CalibrationMismatchWarning

__all__ = [
    "AUTO",
    "ENV_FOLDER",
    "FORMAT",
    "FittedCalibration",
    "calibration_path",
    "calibrations_dir",
    "check_fingerprint",
    "find_calibration",
    "load_calibration",
    "open_source",
    "settle",
]

FORMAT = "rerankit-calibration/1"
ENV_FOLDER = "RERANKIT_CALIBRATIONS"
AUTO = "auto"
"""``calibration="auto"``: the file of the reranker's fingerprint in :func:`calibrations_dir`."""

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def calibrations_dir() -> Path:
    """``$RERANKIT_CALIBRATIONS``, else ``<rerankit cache>/calibrations`` (not created here)."""
    explicit = os.environ.get(ENV_FOLDER)
    if explicit:
        return Path(explicit).expanduser()
    from rerankit.cache.store import default_cache_dir

    return default_cache_dir() / "calibrations"


def calibration_path(fingerprint: ModelFingerprint, folder: str | os.PathLike[str]) -> Path:
    """Where a calibrations folder keeps the file of ``fingerprint``."""
    return Path(folder).expanduser() / f"{fingerprint.digest}.json"


def _function_to_dict(function: Sigmoid | Isotonic) -> dict[str, Any]:
    if isinstance(function, Sigmoid):
        return {"kind": "platt", "scale": function.scale, "shift": function.shift}
    return {"kind": "isotonic", "x": list(function.x), "y": list(function.y)}


def _function_from_dict(data: object, where: str) -> Sigmoid | Isotonic:
    if not isinstance(data, Mapping):
        raise CalibrationError(f"{where}: 'calibration' must be an object")
    kind = data.get("kind")
    try:
        if kind == "platt":
            scale, shift = data["scale"], data["shift"]
            numbers = (scale, shift)
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
                raise CalibrationError(f"{where}: platt scale and shift must be numbers")
            if scale < 0:
                raise CalibrationError(f"{where}: a platt scale below 0 would reorder the list")
            return Sigmoid(scale=float(scale), shift=float(shift))
        if kind == "isotonic":
            return Isotonic(tuple(data["x"]), tuple(data["y"]))
    except KeyError as exc:
        raise CalibrationError(f"{where}: the {kind} calibration lacks {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: malformed {kind} calibration: {exc}") from None
    raise CalibrationError(f"{where}: calibration kind must be 'platt' or 'isotonic', got {kind!r}")


@dataclass(frozen=True)
class FittedCalibration:
    """A calibration fitted by ``rerankit calibrate``: raw score -> estimated P(relevant).

    Callable like any calibration (``calibration(raw)``); it also carries the
    :class:`~rerankit.calibrate.ModelFingerprint` it was fitted for, the method, the score
    space and the figures of the fit. Pass it, or the path of its file, as a reranker's
    ``calibration``; a reranker whose fingerprint differs warns once
    (:class:`~rerankit.CalibrationMismatchWarning`).

    Example:
        >>> from rerankit import Sigmoid
        >>> from rerankit.calibrate import FittedCalibration, ModelFingerprint
        >>> fitted = FittedCalibration(
        ...     Sigmoid(scale=20.0, shift=-10.0),
        ...     ModelFingerprint("embedding", "all-MiniLM-L6-v2", None),
        ...     score_space="cosine",
        ... )
        >>> fitted(0.5), FittedCalibration.from_dict(fitted.to_dict()) == fitted
        (0.5, True)
    """

    function: Sigmoid | Isotonic
    fingerprint: ModelFingerprint
    score_space: str = ""
    fit: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = field(default=None, compare=False)
    """The file it was loaded from (``None`` when built in memory)."""

    def __call__(self, raw: float) -> float:
        return self.function(raw)

    @property
    def method(self) -> str:
        """``"platt"`` or ``"isotonic"``."""
        return "platt" if isinstance(self.function, Sigmoid) else "isotonic"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the file."""
        return {
            "format": FORMAT,
            "fingerprint": self.fingerprint.to_dict(),
            "score_space": self.score_space,
            "calibration": _function_to_dict(self.function),
            "fit": dict(self.fit),
        }

    @classmethod
    def from_dict(cls, data: object, *, source: str | None = None) -> FittedCalibration:
        """The inverse of :meth:`to_dict`; :class:`~rerankit.CalibrationError` (naming
        ``source``) for anything that is not a calibration file of a known format."""
        where = source or "calibration"
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise CalibrationError(
                f"{where} is not a rerankit calibration file (format {found!r}, expected "
                f"{FORMAT!r}); write one with `rerankit calibrate`"
            )
        fit = data.get("fit", {})
        if not isinstance(fit, Mapping):
            raise CalibrationError(f"{where}: 'fit' must be an object")
        space = data.get("score_space", "")
        return cls(
            function=_function_from_dict(data.get("calibration"), where),
            fingerprint=ModelFingerprint.from_dict(
                data.get("fingerprint"), where=f"{where}: fingerprint"
            ),
            score_space=space if isinstance(space, str) else "",
            fit=dict(fit),
            source=source,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the file (atomically); a folder (an existing one, or a path ending with a
        separator) means ``<folder>/<digest>.json``. Returns the path written."""
        target = Path(path).expanduser()
        if target.is_dir() or str(path).endswith(("/", os.sep)):
            target = calibration_path(self.fingerprint, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        os.replace(partial, target)
        return target


def load_calibration(path: str | os.PathLike[str]) -> FittedCalibration:
    """Read a calibration file; :class:`~rerankit.CalibrationError` naming the path when it is
    missing, not JSON or not a calibration."""
    target = Path(path).expanduser()
    where = str(target)
    if not target.is_file():
        raise CalibrationError(
            f"calibration file {where} does not exist; write one with `rerankit calibrate "
            "DATASET --reranker SPEC --output FILE`, or pass calibration='auto' to look in the "
            "calibrations folder"
        )
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"cannot read calibration file {where}: {exc}") from None
    return FittedCalibration.from_dict(data, source=where)


def open_source(value: str | os.PathLike[str]) -> tuple[FittedCalibration | None, Path | None]:
    """What ``calibration=<value>`` names: a file (loaded now) or a calibrations folder
    (``"auto"`` or a directory; looked up by fingerprint on first use)."""
    if isinstance(value, str) and value == AUTO:
        return None, calibrations_dir()
    path = Path(value).expanduser()
    if path.is_dir():
        return None, path
    return load_calibration(path), None


def find_calibration(reranker: Reranker, folder: str | os.PathLike[str]) -> FittedCalibration:
    """The calibration of ``reranker``'s fingerprint in ``folder``, or a
    :class:`~rerankit.CalibrationError` that names the folder, the fingerprint and the fix."""
    fingerprint = model_fingerprint(reranker)
    path = calibration_path(fingerprint, folder)
    if not path.is_file():
        raise CalibrationError(
            f"no calibration for {fingerprint.describe()} in {Path(folder).expanduser()} "
            f"(looked for {path.name}); fit one with `rerankit calibrate DATASET --reranker "
            f"SPEC` (it writes there unless --output says otherwise, "
            f"${ENV_FOLDER} moves the folder) or pass a calibration file"
        )
    return load_calibration(path)


def check_fingerprint(reranker: Reranker, calibration: FittedCalibration) -> bool:
    """Whether ``calibration`` was fitted for ``reranker``; warns once per (file, model) with a
    :class:`~rerankit.CalibrationMismatchWarning` that says what differs."""
    current = model_fingerprint(reranker)
    expected = calibration.fingerprint
    if current.digest == expected.digest:
        return True
    key = (calibration.source or repr(expected.to_dict()), current.digest)
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
    what = "; ".join(current.differences(expected, labels=("now", "when fitted")))
    origin = f"file {calibration.source}" if calibration.source else "calibration"
    warnings.warn(
        f"{type(reranker).__name__}: the {origin} was fitted for {expected.describe()}, not for "
        f"this reranker ({what}); its scores may no longer be probabilities of relevance, so a "
        "min_score tuned on them may keep too much or too little: refit with `rerankit "
        "calibrate` (reported once)",
        CalibrationMismatchWarning,
        stacklevel=6,  # check_fingerprint < settle < _check_calibration < _begin < rerank
    )
    return False


def settle(
    reranker: Reranker, calibration: Callable[[float], float], folder: Path | None
) -> Callable[[float], float]:
    """The calibration ``reranker`` uses from its first call on: the file of its fingerprint
    in ``folder`` when one was named (``"auto"``, a directory), else ``calibration``, whose
    fingerprint is checked when it is a :class:`FittedCalibration`."""
    if folder is not None:
        return find_calibration(reranker, folder)
    if isinstance(calibration, FittedCalibration):
        check_fingerprint(reranker, calibration)
    return calibration
