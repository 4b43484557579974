"""The ASGI app of ``rerankit serve`` (Starlette): routes onto a :class:`RerankService`.

``POST /v2/rerank`` (Cohere v2), ``POST /rerank`` (TEI, Infinity, Jina), ``GET /health``,
``GET /metrics`` (Prometheus). Unknown paths and methods get JSON errors too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from rerankit._deps import require
from rerankit.serve.service import Answer, RerankService
from rerankit.serve.wire import Parsed, parse_cohere, parse_rerank

__all__ = ["create_app"]


def _json(answer: Answer) -> Any:
    responses = require("starlette.responses", extra="serve", feature="rerankit serve")
    return responses.Response(
        json.dumps(answer.body, allow_nan=False).encode(),
        status_code=answer.status,
        headers=dict(answer.headers),
        media_type="application/json",
    )


def create_app(service: RerankService) -> Any:
    """A Starlette app serving ``service``; run it with any ASGI server (``uvicorn``).

    Example:
        >>> from rerankit import EmbeddingReranker
        >>> from rerankit.serve import RerankService, create_app
        >>> app = create_app(RerankService(EmbeddingReranker()))
        >>> sorted(r.path for r in app.routes)
        ['/health', '/metrics', '/rerank', '/v2/rerank']
    """
    applications = require("starlette.applications", extra="serve", feature="rerankit serve")
    routing = require("starlette.routing", extra="serve", feature="rerankit serve")
    responses = require("starlette.responses", extra="serve", feature="rerankit serve")

    def route(path: str, parse: Callable[[bytes], Parsed]) -> Callable[[Any], Any]:
        async def endpoint(request: Any) -> Any:
            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in request.stream():
                    yield chunk

            client = request.client.host if request.client is not None else ""
            answer = await service.rerank(
                path, parse, headers=request.headers, body=chunks(), client=client
            )
            return _json(answer)

        return endpoint

    async def health(request: Any) -> Any:
        return _json(service.health())

    async def metrics(request: Any) -> Any:
        body, content_type = service.metrics.render()
        return responses.Response(body, media_type=content_type)

    async def not_found(request: Any, exc: Exception) -> Any:
        status = int(getattr(exc, "status_code", 404))
        what = "no such route" if status == 404 else "method not allowed"
        message = f"{what}: {request.method} {request.url.path}"
        return _json(Answer(status, {"message": message, "error": message}, {}))

    routes = [
        routing.Route("/v2/rerank", route("/v2/rerank", parse_cohere), methods=["POST"]),
        routing.Route("/rerank", route("/rerank", parse_rerank), methods=["POST"]),
        routing.Route("/health", health, methods=["GET"]),
        routing.Route("/metrics", metrics, methods=["GET"]),
    ]
    app = applications.Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.service = service
    return app
