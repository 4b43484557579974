"""Prometheus metrics of ``rerankit serve`` (``GET /metrics``), one registry per app.

* ``rerankit_serve_requests_total{route, status}`` and
  ``rerankit_serve_request_seconds{route}`` (a latency histogram);
* ``rerankit_serve_documents{route}``: documents per request (a histogram);
* ``rerankit_serve_batch_requests`` / ``rerankit_serve_batch_documents``: requests and documents
  per shared model batch (micro-batching, or Ray Serve's ``@serve.batch``);
* ``rerankit_serve_rejected_total{reason}``: requests refused before any model work
  (``unauthorized``, ``too_large``, ``too_many_documents``, ``overloaded``, ``invalid``);
* ``rerankit_serve_errors_total{kind}``: requests that failed while being scored;
* ``rerankit_serve_in_flight``: requests being answered.
"""

from __future__ import annotations

from typing import Any

from rerankit._deps import require

__all__ = ["ServeMetrics"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    """The metrics of one app, in their own ``CollectorRegistry``.

    Example:
        >>> from rerankit.serve.metrics import ServeMetrics
        >>> metrics = ServeMetrics()
        >>> metrics.observe_batch(3, 30)
        >>> b"rerankit_serve_batch_requests_count 1.0" in metrics.render()[0]
        True
    """

    def __init__(self) -> None:
        prom: Any = require("prometheus_client", extra="serve", feature="rerankit serve")
        self._prom = prom
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.requests = prom.Counter(
            "rerankit_serve_requests", "Requests answered", ["route", "status"], registry=r
        )
        self.latency = prom.Histogram(
            "rerankit_serve_request_seconds",
            "Seconds to answer a request",
            ["route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.documents = prom.Histogram(
            "rerankit_serve_documents",
            "Documents per request",
            ["route"],
            buckets=_SIZES,
            registry=r,
        )
        self.batch_requests = prom.Histogram(
            "rerankit_serve_batch_requests",
            "Requests per shared model batch",
            buckets=_SIZES,
            registry=r,
        )
        self.batch_documents = prom.Histogram(
            "rerankit_serve_batch_documents",
            "Documents per shared model batch",
            buckets=_SIZES,
            registry=r,
        )
        self.rejected = prom.Counter(
            "rerankit_serve_rejected", "Requests refused before scoring", ["reason"], registry=r
        )
        self.errors = prom.Counter(
            "rerankit_serve_errors", "Requests that failed while scored", ["kind"], registry=r
        )
        self.in_flight = prom.Gauge(
            "rerankit_serve_in_flight", "Requests being answered", registry=r
        )

    def observe_batch(self, requests: int, documents: int) -> None:
        """One shared model batch of ``requests`` requests and ``documents`` documents."""
        self.batch_requests.observe(requests)
        self.batch_documents.observe(documents)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST
