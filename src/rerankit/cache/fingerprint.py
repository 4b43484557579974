"""Cache fingerprints: a digest of everything that changes a reranker's raw scores."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rerankit.base import Reranker
from rerankit.cache.store import CACHE_FORMAT, digest

__all__ = ["score_fields", "score_fingerprint"]

_VERSIONED = ("torch", "transformers", "sentence-transformers")
_SECRET_WORDS = ("key", "secret", "token", "password", "auth", "credential")
_NOT_SCORE_OPTIONS = frozenset(
    {
        "calibration",
        "dedupe",
        "batch_size",
        "micro_batching",
        "micro_batch_wait_ms",
        "micro_batch_pairs",
        "timeout",
        "deadline",
        "max_retries",
        "requests_per_minute",
        "max_concurrency",
    }
)


def _scalar(value: Any) -> bool:
    """Plain immutable values (and tuples of them); mutable state such as lists is left out."""
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    return isinstance(value, tuple) and all(_scalar(v) for v in value)


def _local_revision(model: str) -> str | None:
    """Size and modification time of a local model folder's files (None for hub ids)."""
    try:
        folder = Path(model).expanduser()
        if not folder.is_dir():
            return None
        parts = []
        for item in sorted(folder.iterdir()):
            if item.is_file():
                stat = item.stat()
                parts.append(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns}")
    except OSError:
        return None
    return digest("|".join(parts))


def _versions(names: Iterable[str]) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def _resolved_device_dtype(fields: dict[str, Any]) -> None:
    """Replace ``device=None`` / ``dtype="auto"`` by what they resolve to on this machine."""
    if "dtype" not in fields and "device" not in fields:
        return
    try:
        from rerankit._torch import resolve_device, resolve_dtype

        device = resolve_device(fields.get("device"))
        fields["device"] = device
        if "dtype" in fields:
            fields["dtype"] = str(resolve_dtype(str(fields["dtype"]), device))
    except ImportError:  # no torch: the reranker cannot run locally either
        pass


def score_fields(reranker: Reranker) -> dict[str, Any]:
    """What :func:`score_fingerprint` digests, before the versions of rerankit and the cache
    format are added: the options that change ``reranker``'s raw scores, its class, backend,
    model and (for a local model folder) the size and modification time of its files.

    A reranker may describe itself with a ``cache_fingerprint()`` method returning a mapping of
    JSON-able values; otherwise its public attributes holding plain immutable values (str, int,
    float, bool, None, tuples of them) are used, minus options that do not change scores (such
    as ``batch_size``) and anything that looks like a credential. Backends whose scores depend
    on other state should define ``cache_fingerprint()``.
    ``device=None`` and ``dtype="auto"`` are resolved, so caches written on machines that run
    different dtypes never mix.
    """
    hook = getattr(reranker, "cache_fingerprint", None)
    fields: dict[str, Any]
    if callable(hook):
        fields = dict(hook())
    else:
        fields = {
            name: value
            for name, value in vars(reranker).items()
            if not name.startswith("_")
            and name not in _NOT_SCORE_OPTIONS
            and not any(word in name.lower() for word in _SECRET_WORDS)
            and _scalar(value)
        }
        _resolved_device_dtype(fields)
        fields["versions"] = _versions(_VERSIONED)
    cls = type(reranker)
    fields.setdefault("class", f"{cls.__module__}.{cls.__qualname__}")
    fields.setdefault("backend", reranker.backend)
    fields.setdefault("model", reranker.model_name)
    model = fields.get("model")
    if isinstance(model, str) and model:
        fields.setdefault("model_revision", _local_revision(model))
    return fields


def score_fingerprint(reranker: Reranker) -> str:
    """A digest of everything that changes ``reranker``'s raw scores (:func:`score_fields`),
    and of the versions of rerankit and of the cache format."""
    fields = score_fields(reranker)
    fields["rerankit"] = _versions(["rerankit"])["rerankit"]
    fields["cache_format"] = CACHE_FORMAT
    return digest(json.dumps(fields, sort_keys=True, default=repr))


def _is_pointwise(reranker: Reranker) -> bool | None:
    """The reranker's :attr:`~rerankit.Reranker.pointwise` declaration (``None``: unknown)."""
    declared = reranker.pointwise
    return declared if isinstance(declared, bool) else None
