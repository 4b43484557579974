"""``rerankit demo``: the main job, end to end on embedded Qdrant and the offline MiniLM, on the
built-in corpus and on the user's own documents (JSONL or a BEIR folder)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rerankit import ThresholdPolicy
from rerankit.cli import main
from rerankit.demo import DemoConfig, load_corpus, run_demo
from rerankit.demo.corpus import PASSAGES
from rerankit.demo.run import threshold
from rerankit.errors import ConfigurationError, DatasetError
from rerankit.multistage import QdrantMultiStage, SparseStage
from rerankit.qdrant import open_client

from ._fixtures import OverlapReranker, snapshot


def test_demo_prints_side_by_side_table(tmp_path: Path) -> None:
    out = io.StringIO()
    reports = run_demo(DemoConfig(qdrant_path=str(tmp_path / "q")), out)
    text = out.getvalue()
    assert f"{len(PASSAGES)} passages in Qdrant" in text
    assert "stage 1" in text and "| rerank" in text and "| threshold" in text
    assert "new old  move" in text
    assert "[min_score]" in text  # the threshold dropped something and says so
    assert len(reports) == 5
    for report in reports:
        results = report.results
        accounted = {r.index for r in results} | {d.index for d in results.dropped}
        accounted |= set(results.duplicates)
        assert accounted == set(range(len(report.hits)))
        assert len(results) <= 3
        assert all(r.score >= 0.35 for r in results)
        assert f"stage 1 returned {len(report.hits)} of fetch_k=8 candidates" in text
    # The reranker fixes the BM25 order on the cross-encoder query: the passage that
    # answers it comes first.
    first = reports[0]
    assert first.hits[first.results[0].index].doc_id == "rerank-1"
    # Off-topic query: BM25 finds keyword matches, the threshold keeps none of them.
    last = reports[-1]
    assert last.hits and not last.results and "min_score" in (last.results.empty_reason or "")


def test_demo_says_how_many_candidates_stage_1_returned() -> None:
    out = io.StringIO()
    query = "How does a cross-encoder score a passage?"
    (report,) = run_demo(DemoConfig(qdrant_path=":memory:", queries=[query], fetch_k=80), out)
    text = out.getvalue()
    assert "fetch_k=80" in text
    assert len(report.hits) < 80  # BM25 only finds passages sharing a term with the query
    assert f"stage 1 returned {len(report.hits)} of fetch_k=80 candidates (BM25" in text


def test_the_threshold_timed_apart_gives_what_one_rerank_call_gives() -> None:
    reranker = OverlapReranker()
    docs = [t for _, t in PASSAGES]
    query = "water temperature for pour-over coffee"
    for policy in (ThresholdPolicy(top_n=3, min_score=0.2), ThresholdPolicy(min_score=0.99)):
        together = reranker.rerank(query, docs, policy=policy)
        apart = threshold(reranker.rerank(query, docs), policy)
        assert snapshot(apart) == snapshot(together)
        assert apart.dropped  # the policy cut something: a real claim


def test_demo_is_idempotent_and_its_collection_opens_elsewhere(tmp_path: Path) -> None:
    path = str(tmp_path / "q")
    for _ in range(2):
        run_demo(DemoConfig(qdrant_path=path, queries=["coffee"]), io.StringIO())
    client = open_client(path=path)
    try:
        assert client.count("rerankit-demo").count == len(PASSAGES)
        pipeline = QdrantMultiStage(collection="rerankit-demo", client=client, dense=None)
        assert pipeline.search("espresso pressure")[0].doc_id == "coffee-2"
    finally:
        client.close()


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


DOCS = [
    {"id": "a1", "title": "Espresso", "text": "Hot water is forced through fine coffee."},
    {"id": "a2", "title": "Pour-over", "text": "Water at 93 degrees over a medium grind."},
    {"id": "a3", "title": "Sourdough", "text": "A starter of wild yeast leavens the bread."},
    {"id": "a4", "text": "Untitled note about coffee water and espresso."},
]


def test_demo_on_your_own_jsonl_with_a_title_first_stage(tmp_path: Path) -> None:
    corpus = _jsonl(tmp_path / "docs.jsonl", DOCS)
    out = io.StringIO()
    config = DemoConfig(
        corpus=str(corpus),
        stage1="title",
        queries=["espresso"],
        qdrant_path=str(tmp_path / "q"),
        min_score=0.0,
        fetch_k=80,
        top_n=5,
        show_progress=False,
    )
    (report,) = run_demo(config, out)
    text = out.getvalue()
    assert "4 documents of docs in Qdrant" in text and "BM25 on titles only" in text
    # Titles only: the untitled note mentions espresso in its text but is not found.
    assert [h.doc_id for h in report.hits] == ["a1"]
    assert report.hits[0].text == "Espresso Hot water is forced through fine coffee."
    assert "stage 1 returned 1 of fetch_k=80 candidates" in text
    client = open_client(path=str(tmp_path / "q"))
    try:
        (name,) = [c.name for c in client.get_collections().collections]
        assert name.startswith("rerankit-demo-docs-title-")
        assert set(client.get_collection(name).config.params.sparse_vectors) == {"title_bm25"}
        title = SparseStage(vector_name="title_bm25", source="title")
        hit = QdrantMultiStage(collection=name, client=client, dense=None, sparse=title).search(
            "sourdough"
        )[0]
        assert hit.doc_id == "a3" and hit.metadata["title"] == "Sourdough"
    finally:
        client.close()


def test_demo_on_a_beir_folder_runs_its_first_queries(tmp_path: Path) -> None:
    folder = tmp_path / "mini"
    folder.mkdir()
    _jsonl(folder / "corpus.jsonl", [{"_id": d["id"], **d} for d in DOCS])
    queries = [
        {"_id": f"q{i}", "text": t}
        for i, t in enumerate(["espresso", "bread", "a", "b", "c", "d", "e"])
    ]
    _jsonl(folder / "queries.jsonl", queries)
    corpus = load_corpus(folder)
    assert corpus.name == "mini" and len(corpus.queries) == 5  # the first few
    reports = run_demo(
        DemoConfig(corpus=str(folder), qdrant_path=":memory:", show_progress=False),
        io.StringIO(),
    )
    assert [r.query for r in reports] == ["espresso", "bread", "a", "b", "c"]


def test_corpus_mistakes_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_corpus(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match=r"has no corpus\.jsonl"):
        load_corpus(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "fine"}\nnot json\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: not valid JSON"):
        load_corpus(bad)
    _jsonl(bad, [{"text": "no id"}])
    with pytest.raises(DatasetError, match=r"jsonl:1: no 'id'"):
        load_corpus(bad)
    corpus = _jsonl(tmp_path / "docs.jsonl", DOCS)
    with pytest.raises(ConfigurationError, match=r"no queries.*--query"):
        run_demo(DemoConfig(corpus=str(corpus), qdrant_path=":memory:"), io.StringIO())
    with pytest.raises(ConfigurationError, match="needs documents with titles"):
        run_demo(DemoConfig(stage1="title", qdrant_path=":memory:"), io.StringIO())
    with pytest.raises(ConfigurationError, match="--fetch-k"):
        run_demo(DemoConfig(fetch_k=0, qdrant_path=":memory:"), io.StringIO())
    with pytest.raises(ConfigurationError, match="alternatives"):
        run_demo(DemoConfig(qdrant_url="http://x:1", qdrant_path="/tmp/x"), io.StringIO())


def test_cli_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "demo",
            "--qdrant-path",
            ":memory:",
            "--reranker",
            "late-interaction",
            "--query",
            "What water temperature for pour-over coffee?",
            "--top-n",
            "1",
            "--min-score",
            "0.0",
            "--stage1",
            "dense",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "late-interaction" in printed
    assert "coffee-1" in printed
    assert "[top_n]" in printed
    assert "stage 1 returned 8 of fetch_k=8 candidates\n" in printed  # dense fills fetch_k


def test_cli_reports_bad_spec_as_error() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rerankit.cli",
            "demo",
            "--qdrant-path",
            ":memory:",
            "--reranker",
            "nope:model",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown reranker backend 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr
