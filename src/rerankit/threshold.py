"""Threshold policies shared by every integration: what to keep after scoring.

Rules run on the list sorted best first, in this order:

1. ``min_score``: keep scores ``>= min_score`` (absolute, on the calibrated score);
2. ``min_ratio``: keep scores ``>= min_ratio * best score``;
3. ``largest_gap``: cut after the largest drop between neighbours, if that drop is at least
   ``largest_gap``;
4. ``min_keep``: if fewer than ``min_keep`` survive, the best ``min_keep`` are kept anyway;
5. ``top_n``: keep at most ``top_n``.

When nothing survives the outcome is an empty result with ``empty_reason`` set; it is not an
exception, so a chain can branch on it (e.g. answer "the documents do not cover this").
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rerankit.errors import ConfigurationError
from rerankit.types import DropReason

__all__ = ["ThresholdOutcome", "ThresholdPolicy"]


@dataclass(frozen=True)
class ThresholdPolicy:
    """Which reranked documents to keep.

    Example:
        >>> from rerankit import ThresholdPolicy
        >>> policy = ThresholdPolicy(min_score=0.5, min_keep=1)
        >>> policy.apply([0.9, 0.4, 0.2]).kept
        [0]
        >>> policy.apply([0.3, 0.2]).kept  # min_keep guards against an empty context
        [0]
    """

    top_n: int | None = None
    min_score: float | None = None
    min_ratio: float | None = None
    largest_gap: float | None = None
    min_keep: int = 0

    def __post_init__(self) -> None:
        if self.top_n is not None and not _count(self.top_n):
            raise ConfigurationError(
                f"top_n must be a non-negative int or None, got {self.top_n!r}"
            )
        for name in ("min_score", "min_ratio", "largest_gap"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not 0.0 <= float(value) <= 1.0
            ):
                raise ConfigurationError(
                    f"{name} must be a number in [0, 1] or None, got {value!r}"
                )
        if not _count(self.min_keep):
            raise ConfigurationError(f"min_keep must be a non-negative int, got {self.min_keep!r}")

    @classmethod
    def resolve(
        cls,
        policy: object = None,
        *,
        top_n: int | None = None,
        min_score: float | None = None,
    ) -> ThresholdPolicy:
        """``policy`` (a :class:`ThresholdPolicy` or ``None``) with the shorthands applied.

        Raises :class:`~rerankit.ConfigurationError` for anything else (a dict, say).
        """
        if policy is not None and not isinstance(policy, ThresholdPolicy):
            raise ConfigurationError(
                f"policy must be a ThresholdPolicy or None, got {type(policy).__name__}"
            )
        return (policy or cls()).merged(top_n=top_n, min_score=min_score)

    @property
    def ordering_only(self) -> ThresholdPolicy:
        """The rules that need no absolute score: ``top_n`` (for scores that only order)."""
        return ThresholdPolicy(top_n=self.top_n)

    def merged(
        self, *, top_n: int | None = None, min_score: float | None = None
    ) -> ThresholdPolicy:
        """A copy with ``top_n`` / ``min_score`` overridden where given."""
        changes: dict[str, Any] = {}
        if top_n is not None:
            changes["top_n"] = top_n
        if min_score is not None:
            changes["min_score"] = min_score
        return replace(self, **changes) if changes else self

    @property
    def is_noop(self) -> bool:
        """True when the policy keeps everything."""
        return (
            self.top_n is None
            and self.min_score is None
            and self.min_ratio is None
            and self.largest_gap is None
        )

    def apply(self, scores: Sequence[float]) -> ThresholdOutcome:
        """Apply to ``scores`` sorted best first; returns kept positions and the cut ones."""
        n = len(scores)
        cut: dict[int, DropReason] = {}
        alive = list(range(n))
        reason: str | None = None
        if self.min_score is not None:
            threshold = self.min_score
            for i in alive:
                if scores[i] < threshold:
                    cut[i] = "min_score"
            alive = [i for i in alive if i not in cut]
            if not alive and n:
                reason = f"no document reached min_score={threshold:g} (best score {scores[0]:.4f})"
        if self.min_ratio is not None and alive:
            floor = self.min_ratio * scores[0]
            for i in alive:
                if scores[i] < floor:
                    cut[i] = "min_ratio"
            alive = [i for i in alive if i not in cut]
        if self.largest_gap is not None and len(alive) > 1:
            gaps = [scores[alive[k]] - scores[alive[k + 1]] for k in range(len(alive) - 1)]
            best = max(range(len(gaps)), key=lambda k: (gaps[k], -k))
            if gaps[best] >= self.largest_gap and gaps[best] > 0:
                for i in alive[best + 1 :]:
                    cut[i] = "largest_gap"
                alive = alive[: best + 1]
        if len(alive) < self.min_keep:
            restore = list(range(min(self.min_keep, n)))
            for i in restore:
                cut.pop(i, None)
            alive = restore
            reason = None
        if self.top_n is not None and len(alive) > self.top_n:
            for i in alive[self.top_n :]:
                cut[i] = "top_n"
            alive = alive[: self.top_n]
            if not alive and n and reason is None:
                reason = "top_n=0"
        return ThresholdOutcome(kept=alive, cut=cut, empty_reason=reason if not alive else None)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class ThresholdOutcome:
    """Positions (in the sorted list) kept, and those cut with the rule that cut them."""

    kept: list[int]
    cut: dict[int, DropReason]
    empty_reason: str | None
