"""The demo's documents: the built-in corpus, or the user's own (``rerankit demo --corpus``).

A user corpus is a JSONL file, one document per line with ``id`` (or ``_id``), ``text`` and
an optional ``title``, or a BEIR folder (``corpus.jsonl`` with ``_id``, ``title``, ``text``;
``queries.jsonl`` optional, whose first queries the demo runs when no ``--query`` is given).
A document's text is its title and text (as BEIR evaluations read it); the title is also kept
in ``metadata["title"]`` for a title-only first stage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerankit.demo.corpus import PASSAGES, QUERIES
from rerankit.errors import DatasetError
from rerankit.eval.beir import json_lines
from rerankit.qdrant.names import TITLE_KEY
from rerankit.types import Candidate

__all__ = ["BEIR_QUERIES", "DemoCorpus", "builtin_corpus", "load_corpus"]

BEIR_QUERIES = 5
"""How many of a BEIR folder's queries the demo runs when no ``--query`` is given."""


@dataclass(frozen=True)
class DemoCorpus:
    """Documents to search, their name in reports, and the queries that come with them.

    Example:
        >>> from rerankit.demo.documents import builtin_corpus
        >>> corpus = builtin_corpus()
        >>> corpus.name, len(corpus.documents), corpus.has_titles
        ('built-in corpus', 25, False)
    """

    name: str
    documents: tuple[Candidate, ...]
    queries: tuple[str, ...]
    builtin: bool = False

    @property
    def has_titles(self) -> bool:
        """True when some document has a title."""
        return any(d.metadata.get(TITLE_KEY) for d in self.documents)

    def fingerprint(self) -> str:
        """A short hash of the documents (ids, titles, texts)."""
        digest = hashlib.sha256()
        for doc in self.documents:
            for part in (doc.id or "", str(doc.metadata.get(TITLE_KEY) or ""), doc.text):
                digest.update(part.encode("utf-8", "surrogatepass"))
                digest.update(b"\x00")
        return digest.hexdigest()[:16]


def builtin_corpus() -> DemoCorpus:
    """The built-in passages (with near-miss distractors) and their example queries."""
    return DemoCorpus(
        name="built-in corpus",
        documents=tuple(Candidate(text, id=doc_id) for doc_id, text in PASSAGES),
        queries=tuple(QUERIES),
        builtin=True,
    )


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        yield from json_lines(handle, path)


def _text(row: dict[str, Any], key: str, path: Path, number: int) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DatasetError(f"{path}:{number}: {key!r} must be a string")
    return value.strip()


def _documents(path: Path) -> list[Candidate]:
    documents = []
    for number, row in _lines(path):
        raw_id = row.get("id", row.get("_id"))
        if raw_id is None or str(raw_id).strip() == "":
            raise DatasetError(f"{path}:{number}: no 'id' (or '_id')")
        title, text = _text(row, "title", path, number), _text(row, "text", path, number)
        if not text and not title:
            raise DatasetError(f"{path}:{number}: no 'text' (document {raw_id!r})")
        body = " ".join(part for part in (title, text) if part)
        metadata = {TITLE_KEY: title} if title else {}
        documents.append(Candidate(body, id=str(raw_id), metadata=metadata))
    if not documents:
        raise DatasetError(f"{path}: no documents")
    return documents


def _queries(path: Path, limit: int) -> list[str]:
    queries: list[str] = []
    for number, row in _lines(path):
        text = _text(row, "text", path, number)
        if text:
            queries.append(text)
        if len(queries) == limit:
            break
    return queries


def load_corpus(path: str | Path, *, queries: int = BEIR_QUERIES) -> DemoCorpus:
    """A user corpus: a JSONL file, or a BEIR folder (``corpus.jsonl``, ``queries.jsonl``).

    Raises:
        DatasetError: the path is missing, or a line is malformed (the error names the file
            and the line).
    """
    folder = Path(path).expanduser()
    if folder.is_dir():
        corpus_file = folder / "corpus.jsonl"
        if not corpus_file.is_file():
            raise DatasetError(
                f"{folder} has no corpus.jsonl: pass a BEIR folder or a JSONL file of "
                '{"id", "text", "title"} lines'
            )
        query_file = folder / "queries.jsonl"
        found: Sequence[str] = _queries(query_file, queries) if query_file.is_file() else ()
        return DemoCorpus(folder.name, tuple(_documents(corpus_file)), tuple(found))
    if not folder.is_file():
        raise DatasetError(
            f'corpus {folder} does not exist: pass a JSONL file of {{"id", "text", '
            '"title"} lines or a BEIR folder'
        )
    return DemoCorpus(folder.stem, tuple(_documents(folder)), ())
