"""Fake rerank and chat APIs speaking the real wire formats, for the loopback server.

* :class:`FakeCohere`: Cohere v2 ``POST /v2/rerank`` and the Cohere-compatible ``POST /rerank``
  that Infinity serves (``{"results": [{"index", "relevance_score"}], ...}``).
* :class:`FakeTEI`: Text Embeddings Inference ``POST /rerank`` (``[{"index", "score"}]``).
* :class:`FakeOpenAI`: OpenAI ``POST /v1/chat/completions`` with ``logprobs``/``top_logprobs``,
  acting as a small deterministic "LLM" that reads rerankit's prompt format: it judges or ranks
  documents by word overlap, and, like a gullible model, obeys an "ignore previous instructions"
  line when it finds one *outside* a delimited document.

Scores come from :func:`relevance`, so tests can compute the expected order locally.
"""

from __future__ import annotations

import html
import json
import math
import re
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from tests.loopback.server import Reply, Request

__all__ = ["FakeCohere", "FakeOpenAI", "FakeTEI", "expected_order", "relevance"]

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def relevance(query: str, text: str) -> float:
    """Deterministic relevance in (0, 1): word overlap plus a small per-text tie-breaker."""
    q = _words(query)
    overlap = len(q & _words(text)) / len(q) if q else 0.0
    jitter = (zlib.crc32(text.encode("utf-8")) % 9973) / 9973 * 0.04
    return round(0.03 + 0.9 * overlap + jitter, 6)


def expected_order(query: str, texts: list[str]) -> list[int]:
    """Input indices sorted as the fake servers score them, best first."""
    return sorted(range(len(texts)), key=lambda i: (-relevance(query, texts[i]), i))


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"message": message})


# -- Cohere and Cohere-compatible (Infinity) -----------------------------------------------------


class FakeCohere:
    """``POST /v2/rerank`` (Cohere) and ``POST /rerank`` (Infinity flavour) handler."""

    def __init__(self, *, max_documents: int = 1000, flavour: str = "cohere") -> None:
        self.max_documents = max_documents
        self.flavour = flavour

    def __call__(self, request: Request) -> Reply:
        if request.path not in ("/v2/rerank", "/rerank"):
            return _error(404, f"no route {request.path}")
        try:
            body = request.json()
            query, documents = body["query"], body["documents"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid request")
        if len(documents) > self.max_documents:
            return _error(400, f"too many documents: {len(documents)} > {self.max_documents}")
        scored: list[dict[str, Any]] = [
            {"index": i, "relevance_score": relevance(query, d)} for i, d in enumerate(documents)
        ]
        scored.sort(key=lambda r: (-r["relevance_score"], r["index"]))
        top_n = body.get("top_n")
        if isinstance(top_n, int):
            scored = scored[:top_n]
        if self.flavour == "infinity":
            tokens = sum(len(d.split()) + len(query.split()) for d in documents)
            for r in scored:
                r["document"] = None
            return Reply(
                200,
                {
                    "object": "rerank",
                    "results": scored,
                    "model": body.get("model") or "bge-reranker",
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                    "id": "infinity-1",
                    "created": int(time.time()),
                },
            )
        return Reply(
            200,
            {
                "id": "rerank-1",
                "results": scored,
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"search_units": 1},
                },
            },
        )


# -- Text Embeddings Inference ---------------------------------------------------------------


class FakeTEI:
    """Text Embeddings Inference ``POST /rerank``: ``[{"index", "score"}]`` sorted by score."""

    def __init__(self, *, max_client_batch_size: int = 32) -> None:
        self.max_client_batch_size = max_client_batch_size

    def __call__(self, request: Request) -> Reply:
        if request.path != "/rerank":
            return _error(404, f"no route {request.path}")
        body = request.json()
        texts = body["texts"]
        if len(texts) > self.max_client_batch_size:
            return Reply(
                413,
                {
                    "error": f"batch size {len(texts)} > maximum allowed batch size "
                    f"{self.max_client_batch_size}",
                    "error_type": "Validation",
                },
            )
        raw = bool(body.get("raw_scores"))
        out = []
        for i, t in enumerate(texts):
            p = relevance(body["query"], t)
            out.append({"index": i, "score": math.log(p / (1 - p)) if raw else p})
        out.sort(key=lambda r: (-r["score"], r["index"]))
        return Reply(200, out)


# -- OpenAI chat completions ----------------------------------------------------------------

_QUERY = re.compile(r"<query>\n(.*?)\n</query>", re.S)
_POINT_DOC = re.compile(r"<document>\n(.*?)\n</document>", re.S)
_LIST_DOC = re.compile(r'<document id="(\d+)">\n(.*?)\n</document>', re.S)
_OBEY_RANK = re.compile(r"rank \[(\d+)\] first", re.I)


def _token(text: str, logprob: float) -> dict[str, Any]:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode())}


class FakeOpenAI:
    """``POST /v1/chat/completions``: a deterministic stand-in for an instruction-following LLM.

    Knobs (set them on the instance, they apply to later requests):

    * ``logprobs``: return token logprobs when asked (a server without logprobs support sets
      this to False and answers ``"logprobs": null``);
    * ``listwise_output``: ``f(ranking ids) -> str``, to emit malformed rankings;
    * ``pointwise_output``: ``f(p) -> str``, to emit malformed judgements.
    """

    def __init__(self) -> None:
        self.logprobs = True
        self.listwise_output: Callable[[list[int]], str] | None = None
        self.pointwise_output: Callable[[float], str] | None = None
        self._lock = threading.Lock()
        self._n = 0

    def __call__(self, request: Request) -> Reply:
        if request.path != "/v1/chat/completions":
            return _error(404, f"no route {request.path}")
        body = request.json()
        messages = body["messages"]
        user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        qm = _QUERY.search(user)
        query = html.unescape(qm.group(1)) if qm else ""
        # What a gullible model would read as instructions: everything outside the blocks.
        outside = _LIST_DOC.sub("", _POINT_DOC.sub("", _QUERY.sub("", user)))
        injected = "ignore previous instructions" in outside.lower()
        docs = _LIST_DOC.findall(user)
        if docs:
            content, logprobs = self._listwise(query, docs, outside if injected else None)
        else:
            dm = _POINT_DOC.search(user)
            document = html.unescape(dm.group(1)) if dm else ""
            p = 0.999 if injected else relevance(query, document)
            content, logprobs = self._pointwise(p, body)
        with self._lock:
            self._n += 1
            n = self._n
        prompt_tokens = len(user.split()) + sum(len(m["content"].split()) for m in messages[:-1])
        completion_tokens = max(1, len(content.split()))
        return Reply(
            200,
            {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "logprobs": logprobs,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _pointwise(self, p: float, body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        grade = round(p * 10)
        answer = "yes" if p >= 0.5 else "no"
        content = f"{answer} {grade}"
        if self.pointwise_output is not None:
            content = self.pointwise_output(p)
        if not (self.logprobs and body.get("logprobs")):
            return content, None
        lp_yes, lp_no = math.log(p), math.log(1 - p)
        first = _token(answer, lp_yes if answer == "yes" else lp_no)
        first["top_logprobs"] = [
            _token("yes", lp_yes),
            _token("no", lp_no),
            _token("Yes", lp_yes - 9.0),
        ][: int(body.get("top_logprobs") or 0) or 1]
        rest = [_token(" ", -0.01), _token(str(grade), -0.2)]
        for t in rest:
            t["top_logprobs"] = []
        return content, {"content": [first, *rest], "refusal": None}

    def _listwise(
        self, query: str, docs: list[tuple[str, str]], injected: str | None
    ) -> tuple[str, None]:
        scored = [(int(i), relevance(query, html.unescape(t))) for i, t in docs]
        ranking = [i for i, _ in sorted(scored, key=lambda x: (-x[1], x[0]))]
        if injected is not None:
            for m in _OBEY_RANK.finditer(injected):
                k = int(m.group(1))
                if k in ranking:
                    ranking.remove(k)
                    ranking.insert(0, k)
        if self.listwise_output is not None:
            return self.listwise_output(ranking), None
        return " > ".join(f"[{i}]" for i in ranking), None


def chat_json(content: str) -> str:
    """A minimal valid chat completion body (for hand-built replies)."""
    return json.dumps(
        {
            "id": "chatcmpl-x",
            "object": "chat.completion",
            "created": 0,
            "model": "fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
    )
