"""One string spec names any backend, for configs and the CLI.

A spec is ``<backend>[:<model>][?<option>=<value>&...]``::

    cross-encoder:cross-encoder/ms-marco-MiniLM-L6-v2?batch_size=64&dtype=float32
    embedding                    # the offline default model
    late-interaction:/models/colbertv2.0
    cohere:rerank-v3.5?max_tokens_per_doc=512
    voyage:rerank-2.5           # also jina:<model>, mixedbread:<model>
    llm:gpt-4o-mini?mode=listwise
    causal-lm:Qwen/Qwen3-Reranker-0.6B?preset=qwen3-reranker   # a local LLM's yes/no log-odds
    http:http://gpu-1:8080?api=tei          # the http backend takes its URL in the model slot
    none                         # no reranking: keep the retrieval order

Options are the backend's keyword arguments; values are read as int, float, bool
(``true``/``false``), ``none`` or else a string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from rerankit.base import Reranker
from rerankit.errors import ConfigurationError, UnknownBackendError

__all__ = ["as_reranker", "available_backends", "from_spec", "parse_spec", "register_backend"]

Factory = Callable[..., Reranker]
_registry: dict[str, Factory] = {}
_builtins_loaded = False


def register_backend(name: str, factory: Factory, *, replace: bool = False) -> None:
    """Register ``factory`` (a class or callable taking keyword arguments) under ``name``."""
    if not name or ":" in name or "?" in name:
        raise ConfigurationError(f"invalid backend name {name!r}")
    _ensure_builtins()
    if name in _registry and not replace:
        raise ConfigurationError(f"backend {name!r} is already registered")
    _registry[name] = factory


def available_backends() -> list[str]:
    """Names of registered backends."""
    _ensure_builtins()
    return sorted(_registry)


def _coerce(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """Split a spec into (backend, model or None, options)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError("a reranker spec must be a non-empty string")
    body, _, query = spec.strip().partition("?")
    name, sep, model = body.partition(":")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True) if query else []
    except ValueError as exc:
        raise ConfigurationError(f"malformed options in reranker spec {spec!r}: {exc}") from exc
    options = {k: _coerce(v) for k, v in pairs}
    return name, (model if sep and model else None), options


def from_spec(spec: str, **overrides: Any) -> Reranker:
    """Build a reranker from a spec; keyword ``overrides`` win over spec options.

    Example:
        >>> from rerankit import from_spec
        >>> from_spec("embedding").backend
        'embedding'
    """
    _ensure_builtins()
    name, model, options = parse_spec(spec)
    factory = _registry.get(name)
    if factory is None:
        raise UnknownBackendError(
            f"unknown reranker backend {name!r} in spec {spec!r}; "
            f"available: {', '.join(sorted(_registry))}"
        )
    kwargs = {**options, **overrides}
    if model is not None:
        kwargs.setdefault("model", model)
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"bad options for backend {name!r}: {exc}") from exc


def as_reranker(value: Reranker | str | None, *, name: str = "reranker") -> Reranker:
    """``value`` as a reranker: a :class:`Reranker` as it is, a spec string through
    :func:`from_spec`, ``None`` as :class:`~rerankit.PassthroughReranker` (no reranking).

    Every component that takes a ``reranker`` argument converts it with this function, so
    they all accept the same values. ``name`` is the argument's name in the error.

    Example:
        >>> from rerankit import as_reranker
        >>> as_reranker("embedding").backend, as_reranker(None).backend
        ('embedding', 'none')
    """
    if isinstance(value, Reranker):
        return value
    if value is None:
        from rerankit.backends.passthrough import PassthroughReranker

        return PassthroughReranker()
    if isinstance(value, str):
        return from_spec(value)
    raise ConfigurationError(
        f"{name} must be a Reranker, a spec string such as 'embedding', or None (no "
        f"reranking), got {type(value).__name__}"
    )


def _ensure_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    from rerankit.backends.cross_encoder import CrossEncoderReranker
    from rerankit.backends.embedding import EmbeddingReranker
    from rerankit.backends.late_interaction import LateInteractionReranker

    for cls in (CrossEncoderReranker, EmbeddingReranker, LateInteractionReranker):
        _registry.setdefault(cls.backend, cls)
    from rerankit.backends.cohere import CohereReranker
    from rerankit.backends.http import HTTPReranker
    from rerankit.backends.llm import LLMReranker
    from rerankit.backends.passthrough import PassthroughReranker

    _registry.setdefault(CohereReranker.backend, CohereReranker)  # cohere:rerank-v3.5
    _registry.setdefault(LLMReranker.backend, LLMReranker)  # llm:gpt-4o-mini?mode=listwise
    _registry.setdefault(HTTPReranker.backend, HTTPReranker.from_spec_options)  # http:http://h:8080
    _registry.setdefault(PassthroughReranker.backend, PassthroughReranker)  # none: no reranking
    from rerankit.backends.causal_lm import CausalLMReranker
    from rerankit.backends.jina import JinaReranker
    from rerankit.backends.mixedbread import MixedbreadReranker
    from rerankit.backends.voyage import VoyageReranker

    for hosted in (VoyageReranker, JinaReranker, MixedbreadReranker):  # voyage:rerank-2.5
        _registry.setdefault(hosted.backend, hosted)
    _registry.setdefault(CausalLMReranker.backend, CausalLMReranker)  # causal-lm:/m.gguf?preset=
    _builtins_loaded = True
