"""Prompt formats and answer tokens of the LLM rerankers :class:`~rerankit.CausalLMReranker` runs.

Each preset writes a (query, document) pair the way its model family's card does, as a
sequence of :class:`Piece` objects that are tokenised one by one (without special tokens)
and joined, as the cards' reference code does; the piece holding the document is the one
cut when a pair is longer than the window. The score is read from the logits of the next
token after the prompt: ``logsumexp(yes tokens) - logsumexp(no tokens)`` (log-odds), or the
logit of the yes token alone where the card scores that way (bge-reranker-v2-gemma).

* ``generic``: any instruct model, through its own chat template (thinking disabled where
  the template supports ``enable_thinking``): a system message asking for "yes" or "no", then
  the instruction, query and document; yes = ``yes``/``Yes``, no = ``no``/``No``.
* ``qwen3-reranker`` (Qwen/Qwen3-Reranker-0.6B/4B/8B): the card's system prefix,
  ``<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}`` and the assistant
  suffix with an empty ``<think>`` block; P(yes) over ``yes``/``no``.
* ``bge-reranker-v2-gemma`` (BAAI/bge-reranker-v2-gemma): ``<bos>A: {query}``, ``\\n``,
  ``B: {passage}``, ``\\n`` and the card's prompt ("Given a query A and a passage B,
  determine whether the passage contains an answer to the query by providing a prediction of
  either 'Yes' or 'No'."; ``instruction=`` replaces it); the score is the logit of ``Yes``.
* ``mxbai-rerank-v2`` (mixedbread-ai/mxbai-rerank-base-v2 / large-v2): the Qwen chat prefix,
  an optional ``instruction: {instruction}`` line, ``query: {query}``, ``document: {document}``,
  the card's task prompt ending in ``Relevance:`` and the assistant suffix; log-odds of ``1``
  over ``0``.

A preset is chosen by name (``preset="qwen3-reranker"``), never guessed from a model name; a
custom :class:`CausalLMPreset` may be passed instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rerankit.errors import ConfigurationError

__all__ = [
    "BGE_GEMMA_PROMPT",
    "GENERIC_SYSTEM",
    "MXBAI_TASK",
    "PRESETS",
    "QWEN3_INSTRUCTION",
    "CausalLMPreset",
    "Piece",
    "answer_token",
    "join_ids",
    "preset_named",
]


@dataclass(frozen=True)
class Piece:
    """One separately tokenised part of a prompt.

    ``document``: the part that holds the document, cut from its end when the prompt is longer
    than the window. ``bos``: the tokenizer's beginning-of-sequence token (``text`` is empty).
    """

    text: str
    document: bool = False
    bos: bool = False


Layout = Callable[[Any, str, str, str], tuple[Piece, ...]]
"""``(tokenizer, instruction, query, document) -> pieces``."""


@dataclass(frozen=True)
class CausalLMPreset:
    """A prompt layout and the answer tokens whose logits score it.

    ``yes`` / ``no``: the answer words, each a single token of the model's tokenizer
    (:func:`answer_token`); with ``no`` empty the score is ``logsumexp`` of the yes logits.
    ``instruction``: the default task description (``CausalLMReranker(instruction=...)``
    replaces it; ``""`` means none).

    Example:
        >>> from rerankit.backends.causal_presets import preset_named
        >>> preset = preset_named("qwen3-reranker")
        >>> preset.yes, preset.no
        (('yes',), ('no',))
    """

    name: str
    yes: tuple[str, ...]
    no: tuple[str, ...]
    instruction: str
    layout: Layout

    def pieces(
        self, tokenizer: Any, query: str, document: str, instruction: str | None = None
    ) -> tuple[Piece, ...]:
        """The prompt of one pair, as separately tokenised pieces."""
        task = self.instruction if instruction is None else instruction
        return self.layout(tokenizer, task, query, document)

    def render(
        self, tokenizer: Any, query: str, document: str, instruction: str | None = None
    ) -> str:
        """The prompt of one pair as text (the BOS token written as the tokenizer's)."""
        return "".join(
            str(tokenizer.bos_token or "") if p.bos else p.text
            for p in self.pieces(tokenizer, query, document, instruction)
        )


def answer_token(tokenizer: Any, word: str, *, preset: str, model: str) -> int:
    """The id of the single token ``word`` is in ``tokenizer``, or a ConfigurationError."""
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ConfigurationError(
            f"the tokenizer of {model} has no single token for the answer {word!r} of the "
            f"{preset!r} preset (it is {len(ids)} tokens): the model does not fit this preset; "
            "pick the preset of its family, or pass a CausalLMPreset with its answer words"
        )
    return int(ids[0])


# -- generic: the model's own chat template ----------------------------------------------------

GENERIC_SYSTEM = (
    "You judge whether a document is relevant to a search query. "
    'Answer with one word, "yes" or "no", and nothing else.'
)
GENERIC_INSTRUCTION = "Judge whether the document answers the query."
_DOCUMENT_SLOT = "\x00rerankit-document\x00"


def _generic(tokenizer: Any, instruction: str, query: str, document: str) -> tuple[Piece, ...]:
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigurationError(
            "the 'generic' preset writes its prompt with the model's chat template, and this "
            "tokenizer has none: use an instruct (chat) model, or a preset of the model's family"
        )
    task = f"{instruction}\n\n" if instruction else ""
    user = f"{task}Query: {query}\n\nDocument:\n{_DOCUMENT_SLOT}\n\nIs the document relevant "
    user += "to the query? Answer yes or no."
    messages = [{"role": "system", "content": GENERIC_SYSTEM}, {"role": "user", "content": user}]
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    head, slot, tail = str(text).partition(_DOCUMENT_SLOT)
    if not slot:
        raise ConfigurationError("the model's chat template dropped the document from the prompt")
    return (Piece(head), Piece(document, document=True), Piece(tail))


# -- Qwen3-Reranker ------------------------------------------------------------------------------

QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def _qwen3(tokenizer: Any, instruction: str, query: str, document: str) -> tuple[Piece, ...]:
    body = f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
    return (Piece(QWEN3_PREFIX), Piece(body, document=True), Piece(QWEN3_SUFFIX))


# -- bge-reranker-v2-gemma -------------------------------------------------------------------------

BGE_GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)


def _bge_gemma(tokenizer: Any, instruction: str, query: str, document: str) -> tuple[Piece, ...]:
    if getattr(tokenizer, "bos_token_id", None) is None:
        raise ConfigurationError(
            "the 'bge-reranker-v2-gemma' preset starts with the BOS token, and this tokenizer "
            "has none"
        )
    return (
        Piece("", bos=True),
        Piece(f"A: {query}"),
        Piece("\n"),
        Piece(f"B: {document}", document=True),
        Piece("\n"),
        Piece(instruction),
    )


# -- mxbai-rerank-v2 -----------------------------------------------------------------------------

MXBAI_PREFIX = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\n<|im_start|>user\n"
)
MXBAI_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. "
    "For each query-document pair, carefully analyze the semantic relationship between them, "
    "then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\n"
    "Relevance:"
)


def _mxbai(tokenizer: Any, instruction: str, query: str, document: str) -> tuple[Piece, ...]:
    head = f"instruction: {instruction}\nquery: {query}" if instruction else f"query: {query}"
    return (
        Piece(MXBAI_PREFIX),
        Piece(head),
        Piece("\n"),
        Piece(f"document: {document}", document=True),
        Piece("\n"),
        Piece(MXBAI_TASK),
        Piece(MXBAI_SUFFIX),
    )


PRESETS: dict[str, CausalLMPreset] = {
    p.name: p
    for p in (
        CausalLMPreset("generic", ("yes", "Yes"), ("no", "No"), GENERIC_INSTRUCTION, _generic),
        CausalLMPreset("qwen3-reranker", ("yes",), ("no",), QWEN3_INSTRUCTION, _qwen3),
        CausalLMPreset("bge-reranker-v2-gemma", ("Yes",), (), BGE_GEMMA_PROMPT, _bge_gemma),
        CausalLMPreset("mxbai-rerank-v2", ("1",), ("0",), "", _mxbai),
    )
}


def preset_named(preset: str | CausalLMPreset) -> CausalLMPreset:
    """The preset called ``preset`` (a :class:`CausalLMPreset` is returned as it is)."""
    if isinstance(preset, CausalLMPreset):
        if not preset.yes:
            raise ConfigurationError("a CausalLMPreset needs at least one yes answer word")
        return preset
    found = PRESETS.get(preset) if isinstance(preset, str) else None
    if found is None:
        raise ConfigurationError(
            f"preset must be one of {sorted(PRESETS)} or a CausalLMPreset, got {preset!r}"
        )
    return found


def join_ids(tokenizer: Any, pieces: Sequence[Piece]) -> tuple[list[list[int]], int | None]:
    """Each piece's token ids (without special tokens; the BOS piece as the BOS id) and the
    index of the document piece (``None`` when there is none)."""
    ids: list[list[int]] = []
    where: int | None = None
    for i, piece in enumerate(pieces):
        if piece.bos:
            ids.append([int(tokenizer.bos_token_id)])
            continue
        if piece.document:
            where = i
        ids.append(
            list(tokenizer(piece.text, add_special_tokens=False, verbose=False)["input_ids"])
            if piece.text
            else []
        )
    return ids, where
