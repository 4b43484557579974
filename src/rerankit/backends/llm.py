"""LLM reranking over OpenAI-compatible chat APIs (OpenAI, Azure-style gateways, vLLM, Ollama,
llama.cpp), through the official ``openai`` SDK.

Two modes:

* ``pointwise``: one request per document asking for a yes/no relevance judgement and a 0-10
  grade. The raw score is P(yes) from the first answer token's logprobs, normalised over the
  yes/no mass. When the server returns no logprobs (for any document of the call) the whole
  call is scored from the parsed grades instead, as ``grade / 10``; so the raw score of one call
  is always a probability-like value in [0, 1] from one method (``usage["details"]["scoring"]``
  says which).
* ``listwise``: RankGPT-style sliding windows. Windows of ``window_size`` documents, moved from
  the bottom of the list to the top by ``step``, are each answered with a ranking such as
  ``[2] > [1] > [3]``; the answer is repaired (repeated, missing, out-of-range and non-numeric
  ids) into a permutation of that window, so a document only ever moves as itself. The raw
  score is the final rank mapped to ``(n - rank) / n``.

Prompts delimit the query and every document with tags and escape their text with
:func:`~rerankit.remote.prompting.escape_prompt_text` (NFKC, then ``<``, ``>``, ``&`` and their
look-alikes), so a document cannot close its block, forge another, or add instructions: the
model is told that everything inside the tags is data.

Requests go through the one OpenAI-compatible client layer of :mod:`rerankit.remote.openai`,
the same as the chat models'. The answers' parsing lives in :mod:`rerankit.backends.llm_answers`;
the two modes' request flows, each with its sync and async twin over the same options, stay
together here, which is why this module runs past 400 lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from rerankit.backends.llm_answers import (
    LISTWISE_SYSTEM,
    LISTWISE_USER,
    POINTWISE_SYSTEM,
    POINTWISE_USER,
    Ranking,
    after_thinking,
    escape,
    parse_grade,
    parse_ranking,
)
from rerankit.base import ScoreBatch
from rerankit.calibration import ScoreSpace
from rerankit.errors import ConfigurationError
from rerankit.remote.base import (
    RemoteReranker,
    check_options,
    check_positive_int,
    check_text,
)
from rerankit.remote.errors import MalformedResponseError
from rerankit.remote.openai import OpenAIEndpoint, read_completion
from rerankit.remote.parsing import capture_body, yes_no_probability
from rerankit.remote.resilience import Deadline, Failure
from rerankit.remote.secrets import SecretMap, resolve_api_key
from rerankit.remote.usage import UsageMeter
from rerankit.types import Candidate

if TYPE_CHECKING:
    from pydantic import SecretStr
    from typing_extensions import Unpack

    from rerankit.remote.base import RemoteOptions

__all__ = ["LLMReranker", "Ranking", "parse_grade", "parse_ranking"]

log = logging.getLogger("rerankit.remote")

Mode = Literal["pointwise", "listwise"]
Messages = list[dict[str, str]]
Answer = tuple[str, "float | None"]
"""An answer's text and P(yes) from its token logprobs (``None`` when they offer none)."""
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class _Ask(Protocol[R_co]):
    """One chat request (sync: returns an :data:`Answer`; async: a coroutine of one)."""

    def __call__(
        self, messages: Messages, timeout: float, *, max_tokens: int, logprobs: bool
    ) -> R_co: ...


class LLMReranker(RemoteReranker):
    """Reranks with a chat LLM behind any OpenAI-compatible API, pointwise or listwise.

    ``base_url`` points the official ``openai`` SDK at OpenAI (default), an Azure-style gateway
    (use ``default_headers`` / ``default_query`` for its key header and ``api-version``), vLLM
    (``http://host:8000/v1``), Ollama (``http://host:11434/v1``) or a llama.cpp server. The key
    comes from ``api_key`` or ``OPENAI_API_KEY`` and is held as a pydantic ``SecretStr``; with a
    ``base_url`` and no key a placeholder is sent, as local servers expect. The SDK's own
    retries are off; rerankit's policy applies.

    * ``mode="pointwise"`` (default): one request per document (sent concurrently, up to
      ``max_concurrency``); raw score = P(yes) from logprobs (``top_logprobs`` alternatives),
      or ``grade / 10`` for the whole call when the server gives no logprobs. Set
      ``logprobs=False`` for servers that reject the parameter.
    * ``mode="listwise"``: RankGPT-style sliding windows (``window_size``, ``step``), sent one
      after the other; raw score = ``(n - rank) / n`` of the final ranking.

    Both are in ``probability`` space (calibrated by clipping). Documents longer than
    ``max_document_chars`` are cut for the prompt and flagged (``RerankResult.truncated``).
    ``RerankResults.usage`` carries prompt and completion tokens. :attr:`pointwise` is True in
    pointwise mode, so :class:`~rerankit.CachedReranker` takes pointwise rerankers only. A call
    falls back to grades as a whole, so behind a server that returns logprobs only sometimes, a
    cache can hold scores of both kinds; pass ``logprobs=False`` there to cache grades only.

    The other keyword arguments (``timeout``, ``deadline``, ``retry``, ``max_retries``,
    ``requests_per_minute``, ``max_concurrency``, ``on_usage``, ``calibration``, ``dedupe``)
    are those of every remote backend, described in :class:`~rerankit.remote.RemoteOptions`;
    LLMs answer slowly, so here ``timeout`` defaults to 60 seconds and ``deadline`` to 120.

    Example:
        >>> from rerankit import LLMReranker
        >>> judge = LLMReranker(model="gpt-4o-mini", api_key="...")
        >>> ranker = LLMReranker(model="llama3.1:8b", mode="listwise",
        ...                      base_url="http://localhost:11434/v1", window_size=10, step=5)
        >>> ranker
        LLMReranker(model='llama3.1:8b', url='http://localhost:11434/v1', api_key=None)
        >>> docs = ["Qdrant is a vector DB.", "Paris"]
        >>> results = judge.rerank("what is qdrant", docs)  # doctest: +SKIP
    """

    backend = "llm"

    def __init__(
        self,
        *,
        model: str,
        mode: Mode = "pointwise",
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        window_size: int = 20,
        step: int = 10,
        logprobs: bool = True,
        top_logprobs: int = 5,
        temperature: float | None = 0.0,
        max_output_tokens: int | None = None,
        max_document_chars: int | None = 4000,
        default_headers: Mapping[str, str | SecretStr] | None = None,
        default_query: Mapping[str, str | SecretStr] | None = None,
        **options: Unpack[RemoteOptions],
    ) -> None:
        check_options(type(self), options)
        model = check_text("model", model)  # type: ignore[assignment]
        base_url = check_text("base_url", base_url, allow_none=True)
        if mode not in ("pointwise", "listwise"):
            raise ConfigurationError(f"mode must be 'pointwise' or 'listwise', got {mode!r}")
        check_positive_int("window_size", window_size)
        check_positive_int("step", step)
        if window_size < 2:
            raise ConfigurationError(f"window_size must be >= 2, got {window_size}")
        if step >= window_size:
            raise ConfigurationError(
                f"step ({step}) must be smaller than window_size ({window_size}) so that windows "
                "overlap and good documents can move up across them"
            )
        if not isinstance(logprobs, bool):
            raise ConfigurationError(f"logprobs must be a bool, got {logprobs!r}")
        check_positive_int("top_logprobs", top_logprobs)
        if top_logprobs > 20:
            raise ConfigurationError(f"top_logprobs must be <= 20, got {top_logprobs}")
        if temperature is not None and (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not 0.0 <= temperature <= 2.0
        ):
            raise ConfigurationError(f"temperature must be in [0, 2] or None, got {temperature!r}")
        if max_output_tokens is not None:
            check_positive_int("max_output_tokens", max_output_tokens)
        if max_document_chars is not None:
            check_positive_int("max_document_chars", max_document_chars)
        gateway_headers = SecretMap("default_headers", default_headers)
        gateway_query = SecretMap("default_query", default_query)
        options.setdefault("timeout", 60.0)  # LLMs answer slower than rerank APIs
        options.setdefault("deadline", 120.0)
        self.mode: Mode = mode  # before the base class picks the calibration of score_space
        super().__init__(**options)
        key = resolve_api_key(api_key, env="OPENAI_API_KEY", extra="openai", feature="LLMReranker")
        if key is None and base_url is None:
            raise ConfigurationError(
                "LLMReranker needs an API key for the OpenAI API: pass api_key=... or set "
                "OPENAI_API_KEY (or pass base_url=... for a server that needs none)"
            )
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.window_size = window_size
        self.step = step
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self.max_document_chars = max_document_chars
        self._api_key = key
        self._openai = OpenAIEndpoint(
            base_url=self.base_url,
            api_key=key,
            default_headers=gateway_headers,
            default_query=gateway_query,
            timeout=self.timeout,
            feature="LLMReranker",
        )

    @property
    def model_name(self) -> str:
        return self.model

    @property
    def pointwise(self) -> bool:
        """True in pointwise mode: each document is judged alone (so scores can be cached)."""
        return self.mode == "pointwise"

    @property
    def score_space(self) -> ScoreSpace:
        """``probability`` pointwise (P(yes), or grade / 10); ``rank`` listwise: the score
        ``(n - rank) / n`` only orders the list, so listwise takes ``top_n`` or ``min_ratio``,
        not ``min_score``."""
        return ScoreSpace.PROBABILITY if self.mode == "pointwise" else ScoreSpace.RANK

    def _endpoint(self) -> str | None:
        return self.base_url

    def _secrets(self) -> list[str]:
        # Gateway headers and query parameters often carry keys too (Azure's api-key).
        return self._openai._secrets()

    def _settings(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "window_size": self.window_size,
            "step": self.step,
            "logprobs": self.logprobs,
            "top_logprobs": self.top_logprobs,
            "temperature": self.temperature,
            "max_output_tokens": self.max_output_tokens,
            "max_document_chars": self.max_document_chars,
            "default_headers": self._openai.masked_headers(),
            "default_query": self._openai.masked_query(),
        }

    # -- clients -------------------------------------------------------------------------------

    def _new_client(self) -> Any:
        return self._openai._new_client()

    def _new_async_client(self) -> Any:
        return self._openai._new_async_client()

    def _classify(self, exc: BaseException) -> Failure | None:
        return self._openai.classify(exc)

    # -- prompts and answers -------------------------------------------------------------------

    def _clip(self, text: str) -> str:
        limit = self.max_document_chars
        return text if limit is None or len(text) <= limit else text[:limit]

    def _pointwise_messages(self, query: str, text: str) -> Messages:
        user = POINTWISE_USER.format(query=escape(query), document=escape(self._clip(text)))
        return [{"role": "system", "content": POINTWISE_SYSTEM}, {"role": "user", "content": user}]

    def _listwise_messages(self, query: str, texts: Sequence[str]) -> Messages:
        blocks = "\n".join(
            f'<document id="{i}">\n{escape(self._clip(text))}\n</document>'
            for i, text in enumerate(texts, start=1)
        )
        user = LISTWISE_USER.format(query=escape(query), documents=blocks, n=len(texts))
        return [{"role": "system", "content": LISTWISE_SYSTEM}, {"role": "user", "content": user}]

    def _request(
        self, messages: Messages, timeout: float, *, max_tokens: int, logprobs: bool
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_output_tokens or max_tokens,
            "timeout": timeout,
            **self._openai.request_extras(),
        }
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = self.top_logprobs
        return kwargs

    @staticmethod
    def _read(response: Any, meter: UsageMeter) -> Answer:
        """The answer text and P(yes) from its token logprobs (``None`` when absent), read
        inside the request so that a malformed answer fails it."""
        completion = read_completion(response, meter)
        return completion.text, yes_no_probability(after_thinking(completion.logprobs))

    def _pointwise_scores(self, answers: list[Answer], meter: UsageMeter) -> list[float]:
        probabilities = [probability for _, probability in answers]
        if self.logprobs and all(p is not None for p in probabilities):
            meter.note("scoring", "logprobs")
            return [float(p) for p in probabilities if p is not None]
        meter.note("scoring", "grade")
        if self.logprobs:
            log.info(
                "%s: %d of %d answers came without usable logprobs; scoring this call from the "
                "parsed 0-10 grades (raw score = grade / 10)",
                self._describe(),
                sum(p is None for p in probabilities),
                len(answers),
            )
        scores: list[float] = []
        unparsed = 0
        for content, _ in answers:
            grade = parse_grade(content)
            if grade is None:
                unparsed += 1
                grade = 0.0
            scores.append(grade)
        meter.note("unparsed", unparsed)
        if unparsed == len(answers):
            raise MalformedResponseError(
                f"{self._describe()}: none of the {len(answers)} judgements could be read as "
                "'yes/no <grade>'",
                reranker=self._describe(),
                attempts=meter.requests,
            )
        if unparsed:
            log.warning(
                "%s: %d of %d judgements could not be read; those documents score 0",
                self._describe(),
                unparsed,
                len(answers),
            )
        return scores

    def _windows(self, n: int) -> list[tuple[int, int]]:
        """(start, end) of each listwise window, from the bottom of the list to the top (none
        for a single document, which needs no ranking)."""
        if n < 2:
            return []
        if n <= self.window_size:
            return [(0, n)]
        spans = []
        end = n
        while True:
            start = max(0, end - self.window_size)
            spans.append((start, end))
            if start == 0:
                return spans
            end -= self.step

    @staticmethod
    def _rank_scores(order: list[int]) -> list[float]:
        n = len(order)
        raw = [0.0] * n
        for rank, index in enumerate(order):
            raw[index] = (n - rank) / n
        return raw

    def _apply(
        self, order: list[int], start: int, end: int, content: str, meter: UsageMeter
    ) -> None:
        window = order[start:end]
        ranking = parse_ranking(content, len(window))
        if ranking.repaired:
            meter.bump("repaired_ids", ranking.repaired)
        if not ranking.found:
            meter.bump("unparsed_windows")
        order[start:end] = [window[p] for p in ranking.order]

    # -- scoring -------------------------------------------------------------------------------

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return self._flag(super()._score(query, candidates), [c.text for c in candidates])

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        batch = await super()._ascore(query, candidates)
        return self._flag(batch, [c.text for c in candidates])

    def _flag(self, batch: ScoreBatch, texts: Sequence[str]) -> ScoreBatch:
        limit = self.max_document_chars
        if limit is None:
            return batch
        return ScoreBatch(batch.raw, truncated=[len(t) > limit for t in texts], usage=batch.usage)

    def _check_windows(self, meter: UsageMeter, windows: int) -> None:
        meter.note("windows", windows)
        if windows and int(meter.details.get("unparsed_windows", 0)) == windows:
            raise MalformedResponseError(
                f"{self._describe()}: none of the {windows} listwise answers held a document id",
                reranker=self._describe(),
                attempts=meter.requests,
            )

    def _judgements(
        self, query: str, texts: Sequence[str], ask: _Ask[R]
    ) -> list[Callable[[float], R]]:
        """The pointwise jobs: one ``ask`` per document."""
        return [
            partial(ask, self._pointwise_messages(query, t), max_tokens=8, logprobs=self.logprobs)
            for t in texts
        ]

    def _ranking(
        self, query: str, texts: Sequence[str], window: list[int], ask: _Ask[R]
    ) -> Callable[[float], R]:
        """The listwise job ranking the documents at positions ``window``."""
        messages = self._listwise_messages(query, [texts[i] for i in window])
        return partial(ask, messages, max_tokens=6 * len(window) + 16, logprobs=False)

    # ``ask`` below is the one request; the rest of each mode is the same, sync and async.

    def _score_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        meter.note("mode", self.mode)
        client = self._client()

        def ask(messages: Messages, timeout: float, *, max_tokens: int, logprobs: bool) -> Answer:
            kwargs = self._request(messages, timeout, max_tokens=max_tokens, logprobs=logprobs)
            with capture_body() as body:
                response = client.chat.completions.create(**kwargs)
            return self._read(body.or_else(response), meter)

        if self.mode == "pointwise":
            jobs = self._judgements(query, texts, ask)
            answers = self.resilience.call_all(
                jobs, deadline=deadline, meter=meter, what=_judgement_label
            )
            return self._pointwise_scores(answers, meter)
        order = list(range(len(texts)))
        windows = self._windows(len(texts))
        for number, (start, end) in enumerate(windows, start=1):
            job = self._ranking(query, texts, order[start:end], ask)
            what = _window_label(number, len(windows))
            content, _ = self.resilience.call(job, deadline=deadline, meter=meter, what=what)
            self._apply(order, start, end, content, meter)
        self._check_windows(meter, len(windows))
        return self._rank_scores(order)

    async def _ascore_remote(
        self, query: str, texts: Sequence[str], deadline: Deadline, meter: UsageMeter
    ) -> list[float]:
        meter.note("mode", self.mode)
        client = self._aclient()

        async def ask(
            messages: Messages, timeout: float, *, max_tokens: int, logprobs: bool
        ) -> Answer:
            kwargs = self._request(messages, timeout, max_tokens=max_tokens, logprobs=logprobs)
            with capture_body() as body:
                response = await client.chat.completions.create(**kwargs)
            return self._read(body.or_else(response), meter)

        if self.mode == "pointwise":
            jobs = self._judgements(query, texts, ask)
            answers = await self.resilience.acall_all(
                jobs, deadline=deadline, meter=meter, what=_judgement_label
            )
            return self._pointwise_scores(answers, meter)
        order = list(range(len(texts)))
        windows = self._windows(len(texts))
        for number, (start, end) in enumerate(windows, start=1):
            job = self._ranking(query, texts, order[start:end], ask)
            what = _window_label(number, len(windows))
            content, _ = await self.resilience.acall(job, deadline=deadline, meter=meter, what=what)
            self._apply(order, start, end, content, meter)
        self._check_windows(meter, len(windows))
        return self._rank_scores(order)


def _judgement_label(i: int) -> str:
    return f"POST /chat/completions (pointwise, document {i})"


def _window_label(number: int, total: int) -> str:
    return f"POST /chat/completions (listwise, window {number} of {total})"
