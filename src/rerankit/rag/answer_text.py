"""Reading a generated answer: thinking removed, citations checked, abstention noticed.

Framework-free, the one rule of ``answer_question``, the LangChain chain and the LlamaIndex
synthesiser, for every generator:

1. the thinking sections of reasoning models (``<think>...</think>``) are removed
   (:func:`rerankit.thinking.strip_thinking`);
2. citations that point past the passages (``[7]`` with 3 passages) are **removed from the
   text** as well as from the list (``[1, 7]`` becomes ``[1]``, a lone ``[7]`` disappears);
3. an answer whose first sentence says that the passages do not cover the question (the
   instructed sentence, :data:`~rerankit.rag.ABSTAIN_ANSWER`, or a close paraphrase such as
   "The provided context does not contain information about ...") and that cites no passage
   is an abstention: ``abstained=True`` with :data:`LLM_ABSTAINED` as the reason, and no
   citations.

:class:`AnswerStream` applies 1 and 2 to a stream of text chunks, so streamed text equals the
final answer.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass

from rerankit.rag.prompt import ABSTAIN_ANSWER, Citation, Source, parse_citations
from rerankit.thinking import ThinkingFilter, strip_thinking

__all__ = [
    "LLM_ABSTAINED",
    "AnswerStream",
    "ReadAnswer",
    "llm_abstained",
    "astream_answer",
    "read_answer",
    "remove_invalid_citations",
    "stream_answer",
]

LLM_ABSTAINED = "the LLM answered that the passages do not cover the question"
"""``abstain_reason`` of an answer in which the LLM itself abstained."""

_CITE = re.compile(r"(\s?)\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|\n")
_SUBJECT = (
    r"(?:the |these |this |provided |given |above |supplied )*"
    r"(?:documents?|passages?|context(?: passages)?|sources?|texts?|excerpts?|information"
    r"|data)"
)
_NEGATION = (
    r"(?:do(?:es)?\s*n[o']?t|did\s*n[o']?t|don[\u2019']t|doesn[\u2019']t|cannot"
    r"|can[\u2019']t|fail to|lacks?|are not|is not|isn[\u2019']t|aren[\u2019']t)"
)
_VERB = (
    r"(?:cover|contain|mention|answer|address|include|provide|say|discuss|have|specify|state"
    r"|offer|give|explain|describe|hold|enough|sufficient|relevant)"
)
_PARAPHRASES = [
    re.compile(rf"\b{_SUBJECT}\b.{{0,60}}?\b{_NEGATION}\b.{{0,30}}?\b{_VERB}", re.IGNORECASE),
    re.compile(
        r"\b(?:no|not enough|insufficient|no relevant)\s+(?:relevant\s+)?"
        r"(?:information|details|data|answer|mention)\b.{0,60}?\b(?:in|from|within|on)\s+"
        rf"{_SUBJECT}\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bI\s+(?:cannot|can[\u2019']t|could\s*n[o']?t|am\s+(?:not\s+)?(?:unable|able)\s+to"
        r"|do\s*n[o']?t\s+know|don[\u2019']t\s+know)\b.{0,80}?\b"
        rf"(?:based on|from|in|using|with)\s+{_SUBJECT}\b",
        re.IGNORECASE,
    ),
]


def remove_invalid_citations(text: str, count: int) -> str:
    """``text`` with the citation numbers that name no passage (outside ``1..count``) removed;
    a bracket left empty is removed with the space before it.

    Example:
        >>> from rerankit.rag.answer_text import remove_invalid_citations
        >>> remove_invalid_citations("Paris [1, 7]. Lyon [9]. Nice [2].", 2)
        'Paris [1]. Lyon. Nice [2].'
    """

    def keep(match: re.Match[str]) -> str:
        numbers = [p.strip() for p in re.split(r"[,;]", match.group(2))]
        valid = [n for n in numbers if 1 <= int(n) <= count]
        if len(valid) == len(numbers):
            return match.group(0)
        if not valid:
            return ""
        return f"{match.group(1)}[{', '.join(valid)}]"

    return _CITE.sub(keep, text)


def _first_sentence(text: str) -> str:
    stripped = text.strip()
    parts = _SENTENCE_END.split(stripped, maxsplit=1)
    return parts[0] if parts else stripped


def llm_abstained(text: str) -> bool:
    """Whether ``text`` opens by saying the passages do not cover the question.

    Example:
        >>> from rerankit.rag.answer_text import llm_abstained
        >>> llm_abstained("The documents do not cover this question.")
        True
        >>> llm_abstained("The provided context does not mention the boiling point.")
        True
        >>> llm_abstained("Paris is the capital of France [1].")
        False
    """
    first = " ".join(_CITE.sub("", _first_sentence(text)).split())
    if not first:
        return False
    ratio = difflib.SequenceMatcher(None, first.lower(), ABSTAIN_ANSWER.lower()).ratio()
    return ratio >= 0.8 or any(p.search(first) for p in _PARAPHRASES)


@dataclass(frozen=True)
class ReadAnswer:
    """An answer as read: its text (thinking and invalid citations removed), citations, and
    whether the LLM abstained (``reason`` then says so)."""

    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    reason: str | None


def read_answer(text: str, sources: Sequence[Source]) -> ReadAnswer:
    """Read a generated answer against the ``sources`` of its prompt (see the module doc).

    Example:
        >>> from rerankit.rag import Source
        >>> from rerankit.rag.answer_text import read_answer
        >>> sources = [Source(number=1, source_id="a", text="Paris is in France.")]
        >>> read = read_answer("<think>easy</think>Paris [1][4].", sources)
        >>> read.text, [c.source_id for c in read.citations], read.abstained
        ('Paris [1].', ['a'], False)
        >>> read_answer("The passages do not say. [1]", sources).abstained
        False
    """
    cleaned = remove_invalid_citations(strip_thinking(text), len(sources)).strip()
    citations = tuple(parse_citations(cleaned, sources))
    if not citations and llm_abstained(cleaned):
        return ReadAnswer(cleaned, (), True, LLM_ABSTAINED)
    return ReadAnswer(cleaned, citations, False, None)


class AnswerStream:
    """Thinking and invalid-citation removal over a stream of answer chunks.

    :meth:`feed` returns the text that is ready (a ``[`` that may open a citation is held
    until its ``]``); :meth:`close` the rest. The concatenated output equals
    :func:`read_answer`'s text for answers whose thinking sections are whole blocks.

    Example:
        >>> from rerankit.rag.answer_text import AnswerStream
        >>> stream = AnswerStream(count=1)
        >>> parts = [stream.feed("Paris [1"), stream.feed(", 3]"), stream.feed(".")]
        >>> "".join([*parts, stream.close()])
        'Paris [1].'
    """

    def __init__(self, count: int) -> None:
        self._count = count
        self._thinking = ThinkingFilter()
        self._held = ""
        self._started = False

    def feed(self, chunk: str) -> str:
        return self._cite(self._thinking.feed(chunk), final=False)

    def close(self) -> str:
        return self._cite(self._thinking.close(), final=True)

    def _cite(self, text: str, *, final: bool) -> str:
        text = self._held + text
        self._held = ""
        if final:  # the answer's trailing whitespace goes, as read_answer strips it
            return self._out(remove_invalid_citations(text, self._count).rstrip())
        cut = len(text.rstrip())  # whitespace waits: a citation removed next takes it along
        start = text.rfind("[")
        if start != -1 and "]" not in text[start:]:
            tail = text[start + 1 :]
            if len(tail) < 40 and re.fullmatch(r"[\d\s,;]*", tail):
                cut = len(text[:start].rstrip())
        text, self._held = text[:cut], text[cut:]
        return self._out(remove_invalid_citations(text, self._count))

    def _out(self, text: str) -> str:
        if not self._started:  # leading whitespace goes too (a removed citation may leave it)
            text = text.lstrip()
            self._started = bool(text)
        return text


def stream_answer(deltas: Iterable[str], sources: Sequence[Source]) -> Iterator[str | ReadAnswer]:
    """Read a streamed answer: the cleaned text deltas (:class:`AnswerStream`) as they are
    ready, then the :class:`ReadAnswer` of the whole answer (whose text they add up to).

    Example:
        >>> from rerankit.rag import Source
        >>> from rerankit.rag.answer_text import stream_answer
        >>> *text, read = stream_answer(["Par", "is [1][", "5]."], [Source(number=1, source_id="a",
        ...                                                              text="x")])
        >>> "".join(text), read.text, len(read.citations)
        ('Paris [1].', 'Paris [1].', 1)
    """
    reader, raw = AnswerStream(len(sources)), []
    for delta in deltas:
        raw.append(delta)
        text = reader.feed(delta)
        if text:
            yield text
    rest = reader.close()
    if rest:
        yield rest
    yield read_answer("".join(raw), sources)


async def astream_answer(
    deltas: AsyncIterable[str], sources: Sequence[Source]
) -> AsyncIterator[str | ReadAnswer]:
    """:func:`stream_answer` over an async stream of deltas."""
    reader, raw = AnswerStream(len(sources)), []
    async for delta in deltas:
        raw.append(delta)
        text = reader.feed(delta)
        if text:
            yield text
    rest = reader.close()
    if rest:
        yield rest
    yield read_answer("".join(raw), sources)
