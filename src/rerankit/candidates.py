"""Input hygiene: validate the query and documents, wrap strings, fold exact duplicates.

Also the one candidate rule of the framework components (:func:`candidate_from`): a LangChain
``Document`` and a LlamaIndex ``NodeWithScore`` reach the core as the same
:class:`~rerankit.Candidate` (id, text, metadata, first-stage score).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rerankit.errors import (
    ConfigurationError,
    EmptyQueryError,
    InvalidDocumentError,
    InvalidQueryError,
)
from rerankit.types import RETRIEVAL_SCORE_KEY, Candidate

__all__ = ["Document", "Prepared", "candidate_from", "prepare", "validate_query"]

Document = str | Candidate


def _encodable(text: str) -> bool:
    """False for text no model can read: lone surrogates (``"\\ud800"``) do not encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_query(query: object) -> str:
    """Return ``query`` if it is a non-blank string, else raise a typed error."""
    if not isinstance(query, str):
        raise InvalidQueryError(f"query must be a str, got {type(query).__name__}")
    if not query.strip():
        raise EmptyQueryError("query is empty")
    if not _encodable(query):
        raise InvalidQueryError(
            "query holds a lone surrogate (e.g. '\\ud800'), which is not valid Unicode text; "
            "decode the input with errors='replace'"
        )
    return query


def _finite(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def candidate_from(
    text: str,
    *,
    id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    score: float | None = None,
) -> Candidate:
    """The candidate a framework document becomes (the same rule in every component).

    ``score`` is the first-stage score the framework carries (``NodeWithScore.score``); when it
    is ``None``, a finite number under ``metadata["retrieval_score"]`` is used instead (where
    rerankit's retrievers and ``rerankit eval`` put it); anything else (``NaN``, text) counts as
    no first-stage score. The metadata is copied, not shared.

    Example:
        >>> from rerankit.candidates import candidate_from
        >>> c = candidate_from("Qdrant stores vectors.", id="q1",
        ...                    metadata={"source": "faq", "retrieval_score": 0.8})
        >>> c.id, c.retrieval_score, c.metadata["source"]
        ('q1', 0.8, 'faq')
    """
    meta = dict(metadata or {})
    given: object = meta.get(RETRIEVAL_SCORE_KEY) if score is None else score
    first_stage = float(given) if isinstance(given, numbers.Real) and _finite(given) else None
    return Candidate(text, id=id, metadata=meta, retrieval_score=first_stage)


@dataclass(frozen=True)
class Prepared:
    """Validated input: the candidates, which of them are scored, and duplicate links."""

    candidates: list[Candidate]
    unique: list[int]
    """Input indices that are scored, in input order."""
    duplicates: dict[int, int]
    """Input index of a duplicate -> input index of the scored copy."""

    @property
    def scored(self) -> list[Candidate]:
        """The candidates that are scored (``unique``), in input order."""
        return [self.candidates[i] for i in self.unique]

    @property
    def texts(self) -> list[str]:
        return [self.candidates[i].text for i in self.unique]


def _check(index: int, doc: object) -> Candidate:
    if isinstance(doc, str):
        cand = Candidate(doc)
    elif isinstance(doc, Candidate):
        cand = doc
        if not isinstance(cand.text, str):
            raise InvalidDocumentError(
                f"document {index}: Candidate.text must be a str, got {type(cand.text).__name__}",
                index=index,
            )
        if cand.id is not None and not isinstance(cand.id, str):
            raise InvalidDocumentError(
                f"document {index}: Candidate.id must be a str or None, "
                f"got {type(cand.id).__name__}",
                index=index,
            )
        if not isinstance(cand.metadata, Mapping):
            raise InvalidDocumentError(
                f"document {index}: Candidate.metadata must be a mapping, "
                f"got {type(cand.metadata).__name__}",
                index=index,
            )
        if cand.retrieval_score is not None and not _finite(cand.retrieval_score):
            raise InvalidDocumentError(
                f"document {index}: Candidate.retrieval_score must be a finite number or None, "
                f"got {cand.retrieval_score!r}",
                index=index,
            )
    else:
        raise InvalidDocumentError(
            f"document {index}: expected str or Candidate, got {type(doc).__name__}",
            index=index,
        )
    if not _encodable(cand.text):
        raise InvalidDocumentError(
            f"document {index}: the text holds a lone surrogate (e.g. '\\ud800'), which is not "
            "valid Unicode; decode the input with errors='replace'",
            index=index,
        )
    return cand


def prepare(documents: Sequence[Document], *, dedupe: bool = True) -> Prepared:
    """Validate documents and fold exact duplicates (same id, or same text)."""
    if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
        raise ConfigurationError(
            f"documents must be a sequence of str or Candidate, got {type(documents).__name__}"
        )
    candidates = [_check(index, doc) for index, doc in enumerate(documents)]
    unique: list[int] = []
    duplicates: dict[int, int] = {}
    if not dedupe:
        return Prepared(candidates, list(range(len(candidates))), duplicates)
    by_id: dict[str, int] = {}
    by_text: dict[str, int] = {}
    for index, cand in enumerate(candidates):
        first = by_id.get(cand.id) if cand.id is not None else None
        if first is None:
            first = by_text.get(cand.text)
        if first is not None:
            duplicates[index] = first
            continue
        unique.append(index)
        if cand.id is not None:
            by_id[cand.id] = index
        by_text.setdefault(cand.text, index)
    return Prepared(candidates, unique, duplicates)
