"""Strict reading of ``[{index, score}]`` rerank answers: every document exactly once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rerankit.remote.resilience import BadResponse

__all__ = ["field", "scores_by_index"]


def field(item: Any, name: str) -> Any:
    """``item[name]`` for mappings, ``item.name`` for objects; ``None`` when absent."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def _preview(values: list[Any], limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def scores_by_index(items: Any, n: int, *, score_key: str, index_key: str = "index") -> list[float]:
    """One score per document, from results that name documents by index.

    Raises :class:`~rerankit.remote.resilience.BadResponse` unless the results hold each index
    in ``range(n)`` exactly once with a finite numeric score: a missing, duplicate, out-of-range
    or non-integer index could only be "repaired" by giving one document another's score.
    """
    if not isinstance(items, list | tuple):
        raise BadResponse(f"expected a list of results, got {type(items).__name__}")
    raw: list[float | None] = [None] * n
    bad_index: list[Any] = []
    out_of_range: list[int] = []
    duplicates: list[int] = []
    bad_score: list[Any] = []
    for item in items:
        index = field(item, index_key)
        score = field(item, score_key)
        if isinstance(index, bool) or not isinstance(index, int):
            bad_index.append(index)
            continue
        if not 0 <= index < n:
            out_of_range.append(index)
            continue
        if raw[index] is not None:
            duplicates.append(index)
            continue
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
        ):
            bad_score.append(index)
            continue
        raw[index] = float(score)
    missing = [i for i, value in enumerate(raw) if value is None and i not in bad_score]
    problems = []
    if missing:
        problems.append(f"missing indices {_preview(missing)}")
    if duplicates:
        problems.append(f"duplicate indices {_preview(duplicates)}")
    if out_of_range:
        problems.append(f"out-of-range indices {_preview(out_of_range)}")
    if bad_index:
        problems.append(f"non-integer indices {_preview(bad_index)}")
    if bad_score:
        problems.append(f"no valid {score_key} for indices {_preview(bad_score)}")
    if problems:
        raise BadResponse(
            f"the server returned {len(items)} results for {n} documents: " + "; ".join(problems)
        )
    return [float(value) for value in raw if value is not None]
