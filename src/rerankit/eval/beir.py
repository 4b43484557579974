"""Loading BEIR-layout folders: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

The layout (as distributed by BEIR)::

    corpus.jsonl      one JSON object a line: {"_id", "title", "text"}
    queries.jsonl     one JSON object a line: {"_id", "text"}
    qrels/test.tsv    tab-separated, header "query-id  corpus-id  score"

Nothing is copied or converted: the folder is read where it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rerankit.errors import ConfigurationError, DatasetError

__all__ = ["BeirDataset", "BeirDocument", "load_beir", "read_qrels"]


@dataclass(frozen=True, slots=True)
class BeirDocument:
    """One corpus document: its ``title`` (often empty) and ``text``.

    Example:
        >>> from rerankit.eval import BeirDocument
        >>> BeirDocument("Qdrant", "A vector database.").full_text
        'Qdrant A vector database.'
    """

    title: str
    text: str

    @property
    def full_text(self) -> str:
        """``title + " " + text`` when there is a title, else ``text``: what models read.

        This is BEIR's own convention for dense retrieval and reranking.
        """
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True, kw_only=True)
class BeirDataset:
    """A BEIR-layout dataset, loaded: corpus, queries and the qrels of one split.

    Build it with :func:`load_beir`. ``qrels`` maps query id -> document id -> graded
    relevance (``0`` is judged non-relevant).

    Example:
        >>> from rerankit.eval import BeirDataset, BeirDocument
        >>> data = BeirDataset(
        ...     corpus={"d1": BeirDocument("Qdrant", "A vector database.")},
        ...     queries={"q1": "what is qdrant"},
        ...     qrels={"q1": {"d1": 1}},
        ... )
        >>> data.text("d1"), data.judged_queries()
        ('Qdrant A vector database.', ['q1'])
    """

    corpus: Mapping[str, BeirDocument]
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]
    name: str = "dataset"
    split: str = "test"
    path: Path | None = None
    skipped: Mapping[str, int] = field(default_factory=dict)
    """What loading left out and why (e.g. ``{"qrels without query text": 2}``)."""

    def __post_init__(self) -> None:
        for attr in ("corpus", "queries", "qrels", "skipped"):
            if not isinstance(getattr(self, attr), Mapping):
                raise ConfigurationError(f"BeirDataset.{attr} must be a mapping")
            object.__setattr__(self, attr, MappingProxyType(dict(getattr(self, attr))))
        for doc_id, doc in self.corpus.items():
            if not isinstance(doc, BeirDocument):
                raise ConfigurationError(
                    f"corpus[{doc_id!r}] must be a BeirDocument, got {type(doc).__name__}"
                )
        for qid, judged in self.qrels.items():
            if not isinstance(judged, Mapping) or not all(
                isinstance(g, int) and not isinstance(g, bool) for g in judged.values()
            ):
                raise ConfigurationError(f"qrels[{qid!r}] must map document ids to int grades")
        object.__setattr__(
            self, "qrels", MappingProxyType({q: dict(d) for q, d in self.qrels.items()})
        )

    def text(self, doc_id: str) -> str:
        """The text a model reads for ``doc_id`` (see :attr:`BeirDocument.full_text`)."""
        try:
            return self.corpus[doc_id].full_text
        except KeyError:
            raise DatasetError(f"{self.name}: document {doc_id!r} is not in the corpus") from None

    def judged_queries(self) -> list[str]:
        """Ids of the queries that have qrels in this split and a text, in ``queries`` order."""
        return [qid for qid in self.queries if qid in self.qrels]

    def corpus_texts(self) -> tuple[list[str], list[str]]:
        """``(ids, texts)`` of the whole corpus, in file order."""
        ids = list(self.corpus)
        return ids, [self.corpus[i].full_text for i in ids]


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    with handle:
        yield from json_lines(handle, path)


def json_lines(lines: Iterable[str], path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON object of each non-blank line of ``path``, with its 1-based line number.

    Raises:
        DatasetError: a line is not valid JSON or not an object (the message says ``path:line``).
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path}:{number}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}:{number}: expected a JSON object")
        yield number, record


def _field(record: Mapping[str, Any], key: str, path: Path, number: int) -> str:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DatasetError(f"{path}:{number}: missing or non-string {key!r}")
    return str(value)


def _read_corpus(path: Path) -> dict[str, BeirDocument]:
    corpus: dict[str, BeirDocument] = {}
    for number, record in _jsonl(path):
        doc_id = _field(record, "_id", path, number)
        text = record.get("text")
        title = record.get("title") or ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise DatasetError(f"{path}:{number}: 'text' and 'title' must be strings")
        if doc_id in corpus:
            raise DatasetError(f"{path}:{number}: duplicate document id {doc_id!r}")
        corpus[doc_id] = BeirDocument(title=title, text=text)
    return corpus


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, record in _jsonl(path):
        qid = _field(record, "_id", path, number)
        text = _field(record, "text", path, number)
        if qid in queries:
            raise DatasetError(f"{path}:{number}: duplicate query id {qid!r}")
        queries[qid] = text
    return queries


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a qrels file: BEIR ``query-id corpus-id score`` (header optional) or TREC 4-column.

    Columns are split on tabs or spaces. Relevance grades must be integers.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "test.tsv"
        >>> _ = p.write_text("query-id\\tcorpus-id\\tscore\\nq1\\td1\\t2\\nq1\\td2\\t0\\n")
        >>> read_qrels(p)
        {'q1': {'d1': 2, 'd2': 0}}
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read qrels {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 4:  # TREC: query-id iteration doc-id relevance
            parts = [parts[0], parts[2], parts[3]]
        if len(parts) != 3:
            raise DatasetError(
                f"{path}:{number}: expected 3 columns (query-id corpus-id score), got {len(parts)}"
            )
        qid, doc_id, grade = parts
        try:
            relevance = int(grade)
        except ValueError:
            if number == 1:  # the header line
                continue
            raise DatasetError(f"{path}:{number}: relevance {grade!r} is not an integer") from None
        qrels.setdefault(qid, {})[doc_id] = relevance
    if not qrels:
        raise DatasetError(f"{path}: no judgements")
    return qrels


def load_beir(path: str | Path, *, split: str = "test") -> BeirDataset:
    """Load a BEIR-layout folder with the qrels of ``split`` (``qrels/<split>.tsv``).

    Qrels of queries absent from ``queries.jsonl`` are left out (counted in
    :attr:`BeirDataset.skipped`); judged documents absent from the corpus are kept, so they still
    count in the ideal DCG (as when a corpus holds only a first stage's candidates).

    Raises:
        DatasetError: the folder, a file or the split is missing, or a line is malformed.

    Example:
        >>> from rerankit.eval import load_beir
        >>> data = load_beir("path/to/scifact", split="test")  # doctest: +SKIP
    """
    if not isinstance(split, str) or not split or "/" in split or "\\" in split:
        raise ConfigurationError(f"split must be a plain name such as 'test', got {split!r}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder (expected the BEIR layout)")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (root / name).is_file():
            raise DatasetError(f"{root} has no {name} (expected the BEIR layout)")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        found = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise DatasetError(
            f"{root} has no qrels/{split}.tsv; splits found: {', '.join(found) or 'none'}"
        )
    corpus = _read_corpus(root / "corpus.jsonl")
    queries = _read_queries(root / "queries.jsonl")
    qrels = read_qrels(qrels_path)
    missing = [qid for qid in qrels if qid not in queries]
    for qid in missing:
        del qrels[qid]
    skipped = {"qrels without query text": len(missing)} if missing else {}
    if not qrels:
        raise DatasetError(f"{qrels_path}: none of the judged queries is in queries.jsonl")
    return BeirDataset(
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        name=root.name,
        split=split,
        path=root,
        skipped=skipped,
    )
