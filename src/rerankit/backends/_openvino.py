"""The cross-encoder compiled by OpenVINO (``CrossEncoderReranker(runtime="openvino")``).

The model is converted with ``openvino.convert_model`` from a PyTorch module that runs the
Hugging Face model's own submodules (embeddings, Q/K/V projections, attention output,
feed-forward, LayerNorms, pooler / classification head) on a padded batch, with one change
that leaves the logits as they are: the last layer runs for the first token of each pair only
(its keys and values still come from every token), since the head reads nothing else. So its
query projection, attention output, feed-forward block and LayerNorms skip every other token,
as in :mod:`rerankit.backends._packed`. OpenVINO's CPU plugin then fuses the graph (bias and
GELU into the matrix products, the attention into one kernel) and runs it in the precision
asked for (``bf16`` on CPUs with AVX512-BF16 or AMX, else ``f32``).

Only the architectures :func:`~rerankit.backends._packed.packable` accepts take this path
(exact BERT, RoBERTa and XLM-RoBERTa sequence-classification classes, right padding): the
module below reads their submodules by name.
"""

from __future__ import annotations

import contextlib
import queue
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rerankit.backends._packed import _family
from rerankit.backends._padding import padded_arrays

__all__ = [
    "balanced_bounds",
    "OPENVINO_BATCH",
    "OPENVINO_WIDTH",
    "OpenVinoModel",
    "compile_openvino",
    "precision_hint",
]

OPENVINO_BATCH = 8
"""Pairs per OpenVINO inference at most when ``batch_size`` is not given. With one stream per
core (below), measured on a 2-core AVX512-BF16 CPU (MiniLM-L6, DL19 pairs of about 97 tokens,
length-sorted, interleaved): 100 pairs in 13 batches of at most 8 took 416 ms, in batches of 10
461 ms, of 16 438 ms; 20 pairs in 4 batches of 5 94 ms, in 2 of 10 123 ms."""

OPENVINO_WIDTH = 16
"""Inputs are padded to a multiple of this many tokens. OpenVINO's CPU kernels for the attention
and the matrix products run faster on such widths, and each new input shape costs a first run
that prepares its kernels, so fewer distinct widths mean fewer such runs. Measured on a 2-core
AMX CPU, MiniLM-L6, 20 DL19 queries seen for the first time: 100 pairs 220 ms against 272 ms at
the longest pair's width (216 against 241 ms once every width was seen; 233 ms for multiples
of 32), 20 pairs 56 against 77 ms (52 against 59 ms)."""

_INPUTS = ("input_ids", "token_type_ids", "position_ids", "attention_mask")


def precision_hint(torch: Any, dtype: Any) -> str:
    """OpenVINO's ``INFERENCE_PRECISION_HINT`` for a resolved torch dtype."""
    if dtype == torch.bfloat16:
        return "bf16"
    if dtype == torch.float16:
        return "f16"
    return "f32"


def _first_token_module(torch: Any, model: Any) -> Any:
    """``model`` as a module of padded ``(batch, width)`` inputs returning its logits, whose
    last layer runs for the first token only."""
    family = _family(model)
    assert family is not None  # packable() checked it
    base = getattr(model, family.encoder)
    pooled = family.pooled

    class FirstToken(torch.nn.Module):  # type: ignore[misc, name-defined]
        # The model's parts, not the model: tracing reads every attribute of the modules it
        # holds, and a PreTrainedModel's deprecated properties warn when read.
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = base.embeddings
            self.layers = base.encoder.layer
            self.pooler: Any = base.pooler if pooled else None
            self.dropout: Any = model.dropout if pooled else None
            self.classifier = model.classifier

        def forward(
            self, input_ids: Any, token_type_ids: Any, position_ids: Any, attention_mask: Any
        ) -> Any:
            batch = input_ids.shape[0]
            hidden = self.embeddings(
                input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids
            )
            keep = attention_mask[:, None, None, :].to(hidden.dtype)
            mask = (1.0 - keep) * torch.finfo(hidden.dtype).min
            for n, layer in enumerate(self.layers):
                attention = layer.attention.self
                heads, size = attention.num_attention_heads, attention.attention_head_size
                source = hidden[:, :1] if n == len(self.layers) - 1 else hidden
                query, keys, values = (
                    x.view(batch, -1, heads, size).transpose(1, 2)
                    for x in (
                        attention.query(source),
                        attention.key(hidden),
                        attention.value(hidden),
                    )
                )
                scores = torch.matmul(query, keys.transpose(-1, -2)) * attention.scaling + mask
                context = torch.matmul(scores.softmax(dim=-1), values)
                context = context.transpose(1, 2).reshape(batch, -1, heads * size)
                attended = layer.attention.output(context, source)
                hidden = layer.output(layer.intermediate(attended), attended)
            if self.pooler is not None:
                return self.classifier(self.dropout(self.pooler(hidden)))
            return self.classifier(hidden)  # dense -> tanh -> out_proj on the first token

    return FirstToken().eval()


class OpenVinoModel:
    """A model compiled by OpenVINO for throughput: one stream per core (OpenVINO's
    ``THROUGHPUT`` hint), each running whole batches on its own thread, so a call's batches
    run side by side instead of every batch splitting each operation across the cores.

    Measured on a 2-core AVX512-BF16 CPU against the ``LATENCY`` hint (one stream on both
    cores), 100 DL19 pairs of MiniLM-L6: 416 against 436 ms on a quiet machine, 533 against
    954 ms with a busy loop on one core (the latency stream waits for its slowest thread at
    every operation).

    A call's batches go in longest first, two per stream in flight, each on an inference
    request of its own that the call then waits for in turn (no completion callback: it would
    take the GIL on OpenVINO's threads). Measured on a 2-core AMX CPU, 100 pairs in 13
    batches: 258 ms shortest first with one request per stream, 237 ms longest first, 229 ms
    with two requests per stream, 222 ms without the callback. Each concurrent caller takes
    its set of requests from a pool (creating a request costs about 7 ms).
    """

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.streams = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._pool: queue.SimpleQueue[list[Any]] = queue.SimpleQueue()

    def batches(self, pairs: int, cap: int) -> int:
        """How many batches of about equal size ``pairs`` pairs are cut into: at most ``cap``
        pairs each, and at least two per stream while there are pairs enough (so that the
        streams stay busy when one batch takes longer)."""
        return min(pairs, max(-(-pairs // cap), 2 * self.streams))

    def logits(self, model: Any, tokenizer: Any, batches: Sequence[Any]) -> list[Any]:
        """The ``(len(rows), num_labels)`` float32 logits of each batch of rows (the batches
        in ascending order of length, as the call sorts them)."""
        try:
            requests = self._pool.get_nowait()
        except queue.Empty:
            requests = [self.compiled.create_infer_request() for _ in range(2 * self.streams)]
        out: list[Any] = [None] * len(batches)
        running: list[int | None] = [None] * len(requests)

        def collect(slot: int) -> None:
            index, running[slot] = running[slot], None
            if index is not None:
                request = requests[slot]
                request.wait()
                out[index] = np.array(request.get_output_tensor(0).data, dtype=np.float32)

        try:
            for turn, index in enumerate(reversed(range(len(batches)))):
                slot = turn % len(requests)
                collect(slot)
                requests[slot].start_async(padded_inputs(model, tokenizer, batches[index]))
                running[slot] = index
            for slot in range(len(requests)):
                collect(slot)
        finally:
            for slot, left in enumerate(running):
                if left is not None:  # a call that failed: let nothing of it run on
                    with contextlib.suppress(Exception):
                        requests[slot].wait()
        self._pool.put(requests)  # back in the pool only after a call that went through
        return [value.reshape(len(rows), -1) for value, rows in zip(out, batches, strict=True)]


def _rounded(length: int) -> int:
    """``length`` rounded up to a multiple of :data:`OPENVINO_WIDTH`."""
    return -(-length // OPENVINO_WIDTH) * OPENVINO_WIDTH


def balanced_bounds(lengths: Sequence[int], count: int) -> list[int]:
    """Where to cut ascending ``lengths`` into at most ``count`` contiguous batches whose
    largest padded size (pairs x width rounded to :data:`OPENVINO_WIDTH`) is as small as it
    can be: ``[0, ..., len(lengths)]``. Equal pair counts would give the batches of long pairs
    more work; measured on a 2-core AMX CPU (MiniLM-L6, DL19), 20 pairs in 4 batches took
    48 against 52-54 ms, 100 pairs in 13 batches 205 against 210-216 ms."""

    def size(start: int, stop: int) -> int:
        return (stop - start) * _rounded(lengths[stop - 1])

    def cut(limit: int) -> list[int]:
        bounds, start = [0], 0
        while start < len(lengths):
            stop = start + 1
            while stop < len(lengths) and size(start, stop + 1) <= limit:
                stop += 1
            bounds.append(stop)
            start = stop
        return bounds

    if not lengths:
        return [0]
    low, high = 0, size(0, len(lengths))  # cut(high) is one batch
    while low < high:
        middle = (low + high) // 2
        if len(cut(middle)) - 1 <= count:
            high = middle
        else:
            low = middle + 1
    return cut(high)


def compile_openvino(
    torch: Any, ov: Any, model: Any, tokenizer: Any, precision: str
) -> OpenVinoModel:
    """Convert ``model`` (packable, float32, on the CPU) and compile it for OpenVINO's CPU
    plugin in ``precision`` (``"bf16"``, ``"f16"`` or ``"f32"``)."""
    module = _first_token_module(torch, model)
    rows = [dict(tokenizer("a", "b c")), dict(tokenizer("a b", "c d e f"))]
    example = tuple(torch.from_numpy(a) for a in padded_inputs(model, tokenizer, rows).values())
    # convert_model traces the module with TorchScript, which torch marks deprecated; going
    # through torch.export instead took 8.1 s against 2.5 s for MiniLM (2-core CPU).
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        converted = ov.convert_model(
            module,
            example_input=example,
            input=[(name, [-1, -1], ov.Type.i64) for name in _INPUTS],
        )
    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "THROUGHPUT"}
    return OpenVinoModel(ov.Core().compile_model(converted, "CPU", config))


def padded_inputs(
    model: Any, tokenizer: Any, rows: Sequence[Mapping[str, list[int]]]
) -> dict[str, Any]:
    """The OpenVINO model's inputs for ``rows`` as int64 arrays, right-padded to the longest
    rounded up to a multiple of :data:`OPENVINO_WIDTH` (within the model's positions), with
    position ids as the model's embeddings would make them."""
    family = _family(model)
    assert family is not None
    longest = max(len(row["input_ids"]) for row in rows)
    limit = max(longest, int(model.config.max_position_embeddings))
    arrays = padded_arrays(
        tokenizer, rows, names=("input_ids", "token_type_ids"), width=min(_rounded(longest), limit)
    )
    ids = arrays["input_ids"]
    if family.pad_positions:
        # RoBERTa: padding_idx + the count of non-pad tokens so far; pads get padding_idx.
        pad = int(getattr(model, family.encoder).embeddings.padding_idx)
        real = (ids != pad).astype(np.int64)
        positions = np.cumsum(real, axis=1) * real + pad
    else:
        positions = np.broadcast_to(np.arange(ids.shape[1], dtype=np.int64), ids.shape).copy()
    return {name: positions if name == "position_ids" else arrays[name] for name in _INPUTS}
