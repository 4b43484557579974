"""The wire formats ``rerankit serve`` speaks: request bodies in, answers out.

* **Cohere v2** ``POST /v2/rerank``: ``{"model", "query", "documents", "top_n",
  "max_tokens_per_doc", "priority"}`` (what the ``cohere`` SDK sends) answered with
  ``{"id", "results": [{"index", "relevance_score"}], "meta"}``.
* **TEI** ``POST /rerank`` with ``texts``: ``{"query", "texts", "raw_scores", "return_text",
  "truncate", "truncation_direction"}`` answered with ``[{"index", "score"}]``.
* **Infinity / Jina** ``POST /rerank`` with ``documents``: ``{"model", "query", "documents",
  "top_n", "return_documents", "raw_scores"}`` answered with ``{"object": "rerank", "results":
  [{"index", "relevance_score"}], "model", ...}`` (what ``HTTPReranker(api="cohere")`` sends).

Each body also takes two rerankit fields: ``min_score`` (a threshold on the calibrated score)
and, for Cohere and Infinity bodies, ``return_documents``. Every score is rerankit's calibrated
score in [0, 1] (``raw_scores=True`` gives the backend's raw score instead). Bodies are read
strictly: an unknown field, a wrong JSON type or an empty query is a :class:`WireError` naming
the field, which the app answers with 422.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rerankit.types import RerankResult, RerankResults

__all__ = [
    "CohereRequest",
    "InfinityRequest",
    "Parsed",
    "TEIRequest",
    "WireError",
    "parse_cohere",
    "parse_rerank",
    "render",
]

Format = Literal["cohere", "tei", "infinity"]


class WireError(Exception):
    """A request body that cannot be served: ``field`` names where (``"documents.3"``)."""

    def __init__(self, field: str, message: str, *, status: int = 422) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.status = status


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TextDocument(_Strict):
    """A document given as an object (Cohere v1 and Jina style)."""

    text: str


class CohereRequest(_Strict):
    """The Cohere v2 rerank body."""

    query: str
    documents: list[str | TextDocument] = Field(min_length=1)
    model: str | None = None
    top_n: int | None = Field(default=None, ge=1)
    max_tokens_per_doc: int | None = Field(default=None, ge=1)
    priority: int | None = None
    return_documents: bool = False
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)


class InfinityRequest(_Strict):
    """The Cohere-compatible ``/rerank`` body of Infinity and Jina."""

    query: str
    documents: list[str | TextDocument] = Field(min_length=1)
    model: str | None = None
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False
    raw_scores: bool = False
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)


class TEIRequest(_Strict):
    """The Text Embeddings Inference ``/rerank`` body."""

    query: str
    texts: list[str] = Field(min_length=1)
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool = False
    truncation_direction: Literal["Right", "right"] = "Right"
    top_n: int | None = Field(default=None, ge=1)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)


@dataclass(frozen=True)
class Parsed:
    """One request, read: its format, query, texts and what the answer must hold."""

    format: Format
    query: str
    texts: list[str]
    top_n: int | None
    min_score: float | None
    return_documents: bool
    raw_scores: bool
    model: str | None


def _field_of(error: ValidationError) -> tuple[str, str]:
    first = error.errors(include_url=False)[0]
    location = [str(part) for part in first.get("loc", ())]
    # A union's branch name ("str", "TextDocument") is not part of the path the user wrote.
    location = [p for p in location if p not in ("str", "TextDocument")]
    kind = first.get("type", "")
    message = str(first.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "json_invalid":
        return "", f"the body is not valid JSON ({first.get('ctx', {}).get('error', message)})"
    elif kind == "model_type":
        return "", "the body must be a JSON object"
    return ".".join(location), message


def _validated(model: type[_Strict], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        field, message = _field_of(exc)
        raise WireError(field, message, status=400 if not field else 422) from None


def _query(query: str) -> str:
    if not query.strip():
        raise WireError("query", "must be a non-empty string")
    return query


def _texts(documents: Sequence[str | TextDocument]) -> list[str]:
    return [d if isinstance(d, str) else d.text for d in documents]


def parse_cohere(body: bytes) -> Parsed:
    """A Cohere v2 body (``/v2/rerank``)."""
    request: CohereRequest = _validated(CohereRequest, body)
    return Parsed(
        "cohere",
        _query(request.query),
        _texts(request.documents),
        request.top_n,
        request.min_score,
        request.return_documents,
        False,
        request.model,
    )


def parse_rerank(body: bytes) -> Parsed:
    """A ``/rerank`` body: TEI's (``texts``) or Infinity's and Jina's (``documents``)."""
    import json

    try:
        shape = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError("", f"the body is not valid JSON ({exc})", status=400) from None
    if not isinstance(shape, dict):
        raise WireError("", "the body must be a JSON object", status=400)
    if "texts" in shape or "documents" not in shape:
        tei: TEIRequest = _validated(TEIRequest, body)
        return Parsed(
            "tei",
            _query(tei.query),
            list(tei.texts),
            tei.top_n,
            tei.min_score,
            tei.return_text,
            tei.raw_scores,
            None,
        )
    request: InfinityRequest = _validated(InfinityRequest, body)
    return Parsed(
        "infinity",
        _query(request.query),
        _texts(request.documents),
        request.top_n,
        request.min_score,
        request.return_documents,
        request.raw_scores,
        request.model,
    )


# -- answers -------------------------------------------------------------------------------


def ranked(results: RerankResults, n: int, top_n: int | None) -> list[tuple[int, RerankResult]]:
    """``(input index, result)`` best first, duplicates of a kept document right after it
    (with its score), cut to ``top_n``."""
    followers: dict[int, list[int]] = {}
    for duplicate, kept in sorted(results.duplicates.items()):
        followers.setdefault(kept, []).append(duplicate)
    rows: list[tuple[int, RerankResult]] = []
    for result in results:
        rows.append((result.index, result))
        rows.extend((dup, result) for dup in followers.get(result.index, []))
    rows = [(i, r) for i, r in rows if i < n]
    return rows[:top_n] if top_n is not None else rows


def _extension(results: RerankResults) -> dict[str, Any]:
    return {
        "backend": results.backend,
        "model": results.model,
        "score_space": results.score_space,
        "dropped": len(results.dropped),
        "empty_reason": results.empty_reason,
        "fallback": results.fallback,
        "truncated": results.truncated,
    }


def render(parsed: Parsed, results: RerankResults, *, model: str) -> Any:
    """The JSON answer to ``parsed`` in its own format."""
    rows = ranked(results, len(parsed.texts), parsed.top_n)

    def score(result: RerankResult) -> float:
        return result.raw_score if parsed.raw_scores else result.score

    if parsed.format == "tei":
        out = []
        for index, result in rows:
            item: dict[str, Any] = {"index": index, "score": score(result)}
            if parsed.return_documents:
                item["text"] = parsed.texts[index]
            out.append(item)
        return out
    items = []
    for index, result in rows:
        entry: dict[str, Any] = {"index": index, "relevance_score": score(result)}
        if parsed.return_documents:
            entry["document"] = {"text": parsed.texts[index]}
        items.append(entry)
    if parsed.format == "cohere":
        return {
            "id": str(uuid.uuid4()),
            "results": items,
            "meta": {"api_version": {"version": "2"}},
            "rerankit": _extension(results),
        }
    return {
        "object": "rerank",
        "id": str(uuid.uuid4()),
        "created": int(time.time()),
        "model": parsed.model or model,
        "results": items,
        "rerankit": _extension(results),
    }
