"""Framework-free RAG over rerank results: sources, prompt, generation or abstention, citations.

The LangChain chain and the LlamaIndex query engine follow the same steps with their own
types; :func:`answer_question` is the plain-Python version (``rerankit demo --answer`` uses it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rerankit.errors import ConfigurationError
from rerankit.rag.answer_text import ReadAnswer, read_answer
from rerankit.rag.extractive import ExtractiveAnswerer
from rerankit.rag.prompt import (
    ABSTAIN_ANSWER,
    Citation,
    PromptMessage,
    RagPrompt,
    Source,
    format_prompt,
    parse_citations,
    resolve_source_id,
)
from rerankit.types import RerankResults

__all__ = [
    "ABSTAINED",
    "EXTRACTIVE",
    "Generate",
    "RagAnswer",
    "answer_question",
    "format_answer",
    "sources_from_results",
]

Generate = Callable[[Sequence[PromptMessage]], str]
"""Any LLM as a plain function: the prompt's chat messages in, the answer text out."""

ABSTAINED = "abstained, no LLM call"
"""``generator`` of an answer given without calling any generator."""
EXTRACTIVE = "extractive, no LLM"
"""``generator`` of an answer from :class:`~rerankit.rag.ExtractiveAnswerer`."""


@dataclass(frozen=True, kw_only=True)
class RagAnswer:
    """An answer with everything needed to check it.

    Attributes:
        question: the question asked.
        answer: the answer text (:data:`~rerankit.rag.ABSTAIN_ANSWER` when nothing passed).
        citations: the sources the answer cites, first cited first.
        sources: the sources in the prompt, in reranked order, with their scores.
        messages: the exact prompt an LLM receives (``None`` when nothing passed: none is sent).
        abstained: no source passed the threshold, so no generator was called; or the LLM
            answered that the passages do not cover the question (see
            :mod:`rerankit.rag.answer_text`).
        empty_reason: why nothing passed (from :attr:`RerankResults.empty_reason`).
        abstain_reason: why the answer abstains: ``empty_reason`` when nothing passed,
            :data:`~rerankit.rag.answer_text.LLM_ABSTAINED` when the LLM abstained.
        generator: what produced the answer (an LLM name, :data:`EXTRACTIVE` or
            :data:`ABSTAINED`).

    Example:
        >>> from rerankit import RerankResults
        >>> from rerankit.rag import answer_question
        >>> rag = answer_question("q", RerankResults(empty_reason="no documents"),
        ...                       generator=lambda messages: "never called")
        >>> rag.abstained, rag.empty_reason, rag.prompt
        (True, 'no documents', None)
    """

    question: str
    answer: str
    citations: tuple[Citation, ...]
    sources: tuple[Source, ...]
    messages: tuple[PromptMessage, ...] | None
    abstained: bool
    empty_reason: str | None
    generator: str
    abstain_reason: str | None = None

    @property
    def prompt(self) -> str | None:
        """The prompt as one readable text block (``None`` when abstained)."""
        return format_prompt(self.messages) if self.messages is not None else None


def sources_from_results(results: RerankResults, *, source_key: str | None = None) -> list[Source]:
    """The kept results as numbered :class:`Source` objects, in reranked order.

    The source id comes from the candidate's metadata (``source_key``, else the usual keys),
    else its id (see :func:`~rerankit.rag.resolve_source_id`).
    """
    return [
        Source(
            number=rank,
            source_id=resolve_source_id(
                r.candidate.metadata, doc_id=r.candidate.id, number=rank, key=source_key
            ),
            text=r.text,
            score=r.score,
            metadata=r.candidate.metadata,
        )
        for rank, r in enumerate(results, start=1)
    ]


def answer_question(
    question: str,
    results: RerankResults,
    *,
    generator: ExtractiveAnswerer | Generate,
    prompt: RagPrompt | None = None,
    source_key: str | None = None,
    generator_name: str = "llm",
) -> RagAnswer:
    """Answer ``question`` from reranked, thresholded ``results``.

    When nothing passed the threshold the answer is :data:`~rerankit.rag.ABSTAIN_ANSWER` and
    ``generator`` is not called. Otherwise the prompt is built from the kept results in
    reranked order and ``generator`` answers: an :class:`ExtractiveAnswerer`, or any function
    from chat messages to text (an LLM call).

    Example:
        >>> from rerankit import EmbeddingReranker
        >>> from rerankit.rag import ExtractiveAnswerer, answer_question
        >>> results = EmbeddingReranker().rerank(
        ...     "what stores vectors?", ["Pasta recipes", "Qdrant stores vectors."], min_score=0.3)
        >>> rag = answer_question("what stores vectors?", results, generator=ExtractiveAnswerer())
        >>> [(c.number, c.source_id) for c in rag.citations], rag.abstained
        ([(1, 'doc-1')], False)
    """
    if not isinstance(results, RerankResults):
        raise ConfigurationError(f"results must be RerankResults, got {type(results).__name__}")
    prompt = prompt or RagPrompt()
    sources = sources_from_results(results, source_key=source_key)
    if not sources:
        reason = results.empty_reason or "no document passed the threshold"
        return RagAnswer(
            question=question,
            answer=ABSTAIN_ANSWER,
            citations=(),
            sources=(),
            messages=None,
            abstained=True,
            empty_reason=reason,
            generator=ABSTAINED,
            abstain_reason=reason,
        )
    messages = prompt.messages(question, sources)
    if isinstance(generator, ExtractiveAnswerer):
        text = generator.answer(question, sources).text
        read = ReadAnswer(text, tuple(parse_citations(text, sources)), False, None)
        name = EXTRACTIVE
    elif callable(generator):
        text = generator(messages)
        if not isinstance(text, str):
            raise ConfigurationError(f"generator must return a str, got {type(text).__name__}")
        read = read_answer(text, sources)  # thinking, invalid citations, abstention
        name = generator_name
    else:
        raise ConfigurationError(
            "generator must be an ExtractiveAnswerer or a function from messages to text"
        )
    return RagAnswer(
        question=question,
        answer=read.text,
        citations=read.citations,
        sources=tuple(sources),
        messages=tuple(messages),
        abstained=read.abstained,
        empty_reason=None,
        generator=name,
        abstain_reason=read.reason,
    )


def format_answer(rag: RagAnswer, *, show_prompt: bool = True, indent: str = "  ") -> str:
    """A readable report of ``rag``: the answer, its citations and the exact prompt.

    Scores appear here, for the reader; they are not in the prompt.
    """
    lines = [f"answer ({rag.generator}):"]
    lines.extend(indent + line for line in rag.answer.splitlines())
    if rag.abstained and rag.messages is None:
        lines.append(f"{indent}(the LLM was not called: {rag.empty_reason})")
    elif rag.abstained:
        lines.append(f"{indent}(abstained: {rag.abstain_reason})")
    if rag.citations:
        lines.append("citations:")
        for c in rag.citations:
            score = f"  score {c.score:.3f}" if c.score is not None else ""
            lines.append(f"{indent}[{c.number}] {c.source_id}{score}")
    elif not rag.abstained:
        lines.append("citations: none")
    if show_prompt:
        if rag.messages is None:
            lines.append("prompt: none (no LLM call)")
        else:
            what = "what an LLM would receive" if rag.generator == EXTRACTIVE else "as sent"
            lines.append(f"prompt ({what}):")
            prompt = format_prompt(rag.messages)
            lines.extend(f"{indent}| {line}".rstrip() for line in prompt.splitlines())
    return "\n".join(lines) + "\n"
