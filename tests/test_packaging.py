"""Packaging contracts: a light base import, lazy optional dependencies, runnable docstrings."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

from rerankit import MissingDependencyError, RerankError
from rerankit._deps import require


def test_base_import_pulls_no_framework_and_no_torch() -> None:
    code = (
        "import sys, rerankit; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'langchain_core', "
        "'llama_index', 'qdrant_client', 'cohere', 'openai') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_dependency_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError) as info:
        require("rerankit_no_such_module", extra="local", feature="Something")
    assert isinstance(info.value, RerankError) and isinstance(info.value, ImportError)
    assert "pip install 'rerankit[local]'" in str(info.value)


def test_missing_framework_names_the_extra() -> None:
    # Run in a subprocess where langchain_core cannot be imported.
    code = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "try:\n    import rerankit.langchain\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("MissingDependencyError")
    assert "rerankit[langchain]" in out.stdout


MODULES = [
    "rerankit.base",
    "rerankit.types",
    "rerankit.threshold",
    "rerankit.registry",
    "rerankit.sparse",
    "rerankit.backends.embedding",
    "rerankit.backends.late_interaction",
    "rerankit.langchain.compressor",
    "rerankit.langchain.retriever",
    "rerankit.llama_index.postprocessor",
    "rerankit.candidates",
    "rerankit.backends.passthrough",
    "rerankit.backends.local",
    "rerankit.sentence",
    "rerankit.langchain.step",
    "rerankit.cache",
    "rerankit.cache.store",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    failures, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0
    assert failures == 0
