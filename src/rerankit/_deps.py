"""Lazy imports of optional dependencies, with errors that name the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from rerankit.errors import MissingDependencyError


def require(module: str, *, extra: str, feature: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``rerankit[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name != top and not module.startswith(exc.name):
            # The package is there but one of *its* imports failed: don't hide that.
            raise
        raise MissingDependencyError(package or top.replace("_", "-"), extra, feature) from exc
