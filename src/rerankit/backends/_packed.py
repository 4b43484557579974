"""An unpadded ("packed") forward pass for BERT and RoBERTa cross-encoders.

A length-sorted batch still pads every pair to the longest one. Here the embeddings, the Q/K/V
projections, the attention output projection, the feed-forward block and every LayerNorm run
on the packed ``(total_tokens, hidden)`` matrix, which holds no padding; only the attention
itself is computed on padded per-pair tensors (with a key mask), and its output is packed
again. The arithmetic per token is the one of the Hugging Face forward, so the logits equal it
up to floating-point rounding.

Only the exact Hugging Face classes of the families in :data:`_FAMILIES` take this path
(:func:`packable`): BERT (``BertForSequenceClassification``, e.g. the ms-marco MiniLM
cross-encoders), RoBERTa (``RobertaForSequenceClassification``) and XLM-RoBERTa
(``XLMRobertaForSequenceClassification``, e.g. bge-reranker-base / -large / -v2-m3). Any other
architecture, a subclass, remote code, a decoder or a left-padding tokenizer runs the model's
own forward.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["packable", "packed_logits"]


@dataclass(frozen=True)
class _Family:
    """What differs between the packable architectures; the rest of the forward is shared.

    ``prefix`` names the classes of ``module`` (``{prefix}ForSequenceClassification``,
    ``{prefix}Model``, ``{prefix}Layer``, ...), ``encoder`` the model's attribute holding the
    base model. ``pooled``: the head is ``classifier(dropout(pooler(first token)))`` (BERT)
    rather than ``classifier(hidden)``, whose ``ClassificationHead`` reads the first token
    itself (dense, tanh, out_proj; RoBERTa has no pooler). ``pad_positions``: position ids
    count from ``padding_idx + 1`` over the non-pad tokens (RoBERTa's
    ``create_position_ids_from_input_ids``) rather than from 0.
    """

    module: str
    prefix: str
    encoder: str
    pooled: bool
    pad_positions: bool


_FAMILIES = {
    "bert": _Family("transformers.models.bert.modeling_bert", "Bert", "bert", True, False),
    "roberta": _Family(
        "transformers.models.roberta.modeling_roberta", "Roberta", "roberta", False, True
    ),
    "xlm-roberta": _Family(
        "transformers.models.xlm_roberta.modeling_xlm_roberta",
        "XLMRoberta",
        "roberta",
        False,
        True,
    ),
}

_PARTS = (
    "ForSequenceClassification",
    "Model",
    "Embeddings",
    "Layer",
    "SelfAttention",
    "SelfOutput",
    "Intermediate",
    "Output",
)


def _classes(family: _Family) -> dict[str, Any] | None:
    """The family's classes by part name (plus ``Pooler`` or ``ClassificationHead``)."""
    try:
        module = importlib.import_module(family.module)
    except Exception:  # pragma: no cover - transformers without it, or an import error
        return None
    head = "Pooler" if family.pooled else "ClassificationHead"
    found = {part: getattr(module, family.prefix + part, None) for part in (*_PARTS, head)}
    return None if any(cls is None for cls in found.values()) else found


def _family(model: Any) -> _Family | None:
    return _FAMILIES.get(getattr(getattr(model, "config", None), "model_type", None) or "")


def packable(model: Any, tokenizer: Any) -> bool:
    """Whether :func:`packed_logits` computes exactly what ``model(**batch)`` would."""
    family = _family(model)
    classes = None if family is None else _classes(family)
    if family is None or classes is None:
        return False
    config = model.config
    if type(model) is not classes["ForSequenceClassification"] or model.training:
        return False
    base: Any = getattr(model, family.encoder, None)
    if type(base) is not classes["Model"] or type(base.embeddings) is not classes["Embeddings"]:
        return False
    if family.pooled:
        if base.pooler is None or type(base.pooler) is not classes["Pooler"]:
            return False
    elif type(model.classifier) is not classes["ClassificationHead"]:
        return False
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return False
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return False
    if getattr(tokenizer, "padding_side", "right") == "left":
        return False
    for layer in base.encoder.layer:
        if (
            type(layer) is not classes["Layer"]
            or type(layer.attention.self) is not classes["SelfAttention"]
            or type(layer.attention.output) is not classes["SelfOutput"]
            or type(layer.intermediate) is not classes["Intermediate"]
            or type(layer.output) is not classes["Output"]
        ):
            return False
    return True


def packed_logits(torch: Any, model: Any, rows: Sequence[Mapping[str, list[int]]]) -> Any:
    """The classifier logits of ``rows`` (token ids per pair), computed unpadded.

    The caller checked :func:`packable` and runs this under ``torch.inference_mode()``.
    """
    family = _family(model)
    assert family is not None  # packable() checked it
    base = getattr(model, family.encoder)
    device = model.device
    lengths = np.fromiter((len(row["input_ids"]) for row in rows), dtype=np.int64, count=len(rows))
    batch, width, total = len(rows), int(lengths.max()), int(lengths.sum())
    starts = np.zeros(batch, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    offsets = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    slots = np.repeat(np.arange(batch, dtype=np.int64) * width, lengths) + offsets

    def packed(name: str) -> Any:
        return np.fromiter((t for row in rows for t in row[name]), dtype=np.int64, count=total)

    ids = packed("input_ids")
    positions = offsets
    if family.pad_positions:
        # RoBERTa: padding_idx + the count of non-pad tokens so far in the pair (pad tokens
        # themselves get padding_idx), as create_position_ids_from_input_ids on a padded row.
        pad = int(base.embeddings.padding_idx)
        real = (ids != pad).astype(np.int64)
        seen = np.cumsum(real)
        seen -= np.repeat(seen[starts] - real[starts], lengths)
        positions = seen * real + pad
    types = packed("token_type_ids") if "token_type_ids" in rows[0] else np.zeros_like(ids)
    hidden = base.embeddings(
        input_ids=torch.from_numpy(ids).to(device)[None],
        token_type_ids=torch.from_numpy(types).to(device)[None],
        position_ids=torch.from_numpy(positions).to(device)[None],
    )[0]
    dtype = hidden.dtype
    index = torch.from_numpy(slots).to(device)
    valid = (
        torch.arange(width, device=device)[None, :] < torch.from_numpy(lengths).to(device)[:, None]
    )
    mask = torch.zeros((batch, 1, width), dtype=dtype, device=device)
    mask.masked_fill_(~valid[:, None, :], torch.finfo(dtype).min)
    size = hidden.shape[-1]
    keys = {}  # the key mask per head count, as (batch * heads, 1, width)
    for layer in base.encoder.layer:
        n = layer.attention.self.num_attention_heads
        if n not in keys:
            keys[n] = mask[:, None].expand(batch, n, 1, width).reshape(batch * n, 1, width)
    for layer in base.encoder.layer:
        attention = layer.attention.self
        heads, head = attention.num_attention_heads, attention.attention_head_size

        def padded(x: Any, heads: int = heads, head: int = head) -> Any:
            out = x.new_zeros((batch * width, x.shape[-1]))
            out.index_copy_(0, index, x)
            return out.view(batch, width, heads, head).transpose(1, 2)

        q = padded(attention.query(hidden))
        k = padded(attention.key(hidden))
        v = padded(attention.value(hidden))
        # Matmul attention, the scale and key mask fused into one baddbmm: on the CPU this
        # beat both torch's SDPA kernel and the unfused form at these sizes (~100 tokens,
        # heads of 32).
        q, k, v = (x.reshape(batch * heads, width, head) for x in (q, k, v))
        scores = torch.baddbmm(keys[heads], q, k.transpose(1, 2), alpha=attention.scaling)
        context = torch.bmm(scores.softmax(dim=-1), v).view(batch, heads, width, head)
        context = context.transpose(1, 2).reshape(batch * width, heads * head)
        attended = layer.attention.output(context.index_select(0, index), hidden)
        hidden = layer.output(layer.intermediate(attended), attended)
    first = hidden.index_select(0, torch.from_numpy(starts).to(device)).view(batch, 1, size)
    if family.pooled:
        return model.classifier(model.dropout(base.pooler(first)))
    return model.classifier(first)  # dense -> tanh -> out_proj on the first token
