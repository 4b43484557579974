"""Local cross-encoder reranking through sentence-transformers.

One class with its fast path (tokenise once, length-sorted batches, the unpadded forward of
:mod:`rerankit.backends._packed` or the OpenVINO runtime of :mod:`rerankit.backends._openvino`,
out-of-memory backoff, micro-batching, multi-query batches): these share the tokenised plan of
a call, which is why the module runs past 400 lines.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import threading
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rerankit._deps import require
from rerankit._models import exclusive, shared_model
from rerankit._torch import resolve_device, resolve_dtype, torch_module
from rerankit.backends._openvino import (
    OPENVINO_BATCH,
    OpenVinoModel,
    balanced_bounds,
    compile_openvino,
    precision_hint,
)
from rerankit.backends._packed import PACKED_TOKENS, packable, packed_logits, within_tokens
from rerankit.backends._padding import padded_arrays
from rerankit.backends._segments import LongDocuments, Segments, segment
from rerankit.backends.local import LocalReranker
from rerankit.base import ScoreBatch, ScoreRequest
from rerankit.calibration import CalibrationSource, ScoreSpace
from rerankit.errors import BackendError, ConfigurationError, RerankWarning
from rerankit.sentence import locate_model
from rerankit.types import Candidate

if TYPE_CHECKING:
    from rerankit.batching import MicroBatcher, Request

__all__ = ["CrossEncoderReranker"]


def _check_micro_batching(enabled: bool, wait_ms: float, pairs: int) -> None:
    if not isinstance(enabled, bool):
        raise ConfigurationError(f"micro_batching must be a bool, got {enabled!r}")
    if (
        isinstance(wait_ms, bool)
        or not isinstance(wait_ms, int | float)
        or not 0 <= wait_ms <= 1000
    ):
        raise ConfigurationError(
            f"micro_batch_wait_ms must be a number in [0, 1000], got {wait_ms!r}"
        )
    if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 1:
        raise ConfigurationError(f"micro_batch_pairs must be a positive int, got {pairs!r}")


@dataclass(frozen=True)
class _Plan:
    """One request, tokenised once: the model inputs of each segment and how to fold them."""

    inputs: list[dict[str, list[int]]]
    segments: Segments


PADDED_BATCH = 32
"""Pairs per forward pass of the padded path when ``batch_size`` is not given."""

RUNTIMES = ("torch", "openvino")

_batchers: dict[Hashable, Any] = {}
_batchers_lock = threading.Lock()


class CrossEncoderReranker(LocalReranker):
    """Scores (query, document) pairs with a sentence-transformers ``CrossEncoder``.

    ``model`` is a Hugging Face hub id or a local directory. The model loads lazily on first use,
    once per process: every reranker naming the same model, device and dtype shares it.
    The raw score is the model's logit (``logit`` space, calibrated with a sigmoid).

    The fast path:

    * ``dtype="auto"`` (default) runs bf16 where the CPU (AMX / AVX512-BF16) or GPU supports it;
      pass ``dtype="float32"`` to turn that off.
    * Each call tokenises its pairs once; pairs are sorted by token length and cut into batches
      of ``batch_size`` (default 32), so little compute goes to padding.
    * ``unpadded`` (default ``None``: on the CPU, on for Hugging Face BERT, RoBERTa and
      XLM-RoBERTa cross-encoders, such as the ms-marco MiniLM ones and bge-reranker-base /
      -large / -v2-m3) runs everything but the attention on the packed tokens of a pass, with
      no padding at all, attention in blocks of 16 length-sorted pairs, and the last layer for
      the first token only (all the head reads); other architectures, and other devices unless
      ``unpadded=True``, run the model's own forward. Scores equal it up to floating-point
      noise; ``unpadded=False`` turns it off. Unpadded passes hold up to 16,384 tokens
      (:data:`PACKED_TOKENS`) and, when ``batch_size`` is given, at most that many pairs.
    * ``runtime="openvino"`` (``pip install 'rerankit[openvino]'``; BERT, RoBERTa and
      XLM-RoBERTa cross-encoders, on the CPU) converts the model once, on first use or
      ``warm_up()``, into an OpenVINO graph whose last layer runs for the first token only, and
      runs length-sorted batches of at most 8 pairs (``batch_size``) side by side, one
      OpenVINO stream per core; ``dtype`` picks its precision (``"auto"``: bf16 where the CPU
      has it). The default ``runtime="torch"`` runs the model in PyTorch, as above.
    * ``micro_batching=True`` makes concurrent calls (``arerank`` from many coroutines, or
      ``rerank`` from many threads) share forward passes: requests arriving within
      ``micro_batch_wait_ms`` of each other, up to ``micro_batch_pairs`` documents, are scored
      together on one worker thread (shared by all rerankers with the same model and options).
      Scores equal unbatched ones up to floating-point noise.
    * Wrap it in :class:`~rerankit.CachedReranker` to skip the model for repeated queries.

    Example:
        >>> from rerankit import CrossEncoderReranker
        >>> reranker = CrossEncoderReranker(model="cross-encoder/ms-marco-MiniLM-L6-v2")
        >>> docs = ["Qdrant is a vector DB.", "Paris"]
        >>> results = reranker.rerank("what is qdrant", docs)  # doctest: +SKIP
        >>> server_side = CrossEncoderReranker(model="/models/ce", micro_batching=True)
        >>> compiled = CrossEncoderReranker(model="/models/ce", runtime="openvino")
    """

    backend = "cross-encoder"
    score_space = ScoreSpace.LOGIT
    _feature = "CrossEncoderReranker"
    _model_required = True

    def __init__(
        self,
        *,
        model: str | os.PathLike[str],
        device: str | None = None,
        batch_size: int | None = None,
        max_length: int | None = None,
        dtype: str = "auto",
        long_documents: LongDocuments = "truncate",
        window_overlap: int = 64,
        trust_remote_code: bool = False,
        micro_batching: bool = False,
        micro_batch_wait_ms: float = 2.0,
        micro_batch_pairs: int = 256,
        calibration: CalibrationSource | None = None,
        dedupe: bool = True,
        unpadded: bool | None = None,
        runtime: str = "torch",
    ) -> None:
        if runtime not in RUNTIMES:
            raise ConfigurationError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        default_batch = OPENVINO_BATCH if runtime == "openvino" else PADDED_BATCH
        super().__init__(
            model=model,
            device=device,
            batch_size=default_batch if batch_size is None else batch_size,
            max_length=max_length,
            dtype=dtype,
            long_documents=long_documents,
            window_overlap=window_overlap,
            trust_remote_code=trust_remote_code,
            calibration=calibration,
            dedupe=dedupe,
        )
        _check_micro_batching(micro_batching, micro_batch_wait_ms, micro_batch_pairs)
        self._set_unpadded(unpadded)
        self.runtime = runtime
        self._pairs_capped = batch_size is not None
        self.micro_batching = micro_batching
        self.micro_batch_wait_ms = float(micro_batch_wait_ms)
        self.micro_batch_pairs = micro_batch_pairs
        self._batcher: MicroBatcher[ScoreBatch] | None = None

    def _resolved(self) -> tuple[str, Any]:
        device = resolve_device(self.device)
        if self.runtime == "openvino" and device != "cpu":
            raise ConfigurationError(
                f"runtime='openvino' runs on the CPU; got device {device!r} (use "
                "runtime='torch' there)"
            )
        return device, resolve_dtype(self.dtype, device)

    def _load_target(self) -> tuple[str, Any]:
        """The device and dtype the PyTorch model is loaded in: float32 for OpenVINO, which
        converts it and computes in the precision ``dtype`` asks for."""
        device, dtype = self._resolved()
        return device, torch_module().float32 if self.runtime == "openvino" else dtype

    def _load_key(self) -> tuple[Hashable, ...]:
        device, dtype = self._load_target()
        return ("cross-encoder", self.model, device, str(dtype), self.trust_remote_code)

    def _load_model(self) -> Any:
        st = require(
            "sentence_transformers",
            extra="local",
            feature=self._feature,
            package="sentence-transformers",
        )
        device, dtype = self._load_target()

        def load() -> Any:
            encoder = st.CrossEncoder(
                locate_model(self.model, feature=self._feature),
                device=device,
                trust_remote_code=self.trust_remote_code,
            )
            encoder.to(dtype)
            encoder.eval()
            return encoder

        return shared_model(self._load_key(), load)

    def warm_up(self) -> None:
        """Load the model now instead of on the first call (with ``runtime="openvino"``, also
        convert and compile it)."""
        encoder = self._load()
        if self.runtime == "openvino":
            self._openvino(encoder)

    def cache_fingerprint(self) -> Mapping[str, Any]:
        """Everything that changes a raw score (used by :class:`~rerankit.CachedReranker`)."""
        device, dtype = self._resolved()
        versions = {}
        for name in ("torch", "transformers", "sentence-transformers"):
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = "-"
        if self.runtime == "openvino":
            versions["openvino"] = importlib.metadata.version("openvino")
        return {
            "backend": self.backend,
            "model": self.model,
            "device": device,
            "dtype": str(dtype),
            "runtime": self.runtime,
            "max_length": self.max_length,
            "long_documents": self.long_documents,
            "window_overlap": self.window_overlap if self.long_documents == "window" else None,
            "trust_remote_code": self.trust_remote_code,
            "versions": versions,
        }

    def _window(self, encoder: Any) -> int:
        # sentence-transformers >= 5 renamed CrossEncoder.max_length to max_seq_length (the old
        # name warns); older releases only have max_length.
        native = getattr(encoder, "max_seq_length", None) or getattr(encoder, "max_length", None)
        limit = self.max_length or native or 512
        return int(min(limit, getattr(encoder.tokenizer, "model_max_length", limit) or limit))

    # -- scoring -------------------------------------------------------------------------------

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        if self.micro_batching:
            return self._micro_batcher().score(query, texts)
        return self._score_texts([(query, texts)])[0]

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        if self.micro_batching:
            return await self._micro_batcher().ascore(query, [c.text for c in candidates])
        return await super()._ascore(query, candidates)

    @property
    def micro_batcher(self) -> MicroBatcher[ScoreBatch] | None:
        """The shared :class:`~rerankit.MicroBatcher` when ``micro_batching=True`` (created on
        first use), else ``None``; for reporting its batch sizes (``add_listener``)."""
        return self._micro_batcher() if self.micro_batching else None

    def _micro_batcher(self) -> MicroBatcher[ScoreBatch]:
        if self._batcher is None:
            from rerankit.batching import MicroBatcher

            key = (
                *self._load_key(),
                self.batch_size,
                self._pairs_capped,
                self.max_length,
                self.long_documents,
                self.window_overlap,
                self.micro_batch_wait_ms,
                self.micro_batch_pairs,
                self.unpadded,
                self.runtime,
            )
            with _batchers_lock:
                batcher = _batchers.get(key)
                if batcher is None:
                    batcher = MicroBatcher(
                        score_many=self._score_texts,
                        max_wait_ms=self.micro_batch_wait_ms,
                        max_pairs=self.micro_batch_pairs,
                        name=f"rerankit-micro-batcher:{self.model}",
                    )
                    _batchers[key] = batcher
            self._batcher = batcher
        return self._batcher

    def _plan(self, encoder: Any, query: str, texts: Sequence[str]) -> _Plan:
        """Tokenise one request once: query + each document (or window), with special tokens."""
        with exclusive(encoder.tokenizer):  # truncation settings are tokenizer state
            return self._tokenise(encoder, query, texts)

    def _tokenise(self, encoder: Any, query: str, texts: Sequence[str]) -> _Plan:
        tokenizer = encoder.tokenizer
        max_length = self._window(encoder)
        # verbose=False: lengths are measured here, and over-long pairs are cut (and flagged)
        # below, so transformers' "sequence length is longer than the maximum" log is noise.
        n_query = len(tokenizer(query, add_special_tokens=False, verbose=False)["input_ids"])
        budget = max_length - n_query - tokenizer.num_special_tokens_to_add(pair=True)
        if budget < 1:
            raise ConfigurationError(
                f"the query is {n_query} tokens, which leaves no room for documents in the "
                f"model's {max_length}-token window"
            )
        names = [n for n in tokenizer.model_input_names if n != "attention_mask"]
        if self.long_documents == "window":
            segments = segment(tokenizer, texts, budget, mode="window", overlap=self.window_overlap)
            enc = tokenizer(
                [query] * len(segments.texts),
                segments.texts,
                truncation="only_second",
                max_length=max_length,
                return_attention_mask=False,
            )
        else:
            enc = tokenizer(
                [query] * len(texts),
                list(texts),
                truncation=False,
                return_attention_mask=False,
                verbose=False,
            )
            lengths = [len(ids) for ids in enc["input_ids"]]
            over = [i for i, n in enumerate(lengths) if n > max_length]
            if over:  # rare: tokenise those again, cut to the window
                cut = tokenizer(
                    [query] * len(over),
                    [texts[i] for i in over],
                    truncation="only_second",
                    max_length=max_length,
                    return_attention_mask=False,
                )
                for name in names:
                    for j, i in enumerate(over):
                        enc[name][i] = cut[name][j]
            segments = Segments(
                texts=list(texts),
                owner=list(range(len(texts))),
                lengths=[min(n, max_length) for n in lengths],
                truncated=[n > max_length for n in lengths],
                windows=[1] * len(texts),
            )
        present = [n for n in names if n in enc]
        inputs = [{name: enc[name][i] for name in present} for i in range(len(enc["input_ids"]))]
        return _Plan(inputs=inputs, segments=segments)

    def _score_many(self, requests: Sequence[ScoreRequest]) -> list[ScoreBatch]:
        """Several queries' candidates in shared, length-sorted forward passes."""
        return self._score_texts([(q, [c.text for c in cands]) for q, cands in requests])

    def _score_texts(self, requests: Sequence[Request]) -> list[ScoreBatch]:
        """Score several (query, texts) requests with shared, length-sorted forward passes."""
        encoder = self._load()
        model = encoder.model
        num_labels = int(getattr(model.config, "num_labels", 1))
        if num_labels not in (1, 2):
            raise ConfigurationError(
                f"{self.model} has {num_labels} output labels; a reranker needs 1 (a relevance "
                "logit) or 2 (not relevant / relevant)"
            )
        plans = [self._plan(encoder, query, texts) for query, texts in requests]
        inputs = [item for plan in plans for item in plan.inputs]
        raw = self._forward(encoder, inputs, num_labels)
        out = []
        start = 0
        for plan in plans:
            stop = start + len(plan.inputs)
            segments = plan.segments
            out.append(
                ScoreBatch(
                    raw=segments.aggregate_max(raw[start:stop]),
                    truncated=segments.truncated,
                    windows=segments.windows,
                )
            )
            start = stop
        return out

    def _forward(
        self, encoder: Any, inputs: Sequence[Mapping[str, list[int]]], num_labels: int
    ) -> list[float]:
        """One logit per tokenised pair: sorted by length, padded per batch, run in order.

        A batch that runs out of accelerator memory is split in half and tried again (down to
        one pair); the smaller size is kept for the rest of the call and warned about once.
        """
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]["input_ids"]))
        lengths = [len(inputs[i]["input_ids"]) for i in order]
        if self.runtime == "openvino":
            return self._forward_openvino(encoder, inputs, order, lengths, num_labels)
        raw = [0.0] * len(inputs)
        packed = self._packs(encoder)
        size = self.batch_size if self._pairs_capped or not packed else len(order)
        start = 0
        while start < len(order):
            stop = start + size
            if packed:
                stop = min(stop, start + within_tokens(lengths, PACKED_TOKENS, start))
            chunk = order[start:stop]
            try:
                values = self._run_batch(
                    encoder, [inputs[i] for i in chunk], num_labels, packed=packed
                )
            except _OutOfMemory as exc:
                if size == 1:
                    raise BackendError(
                        f"{self.model} ran out of memory on a single pair: {exc.cause}"
                    ) from exc.cause
                size = max(1, len(chunk) // 2)
                self._warn_backoff(size)
                continue
            for i, value in zip(chunk, values, strict=True):
                raw[i] = value
            start += len(chunk)
        return raw

    def _forward_openvino(
        self,
        encoder: Any,
        inputs: Sequence[Mapping[str, list[int]]],
        order: Sequence[int],
        lengths: Sequence[int],
        num_labels: int,
    ) -> list[float]:
        """One logit per pair through OpenVINO: the length-sorted pairs (``order``, their
        ``lengths``) in as many batches as :meth:`OpenVinoModel.batches` asks, of about equal
        padded size (:func:`balanced_bounds`), run side by side on its streams."""
        compiled = self._openvino(encoder)
        raw = [0.0] * len(inputs)
        if not order:
            return raw
        bounds = balanced_bounds(lengths, compiled.batches(len(order), self.batch_size))
        chunks = [order[a:b] for a, b in itertools.pairwise(bounds)]
        try:
            logits = compiled.logits(
                encoder.model, encoder.tokenizer, [[inputs[i] for i in c] for c in chunks]
            )
        except RuntimeError as exc:
            raise BackendError(f"{self.model} failed to score a batch: {exc}") from exc
        for chunk, values in zip(chunks, logits, strict=True):
            for i, value in zip(chunk, _relevance(values, num_labels), strict=True):
                raw[i] = value
        return raw

    def _warn_backoff(self, size: int) -> None:
        warnings.warn(
            f"CrossEncoderReranker: a batch ran out of memory; retrying in batches of {size} "
            f"(pass batch_size={size} to start there)",
            RerankWarning,
            stacklevel=2,
        )

    def _openvino(self, encoder: Any) -> OpenVinoModel:
        """The model compiled by OpenVINO (:mod:`rerankit.backends._openvino`), converted once
        per process for each model and precision."""
        ov = require(
            "openvino", extra="openvino", feature="CrossEncoderReranker(runtime='openvino')"
        )
        model, tokenizer = encoder.model, encoder.tokenizer
        if not packable(model, tokenizer):
            raise ConfigurationError(
                f"runtime='openvino' takes BERT, RoBERTa and XLM-RoBERTa cross-encoders (the "
                f"Hugging Face classes, right padding); {self.model} is a "
                f"{type(model).__name__}: use runtime='torch'"
            )
        torch = torch_module()
        precision = precision_hint(torch, self._resolved()[1])
        return shared_model(
            ("openvino", *self._load_key(), precision),
            lambda: compile_openvino(torch, ov, model, tokenizer, precision),
        )

    def _packs(self, encoder: Any) -> bool:
        """Whether batches run unpadded (:mod:`rerankit.backends._packed`)."""
        return self._unpadded_allowed(encoder.model) and packable(encoder.model, encoder.tokenizer)

    def _run_batch(
        self,
        encoder: Any,
        rows: Sequence[Mapping[str, list[int]]],
        num_labels: int,
        *,
        packed: bool = False,
    ) -> list[float]:
        """The logits of one batch; :class:`_OutOfMemory` when memory runs out."""
        torch = torch_module()
        model = encoder.model
        try:
            with torch.inference_mode():
                if packed:
                    logits = packed_logits(torch, model, rows).float()
                else:
                    logits = model(**self._padded(encoder, rows)).logits.float()
        except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError
            if isinstance(exc, getattr(torch, "OutOfMemoryError", ())) or (
                "out of memory" in str(exc).lower()
            ):
                raise _OutOfMemory(exc) from exc
            raise BackendError(f"{self.model} failed to score a batch: {exc}") from exc
        return _relevance(logits, num_labels)

    def _padded(self, encoder: Any, rows: Sequence[Mapping[str, list[int]]]) -> dict[str, Any]:
        """The model inputs of one batch, padded to its longest pair, on the model's device."""
        device = encoder.model.device
        arrays = padded_arrays(encoder.tokenizer, rows)
        return {n: torch_module().from_numpy(a).to(device) for n, a in arrays.items()}


def _relevance(logits: Any, num_labels: int) -> list[float]:
    """One score per row of ``(rows, num_labels)`` logits: the logit, or relevant minus not
    relevant for a two-label head."""
    values = logits[:, 0] if num_labels == 1 else logits[:, 1] - logits[:, 0]
    return [float(v) for v in values.tolist()]


class _OutOfMemory(Exception):
    """A batch did not fit in the accelerator's memory (the caller splits it)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause
