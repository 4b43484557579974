"""Process-wide model sharing: components naming the same model share one load."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_models: dict[Hashable, Any] = {}
_locks: dict[Hashable, threading.Lock] = {}
_guard = threading.Lock()


def shared_model(key: Hashable, load: Callable[[], T]) -> T:
    """Return the model cached under ``key``, loading it once (thread-safe)."""
    model = _models.get(key)
    if model is not None:
        return model  # type: ignore[no-any-return]
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        model = _models.get(key)
        if model is None:
            model = load()
            _models[key] = model
    return model  # type: ignore[no-any-return]


def loaded_models() -> int:
    """How many distinct models this process holds."""
    return len(_models)


def clear_model_cache() -> None:
    """Forget every shared model (they are freed once no reranker holds them)."""
    with _guard:
        _models.clear()
        _locks.clear()
