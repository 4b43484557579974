"""What a remote call cost: requests, retries, tokens, search units."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Usage", "UsageCallback", "UsageMeter"]


@dataclass(frozen=True)
class Usage:
    """The cost of one rerank call of a remote reranker.

    Reported once per call, successful or not, to the reranker's ``on_usage`` callback; a
    successful call also carries it as ``RerankResults.usage`` (see :meth:`as_dict`).

    Attributes:
        backend: the backend name (``cohere``, ``llm``, ``http``).
        model: the model name.
        ok: whether the call succeeded.
        requests: HTTP requests sent, retries included.
        retries: how many of those were retries.
        input_tokens: prompt / input tokens the server reported (0 when it reports none).
        output_tokens: completion tokens the server reported.
        search_units: Cohere billed search units.
        seconds: wall time of the call.
        details: backend-specific facts (e.g. the LLM scoring mode, repaired answers).

    Example:
        >>> from rerankit.remote import Usage
        >>> Usage(backend="cohere", model="rerank-v3.5", requests=2, search_units=2.0).as_dict()[
        ...     "search_units"]
        2.0
    """

    backend: str
    model: str
    ok: bool = True
    requests: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    search_units: float = 0.0
    seconds: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        data = asdict(self)
        data["details"] = dict(self.details)
        data["total_tokens"] = self.total_tokens
        return data


UsageCallback = Callable[[Usage], None]


class UsageMeter:
    """Thread-safe accumulator of one call's usage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.requests = 0
        self.retries = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.search_units = 0.0
        self.details: dict[str, Any] = {}

    def count_request(self, *, retry: bool) -> None:
        with self._lock:
            self.requests += 1
            if retry:
                self.retries += 1

    def add(
        self,
        *,
        input_tokens: float | None = None,
        output_tokens: float | None = None,
        search_units: float | None = None,
    ) -> None:
        with self._lock:
            self.input_tokens += int(input_tokens or 0)
            self.output_tokens += int(output_tokens or 0)
            self.search_units += float(search_units or 0.0)

    def bump(self, key: str, amount: int = 1) -> None:
        """Add to a counter in ``details``."""
        with self._lock:
            self.details[key] = int(self.details.get(key, 0)) + amount

    def note(self, key: str, value: Any) -> None:
        """Set a fact in ``details``."""
        with self._lock:
            self.details[key] = value

    def usage(self, *, backend: str, model: str, ok: bool) -> Usage:
        with self._lock:
            return Usage(
                backend=backend,
                model=model,
                ok=ok,
                requests=self.requests,
                retries=self.retries,
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                search_units=self.search_units,
                seconds=time.monotonic() - self._started,
                details=dict(self.details),
            )
