"""What the local-model components share: their model options and lazy, once-only loading.

:class:`LocalModel` validates and stores the options of a local sentence-transformers model and
loads it on first use; :class:`LocalReranker` is the base of the local rerankers
(cross-encoder, embedding, late interaction) and adds the long-document options;
:class:`SentenceEmbedder` is the embedding step of the LangChain and LlamaIndex embedding
components. The multi-stage ``SentenceTransformerEncoder`` is a :class:`LocalModel` too, so
every local model's options are named and validated by one rule.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from rerankit._embed_rows import embed_rows
from rerankit._torch import DTYPES
from rerankit.backends._segments import LongDocuments, check_long_documents
from rerankit.base import Reranker
from rerankit.calibration import CalibrationSource
from rerankit.errors import ConfigurationError
from rerankit.sentence import default_model, display_name, load_sentence_transformer

__all__ = ["LocalModel", "LocalReranker", "SentenceEmbedder"]


class LocalModel:
    """A local model's options (validated in :meth:`_set_model_options`) and lazy loading.

    The model loads on first use (or :meth:`warm_up`), once per instance, through
    :meth:`_load_model`: by default a sentence-transformers bi-encoder from the process-wide
    shared loader, named ``_feature`` in the "install rerankit[local]" error.
    """

    _feature: ClassVar[str] = "a local model"
    """What needs sentence-transformers, as named in the error when it is missing."""
    _model_required: ClassVar[bool] = False
    """``model`` must be given: there is no offline default (cross-encoders)."""

    model: str
    query_prompt: str
    document_prompt: str
    device: str | None
    batch_size: int
    max_length: int | None
    dtype: str
    trust_remote_code: bool
    _loaded: Any

    def _set_model_options(
        self,
        *,
        model: str | os.PathLike[str] | None,
        device: str | None,
        batch_size: int,
        max_length: int | None,
        dtype: str,
        trust_remote_code: bool,
    ) -> None:
        """Validate and store the model options; ``model=None`` picks the offline MiniLM.

        ``model`` is a hub id or a local folder (a ``str`` or an ``os.PathLike``).
        """
        if isinstance(model, os.PathLike):
            model = os.fspath(model)
        if self._model_required:
            if not isinstance(model, str) or not model.strip():
                raise ConfigurationError("model must be a non-empty hub id or local path")
        elif model is not None and (not isinstance(model, str) or not model.strip()):
            raise ConfigurationError("model must be a non-empty hub id or local path, or None")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 8
        ):
            raise ConfigurationError(f"max_length must be an int >= 8 or None, got {max_length!r}")
        if dtype not in DTYPES:
            raise ConfigurationError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.model = model or default_model()
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.dtype = dtype
        self.trust_remote_code = trust_remote_code
        self._loaded = None

    def _set_prompts(self, *, query_prompt: str, document_prompt: str) -> None:
        """Validate and store the prompts prepended to queries and documents (for models
        trained with prefixes such as ``"query: "``)."""
        for name, prompt in (("query_prompt", query_prompt), ("document_prompt", document_prompt)):
            if not isinstance(prompt, str):
                raise ConfigurationError(f"{name} must be a str, got {type(prompt).__name__}")
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt

    @property
    def model_name(self) -> str:
        """The model's short name (:func:`~rerankit.sentence.display_name`): a hub id, or a
        local folder's name."""
        return display_name(self.model)

    def warm_up(self) -> None:
        """Load the model now instead of on the first call."""
        self._load()

    def _load(self) -> Any:
        if self._loaded is None:
            self._loaded = self._load_model()
        return self._loaded

    def _load_model(self) -> Any:
        """Load the model (shared by every component naming the same model and options)."""
        return load_sentence_transformer(
            self.model,
            self.device,
            self.dtype,
            self.trust_remote_code,
            self.max_length,
            self._feature,
        )


class LocalReranker(LocalModel, Reranker):
    """Base of the rerankers that run a local model: options, lazy loading, pointwise scores.

    Besides the :class:`LocalModel` options it validates and stores ``long_documents`` and
    ``window_overlap``. :meth:`loaded_model` and :meth:`use_model` let a wrapper (such as the
    embedding cache of ``rerankit eval``) see and replace the model the reranker scores with.
    """

    pointwise = True

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None,
        device: str | None,
        batch_size: int,
        max_length: int | None,
        dtype: str,
        long_documents: LongDocuments,
        window_overlap: int,
        trust_remote_code: bool,
        calibration: CalibrationSource | None,
        dedupe: bool,
    ) -> None:
        self._set_model_options(
            model=model,
            device=device,
            batch_size=batch_size,
            max_length=max_length,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
        )
        check_long_documents(long_documents, window_overlap)
        super().__init__(calibration=calibration, dedupe=dedupe)
        self.long_documents: LongDocuments = long_documents
        self.window_overlap = window_overlap

    def _set_unpadded(self, unpadded: bool | None) -> None:
        """Validate and store ``unpadded`` (the unpadded forward of
        :mod:`rerankit.backends._packed`): ``None`` on the CPU where the model allows it,
        ``True`` on any device where it allows it, ``False`` never."""
        if unpadded is not None and not isinstance(unpadded, bool):
            raise ConfigurationError(f"unpadded must be a bool or None, got {unpadded!r}")
        self.unpadded = unpadded

    def _unpadded_allowed(self, model: Any) -> bool:
        """Whether ``unpadded`` and ``model``'s device let it run unpadded (whether the model's
        architecture allows it is checked by the caller)."""
        if self.unpadded is False:
            return False
        # Measured to win on CPUs; other devices opt in with unpadded=True.
        return bool(self.unpadded or getattr(getattr(model, "device", None), "type", None) == "cpu")

    def loaded_model(self) -> Any:
        """The model this reranker scores with, loaded now if it was not yet."""
        return self._load()

    def use_model(self, model: Any) -> None:
        """Score with ``model`` from now on instead of the loaded one.

        ``model`` must answer the calls the reranker makes on its own model (for example a
        wrapper around :meth:`loaded_model` that serves some of them from a cache). Other
        rerankers sharing the same loaded model are not affected.
        """
        self._loaded = model


class SentenceEmbedder(LocalModel):
    """Embeds texts with a sentence-transformers bi-encoder, as plain lists of floats.

    The embedding step of :class:`rerankit.langchain.SentenceTransformerEmbeddings` and
    :class:`rerankit.llama_index.SentenceTransformerEmbedding`: the model options are the
    :class:`LocalModel` options (one validation rule), plus ``normalize`` and the
    ``query_prompt`` / ``document_prompt`` prepended for models trained with prefixes. The
    model is shared with every component naming the same model and options, and loads on
    first use (an empty call never loads it).

    Example:
        >>> from rerankit.backends.local import SentenceEmbedder
        >>> embedder = SentenceEmbedder()
        >>> len(embedder.embed_documents(["Qdrant stores vectors."])[0])
        384
    """

    _feature = "SentenceTransformerEmbeddings"

    def __init__(
        self,
        *,
        model: str | None = None,
        device: str | None = None,
        dtype: str = "float32",
        batch_size: int = 32,
        normalize: bool = True,
        max_length: int | None = None,
        query_prompt: str = "",
        document_prompt: str = "",
        trust_remote_code: bool = False,
    ) -> None:
        self._set_model_options(
            model=model,
            device=device,
            batch_size=batch_size,
            max_length=max_length,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
        )
        if not isinstance(normalize, bool):
            raise ConfigurationError(f"normalize must be a bool, got {normalize!r}")
        self._set_prompts(query_prompt=query_prompt, document_prompt=document_prompt)
        self.normalize = normalize
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            return super()._load()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, as given (no prompt added)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ConfigurationError("texts must be a list of str")
        return embed_rows(self._load, texts, batch_size=self.batch_size, normalize=self.normalize)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed documents (with ``document_prompt`` prepended)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ConfigurationError("texts must be a list of str")
        return self.embed([self.document_prompt + t for t in texts])

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (with ``query_prompt`` prepended)."""
        if not isinstance(text, str):
            raise ConfigurationError(f"query must be a str, got {type(text).__name__}")
        return self.embed([self.query_prompt + text])[0]
