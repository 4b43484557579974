"""Local LLM reranking: a causal LM's yes/no next-token log-odds, one forward pass per batch."""

from __future__ import annotations

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
    batch), computing the vocabulary logits for the last position only. Documents longer than
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
        self.preset = preset_named(preset)
        self.instruction = instruction
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

    def _encode(self, lm: CausalLM, query: str, text: str, window: int) -> tuple[list[int], bool]:
        """One pair's token ids, the document piece cut from its end to fit ``window``."""
        parts, where = join_ids(lm.tokenizer, self._pieces(lm, query, text))
        total = sum(len(p) for p in parts)
        if total <= window:
            return [i for p in parts for i in p], False
        over = total - window
        if where is None or len(parts[where]) <= over:
            raise ConfigurationError(
                f"the prompt without the document is longer than the model's {window}-token "
                "window (a long query or instruction): shorten it or raise max_length"
            )
        parts[where] = parts[where][: len(parts[where]) - over]
        return [i for p in parts for i in p], True

    def _plan(
        self, lm: CausalLM, query: str, texts: Sequence[str]
    ) -> tuple[list[list[int]], list[int], list[bool], list[int]]:
        """Token ids of every pair (or window), their owners, and the per-document flags."""
        window = self._window(lm)
        with exclusive(lm.tokenizer):
            if self.long_documents == "window":
                empty, _ = join_ids(lm.tokenizer, self._pieces(lm, query, ""))
                budget = window - sum(len(p) for p in empty) - 2
                segments = segment(
                    lm.tokenizer, texts, budget, mode="window", overlap=self.window_overlap
                )
                inputs = [self._encode(lm, query, t, window)[0] for t in segments.texts]
                return inputs, segments.owner, [False] * len(texts), segments.windows
            encoded = [self._encode(lm, query, t, window) for t in texts]
        inputs = [ids for ids, _ in encoded]
        return inputs, list(range(len(texts))), [cut for _, cut in encoded], [1] * len(texts)

    # -- scoring ----------------------------------------------------------------------------------

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        lm: CausalLM = self._load()
        answers = self._answer_ids(lm)
        inputs, owner, truncated, windows = self._plan(lm, query, [c.text for c in candidates])
        raw = self._forward(lm, inputs, answers)
        best: dict[int, float] = {}
        for score, i in zip(raw, owner, strict=True):
            if i not in best or score > best[i]:
                best[i] = score
        return ScoreBatch(
            raw=[best[i] for i in range(len(candidates))], truncated=truncated, windows=windows
        )

    def _forward(
        self, lm: CausalLM, inputs: Sequence[Sequence[int]], answers: _Answers
    ) -> list[float]:
        """One score per tokenised prompt: sorted by length, left-padded per batch."""
        torch = torch_module()
        tokenizer, model = lm.tokenizer, lm.model
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
            positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
            try:
                with torch.inference_mode():
                    logits = (
                        model(
                            input_ids=torch.from_numpy(ids).to(model.device),
                            attention_mask=torch.from_numpy(mask).to(model.device),
                            position_ids=torch.from_numpy(positions).to(model.device),
                            logits_to_keep=1,
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
