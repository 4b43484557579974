"""Full-pipeline first stage: index a BEIR corpus into Qdrant and retrieve the top k per query.

Two first stages:

* ``"dense"``: cosine over normalised sentence-transformers embeddings (all-MiniLM-L6-v2 by
  default), exact search. Corpus and query embeddings go through an
  :class:`~rerankit.eval.EmbeddingCache`, so a second run of the same corpus encodes nothing.
* ``"bm25"``: rerankit's local BM25 sparse vectors (:mod:`rerankit.sparse`) scored by Qdrant's
  IDF modifier.

The store is embedded Qdrant in memory by default; ``qdrant_path`` keeps it in a folder and
``qdrant_url`` uses a server. Collections are named after the dataset, the first stage and a
hash of the model and corpus, so different corpora never mix; an existing collection holding
the whole corpus is reused as is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

from rerankit.errors import ConfigurationError, DatasetError
from rerankit.eval._progress import iterate, progress_bar
from rerankit.eval.beir import BeirDataset
from rerankit.eval.cache import EmbeddingCache, _identity
from rerankit.eval.runs import Run, RunEntry
from rerankit.qdrant import MEMORY, batched, open_client, point_id, qdrant_models
from rerankit.sentence import default_model, load_sentence_transformer
from rerankit.sparse import BM25Encoder

__all__ = ["Stage1", "retrieve"]

Stage1 = Literal["dense", "bm25"]
DENSE = "dense"
SPARSE = "bm25"
_UPSERT_BATCH = 256
_QUERY_BATCH = 32


def _collection_name(dataset: BeirDataset, stage1: str, identity: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(identity.encode("utf-8"))
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset.name)[:40]
    return f"rerankit-eval-{name}-{stage1}-{digest.hexdigest()[:16]}"


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
    qdrant_path: str | None = MEMORY,
    qdrant_api_key: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
) -> Run:
    """Index ``dataset``'s corpus into Qdrant and return the top ``depth`` documents per query.

    ``query_ids`` defaults to the judged queries of the dataset's split. ``model`` (dense only)
    is a sentence-transformers hub id or folder; the default is the offline all-MiniLM-L6-v2.
    The run's scores are Qdrant's (cosine, or BM25).

    Example:
        >>> from rerankit.eval import load_beir, retrieve
        >>> data = load_beir("path/to/scifact")  # doctest: +SKIP
        >>> run = retrieve(data, depth=100, stage1="dense")  # doctest: +SKIP
    """
    if stage1 not in (DENSE, SPARSE):
        raise ConfigurationError(f"stage1 must be 'dense' or 'bm25', got {stage1!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigurationError(f"depth must be a positive int, got {depth!r}")
    if stage1 == SPARSE and model is not None:
        raise ConfigurationError("model applies to the dense first stage only")
    qids = list(query_ids) if query_ids is not None else dataset.judged_queries()
    unknown = [q for q in qids if q not in dataset.queries]
    if unknown:
        raise DatasetError(f"{dataset.name}: unknown query ids {unknown[:5]}")
    if not qids:
        raise DatasetError(f"{dataset.name}: no queries to retrieve for")
    doc_ids, texts = dataset.corpus_texts()
    if not doc_ids:
        raise DatasetError(f"{dataset.name}: the corpus is empty")
    cache = cache if cache is not None else EmbeddingCache(progress=progress)
    models = qdrant_models()
    client = open_client(url=qdrant_url, path=qdrant_path, api_key=qdrant_api_key)
    try:
        if stage1 == DENSE:
            model_name = model or default_model()
            encoder = load_sentence_transformer(
                model_name, None, "float32", False, None, "rerankit eval (dense first stage)"
            )
            doc_texts = [document_prompt + t for t in texts]
            collection = _collection_name(
                dataset, stage1, _identity(encoder, model_name), doc_texts
            )
            if not _complete(client, collection, len(doc_ids)):
                vectors = cache.embeddings(
                    encoder,
                    doc_texts,
                    model=model_name,
                    batch_size=batch_size,
                    desc=f"encode {dataset.name} corpus",
                )
                config = {
                    DENSE: models.VectorParams(
                        size=int(vectors.shape[1]), distance=models.Distance.COSINE
                    )
                }
                _recreate(client, collection, vectors_config=config)
                _upsert(
                    client,
                    collection,
                    doc_ids,
                    [{DENSE: row.tolist()} for row in vectors],
                    progress,
                )
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
            bm25 = BM25Encoder.fit(texts)
            collection = _collection_name(dataset, stage1, repr((bm25.k1, bm25.b)), texts)
            if not _complete(client, collection, len(doc_ids)):
                _recreate(
                    client,
                    collection,
                    vectors_config={},
                    sparse_vectors_config={
                        SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
                vectors_sparse = []
                for text in texts:
                    sparse = bm25.encode_document(text)
                    vectors_sparse.append(
                        {SPARSE: models.SparseVector(indices=sparse.indices, values=sparse.values)}
                    )
                _upsert(client, collection, doc_ids, vectors_sparse, progress)
            queries = []
            for q in qids:
                sparse = bm25.encode_query(dataset.queries[q])
                queries.append(models.SparseVector(indices=sparse.indices, values=sparse.values))
            params = None
        using = DENSE if stage1 == DENSE else SPARSE
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
                    query=vector, using=using, limit=depth, with_payload=True, params=params
                )
                for _, vector in batch
            ]
            responses = client.query_batch_points(collection, requests=requests)
            for (qid, _), response in zip(batch, responses, strict=True):
                entries[qid] = tuple(
                    RunEntry(str(p.payload["doc_id"]), float(p.score), rank)
                    for rank, p in enumerate(response.points, start=1)
                )
    finally:
        client.close()
    label = f"{'dense ' + _short(model or default_model()) if stage1 == DENSE else 'BM25'}"
    return Run(entries, name=f"{label} top-{depth} (Qdrant)")


def _short(model: str) -> str:
    from rerankit.eval.runner import display_model

    return display_model(model)


def _complete(client: Any, collection: str, count: int) -> bool:
    if not client.collection_exists(collection):
        return False
    return bool(client.count(collection, exact=True).count == count)


def _recreate(client: Any, collection: str, **config: Any) -> None:
    if client.collection_exists(collection):
        client.delete_collection(collection)
    client.create_collection(collection, **config)


def _upsert(
    client: Any,
    collection: str,
    doc_ids: Sequence[str],
    vectors: Sequence[Any],
    progress: bool,
) -> None:
    models = qdrant_models()
    pairs = list(zip(doc_ids, vectors, strict=True))
    with progress_bar(
        total=len(pairs), desc="index into Qdrant", unit="doc", enabled=progress
    ) as bar:
        for batch in batched(pairs, _UPSERT_BATCH):
            points = [
                models.PointStruct(id=point_id(doc_id), vector=vector, payload={"doc_id": doc_id})
                for doc_id, vector in batch
            ]
            client.upsert(collection, points=points, wait=True)
            bar(len(batch))
