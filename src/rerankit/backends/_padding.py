"""Right- or left-padded model inputs of a batch of tokenised pairs, as int64 arrays."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["padded_arrays"]


def padded_arrays(
    tokenizer: Any,
    rows: Sequence[Mapping[str, list[int]]],
    names: Iterable[str] | None = None,
    width: int = 0,
) -> dict[str, Any]:
    """``names`` (default: the first row's) and ``attention_mask`` for ``rows``, each padded to
    the longest row (or to ``width``, if wider) on the tokenizer's padding side: ``input_ids``
    with its pad token, the rest with its pad token type. A name a row lacks stays padding in
    that row."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pad_type = int(getattr(tokenizer, "pad_token_type_id", 0) or 0)
    left = getattr(tokenizer, "padding_side", "right") == "left"
    width = max(width, *(len(row["input_ids"]) for row in rows))
    arrays: dict[str, Any] = {}
    for name in rows[0] if names is None else names:
        fill = pad_id if name == "input_ids" else pad_type
        arrays[name] = np.full((len(rows), width), fill, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        n = len(row["input_ids"])
        cols = slice(width - n, width) if left else slice(0, n)
        for name, array in arrays.items():
            if name in row:
                array[r, cols] = row[name]
        mask[r, cols] = 1
    arrays["attention_mask"] = mask
    return arrays
