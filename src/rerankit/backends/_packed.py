"""An unpadded ("packed") forward pass for BERT cross-encoders.

A length-sorted batch still pads every pair to the longest one. Here the embeddings, the Q/K/V
projections, the attention output projection, the feed-forward block and every LayerNorm run
on the packed ``(total_tokens, hidden)`` matrix, which holds no padding; only the attention
itself is computed on padded per-pair tensors (with a key mask), and its output is packed
again. The arithmetic per token is the one of the Hugging Face forward, so the logits equal it
up to floating-point rounding.

Only exact Hugging Face BERT classes take this path (:func:`packable`); any other
architecture, a subclass, remote code, a decoder or a left-padding tokenizer runs the model's
own forward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["packable", "packed_logits"]


def _bert_classes() -> tuple[Any, ...]:
    try:
        from transformers.models.bert import modeling_bert as mb
    except Exception:  # pragma: no cover - transformers without BERT, or an import error
        return ()
    return (
        mb.BertForSequenceClassification,
        mb.BertModel,
        mb.BertEmbeddings,
        mb.BertLayer,
        mb.BertSelfAttention,
        mb.BertSelfOutput,
        mb.BertIntermediate,
        mb.BertOutput,
        mb.BertPooler,
    )


def packable(model: Any, tokenizer: Any) -> bool:
    """Whether :func:`packed_logits` computes exactly what ``model(**batch)`` would."""
    classes = _bert_classes()
    if not classes:
        return False
    seq_cls, bert_cls, emb_cls, layer_cls, self_cls, selfout_cls, inter_cls, out_cls, pool_cls = (
        classes
    )
    config = getattr(model, "config", None)
    if type(model) is not seq_cls or getattr(config, "model_type", None) != "bert":
        return False
    bert = model.bert
    if type(bert) is not bert_cls or type(bert.embeddings) is not emb_cls:
        return False
    if bert.pooler is None or type(bert.pooler) is not pool_cls or model.training:
        return False
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return False
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return False
    if getattr(tokenizer, "padding_side", "right") == "left":
        return False
    for layer in bert.encoder.layer:
        if (
            type(layer) is not layer_cls
            or type(layer.attention.self) is not self_cls
            or type(layer.attention.output) is not selfout_cls
            or type(layer.intermediate) is not inter_cls
            or type(layer.output) is not out_cls
        ):
            return False
    return True


def packed_logits(torch: Any, model: Any, rows: Sequence[Mapping[str, list[int]]]) -> Any:
    """The classifier logits of ``rows`` (token ids per pair), computed unpadded.

    The caller checked :func:`packable` and runs this under ``torch.inference_mode()``.
    """
    bert = model.bert
    device = model.device
    lengths = np.fromiter((len(row["input_ids"]) for row in rows), dtype=np.int64, count=len(rows))
    batch, width, total = len(rows), int(lengths.max()), int(lengths.sum())
    starts = np.zeros(batch, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    positions = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    slots = np.repeat(np.arange(batch, dtype=np.int64) * width, lengths) + positions

    def packed(name: str) -> Any:
        flat = np.fromiter((t for row in rows for t in row[name]), dtype=np.int64, count=total)
        return torch.from_numpy(flat).to(device)[None]

    ids = packed("input_ids")
    types = packed("token_type_ids") if "token_type_ids" in rows[0] else torch.zeros_like(ids)
    hidden = bert.embeddings(
        input_ids=ids,
        token_type_ids=types,
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
    for layer in bert.encoder.layer:
        n = layer.attention.self.num_attention_heads
        if n not in keys:
            keys[n] = mask[:, None].expand(batch, n, 1, width).reshape(batch * n, 1, width)
    for layer in bert.encoder.layer:
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
    first = hidden.index_select(0, torch.from_numpy(starts).to(device))
    pooled = bert.pooler(first.view(batch, 1, size))
    return model.classifier(model.dropout(pooled))
