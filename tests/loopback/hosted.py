"""Fake hosted rerank APIs speaking their documented wire formats, for the loopback server.

* :class:`FakeVoyage`: Voyage ``POST /v1/rerank`` ``{"query", "documents", "model", "top_k",
  "truncation", "return_documents"}`` -> ``{"object": "list", "data": [{"relevance_score",
  "index"}], "model", "usage": {"total_tokens"}}``.
* :class:`FakeJina`: Jina ``POST /v1/rerank`` ``{"model", "query", "documents", "top_n",
  "return_documents"}`` -> ``{"model", "usage": {"total_tokens"}, "results": [{"index",
  "relevance_score"}]}``; errors as ``{"detail": ...}``.
* :class:`FakeMixedbread`: Mixedbread ``POST /v1/reranking`` ``{"model", "query", "input",
  "top_k", "return_input"}`` -> ``{"object": "list", "model", "data": [{"index", "score",
  "object": "rank_result"}], "usage": {"prompt_tokens", "total_tokens"}, "top_k",
  "return_input"}``.

Scores come from :func:`tests.loopback.apis.relevance`; each fake refuses bodies with fields
its API does not document (a client sending the wrong format fails loudly).
"""

from __future__ import annotations

from typing import Any

from tests.loopback.apis import relevance
from tests.loopback.server import Reply, Request

__all__ = ["FakeJina", "FakeMixedbread", "FakeVoyage"]


def _tokens(query: str, documents: list[str]) -> int:
    return sum(len(query.split()) + len(d.split()) for d in documents)


def _ranked(query: str, documents: list[str], key: str) -> list[dict[str, Any]]:
    rows = [{"index": i, key: relevance(query, d)} for i, d in enumerate(documents)]
    rows.sort(key=lambda r: (-r[key], r["index"]))
    return rows


class _Fake:
    path = ""
    fields: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    documents = "documents"
    max_documents = 1000

    def _error(self, status: int, message: str) -> Reply:
        return Reply(status, {"detail": message})

    def __call__(self, request: Request) -> Reply:
        if request.path != self.path:
            return self._error(404, f"no route {request.path}")
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "invalid JSON")
        if not isinstance(body, dict) or not self.required <= body.keys():
            return self._error(422, f"missing fields {sorted(self.required - set(body))}")
        unknown = set(body) - self.fields
        if unknown:
            return self._error(422, f"unknown fields {sorted(unknown)}")
        documents = body[self.documents]
        if len(documents) > self.max_documents:
            return self._error(400, f"too many documents: {len(documents)}")
        return self.answer(body, body["query"], documents)

    def answer(self, body: dict[str, Any], query: str, documents: list[str]) -> Reply:
        raise NotImplementedError


class FakeVoyage(_Fake):
    path = "/v1/rerank"
    fields = frozenset({"query", "documents", "model", "top_k", "truncation", "return_documents"})
    required = frozenset({"query", "documents", "model"})

    def answer(self, body: dict[str, Any], query: str, documents: list[str]) -> Reply:
        rows = _ranked(query, documents, "relevance_score")
        if isinstance(body.get("top_k"), int):
            rows = rows[: body["top_k"]]
        return Reply(
            200,
            {
                "object": "list",
                "data": rows,
                "model": body["model"],
                "usage": {"total_tokens": _tokens(query, documents)},
            },
        )


class FakeJina(_Fake):
    path = "/v1/rerank"
    fields = frozenset({"model", "query", "documents", "top_n", "return_documents"})
    required = frozenset({"model", "query", "documents"})

    def answer(self, body: dict[str, Any], query: str, documents: list[str]) -> Reply:
        rows = _ranked(query, documents, "relevance_score")
        if isinstance(body.get("top_n"), int):
            rows = rows[: body["top_n"]]
        tokens = _tokens(query, documents)
        return Reply(
            200,
            {"model": body["model"], "usage": {"total_tokens": tokens}, "results": rows},
        )


class FakeMixedbread(_Fake):
    path = "/v1/reranking"
    fields = frozenset(
        {"model", "query", "input", "rank_fields", "top_k", "return_input", "rewrite_query"}
    )
    required = frozenset({"model", "query", "input"})
    documents = "input"

    def _error(self, status: int, message: str) -> Reply:
        return Reply(status, {"error": {"message": message, "type": "invalid_request"}})

    def answer(self, body: dict[str, Any], query: str, documents: list[str]) -> Reply:
        rows = _ranked(query, documents, "score")
        top_k = body.get("top_k") if isinstance(body.get("top_k"), int) else len(rows)
        for row in rows:
            row["object"] = "rank_result"
        tokens = _tokens(query, documents)
        return Reply(
            200,
            {
                "object": "list",
                "model": body["model"],
                "data": rows[:top_k],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "top_k": top_k,
                "return_input": bool(body.get("return_input")),
            },
        )
