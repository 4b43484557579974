"""rerankit's one Qdrant layer (:mod:`rerankit.qdrant`): opening clients with typed errors, the
schema, the payload, and the one idempotent ingester, on embedded Qdrant and loopback servers."""

from __future__ import annotations

import doctest
import importlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from rerankit import Candidate, ConfigurationError, InvalidDocumentError
from rerankit.errors import (
    InvalidQdrantURLError,
    MissingVectorFieldError,
    QdrantStoreLockedError,
    QdrantUnreachableError,
    RerankError,
    RerankWarning,
    VectorDimensionError,
)
from rerankit.qdrant import (
    VECTOR_TITLE_BM25,
    DenseField,
    Encoders,
    Layout,
    SparseField,
    ingest,
    open_client,
    point_id,
)
from rerankit.qdrant.client import check_url
from rerankit.qdrant.locks import lock_holder
from rerankit.qdrant.payload import as_records, from_payload, to_payload
from rerankit.sparse import BM25Encoder
from tests.loopback import LoopbackServer, Reply, Request

from .test_multistage import HashDense

pytest.importorskip("qdrant_client")

DOCS = [
    Candidate("Qdrant stores vectors with payloads.", id="q", metadata={"title": "Qdrant"}),
    Candidate("Boil the pasta for nine minutes.", id="p", metadata={"title": "Pasta"}),
    Candidate("BM25 ranks documents by term frequency.", id="b", metadata={"title": "BM25"}),
]


class Dim:
    """A dense encoder of a fixed size (a stand-in model at the model boundary)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0 + len(t) % 3] + [0.5] * (self.size - 1) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0] * self.size


# -- opening a server: malformed and unreachable URLs --------------------------------------------


@pytest.mark.parametrize(
    "url", ["notaurl", "localhost:6333", "ftp://host:21", "http://", "http://host:99999", ""]
)
def test_malformed_urls_are_refused_before_any_request(url: str) -> None:
    with pytest.raises(InvalidQdrantURLError) as info:
        open_client(url=url)
    assert isinstance(info.value, ConfigurationError) and info.value.url == url
    assert "http://localhost:6333" in str(info.value) and "\n" not in str(info.value)


def test_url_checks() -> None:
    assert check_url("https://qdrant.example.com:6333/prefix") == (
        "https://qdrant.example.com:6333/prefix"
    )
    with pytest.raises(ConfigurationError, match="not both"):
        open_client(url="http://localhost:6333", path=":memory:")
    with pytest.raises(ConfigurationError, match="api_key needs url"):
        open_client(path=":memory:", api_key="k")


def test_a_closed_port_fails_fast_with_a_typed_error() -> None:
    started = time.monotonic()
    with pytest.raises(QdrantUnreachableError) as info:
        open_client(url="http://127.0.0.1:9")
    assert time.monotonic() - started < 10  # deadline: no retry loop
    err = info.value
    assert err.url == "http://127.0.0.1:9" and isinstance(err, RerankError)
    assert "cannot reach a Qdrant server at http://127.0.0.1:9" in str(err)
    assert "embedded store" in str(err)


def _qdrant_like(request: Request) -> Reply:
    if request.path == "/collections":
        return Reply(200, {"result": {"collections": []}, "status": "ok", "time": 0.0})
    return Reply(200, {"title": "qdrant - vector search engine", "version": "1.12.0"})


def test_a_server_that_does_not_answer_fails_within_the_timeout() -> None:
    with LoopbackServer(lambda r: Reply(200, {}, delay=20.0)) as server:
        started = time.monotonic()
        with pytest.raises(QdrantUnreachableError):
            open_client(url=server.url, timeout=1.0)
        assert time.monotonic() - started < 8  # deadline: 1 s timeout plus generous grace


def test_a_refused_key_and_a_reachable_server() -> None:
    refusing = LoopbackServer(lambda r: Reply(401, {"status": {"error": "unauthorized"}}))
    with refusing as server, pytest.raises(ConfigurationError, match=r"HTTP 401.*API key"):
        open_client(url=server.url, api_key="wrong")
    with LoopbackServer(_qdrant_like) as server:
        client = open_client(url=server.url)
        try:
            assert client.get_collections().collections == []
        finally:
            client.close()
        assert server.count("/collections") >= 2  # the probe, then our call


# -- opening the embedded store: a locked folder ---------------------------------------------------


def test_a_folder_open_in_this_process_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    first = open_client(path=str(folder))
    try:
        with pytest.raises(QdrantStoreLockedError) as info:
            open_client(path=str(folder))
        err = info.value
        assert isinstance(err, RuntimeError) and err.path == str(folder)
        assert str(folder) in str(err) and "in this process" in str(err)
        assert "--qdrant-path" in str(err) and "':memory:'" in str(err)
        if sys.platform.startswith("linux"):
            assert err.holder_pid == os.getpid()
    finally:
        first.close()
    open_client(path=str(folder)).close()  # free again once closed


HOLDER = textwrap.dedent(
    """
    import sys
    from qdrant_client import QdrantClient
    client = QdrantClient(path=sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    client.close()
    """
)


def test_a_folder_open_in_another_process_names_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with pytest.raises(QdrantStoreLockedError) as info:
            open_client(path=str(folder))
        err = info.value
        assert str(folder) in str(err) and "close that client" in str(err)
        if sys.platform.startswith("linux"):
            assert err.holder_pid == proc.pid and f"process {proc.pid}" in str(err)
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    open_client(path=str(folder)).close()


def test_lock_holder_reads_proc_locks(tmp_path: Path) -> None:
    (tmp_path / ".lock").write_text("tmp lock file")
    info = (tmp_path / ".lock").stat()
    where = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    table = (
        "1: POSIX  ADVISORY  WRITE 11 00:00:1 0 EOF\n"
        f"2: FLOCK  ADVISORY  WRITE 4242 {where} 0 EOF\n"
    )
    assert lock_holder(tmp_path, locks=table) == 4242
    waiter = f"2: -> FLOCK  ADVISORY  WRITE 77 {where} 0 EOF\n"
    assert lock_holder(tmp_path, locks=waiter) is None
    assert lock_holder(tmp_path / "nowhere", locks=table) is None


def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigurationError, match=r"cannot use .* as an embedded Qdrant store"):
        open_client(path=str(blocker / "store"))


# -- records and payloads --------------------------------------------------------------------------


def test_payload_round_trip_keeps_text_id_and_metadata() -> None:
    record = Candidate("text", id="d1", metadata={"source": "s"})
    payload = to_payload(record)
    assert payload == {"text": "text", "doc_id": "d1", "metadata": {"source": "s", "doc_id": "d1"}}
    stored = from_payload(payload, collection="c", point="p")
    assert (stored.text, stored.doc_id, dict(stored.metadata)) == ("text", "d1", {"source": "s"})
    own = to_payload(Candidate("t", id="d1", metadata={"doc_id": "mine"}))
    assert own["metadata"]["doc_id"] == "mine"  # the caller's key is not overwritten
    assert dict(from_payload(own, collection="c", point="p").metadata) == {"doc_id": "mine"}
    with pytest.raises(ConfigurationError, match="has no 'text' text"):
        from_payload({"page_content": "x"}, collection="c", point="p")


@pytest.mark.parametrize(
    ("document", "what"),
    [
        ("bad \ud800 text", "its text"),
        (Candidate("fine", id="id-\udfff"), "its id"),
        (Candidate("fine", metadata={"title": "t\ud800"}), "its title"),
    ],
)
def test_a_lone_surrogate_is_a_typed_error_naming_the_document(
    client: Any, document: Any, what: str
) -> None:
    with pytest.raises(InvalidDocumentError) as info:
        ingest(
            client,
            "docs",
            ["fine text", document],
            layout=Layout(sparse=SparseField()),
            encoders=Encoders(),
            show_progress=False,
        )
    assert info.value.index == 1
    assert f"document 1: {what} is not valid Unicode" in str(info.value)
    assert not client.collection_exists("docs")  # nothing written
    with pytest.raises(InvalidDocumentError):
        as_records([Candidate("x", metadata={"title": 3})])


# -- the ingester ----------------------------------------------------------------------------------


def test_ingest_is_idempotent_and_batched(client: Any) -> None:
    encoder = HashDense()
    layout = Layout(dense=DenseField(), sparse=SparseField())
    first = ingest(
        client,
        "docs",
        [*DOCS, DOCS[0]],
        layout=layout,
        encoders=Encoders(dense=encoder),
        batch_size=2,
        show_progress=False,
    )
    assert (first.received, first.duplicates, first.written, first.skipped) == (4, 1, 3, 0)
    assert [len(c) for c in encoder.calls] == [2, 1]
    again = ingest(
        client, "docs", DOCS, layout=layout, encoders=Encoders(dense=encoder), show_progress=False
    )
    assert (again.written, again.skipped) == (0, 3) and len(encoder.calls) == 2
    point = client.retrieve("docs", ids=[point_id(DOCS[0].text)], with_vectors=True)[0]
    assert set(point.vector) == {"dense", "bm25"}
    assert point.payload["text"] == DOCS[0].text and point.payload["doc_id"] == "q"


def test_a_wrong_dimension_is_refused_before_writing(client: Any) -> None:
    layout = Layout(dense=DenseField())
    ingest(
        client,
        "docs",
        DOCS[:1],
        layout=layout,
        encoders=Encoders(dense=Dim(8)),
        show_progress=False,
    )
    with pytest.raises(VectorDimensionError) as info:
        ingest(
            client,
            "docs",
            DOCS[1:],
            layout=layout,
            encoders=Encoders(dense=Dim(5)),
            show_progress=False,
        )
    err = info.value
    assert (err.collection, err.field, err.expected, err.got) == ("docs", "dense", 8, 5)
    assert "8-dimensional" in str(err) and "the encoder gives 5" in str(err)
    assert client.count("docs").count == 1


def test_a_missing_field_is_named(client: Any) -> None:
    ingest(
        client,
        "docs",
        DOCS,
        layout=Layout(sparse=SparseField()),
        encoders=Encoders(),
        show_progress=False,
    )
    with pytest.raises(MissingVectorFieldError) as info:
        ingest(
            client,
            "docs",
            DOCS,
            layout=Layout(dense=DenseField()),
            encoders=Encoders(dense=Dim(4)),
            show_progress=False,
        )
    assert (info.value.field, info.value.kind) == ("dense", "dense")
    assert "bm25 (sparse)" in str(info.value)


def test_encoders_must_match_the_layout(client: Any) -> None:
    with pytest.raises(ConfigurationError, match="go together"):
        ingest(
            client,
            "docs",
            DOCS,
            layout=Layout(dense=DenseField()),
            encoders=Encoders(),
            show_progress=False,
        )
    with pytest.raises(ConfigurationError, match="at least one vector field"):
        Layout()
    with pytest.raises(ConfigurationError, match="must differ"):
        Layout(dense=DenseField(vector_name="x"), sparse=SparseField(vector_name="x"))
    with pytest.raises(ConfigurationError, match="source"):
        SparseField(source="body")  # type: ignore[arg-type]


def test_a_title_field_encodes_titles_only(client: Any) -> None:
    field = SparseField(vector_name=VECTOR_TITLE_BM25, source="title")
    ingest(
        client, "docs", DOCS, layout=Layout(sparse=field), encoders=Encoders(), show_progress=False
    )
    point = client.retrieve("docs", ids=[point_id(DOCS[1].text)], with_vectors=True)[0]
    avg = client.get_collection("docs").config.metadata["rerankit"]["bm25"][VECTOR_TITLE_BM25]
    assert avg["source"] == "title" and avg["avg_doc_len"] == 1.0
    expected = BM25Encoder(avg_doc_len=1.0).encode_document("Pasta")
    assert point.vector[VECTOR_TITLE_BM25].indices == expected.indices
    assert point.payload["text"] == DOCS[1].text  # the whole text is kept for the reranker


@pytest.mark.parametrize(
    "name",
    [
        "rerankit.qdrant",
        "rerankit.qdrant.names",
        "rerankit.qdrant.client",
        "rerankit.qdrant.payload",
        "rerankit.qdrant.schema",
        "rerankit.qdrant.encoding",
        "rerankit.qdrant.ingest",
        "rerankit.qdrant.stores",
        "rerankit.qdrant.locks",
        "rerankit.multistage.options",
        "rerankit.multistage.config",
        "rerankit.demo.documents",
        "rerankit.demo.run",
        "rerankit.cli_args",
        "rerankit.sparse",
        "rerankit.errors",
    ],
)
def test_docstring_examples_run(name: str) -> None:
    failures, _ = doctest.testmod(
        importlib.import_module(name),
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert failures == 0


# -- rerankit eval's first stage on the layer -----------------------------------------------------


def _beir(root: Path, corpus: list[tuple[str, str, str]]) -> Path:
    import json

    root.mkdir(parents=True)
    (root / "qrels").mkdir()
    with (root / "corpus.jsonl").open("w") as out:
        for doc_id, title, text in corpus:
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "vector database"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return root


def test_eval_indexes_through_the_layer_and_keeps_every_id(tmp_path: Path) -> None:
    from rerankit.eval import load_beir, retrieve
    from rerankit.multistage import QdrantMultiStage, SparseStage

    corpus = [
        ("d1", "", "Qdrant is a vector database."),
        ("d2", "", "Qdrant is a vector database."),  # same text, another id
        ("d3", "", "Pasta needs salted water."),
        ("d4", "", "   "),  # no text
    ]
    data = load_beir(_beir(tmp_path / "toy", corpus))
    folder = str(tmp_path / "store")
    with pytest.warns(RerankWarning, match="1 documents have no text"):
        run = retrieve(data, stage1="bm25", depth=3, qdrant_path=folder, progress=False)
    assert [e.doc_id for e in run["q1"]] == ["d1", "d2"]  # both ids of the shared point
    assert [e.rank for e in run["q1"]] == [1, 2] and run["q1"][0].score == run["q1"][1].score
    client = open_client(path=folder)
    try:
        (name,) = [c.name for c in client.get_collections().collections]
        assert client.count(name).count == 2  # one point per distinct text
        pipeline = QdrantMultiStage(
            collection=name, client=client, dense=None, sparse=SparseStage()
        )
        hits = pipeline.search("vector database")  # the eval's collection opens here
        assert hits[0].doc_id == "d1" and hits[0].text == "Qdrant is a vector database."
    finally:
        client.close()
    with pytest.raises(ConfigurationError, match="not both"):
        retrieve(data, stage1="bm25", qdrant_url="http://127.0.0.1:9", qdrant_path=folder)


def test_eval_names_a_document_it_cannot_store(tmp_path: Path) -> None:
    from rerankit.errors import DatasetError
    from rerankit.eval import load_beir, retrieve

    data = load_beir(_beir(tmp_path / "bad", [("d1", "", "fine"), ("d7", "", "bad \ud800")]))
    with pytest.raises(DatasetError, match=r"corpus document 'd7'.*not valid Unicode"):
        retrieve(data, stage1="bm25", progress=False)
