"""``rerankit serve``: any rerankit reranker as a rerank server (``pip install 'rerankit[serve]'``).

It speaks the wire formats existing clients use (Cohere v2 ``/v2/rerank``; TEI, Infinity and
Jina ``/rerank``), answers with rerankit's calibrated scores, and adds bearer-token auth,
limits, Prometheus metrics and structured access logs. :func:`create_app` gives the ASGI app
for any server; ``rerankit serve --reranker SPEC`` runs it with uvicorn, and
:mod:`rerankit.serve.ray` deploys it on Ray Serve.

Example:
    >>> from rerankit.serve import Limits, RerankService, create_app
    >>> app = create_app(RerankService("embedding", limits=Limits(max_in_flight=32)))
"""

from __future__ import annotations

from rerankit.serve.app import create_app
from rerankit.serve.auth import DEFAULT_TOKEN_ENV, BearerAuth, token_from_env
from rerankit.serve.limits import Limits
from rerankit.serve.server import BackgroundServer, run
from rerankit.serve.service import RerankService

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "BackgroundServer",
    "BearerAuth",
    "Limits",
    "RerankService",
    "create_app",
    "run",
    "token_from_env",
]
