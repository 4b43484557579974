"""QdrantMultiStageRetriever through LangChain and LlamaIndex, on embedded Qdrant: ingestion,
ids and metadata through every stage, limits, typed errors, sync == async, and LangChain's
standard retriever suite."""

from __future__ import annotations

import copy
import doctest
import importlib
from typing import Any

import pytest
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever as LCBase
from langchain_tests.integration_tests import RetrieversIntegrationTests
from llama_index.core import Document as LIDocument
from llama_index.core.base.base_retriever import BaseRetriever as LIBase
from llama_index.core.schema import MetadataMode, TextNode

from rerankit import ConfigurationError
from rerankit.errors import MissingVectorFieldError
from rerankit.langchain import MultiStageDocuments
from rerankit.langchain import QdrantMultiStageRetriever as LCRetriever
from rerankit.llama_index import MultiStageNodes, MultiStageQuery
from rerankit.llama_index import QdrantMultiStageRetriever as LIRetriever
from rerankit.multistage import (
    MultiStageResults,
    MultivectorStage,
    QdrantMultiStage,
)
from rerankit.qdrant import open_client, point_id

from ._fixtures import OverlapReranker, RetrieverSuiteSettings
from .test_multistage import DOCS, QUERY, HashTokens, make, models

STAGES = ["dense", "sparse", "fusion", "multivector", "rerank"]


def lc_docs() -> list[LCDocument]:
    return [
        LCDocument(page_content=text, id=doc_id, metadata={"source": doc_id, "n": i})
        for i, (doc_id, text) in enumerate(DOCS)
    ]


def li_nodes() -> list[TextNode]:
    return [
        TextNode(id_=doc_id, text=text, metadata={"source": doc_id, "n": i})
        for i, (doc_id, text) in enumerate(DOCS)
    ]


@pytest.fixture
def pipeline(client: Any) -> QdrantMultiStage:
    return make(client, reranker=OverlapReranker(), top_n=4)


# -- LangChain -----------------------------------------------------------------------------------


def test_langchain_ids_and_metadata_survive_every_stage(pipeline: QdrantMultiStage) -> None:
    docs = lc_docs()
    before = copy.deepcopy(docs)
    retriever = LCRetriever(pipeline=pipeline)
    report = retriever.add_documents(docs, show_progress=False)
    assert report.written == len(DOCS)
    found = retriever.invoke(QUERY)
    assert docs == before  # inputs untouched
    assert isinstance(found, MultiStageDocuments) and len(found) == 4
    originals = {d.id: d for d in docs}
    for rank, doc in enumerate(found):
        original = originals[doc.id]
        assert doc.page_content == original.page_content
        meta = doc.metadata
        assert meta["source"] == original.metadata["source"] and meta["n"] == original.metadata["n"]
        assert meta["doc_id"] == doc.id
        assert meta["point_id"] == point_id(original.page_content)
        assert meta["stages_run"] == STAGES
        assert list(meta["stages"]) == STAGES
        assert meta["stages"]["rerank"] == {"rank": rank, "score": meta["relevance_score"]}
        assert meta["stages"]["multivector"]["rank"] is not None
        assert meta["rerank"]["rank"] == rank
        assert meta["rerank"]["original_rank"] == meta["stages"]["multivector"]["rank"]
    timings = found.results.timings
    assert {"encode", "multivector", "rerank", "pipeline"} <= set(timings)


def test_langchain_per_call_threshold_and_unknown_arguments(pipeline: QdrantMultiStage) -> None:
    retriever = LCRetriever(pipeline=pipeline, top_n=3)
    retriever.add_documents(lc_docs(), show_progress=False)
    assert len(retriever.invoke(QUERY)) == 3
    assert len(retriever.invoke(QUERY, top_n=1)) == 1
    nothing = retriever.invoke(QUERY, min_score=1.0)
    assert nothing == [] and "min_score" in (nothing.empty_reason or "")
    with pytest.raises(ConfigurationError, match="unexpected"):
        retriever.invoke(QUERY, k=2)
    with pytest.raises(ConfigurationError):
        retriever.add_documents(["plain string"], show_progress=False)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="top_n"):
        LCRetriever(pipeline=pipeline, top_n=-1)


async def test_langchain_sync_equals_async(pipeline: QdrantMultiStage) -> None:
    retriever = LCRetriever(pipeline=pipeline)
    retriever.add_documents(lc_docs(), show_progress=False)
    for query in (QUERY, "water temperature for tea"):
        sync = retriever.invoke(query)
        asyn = await retriever.ainvoke(query)
        assert [d.id for d in asyn] == [d.id for d in sync]
        assert [d.metadata["relevance_score"] for d in asyn] == [
            d.metadata["relevance_score"] for d in sync
        ]
        assert [d.metadata["stages"]["fusion"]["rank"] for d in asyn] == [
            d.metadata["stages"]["fusion"]["rank"] for d in sync
        ]


def test_langchain_missing_field_is_named(client: Any) -> None:
    LCRetriever(pipeline=make(client, multivector=None)).add_documents(
        lc_docs(), show_progress=False
    )
    retriever = LCRetriever(
        pipeline=make(
            client, multivector=MultivectorStage(vector_name="late", limit=4, encoder=HashTokens())
        )
    )
    with pytest.raises(MissingVectorFieldError, match="'late'") as info:
        retriever.invoke(QUERY)
    assert info.value.field == "late"


class TestQdrantMultiStageRetrieverStandard(RetrieverSuiteSettings, RetrieversIntegrationTests):
    """LangChain's standard retriever suite."""

    @property
    def retriever_constructor(self) -> type[LCRetriever]:
        return LCRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        pipeline = make(open_client(path=":memory:"), reranker=OverlapReranker())
        pipeline.ingest([d.page_content for d in lc_docs()], show_progress=False)
        return {"pipeline": pipeline}


# -- LlamaIndex ----------------------------------------------------------------------------------


def test_llama_index_ids_and_metadata_survive_every_stage(pipeline: QdrantMultiStage) -> None:
    nodes = li_nodes()
    before = [n.model_copy(deep=True) for n in nodes]
    retriever = LIRetriever(pipeline=pipeline)
    retriever.add_documents(nodes, show_progress=False)
    found = retriever.retrieve(QUERY)
    assert [n.model_dump() for n in nodes] == [n.model_dump() for n in before]
    assert len(found) == 4
    originals = {n.node_id: n for n in nodes}
    for rank, item in enumerate(found):
        node = item.node
        # The node id is the point id (unique); the ingested node's id is its ref_doc_id.
        original = originals[node.ref_doc_id]
        assert node.get_content(metadata_mode=MetadataMode.NONE) == original.text
        meta = node.metadata
        assert meta["source"] == original.metadata["source"]
        assert node.node_id == meta["point_id"] == point_id(original.text)
        assert meta["doc_id"] == node.ref_doc_id
        assert list(meta["stages"]) == STAGES and meta["stages_run"] == STAGES
        assert item.score == meta["relevance_score"] == meta["stages"]["rerank"]["score"]
        assert meta["stages"]["rerank"]["rank"] == rank
        llm_text = node.get_content(metadata_mode=MetadataMode.LLM)
        assert "source: " in llm_text
        for hidden in ("stages", "point_id", "rerank", "relevance_score", "doc_id"):
            assert f"{hidden}: " not in llm_text


def test_llama_index_documents_and_per_call_settings(pipeline: QdrantMultiStage) -> None:
    retriever = LIRetriever(pipeline=pipeline, top_n=2)
    docs = [LIDocument(id_=d, text=t, metadata={"source": d}) for d, t in DOCS]
    assert retriever.add_documents(docs, show_progress=False).written == len(DOCS)
    assert retriever.add_documents(docs, show_progress=False).skipped == len(DOCS)
    found = retriever.retrieve(QUERY)
    assert len(found) == 2 and {n.node.ref_doc_id for n in found} <= {d for d, _ in DOCS}
    assert len(retriever.retrieve(MultiStageQuery(QUERY, top_n=1))) == 1
    assert len(retriever.retrieve(MultiStageQuery(QUERY))) == 2  # None keeps the retriever's
    assert retriever.retrieve(MultiStageQuery(QUERY, min_score=1.0)) == []
    keep = models.Filter(
        must=[models.FieldCondition(key="metadata.source", match=models.MatchValue(value="gil"))]
    )
    only = retriever.retrieve(MultiStageQuery(QUERY, top_n=5, query_filter=keep))
    assert [n.node.ref_doc_id for n in only] == ["gil"]
    with pytest.raises(ConfigurationError):
        retriever.add_documents(["plain"], show_progress=False)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        LIRetriever(pipeline="nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        LIRetriever(pipeline=pipeline, top_n=-2)


def test_both_faces_have_one_contract(pipeline: QdrantMultiStage) -> None:
    settings = {"top_n": 3, "min_score": 0.1, "query_filter": None}
    faces = [LCRetriever(pipeline=pipeline), LIRetriever(pipeline=pipeline)]
    for face in faces:  # the same defaults
        assert (face.pipeline, face.top_n, face.min_score, face.query_filter) == (
            pipeline,
            None,
            None,
            None,
        )
    faces = [LCRetriever(pipeline=pipeline, **settings), LIRetriever(pipeline=pipeline, **settings)]
    for face in faces:  # the same fields
        assert {k: getattr(face, k) for k in settings} == settings
    methods = [
        {n for n in dir(type(f)) if callable(getattr(type(f), n)) and not n.startswith("_")}
        - set(dir(base))
        for f, base in zip(faces, (LCBase, LIBase), strict=True)
    ]
    assert methods[0] == methods[1] == {"add_documents"}  # no extra method on one face
    faces[0].add_documents(lc_docs(), show_progress=False)
    keep = models.Filter(
        must=[models.FieldCondition(key="metadata.source", match=models.MatchValue(value="tea"))]
    )
    lc = LCRetriever(pipeline=pipeline, query_filter=keep).invoke("water")
    li = LIRetriever(pipeline=pipeline, query_filter=keep).retrieve("water")
    assert [d.metadata["doc_id"] for d in lc] == [n.node.ref_doc_id for n in li] == ["tea"]


async def test_llama_index_sync_equals_async(pipeline: QdrantMultiStage) -> None:
    retriever = LIRetriever(pipeline=pipeline)
    retriever.add_documents(li_nodes(), show_progress=False)
    for query in (QUERY, "water temperature for tea"):
        sync = retriever.retrieve(query)
        asyn = await retriever.aretrieve(query)
        assert [n.node.node_id for n in asyn] == [n.node.node_id for n in sync]
        assert [n.score for n in asyn] == [n.score for n in sync]
        assert [n.node.metadata["stages"]["dense"]["rank"] for n in asyn] == [
            n.node.metadata["stages"]["dense"]["rank"] for n in sync
        ]


def test_llama_index_missing_field_is_named(client: Any) -> None:
    LIRetriever(pipeline=make(client, sparse=None)).add_documents(li_nodes(), show_progress=False)
    retriever = LIRetriever(pipeline=make(client))
    with pytest.raises(MissingVectorFieldError, match="'bm25'") as info:
        retriever.retrieve(QUERY)
    assert (info.value.field, info.value.kind) == ("bm25", "sparse")


def test_both_frameworks_agree(pipeline: QdrantMultiStage) -> None:
    LCRetriever(pipeline=pipeline).add_documents(lc_docs(), show_progress=False)
    lc = LCRetriever(pipeline=pipeline).invoke(QUERY)
    li = LIRetriever(pipeline=pipeline).retrieve(QUERY)
    assert [d.id for d in lc] == [n.node.ref_doc_id for n in li]
    assert [d.metadata["point_id"] for d in lc] == [n.node.node_id for n in li]
    assert [d.metadata["relevance_score"] for d in lc] == [n.score for n in li]
    for doc, item in zip(lc, li, strict=True):
        theirs = item.node.metadata["stages"]
        for stage, place in doc.metadata["stages"].items():
            assert place["rank"] == theirs[stage]["rank"]
            # Embedded Qdrant re-normalises cosine vectors in place on every query, so a
            # score may move in its last float32 bit from one query to the next.
            other = theirs[stage]["score"]
            assert place["score"] == (None if other is None else pytest.approx(other, rel=1e-6))


@pytest.mark.model
@pytest.mark.parametrize(
    "module", ["rerankit.langchain.multistage", "rerankit.llama_index.multistage"]
)
def test_docstring_examples_run(module: str) -> None:
    failures, _ = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert failures == 0


def test_result_lists_keep_their_arguments_and_carry_the_results() -> None:
    results = MultiStageResults(
        [],
        query="q",
        stages_run=("dense",),
        observed=("dense",),
        timings={},
        empty_reason="no point matched",
    )
    docs = MultiStageDocuments([LCDocument(page_content="x")], results)
    nodes = MultiStageNodes([], results)
    assert isinstance(docs, list) and [d.page_content for d in docs] == ["x"]
    assert docs.results is results and docs.empty_reason == "no point matched"
    assert isinstance(nodes, list) and nodes == []
    assert nodes.results is results and nodes.empty_reason == "no point matched"
