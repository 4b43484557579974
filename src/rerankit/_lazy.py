"""Lazy module attributes: names imported from their submodule on first access (PEP 562).

The framework packages (:mod:`rerankit.langchain`, :mod:`rerankit.llama_index`) use it so
that importing them does not import their heavier parts (RAG, Qdrant, local embeddings).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    namespace: dict[str, Any], lazy: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` for the names in ``lazy``.

    ``namespace`` is the module's ``globals()``; ``lazy`` maps each name to the module that
    defines it. On first access the name is imported from there and stored in the namespace
    (later accesses do not come back here); other names raise ``AttributeError``. ``__dir__``
    lists the module's names and the lazy ones.

    Example:
        >>> import types
        >>> module = types.ModuleType("demo")
        >>> module.__getattr__, module.__dir__ = lazy_exports(vars(module), {"sqrt": "math"})
        >>> module.sqrt(4.0), "sqrt" in vars(module), "sqrt" in dir(module)
        (2.0, True, True)
    """
    module_name = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        target = lazy.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(target), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *lazy])

    return __getattr__, __dir__
