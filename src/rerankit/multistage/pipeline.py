"""``QdrantMultiStage``: hybrid prefetch, fusion, MaxSim rescoring inside Qdrant, then a reranker.

The framework-free core of the multi-stage retriever. The LangChain and LlamaIndex faces
(:class:`rerankit.langchain.QdrantMultiStageRetriever`,
:class:`rerankit.llama_index.QdrantMultiStageRetriever`) wrap one of these.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from rerankit.base import Reranker
from rerankit.candidates import validate_query
from rerankit.errors import (
    CollectionNotFoundError,
    ConfigurationError,
    InvalidDocumentError,
    MissingVectorFieldError,
    VectorFieldMismatchError,
)
from rerankit.multistage._search import Plan, QueryVectors, SearchRun
from rerankit.multistage.encoders import (
    DenseEncoder,
    MultivectorEncoder,
    SentenceTransformerEncoder,
)
from rerankit.multistage.results import (
    DOC_ID_KEY,
    IngestReport,
    MultiStageHit,
    MultiStageResults,
    StageScore,
)
from rerankit.multistage.stages import (
    DENSE,
    ENCODE,
    FUSION,
    MULTIVECTOR,
    RERANK,
    SPARSE,
    DenseStage,
    FusionStage,
    MultivectorStage,
    SparseStage,
)
from rerankit.qdrant import (
    batched,
    existing_point_ids,
    open_client,
    point_id,
    progress,
    qdrant_client_module,
    qdrant_models,
    unique_by_id,
)
from rerankit.registry import from_spec
from rerankit.sparse import BM25Encoder
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate

__all__ = ["METADATA_KEY", "QdrantMultiStage"]

METADATA_KEY = "rerankit"
"""Key of rerankit's entry in the collection's metadata (BM25 parameters, vector fields)."""

_DEFAULT_FUSION = FusionStage()
_DEFAULT_DENSE = DenseStage()
_DEFAULT_SPARSE = SparseStage()


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class QdrantMultiStage:
    """Multi-stage retrieval on one Qdrant collection, as one object.

    Stages, in order (each optional except that one prefetch is needed):

    1. prefetch by ``dense`` and ``sparse`` vectors (:class:`DenseStage`, :class:`SparseStage`;
       BM25 with Qdrant's IDF modifier, tokenised locally, no model download);
    2. ``fusion`` of the two with RRF or DBSF (:class:`FusionStage`, Qdrant's ``FusionQuery``;
       applies when both prefetches are on);
    3. ``multivector``: MaxSim rescoring inside Qdrant with a multivector field, as the outer
       query of a nested prefetch (:class:`MultivectorStage`);
    4. ``reranker``: any rerankit :class:`~rerankit.Reranker` (or spec string) on the list the
       last Qdrant stage returns, with the threshold (``top_n``, ``min_score``, ``policy``).

    Stages 1-3 are one nested Query API request, run by Qdrant. Each stage's ``limit`` is how
    many points it passes on; a later stage may not ask for more than it is given. Without a
    reranker, ``top_n`` truncates and score thresholds do not apply.

    :meth:`ingest` writes every vector field the configuration needs into the collection, in
    batches with a progress bar, idempotently (point ids are content hashes; stored texts are
    not encoded again). :meth:`search` / :meth:`asearch` return a
    :class:`~rerankit.multistage.MultiStageResults` whose hits carry their rank and score in
    every stage, their point id, their own id and their stored metadata, and whose ``timings``
    split the latency per stage (:func:`~rerankit.multistage.render_results`).

    Where: ``client`` (a ``QdrantClient``) if given, else a Qdrant server at ``url``, else the
    embedded store at ``path`` (default: a folder under rerankit's cache; ``":memory:"``
    works). A client this object opened is closed by :meth:`close` (or ``with``). On a server,
    :meth:`asearch` uses an ``AsyncQdrantClient`` (``aclient``, or one opened for ``url``);
    otherwise it runs the Qdrant calls in a worker thread.

    A configured vector field that the collection lacks raises
    :class:`~rerankit.multistage.MissingVectorFieldError` naming it (and
    :class:`~rerankit.multistage.VectorFieldMismatchError` when it has the wrong kind, size,
    comparator or modifier).

    Example:
        >>> from rerankit.multistage import (FusionStage, MultivectorStage, QdrantMultiStage,
        ...                                  render_results)
        >>> ms = QdrantMultiStage(collection="faq", path=":memory:",
        ...                       fusion=FusionStage(method="rrf", limit=4),
        ...                       multivector=MultivectorStage(limit=3), top_n=2)
        >>> report = ms.ingest(["Qdrant is a vector database.", "Boil pasta for nine minutes.",
        ...                     "BM25 ranks documents by term frequency."], show_progress=False)
        >>> report.written
        3
        >>> hits = ms.search("which database stores vectors")
        >>> hits[0].text, hits.stages_run
        ('Qdrant is a vector database.', ('dense', 'sparse', 'fusion', 'multivector'))
        >>> sorted(hits[0].stages)
        ['dense', 'fusion', 'multivector', 'sparse']
        >>> print(render_results(hits))  # doctest: +SKIP
        >>> ms.close()
    """

    def __init__(
        self,
        *,
        collection: str,
        client: Any = None,
        url: str | None = None,
        path: str | None = None,
        api_key: str | None = None,
        aclient: Any = None,
        dense: DenseStage | None = _DEFAULT_DENSE,
        sparse: SparseStage | None = _DEFAULT_SPARSE,
        fusion: FusionStage | Literal["rrf", "dbsf"] = _DEFAULT_FUSION,
        multivector: MultivectorStage | None = None,
        reranker: Reranker | str | None = None,
        top_n: int | None = None,
        min_score: float | None = None,
        policy: ThresholdPolicy | None = None,
        trace: bool = True,
        text_key: str = "text",
        metadata_key: str = "metadata",
    ) -> None:
        if not isinstance(collection, str) or not collection.strip():
            raise ConfigurationError("collection must be a non-empty str")
        if dense is not None and not isinstance(dense, DenseStage):
            raise ConfigurationError(f"dense must be a DenseStage or None, got {dense!r}")
        if sparse is not None and not isinstance(sparse, SparseStage):
            raise ConfigurationError(f"sparse must be a SparseStage or None, got {sparse!r}")
        if isinstance(fusion, str):
            fusion = FusionStage(method=fusion)  # type: ignore[arg-type]
        if not isinstance(fusion, FusionStage):
            raise ConfigurationError(
                f"fusion must be a FusionStage, 'rrf' or 'dbsf', got {fusion!r}"
            )
        if multivector is not None and not isinstance(multivector, MultivectorStage):
            raise ConfigurationError(
                f"multivector must be a MultivectorStage or None, got {multivector!r}"
            )
        if dense is None and sparse is None:
            raise ConfigurationError(
                "at least one prefetch is needed: configure dense=DenseStage() and/or "
                "sparse=SparseStage()"
            )
        if isinstance(reranker, str):
            reranker = from_spec(reranker)
        if reranker is not None and not isinstance(reranker, Reranker):
            raise ConfigurationError(
                f"reranker must be a Reranker, a spec string or None, got {type(reranker).__name__}"
            )
        if policy is not None and not isinstance(policy, ThresholdPolicy):
            raise ConfigurationError(
                f"policy must be a ThresholdPolicy, got {type(policy).__name__}"
            )
        resolved = (policy or ThresholdPolicy()).merged(top_n=top_n, min_score=min_score)
        if reranker is None and _has_score_rules(resolved):
            raise ConfigurationError(
                "min_score / min_ratio / largest_gap need a reranker (they compare its "
                "calibrated scores); without one only top_n applies"
            )
        for name, value in (("text_key", text_key), ("metadata_key", metadata_key)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"{name} must be a non-empty str")
        if text_key == metadata_key or DOC_ID_KEY in (text_key, metadata_key):
            raise ConfigurationError("text_key, metadata_key and 'doc_id' must differ")
        names = [s.vector_name for s in (dense, sparse, multivector) if s is not None]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"the stages' vector names must differ, got {names}")
        if client is not None and (url is not None or path is not None or api_key is not None):
            raise ConfigurationError("pass either client= or url=/path=/api_key=, not both")

        self.collection = collection
        self.dense = dense
        self.sparse = sparse
        self.fused = dense is not None and sparse is not None
        self.fusion: FusionStage | None = fusion if self.fused else None
        self.multivector = multivector
        self.reranker: Reranker | None = reranker
        self.policy = resolved
        self.trace = bool(trace)
        self.text_key = text_key
        self.metadata_key = metadata_key
        self._check_limits()

        default_encoder: SentenceTransformerEncoder | None = None
        if (dense is not None and dense.encoder is None) or (
            multivector is not None and multivector.encoder is None
        ):
            default_encoder = SentenceTransformerEncoder()
        self.dense_encoder: DenseEncoder | None = (
            None if dense is None else (dense.encoder or default_encoder)
        )
        self.multivector_encoder: MultivectorEncoder | None = (
            None if multivector is None else (multivector.encoder or default_encoder)
        )

        self._owns_client = client is None
        self.client: Any = (
            client if client is not None else open_client(url=url, path=path, api_key=api_key)
        )
        self._url = url
        self._api_key = api_key
        self._aclient: Any = aclient
        self._owns_aclient = False
        self._lock = threading.Lock()
        self._sizes: dict[str, int] | None = None

    # -- configuration ---------------------------------------------------------------------------

    def _check_limits(self) -> None:
        prefetch = [s.limit for s in (self.dense, self.sparse) if s is not None]
        upstream = max(prefetch)
        if self.fusion is not None:
            if self.fusion.limit > sum(prefetch):
                raise ConfigurationError(
                    f"fusion.limit={self.fusion.limit} exceeds the {sum(prefetch)} points the "
                    "dense and sparse prefetches pass on"
                )
            upstream = self.fusion.limit
        if self.multivector is not None and self.multivector.limit > upstream:
            raise ConfigurationError(
                f"multivector.limit={self.multivector.limit} exceeds the {upstream} points the "
                "previous stage passes on"
            )

    @property
    def qdrant_stages(self) -> tuple[str, ...]:
        """The stages Qdrant runs, in order."""
        stages = [DENSE] if self.dense is not None else []
        if self.sparse is not None:
            stages.append(SPARSE)
        if self.fusion is not None:
            stages.append(FUSION)
        if self.multivector is not None:
            stages.append(MULTIVECTOR)
        return tuple(stages)

    @property
    def stages(self) -> tuple[str, ...]:
        """Every stage that runs, in order (``rerank`` last when there is a reranker)."""
        return self.qdrant_stages + ((RERANK,) if self.reranker is not None else ())

    @property
    def limits(self) -> dict[str, int]:
        """Each Qdrant stage's limit."""
        limits = {}
        for name, stage in (
            (DENSE, self.dense),
            (SPARSE, self.sparse),
            (FUSION, self.fusion),
            (MULTIVECTOR, self.multivector),
        ):
            if stage is not None:
                limits[name] = stage.limit
        return limits

    def __repr__(self) -> str:
        reranker = f", reranker={self.reranker!r}" if self.reranker is not None else ""
        return (
            f"QdrantMultiStage(collection={self.collection!r}, stages={list(self.stages)}, "
            f"limits={self.limits}{reranker})"
        )

    # -- client lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the clients this object opened (a given client is left open)."""
        if self._owns_client:
            self.client.close()

    async def aclose(self) -> None:
        """Close the clients this object opened, the async one included."""
        if self._owns_aclient and self._aclient is not None:
            await self._aclient.close()
            self._aclient = None
        self.close()

    def __enter__(self) -> QdrantMultiStage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _async_client(self) -> Any:
        if self._aclient is None and self._url:
            self._aclient = qdrant_client_module().AsyncQdrantClient(
                url=self._url, api_key=self._api_key
            )
            self._owns_aclient = True
        return self._aclient

    # -- collection schema -----------------------------------------------------------------------

    def _fields(self, info: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The collection's dense, multivector and sparse fields, by name."""
        vectors = info.config.params.vectors
        if vectors is None:
            named: dict[str, Any] = {}
        elif isinstance(vectors, Mapping):
            named = dict(vectors)
        else:  # one unnamed vector
            named = {"": vectors}
        dense = {n: p for n, p in named.items() if getattr(p, "multivector_config", None) is None}
        multi = {n: p for n, p in named.items() if n not in dense}
        sparse = dict(info.config.params.sparse_vectors or {})
        return dense, multi, sparse

    def validate_collection(self, info: Any = None) -> dict[str, int]:
        """Check that the collection has every configured vector field; return their sizes.

        Raises:
            CollectionNotFoundError: the collection does not exist.
            MissingVectorFieldError: a configured field is absent (the error names it).
            VectorFieldMismatchError: a field has the wrong kind, comparator or modifier.
        """
        if info is None:
            if not self.client.collection_exists(self.collection):
                raise CollectionNotFoundError(self.collection)
            info = self.client.get_collection(self.collection)
        models = qdrant_models()
        dense, multi, sparse = self._fields(info)
        kinds = {
            **{n: "dense" for n in dense},
            **{n: "multivector" for n in multi},
            **{n: "sparse" for n in sparse},
        }
        available = [f"{n or '<unnamed>'} ({k})" for n, k in kinds.items()]
        sizes: dict[str, int] = {}

        def need(name: str, kind: str, fields: Mapping[str, Any]) -> Any:
            if name in fields:
                return fields[name]
            if name in kinds:
                raise VectorFieldMismatchError(
                    f"Qdrant collection {self.collection!r}: field {name!r} is a {kinds[name]} "
                    f"field, but the {kind} stage needs a {kind} field",
                    collection=self.collection,
                    field=name,
                    kind=kind,
                )
            raise MissingVectorFieldError(
                collection=self.collection, field=name, kind=kind, available=available
            )

        if self.dense is not None:
            sizes[DENSE] = int(need(self.dense.vector_name, "dense", dense).size)
        if self.sparse is not None:
            params = need(self.sparse.vector_name, "sparse", sparse)
            if params.modifier != models.Modifier.IDF:
                raise VectorFieldMismatchError(
                    f"Qdrant collection {self.collection!r}: sparse field "
                    f"{self.sparse.vector_name!r} has no IDF modifier, which BM25 needs "
                    "(SparseVectorParams(modifier=Modifier.IDF))",
                    collection=self.collection,
                    field=self.sparse.vector_name,
                    kind="sparse",
                )
        if self.multivector is not None:
            params = need(self.multivector.vector_name, "multivector", multi)
            if params.multivector_config.comparator != models.MultiVectorComparator.MAX_SIM:
                raise VectorFieldMismatchError(
                    f"Qdrant collection {self.collection!r}: multivector field "
                    f"{self.multivector.vector_name!r} does not compare by MAX_SIM",
                    collection=self.collection,
                    field=self.multivector.vector_name,
                    kind="multivector",
                )
            sizes[MULTIVECTOR] = int(params.size)
        return sizes

    def _schema(self) -> dict[str, int]:
        with self._lock:
            if self._sizes is None:
                self._sizes = self.validate_collection()
            return self._sizes

    def _check_size(self, stage: str, name: str, size: int) -> None:
        sizes = self._sizes or {}
        expected = sizes.get(stage)
        if expected is not None and expected != size:
            raise VectorFieldMismatchError(
                f"Qdrant collection {self.collection!r}: {stage} field {name!r} holds "
                f"{expected}-dimensional vectors, the encoder gives {size}",
                collection=self.collection,
                field=name,
                kind=stage,
            )

    def _stored_bm25(self, info: Any) -> Mapping[str, Any]:
        metadata = getattr(info.config, "metadata", None) or {}
        entry = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
        bm25 = entry.get("bm25") if isinstance(entry, Mapping) else None
        return bm25 if isinstance(bm25, Mapping) else {}

    def _bm25(self, texts: Sequence[str], info: Any) -> BM25Encoder | None:
        """The document encoder: explicit ``avg_doc_len``, else the collection's, else fitted."""
        if self.sparse is None:
            return None
        stage = self.sparse
        avg = stage.avg_doc_len
        if avg is None and info is not None:
            stored = self._stored_bm25(info).get("avg_doc_len")
            avg = float(stored) if isinstance(stored, int | float) and stored > 0 else None
        if avg is None:
            return BM25Encoder.fit(texts, k1=stage.k1, b=stage.b)
        return BM25Encoder(k1=stage.k1, b=stage.b, avg_doc_len=avg)

    # -- ingestion -------------------------------------------------------------------------------

    def ingest(
        self,
        documents: Sequence[str | Candidate],
        *,
        batch_size: int = 64,
        show_progress: bool = True,
        recreate: bool = False,
    ) -> IngestReport:
        """Write ``documents`` into the collection with every configured vector field.

        Each document is a string or a :class:`~rerankit.Candidate` (its ``id`` is kept as
        ``doc_id`` and its ``metadata`` in the payload). The point id is the hash of the text
        (:func:`rerankit.qdrant.point_id`), so ingesting again writes nothing twice and texts
        already stored are not encoded again; repeated texts are folded (first kept). Documents
        are encoded and upserted in batches of ``batch_size`` with a progress bar. The
        collection is created on first use (``recreate=True`` drops it first); BM25's average
        document length is measured on the first ingestion (unless
        ``SparseStage.avg_doc_len`` is set) and kept in the collection's metadata.

        Raises:
            InvalidDocumentError: a document is not text, or is blank (``index`` says which).
            MissingVectorFieldError: the collection exists without a configured field.
        """
        if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
            raise ConfigurationError("documents must be a sequence of str or Candidate")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
        candidates = _as_candidates(documents)
        unique, ids = unique_by_id(candidates, lambda c: point_id(c.text))
        all_ids = tuple(point_id(c.text) for c in candidates)
        client = self.client
        with self._lock:
            self._sizes = None
        if recreate and client.collection_exists(self.collection):
            client.delete_collection(self.collection)
        info = None
        if client.collection_exists(self.collection):
            info = client.get_collection(self.collection)
            self._sizes = self.validate_collection(info)
        bm25 = self._bm25([c.text for c in unique], info)
        written = skipped = 0
        with progress(
            total=len(unique), desc=f"qdrant upsert {self.collection}", enabled=show_progress
        ) as advance:
            for batch in batched(list(zip(unique, ids, strict=True)), batch_size):
                present = (
                    existing_point_ids(client, self.collection, [pid for _, pid in batch])
                    if info is not None
                    else set()
                )
                todo = [(c, pid) for c, pid in batch if pid not in present]
                skipped += len(batch) - len(todo)
                if todo:
                    points, sizes = self._points(todo, bm25)
                    if info is None:
                        info = self._create(sizes, bm25)
                    for stage, size in sizes.items():
                        self._check_size(stage, self._field_name(stage), size)
                    client.upsert(self.collection, points=points, wait=True)
                    written += len(todo)
                advance(len(batch))
        return IngestReport(
            collection=self.collection,
            received=len(candidates),
            duplicates=len(candidates) - len(unique),
            skipped=skipped,
            written=written,
            point_ids=all_ids,
        )

    def _field_name(self, stage: str) -> str:
        config = {DENSE: self.dense, SPARSE: self.sparse, MULTIVECTOR: self.multivector}[stage]
        assert config is not None
        return config.vector_name

    def _embed(
        self,
        both: Callable[[SentenceTransformerEncoder], tuple[Any, Any]],
        dense: Callable[[DenseEncoder], Any],
        tokens: Callable[[MultivectorEncoder], Any],
    ) -> tuple[Any, Any]:
        """Dense and token embeddings (``None`` for a stage that is off): ``both`` in one
        forward pass when one sentence-transformers encoder serves both stages, else each
        stage's encoder on its own."""
        shared = _shared_encoder(self.dense_encoder, self.multivector_encoder)
        if shared is not None:
            return both(shared)
        return (
            None if self.dense_encoder is None else dense(self.dense_encoder),
            None if self.multivector_encoder is None else tokens(self.multivector_encoder),
        )

    def _encode_documents(
        self, texts: list[str]
    ) -> tuple[list[list[float]] | None, list[list[list[float]]] | None]:
        dense, tokens = self._embed(
            lambda encoder: encoder.embed_documents_with_tokens(texts),
            lambda encoder: encoder.embed_documents(texts),
            lambda encoder: encoder.embed_document_tokens(texts),
        )
        dense_rows = None if dense is None else [_vector(v) for v in dense]
        token_rows = None if tokens is None else [_matrix(m) for m in tokens]
        for name, rows in (("dense", dense_rows), ("multivector", token_rows)):
            if rows is not None and len(rows) != len(texts):
                raise ConfigurationError(
                    f"the {name} encoder returned {len(rows)} embeddings for {len(texts)} texts"
                )
        return dense_rows, token_rows

    def _points(
        self, todo: Sequence[tuple[Candidate, str]], bm25: BM25Encoder | None
    ) -> tuple[list[Any], dict[str, int]]:
        models = qdrant_models()
        texts = [c.text for c, _ in todo]
        dense, tokens = self._encode_documents(texts)
        sizes: dict[str, int] = {}
        if dense is not None:
            sizes[DENSE] = len(dense[0])
        if tokens is not None:
            sizes[MULTIVECTOR] = len(tokens[0][0])
        points = []
        for i, (cand, pid) in enumerate(todo):
            vector: dict[str, Any] = {}
            if dense is not None and self.dense is not None:
                vector[self.dense.vector_name] = dense[i]
            if bm25 is not None and self.sparse is not None:
                sv = bm25.encode_document(cand.text)
                vector[self.sparse.vector_name] = models.SparseVector(
                    indices=sv.indices, values=sv.values
                )
            if tokens is not None and self.multivector is not None:
                vector[self.multivector.vector_name] = tokens[i]
            payload = {
                self.text_key: cand.text,
                DOC_ID_KEY: cand.id,
                self.metadata_key: dict(cand.metadata),
            }
            points.append(models.PointStruct(id=pid, vector=vector, payload=payload))
        return points, sizes

    def _create(self, sizes: Mapping[str, int], bm25: BM25Encoder | None) -> Any:
        models = qdrant_models()
        distance = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT}
        vectors: dict[str, Any] = {}
        if self.dense is not None:
            vectors[self.dense.vector_name] = models.VectorParams(
                size=sizes[DENSE], distance=distance[self.dense.distance]
            )
        if self.multivector is not None:
            vectors[self.multivector.vector_name] = models.VectorParams(
                size=sizes[MULTIVECTOR],
                distance=distance[self.multivector.distance],
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
                # Only used to rescore prefetched points: no HNSW graph needed.
                hnsw_config=models.HnswConfigDiff(m=0),
            )
        sparse = None
        entry: dict[str, Any] = {
            "fields": {
                stage: self._field_name(stage)
                for stage in (DENSE, SPARSE, MULTIVECTOR)
                if stage in self.qdrant_stages
            }
        }
        if self.sparse is not None and bm25 is not None:
            sparse = {
                self.sparse.vector_name: models.SparseVectorParams(modifier=models.Modifier.IDF)
            }
            entry["bm25"] = {"k1": bm25.k1, "b": bm25.b, "avg_doc_len": bm25.avg_doc_len}
        extra: dict[str, Any] = {}
        if _accepts(self.client.create_collection, "metadata"):
            # Collection metadata keeps the BM25 statistics for later ingestions (clients
            # without it fall back to SparseStage.avg_doc_len or each call's own average).
            extra["metadata"] = {METADATA_KEY: entry}
        self.client.create_collection(
            self.collection, vectors_config=vectors, sparse_vectors_config=sparse, **extra
        )
        info = self.client.get_collection(self.collection)
        self._sizes = self.validate_collection(info)
        return info

    # -- search ----------------------------------------------------------------------------------

    def _resolve_policy(self, top_n: int | None, min_score: float | None) -> ThresholdPolicy:
        policy = self.policy.merged(top_n=top_n, min_score=min_score)
        if self.reranker is None and _has_score_rules(policy):
            raise ConfigurationError("min_score needs a reranker; without one only top_n applies")
        return policy

    def _encode_query(self, query: str) -> QueryVectors:
        dense, tokens = self._embed(
            lambda encoder: encoder.embed_query_with_tokens(query),
            lambda encoder: encoder.embed_query(query),
            lambda encoder: encoder.embed_query_tokens(query),
        )
        sparse = None
        if self.sparse is not None:
            # Query weights do not depend on the corpus statistics: 1 per distinct term.
            sv = BM25Encoder(k1=self.sparse.k1, b=self.sparse.b).encode_query(query)
            if sv.indices:
                sparse = qdrant_models().SparseVector(indices=sv.indices, values=sv.values)
        vectors = QueryVectors(
            dense=None if dense is None else _vector(dense),
            sparse=sparse,
            tokens=None if tokens is None else _matrix(tokens),
        )
        if vectors.dense is not None and self.dense is not None:
            self._check_size(DENSE, self.dense.vector_name, len(vectors.dense))
        if vectors.tokens is not None and self.multivector is not None:
            self._check_size(MULTIVECTOR, self.multivector.vector_name, len(vectors.tokens[0]))
        return vectors

    def _plan(self, vectors: QueryVectors, query_filter: Any) -> Plan:
        models = qdrant_models()
        requests: dict[str, dict[str, Any]] = {}
        skipped: set[str] = set()
        prefetches: list[Any] = []
        if self.dense is not None:
            requests[DENSE] = {
                "query": vectors.dense,
                "using": self.dense.vector_name,
                "limit": self.dense.limit,
            }
            prefetches.append(models.Prefetch(**requests[DENSE]))
        if self.sparse is not None:
            if vectors.sparse is None:
                skipped.add(SPARSE)
            else:
                requests[SPARSE] = {
                    "query": vectors.sparse,
                    "using": self.sparse.vector_name,
                    "limit": self.sparse.limit,
                }
                prefetches.append(models.Prefetch(**requests[SPARSE]))
        upstream: Any = prefetches[0] if len(prefetches) == 1 else None
        if self.fusion is not None:
            fusion = models.Fusion.RRF if self.fusion.method == "rrf" else models.Fusion.DBSF
            requests[FUSION] = {
                "prefetch": prefetches,
                "query": models.FusionQuery(fusion=fusion),
                "limit": self.fusion.limit,
            }
            upstream = models.Prefetch(**requests[FUSION]) if prefetches else None
        if self.multivector is not None and vectors.tokens is not None:
            if upstream is None:
                skipped.add(MULTIVECTOR)
            else:
                requests[MULTIVECTOR] = {
                    "prefetch": upstream,
                    "query": vectors.tokens,
                    "using": self.multivector.vector_name,
                    "limit": self.multivector.limit,
                }
        if FUSION in requests and not prefetches:
            del requests[FUSION]
            skipped.add(FUSION)
        if query_filter is not None:
            for request in requests.values():
                request["query_filter"] = query_filter
        return Plan(requests=requests, skipped=frozenset(skipped))

    def search(
        self,
        query: str,
        *,
        top_n: int | None = None,
        min_score: float | None = None,
        query_filter: Any = None,
    ) -> MultiStageResults:
        """Run every stage for ``query``; the best hits first.

        ``top_n`` and ``min_score`` override the configured threshold for this call;
        ``query_filter`` (a Qdrant ``Filter``) restricts every stage to matching points.

        Raises:
            CollectionNotFoundError: the collection does not exist.
            MissingVectorFieldError: a configured field is missing from the collection.
            EmptyQueryError: the query is blank.
        """
        started = time.perf_counter()
        query = validate_query(query)
        policy = self._resolve_policy(top_n, min_score)
        self._schema()
        t = time.perf_counter()
        vectors = self._encode_query(query)
        run = self._start(query, policy, started, vectors, query_filter, encode_ms=_ms(t))
        for stage, request, with_payload in run.calls():
            t = time.perf_counter()
            response = self.client.query_points(
                self.collection, **request, with_payload=with_payload
            )
            run.record(stage, response.points, _ms(t))
        if self.reranker is not None and run.points:
            t = time.perf_counter()
            reranked = self.reranker.rerank(query, self._candidates(run.points), policy=policy)
            run.reranked(reranked, _ms(t))
        return self._results(run)

    async def asearch(
        self,
        query: str,
        *,
        top_n: int | None = None,
        min_score: float | None = None,
        query_filter: Any = None,
    ) -> MultiStageResults:
        """Async :meth:`search`, with the same results.

        The query encoding runs in a worker thread; Qdrant is queried with the async client on
        a server, in a worker thread otherwise; the reranker's ``arerank`` is awaited.
        """
        started = time.perf_counter()
        query = validate_query(query)
        policy = self._resolve_policy(top_n, min_score)
        aclient = self._async_client()
        if self._sizes is None:
            await asyncio.to_thread(self._schema)
        t = time.perf_counter()
        vectors = await asyncio.to_thread(self._encode_query, query)
        run = self._start(query, policy, started, vectors, query_filter, encode_ms=_ms(t))
        for stage, request, with_payload in run.calls():
            t = time.perf_counter()
            if aclient is not None:
                response = await aclient.query_points(
                    self.collection, **request, with_payload=with_payload
                )
            else:
                response = await asyncio.to_thread(
                    self.client.query_points, self.collection, **request, with_payload=with_payload
                )
            run.record(stage, response.points, _ms(t))
        if self.reranker is not None and run.points:
            t = time.perf_counter()
            reranked = await self.reranker.arerank(
                query, self._candidates(run.points), policy=policy
            )
            run.reranked(reranked, _ms(t))
        return self._results(run)

    def _start(
        self,
        query: str,
        policy: ThresholdPolicy,
        started: float,
        vectors: QueryVectors,
        query_filter: Any,
        *,
        encode_ms: float,
    ) -> SearchRun:
        """The run of one search once its query is encoded: the plan and the calls to make."""
        plan = self._plan(vectors, query_filter)
        final = next((s for s in reversed(self.qdrant_stages) if s in plan.requests), None)
        traced = (
            tuple(s for s in self.qdrant_stages if s != final and s in plan.requests)
            if self.trace
            else ()
        )
        return SearchRun(
            query=query,
            policy=policy,
            started=started,
            plan=plan,
            final=final,
            traced=traced,
            timings={ENCODE: encode_ms},
        )

    def _payload_parts(self, point: Any) -> tuple[str, str | None, dict[str, Any]]:
        payload = point.payload or {}
        text = payload.get(self.text_key)
        if not isinstance(text, str):
            raise ConfigurationError(
                f"Qdrant point {point.id} in {self.collection!r} has no {self.text_key!r} text "
                "in its payload (was the collection built by QdrantMultiStage.ingest?)"
            )
        doc_id = payload.get(DOC_ID_KEY)
        metadata = payload.get(self.metadata_key)
        return (
            text,
            None if doc_id is None else str(doc_id),
            dict(metadata) if isinstance(metadata, Mapping) else {},
        )

    def _candidates(self, points: Sequence[Any]) -> list[Candidate]:
        out = []
        for point in points:
            text, _, metadata = self._payload_parts(point)
            out.append(Candidate(text, id=str(point.id), metadata=metadata))
        return out

    def _results(self, run: SearchRun) -> MultiStageResults:
        observed, points, final = run.observed, run.points, run.final
        rerank_results, timings = run.rerank_results, run.timings
        for stage in run.plan.skipped:
            # Nothing to run (no BM25 term in the query): an empty list, observed.
            observed.setdefault(stage, [])
        places = {
            stage: {pid: (rank, score) for rank, (pid, score) in enumerate(found)}
            for stage, found in observed.items()
        }
        order = [s for s in self.qdrant_stages if s in observed]

        def stage_scores(pid: str) -> dict[str, StageScore]:
            scores = {}
            for stage in order:
                place = places[stage].get(pid)
                scores[stage] = StageScore(*place) if place else StageScore(None, None)
            return scores

        hits: list[MultiStageHit] = []
        empty_reason: str | None = None
        if not points:
            empty_reason = (
                "the query has no BM25 term and no other prefetch ran"
                if final is None
                else "no point matched"
            )
        elif rerank_results is not None:
            for result in rerank_results:
                point = points[result.index]
                text, doc_id, metadata = self._payload_parts(point)
                scores = stage_scores(str(point.id))
                scores[RERANK] = StageScore(result.rank, result.score)
                hits.append(
                    MultiStageHit(
                        point_id=str(point.id),
                        doc_id=doc_id,
                        text=text,
                        metadata=metadata,
                        score=result.score,
                        rank=result.rank,
                        stages=scores,
                        rerank=result,
                    )
                )
            empty_reason = rerank_results.empty_reason
        else:
            keep = points if run.policy.top_n is None else points[: run.policy.top_n]
            for rank, point in enumerate(keep):
                text, doc_id, metadata = self._payload_parts(point)
                hits.append(
                    MultiStageHit(
                        point_id=str(point.id),
                        doc_id=doc_id,
                        text=text,
                        metadata=metadata,
                        score=float(point.score),
                        rank=rank,
                        stages=stage_scores(str(point.id)),
                    )
                )
            if not hits:
                empty_reason = "top_n=0"
        timings["pipeline"] = (
            timings.get(ENCODE, 0.0)
            + (timings.get(final, 0.0) if final is not None else 0.0)
            + timings.get(RERANK, 0.0)
        )
        timings["total"] = _ms(run.started)
        observed_stages = [*order, *([RERANK] if rerank_results is not None else [])]
        return MultiStageResults(
            hits,
            query=run.query,
            stages_run=self.stages,
            observed=observed_stages,
            timings=timings,
            rerank_results=rerank_results,
            empty_reason=empty_reason,
            candidates=len(points),
            collection=self.collection,
            stage_lists={stage: observed[stage] for stage in order},
        )


def _shared_encoder(dense: object, multivector: object) -> SentenceTransformerEncoder | None:
    """The encoder serving both stages, when one sentence-transformers encoder does (then one
    forward pass gives both embeddings)."""
    if isinstance(dense, SentenceTransformerEncoder) and dense is multivector:
        return dense
    return None


def _accepts(function: Any, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _has_score_rules(policy: ThresholdPolicy) -> bool:
    return any(
        value is not None for value in (policy.min_score, policy.min_ratio, policy.largest_gap)
    )


def _as_candidates(documents: Sequence[str | Candidate]) -> list[Candidate]:
    out = []
    for index, doc in enumerate(documents):
        if isinstance(doc, str):
            cand = Candidate(doc)
        elif isinstance(doc, Candidate) and isinstance(doc.text, str):
            cand = doc
        else:
            raise InvalidDocumentError(
                f"document {index}: expected str or Candidate with str text, got "
                f"{type(doc).__name__}",
                index=index,
            )
        if not cand.text.strip():
            raise InvalidDocumentError(f"document {index}: the text is blank", index=index)
        if cand.id is not None and not isinstance(cand.id, str):
            raise InvalidDocumentError(
                f"document {index}: id must be a str or None, got {type(cand.id).__name__}",
                index=index,
            )
        out.append(cand)
    return out


def _vector(value: Any) -> list[float]:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ConfigurationError(
            f"the dense encoder must give one finite, non-empty vector per text, got shape "
            f"{array.shape}"
        )
    values: list[float] = array.tolist()
    return values


def _matrix(value: Any) -> list[list[float]]:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 2 or 0 in array.shape or not np.all(np.isfinite(array)):
        raise ConfigurationError(
            "the multivector encoder must give one finite (tokens, dim) matrix per text, got "
            f"shape {array.shape}"
        )
    rows: list[list[float]] = array.tolist()
    return rows
