"""``rerankit serve`` on Ray Serve: the same app, replicated and autoscaled across a cluster
(``pip install 'rerankit[ray]'``).

:func:`deployment` gives a Ray Serve application: each replica builds the reranker from its
spec, serves the same Starlette app (same routes, wire formats, limits, auth, metrics) and
gathers concurrent requests with ``@serve.batch`` into one batch, whose requests are scored
together (a micro-batching cross-encoder runs them in shared forward passes). ``replicas``
replicas start; with ``max_replicas`` Ray Serve autoscales between the two on the requests
in flight per replica. The bearer token is read from the environment *on each replica* (the
deployment's arguments name the variable, never the token): on a cluster, set it on the nodes
or in the job's ``runtime_env``.

On a laptop, ``rerankit serve --ray`` starts a local Ray; on a cluster, ``--ray-address
ray://head:10001`` (or ``auto`` on a node of it) joins it. In Python::

    import ray
    from ray import serve
    from rerankit.serve.ray import RayOptions, deployment

    ray.init(address="auto")                      # or ray.init() for a local one
    serve.start(http_options={"host": "0.0.0.0", "port": 8000})
    serve.run(deployment("cross-encoder:/models/ce", options=RayOptions(max_replicas=4)),
              name="rerankit", route_prefix="/")
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

from rerankit._deps import require
from rerankit.errors import ConfigurationError
from rerankit.serve.limits import Limits

__all__ = ["RayOptions", "deployment", "run_ray"]


@dataclass(frozen=True)
class RayOptions:
    """How the Ray Serve deployment runs.

    Example:
        >>> from rerankit.serve.ray import RayOptions
        >>> RayOptions(replicas=2, max_replicas=8).autoscaling()["max_replicas"]
        8
    """

    replicas: int = 1
    """Replicas to start with (the lower bound when autoscaling)."""
    max_replicas: int | None = None
    """Autoscale up to this many replicas (``None``: a fixed ``replicas``)."""
    target_ongoing_requests: float = 16.0
    """Requests in flight per replica that autoscaling aims at."""
    max_batch_size: int = 32
    """Requests per ``@serve.batch`` batch at most."""
    batch_wait_timeout_s: float = 0.005
    """How long the first request of a batch waits for company."""
    num_cpus: float = 1.0
    """CPUs each replica reserves."""
    micro_batching: bool = True
    """Cross-encoder specs micro-batch their forward passes (as ``rerankit serve`` does)."""

    def __post_init__(self) -> None:
        for name in ("replicas", "max_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive int, got {value!r}")
        if self.max_replicas is not None and (
            not isinstance(self.max_replicas, int) or self.max_replicas < self.replicas
        ):
            raise ConfigurationError(
                f"max_replicas must be an int >= replicas ({self.replicas}), "
                f"got {self.max_replicas!r}"
            )

    def autoscaling(self) -> dict[str, Any]:
        """Ray Serve's ``autoscaling_config`` for these options."""
        return {
            "min_replicas": self.replicas,
            "initial_replicas": self.replicas,
            "max_replicas": self.max_replicas or self.replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
        }


def deployment(
    spec: str,
    *,
    limits: Limits | None = None,
    token_env: str | None = None,
    options: RayOptions | None = None,
) -> Any:
    """The Ray Serve application serving the reranker of ``spec`` (bind it with
    ``serve.run``)."""
    serve: Any = require("ray.serve", extra="ray", feature="rerankit serve on Ray", package="ray")
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError("spec must be a reranker spec string such as 'embedding'")
    limits = limits or Limits()
    opts = options or RayOptions()
    scaling: dict[str, Any] = (
        {"autoscaling_config": opts.autoscaling()}
        if opts.max_replicas is not None
        else {"num_replicas": opts.replicas}
    )

    @serve.deployment(
        name="rerankit",
        max_ongoing_requests=limits.max_in_flight + 1,  # the app answers the rest with 429
        ray_actor_options={"num_cpus": opts.num_cpus},
        **scaling,
    )
    @serve.ingress()
    class RerankDeployment:
        def __init__(self, spec: str, limits: Limits, token_env: str | None) -> None:
            from rerankit.serve.auth import token_from_env
            from rerankit.serve.cli import build_reranker
            from rerankit.serve.service import RerankService

            reranker = build_reranker(spec, micro_batching=opts.micro_batching)
            self.service = RerankService(
                reranker, limits=limits, token=token_from_env(token_env), scorer=self.score
            )

        @serve.batch(  # type: ignore[untyped-decorator]
            max_batch_size=opts.max_batch_size,
            batch_wait_timeout_s=opts.batch_wait_timeout_s,
        )
        async def _batch(self, jobs: list[tuple[str, list[str], Any]]) -> list[Any]:
            self.service.metrics.observe_batch(len(jobs), sum(len(texts) for _, texts, _ in jobs))
            reranker = self.service.reranker
            return list(
                await asyncio.gather(
                    *(reranker.arerank(q, texts, policy=policy) for q, texts, policy in jobs),
                    return_exceptions=True,
                )
            )

        async def score(self, query: str, texts: list[str], policy: Any) -> Any:
            result = await self._batch((query, texts, policy))
            if isinstance(result, BaseException):
                raise result
            return result

        def __serve_build_asgi_app__(self) -> Any:
            from rerankit.serve.app import create_app

            return create_app(self.service)

    deployed: Any = RerankDeployment
    return deployed.bind(spec, limits, token_env)


def run_ray(
    spec: str,
    *,
    limits: Limits | None = None,
    token_env: str | None = None,
    options: RayOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    address: str | None = None,
) -> None:
    """``rerankit serve --ray``: serve ``spec`` on Ray Serve (a local Ray, or the cluster at
    ``address``) until SIGTERM / SIGINT."""
    ray: Any = require("ray", extra="ray", feature="rerankit serve --ray")
    serve: Any = require("ray.serve", extra="ray", feature="rerankit serve --ray", package="ray")
    app = deployment(spec, limits=limits, token_env=token_env, options=options)
    ray.init(address=address, log_to_driver=False)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(app, name="rerankit", route_prefix="/")
        sys.stderr.write(
            f"rerankit serve: Ray Serve deployment of {spec!r} on http://{host}:{port}\n"
        )
        sys.stderr.flush()
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
