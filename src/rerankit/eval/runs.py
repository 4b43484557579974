"""Ranked lists per query (runs): read TREC run files and candidate JSONL, write TREC runs.

Two input forms are read:

* a TREC run file, one line per (query, document): ``qid Q0 docid rank score tag``;
* candidate JSONL, one line per query:
  ``{"query_id", "query", "candidates": [{"docid", "rank", "score"}, ...]}``
  (the form of ``bm25_top100.jsonl`` in the TREC DL 2019 passage folder).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from rerankit.errors import ConfigurationError, DatasetError
from rerankit.eval.beir import json_lines

__all__ = ["Run", "RunEntry", "read_run"]

RunFormat = Literal["auto", "trec", "jsonl"]


@dataclass(frozen=True, slots=True)
class RunEntry:
    """One ranked document of a run: its id, score and 1-based rank.

    Example:
        >>> from rerankit.eval import RunEntry
        >>> RunEntry("d1", 12.5, 1).doc_id
        'd1'
    """

    doc_id: str
    score: float
    rank: int


@dataclass(frozen=True)
class Run:
    """A ranked list of documents per query, best first.

    ``query_texts`` holds query texts when the run file carries them (candidate JSONL).

    Example:
        >>> from rerankit.eval import Run
        >>> run = Run.from_scores({"q1": {"d1": 0.2, "d2": 0.9}}, name="toy")
        >>> [e.doc_id for e in run["q1"]]
        ['d2', 'd1']
        >>> run.to_trec().splitlines()[0]
        'q1 Q0 d2 1 0.9 toy'
    """

    entries: Mapping[str, tuple[RunEntry, ...]]
    name: str = field(default="run", kw_only=True)
    query_texts: Mapping[str, str] = field(default_factory=dict, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.entries, Mapping):
            raise ConfigurationError("Run entries must map query ids to ranked RunEntry lists")
        for qid, ranked in self.entries.items():
            if not all(isinstance(e, RunEntry) for e in ranked):
                raise ConfigurationError(f"Run entries of query {qid!r} must be RunEntry objects")
        object.__setattr__(
            self, "entries", MappingProxyType({q: tuple(e) for q, e in self.entries.items()})
        )
        object.__setattr__(self, "query_texts", MappingProxyType(dict(self.query_texts)))

    @classmethod
    def from_scores(cls, scores: Mapping[str, Mapping[str, float]], *, name: str = "run") -> Run:
        """A run from ``{query id: {doc id: score}}``, ranked by score (ties by doc id)."""
        entries = {}
        for qid, docs in scores.items():
            ranked = sorted(docs.items(), key=lambda item: (-float(item[1]), item[0]))
            entries[qid] = tuple(
                RunEntry(doc_id, float(score), rank)
                for rank, (doc_id, score) in enumerate(ranked, start=1)
            )
        return cls(entries, name=name)

    def __getitem__(self, query_id: str) -> tuple[RunEntry, ...]:
        return self.entries[query_id]

    def __contains__(self, query_id: object) -> bool:
        return query_id in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def top(self, depth: int | None) -> Run:
        """The same run cut to its best ``depth`` documents per query (``None``: unchanged)."""
        if depth is None:
            return self
        _check_depth(depth)
        return Run(
            {q: e[:depth] for q, e in self.entries.items()},
            name=self.name,
            query_texts=self.query_texts,
        )

    def restrict(self, query_ids: Iterable[str]) -> Run:
        """The run for ``query_ids`` only (those it has)."""
        keep = [q for q in query_ids if q in self.entries]
        wanted = set(keep)
        return Run(
            {q: self.entries[q] for q in keep},
            name=self.name,
            query_texts={q: t for q, t in self.query_texts.items() if q in wanted},
        )

    def scores(self) -> dict[str, dict[str, float]]:
        """``{query id: {doc id: score}}`` with the scores as given."""
        return {q: {e.doc_id: e.score for e in entries} for q, entries in self.entries.items()}

    def rank_scores(self) -> dict[str, dict[str, float]]:
        """``{query id: {doc id: score}}`` with scores from the order (n, n-1, ..., 1).

        Evaluating these gives exactly this run's order, whatever ties its own scores have.
        """
        return {
            q: {e.doc_id: float(len(entries) - i) for i, e in enumerate(entries)}
            for q, entries in self.entries.items()
        }

    def to_trec(self, tag: str | None = None) -> str:
        """The run as TREC run-file text (``qid Q0 docid rank score tag``)."""
        tag = (tag or self.name).replace(" ", "_") or "run"
        lines = [
            f"{q} Q0 {e.doc_id} {e.rank} {e.score:.6g} {tag}"
            for q, entries in self.entries.items()
            for e in entries
        ]
        return "\n".join(lines) + ("\n" if lines else "")

    def write_trec(self, path: str | Path, tag: str | None = None) -> None:
        """Write :meth:`to_trec` to ``path``."""
        Path(path).write_text(self.to_trec(tag), encoding="utf-8")


def _check_depth(depth: int) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigurationError(f"depth must be a positive int or None, got {depth!r}")


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DatasetError(f"{where}: {what} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise DatasetError(f"{where}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise DatasetError(f"{where}: {what} must be finite, got {value!r}")
    return number


def _finish(
    rows: dict[str, list[tuple[float, float, str]]], path: Path
) -> dict[str, tuple[RunEntry, ...]]:
    """Sort each query's (score, rank, doc) rows best first and renumber ranks 1..n."""
    entries = {}
    for qid, items in rows.items():
        items.sort(key=lambda row: (-row[0], row[1]))
        seen: set[str] = set()
        for _, _, doc_id in items:
            if doc_id in seen:
                raise DatasetError(f"{path}: query {qid!r} lists document {doc_id!r} twice")
            seen.add(doc_id)
        entries[qid] = tuple(
            RunEntry(doc_id, score, rank) for rank, (score, _, doc_id) in enumerate(items, start=1)
        )
    return entries


def _read_trec(path: Path, lines: list[str]) -> Run:
    rows: dict[str, list[tuple[float, float, str]]] = {}
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise DatasetError(
                f"{path}:{number}: a TREC run line has 6 columns "
                f"(qid Q0 docid rank score tag), got {len(parts)}"
            )
        qid, _, doc_id, rank, score, _ = parts
        where = f"{path}:{number}"
        rows.setdefault(qid, []).append(
            (_number(score, "score", where), _number(rank, "rank", where), doc_id)
        )
    if not rows:
        raise DatasetError(f"{path}: the run is empty")
    return Run(_finish(rows, path), name=path.stem)


def _read_jsonl(path: Path, lines: list[str]) -> Run:
    rows: dict[str, list[tuple[float, float, str]]] = {}
    texts: dict[str, str] = {}
    for number, record in json_lines(lines, path):
        where = f"{path}:{number}"
        qid = record.get("query_id")
        candidates = record.get("candidates")
        if isinstance(qid, bool) or not isinstance(qid, str | int):
            raise DatasetError(f"{where}: missing 'query_id'")
        if not isinstance(candidates, list):
            raise DatasetError(f"{where}: missing 'candidates' list")
        qid = str(qid)
        if qid in rows:
            raise DatasetError(f"{where}: query {qid!r} appears twice")
        query = record.get("query")
        if isinstance(query, str) and query.strip():
            texts[qid] = query
        items = rows.setdefault(qid, [])
        for position, cand in enumerate(candidates, start=1):
            doc_id = cand.get("docid") if isinstance(cand, dict) else None
            if isinstance(doc_id, bool) or not isinstance(doc_id, str | int):
                raise DatasetError(f"{where}: candidate {position} has no 'docid'")
            rank = _number(cand.get("rank", position), "rank", where)
            # No score: the order is the ranking (scores fall with the rank).
            score = _number(cand.get("score", -rank), "score", where)
            items.append((score, rank, str(doc_id)))
    if not rows:
        raise DatasetError(f"{path}: the run is empty")
    return Run(_finish(rows, path), name=path.stem, query_texts=texts)


def read_run(path: str | Path, *, format: RunFormat = "auto") -> Run:
    """Read a first-stage run: a TREC run file or candidate JSONL (``format="auto"`` sniffs).

    Each query's documents are ordered by score, best first, ties by the file's rank; ranks
    are renumbered 1..n in that order. A document listed twice for one query is an error.

    Raises:
        DatasetError: the file is missing or a line is malformed (the message has the line).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "bm25.run"
        >>> _ = p.write_text("q1 Q0 d7 1 12.5 bm25\\nq1 Q0 d3 2 11.0 bm25\\n")
        >>> [(e.doc_id, e.rank) for e in read_run(p)["q1"]]
        [('d7', 1), ('d3', 2)]
    """
    if format not in ("auto", "trec", "jsonl"):
        raise ConfigurationError(f"format must be 'auto', 'trec' or 'jsonl', got {format!r}")
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read run {path}: {exc}") from exc
    if format == "auto":
        first = next((line.lstrip() for line in lines if line.strip()), "")
        format = "jsonl" if first.startswith("{") else "trec"
    return _read_jsonl(path, lines) if format == "jsonl" else _read_trec(path, lines)
