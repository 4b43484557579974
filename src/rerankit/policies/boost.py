"""Metadata boosts: recency decay on a date field and per-field weights, recorded per passage."""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rerankit.errors import ConfigurationError
from rerankit.policies.base import ContextPolicy, rebuilt
from rerankit.types import Candidate, RerankResult, RerankResults

__all__ = ["MetadataBoost", "Recency"]

_DAY = 86400.0


def _number(value: object, name: str, *, low: float, high: float = math.inf) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or not low <= float(value) <= high
    ):
        raise ConfigurationError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def as_datetime(value: object) -> dt.datetime | None:
    """A metadata value as an aware datetime: a ``datetime`` (naive means UTC), a ``date``, a
    number of seconds since the epoch, or an ISO 8601 string; ``None`` for anything else."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):
            return None
        try:
            return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    return None


@dataclass(frozen=True)
class Recency:
    """Exponential recency decay on a date in the passage metadata.

    The factor is ``(1 - weight) + weight * 0.5 ** (age_days / half_life_days)``: 1 for a
    passage dated ``now``, ``1 - weight / 2`` one half-life earlier, down to ``1 - weight``.
    Dates in the future count as age 0. A passage whose field is missing or not a date
    (datetime, date, epoch seconds or ISO 8601 text) gets ``missing`` (default 1: no decay),
    and its notes say so. ``now`` defaults to the time of the call.

    Example:
        >>> import datetime as dt
        >>> from rerankit.policies import Recency
        >>> decay = Recency(field="published", half_life_days=30, now=dt.datetime(2025, 3, 1))
        >>> round(decay.factor(dt.datetime(2025, 1, 30)), 3)
        0.5
    """

    field: str = "date"
    half_life_days: float = 30.0
    weight: float = 1.0
    missing: float = 1.0
    now: dt.datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise ConfigurationError("Recency.field must be a metadata key (a non-empty str)")
        _number(self.half_life_days, "Recency.half_life_days", low=1e-9)
        _number(self.weight, "Recency.weight", low=0.0, high=1.0)
        _number(self.missing, "Recency.missing", low=0.0, high=1.0)
        if self.now is not None and not isinstance(self.now, dt.datetime):
            raise ConfigurationError("Recency.now must be a datetime or None")

    def factor(self, date: object, now: dt.datetime | None = None) -> float:
        """The decay factor of a passage dated ``date`` (anything :func:`as_datetime` reads)."""
        reference = as_datetime(now or self.now or dt.datetime.now(dt.timezone.utc))
        when = as_datetime(date)
        if reference is None or when is None:
            raise ConfigurationError(f"Recency.factor needs a date, got {date!r}")
        age = max(0.0, (reference - when).total_seconds() / _DAY)
        decay: float = 0.5 ** (age / float(self.half_life_days))
        return (1.0 - self.weight) + self.weight * decay

    def note(self, metadata: Mapping[str, Any], now: dt.datetime) -> tuple[float, dict[str, Any]]:
        """The factor for a passage's metadata, and what to record about it."""
        value = metadata.get(self.field)
        date = as_datetime(value)
        if date is None:
            why = "missing" if value is None else f"not a date: {value!r}"
            return self.missing, {"recency": self.missing, "date": why}
        age = max(0.0, (now - date).total_seconds() / _DAY)
        factor = self.factor(date, now)
        return factor, {"recency": factor, "age_days": round(age, 4)}


class MetadataBoost(ContextPolicy):
    """Multiplies each passage's score by factors read from its metadata, then re-sorts.

    * ``recency``: a :class:`Recency` decay on a date field;
    * ``field_weights``: ``{field: {value: weight}}``, e.g. ``{"source": {"docs": 1.2,
      "forum": 0.8}}``; a value not listed (or a missing field) has weight 1.

    The boosted score is ``clip(score * recency * weights, 0, 1)`` and becomes the result's
    ``score`` (so the list is sorted by it, ties keeping the previous order); what went into it
    is recorded per passage in ``annotations[i]["boost"]`` (``score`` before, ``factor``,
    ``recency``, ``age_days`` or why the date was not read, ``fields``), which the framework
    components copy to ``metadata["rerank"]["policies"]``. Nothing is dropped: put
    ``MetadataBoost`` before a policy that cuts (or use ``top_n``).

    Example:
        >>> from rerankit.policies import MetadataBoost, Recency
        >>> boost = MetadataBoost(recency=Recency(field="date", half_life_days=90, weight=0.5),
        ...                       field_weights={"source": {"docs": 1.2, "forum": 0.8}})
    """

    name = "boost"

    def __init__(
        self,
        *,
        recency: Recency | None = None,
        field_weights: Mapping[str, Mapping[Any, float]] | None = None,
    ) -> None:
        if recency is not None and not isinstance(recency, Recency):
            raise ConfigurationError(f"recency must be a Recency or None, got {recency!r}")
        weights: dict[str, dict[Any, float]] = {}
        if field_weights is not None:
            if not isinstance(field_weights, Mapping):
                raise ConfigurationError("field_weights must be {field: {value: weight}}")
            for key, table in field_weights.items():
                if not isinstance(key, str) or not isinstance(table, Mapping):
                    raise ConfigurationError(
                        f"field_weights[{key!r}] must map metadata values to weights"
                    )
                weights[key] = {
                    v: _number(w, f"field_weights[{key!r}][{v!r}]", low=0.0)
                    for v, w in table.items()
                }
        if recency is None and not weights:
            raise ConfigurationError("MetadataBoost needs recency= or field_weights=")
        self.recency = recency
        self.field_weights = weights

    def __repr__(self) -> str:
        return f"MetadataBoost(recency={self.recency!r}, field_weights={self.field_weights!r})"

    def _boost(self, result: RerankResult, now: dt.datetime) -> tuple[float, dict[str, Any]]:
        metadata = result.candidate.metadata
        factor = 1.0
        note: dict[str, Any] = {"score": result.score}
        if self.recency is not None:
            decay, recorded = self.recency.note(metadata, now)
            factor *= decay
            note.update(recorded)
        if self.field_weights:
            used = {}
            for key, table in self.field_weights.items():
                value = metadata.get(key)
                try:
                    weight = table.get(value, 1.0)
                except TypeError:  # an unhashable metadata value is not in the table
                    weight = 1.0
                used[key] = weight
                factor *= weight
            note["fields"] = used
        note["factor"] = factor
        return min(1.0, max(0.0, result.score * factor)), note

    def apply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        now = as_datetime(
            (self.recency.now if self.recency else None) or dt.datetime.now(dt.timezone.utc)
        )
        assert now is not None
        boosted = []
        notes: dict[int, dict[str, Any]] = {}
        for position, result in enumerate(results):
            score, note = self._boost(result, now)
            notes[result.index] = {self.name: note}
            boosted.append((score, position, replace(result, score=score)))
        boosted.sort(key=lambda row: (-row[0], row[1]))
        moved = sum(1 for rank, row in enumerate(boosted) if row[1] != rank)
        return rebuilt(
            results,
            [row[2] for row in boosted],
            notes=notes,
            record={"policy": self.name, "passages": len(results), "moved": moved},
        )
