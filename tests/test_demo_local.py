"""``rerankit demo --answer --generator local``: a real generated answer offline, with its
citations, the prompt as sent and the generation times."""

from __future__ import annotations

import io

import pytest

from rerankit.demo import DemoConfig, run_demo

pytestmark = pytest.mark.model


def test_demo_answers_with_the_local_llm(smollm2: str) -> None:
    out = io.StringIO()
    config = DemoConfig(
        qdrant_path=":memory:",
        queries=["Which rover collects rock samples on Mars?"],
        answer=True,
        generator="local",
        llm=smollm2,
    )
    (report,) = run_demo(config, out)
    text = out.getvalue()
    assert "answers: local LLM SmolLM2-135M-Instruct (Q4_1 gguf), loaded in" in text
    assert report.answer is not None and not report.answer.abstained
    assert report.answer.answer.strip()  # generated text
    assert report.answer.generator == "local LLM: SmolLM2-135M-Instruct (Q4_1 gguf)"
    assert "answer (local LLM: SmolLM2" in text and "prompt (as sent):" in text
    assert "citations:" in text
    assert "generation: first token after " in text and " ms in total, " in text
