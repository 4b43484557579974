"""Shadow mode: a second reranker scores the same candidates off the critical path, and its
agreement with the live order is reported to a callback."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rerankit.base import Reranker, per_candidate
from rerankit.errors import ConfigurationError
from rerankit.policies.base import ContextPolicy, rebuilt
from rerankit.types import Candidate, RerankResults

__all__ = ["Shadow", "ShadowReport", "kendall_tau", "overlap_at"]

logger = logging.getLogger("rerankit.policies")


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two score lists over the same items (ties handled); NaN when
    either list is constant or has fewer than two items.

    Example:
        >>> from rerankit.policies import kendall_tau
        >>> kendall_tau([3, 2, 1], [30, 20, 10]), kendall_tau([3, 2, 1], [1, 2, 3])
        (1.0, -1.0)
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ConfigurationError("kendall_tau needs two lists of equal length")
    if len(x) < 2:
        return float("nan")
    upper = np.triu_indices(len(x), k=1)
    dx = np.sign(x[:, None] - x[None, :])[upper]
    dy = np.sign(y[:, None] - y[None, :])[upper]
    denominator = float(np.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy)))
    return float((dx * dy).sum() / denominator) if denominator else float("nan")


def overlap_at(a: Sequence[Any], b: Sequence[Any], k: int) -> float:
    """Share of the first ``k`` of ``a`` that are among the first ``k`` of ``b`` (``k`` capped at
    the list length); NaN for empty lists."""
    k = min(k, len(a), len(b))
    return len(set(a[:k]) & set(b[:k])) / k if k else float("nan")


@dataclass(frozen=True)
class ShadowReport:
    """What a :class:`Shadow` reports for one call.

    ``kendall_tau`` compares the live order with the shadow reranker's over the same scored
    candidates (tau-b; NaN with fewer than two), ``overlap`` is ``overlap@k`` of their top
    ``k``; ``live`` / ``shadow`` are the input indices in each order; ``error`` is set (and
    the figures NaN) when the shadow reranker failed.

    Example:
        >>> from rerankit.policies import ShadowReport
        >>> report = ShadowReport("q", kendall_tau=0.8, overlap=1.0, k=3, live=(0, 1, 2),
        ...                       shadow=(1, 0, 2), backend="embedding", model="m", ms=4.2)
        >>> report.error is None
        True
    """

    query: str
    kendall_tau: float
    overlap: float
    k: int
    live: tuple[int, ...]
    shadow: tuple[int, ...]
    backend: str
    model: str
    ms: float
    error: str | None = None


class Shadow(ContextPolicy):
    """Runs a second ``reranker`` on the same candidates in the background and reports how far
    its order agrees with the live one, for safe rollouts of a new model.

    The live results pass through unchanged; the shadow reranker scores the candidates the
    live reranker scored (kept and dropped, in a daemon thread, so it adds no latency), and
    ``callback`` receives a :class:`ShadowReport` with Kendall's tau and overlap at ``k``.
    An error of the shadow reranker, or of the callback, never reaches the live path: it is
    reported (``ShadowReport.error``) and logged on ``rerankit.policies``. :meth:`join` waits
    for the reports still running (tests, shutdown). ``sample`` runs the shadow on that share
    of the calls (1: all).

    Example:
        >>> from rerankit.policies import Shadow
        >>> reports = []
        >>> shadow = Shadow("late-interaction", callback=reports.append, k=5)
        >>> # RerankCompressor(reranker="embedding", policies=[shadow]); later shadow.join()
    """

    name = "shadow"

    def __init__(
        self,
        reranker: Reranker | str,
        *,
        callback: Callable[[ShadowReport], Any],
        k: int = 10,
        sample: float = 1.0,
    ) -> None:
        from rerankit.registry import as_reranker

        if not callable(callback):
            raise ConfigurationError("callback must be a callable taking a ShadowReport")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"k must be a positive int, got {k!r}")
        if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 < sample <= 1:
            raise ConfigurationError(f"sample must be a number in (0, 1], got {sample!r}")
        self.reranker = as_reranker(reranker, name="reranker")
        self.callback = callback
        self.k = k
        self.sample = float(sample)
        self._calls = 0
        self._lock = threading.Lock()
        self._running: set[threading.Thread] = set()

    def __repr__(self) -> str:
        return f"Shadow({self.reranker!r}, k={self.k}, sample={self.sample})"

    def _due(self) -> bool:
        with self._lock:
            self._calls += 1
            # Deterministic sampling: every 1/sample-th call.
            return int(self._calls * self.sample) != int((self._calls - 1) * self.sample)

    def apply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        live = [r.index for r in results] + [
            d.index for d in sorted(results.dropped, key=lambda d: -d.score)
        ]
        due = bool(live) and self._due()
        if due:
            pool = [candidates[i] for i in live]
            thread = threading.Thread(
                target=self._run,
                args=(query, tuple(live), pool),
                name="rerankit-shadow",
                daemon=True,
            )
            with self._lock:
                self._running.add(thread)
            thread.start()
        return rebuilt(
            results,
            list(results),
            record={"policy": self.name, "reranker": self.reranker.backend, "submitted": due},
        )

    def _run(self, query: str, live: tuple[int, ...], pool: list[Candidate]) -> None:
        started = time.perf_counter()
        try:
            try:
                shadow = self.reranker.rerank(query, pool)
                aligned = per_candidate(shadow, len(pool))
                order = tuple(
                    live[p] for p in sorted(range(len(pool)), key=lambda p: aligned[p].rank)
                )
                position = {index: rank for rank, index in enumerate(order)}
                report = ShadowReport(
                    query=query,
                    kendall_tau=kendall_tau(
                        [-p for p in range(len(live))], [-position[i] for i in live]
                    ),
                    overlap=overlap_at(live, order, self.k),
                    k=self.k,
                    live=live,
                    shadow=order,
                    backend=self.reranker.backend,
                    model=self.reranker.model_name,
                    ms=(time.perf_counter() - started) * 1000.0,
                )
            except Exception as exc:
                logger.warning("shadow reranker %s failed: %s", self.reranker.backend, exc)
                report = ShadowReport(
                    query=query,
                    kendall_tau=float("nan"),
                    overlap=float("nan"),
                    k=self.k,
                    live=live,
                    shadow=(),
                    backend=self.reranker.backend,
                    model=self.reranker.model_name,
                    ms=(time.perf_counter() - started) * 1000.0,
                    error=f"{type(exc).__name__}: {exc}",
                )
            try:
                self.callback(report)
            except Exception as exc:
                logger.warning("shadow callback failed: %s: %s", type(exc).__name__, exc)
        finally:
            with self._lock:
                self._running.discard(threading.current_thread())

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the shadow runs in flight; True when none is left (within ``timeout`` s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                running = list(self._running)
            if not running:
                return True
            for thread in running:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    return not self._running
