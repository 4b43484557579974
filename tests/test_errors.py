"""The one exception hierarchy: every error in ``rerankit.errors`` is a ``RerankError``, the
evaluation and multi-stage errors sit under ``ConfigurationError``, and their old import paths
still give the same classes."""

from __future__ import annotations

import doctest

import pytest

import rerankit.errors as errors
from rerankit.errors import (
    CollectionNotFoundError,
    ConfigurationError,
    DatasetError,
    MissingVectorFieldError,
    RerankError,
    RerankWarning,
    VectorFieldError,
    VectorFieldMismatchError,
)

EXPORTED = [getattr(errors, name) for name in errors.__all__]
ERRORS = [c for c in EXPORTED if isinstance(c, type) and not issubclass(c, Warning)]


def test_exports_errors_and_warnings_only() -> None:
    warnings = [c for c in EXPORTED if isinstance(c, type) and issubclass(c, Warning)]
    assert len(ERRORS) + len(warnings) == len(EXPORTED)
    assert all(issubclass(w, RerankWarning) for w in warnings)


@pytest.mark.parametrize("error", ERRORS, ids=lambda c: c.__name__)
def test_every_error_is_a_rerank_error(error: type[Exception]) -> None:
    assert issubclass(error, RerankError)
    assert error.__module__ == "rerankit.errors"


@pytest.mark.parametrize(
    ("error", "parent"),
    [
        (DatasetError, ConfigurationError),
        (CollectionNotFoundError, ConfigurationError),
        (VectorFieldError, ConfigurationError),
        (MissingVectorFieldError, VectorFieldError),
        (VectorFieldMismatchError, VectorFieldError),
    ],
    ids=lambda c: c.__name__,
)
def test_moved_errors_keep_their_parent(error: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(error, parent)
    assert issubclass(error, ValueError)  # as ConfigurationError is


def test_moved_errors_keep_their_attributes_and_messages() -> None:
    missing = MissingVectorFieldError(collection="docs", field="colbert", kind="multivector")
    assert (missing.collection, missing.field, missing.kind, missing.available) == (
        "docs",
        "colbert",
        "multivector",
        (),
    )
    assert "(it has: no vector fields)" in str(missing)
    mismatch = VectorFieldMismatchError("wrong", collection="docs", field="bm25", kind="sparse")
    assert (str(mismatch), mismatch.field, mismatch.kind) == ("wrong", "bm25", "sparse")
    with pytest.raises(RerankError, match="'docs' does not exist"):
        raise CollectionNotFoundError("docs")


def test_docstring_examples_run() -> None:
    failures, attempted = doctest.testmod(errors, optionflags=doctest.ELLIPSIS)
    assert attempted > 0
    assert failures == 0
