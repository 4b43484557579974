"""Input hygiene: validate the query and documents, wrap strings, fold exact duplicates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rerankit.errors import (
    ConfigurationError,
    EmptyQueryError,
    InvalidDocumentError,
    InvalidQueryError,
)
from rerankit.types import Candidate

__all__ = ["Prepared", "prepare", "validate_query"]

Document = str | Candidate


def validate_query(query: object) -> str:
    """Return ``query`` if it is a non-blank string, else raise a typed error."""
    if not isinstance(query, str):
        raise InvalidQueryError(f"query must be a str, got {type(query).__name__}")
    if not query.strip():
        raise EmptyQueryError("query is empty")
    return query


@dataclass(frozen=True)
class Prepared:
    """Validated input: the candidates, which of them are scored, and duplicate links."""

    candidates: list[Candidate]
    unique: list[int]
    """Input indices that are scored, in input order."""
    duplicates: dict[int, int]
    """Input index of a duplicate -> input index of the scored copy."""

    @property
    def texts(self) -> list[str]:
        return [self.candidates[i].text for i in self.unique]


def prepare(documents: Sequence[Document], *, dedupe: bool = True) -> Prepared:
    """Validate documents and fold exact duplicates (same id, or same text)."""
    if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
        raise ConfigurationError(
            f"documents must be a sequence of str or Candidate, got {type(documents).__name__}"
        )
    candidates: list[Candidate] = []
    for index, doc in enumerate(documents):
        if isinstance(doc, str):
            candidates.append(Candidate(doc))
        elif isinstance(doc, Candidate):
            if not isinstance(doc.text, str):
                raise InvalidDocumentError(
                    f"document {index}: Candidate.text must be a str, "
                    f"got {type(doc.text).__name__}",
                    index=index,
                )
            candidates.append(doc)
        else:
            raise InvalidDocumentError(
                f"document {index}: expected str or Candidate, got {type(doc).__name__}",
                index=index,
            )
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
