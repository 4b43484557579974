"""``RerankService``: what every ``rerankit serve`` route does with a request, whatever the
web framework around it (the Starlette app, or a Ray Serve replica).

In order: the bearer token (401), a slot among the requests in flight (429 with
``Retry-After``), the body within its byte limit (413), the body read in its wire format (400 /
422 naming the field), the document limit (413); only then the reranker. Each step is counted in
:class:`~rerankit.serve.metrics.ServeMetrics` and every request gets one access-log line.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rerankit.base import Reranker
from rerankit.batching import MicroBatcher
from rerankit.errors import (
    BackendError,
    ConfigurationError,
    EmptyQueryError,
    InvalidDocumentError,
    InvalidQueryError,
    RerankError,
)
from rerankit.registry import as_reranker
from rerankit.serve.auth import BearerAuth
from rerankit.serve.limits import Admission, Limits, Refused, read_body
from rerankit.serve.logs import access
from rerankit.serve.metrics import ServeMetrics
from rerankit.serve.wire import Parsed, WireError, render
from rerankit.threshold import ThresholdPolicy
from rerankit.types import RerankResults

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["Answer", "RerankService", "Scorer"]

log = logging.getLogger("rerankit.serve")

Scorer = Callable[[str, list[str], ThresholdPolicy], Awaitable[RerankResults]]
"""Scores one request: ``(query, texts, policy) -> results``."""


@dataclass(frozen=True)
class Answer:
    """What to send back: a status, a JSON-able body and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


def _problem(status: int, message: str, kind: str, field: str = "") -> dict[str, Any]:
    # "message" is what Cohere-style clients show, "error" / "error_type" what TEI-style ones do.
    return {"message": message, "error": message, "error_type": kind, "field": field or None}


class RerankService:
    """Serves one reranker over the rerank wire formats, with limits, auth and metrics.

    ``scorer`` replaces the plain ``reranker.arerank`` call (Ray Serve's ``@serve.batch``
    goes there). A :class:`~rerankit.CrossEncoderReranker` with ``micro_batching=True`` reports
    its shared batches to the metrics.

    Example:
        >>> from rerankit import EmbeddingReranker
        >>> from rerankit.serve import Limits, RerankService
        >>> service = RerankService(EmbeddingReranker(), limits=Limits(max_documents=100))
        >>> service.limits.max_documents
        100
    """

    def __init__(
        self,
        reranker: Reranker | str,
        *,
        limits: Limits | None = None,
        token: SecretStr | None = None,
        scorer: Scorer | None = None,
    ) -> None:
        self.reranker = as_reranker(reranker)
        if limits is not None and not isinstance(limits, Limits):
            raise ConfigurationError(f"limits must be a Limits, got {type(limits).__name__}")
        self.limits = limits or Limits()
        self.auth = BearerAuth(token)
        self.metrics = ServeMetrics()
        self.admission = Admission(self.limits)
        self._scorer = scorer or self._direct
        self._unlisten: Callable[[], None] | None = None
        batcher = getattr(self.reranker, "micro_batcher", None)
        if isinstance(batcher, MicroBatcher):
            self._unlisten = batcher.add_listener(self.metrics.observe_batch)

    def __repr__(self) -> str:
        return f"RerankService({self.reranker!r}, auth={self.auth.enabled})"

    @property
    def model(self) -> str:
        return self.reranker.model_name or self.reranker.backend

    async def _direct(self, query: str, texts: list[str], policy: ThresholdPolicy) -> RerankResults:
        return await self.reranker.arerank(query, texts, policy=policy)

    def close(self) -> None:
        """Stop reporting batches (the reranker itself stays usable)."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    # -- routes --------------------------------------------------------------------------------

    def health(self) -> Answer:
        return Answer(
            200,
            {
                "status": "ok",
                "backend": self.reranker.backend,
                "model": self.model,
                "in_flight": self.admission.in_flight,
            },
            {},
        )

    async def rerank(
        self,
        route: str,
        parse: Callable[[bytes], Parsed],
        *,
        headers: Mapping[str, str],
        body: AsyncIterator[bytes],
        client: str = "",
    ) -> Answer:
        """Answer one rerank request (``headers`` with lower-case names)."""
        started = time.perf_counter()
        given = headers.get("x-request-id", "")
        request_id = given if given.isprintable() and 0 < len(given) <= 128 else uuid.uuid4().hex
        n = 0
        answer: Answer
        try:
            self.auth.check(headers.get("authorization"))
            async with self.admission.slot():
                self.metrics.in_flight.inc()
                try:
                    parsed = parse(await read_body(headers, body, self.limits.max_request_bytes))
                    n = len(parsed.texts)
                    self.limits.check_documents(n)
                    self.metrics.documents.labels(route).observe(n)
                    results = await self._score(parsed)
                    answer = Answer(200, render(parsed, results, model=self.model), {})
                finally:
                    self.metrics.in_flight.dec()
        except Refused as exc:
            self.metrics.rejected.labels(exc.reason).inc()
            answer = Answer(
                exc.status, _problem(exc.status, str(exc), exc.reason, exc.field), exc.headers
            )
        except WireError as exc:
            self.metrics.rejected.labels("invalid").inc()
            answer = Answer(exc.status, _problem(exc.status, str(exc), "validation", exc.field), {})
        except _Failed as exc:
            answer = exc.answer
        answer = Answer(answer.status, answer.body, {**answer.headers, "X-Request-Id": request_id})
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(route, str(answer.status)).inc()
        self.metrics.latency.labels(route).observe(elapsed)
        access(
            method="POST",
            path=route,
            status=answer.status,
            ms=round(elapsed * 1000.0, 2),
            documents=n,
            client=client,
            request_id=request_id,
        )
        return answer

    async def _score(self, parsed: Parsed) -> RerankResults:
        try:
            policy = ThresholdPolicy(top_n=parsed.top_n, min_score=parsed.min_score)
            self.reranker.check_policy(policy)
            return await self._scorer(parsed.query, parsed.texts, policy)
        except InvalidDocumentError as exc:
            raise self._invalid(f"documents.{exc.index}", str(exc)) from None
        except (EmptyQueryError, InvalidQueryError) as exc:
            raise self._invalid("query", str(exc)) from None
        except ConfigurationError as exc:
            field = "min_score" if parsed.min_score is not None else ""
            raise self._invalid(field, str(exc)) from None
        except BackendError as exc:
            self.metrics.errors.labels("backend").inc()
            log.warning("the reranker failed: %s", type(exc).__name__)
            message = f"the reranker failed: {exc}"
            raise _Failed(Answer(502, _problem(502, message, "backend"), {})) from None
        except RerankError as exc:
            self.metrics.errors.labels("rerank").inc()
            raise _Failed(Answer(500, _problem(500, str(exc), "rerank"), {})) from None
        except Exception as exc:
            self.metrics.errors.labels("internal").inc()
            log.exception("internal error while scoring")
            message = f"internal error ({type(exc).__name__})"
            raise _Failed(Answer(500, _problem(500, message, "internal"), {})) from None

    def _invalid(self, field: str, message: str) -> _Failed:
        self.metrics.rejected.labels("invalid").inc()
        return _Failed(Answer(422, _problem(422, message, "validation", field), {}))


class _Failed(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer
