"""``RemoteReranker``: the base of rerankers that call a server (Cohere, LLM, HTTP)."""

from __future__ import annotations

import abc
import asyncio
import logging
import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rerankit.base import Reranker, ScoreBatch
from rerankit.calibration import Calibration
from rerankit.errors import ConfigurationError
from rerankit.remote.resilience import Deadline, Failure, Resilience, RetryPolicy
from rerankit.remote.secrets import MASK, redact
from rerankit.remote.usage import Usage, UsageCallback, UsageMeter

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["RemoteReranker", "batches"]

log = logging.getLogger("rerankit.remote")


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


class RemoteReranker(Reranker):
    """Base class of rerankers that call a remote server.

    Subclasses implement :meth:`_score_remote` / :meth:`_ascore_remote` on top of
    :attr:`resilience` (retries, deadline, rate and concurrency limits) and create their
    clients lazily in :meth:`_new_client` / :meth:`_new_async_client` (one async client per
    event loop). This class reports usage, keeps API keys out of reprs, configs and messages,
    and turns client exceptions into typed :class:`~rerankit.remote.RemoteError`.

    Common keyword arguments:
        timeout: seconds one request may take (default 30).
        deadline: seconds one rerank call may take, retries and waits included (default 60;
            ``None`` for no limit).
        retry: a :class:`~rerankit.remote.RetryPolicy`; ``max_retries`` overrides its
            ``max_retries`` (handy in specs: ``cohere:rerank-v3.5?max_retries=5``).
        requests_per_minute: client-side rate limit (``None``: unlimited).
        max_concurrency: requests in flight at most (default 8).
        on_usage: called with a :class:`~rerankit.remote.Usage` after every call.
    """

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
        self._client_lock = threading.Lock()
        self._sync_client: Any = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

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
        return None

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
        with self._client_lock:
            if self._sync_client is None:
                self._sync_client = self._new_client()
            return self._sync_client

    def _aclient(self) -> Any:
        """The async client of the running event loop, created on first use."""
        loop = asyncio.get_running_loop()
        with self._client_lock:
            for closed in [other for other in self._async_clients if other.is_closed()]:
                # Its connections died with it; holding the client would keep the loop alive.
                del self._async_clients[closed]
            client = self._async_clients.get(loop)
            if client is None:
                client = self._async_clients[loop] = self._new_async_client()
            return client

    def close(self) -> None:
        """Close the sync client (a new one is created if the reranker is used again)."""
        with self._client_lock:
            client, self._sync_client = self._sync_client, None
        if client is not None:
            _close(client)

    async def aclose(self) -> None:
        """Close the clients of the running event loop and the sync client."""
        loop = asyncio.get_running_loop()
        with self._client_lock:
            client = self._async_clients.pop(loop, None)
        if client is not None:
            await _aclose(client)
        self.close()

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

    def __copy__(self) -> RemoteReranker:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            f"{type(self).__name__} cannot be pickled (it holds live clients and an API key); "
            "build it again from to_config() and the key"
        )

    # -- scoring -------------------------------------------------------------------------------

    def _report(self, meter: UsageMeter, *, ok: bool) -> Usage:
        usage = meter.usage(backend=self.backend, model=self.model_name, ok=ok)
        if self.on_usage is not None:
            try:
                self.on_usage(usage)
            except Exception:
                log.exception("%s: the on_usage callback failed", self._describe())
        return usage

    def _score(self, query: str, texts: Sequence[str]) -> ScoreBatch:
        deadline, meter = Deadline(self.deadline), UsageMeter()
        ok = False
        try:
            raw = self._score_remote(query, texts, deadline, meter)
            ok = True
        finally:
            usage = self._report(meter, ok=ok)
        return ScoreBatch(raw, usage=usage.as_dict())

    async def _ascore(self, query: str, texts: Sequence[str]) -> ScoreBatch:
        deadline, meter = Deadline(self.deadline), UsageMeter()
        ok = False
        try:
            raw = await self._ascore_remote(query, texts, deadline, meter)
            ok = True
        finally:
            usage = self._report(meter, ok=ok)
        return ScoreBatch(raw, usage=usage.as_dict())


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # closing is best effort
            log.debug("closing a client failed", exc_info=True)


async def _aclose(client: Any) -> None:
    for name in ("aclose", "close"):
        method = getattr(client, name, None)
        if callable(method):
            try:
                result = method()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # closing is best effort
                log.debug("closing a client failed", exc_info=True)
            return
