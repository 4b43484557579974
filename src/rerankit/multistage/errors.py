"""Typed errors of the multi-stage retriever: every one is a :class:`~rerankit.ConfigurationError`
(so a :class:`~rerankit.RerankError`), and each names the collection and the field at fault.

They are defined in :mod:`rerankit.errors` (rerankit's one exception hierarchy) and re-exported
here, so ``from rerankit.multistage.errors import ...`` keeps working.
"""

from __future__ import annotations

from rerankit.errors import (
    CollectionNotFoundError,
    MissingVectorFieldError,
    VectorDimensionError,
    VectorFieldError,
    VectorFieldMismatchError,
)

__all__ = [
    "CollectionNotFoundError",
    "MissingVectorFieldError",
    "VectorDimensionError",
    "VectorFieldError",
    "VectorFieldMismatchError",
]
