"""Reasoning models' thinking sections (``<think>...</think>``), removed before an answer is read.

Reasoning models (Qwen3, DeepSeek-R1 and their distillations, served by vLLM, Ollama or
llama.cpp) write their reasoning between ``<think>`` and ``</think>`` before the answer. A
parser that reads the first word, the first number or the citations of such an answer reads
the reasoning instead. :func:`strip_thinking` removes it (the LLM reranker's parsing and the RAG
answers use it); :class:`ThinkingFilter` does the same on a stream of text chunks.
"""

from __future__ import annotations

import re

__all__ = ["THINK_CLOSE", "THINK_OPEN", "ThinkingFilter", "strip_thinking"]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_BLOCK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_OPEN = re.compile(r"<think>", re.IGNORECASE)


def strip_thinking(text: str) -> str:
    """``text`` without its thinking sections, leading whitespace removed.

    Whole ``<think>...</think>`` blocks go; a ``</think>`` with no opening tag (templates that
    write ``<think>`` into the prompt) drops everything before it; an unclosed ``<think>`` (an
    answer cut off while thinking) drops everything after it. Text without tags is returned
    unchanged.

    Example:
        >>> from rerankit.thinking import strip_thinking
        >>> strip_thinking("<think>The user asks...</think>\\n\\nyes 8")
        'yes 8'
        >>> strip_thinking("reasoning first</think> Paris [1]."), strip_thinking("no tags")
        ('Paris [1].', 'no tags')
    """
    if "<" not in text:
        return text
    out, blocks = _BLOCK.subn("", text)
    closes = list(_CLOSE.finditer(out))
    if closes:
        out = out[closes[-1].end() :]
    opened = _OPEN.search(out)
    if opened is not None:
        out = out[: opened.start()]
    return out.lstrip() if blocks or closes or opened else text


class ThinkingFilter:
    """:func:`strip_thinking` over a stream: feed chunks, get the text outside ``<think>``
    blocks as soon as it cannot be the start of a tag.

    Whitespace right after a closed block (and at the very start) is dropped, as
    :func:`strip_thinking` drops it. A ``</think>`` that was never opened cannot take back text
    already passed on: on a stream it is removed, the text before it stays.

    Example:
        >>> from rerankit.thinking import ThinkingFilter
        >>> f = ThinkingFilter()
        >>> "".join([f.feed("<thi"), f.feed("nk>hmm</think>\\nPar"), f.feed("is"), f.close()])
        'Paris'
    """

    def __init__(self) -> None:
        self._pending = ""
        self._inside = False
        self._at_start = True

    def feed(self, chunk: str) -> str:
        """The text of ``chunk`` (with what was held back) that is now known to be answer."""
        self._pending += chunk
        out: list[str] = []
        while True:
            lower = self._pending.lower()
            if self._inside:
                end = lower.find(THINK_CLOSE)
                if end == -1:
                    self._hold(_partial(lower, THINK_CLOSE))
                    return "".join(out)
                self._pending = self._pending[end + len(THINK_CLOSE) :]
                self._inside, self._at_start = False, True
                continue
            cuts = [i for i in (lower.find(THINK_OPEN), lower.find(THINK_CLOSE)) if i != -1]
            if not cuts:
                keep = max(_partial(lower, THINK_OPEN), _partial(lower, THINK_CLOSE))
                self._emit(out, self._pending[: len(self._pending) - keep])
                self._hold(keep)
                return "".join(out)
            cut = min(cuts)
            self._emit(out, self._pending[:cut])
            if lower.startswith(THINK_OPEN, cut):
                self._pending = self._pending[cut + len(THINK_OPEN) :]
                self._inside = True
            else:  # a stray closing tag
                self._pending = self._pending[cut + len(THINK_CLOSE) :]
                self._at_start = True

    def _hold(self, keep: int) -> None:
        self._pending = self._pending[len(self._pending) - keep :]

    def close(self) -> str:
        """What is left at the end of the stream (nothing of an unclosed block)."""
        out: list[str] = []
        if not self._inside:
            self._emit(out, self._pending)
        self._pending = ""
        return "".join(out)

    def _emit(self, out: list[str], text: str) -> None:
        if self._at_start:
            text = text.lstrip()
            if not text:
                return
            self._at_start = False
        out.append(text)


def _partial(lower: str, tag: str) -> int:
    """How many trailing characters of ``lower`` begin ``tag`` (0 when none)."""
    for n in range(min(len(lower), len(tag) - 1), 0, -1):
        if lower.endswith(tag[:n]):
            return n
    return 0
