"""Process-wide model sharing: components naming the same model share one load."""

from __future__ import annotations

import threading
import weakref
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


_model_locks: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_id_locks: dict[int, threading.RLock] = {}


def exclusive(model: Any) -> threading.RLock:
    """The lock that serialises use of ``model``'s tokenizer, one per loaded model.

    A fast tokenizer keeps its truncation and padding settings as state, set on every call:
    two threads tokenising with different settings at once get each other's (wrong truncation
    flags, over-long inputs reaching the model). Every tokenizer call on a shared model, and
    every ``encode`` that tokenises inside, holds this lock. Re-entrant.
    """
    with _guard:
        try:
            lock = _model_locks.get(model)
            if lock is None:
                lock = _model_locks[model] = threading.RLock()
        except TypeError:  # not weak-referenceable: one lock per object id, kept
            lock = _id_locks.setdefault(id(model), threading.RLock())
        return lock


def encoding(model: Any) -> threading.RLock:
    """:func:`exclusive` for a model's ``encode()``: its tokenizer's lock (the model's own when
    it has no ``tokenizer``)."""
    return exclusive(getattr(model, "tokenizer", model))
