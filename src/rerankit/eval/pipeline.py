"""Full-pipeline first stage: index a BEIR corpus into Qdrant and retrieve the top k per query.

Two first stages:

* ``"dense"``: cosine over normalised sentence-transformers embeddings (all-MiniLM-L6-v2 by
  default), exact search. Corpus and query embeddings go through an
  :class:`~rerankit.eval.EmbeddingCache`, so a second run of the same corpus encodes nothing.
* ``"bm25"``: rerankit's local BM25 sparse vectors (:mod:`rerankit.sparse`) scored by Qdrant's
  IDF modifier.

The corpus is written by rerankit's one ingester (:func:`rerankit.qdrant.ingest`: batched,
with a progress bar, idempotent by content hash) in rerankit's one layout, so the collection
also opens in :class:`rerankit.multistage.QdrantMultiStage` and the RAG builders. Documents
with the same text share one point (each of their ids is returned at its rank); documents with
no text are not indexed (a warning says how many). The store is embedded Qdrant in memory by
default; ``qdrant_path`` keeps it in a folder and ``qdrant_url`` uses a server. Collections are
named after the dataset, the first stage and a hash of the model and corpus, so different
corpora never mix; a collection holding the corpus already is reused without encoding.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from rerankit.errors import ConfigurationError, DatasetError, InvalidDocumentError, RerankWarning
from rerankit.eval._progress import iterate
from rerankit.eval.beir import BeirDataset
from rerankit.eval.cache import EmbeddingCache, _identity
from rerankit.eval.runs import Run, RunEntry
from rerankit.qdrant import (
    MEMORY,
    VECTOR_BM25,
    VECTOR_DENSE,
    DenseField,
    Encoders,
    Layout,
    SparseField,
    ingest,
    open_client,
    point_id,
)
from rerankit.qdrant.client import qdrant_models
from rerankit.qdrant.ingest import batched
from rerankit.qdrant.payload import as_records
from rerankit.sentence import default_model, load_sentence_transformer
from rerankit.sparse import BM25Encoder
from rerankit.types import Candidate

__all__ = ["Stage1", "retrieve"]

Stage1 = Literal["dense", "bm25"]
DENSE = "dense"
BM25 = "bm25"
_LAYOUT_VERSION = "layout-2"
"""Part of the collection name: collections of earlier layouts are not reused."""
_UPSERT_BATCH = 256
_QUERY_BATCH = 32


def _collection_name(dataset: BeirDataset, stage1: str, identity: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(f"{_LAYOUT_VERSION}\x00{identity}".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset.name)[:40]
    return f"rerankit-eval-{name}-{stage1}-{digest.hexdigest()[:16]}"


class _CachedCorpusEncoder:
    """The dense encoder of the corpus: the whole corpus through the embedding cache on the
    first call (one cache entry, one progress bar), then rows looked up by text."""

    def __init__(
        self,
        cache: EmbeddingCache,
        encoder: Any,
        *,
        model: str,
        corpus: Sequence[str],
        prompt: str,
        batch_size: int,
        desc: str,
    ) -> None:
        self._cache = cache
        self._encoder = encoder
        self._model = model
        self._corpus = list(corpus)
        self._prompt = prompt
        self._batch_size = batch_size
        self._desc = desc
        self._rows: dict[str, np.ndarray] | None = None

    def embed_documents(self, texts: list[str]) -> list[np.ndarray]:
        if self._rows is None:
            matrix = self._cache.embeddings(
                self._encoder,
                [self._prompt + t for t in self._corpus],
                model=self._model,
                batch_size=self._batch_size,
                desc=self._desc,
            )
            self._rows = {t: matrix[i] for i, t in enumerate(self._corpus)}
        return [self._rows[t] for t in texts]

    def embed_query(self, text: str) -> np.ndarray:  # pragma: no cover - queries are batched
        raise ConfigurationError("the corpus encoder does not encode queries")


def _records(dataset: BeirDataset) -> tuple[list[Candidate], dict[str, list[str]]]:
    """The corpus as records (blank documents left out), and the document ids of each point."""
    doc_ids, texts = dataset.corpus_texts()
    kept = [(d, t) for d, t in zip(doc_ids, texts, strict=True) if t.strip()]
    if not kept:
        raise DatasetError(f"{dataset.name}: the corpus is empty")
    if len(kept) < len(doc_ids):
        warnings.warn(
            f"{dataset.name}: {len(doc_ids) - len(kept)} documents have no text and are not "
            "indexed (they cannot match a query)",
            RerankWarning,
            stacklevel=3,
        )
    try:
        records = as_records([Candidate(t, id=d) for d, t in kept])
    except InvalidDocumentError as exc:
        raise DatasetError(
            f"{dataset.name}: corpus document {kept[exc.index][0]!r}: {exc}"
        ) from exc
    ids_by_point: dict[str, list[str]] = {}
    for record in records:
        ids_by_point.setdefault(point_id(record.text), []).append(str(record.id))
    return records, ids_by_point


def retrieve(
    dataset: BeirDataset,
    *,
    depth: int = 100,
    stage1: Stage1 = "dense",
    model: str | None = None,
    query_prompt: str = "",
    document_prompt: str = "",
    batch_size: int = 64,
    query_ids: Sequence[str] | None = None,
    qdrant_url: str | None = None,
    qdrant_path: str | None = None,
    qdrant_api_key: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
) -> Run:
    """Index ``dataset``'s corpus into Qdrant and return the top ``depth`` documents per query.

    ``query_ids`` defaults to the judged queries of the dataset's split. ``model`` (dense only)
    is a sentence-transformers hub id or folder; the default is the offline all-MiniLM-L6-v2.
    The run's scores are Qdrant's (cosine, or BM25). Where: a server at ``qdrant_url``, else
    the embedded store in the folder ``qdrant_path``, else in memory (not both).

    Example:
        >>> from rerankit.eval import load_beir, retrieve
        >>> data = load_beir("path/to/scifact")  # doctest: +SKIP
        >>> run = retrieve(data, depth=100, stage1="dense")  # doctest: +SKIP
    """
    if stage1 not in (DENSE, BM25):
        raise ConfigurationError(f"stage1 must be 'dense' or 'bm25', got {stage1!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigurationError(f"depth must be a positive int, got {depth!r}")
    if stage1 == BM25 and model is not None:
        raise ConfigurationError("model applies to the dense first stage only")
    if qdrant_url is not None and qdrant_path is not None:
        raise ConfigurationError(
            "pass a Qdrant server url or an embedded store path, not both (--qdrant-url and "
            "--qdrant-path are alternatives)"
        )
    qids = list(query_ids) if query_ids is not None else dataset.judged_queries()
    unknown = [q for q in qids if q not in dataset.queries]
    if unknown:
        raise DatasetError(f"{dataset.name}: unknown query ids {unknown[:5]}")
    if not qids:
        raise DatasetError(f"{dataset.name}: no queries to retrieve for")
    records, ids_by_point = _records(dataset)
    unique = list(dict.fromkeys(r.text for r in records))
    cache = cache if cache is not None else EmbeddingCache(progress=progress)
    models = qdrant_models()
    client = open_client(
        url=qdrant_url,
        path=None if qdrant_url is not None else (qdrant_path or MEMORY),
        api_key=qdrant_api_key,
    )
    try:
        encoders = Encoders()
        if stage1 == DENSE:
            model_name = model or default_model()
            encoder = load_sentence_transformer(
                model_name, None, "float32", False, None, "rerankit eval (dense first stage)"
            )
            identity = _identity(encoder, model_name) + document_prompt
            layout = Layout(dense=DenseField())
            encoders = Encoders(
                dense=_CachedCorpusEncoder(
                    cache,
                    encoder,
                    model=model_name,
                    corpus=unique,
                    prompt=document_prompt,
                    batch_size=batch_size,
                    desc=f"encode {dataset.name} corpus",
                )
            )
        else:
            identity = repr((BM25Encoder().k1, BM25Encoder().b))
            layout = Layout(sparse=SparseField())
        collection = _collection_name(dataset, stage1, identity, unique)
        ingest(
            client,
            collection,
            records,
            layout=layout,
            encoders=encoders,
            batch_size=_UPSERT_BATCH,
            show_progress=progress,
        )
        if stage1 == DENSE:
            query_vectors = cache.embeddings(
                encoder,
                [query_prompt + dataset.queries[q] for q in qids],
                model=model_name,
                batch_size=batch_size,
                desc=f"encode {dataset.name} queries",
            )
            queries: list[Any] = [row.tolist() for row in query_vectors]
            # Exact kNN on a server (the embedded store always searches exactly).
            params: Any = models.SearchParams(exact=True) if qdrant_url else None
        else:
            bm25 = BM25Encoder()
            queries = []
            for q in qids:
                sparse = bm25.encode_query(dataset.queries[q])
                queries.append(models.SparseVector(indices=sparse.indices, values=sparse.values))
            params = None
        entries = _search(
            client, collection, qids, queries, stage1, depth, params, ids_by_point, progress
        )
    finally:
        client.close()
    label = f"{'dense ' + _short(model or default_model()) if stage1 == DENSE else 'BM25'}"
    return Run(entries, name=f"{label} top-{depth} (Qdrant)")


def _search(
    client: Any,
    collection: str,
    qids: Sequence[str],
    queries: Sequence[Any],
    stage1: str,
    depth: int,
    params: Any,
    ids_by_point: dict[str, list[str]],
    progress: bool,
) -> dict[str, tuple[RunEntry, ...]]:
    """The top ``depth`` documents of each query; a point stands for every document with its
    text (in corpus order, at consecutive ranks)."""
    models = qdrant_models()
    using = VECTOR_DENSE if stage1 == DENSE else VECTOR_BM25
    entries: dict[str, tuple[RunEntry, ...]] = {}
    pairs = list(zip(qids, queries, strict=True))
    batches = list(batched(pairs, _QUERY_BATCH))
    for batch in iterate(
        batches,
        total=len(batches),
        desc=f"retrieve {stage1} top-{depth}",
        unit="batch",
        enabled=progress,
    ):
        requests = [
            models.QueryRequest(
                query=vector, using=using, limit=depth, with_payload=False, params=params
            )
            for _, vector in batch
        ]
        responses = client.query_batch_points(collection, requests=requests)
        for (qid, _), response in zip(batch, responses, strict=True):
            found: list[RunEntry] = []
            for point in response.points:
                for doc_id in ids_by_point.get(str(point.id), []):
                    found.append(RunEntry(doc_id, float(point.score), len(found) + 1))
            entries[qid] = tuple(found[:depth])
    return entries


def _short(model: str) -> str:
    from rerankit.eval.runner import display_model

    return display_model(model)
