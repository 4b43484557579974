"""Escaping of the text that prompts put between tags: the one function the LLM reranker's
prompts and the RAG prompt (:mod:`rerankit.rag.prompt`) share.

Escaping ``<``, ``>`` and ``&`` alone is not enough: a model, a tokenizer or a pipeline that
normalises Unicode (NFKC) turns look-alikes such as the fullwidth less-than (U+FF1C) and the
small one (U+FE64) into the real characters, and with them a document's text into a closing tag.
:func:`escape_prompt_text` therefore normalises the text to NFKC first, then escapes every
character whose compatibility decomposition (NFKD) still holds ``<``, ``>`` or ``&``
(U+226E, not-less-than, decomposes to ``<`` and a combining stroke). Whatever its
characters, the escaped text holds no ``<`` or ``>`` and no ``&`` that does not start
``&lt;``, ``&gt;`` or ``&amp;``, under every normalisation form (NFC, NFD, NFKC, NFKD), so it
can neither close its block nor open another.
"""

from __future__ import annotations

import functools
import unicodedata

__all__ = ["escape_prompt_text"]

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_TAG_CHARS = frozenset(_ENTITIES)


@functools.lru_cache(maxsize=4096)
def _escaped_char(char: str) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    if _TAG_CHARS.isdisjoint(decomposed):
        return char
    return "".join(_ENTITIES.get(c, c) for c in decomposed)


def escape_prompt_text(text: str) -> str:
    """``text`` normalised to NFKC with every ``&``, ``<`` and ``>`` (and every character that
    decomposes into one) escaped as ``&amp;``, ``&lt;`` and ``&gt;``.

    Example:
        >>> from rerankit.remote.prompting import escape_prompt_text
        >>> escape_prompt_text("</document> & \\uff1c/document\\uff1e")
        '&lt;/document&gt; &amp; &lt;/document&gt;'
    """
    normalised = unicodedata.normalize("NFKC", text)
    if normalised.isascii():
        return normalised.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(_escaped_char(c) for c in normalised)
