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


def _states(encoder: Any, texts: Sequence[str]) -> tuple[Any, list[int], list[int]]:
    """The packed last hidden states of ``texts`` sorted by token count, those counts, and
    the sorted order (``order[k]``: the index in ``texts`` of the ``k``-th text packed)."""
    torch = torch_module()
    rows: list[dict[str, list[int]]] = []
    for start in range(0, len(texts), _TOKENISE_AT_ONCE):
        features = encoder.preprocess(inputs=list(texts[start : start + _TOKENISE_AT_ONCE]))
        counts = features["attention_mask"].sum(dim=1).tolist()
        names = [n for n in ("input_ids", "token_type_ids") if n in features]
        columns = {n: features[n].tolist() for n in names}
        for r, count in enumerate(counts):
            rows.append({n: columns[n][r][:count] for n in names})
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    lengths = [len(rows[i]["input_ids"]) for i in order]
    base = encoder[0].auto_model
    pieces: list[Any] = []
    with torch.inference_mode():
        start = 0
        while start < len(order):
            stop = start + within_tokens(lengths, PACKED_TOKENS, start)
            pieces.append(packed_hidden_states(torch, base, [rows[i] for i in order[start:stop]]))
            start = stop
    return torch.cat(pieces), lengths, order


def token_embeddings(encoder: Any, texts: Sequence[str]) -> list[Any]:
    """Each text's last hidden states, ``(tokens, hidden)``, special tokens included."""
    if not texts:
        return []
    states, lengths, order = _states(encoder, texts)
    out: list[Any] = [None] * len(texts)
    for i, piece in zip(order, states.split(lengths), strict=True):
        out[i] = piece
    return out


def sentence_embeddings(encoder: Any, texts: Sequence[str]) -> Any:
    """Mean-pooled (and, when the model normalises, L2-normalised) embeddings, float32,
    ``(len(texts), dim)``."""
    torch = torch_module()
    if not texts:
        dimension = getattr(encoder, "get_embedding_dimension", None)
        dimension = dimension or encoder.get_sentence_embedding_dimension
        return torch.empty((0, dimension() or 0))
    states, lengths, order = _states(encoder, texts)
    device = states.device
    counts = torch.tensor(lengths, device=device)
    owner = torch.repeat_interleave(torch.arange(len(lengths), device=device), counts)
    sums = torch.zeros((len(lengths), states.shape[1]), dtype=torch.float32, device=device)
    sums.index_add_(0, owner, states.float())
    pooled = (sums / counts.float()[:, None].clamp(min=1e-9)).to(states.dtype)
    classes = _modules()
    if classes is not None and any(type(m) is classes["normalize"] for m in list(encoder)[2:]):
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
    # Back to the callers' order: row k of ``pooled`` is text order[k].
    inverse = torch.empty(len(order), dtype=torch.long, device=device)
    inverse[torch.tensor(order, device=device)] = torch.arange(len(order), device=device)
    return pooled.index_select(0, inverse).float()
