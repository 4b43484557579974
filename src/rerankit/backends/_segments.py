"""Long documents: count truncation against a token budget, or cut overlapping windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rerankit.errors import ConfigurationError
from rerankit.types import Candidate

LongDocuments = Literal["truncate", "window"]
LONG_DOCUMENT_MODES = ("truncate", "window")


def check_long_documents(mode: str, overlap: int) -> None:
    if mode not in LONG_DOCUMENT_MODES:
        raise ConfigurationError(
            f"long_documents must be one of {LONG_DOCUMENT_MODES}, got {mode!r}"
        )
    if not isinstance(overlap, int) or overlap < 0:
        raise ConfigurationError(f"window_overlap must be a non-negative int, got {overlap!r}")


@dataclass(frozen=True)
class Segments:
    """Texts to score, which input each belongs to, and per-input truncation facts."""

    texts: list[str]
    owner: list[int]
    lengths: list[int]
    """Token count of each segment (capped at the budget); used to sort batches."""
    truncated: list[bool]
    windows: list[int]

    def aggregate_max(self, raw: Sequence[float]) -> list[float]:
        """Fold segment scores to one score per input (max over windows)."""
        best: list[float | None] = [None] * len(self.truncated)
        for score, owner in zip(raw, self.owner, strict=True):
            current = best[owner]
            if current is None or score > current:
                best[owner] = score
        return [float(b) for b in best if b is not None]


def segment(
    tokenizer: Any,
    texts: Sequence[str],
    budget: int,
    *,
    mode: LongDocuments = "truncate",
    overlap: int = 64,
) -> Segments:
    """Split ``texts`` against a budget of ``budget`` document tokens.

    ``truncate`` keeps each text whole (the model cuts it) and flags those over budget;
    ``window`` cuts texts over budget into windows of ``budget`` tokens that overlap by
    ``overlap`` tokens, sliced from the original text by character offsets.
    """
    budget = max(budget, 1)
    # Measuring, not encoding for the model: verbose=False silences transformers' "Token
    # indices sequence length is longer than the specified maximum" log line, since long
    # documents are flagged (TruncationWarning) or windowed here.
    enc = tokenizer(
        list(texts),
        add_special_tokens=False,
        truncation=False,
        return_offsets_mapping=(mode == "window"),
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    out_texts: list[str] = []
    owner: list[int] = []
    lengths: list[int] = []
    truncated: list[bool] = []
    windows: list[int] = []
    step = max(1, budget - min(overlap, budget // 2))
    for index, text in enumerate(texts):
        n_tokens = len(enc["input_ids"][index])
        if n_tokens <= budget or mode == "truncate":
            out_texts.append(text)
            owner.append(index)
            lengths.append(min(n_tokens, budget))
            truncated.append(n_tokens > budget)
            windows.append(1)
            continue
        offsets = enc["offset_mapping"][index]
        count = 0
        start = 0
        while True:
            end = min(start + budget, n_tokens)
            out_texts.append(text[offsets[start][0] : offsets[end - 1][1]])
            owner.append(index)
            lengths.append(end - start)
            count += 1
            if end >= n_tokens:
                break
            start += step
        truncated.append(False)
        windows.append(count)
    return Segments(out_texts, owner, lengths, truncated, windows)


@dataclass(frozen=True)
class SharedSegments:
    """Several queries' documents, segmented for one shared encoding pass."""

    plans: list[Segments]
    """Each request's segments, in request order."""
    texts: list[str]
    """The distinct segment texts over every request (each is encoded once)."""
    queries: list[str]
    """The distinct queries (each is encoded once)."""


def segment_requests(
    tokenizer: Any,
    requests: Sequence[tuple[str, Sequence[Candidate]]],
    budget: int,
    *,
    mode: LongDocuments = "truncate",
    overlap: int = 64,
) -> SharedSegments:
    """:func:`segment` for each ``(query, candidates)`` request, with the distinct texts and
    queries that a multi-query batch encodes once."""
    plans = [
        segment(tokenizer, [c.text for c in candidates], budget, mode=mode, overlap=overlap)
        for _, candidates in requests
    ]
    return SharedSegments(
        plans=plans,
        texts=list(dict.fromkeys(t for plan in plans for t in plan.texts)),
        queries=list(dict.fromkeys(query for query, _ in requests)),
    )
