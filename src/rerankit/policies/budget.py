"""A token budget for the prompt: the best passages that fit, none of them cut."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rerankit.errors import ConfigurationError
from rerankit.policies.base import ContextPolicy, drop, rebuilt
from rerankit.types import Candidate, RerankResults

__all__ = ["TokenBudget", "token_counter"]

Counter = Callable[[str], int]


def token_counter(tokenizer: object) -> Counter:
    """A ``text -> token count`` function from what a generator offers: a callable returning a
    count, a LangChain model (``get_num_tokens``), or a tokenizer with ``encode`` (Hugging
    Face, tiktoken) whose output is counted."""
    get_num_tokens = getattr(tokenizer, "get_num_tokens", None)
    if callable(get_num_tokens):
        return get_num_tokens  # type: ignore[no-any-return]
    encode = getattr(tokenizer, "encode", None)
    if callable(encode):
        return lambda text: len(encode(text))
    if callable(tokenizer):
        return tokenizer  # type: ignore[return-value]
    raise ConfigurationError(
        "tokenizer must be the generator's tokenizer (an object with encode(text): Hugging "
        "Face, tiktoken), a LangChain model (get_num_tokens) or a callable text -> token "
        f"count, got {type(tokenizer).__name__}"
    )


class TokenBudget(ContextPolicy):
    """Keeps the best passages whose tokens fit ``max_tokens``; never cuts a passage.

    Walks the list best first and keeps a passage when its tokens (by ``tokenizer``, plus
    ``overhead`` per passage for what the prompt template adds around it) fit in what is left
    of the budget; a passage that does not fit is dropped whole (reason ``"token_budget"``) and
    the walk goes on, so a shorter passage further down may still fit. The kept passages'
    tokens never exceed ``max_tokens``. Notes per passage: ``annotations[i]["token_budget"] =
    {"tokens": n}`` (plus ``"left"``, what was left, for a dropped one); the record in
    ``applied`` has the tokens ``used``. When no passage fits, the list is empty and
    ``empty_reason`` says how many tokens the shortest one needs.

    ``tokenizer`` is the generator's: a tokenizer with ``encode`` (Hugging Face, tiktoken), a
    LangChain chat model (``get_num_tokens``) or any callable text -> token count.

    Example:
        >>> from rerankit import PassthroughReranker
        >>> from rerankit.policies import TokenBudget, rerank_with
        >>> words = lambda text: len(text.split())
        >>> results = rerank_with(PassthroughReranker(), "q", ["a b c", "d e f g h", "i j"],
        ...                       policies=[TokenBudget(max_tokens=6, tokenizer=words)])
        >>> [r.text for r in results], [d.reason for d in results.dropped]
        (['a b c', 'i j'], ['token_budget'])
    """

    name = "token_budget"

    def __init__(self, max_tokens: int, *, tokenizer: Any, overhead: int = 0) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be a positive int, got {max_tokens!r}")
        if isinstance(overhead, bool) or not isinstance(overhead, int) or overhead < 0:
            raise ConfigurationError(f"overhead must be an int >= 0, got {overhead!r}")
        self.max_tokens = max_tokens
        self.overhead = overhead
        self.tokenizer = tokenizer
        self._count = token_counter(tokenizer)

    def __repr__(self) -> str:
        return f"TokenBudget(max_tokens={self.max_tokens}, overhead={self.overhead})"

    def tokens(self, text: str) -> int:
        """The tokens a passage takes in the prompt (its text, plus ``overhead``)."""
        count = self._count(text)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigurationError(
                f"TokenBudget: the tokenizer returned {count!r} for a passage; it must return a "
                "token count (an int >= 0)"
            )
        return count + self.overhead

    def apply(
        self, query: str, results: RerankResults, candidates: Sequence[Candidate]
    ) -> RerankResults:
        used = 0
        kept = []
        cut = []
        notes: dict[int, dict[str, Any]] = {}
        for result in results:
            need = self.tokens(result.text)
            left = self.max_tokens - used
            if need <= left:
                kept.append(result)
                used += need
                notes[result.index] = {self.name: {"tokens": need}}
            else:
                cut.append(drop(result, "token_budget"))
                notes[result.index] = {self.name: {"tokens": need, "left": left}}
        shortest = min((n[self.name]["tokens"] for n in notes.values()), default=0)
        return rebuilt(
            results,
            kept,
            dropped=cut,
            notes=notes,
            record={
                "policy": self.name,
                "max_tokens": self.max_tokens,
                "used": used,
                "kept": len(kept),
                "dropped": len(cut),
            },
            empty_reason=(
                f"no passage fits max_tokens={self.max_tokens} (the shortest needs {shortest} "
                "tokens)"
            ),
        )
