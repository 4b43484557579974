"""``RemoteReranker``: the base of rerankers that call a server (Cohere, LLM, HTTP).

One class with its option checks, configuration and the sync and async twins of the batch
fan-out; the mechanisms it uses live in :mod:`~rerankit.remote.resilience`,
:mod:`~rerankit.remote.transport`, :mod:`~rerankit.remote.secrets` and
:mod:`~rerankit.remote.usage`. The twins are kept side by side so they stay the same, which is
why the module runs a little past 400 lines.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from rerankit.base import Reranker, ScoreBatch
from rerankit.calibration import Calibration
from rerankit.errors import ConfigurationError
from rerankit.remote.loops import Clients
from rerankit.remote.resilience import Deadline, Failure, Resilience, RetryPolicy
from rerankit.remote.secrets import MASK, guard_logs, redact
from rerankit.remote.usage import Usage, UsageCallback, UsageMeter
from rerankit.types import Candidate

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["RemoteOptions", "RemoteReranker", "batches"]

log = logging.getLogger("rerankit.remote")

R = TypeVar("R")

_TRAFFIC_SETTINGS = frozenset(
    {
        "api_key",
        "timeout",
        "deadline",
        "max_retries",
        "retry",
        "requests_per_minute",
        "max_concurrency",
        "batch_size",
    }
)
"""Settings of :meth:`RemoteReranker.to_config` that shape the traffic, not the scores."""


class RemoteOptions(TypedDict, total=False):
    """The keyword arguments every remote reranker takes (all optional).

    Backends accept them as ``**options: Unpack[RemoteOptions]`` and hand them to
    :class:`RemoteReranker`, whose signature holds the defaults (a backend may change a default,
    as :class:`~rerankit.LLMReranker` does for ``timeout`` and ``deadline``).
    """

    timeout: float
    """Seconds one request may take (default 30)."""
    deadline: float | None
    """Seconds one rerank call may take, retries and waits included (default 60; ``None`` for
    no limit)."""
    retry: RetryPolicy | None
    """The :class:`~rerankit.remote.RetryPolicy` (default: ``RetryPolicy()``)."""
    max_retries: int | None
    """Overrides the policy's ``max_retries`` (handy in specs:
    ``cohere:rerank-v3.5?max_retries=5``)."""
    requests_per_minute: float | None
    """Client-side rate limit (default ``None``: unlimited)."""
    max_concurrency: int
    """Requests in flight at most (default 8)."""
    on_usage: UsageCallback | None
    """Called with a :class:`~rerankit.remote.Usage` after every call."""
    calibration: Calibration | None
    """Maps raw scores to [0, 1] (default: the backend's score space default)."""
    dedupe: bool
    """Score repeated documents once (default True)."""


def check_options(owner: type, options: Mapping[str, object]) -> None:
    """Refuse, as Python would, a keyword of ``options`` that :class:`RemoteOptions` lacks."""
    for name in options:
        if name not in RemoteOptions.__optional_keys__:
            raise TypeError(
                f"{owner.__qualname__}.__init__() got an unexpected keyword argument {name!r}"
            )


def batches(n: int, size: int) -> list[range]:
    """``range(n)`` cut into consecutive ranges of at most ``size``."""
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int, got {value!r}")
    return value


def check_text(name: str, value: object, *, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}")
    return value.strip()


def batch_labels(request: str, spans: list[range]) -> Callable[[int], str]:
    """Names of the requests of a call cut into ``spans``, for errors and logs."""

    def what(i: int) -> str:
        span = spans[i]
        if len(spans) == 1:
            return f"{request} ({len(span)} documents)"
        return f"{request} (batch {i + 1} of {len(spans)}, documents {span.start}-{span.stop - 1})"

    return what


def _batch_jobs(
    texts: Sequence[str], size: int, request: str, send: Callable[[list[str], float], R]
) -> tuple[list[Callable[[float], R]], Callable[[int], str]]:
    """One job per batch of at most ``size`` texts (``send(batch, timeout)``), and their names."""
    spans = batches(len(texts), size)
    jobs: list[Callable[[float], R]] = [partial(send, list(texts[s.start : s.stop])) for s in spans]
    return jobs, batch_labels(request, spans)


def _joined(parts: list[list[float]]) -> list[float]:
    return [score for part in parts for score in part]


class RemoteReranker(Reranker):
    """Base class of rerankers that call a remote server.

    Subclasses implement :meth:`_score_remote` / :meth:`_ascore_remote` on top of
    :attr:`resilience` (retries, deadline, rate and concurrency limits) and create their
    clients lazily in :meth:`_new_client` / :meth:`_new_async_client` (one async client per
    event loop). This class reports usage, keeps API keys out of reprs, configs and messages,
    and turns client exceptions into typed :class:`~rerankit.remote.RemoteError`.

    Its keyword arguments (``timeout``, ``deadline``, ``retry``, ``max_retries``,
    ``requests_per_minute``, ``max_concurrency``, ``on_usage``, ``calibration``, ``dedupe``)
    are the same for every backend and described in :class:`RemoteOptions`; backends take them
    as ``**options``.
    """

    _api_key: SecretStr | None = None
    """Set by a backend that has a key; :attr:`api_key` returns it."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        deadline: float | None = 60.0,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        requests_per_minute: float | None = None,
        max_concurrency: int = 8,
        on_usage: UsageCallback | None = None,
        calibration: Calibration | None = None,
        dedupe: bool = True,
    ) -> None:
        if retry is None:
            retry = RetryPolicy()
        if not isinstance(retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        if max_retries is not None:
            retry = replace(retry, max_retries=max_retries)
        if deadline is not None and (
            isinstance(deadline, bool)
            or not isinstance(deadline, int | float)
            or not math.isfinite(deadline)
            or deadline <= 0
        ):
            raise ConfigurationError(f"deadline must be > 0 seconds or None, got {deadline!r}")
        if on_usage is not None and not callable(on_usage):
            raise ConfigurationError("on_usage must be callable")
        super().__init__(calibration=calibration, dedupe=dedupe)
        self.deadline = float(deadline) if deadline is not None else None
        self.on_usage = on_usage
        self.resilience = Resilience(
            name=self._describe,
            timeout=timeout,
            retry=retry,
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            classify=self._classify,
            redact=self._redact,
        )
        self._clients: Clients[Any] = Clients(
            self._new_client, self._new_async_client, _close, _aclose
        )
        guard_logs(self)  # its secrets are scrubbed from every log record while it lives

    # -- settings ------------------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        return self.resilience.timeout

    @property
    def retry(self) -> RetryPolicy:
        return self.resilience.retry

    @property
    def max_concurrency(self) -> int:
        return self.resilience.slots.limit

    @property
    def requests_per_minute(self) -> float | None:
        rate = self.resilience.rate
        return rate.requests_per_minute if rate is not None else None

    # -- subclass hooks ------------------------------------------------------------------------

    @property
    def api_key(self) -> SecretStr | None:
        """The API key, as a pydantic ``SecretStr`` (``None`` when there is none)."""
        return self._api_key

    def _endpoint(self) -> str | None:
        """Where requests go (for reprs and configs)."""
        return None

    def _settings(self) -> dict[str, Any]:
        """Backend-specific, non-secret settings for :meth:`to_config`."""
        return {}

    def _classify(self, exc: BaseException) -> Failure | None:
        """Map a client exception to a :class:`Failure`; ``None`` when unknown."""
        return None

    def _new_client(self) -> Any:
        raise NotImplementedError

    def _new_async_client(self) -> Any:
        raise NotImplementedError

    @abc.abstractmethod
    def _score_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        """Score ``texts``; one raw score per text, in order."""

    @abc.abstractmethod
    async def _ascore_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        """Async :meth:`_score_remote`, on the native async client."""

    # -- clients -------------------------------------------------------------------------------

    def _client(self) -> Any:
        """The sync client, created on first use."""
        return self._clients.sync()

    def _aclient(self) -> Any:
        """The async client of the running event loop, created on first use and closed when
        that loop shuts down."""
        return self._clients.current()

    def close(self) -> None:
        """Close the sync client (a new one is created if the reranker is used again)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the clients of the running event loop and the sync client."""
        await self._clients.aclose()

    # -- secrets, reprs, config ----------------------------------------------------------------

    def _secrets(self) -> list[str]:
        key = self.api_key
        return [key.get_secret_value()] if key is not None else []

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets())

    def _describe(self) -> str:
        return f"{type(self).__name__}(model={self.model_name!r})"

    def __repr__(self) -> str:
        fields: dict[str, Any] = {"model": self.model_name}
        endpoint = self._endpoint()
        if endpoint is not None:
            fields["url"] = endpoint
        fields["api_key"] = MASK if self.api_key is not None else None
        inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"{type(self).__name__}({inner})"

    def to_config(self) -> dict[str, Any]:
        """The reranker's settings as plain JSON-able values, the API key masked.

        Example:
            >>> from rerankit import CohereReranker
            >>> config = CohereReranker(api_key="my-key").to_config()
            >>> config["backend"], config["model"], config["api_key"]
            ('cohere', 'rerank-v3.5', '**********')
        """
        retry = self.retry
        return {
            "backend": self.backend,
            "model": self.model_name,
            "url": self._endpoint(),
            "api_key": MASK if self.api_key is not None else None,
            **self._settings(),
            "timeout": self.timeout,
            "deadline": self.deadline,
            "max_retries": retry.max_retries,
            "retry": {
                "base_delay": retry.base_delay,
                "max_delay": retry.max_delay,
                "multiplier": retry.multiplier,
                "jitter": retry.jitter,
                "max_retry_after": retry.max_retry_after,
            },
            "requests_per_minute": self.requests_per_minute,
            "max_concurrency": self.max_concurrency,
        }

    def cache_fingerprint(self) -> dict[str, Any]:
        """What changes this reranker's raw scores, for :class:`~rerankit.CachedReranker`.

        The settings of :meth:`to_config` (backend, model, endpoint, backend options), without
        the key and without what only shapes the traffic: timeouts, deadline, retries, rate and
        concurrency limits, batch sizes. A remote model has no local files to check.
        """
        fields = {k: v for k, v in self.to_config().items() if k not in _TRAFFIC_SETTINGS}
        fields["model_revision"] = None
        return fields

    def __copy__(self) -> RemoteReranker:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        guard_logs(clone)
        return clone

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            f"{type(self).__name__} cannot be pickled (it holds live clients and an API key); "
            "build it again from to_config() and the key"
        )

    # -- scoring -------------------------------------------------------------------------------

    def _score_batches(
        self,
        texts: Sequence[str],
        send: Callable[[list[str], float], list[float]],
        *,
        size: int,
        request: str,
        deadline: Deadline,
        meter: UsageMeter,
    ) -> list[float]:
        """Score ``texts`` in batches of at most ``size``, sent concurrently.

        ``send(documents, timeout)`` makes one request (named ``request`` in errors and logs)
        and returns one score per document; every batch gets the retries, deadline and limits of
        :attr:`resilience`, and the scores come back in input order.
        """
        jobs, what = _batch_jobs(texts, size, request, send)
        return _joined(self.resilience.call_all(jobs, deadline=deadline, meter=meter, what=what))

    async def _ascore_batches(
        self,
        texts: Sequence[str],
        send: Callable[[list[str], float], Awaitable[list[float]]],
        *,
        size: int,
        request: str,
        deadline: Deadline,
        meter: UsageMeter,
    ) -> list[float]:
        """Async :meth:`_score_batches`: ``send`` is a coroutine function."""
        jobs, what = _batch_jobs(texts, size, request, send)
        parts = await self.resilience.acall_all(jobs, deadline=deadline, meter=meter, what=what)
        return _joined(parts)

    def _report(self, meter: UsageMeter, *, ok: bool) -> Usage:
        usage = meter.usage(backend=self.backend, model=self.model_name, ok=ok)
        if self.on_usage is not None:
            try:
                self.on_usage(usage)
            except Exception:
                log.exception("%s: the on_usage callback failed", self._describe())
        return usage

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        deadline, meter = Deadline(self.deadline), UsageMeter()
        ok = False
        try:
            raw = self._score_remote(query, texts, deadline, meter)
            ok = True
        finally:
            usage = self._report(meter, ok=ok)
        return ScoreBatch(raw, usage=usage.as_dict())

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        deadline, meter = Deadline(self.deadline), UsageMeter()
        ok = False
        try:
            raw = await self._ascore_remote(query, texts, deadline, meter)
            ok = True
        finally:
            usage = self._report(meter, ok=ok)
        return ScoreBatch(raw, usage=usage.as_dict())


def _close(client: Any) -> None:
    client.close()


async def _aclose(client: Any) -> None:
    for name in ("aclose", "close"):
        method = getattr(client, name, None)
        if callable(method):
            result = method()
            if asyncio.iscoroutine(result):
                await result
            return
