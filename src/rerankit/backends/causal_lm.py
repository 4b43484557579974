"""Local LLM reranking: a causal LM's yes/no next-token log-odds, one forward pass per batch."""

from __future__ import annotations

import copy
import importlib.metadata
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rerankit._models import exclusive
from rerankit._torch import resolve_device, resolve_dtype, torch_module
from rerankit.backends._segments import LongDocuments, segment
from rerankit.backends.causal_presets import (
    CausalLMPreset,
    Piece,
    answer_token,
    join_ids,
    preset_named,
)
from rerankit.backends.local import LocalReranker
from rerankit.base import ScoreBatch
from rerankit.calibration import Calibration, ScoreSpace
from rerankit.causal_models import CausalLM, check_model, load_causal_lm, model_name
from rerankit.errors import BackendError, ConfigurationError
from rerankit.types import Candidate

__all__ = ["CausalLMReranker"]


@dataclass(frozen=True)
class _Encoded:
    """One pair's prompt: the ids before the document piece, the rest, and whether the
    document was cut."""

    prefix: list[int]
    rest: list[int]
    cut: bool


@dataclass(frozen=True)
class _Answers:
    """The token ids whose next-token logits make the score."""

    yes: list[int]
    no: list[int]


class CausalLMReranker(LocalReranker):
    """Scores (query, document) pairs with a local causal LLM: the log-odds of "yes" over "no"
    as the next token after a judgement prompt, with no generation.

    ``model`` is a hub id, a model folder or a ``.gguf`` file (loaded with
    ``from_pretrained(folder, gguf_file=name)``; ``pip install 'rerankit[local-llm]'``). The
    prompt and the answer tokens come from ``preset`` (see
    :mod:`rerankit.backends.causal_presets`): ``"generic"`` (default; any instruct model,
    through its chat template), ``"qwen3-reranker"``, ``"bge-reranker-v2-gemma"`` or
    ``"mxbai-rerank-v2"``, each as its model card writes it, or a custom
    :class:`~rerankit.backends.causal_presets.CausalLMPreset`. The preset is never guessed from
    the model's name. ``instruction`` replaces the preset's task description. A tokenizer in
    which an answer word is not a single token raises :class:`~rerankit.ConfigurationError`
    on first use.

    The raw score is ``logsumexp(logits of the yes tokens) - logsumexp(logits of the no
    tokens)`` at the last prompt position (``logit`` space, calibrated with a sigmoid, so the
    calibrated score is P(yes) over yes and no; bge-reranker-v2-gemma's card scores with the
    ``Yes`` logit alone, and so does its preset).

    The fast path: ``dtype="auto"`` runs bf16 where the CPU (AMX / AVX512-BF16) or GPU supports
    it; each call tokenises its pairs once, sorts them by length and runs one forward pass per
    batch of ``batch_size`` (left-padded, with position ids, so a pair scores the same in any
    batch), computing the vocabulary logits for the last position only. The part of the prompt
    before the document (system message, instruction, query) is the same for every document of
    a call: with ``prefix_cache=True`` (default) it runs once and each batch continues from its
    key/value cache. Documents longer than
    the window (``max_length``, default the model's) are cut (``long_documents="truncate"``,
    flagged) or scored as overlapping windows (``"window"``, max over windows). The model is
    shared with every reranker and local generator naming the same model, device and dtype.

    Example:
        >>> from rerankit import CausalLMReranker
        >>> from rerankit.causal_models import offline_llm
        >>> reranker = CausalLMReranker(model=offline_llm())  # SmolLM2-135M-Instruct
        >>> results = reranker.rerank("capital of France",
        ...                           ["Paris is the capital of France.", "Bananas are yellow."])
        >>> results[0].index  # doctest: +SKIP
        0
        >>> qwen = CausalLMReranker(model="Qwen/Qwen3-Reranker-0.6B", preset="qwen3-reranker")
    """

    backend = "causal-lm"
    score_space = ScoreSpace.LOGIT
    _feature = "CausalLMReranker"
    _model_required = True

    def __init__(
        self,
        *,
        model: str | os.PathLike[str],
        preset: str | CausalLMPreset = "generic",
        instruction: str | None = None,
        device: str | None = None,
        batch_size: int = 16,
        max_length: int | None = None,
        dtype: str = "auto",
        long_documents: LongDocuments = "truncate",
        window_overlap: int = 64,
        prefix_cache: bool = True,
        trust_remote_code: bool = False,
        calibration: Calibration | None = None,
        dedupe: bool = True,
    ) -> None:
        super().__init__(
            model=check_model(model),
            device=device,
            batch_size=batch_size,
            max_length=max_length,
            dtype=dtype,
            long_documents=long_documents,
            window_overlap=window_overlap,
            trust_remote_code=trust_remote_code,
            calibration=calibration,
            dedupe=dedupe,
        )
        if instruction is not None and not isinstance(instruction, str):
            raise ConfigurationError(
                f"instruction must be a str or None, got {type(instruction).__name__}"
            )
        if not isinstance(prefix_cache, bool):
            raise ConfigurationError(f"prefix_cache must be a bool, got {prefix_cache!r}")
        self.preset = preset_named(preset)
        self.instruction = instruction
        self.prefix_cache = prefix_cache
        self._answers: _Answers | None = None

    @property
    def model_name(self) -> str:
        return model_name(self.model)

    def _resolved(self) -> tuple[str, Any]:
        device = resolve_device(self.device)
        return device, resolve_dtype(self.dtype, device)

    def _load_model(self) -> CausalLM:
        return load_causal_lm(
            self.model,
            device=self.device,
            dtype=self.dtype,
            trust_remote_code=self.trust_remote_code,
            feature=self._feature,
        )

    def cache_fingerprint(self) -> Mapping[str, Any]:
        """Everything that changes a raw score (used by :class:`~rerankit.CachedReranker`)."""
        device, dtype = self._resolved()
        versions = {}
        for name in ("torch", "transformers"):
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = "-"
        return {
            "backend": self.backend,
            "model": self.model,
            "preset": self.preset.name,
            "instruction": self.preset.instruction
            if self.instruction is None
            else self.instruction,
            "device": device,
            "dtype": str(dtype),
            "max_length": self.max_length,
            "long_documents": self.long_documents,
            "window_overlap": self.window_overlap if self.long_documents == "window" else None,
            "versions": versions,
        }

    def render(self, query: str, document: str) -> str:
        """The exact prompt text of one (query, document) pair (loads the tokenizer)."""
        lm: CausalLM = self._load()
        with exclusive(lm.tokenizer):
            return self.preset.render(lm.tokenizer, query, document, self.instruction)

    # -- tokenisation ---------------------------------------------------------------------------

    def _window(self, lm: CausalLM) -> int:
        native = getattr(lm.model.config, "max_position_embeddings", None)
        limit = int(self.max_length or native or 4096)
        if native:
            limit = min(limit, int(native))
        return limit

    def _answer_ids(self, lm: CausalLM) -> _Answers:
        if self._answers is None:
            name = self.preset.name
            self._answers = _Answers(
                yes=[
                    answer_token(lm.tokenizer, w, preset=name, model=self.model_name)
                    for w in self.preset.yes
                ],
                no=[
                    answer_token(lm.tokenizer, w, preset=name, model=self.model_name)
                    for w in self.preset.no
                ],
            )
        return self._answers

    def _pieces(self, lm: CausalLM, query: str, document: str) -> tuple[Piece, ...]:
        return self.preset.pieces(lm.tokenizer, query, document, self.instruction)

    def _encode(self, lm: CausalLM, query: str, text: str, window: int) -> _Encoded:
        """One pair's token ids, the document piece cut from its end to fit ``window``; the
        pieces before the document piece are the prefix (the same for every document)."""
        parts, where = join_ids(lm.tokenizer, self._pieces(lm, query, text))
        split = 0 if where is None else where
        prefix = [i for p in parts[:split] for i in p]
        total = sum(len(p) for p in parts)
        cut = total > window
        if cut:
            over = total - window
            if where is None or len(parts[where]) <= over:
                raise ConfigurationError(
                    f"the prompt without the document is longer than the model's {window}-token "
                    "window (a long query or instruction): shorten it or raise max_length"
                )
            parts[where] = parts[where][: len(parts[where]) - over]
        return _Encoded(prefix, [i for p in parts[split:] for i in p], cut)

    def _plan(
        self, lm: CausalLM, query: str, texts: Sequence[str]
    ) -> tuple[list[_Encoded], list[int], list[bool], list[int]]:
        """The prompts of every pair (or window), their owners, and the per-document flags."""
        window = self._window(lm)
        with exclusive(lm.tokenizer):
            if self.long_documents == "window":
                empty, _ = join_ids(lm.tokenizer, self._pieces(lm, query, ""))
                budget = window - sum(len(p) for p in empty) - 2
                segments = segment(
                    lm.tokenizer, texts, budget, mode="window", overlap=self.window_overlap
                )
                inputs = [self._encode(lm, query, t, window) for t in segments.texts]
                return inputs, segments.owner, [False] * len(texts), segments.windows
            encoded = [self._encode(lm, query, t, window) for t in texts]
        return encoded, list(range(len(texts))), [e.cut for e in encoded], [1] * len(texts)

    # -- scoring ----------------------------------------------------------------------------------

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        lm: CausalLM = self._load()
        answers = self._answer_ids(lm)
        inputs, owner, truncated, windows = self._plan(lm, query, [c.text for c in candidates])
        prefixes = {tuple(e.prefix) for e in inputs}
        if self.prefix_cache and len(inputs) > 1 and len(prefixes) == 1 and inputs[0].prefix:
            raw = self._forward(lm, [e.rest for e in inputs], answers, prefix=inputs[0].prefix)
        else:
            raw = self._forward(lm, [e.prefix + e.rest for e in inputs], answers)
        best: dict[int, float] = {}
        for score, i in zip(raw, owner, strict=True):
            if i not in best or score > best[i]:
                best[i] = score
        return ScoreBatch(
            raw=[best[i] for i in range(len(candidates))], truncated=truncated, windows=windows
        )

    def _forward(
        self,
        lm: CausalLM,
        inputs: Sequence[Sequence[int]],
        answers: _Answers,
        prefix: Sequence[int] = (),
    ) -> list[float]:
        """One score per tokenised prompt: sorted by length, left-padded per batch.

        With a ``prefix`` (the prompt before the document, the same for every pair) the
        prefix runs once and each batch continues from a copy of its key/value cache; the
        padding then sits between the prefix and each pair's tokens, masked out.
        """
        torch = torch_module()
        tokenizer, model = lm.tokenizer, lm.model
        cache = None
        if prefix:
            with torch.inference_mode():
                head = torch.tensor([list(prefix)], device=model.device)
                cache = model(input_ids=head, use_cache=True, logits_to_keep=1).past_key_values
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        yes = torch.tensor(answers.yes, device=model.device)
        no = torch.tensor(answers.no, device=model.device) if answers.no else None
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        raw = [0.0] * len(inputs)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(inputs[i]) for i in chunk)
            ids = np.full((len(chunk), width), int(pad), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                ids[row, width - len(inputs[i]) :] = inputs[i]
                mask[row, width - len(inputs[i]) :] = 1
            positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None) + len(prefix)
            extra: dict[str, Any] = {}
            if cache is not None:
                copied = copy.deepcopy(cache)
                copied.batch_repeat_interleave(len(chunk))
                full = np.concatenate([np.ones((len(chunk), len(prefix)), np.int64), mask], 1)
                extra = {"past_key_values": copied, "use_cache": True}
                mask = full
            try:
                with torch.inference_mode():
                    logits = (
                        model(
                            input_ids=torch.from_numpy(ids).to(model.device),
                            attention_mask=torch.from_numpy(mask).to(model.device),
                            position_ids=torch.from_numpy(positions).to(model.device),
                            logits_to_keep=1,
                            **extra,
                        )
                        .logits[:, -1, :]
                        .float()
                    )
                    values = torch.logsumexp(logits[:, yes], dim=-1)
                    if no is not None:
                        values = values - torch.logsumexp(logits[:, no], dim=-1)
            except RuntimeError as exc:
                raise BackendError(f"{self.model_name} failed to score a batch: {exc}") from exc
            for i, value in zip(chunk, values.tolist(), strict=True):
                raw[i] = float(value)
        return raw
