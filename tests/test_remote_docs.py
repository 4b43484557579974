"""The docstring examples of the remote modules run (without a network)."""

from __future__ import annotations

import doctest
import importlib
import logging

import pytest

MODULES = [
    "rerankit.remote.base",
    "rerankit.remote.limits",
    "rerankit.remote.parsing",
    "rerankit.remote.prompting",
    "rerankit.remote.secrets",
    "rerankit.remote.openai",
    "rerankit.remote.transport",
    "rerankit.remote.loops",
    "rerankit.remote.usage",
    "rerankit.backends.cohere",
    "rerankit.backends.llm",
    "rerankit.backends.llm_answers",
    "rerankit.backends.http",
    "rerankit.backends.fallback",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="rerankit.remote")
    module = importlib.import_module(name)
    failures, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0
    assert failures == 0


def test_import_pulls_no_client_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, rerankit, rerankit.remote; "
        "from rerankit import CohereReranker, LLMReranker, HTTPReranker, FallbackReranker; "
        "print(','.join(m for m in ('cohere', 'openai', 'httpx', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
