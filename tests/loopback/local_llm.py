"""An OpenAI-compatible ``/v1/chat/completions`` backed by a real local model, for the loopback
server: real generated tokens and real logprobs instead of scripted replies.

:class:`LocalOpenAI` answers each request with :class:`rerankit.rag.LocalGenerator` (greedy),
honouring ``max_tokens`` (capped by ``max_tokens_cap`` to keep tests fast), ``stop``,
``logprobs`` and ``top_logprobs`` (from the model's next-token distribution at each step), in
the wire format of the OpenAI API (``choices[0].message``, ``choices[0].logprobs.content``,
``usage``). ``developer`` messages are sent to the model as ``system`` ones.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rerankit.rag import LocalGenerator
from tests.loopback.server import Reply, Request

__all__ = ["LocalOpenAI"]


def _token(text: str, logprob: float) -> dict[str, Any]:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode())}


class LocalOpenAI:
    """``POST /v1/chat/completions`` answered by a local model; records nothing itself (the
    :class:`~tests.loopback.server.LoopbackServer` records the requests)."""

    def __init__(self, generator: LocalGenerator, *, max_tokens_cap: int = 24) -> None:
        self.generator = generator
        self.max_tokens_cap = max_tokens_cap
        self._lock = threading.Lock()  # one generation at a time: the CPU is the limit anyway
        self._n = 0

    def __call__(self, request: Request) -> Reply:
        if request.path != "/v1/chat/completions":
            return Reply(404, {"error": {"message": f"no route {request.path}"}})
        body = request.json()
        messages = [
            ("system" if m["role"] == "developer" else m["role"], m.get("content") or "")
            for m in body["messages"]
        ]
        limit = min(int(body.get("max_tokens") or self.max_tokens_cap), self.max_tokens_cap)
        stop = body.get("stop")
        top = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
        with self._lock:
            generation = self.generator.generate(
                messages,
                max_new_tokens=limit,
                stop=[stop] if isinstance(stop, str) else stop,
                top_logprobs=max(top, 1) if body.get("logprobs") else 0,
            )
            self._n += 1
            n = self._n
        logprobs = None
        if body.get("logprobs") and generation.logprobs is not None:
            content = []
            for token in generation.logprobs:
                entry = _token(token.token, token.logprob)
                entry["top_logprobs"] = [_token(t, lp) for t, lp in token.top[:top]]
                content.append(entry)
            logprobs = {"content": content, "refusal": None}
        usage = {
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        }
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": generation.text},
            "logprobs": logprobs,
            "finish_reason": generation.finish_reason,
        }
        return Reply(
            200,
            {
                "id": f"chatcmpl-local-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", self.generator.name),
                "choices": [choice],
                "usage": usage,
            },
        )
