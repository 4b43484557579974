"""QdrantMultiStage, the framework-free core: ingestion, stages and limits, ids and metadata,
typed errors for missing fields, sync == async, on embedded Qdrant (in memory and on disk).

Most tests use tiny hashing encoders (fast, deterministic); the ``model`` ones use the offline
MiniLM.
"""

from __future__ import annotations

import copy
import doctest
import importlib
import subprocess
import sys
import zlib
from typing import Any

import numpy as np
import pytest

from rerankit import (
    Candidate,
    ConfigurationError,
    InvalidDocumentError,
    LateInteractionReranker,
    RerankError,
    ThresholdPolicy,
)
from rerankit.errors import (
    CollectionNotFoundError,
    MissingVectorFieldError,
    VectorFieldMismatchError,
)
from rerankit.multistage import (
    DenseStage,
    FusionStage,
    LatencySummary,
    MultiStageResults,
    MultivectorStage,
    QdrantMultiStage,
    SparseStage,
    render_results,
)
from rerankit.qdrant import open_client, point_id
from rerankit.sparse import BM25Encoder, tokenize

from ._fixtures import OverlapReranker

qdrant_client = pytest.importorskip("qdrant_client")
models = qdrant_client.models

DOCS = [
    ("qdrant", "Qdrant is a vector database that stores embeddings and searches them with HNSW."),
    ("hnsw", "HNSW builds a layered graph over vectors so nearest neighbour search is fast."),
    ("bm25", "BM25 ranks documents by term frequency and inverse document frequency."),
    ("rrf", "Reciprocal rank fusion merges the rankings of a dense and a sparse retriever."),
    ("colbert", "ColBERT scores a query against document token vectors with MaxSim."),
    ("rerank", "A cross-encoder reranker scores each query and passage pair jointly."),
    ("pasta", "Boil the pasta in salted water for nine minutes, then drain it."),
    ("coffee", "Pour-over coffee tastes best with water at about 93 degrees Celsius."),
    ("paris", "Paris is the capital of France and sits on the Seine."),
    ("bread", "Sourdough bread needs a starter, flour, water and a long slow rise."),
    ("tea", "Green tea is brewed with water below boiling, around 80 degrees."),
    ("gil", "The Python global interpreter lock lets one thread run bytecode at a time."),
]
QUERY = "which vector database searches embeddings"


def hashed(token: str, dim: int) -> np.ndarray:
    vector = np.random.default_rng(zlib.crc32(token.encode("utf-8"))).standard_normal(dim)
    return np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)


class HashDense:
    """A dense encoder: the normalised sum of hashed token vectors (bag of words)."""

    dim = 32

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def _one(self, text: str) -> list[float]:
        total = sum(
            (hashed(t, self.dim) for t in tokenize(text) or ["<empty>"]), np.zeros(self.dim)
        )
        return (total / np.linalg.norm(total)).tolist()  # type: ignore[no-any-return]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


class HashTokens:
    """A multivector encoder: one hashed vector per token."""

    dim = 16

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def _one(self, text: str) -> np.ndarray:
        return np.stack([hashed(t, self.dim) for t in tokenize(text) or ["<empty>"]])

    def embed_document_tokens(self, texts: list[str]) -> list[np.ndarray]:
        self.calls.append(list(texts))
        return [self._one(t) for t in texts]

    def embed_query_tokens(self, text: str) -> np.ndarray:
        return self._one(text)


def candidates() -> list[Candidate]:
    return [
        Candidate(text, id=doc_id, metadata={"source": doc_id, "n": i, "tags": ["a", "b"]})
        for i, (doc_id, text) in enumerate(DOCS)
    ]


def make(client: Any, collection: str = "docs", **overrides: Any) -> QdrantMultiStage:
    """A four-stage pipeline on the hashing encoders (overrides replace any argument)."""
    config: dict[str, Any] = {
        "collection": collection,
        "client": client,
        "dense": DenseStage(limit=6, encoder=HashDense()),
        "sparse": SparseStage(limit=6),
        "fusion": FusionStage(method="rrf", limit=8),
        "multivector": MultivectorStage(limit=5, encoder=HashTokens()),
    }
    config.update(overrides)
    return QdrantMultiStage(**config)


CONFIGS: dict[str, dict[str, Any]] = {
    "dense": {"sparse": None, "multivector": None},
    "sparse": {"dense": None, "multivector": None},
    "hybrid-rrf": {"multivector": None},
    "hybrid-dbsf": {"multivector": None, "fusion": FusionStage(method="dbsf", limit=8)},
    "hybrid+multivector": {},
    "hybrid+multivector+rerank": {"reranker": OverlapReranker()},
    "dense+multivector": {"sparse": None},
}
EXPECTED_STAGES = {
    "dense": ("dense",),
    "sparse": ("sparse",),
    "hybrid-rrf": ("dense", "sparse", "fusion"),
    "hybrid-dbsf": ("dense", "sparse", "fusion"),
    "hybrid+multivector": ("dense", "sparse", "fusion", "multivector"),
    "hybrid+multivector+rerank": ("dense", "sparse", "fusion", "multivector", "rerank"),
    "dense+multivector": ("dense", "multivector"),
}
TIMED_STAGES = ["encode", "dense", "sparse", "fusion", "multivector", "rerank"]
"""The stages a full traced search times, in order."""


@pytest.fixture
def ingested(client: Any) -> QdrantMultiStage:
    pipeline = make(client)
    pipeline.ingest(candidates(), show_progress=False)
    return pipeline


# -- ingestion -----------------------------------------------------------------------------------


def test_ingest_writes_every_configured_field(ingested: QdrantMultiStage, client: Any) -> None:
    info = client.get_collection("docs")
    vectors = info.config.params.vectors
    assert vectors["dense"].size == HashDense.dim and vectors["dense"].multivector_config is None
    multi = vectors["multivector"]
    assert multi.size == HashTokens.dim
    assert multi.multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
    assert info.config.params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    bm25 = info.config.metadata["rerankit"]["bm25"]["bm25"]
    assert bm25["source"] == "text"
    assert bm25["avg_doc_len"] == pytest.approx(BM25Encoder.fit([t for _, t in DOCS]).avg_doc_len)
    point = client.retrieve("docs", ids=[point_id(DOCS[0][1])], with_vectors=True)[0]
    assert set(point.vector) == {"dense", "bm25", "multivector"}
    assert len(point.vector["multivector"]) == len(tokenize(DOCS[0][1]))
    assert point.payload == {
        "text": DOCS[0][1],
        "doc_id": "qdrant",
        # The own id is also kept in the metadata, for readers that see only the metadata.
        "metadata": {"source": "qdrant", "n": 0, "tags": ["a", "b"], "doc_id": "qdrant"},
    }
    assert client.count("docs").count == len(DOCS)


def test_ingest_is_idempotent_and_encodes_only_new_texts(client: Any) -> None:
    pipeline = make(client)
    dense = pipeline.dense_encoder
    assert isinstance(dense, HashDense)
    first = pipeline.ingest(candidates(), batch_size=5, show_progress=False)
    assert (first.written, first.skipped, first.duplicates) == (len(DOCS), 0, 0)
    assert first.point_ids == tuple(point_id(t) for _, t in DOCS)
    assert [len(c) for c in dense.calls] == [5, 5, 2]  # batches
    dense.calls.clear()
    again = pipeline.ingest(candidates(), batch_size=5, show_progress=False)
    assert (again.written, again.skipped) == (0, len(DOCS))
    assert dense.calls == []  # nothing encoded twice
    extra = [*candidates(), Candidate("A brand new note about vectors.", id="new")]
    more = pipeline.ingest(extra, show_progress=False)
    assert (more.written, more.skipped) == (1, len(DOCS))
    assert dense.calls == [["A brand new note about vectors."]]
    assert client.count("docs").count == len(DOCS) + 1


def test_ingest_folds_repeated_texts_and_keeps_the_first(client: Any) -> None:
    pipeline = make(client)
    docs = [Candidate("same text here", id="a"), "other text", Candidate("same text here", id="b")]
    report = pipeline.ingest(docs, show_progress=False)
    assert (report.received, report.duplicates, report.written, report.unique) == (3, 1, 2, 2)
    assert report.point_ids[0] == report.point_ids[2]
    stored = client.retrieve("docs", ids=[point_id("same text here")])[0]
    assert stored.payload["doc_id"] == "a"


def test_ingest_does_not_mutate_inputs(client: Any) -> None:
    docs = candidates()
    before = copy.deepcopy([(c.text, c.id, dict(c.metadata)) for c in docs])
    pipeline = make(client)
    pipeline.ingest(docs, show_progress=False)
    pipeline.search(QUERY)
    assert [(c.text, c.id, dict(c.metadata)) for c in docs] == before


def test_ingest_keeps_bm25_statistics_of_the_collection(client: Any) -> None:
    pipeline = make(client)
    pipeline.ingest(candidates()[:4], show_progress=False)
    stats = client.get_collection("docs").config.metadata["rerankit"]["bm25"]
    stored = stats["bm25"]["avg_doc_len"]
    later = make(client)  # a new object on the same collection
    later.ingest(["Vectors and more vectors in a short note."], show_progress=False)
    pid = point_id("Vectors and more vectors in a short note.")
    sparse = client.retrieve("docs", ids=[pid], with_vectors=["bm25"])[0].vector["bm25"]
    expected = BM25Encoder(avg_doc_len=stored).encode_document(
        "Vectors and more vectors in a short note."
    )
    assert sparse.indices == expected.indices
    assert sparse.values == pytest.approx(expected.values)


def test_ingest_rejects_bad_documents(client: Any) -> None:
    pipeline = make(client)
    with pytest.raises(InvalidDocumentError) as info:
        pipeline.ingest(["fine", "   "], show_progress=False)
    assert info.value.index == 1
    with pytest.raises(InvalidDocumentError) as info:
        pipeline.ingest(["fine", 3], show_progress=False)  # type: ignore[list-item]
    assert info.value.index == 1
    with pytest.raises(ConfigurationError):
        pipeline.ingest("just a string", show_progress=False)
    with pytest.raises(ConfigurationError):
        pipeline.ingest(["x"], batch_size=0, show_progress=False)
    assert not client.collection_exists("docs")


def test_recreate_drops_the_collection(ingested: QdrantMultiStage, client: Any) -> None:
    report = ingested.ingest(["only this one"], recreate=True, show_progress=False)
    assert report.written == 1
    assert client.count("docs").count == 1


# -- stages, limits, ids and metadata ------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_configuration_keeps_ids_and_metadata(client: Any, name: str) -> None:
    pipeline = make(client, collection=f"c-{name}", **CONFIGS[name])
    pipeline.ingest(candidates(), show_progress=False)
    results = pipeline.search(QUERY)
    assert results.stages_run == EXPECTED_STAGES[name]
    assert results.observed == EXPECTED_STAGES[name]
    assert results, name
    originals = {c.id: c for c in candidates()}
    for rank, hit in enumerate(results):
        assert hit.rank == rank
        original = originals[hit.doc_id]
        assert hit.text == original.text
        assert hit.point_id == point_id(original.text)
        assert dict(hit.metadata) == dict(original.metadata)
        assert tuple(hit.stages) == EXPECTED_STAGES[name]
        final = hit.stages[EXPECTED_STAGES[name][-1]]
        assert final.rank == rank and final.score == pytest.approx(hit.score)
        metadata = results.metadata_for(hit)
        assert metadata["doc_id"] == hit.doc_id and metadata["point_id"] == hit.point_id
        assert metadata["source"] == original.metadata["source"]
        assert metadata["stages_run"] == list(EXPECTED_STAGES[name])
        assert set(metadata["stages"]) == set(EXPECTED_STAGES[name])
    scores = [h.score for h in results]
    assert scores == sorted(scores, reverse=True)


def test_stage_limits_are_respected(client: Any) -> None:
    reranker = OverlapReranker()
    pipeline = make(
        client,
        dense=DenseStage(limit=3, encoder=HashDense()),
        sparse=SparseStage(limit=4),
        fusion=FusionStage(limit=5),
        multivector=MultivectorStage(limit=4, encoder=HashTokens()),
        reranker=reranker,
        top_n=2,
    )
    pipeline.ingest(candidates(), show_progress=False)
    results = pipeline.search("vector database water")
    lists = results.stage_lists
    assert len(lists["dense"]) == 3
    assert len(lists["sparse"]) <= 4
    assert len(lists["fusion"]) == 5
    assert len(lists["multivector"]) == 4 == results.candidates
    # Each stage only sees what the previous one passed on.
    fused = {pid for pid, _ in lists["fusion"]}
    assert fused <= {pid for pid, _ in lists["dense"]} | {pid for pid, _ in lists["sparse"]}
    assert {pid for pid, _ in lists["multivector"]} <= fused
    assert [len(c) for c in reranker.calls] == [4]
    assert len(results) == 2
    assert [d.reason for d in results.rerank_results.dropped] == ["top_n", "top_n"]
    for hit in results:
        for stage, found in lists.items():
            ids = [pid for pid, _ in found]
            place = hit.stages[stage]
            if hit.point_id in ids:
                assert place.rank == ids.index(hit.point_id)
                assert place.score == found[place.rank][1]
            else:
                assert place.rank is None and place.score is None


def test_per_call_threshold_overrides(ingested: QdrantMultiStage, client: Any) -> None:
    assert len(ingested.search(QUERY)) == 5
    assert len(ingested.search(QUERY, top_n=2)) == 2
    empty = ingested.search(QUERY, top_n=0)
    assert not empty and empty.empty_reason == "top_n=0"
    with pytest.raises(ConfigurationError, match="reranker"):
        ingested.search(QUERY, min_score=0.5)
    reranked = make(client, reranker=OverlapReranker(), min_score=0.99)
    results = reranked.search(QUERY)
    assert not results and "min_score" in (results.empty_reason or "")
    assert len(reranked.search(QUERY, min_score=0.1)) > 0


def test_trace_off_gives_the_same_hits(ingested: QdrantMultiStage, client: Any) -> None:
    traced = ingested.search(QUERY)
    plain = make(client, trace=False).search(QUERY)
    assert [h.point_id for h in plain] == [h.point_id for h in traced]
    assert [h.score for h in plain] == [h.score for h in traced]
    assert plain.observed == ("multivector",) and not plain.traced and traced.traced
    assert set(plain[0].stages) == {"multivector"}
    assert "dense" not in plain.timings and "multivector" in plain.timings


def test_query_filter_applies_to_every_stage(ingested: QdrantMultiStage) -> None:
    keep = ["pasta", "coffee", "tea"]
    flt = models.Filter(
        must=[models.FieldCondition(key="metadata.source", match=models.MatchAny(any=keep))]
    )
    results = ingested.search(QUERY, query_filter=flt)
    assert results and {h.doc_id for h in results} <= set(keep)
    for found in results.stage_lists.values():
        assert {pid for pid, _ in found} <= {point_id(t) for d, t in DOCS if d in keep}


def test_query_without_bm25_terms(client: Any) -> None:
    hybrid = make(client)
    hybrid.ingest(candidates(), show_progress=False)
    results = hybrid.search("what is the")  # stop words only: no sparse prefetch
    assert results and results.stage_lists["sparse"] == ()
    assert all(h.stages["sparse"].rank is None for h in results)
    sparse_only = make(client, dense=None, multivector=None)
    empty = sparse_only.search("what is the")
    assert not empty and "no BM25 term" in (empty.empty_reason or "")


def test_timings_split_per_stage_and_render(ingested: QdrantMultiStage, client: Any) -> None:
    reranked = make(client, reranker=OverlapReranker(), top_n=3)
    runs = [reranked.search(q) for q in (QUERY, "water temperature", "python thread")]
    for run in runs:
        assert set(run.timings) == {*TIMED_STAGES, "pipeline", "total"}
        assert all(v >= 0 for v in run.timings.values())
        assert run.timings["pipeline"] == pytest.approx(
            run.timings["encode"] + run.timings["multivector"] + run.timings["rerank"]
        )
        assert run.timings["total"] >= run.timings["pipeline"]
    text = render_results(runs[0])
    assert text.startswith(f"query: {QUERY}")
    assert "multivector" in text and "rerank" in text and runs[0][0].doc_id in text
    summary = LatencySummary.from_results(runs)
    assert [s.stage for s in summary.stages][:6] == TIMED_STAGES
    assert summary.stage("rerank").count == 3
    assert summary.to_markdown().startswith("| stage | median ms")
    with pytest.raises(ConfigurationError):
        LatencySummary.from_results([object()])  # type: ignore[list-item]


async def test_async_search_equals_sync(client: Any) -> None:
    pipeline = make(client, reranker=OverlapReranker(), top_n=4)
    pipeline.ingest(candidates(), show_progress=False)
    for query in (QUERY, "water temperature for tea"):
        sync = pipeline.search(query)
        asyn = await pipeline.asearch(query)
        assert [h.point_id for h in asyn] == [h.point_id for h in sync]
        assert [h.score for h in asyn] == [h.score for h in sync]
        for a, s in zip(asyn, sync, strict=True):
            assert {k: v.rank for k, v in a.stages.items()} == {
                k: v.rank for k, v in s.stages.items()
            }
            # Embedded Qdrant scores in numpy: the last float32 bit may differ between threads.
            for stage, place in a.stages.items():
                other = s.stages[stage].score
                assert place.score == (None if other is None else pytest.approx(other, rel=1e-6))
        assert {k: [p for p, _ in v] for k, v in asyn.stage_lists.items()} == {
            k: [p for p, _ in v] for k, v in sync.stage_lists.items()
        }


async def test_async_search_uses_the_async_client_when_there_is_one(client: Any) -> None:
    calls: list[str] = []

    class AsyncFacade:  # what an AsyncQdrantClient offers, over the embedded store
        async def query_points(self, collection: str, **kwargs: Any) -> Any:
            calls.append(collection)
            return client.query_points(collection, **kwargs)

    make(client).ingest(candidates(), show_progress=False)
    pipeline = make(client, aclient=AsyncFacade())
    sync = pipeline.search(QUERY)
    asyn = await pipeline.asearch(QUERY)
    assert calls == ["docs"] * 4  # dense, sparse, fusion traces + the nested query
    assert [h.point_id for h in asyn] == [h.point_id for h in sync]


@pytest.mark.parametrize(
    ("overrides", "query"),
    [
        ({}, QUERY),
        ({"trace": False}, QUERY),
        ({"reranker": OverlapReranker(), "top_n": 2}, QUERY),
        ({"reranker": OverlapReranker(), "min_score": 0.99}, QUERY),
        ({}, "what is the"),  # no BM25 term: the sparse prefetch is skipped
        ({"dense": None, "multivector": None}, "what is the"),  # nothing runs at all
    ],
)
async def test_async_search_records_what_sync_search_records(
    ingested: QdrantMultiStage, client: Any, overrides: dict[str, Any], query: str
) -> None:
    pipeline = make(client, **overrides)
    sync = pipeline.search(query)
    asyn = await pipeline.asearch(query)
    assert (asyn.stages_run, asyn.observed, asyn.traced) == (
        sync.stages_run,
        sync.observed,
        sync.traced,
    )
    assert list(asyn.timings) == list(sync.timings)
    assert {k: [p for p, _ in v] for k, v in asyn.stage_lists.items()} == {
        k: [p for p, _ in v] for k, v in sync.stage_lists.items()
    }
    assert (asyn.empty_reason, asyn.candidates) == (sync.empty_reason, sync.candidates)
    assert [h.point_id for h in asyn] == [h.point_id for h in sync]


# -- errors --------------------------------------------------------------------------------------


def test_missing_multivector_field_is_named(client: Any) -> None:
    make(client, multivector=None).ingest(candidates(), show_progress=False)
    pipeline = make(
        client, multivector=MultivectorStage(vector_name="colbert", limit=3, encoder=HashTokens())
    )
    with pytest.raises(MissingVectorFieldError) as info:
        pipeline.search(QUERY)
    err = info.value
    assert (err.field, err.kind, err.collection) == ("colbert", "multivector", "docs")
    assert "'colbert'" in str(err) and "multivector" in str(err)
    assert "dense (dense)" in str(err) and "bm25 (sparse)" in str(err)
    assert isinstance(err, ConfigurationError) and isinstance(err, RerankError)
    with pytest.raises(MissingVectorFieldError, match="'colbert'"):
        pipeline.ingest(["one more"], show_progress=False)


@pytest.mark.parametrize(
    ("overrides", "field", "kind"),
    [
        ({"dense": DenseStage(vector_name="minilm", encoder=HashDense())}, "minilm", "dense"),
        ({"sparse": SparseStage(vector_name="splade")}, "splade", "sparse"),
    ],
)
def test_missing_prefetch_fields_are_named(
    client: Any, overrides: dict[str, Any], field: str, kind: str
) -> None:
    make(client).ingest(candidates()[:3], show_progress=False)
    with pytest.raises(MissingVectorFieldError) as info:
        make(client, **overrides).search(QUERY)
    assert (info.value.field, info.value.kind) == (field, kind)
    assert repr(field) in str(info.value)


def test_wrong_kind_of_field(client: Any) -> None:
    make(client).ingest(candidates()[:3], show_progress=False)
    wrong = make(
        client,
        dense=None,
        multivector=MultivectorStage(vector_name="dense", limit=5, encoder=HashTokens()),
    )
    with pytest.raises(VectorFieldMismatchError, match="'dense' is a dense field"):
        wrong.validate_collection()


def test_sparse_field_without_idf_and_size_mismatch(client: Any) -> None:
    client.create_collection(
        "plain",
        vectors_config={"dense": models.VectorParams(size=8, distance=models.Distance.COSINE)},
        sparse_vectors_config={"bm25": models.SparseVectorParams()},
    )
    with pytest.raises(VectorFieldMismatchError, match="IDF"):
        make(client, collection="plain", multivector=None).search(QUERY)
    dense_only = make(client, collection="plain", sparse=None, multivector=None)
    with pytest.raises(VectorFieldMismatchError, match="8-dimensional") as info:
        dense_only.search(QUERY)
    assert info.value.field == "dense"


def test_missing_collection(client: Any) -> None:
    with pytest.raises(CollectionNotFoundError, match="'nowhere'"):
        make(client, collection="nowhere").search(QUERY)


def test_constructor_validation(client: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"fusion\.limit"):
        make(client, fusion=FusionStage(limit=13))
    with pytest.raises(ConfigurationError, match=r"multivector\.limit"):
        make(client, multivector=MultivectorStage(limit=9, encoder=HashTokens()))
    with pytest.raises(ConfigurationError, match=r"multivector\.limit"):
        make(client, sparse=None, multivector=MultivectorStage(limit=7, encoder=HashTokens()))
    with pytest.raises(ConfigurationError, match="prefetch"):
        make(client, dense=None, sparse=None)
    with pytest.raises(ConfigurationError, match="reranker"):
        make(client, min_score=0.3)
    with pytest.raises(ConfigurationError, match="reranker"):
        make(client, policy=ThresholdPolicy(largest_gap=0.2))
    with pytest.raises(ConfigurationError):
        make(client, top_n=-1)
    with pytest.raises(ConfigurationError, match="vector names"):
        make(client, sparse=SparseStage(vector_name="dense"))
    with pytest.raises(ConfigurationError, match="not both"):
        QdrantMultiStage(collection="x", client=client, path=":memory:")
    with pytest.raises(ConfigurationError):
        make(client, collection=" ")
    with pytest.raises(ConfigurationError):
        make(client, fusion="max")
    with pytest.raises(ConfigurationError):
        make(client, reranker=42)
    for bad in (
        lambda: DenseStage(limit=0),
        lambda: DenseStage(distance="l2"),  # type: ignore[arg-type]
        lambda: DenseStage(encoder=object()),  # type: ignore[arg-type]
        lambda: SparseStage(b=2.0),
        lambda: SparseStage(avg_doc_len=0),
        lambda: SparseStage(vector_name=""),
        lambda: FusionStage(method="max"),  # type: ignore[arg-type]
        lambda: FusionStage(limit=True),
        lambda: MultivectorStage(encoder=HashDense()),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError):
            bad()
    with pytest.raises(TypeError):
        DenseStage(100)  # type: ignore[misc]  # keyword-only


def test_fusion_shorthand_and_properties(client: Any) -> None:
    pipeline = make(
        client,
        dense=DenseStage(encoder=HashDense()),
        sparse=SparseStage(),
        fusion="dbsf",
        multivector=None,
    )
    assert pipeline.fusion is not None and pipeline.fusion.method == "dbsf"
    assert pipeline.limits == {"dense": 100, "sparse": 100, "fusion": 50}
    assert pipeline.stages == ("dense", "sparse", "fusion")
    assert "QdrantMultiStage(collection='docs'" in repr(pipeline)


# -- embedded store on disk, server by url ---------------------------------------------------------


def test_embedded_folder_survives_reopening(tmp_path: Any) -> None:
    folder = str(tmp_path / "store")
    first = make(None, path=folder)
    first.ingest(candidates(), show_progress=False)
    expected = [h.point_id for h in first.search(QUERY)]
    first.close()
    second = make(None, path=folder)
    assert [h.point_id for h in second.search(QUERY)] == expected
    assert second.ingest(candidates(), show_progress=False).written == 0
    second.close()


def test_url_reaches_a_server_without_code_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from rerankit.qdrant import client as module

    opened: list[dict[str, Any]] = []
    embedded = open_client(path=":memory:")

    def fake_open_client(**kwargs: Any) -> Any:
        opened.append(kwargs)
        return embedded  # stands in for QdrantClient(url=...): the same client API

    class FakeAsync:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

    class FakeModule:
        AsyncQdrantClient = FakeAsync

    monkeypatch.setattr(module, "open_client", fake_open_client)
    monkeypatch.setattr(module, "qdrant_client_module", lambda: FakeModule)
    pipeline = make(None, url="http://qdrant.example:6333", api_key="k")
    assert opened == [{"url": "http://qdrant.example:6333", "path": None, "api_key": "k"}]
    aclient = pipeline.clients.aclient()
    assert isinstance(aclient, FakeAsync)
    assert aclient.kwargs == {"url": "http://qdrant.example:6333", "api_key": "k"}
    pipeline.ingest(candidates()[:3], show_progress=False)
    assert pipeline.search(QUERY)
    embedded.close()


# -- the offline MiniLM --------------------------------------------------------------------------


@pytest.mark.model
def test_multivector_rescoring_ranks_as_the_late_interaction_reranker(client: Any) -> None:
    pipeline = QdrantMultiStage(
        collection="minilm",
        client=client,
        dense=DenseStage(limit=12),
        sparse=SparseStage(limit=12),
        fusion=FusionStage(limit=12),
        multivector=MultivectorStage(limit=12),
        trace=False,
    )
    pipeline.ingest(candidates(), show_progress=False)
    query = "how are document token vectors scored against a query"
    results = pipeline.search(query)
    reranked = LateInteractionReranker().rerank(query, [h.text for h in results])
    assert [r.index for r in reranked] == list(range(len(results)))
    n_query_tokens = pipeline.multivector_encoder.embed_query_tokens(query).shape[0]  # type: ignore[union-attr]
    for hit, result in zip(results, reranked, strict=True):
        # Qdrant's MaxSim sums over query tokens; the reranker averages.
        assert hit.score / n_query_tokens == pytest.approx(result.raw_score, abs=1e-4)


@pytest.mark.model
@pytest.mark.parametrize(
    "module",
    [
        "rerankit.multistage",
        "rerankit.multistage.pipeline",
        "rerankit.multistage.encoders",
        "rerankit.multistage.stages",
        "rerankit.multistage.results",
        "rerankit.multistage.report",
        "rerankit.multistage.plan",
        "rerankit.multistage.assemble",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    failures, _ = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert failures == 0


def test_import_is_light() -> None:
    code = (
        "import sys, rerankit.multistage; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'langchain_core', "
        "'llama_index', 'qdrant_client') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_results_repr_and_types(ingested: QdrantMultiStage) -> None:
    results = ingested.search(QUERY)
    assert isinstance(results, MultiStageResults) and "5 hits" in repr(results)
    with pytest.raises(TypeError):
        results[0].metadata["source"] = "changed"  # type: ignore[index]
