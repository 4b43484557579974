"""A cascade: the component's (cheap) reranker prunes to ``k``, an expensive one reorders them,
within a latency budget after which the cheap order is returned, marked."""

from __future__ import annotations

import asyncio
import math
import numbers
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from rerankit.base import Reranker, per_candidate
from rerankit.errors import ConfigurationError
from rerankit.policies.base import ContextPolicy, drop, rebuilt
from rerankit.types import Candidate, RerankResult, RerankResults

__all__ = ["Cascade", "run_within"]

T = TypeVar("T")


def run_within(call: Callable[[], T], seconds: float | None) -> tuple[bool, T | None]:
    """``(True, call())`` if ``call`` returns within ``seconds`` (``None``: no limit), else
    ``(False, None)`` at the deadline. The call runs in a daemon thread, so one that never
    returns neither blocks the caller past the deadline nor the interpreter's exit; its
    exception, if it raises in time, is re-raised here."""
    if seconds is None:
        return True, call()
    if seconds <= 0:
        return False, None
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the waiting caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="rerankit-cascade", daemon=True).start()
    if not done.wait(seconds):
        return False, None
    if "error" in box:
        raise box["error"]
    return True, box["value"]


class Cascade(ContextPolicy):
    """Prunes to the cheap reranker's top ``k`` and lets ``reranker`` (the expensive one)
    reorder them, within ``budget_ms``.

    The component's own reranker is the cheap stage (say ``embedding``); its threshold's score
    rules run first, as always. The passages beyond its top ``k`` are dropped (reason
    ``"cascade"``); the expensive ``reranker`` (an object or a spec) scores the ``k`` that
    remain, and its order and scores replace the cheap ones (``results.backend`` / ``model`` /
    ``score_space`` become its own; the cheap score and rank are in
    ``annotations[i]["cascade"]``).

    ``budget_ms`` is the latency budget of the whole call, the cheap stage included (its time
    is ``results.timings["rerank"]``): the expensive stage gets what is left. When it has not
    answered by then, the cheap order is returned at once, marked: ``results.fallback`` and
    each result's ``fallback`` say why, and the record in ``applied`` has
    ``"deadline_exceeded": True``. An error of the expensive reranker within the budget is
    raised (wrap it in a :class:`~rerankit.FallbackReranker` to degrade instead).

    Example:
        >>> from rerankit.policies import Cascade
        >>> cascade = Cascade("late-interaction", k=20, budget_ms=300)
        >>> # RerankCompressor(reranker="embedding", policies=[cascade], top_n=4)
    """

    name = "cascade"

    def __init__(
        self, reranker: Reranker | str, *, k: int = 20, budget_ms: float | None = None
    ) -> None:
        from rerankit.registry import as_reranker

        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"k must be a positive int, got {k!r}")
        if budget_ms is not None and (
            isinstance(budget_ms, bool)
            or not isinstance(budget_ms, numbers.Real)
            or not math.isfinite(float(budget_ms))
            or budget_ms <= 0
        ):
            raise ConfigurationError(
                f"budget_ms must be a positive number or None, got {budget_ms!r}"
            )
        self.reranker = as_reranker(reranker, name="reranker")
        self.k = k
        self.budget_ms = float(budget_ms) if budget_ms is not None else None

    def __repr__(self) -> str:
        return f"Cascade({self.reranker!r}, k={self.k}, budget_ms={self.budget_ms})"

    def _left_s(self, results: RerankResults) -> float | None:
        if self.budget_ms is None:
            return None
        return (self.budget_ms - float(results.timings.get("rerank", 0.0))) / 1000.0

    def apply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        top = list(results[: self.k])
        if not top:
            return self._merge(results, top, None, 0.0)
        started = time.perf_counter()
        _, expensive = run_within(
            lambda: self.reranker.rerank(query, [r.candidate for r in top]), self._left_s(results)
        )
        return self._merge(results, top, expensive, time.perf_counter() - started)

    async def aapply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        top = list(results[: self.k])
        if not top:
            return self._merge(results, top, None, 0.0)
        started = time.perf_counter()
        left = self._left_s(results)
        expensive: RerankResults | None = None
        if left is None or left > 0:
            try:
                expensive = await asyncio.wait_for(
                    self.reranker.arerank(query, [r.candidate for r in top]), left
                )
            except asyncio.TimeoutError:
                expensive = None
        return self._merge(results, top, expensive, time.perf_counter() - started)

    def _merge(
        self,
        results: RerankResults,
        top: list[RerankResult],
        expensive: RerankResults | None,
        seconds: float,
    ) -> RerankResults:
        pruned = [drop(r, "cascade") for r in results[self.k :]]
        record: dict[str, Any] = {
            "policy": self.name,
            "k": self.k,
            "budget_ms": self.budget_ms,
            "reranker": self.reranker.backend,
            "model": self.reranker.model_name,
            "ms": round(seconds * 1000.0, 3),
            "pruned": len(pruned),
        }
        cheap = {r.index: (rank, r) for rank, r in enumerate(top)}
        if expensive is None and top:
            reason = (
                f"cascade: {self.reranker.backend} did not answer within budget_ms="
                f"{self.budget_ms:g}; the cheap reranker's order"
            )
            notes = {
                i: {self.name: {"stage": "cheap", "cheap_rank": rank, "deadline_exceeded": True}}
                for i, (rank, _) in cheap.items()
            }
            return rebuilt(
                results,
                [replace(r, fallback=reason) for r in top],
                dropped=pruned,
                notes=notes,
                record={**record, "deadline_exceeded": True},
                fallback=reason,
            )
        kept: list[RerankResult] = []
        notes = {}
        if expensive is not None:
            aligned = per_candidate(expensive, len(top))
            order = sorted(range(len(top)), key=lambda p: aligned[p].rank)
            for position in order:
                mine, theirs = top[position], aligned[position]
                kept.append(
                    replace(
                        mine,
                        score=theirs.score,
                        raw_score=theirs.raw_score,
                        truncated=theirs.truncated,
                        windows=theirs.windows,
                        fallback=theirs.fallback,
                    )
                )
                notes[mine.index] = {
                    self.name: {
                        "stage": "expensive",
                        "cheap_rank": position,
                        "cheap_score": mine.score,
                    }
                }
        return rebuilt(
            results,
            kept,
            dropped=pruned,
            notes=notes,
            record={**record, "deadline_exceeded": False},
            backend=expensive.backend if expensive is not None else results.backend,
            model=expensive.model if expensive is not None else results.model,
            score_space=expensive.score_space if expensive is not None else results.score_space,
            fallback=expensive.fallback if expensive is not None else results.fallback,
        )
