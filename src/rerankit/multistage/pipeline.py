"""``QdrantMultiStage``: hybrid prefetch, fusion, MaxSim rescoring inside Qdrant, then a reranker.

The framework-free core of the multi-stage retriever. The LangChain and LlamaIndex faces
(:class:`rerankit.langchain.QdrantMultiStageRetriever`,
:class:`rerankit.llama_index.QdrantMultiStageRetriever`) wrap one of these. The work is split:
:mod:`~rerankit.multistage.config` checks the arguments, :mod:`rerankit.qdrant` opens the
clients, checks the collection and ingests, :mod:`~rerankit.multistage.plan` plans each search,
:mod:`~rerankit.multistage.assemble` builds its results; this module runs the calls.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from rerankit.base import Reranker
from rerankit.candidates import validate_query
from rerankit.errors import CollectionNotFoundError
from rerankit.multistage.assemble import build_results, candidates, elapsed_ms
from rerankit.multistage.config import PipelineConfig
from rerankit.multistage.encoders import SentenceTransformerEncoder
from rerankit.multistage.plan import SearchRun, encode_query, start_run
from rerankit.multistage.results import MultiStageResults
from rerankit.multistage.stages import DenseStage, FusionStage, MultivectorStage, SparseStage
from rerankit.qdrant.client import QdrantClients
from rerankit.qdrant.encoding import DenseEncoder, Encoders, MultivectorEncoder
from rerankit.qdrant.ingest import IngestReport, ingest
from rerankit.qdrant.schema import check_collection
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate

__all__ = ["QdrantMultiStage"]

_DEFAULT_FUSION = FusionStage()
_DEFAULT_DENSE = DenseStage()
_DEFAULT_SPARSE = SparseStage()


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

    :meth:`ingest` writes every vector field the configuration needs into the collection
    through rerankit's one ingester (:func:`rerankit.qdrant.ingest`: batched, with a progress
    bar, idempotent), in rerankit's one layout, so a collection built by the RAG builders,
    ``rerankit eval`` or ``rerankit demo`` opens here too. :meth:`search` / :meth:`asearch`
    return a :class:`~rerankit.multistage.MultiStageResults` whose hits carry their rank and
    score in every stage, their point id, their own id and their stored metadata, and whose
    ``timings`` split the latency per stage (:func:`~rerankit.multistage.render_results`).

    Where: ``client`` (a ``QdrantClient``) if given, else a Qdrant server at ``url``, else the
    embedded store at ``path`` (default: a folder under rerankit's cache; ``":memory:"``
    works). A client this object opened is closed by :meth:`close` (or ``with``). On a server,
    :meth:`asearch` uses an ``AsyncQdrantClient`` (``aclient``, or one opened for ``url``);
    otherwise it runs the Qdrant calls in a worker thread.

    A configured vector field that the collection lacks raises
    :class:`~rerankit.errors.MissingVectorFieldError` naming it (and
    :class:`~rerankit.errors.VectorFieldMismatchError` when it has the wrong kind, size,
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
    ) -> None:
        self.config = PipelineConfig.build(
            collection=collection,
            dense=dense,
            sparse=sparse,
            fusion=fusion,
            multivector=multivector,
            reranker=reranker,
            top_n=top_n,
            min_score=min_score,
            policy=policy,
            trace=trace,
        )
        config = self.config
        default_encoder: SentenceTransformerEncoder | None = None
        if (config.dense is not None and config.dense.encoder is None) or (
            config.multivector is not None and config.multivector.encoder is None
        ):
            default_encoder = SentenceTransformerEncoder()
        self.dense_encoder: DenseEncoder | None = (
            None if config.dense is None else (config.dense.encoder or default_encoder)
        )
        self.multivector_encoder: MultivectorEncoder | None = (
            None if config.multivector is None else (config.multivector.encoder or default_encoder)
        )
        self.encoders = Encoders(dense=self.dense_encoder, multivector=self.multivector_encoder)
        self.clients = QdrantClients(
            client=client, aclient=aclient, url=url, path=path, api_key=api_key
        )
        self._lock = threading.Lock()
        self._sizes: dict[str, int] | None = None

    # -- configuration ---------------------------------------------------------------------------

    @property
    def collection(self) -> str:
        """The Qdrant collection."""
        return self.config.collection

    @property
    def client(self) -> Any:
        """The sync ``QdrantClient``."""
        return self.clients.client

    @property
    def dense(self) -> DenseStage | None:
        return self.config.dense

    @property
    def sparse(self) -> SparseStage | None:
        return self.config.sparse

    @property
    def fusion(self) -> FusionStage | None:
        """The fusion stage, ``None`` unless both prefetches run."""
        return self.config.fusion

    @property
    def multivector(self) -> MultivectorStage | None:
        return self.config.multivector

    @property
    def reranker(self) -> Reranker | None:
        return self.config.reranker

    @property
    def policy(self) -> ThresholdPolicy:
        """The threshold applied to the reranker's list."""
        return self.config.policy

    @property
    def qdrant_stages(self) -> tuple[str, ...]:
        """The stages Qdrant runs, in order."""
        return self.config.qdrant_stages

    @property
    def stages(self) -> tuple[str, ...]:
        """Every stage that runs, in order (``rerank`` last when there is a reranker)."""
        return self.config.stages

    @property
    def limits(self) -> dict[str, int]:
        """Each Qdrant stage's limit."""
        return self.config.limits

    def __repr__(self) -> str:
        reranker = f", reranker={self.reranker!r}" if self.reranker is not None else ""
        return (
            f"QdrantMultiStage(collection={self.collection!r}, stages={list(self.stages)}, "
            f"limits={self.limits}{reranker})"
        )

    # -- client lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the clients this object opened (a given client is left open)."""
        self.clients.close()

    async def aclose(self) -> None:
        """Close the clients this object opened, the async one included."""
        await self.clients.aclose()

    def __enter__(self) -> QdrantMultiStage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collection schema -----------------------------------------------------------------------

    def validate_collection(self, info: Any = None) -> dict[str, int]:
        """Check that the collection has every configured vector field; return their sizes
        (by vector name).

        Raises:
            CollectionNotFoundError: the collection does not exist.
            MissingVectorFieldError: a configured field is absent (the error names it).
            VectorFieldMismatchError: a field has the wrong kind, comparator or modifier.
        """
        if info is None:
            if not self.client.collection_exists(self.collection):
                raise CollectionNotFoundError(self.collection)
            info = self.client.get_collection(self.collection)
        return check_collection(info, self.collection, self.config.layout)

    def _schema(self) -> dict[str, int]:
        with self._lock:
            if self._sizes is None:
                self._sizes = self.validate_collection()
            return self._sizes

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
        ``doc_id`` and its ``metadata`` in the payload); see :func:`rerankit.qdrant.ingest`
        (idempotent by content hash, batched with a progress bar, ``recreate=True`` drops the
        collection first).

        Raises:
            InvalidDocumentError: a document is not text, or is blank (``index`` says which).
            MissingVectorFieldError: the collection exists without a configured field.
            VectorDimensionError: an encoder gives vectors of another size than the field's.
        """
        with self._lock:
            self._sizes = None
        return ingest(
            self.client,
            self.collection,
            documents,
            layout=self.config.layout,
            encoders=self.encoders,
            batch_size=batch_size,
            show_progress=show_progress,
            recreate=recreate,
        )

    # -- search ----------------------------------------------------------------------------------

    def _start(
        self, query: str, policy: ThresholdPolicy, started: float, query_filter: Any
    ) -> SearchRun:
        t = time.perf_counter()
        vectors = encode_query(self.config, self.encoders, query, self._sizes or {})
        return start_run(
            self.config, query, policy, started, vectors, query_filter, encode_ms=elapsed_ms(t)
        )

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
        policy = self.config.resolve_policy(top_n, min_score)
        self._schema()
        run = self._start(query, policy, started, query_filter)
        for stage, request, with_payload in run.calls():
            t = time.perf_counter()
            response = self.client.query_points(
                self.collection, **request, with_payload=with_payload
            )
            run.record(stage, response.points, elapsed_ms(t))
        if self.reranker is not None and run.points:
            t = time.perf_counter()
            reranked = self.reranker.rerank(
                query, candidates(self.collection, run.points), policy=policy
            )
            run.reranked(reranked, elapsed_ms(t))
        return build_results(self.config, run)

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
        policy = self.config.resolve_policy(top_n, min_score)
        aclient = self.clients.aclient()
        if self._sizes is None:
            await asyncio.to_thread(self._schema)
        run = await asyncio.to_thread(self._start, query, policy, started, query_filter)
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
            run.record(stage, response.points, elapsed_ms(t))
        if self.reranker is not None and run.points:
            t = time.perf_counter()
            reranked = await self.reranker.arerank(
                query, candidates(self.collection, run.points), policy=policy
            )
            run.reranked(reranked, elapsed_ms(t))
        return build_results(self.config, run)
