"""An unpadded ("packed") forward pass for BERT and RoBERTa cross-encoders.

A length-sorted batch still pads every pair to the longest one. Here the embeddings, the Q/K/V
projections, the attention output projection, the feed-forward block and every LayerNorm run
on the packed ``(total_tokens, hidden)`` matrix, which holds no padding. Only the attention
itself is computed on padded tensors, in blocks of :data:`ATTENTION_GROUP` consecutive pairs of
a length-sorted pass, each padded to its own longest pair (so the quadratic part pays for
little padding either), with a key mask; the projections are scattered straight into that
head-major layout and gathered back, with no transposes. The last layer runs for the first
token of each pair only (its keys and values still come from every token): the
classification head reads nothing else, so that layer's query projection, attention output,
feed-forward block and LayerNorms skip every other token. The arithmetic per token is the one
of the Hugging Face forward, so the logits equal it up to floating-point rounding.

Only the exact Hugging Face classes of the families in :data:`_FAMILIES` take this path
(:func:`packable`): BERT (``BertForSequenceClassification``, e.g. the ms-marco MiniLM
cross-encoders), RoBERTa (``RobertaForSequenceClassification``) and XLM-RoBERTa
(``XLMRobertaForSequenceClassification``, e.g. bge-reranker-base / -large / -v2-m3). Any other
architecture, a subclass, remote code, a decoder or a left-padding tokenizer runs the model's
own forward.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ATTENTION_GROUP",
    "FEED_FORWARD_ELEMENTS",
    "PACKED_TOKENS",
    "packable",
    "packable_encoder",
    "packed_hidden_states",
    "packed_logits",
    "within_tokens",
]

PACKED_TOKENS = 16_384
"""Tokens per unpadded pass. Measured on a 2-core CPU (MiniLM-L6, 100 DL19 pairs of about 95
tokens, bf16): one pass for all 100 pairs was 8% faster than passes of 32."""

ATTENTION_GROUP = 16
"""Pairs per attention block. Measured on a 2-core CPU (MiniLM-L6, 100 DL19 pairs of about 95
tokens per pass, bf16): blocks of 16 beat 8 and 32, and one block per 32-pair batch."""

FEED_FORWARD_ELEMENTS = 2048 * 1536
"""The block after attention (output projection, LayerNorms, feed-forward) runs over chunks of
tokens whose intermediate activations hold at most this many elements (12 MiB in float32;
2,048 tokens of MiniLM, 768 of a 4,096-wide large model). One intermediate matrix for a whole
pass is large enough (58 MB for 100 MiniLM pairs in float32) that the allocator maps fresh
pages for it on every layer, and GELU then runs at a third of its speed on them. Measured on
a 2-core AVX2 CPU (MiniLM-L6, 100 DL19 pairs of about 95 tokens, float32, interleaved): 1.28x
faster per call than one chunk per pass; 1,024 tokens 1.18x, 512 1.15x."""

KEY_ALIGN = 32
"""Attention blocks pad their keys to a multiple of this (unless one past it). Measured on a
2-core AVX-512 CPU, bf16 softmax over (192, w, w): 5.8 ns per element at w = 60-63, 4.1 at
94-95, 1.2 at 64, 1.0 at 96-97."""


def within_tokens(lengths: Sequence[int], budget: int, start: int = 0) -> int:
    """How many rows of ``lengths`` tokens, from row ``start`` on, fit in ``budget`` tokens (one
    at least while rows remain)."""
    total = 0
    for n in range(start, len(lengths)):
        total += lengths[n]
        if total > budget:
            return max(n - start, 1)
    return len(lengths) - start


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
    if type(model) is not classes["ForSequenceClassification"] or model.training:
        return False
    base: Any = getattr(model, family.encoder, None)
    if not _base_ok(base, family, classes, tokenizer):
        return False
    if family.pooled:
        return base.pooler is not None and type(base.pooler) is classes["Pooler"]
    return type(model.classifier) is classes["ClassificationHead"]


def packable_encoder(base: Any, tokenizer: Any) -> bool:
    """Whether :func:`packed_hidden_states` computes exactly the last hidden state that
    ``base(**batch)`` would (a ``BertModel``, ``RobertaModel`` or ``XLMRobertaModel``)."""
    family = _family(base)
    classes = None if family is None else _classes(family)
    return classes is not None and _base_ok(base, family, classes, tokenizer)


def _base_ok(base: Any, family: Any, classes: dict[str, Any], tokenizer: Any) -> bool:
    """The encoder is the family's exact base model, in eval mode, with absolute positions,
    no decoder or cross-attention, exact layer classes and a right-padding tokenizer."""
    if type(base) is not classes["Model"] or base.training:
        return False
    if type(base.embeddings) is not classes["Embeddings"]:
        return False
    config = base.config
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return False
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return False
    if getattr(tokenizer, "padding_side", "right") == "left":
        return False
    layers = list(base.encoder.layer)
    if not layers:
        return False
    shape = (
        layers[0].attention.self.num_attention_heads,
        layers[0].attention.self.attention_head_size,
    )
    return all(
        # One head layout for every layer (pruned heads differ per layer: the model's forward).
        (layer.attention.self.num_attention_heads, layer.attention.self.attention_head_size)
        == shape
        and type(layer) is classes["Layer"]
        and type(layer.attention.self) is classes["SelfAttention"]
        and type(layer.attention.output) is classes["SelfOutput"]
        and type(layer.intermediate) is classes["Intermediate"]
        and type(layer.output) is classes["Output"]
        for layer in layers
    )


def packed_logits(torch: Any, model: Any, rows: Sequence[Mapping[str, list[int]]]) -> Any:
    """The classifier logits of ``rows`` (token ids per pair), computed unpadded.

    The caller checked :func:`packable` and runs this under ``torch.inference_mode()``. Rows
    sorted by length waste the least attention padding (any order gives the same logits).
    """
    family = _family(model)
    assert family is not None  # packable() checked it
    base = getattr(model, family.encoder)
    first = _encode(torch, base, family, rows, first_only=True)  # (batch, hidden)
    if family.pooled:
        return model.classifier(model.dropout(base.pooler(first[:, None])))
    return model.classifier(first[:, None])  # dense -> tanh -> out_proj on the first token


def packed_hidden_states(torch: Any, base: Any, rows: Sequence[Mapping[str, list[int]]]) -> Any:
    """The last hidden state of every token of ``rows``, packed: ``(total_tokens, hidden)``,
    row ``i``'s tokens after those of rows ``0 .. i-1``.

    The caller checked :func:`packable_encoder` and runs this under ``torch.inference_mode()``.
    """
    family = _family(base)
    assert family is not None  # packable_encoder() checked it
    return _encode(torch, base, family, rows, first_only=False)


@dataclass(frozen=True)
class _Block:
    """One attention block: ``pairs`` consecutive pairs padded to ``width`` tokens, at row
    ``offset`` of the head-major buffer (``pairs * heads`` rows of ``width`` tokens each)."""

    offset: int
    pairs: int
    width: int
    mask: Any  # (pairs * heads, 1, width): 0 for a real key, the dtype's minimum for padding


def _blocks(
    torch: Any, lengths: Any, offsets: Any, heads: int, dtype: Any, device: Any
) -> tuple[list[_Block], int, Any]:
    """The attention blocks of a pass, the buffer's row count, and each packed token's row per
    head (``(total_tokens * heads,)``: where its query / key / value vector goes)."""
    batch = len(lengths)
    bounds = np.append(np.arange(0, batch, ATTENTION_GROUP), batch)
    sizes = np.diff(bounds)
    widths = np.maximum.reduceat(lengths, bounds[:-1])
    # Keys padded up to a multiple of KEY_ALIGN (masked like any padding): torch's CPU softmax
    # over a last dimension that leaves a long tail past its vector width runs 2-5x slower.
    widths = np.where(widths % KEY_ALIGN <= 1, widths, -(-widths // KEY_ALIGN) * KEY_ALIGN)
    rows_per_block = sizes * heads * widths
    bases = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(rows_per_block[:-1], out=bases[1:])
    block_of_pair = np.repeat(np.arange(len(sizes)), sizes)
    local = np.arange(batch, dtype=np.int64) - np.repeat(bounds[:-1], sizes)
    pair_of_token = np.repeat(np.arange(batch), lengths)
    block = block_of_pair[pair_of_token]
    width = widths[block][:, None]
    where = (
        bases[block][:, None]
        + (local[pair_of_token][:, None] * heads + np.arange(heads)[None, :]) * width
        + offsets[:, None]
    )
    out = []
    for b, (start, stop) in enumerate(itertools.pairwise(bounds)):
        w = int(widths[b])
        pad = torch.from_numpy(np.arange(w)[None, :] >= lengths[start:stop, None]).to(device)
        mask = torch.zeros((stop - start, 1, 1, w), dtype=dtype, device=device)
        mask.masked_fill_(pad[:, None, None, :], torch.finfo(dtype).min)
        mask = mask.expand(stop - start, heads, 1, w).reshape((stop - start) * heads, 1, w)
        out.append(_Block(int(bases[b]), int(stop - start), w, mask))
    return out, int(rows_per_block.sum()), torch.from_numpy(where.reshape(-1)).to(device)


def _attend(
    torch: Any, block: _Block, query: Any, keys: Any, values: Any, scaling: float, out: Any = None
) -> Any:
    """Softmax attention of one block (``(rows, queries, head)`` against ``(rows, width,
    head)``), the scale and key mask fused into one ``baddbmm``: on the CPU this beat both
    torch's SDPA kernel and the unfused form at these sizes (~100 tokens, heads of 32)."""
    scores = torch.baddbmm(block.mask, query, keys.transpose(1, 2), alpha=scaling)
    return torch.bmm(scores.softmax(dim=-1), values, out=out)


def _encode(
    torch: Any,
    base: Any,
    family: _Family,
    rows: Sequence[Mapping[str, list[int]]],
    *,
    first_only: bool,
) -> Any:
    """The last layer's hidden states: of each row's first token, ``(batch, hidden)``, with
    ``first_only`` (whose last layer then skips every other token), else of every token,
    packed, ``(total_tokens, hidden)``."""
    device = base.device
    lengths = np.fromiter((len(row["input_ids"]) for row in rows), dtype=np.int64, count=len(rows))
    batch, total = len(rows), int(lengths.sum())
    starts = np.zeros(batch, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    offsets = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)

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
    first = torch.from_numpy(starts).to(device)
    layers = list(base.encoder.layer)
    heads = layers[0].attention.self.num_attention_heads
    head = layers[0].attention.self.attention_head_size
    blocks, size, where = _blocks(torch, lengths, offsets, heads, hidden.dtype, device)
    step = max(1, FEED_FORWARD_ELEMENTS // int(layers[0].intermediate.dense.out_features))
    # Queries, keys and values, head-major and padded per block; padding rows stay zero (masked
    # keys; a zero value row keeps 0 * value finite). Then the attention output, same layout.
    qkv = hidden.new_zeros((3, size, head))
    context = hidden.new_empty((size, head))
    for n, layer in enumerate(layers):
        attention = layer.attention.self
        last = first_only and n == len(layers) - 1
        for part, linear in enumerate((attention.query, attention.key, attention.value)):
            if last and part == 0:
                continue  # the last layer's queries: first tokens only, below
            # Keys and values without their biases (_output_bias says why that is exact).
            projected = linear(hidden) if part == 0 else torch.mm(hidden, linear.weight.t())
            qkv[part].index_copy_(0, where, projected.view(-1, head))
        if last:
            # Only the first tokens' queries, one row per (pair, head) in pair-then-head order:
            # the order of the blocks' rows, so block by block they line up with its keys.
            q = attention.query(hidden.index_select(0, first)).view(-1, head)
            outputs = []
            done = 0
            for block in blocks:
                rows_ = block.pairs * heads
                span = slice(block.offset, block.offset + rows_ * block.width)
                keys, values = (qkv[p, span].view(rows_, block.width, head) for p in (1, 2))
                query = q[done : done + rows_].view(rows_, 1, head)
                outputs.append(_attend(torch, block, query, keys, values, attention.scaling))
                done += rows_
            gathered = torch.cat(outputs).view(batch, heads * head)
            return _after_attention(torch, layer, gathered, hidden.index_select(0, first), step)
        for block in blocks:
            rows_ = block.pairs * heads
            span = slice(block.offset, block.offset + rows_ * block.width)
            query, keys, values = (qkv[p, span].view(rows_, block.width, head) for p in range(3))
            out = context[span].view(rows_, block.width, head)
            _attend(torch, block, query, keys, values, attention.scaling, out=out)
        gathered = context.index_select(0, where).view(total, heads * head)
        hidden = _after_attention(torch, layer, gathered, hidden, step)
    return hidden


def _output_bias(layer: Any) -> Any:
    """The attention output projection's bias with the value bias pushed through it:
    ``W_o b_v + b_o``.

    The keys and values are projected without their biases, which is exact: the key bias adds
    ``q . b_k`` to every score of a query, the same for all its keys, and softmax ignores a
    constant added to a row; each attention row sums to one (masked keys get exactly zero), so
    the value bias adds ``b_v`` to every context vector, and the output projection turns that
    into the constant ``W_o b_v``. Two fewer bias broadcasts over the whole pass per layer.
    """
    dense = layer.attention.output.dense
    value_bias = layer.attention.self.value.bias
    if value_bias is None:
        return dense.bias
    folded = dense.weight.float() @ value_bias.float()
    if dense.bias is not None:
        folded += dense.bias.float()
    return folded.to(dense.weight.dtype)


def _after_attention(torch: Any, layer: Any, context: Any, hidden: Any, step: int) -> Any:
    """The layer's output projection, feed-forward block and LayerNorms over ``step`` tokens at
    a time (each token's arithmetic is the same whatever the chunk); ``context`` is the
    attention output without the value bias (:func:`_output_bias`)."""
    output = layer.attention.output  # dense -> dropout -> LayerNorm(x + hidden)
    bias = _output_bias(layer)
    parts = []
    for start in range(0, len(hidden), step):
        part = slice(start, start + step)
        projected = torch.nn.functional.linear(context[part], output.dense.weight, bias)
        attended = output.LayerNorm(output.dropout(projected) + hidden[part])
        parts.append(layer.output(layer.intermediate(attended), attended))
    return parts[0] if len(parts) == 1 else torch.cat(parts)
