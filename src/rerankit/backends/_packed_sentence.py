"""Unpadded encoding for sentence-transformers bi-encoders (BERT, RoBERTa, XLM-RoBERTa).

The embedding and late-interaction rerankers encode every document of a call. Instead of
``SentenceTransformer.encode`` (length-sorted batches padded to their longest text), the texts
are tokenised by the model's own ``preprocess`` and run through
:func:`~rerankit.backends._packed.packed_hidden_states`: one pass of up to
:data:`~rerankit.backends._packed.PACKED_TOKENS` tokens with no padding outside attention.

* :func:`sentence_embeddings` then applies the model's mean pooling (summed in float32 as
  sentence-transformers does for half-precision models, then cast back) and its ``Normalize``;
* :func:`token_embeddings` returns each text's token states, as
  ``encode(output_value="token_embeddings")`` does.

Only an exact ``SentenceTransformer`` whose modules are the stock ``Transformer`` (over a
model that :func:`~rerankit.backends._packed.packable_encoder` accepts), then for sentence
embeddings a mean ``Pooling`` (``include_prompt=True``) and optionally ``Normalize``, takes
this path (:func:`packs`); anything else (another pooling, a dense layer, a wrapper such as the
evaluation's embedding cache) goes through ``encode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankit._torch import torch_module
from rerankit.backends._packed import (
    PACKED_TOKENS,
    packable_encoder,
    packed_hidden_states,
    within_tokens,
)

__all__ = ["packs", "sentence_embeddings", "token_embeddings"]

_TOKENISE_AT_ONCE = 256
"""Texts per ``preprocess`` call (it pads them to the longest, so memory stays bounded)."""


def _modules() -> dict[str, Any] | None:
    try:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules.normalize import Normalize
        from sentence_transformers.base.modules.transformer import Transformer
        from sentence_transformers.sentence_transformer.modules.pooling import Pooling
    except Exception:  # another sentence-transformers layout: use encode()
        return None
    return {
        "model": SentenceTransformer,
        "transformer": Transformer,
        "pooling": Pooling,
        "normalize": Normalize,
    }


def packs(encoder: Any, *, pooled: bool) -> bool:
    """Whether :func:`sentence_embeddings` (``pooled``) or :func:`token_embeddings` compute
    what ``encoder.encode`` would."""
    classes = _modules()
    if classes is None or type(encoder) is not classes["model"] or encoder.training:
        return False
    modules = list(encoder)
    if not modules or type(modules[0]) is not classes["transformer"]:
        return False
    base = getattr(modules[0], "auto_model", None)
    if base is None or not packable_encoder(base, encoder.tokenizer):
        return False
    if getattr(encoder, "default_prompt_name", None):
        return False  # encode() would prepend the model's default prompt
    if not pooled:
        return True
    rest = modules[1:]
    if not rest or type(rest[0]) is not classes["pooling"]:
        return False
    pooling = rest[0]
    if getattr(pooling, "pooling_mode", None) not in ("mean", ["mean"], ("mean",)):
        return False
    if not getattr(pooling, "include_prompt", True):
        return False
    return all(type(m) is classes["normalize"] for m in rest[1:])


def _states(encoder: Any, texts: Sequence[str]) -> tuple[Any, list[int]]:
    """Packed last hidden states of ``texts`` (in their order) and each text's token count."""
    torch = torch_module()
    rows: list[dict[str, list[int]]] = []
    for start in range(0, len(texts), _TOKENISE_AT_ONCE):
        features = encoder.preprocess(inputs=list(texts[start : start + _TOKENISE_AT_ONCE]))
        mask = features["attention_mask"]
        counts = mask.sum(dim=1).tolist()
        names = [n for n in ("input_ids", "token_type_ids") if n in features]
        columns = {n: features[n].tolist() for n in names}
        for r, count in enumerate(counts):
            rows.append({n: columns[n][r][:count] for n in names})
    lengths = [len(row["input_ids"]) for row in rows]
    order = sorted(range(len(rows)), key=lengths.__getitem__)
    base = encoder[0].auto_model
    pieces: list[Any] = []
    with torch.inference_mode():
        start = 0
        while start < len(order):
            take = within_tokens([lengths[i] for i in order[start:]], PACKED_TOKENS)
            chunk = order[start : start + take]
            pieces.append(packed_hidden_states(torch, base, [rows[i] for i in chunk]))
            start += take
        sorted_states = torch.cat(pieces) if pieces else None
    # Back to the callers' order: a token index per text in the sorted packing.
    starts = [0] * len(rows)
    at = 0
    for i in order:
        starts[i] = at
        at += lengths[i]
    if sorted_states is None:
        return None, lengths
    index = torch.cat(
        [torch.arange(starts[i], starts[i] + lengths[i]) for i in range(len(rows))]
    ).to(sorted_states.device)
    return sorted_states.index_select(0, index), lengths


def token_embeddings(encoder: Any, texts: Sequence[str]) -> list[Any]:
    """Each text's last hidden states, ``(tokens, hidden)``, special tokens included."""
    states, lengths = _states(encoder, texts)
    if states is None:
        return []
    return list(states.split(lengths))


def sentence_embeddings(encoder: Any, texts: Sequence[str]) -> Any:
    """Mean-pooled (and, when the model normalises, L2-normalised) embeddings, float32,
    ``(len(texts), dim)``."""
    torch = torch_module()
    states, lengths = _states(encoder, texts)
    if states is None:
        dimension = getattr(encoder, "get_embedding_dimension", None)
        dimension = dimension or encoder.get_sentence_embedding_dimension
        return torch.empty((0, dimension() or 0))
    owner = torch.repeat_interleave(
        torch.arange(len(lengths), device=states.device),
        torch.tensor(lengths, device=states.device),
    )
    sums = torch.zeros((len(lengths), states.shape[1]), dtype=torch.float32, device=states.device)
    sums.index_add_(0, owner, states.float())
    counts = torch.tensor(lengths, dtype=torch.float32, device=states.device)[:, None]
    pooled = (sums / counts.clamp(min=1e-9)).to(states.dtype)
    classes = _modules()
    if classes is not None and any(type(m) is classes["normalize"] for m in list(encoder)[2:]):
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
    return pooled.float()
