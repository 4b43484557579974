"""``rerankit eval`` on small synthetic BEIR folders: parsing, runs, measures, reports, cache."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import io
import json
import math
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rerankit import (
    Candidate,
    ConfigurationError,
    EmbeddingReranker,
    FusionReranker,
    LateInteractionReranker,
    Reranker,
    ScoreBatch,
    ScoreSpace,
)
from rerankit.cli import main
from rerankit.errors import DatasetError
from rerankit.eval import (
    EmbeddingCache,
    EvalReport,
    Evaluator,
    Run,
    compare,
    default_measures,
    evaluate,
    load_beir,
    read_qrels,
    read_run,
    retrieve,
)

CORPUS = [
    ("d1", "Qdrant", "Qdrant is a vector database written in Rust."),
    ("d2", "", "Pasta needs salted boiling water."),
    ("d3", "Rerankers", "A cross-encoder reranker reads query and passage together."),
    ("d4", "", "BM25 ranks documents by term frequency."),
    ("d5", "", "Paris is the capital of France."),
    ("d6", "", "Coffee brewing needs water at 93 degrees."),
]
QUERIES = [
    ("q1", "vector database"),
    ("q2", "reranker cross-encoder"),
    ("q3", "capital of france"),  # not judged in the test split
]
# d9 is judged but not in the corpus: it still counts in the ideal DCG. q4 has no query text.
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td4\t0\nq1\td9\t1\nq2\td3\t1\nq4\td1\t1\n"
TREC_RUN = (
    "q1 Q0 d4 1 3.0 bm25\nq1 Q0 d2 2 2.0 bm25\nq1 Q0 d1 3 1.0 bm25\n"
    "q2 Q0 d3 1 5.0 bm25\nq2 Q0 d5 2 4.0 bm25\nq2 Q0 d6 3 3.0 bm25\n"
    "q3 Q0 d5 1 1.0 bm25\n"
)
# Hand-checked (trec_eval nDCG: linear gains, log2 discount, ideal over all judged documents):
# q1 first stage d4, d2, d1 -> DCG 2/log2(4) = 1; ideal d1, d9 -> 2 + 1/log2(3).
IDEAL_Q1 = 2 + 1 / math.log2(3)
NDCG_Q1_BM25 = 1 / IDEAL_Q1  # 0.3801
NDCG_Q1_RERANKED = 2 / IDEAL_Q1  # d1 first: 0.7602


def write_beir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    with (root / "corpus.jsonl").open("w") as out:
        for doc_id, title, text in CORPUS:
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as out:
        for qid, text in QUERIES:
            out.write(json.dumps({"_id": qid, "text": text, "metadata": {}}) + "\n")
    (root / "qrels" / "test.tsv").write_text(QRELS)
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td5\t1\n")
    (root / "run.trec").write_text(TREC_RUN)
    return root


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "toy")


class Overlap(Reranker):
    """Share of query words found in the text (the test's stand-in for a model)."""

    backend = "test-overlap"
    score_space = ScoreSpace.PROBABILITY

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        words = set(query.lower().split())
        return ScoreBatch(
            [len(words & {w.strip(".").lower() for w in t.split()}) / len(words) for t in texts]
        )


# -- loading ---------------------------------------------------------------------------------------


def test_load_beir(beir: Path) -> None:
    data = load_beir(beir)
    assert data.name == "toy" and data.split == "test"
    assert len(data.corpus) == 6 and len(data.queries) == 3
    assert data.text("d1") == "Qdrant Qdrant is a vector database written in Rust."
    assert data.text("d2") == "Pasta needs salted boiling water."
    assert data.judged_queries() == ["q1", "q2"]
    assert dict(data.qrels["q1"]) == {"d1": 2, "d4": 0, "d9": 1}
    assert dict(data.skipped) == {"qrels without query text": 1}
    assert load_beir(beir, split="train").judged_queries() == ["q3"]


def test_load_beir_errors(beir: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a folder"):
        load_beir(tmp_path / "missing")
    with pytest.raises(DatasetError, match="splits found: test, train"):
        load_beir(beir, split="dev")
    with pytest.raises(ConfigurationError):
        load_beir(beir, split="../test")
    with (beir / "corpus.jsonl").open("a") as out:
        out.write("{not json\n")
    with pytest.raises(DatasetError, match=r"corpus.jsonl:7"):
        load_beir(beir)
    assert issubclass(DatasetError, ConfigurationError)


def test_dataset_validates() -> None:
    from rerankit.eval import BeirDataset, BeirDocument

    with pytest.raises(ConfigurationError, match="BeirDocument"):
        BeirDataset(corpus={"d": "text"}, queries={}, qrels={})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="int grades"):
        BeirDataset(corpus={}, queries={}, qrels={"q": {"d": "2"}})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        BeirDataset({"d": BeirDocument("", "x")}, {}, {})  # type: ignore[misc]
    with pytest.raises(DatasetError, match="not in the corpus"):
        BeirDataset(corpus={}, queries={}, qrels={}).text("d")


def test_read_qrels_formats(tmp_path: Path) -> None:
    trec = tmp_path / "qrels.txt"
    trec.write_text("q1 0 d1 2\nq1 0 d2 0\n")
    assert read_qrels(trec) == {"q1": {"d1": 2, "d2": 0}}
    bad = tmp_path / "bad.tsv"
    bad.write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(DatasetError, match=r"bad.tsv:2"):
        read_qrels(bad)


# -- runs ------------------------------------------------------------------------------------------


def test_read_trec_run(beir: Path, tmp_path: Path) -> None:
    run = read_run(beir / "run.trec")
    assert run.name == "run" and len(run) == 3
    assert [e.doc_id for e in run["q1"]] == ["d4", "d2", "d1"]
    assert [e.rank for e in run["q1"]] == [1, 2, 3]
    # Order comes from the scores (ties: the file's rank); ranks are renumbered.
    shuffled = tmp_path / "shuffled.run"
    shuffled.write_text("q1 Q0 a 9 1.0 x\nq1 Q0 b 3 2.0 x\nq1 Q0 c 1 1.0 x\n")
    assert [(e.doc_id, e.rank) for e in read_run(shuffled)["q1"]] == [("b", 1), ("c", 2), ("a", 3)]
    # Round trip through the writer.
    out = tmp_path / "out.run"
    run.write_trec(out)
    assert read_run(out).scores() == run.scores()


def test_read_candidates_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "bm25_top100.jsonl"
    lines = [
        {
            "query_id": 7,
            "query": "vector database",
            "candidates": [
                {"docid": "d4", "rank": 1, "score": 3.0},
                {"docid": "d1", "rank": 2, "score": 2.5},
            ],
        },
        {"query_id": "8", "query": "x", "candidates": [{"docid": 5, "rank": 1}]},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    run = read_run(path)
    assert [e.doc_id for e in run["7"]] == ["d4", "d1"]
    assert run.query_texts["7"] == "vector database"
    assert run["8"][0].doc_id == "5"
    assert run.top(1)["7"][0].doc_id == "d4" and len(run.top(1)["7"]) == 1
    assert list(run.restrict(["8", "missing"])) == ["8"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("q1 Q0 d1 1 2.0\n", "6 columns"),
        ("q1 Q0 d1 1 high run\n", "score must be a number"),
        ("q1 Q0 d1 1 2.0 r\nq1 Q0 d1 2 1.0 r\n", "twice"),
        ('{"query_id": "q1"}\n', "candidates"),
        ('{"query_id": "q1", "candidates": [{"rank": 1}]}\n', "docid"),
        ('{"query_id": "q1", "candidates": []}\n\n{not json\n', r"bad.run:3: not valid JSON"),
        ('{"query_id": "q1", "candidates": []}\n[1]\n', r"bad.run:2: expected a JSON object"),
        ("", "empty"),
    ],
)
def test_read_run_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.run"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match):
        read_run(path)


def test_run_from_scores_and_rank_scores() -> None:
    run = Run.from_scores({"q": {"a": 1.0, "b": 1.0, "c": 2.0}})
    assert [e.doc_id for e in run["q"]] == ["c", "a", "b"]
    assert run.rank_scores() == {"q": {"c": 3.0, "a": 2.0, "b": 1.0}}
    with pytest.raises(ConfigurationError):
        run.top(0)


# -- measures --------------------------------------------------------------------------------------


def test_measures_match_hand_computation(beir: Path) -> None:
    data = load_beir(beir)
    ev = Evaluator(data.qrels, measures=default_measures(depth=3))
    assert ev.measures == ["nDCG@10", "RR@10", "R@10", "R@3"]
    per_query = ev.per_query(read_run(beir / "run.trec").restrict(["q1", "q2"]).scores())
    assert per_query["q1"]["nDCG@10"] == pytest.approx(NDCG_Q1_BM25)  # 0.3801
    assert per_query["q2"]["nDCG@10"] == pytest.approx(1.0)
    assert per_query["q1"]["RR@10"] == pytest.approx(1 / 3)
    assert per_query["q1"]["R@10"] == pytest.approx(0.5)  # d1 of {d1, d9}
    strict = Evaluator({"q1": data.qrels["q1"]}, measures=["RR(rel=2)@10", "R(rel=2)@10"])
    agg = strict.aggregate({"q1": {"d4": 3.0, "d2": 2.0, "d1": 1.0}})
    assert agg == pytest.approx({"RR(rel=2)@10": 1 / 3, "R(rel=2)@10": 1.0})  # only d1 is >= 2


def test_measure_validation() -> None:
    with pytest.raises(ConfigurationError, match="unknown measure"):
        Evaluator({"q": {"d": 1}}, measures=["NotAMeasure@3"])
    with pytest.raises(ConfigurationError):
        Evaluator({"q": {"d": 1}}, measures="nDCG@10")
    with pytest.raises(ConfigurationError):
        default_measures(depth=0)
    with pytest.raises(ConfigurationError):
        default_measures(depth=10, rel_level=0)
    assert default_measures(depth=10) == ["nDCG@10", "RR@10", "R@10"]


def test_compare_counts_wins_ties_losses() -> None:
    base = {"a": {"m": 0.5}, "b": {"m": 0.5}, "c": {"m": 0.9}, "d": {"m": 0.1}}
    new = {"a": {"m": 0.6}, "b": {"m": 0.5}, "c": {"m": 0.3}}
    delta, diffs = compare(base, new, "m")
    assert (delta.wins, delta.ties, delta.losses) == (1, 1, 1)
    assert delta.mean == pytest.approx((0.1 + 0 - 0.6) / 3)
    assert set(diffs) == {"a", "b", "c"}


# -- evaluate and the report -----------------------------------------------------------------------


def test_evaluate_with_deltas_and_outputs(beir: Path, tmp_path: Path) -> None:
    data = load_beir(beir)
    report = evaluate(
        data,
        read_run(beir / "run.trec"),
        {"overlap": Overlap()},
        first_stage_name="BM25",
        save_runs=tmp_path / "runs",
        progress=False,
    )
    assert report.dataset["queries"] == 2  # q3 is not judged in the test split
    assert report.settings["depth"] == 3
    bm25, overlap = report.systems
    assert bm25.kind == "first-stage" and overlap.kind == "reranker"
    assert bm25.aggregate["nDCG@10"] == pytest.approx((NDCG_Q1_BM25 + 1) / 2)
    assert overlap.per_query["q1"]["nDCG@10"] == pytest.approx(NDCG_Q1_RERANKED)
    assert overlap.aggregate["nDCG@10"] == pytest.approx((NDCG_Q1_RERANKED + 1) / 2)
    delta = overlap.deltas["nDCG@10"]
    assert (delta.wins, delta.ties, delta.losses) == (1, 1, 0)
    assert overlap.per_query_delta == pytest.approx(
        {"q1": NDCG_Q1_RERANKED - NDCG_Q1_BM25, "q2": 0}
    )
    assert overlap.deltas["R@3"].ties == 2  # reordering never changes recall at the depth
    hist = overlap.histogram
    assert hist is not None and sum(hist.relevant) == 2 and sum(hist.other) == 4

    table = report.to_markdown()
    assert "| system | nDCG@10 | Δ nDCG@10 | wins / ties / losses |" in table
    assert "| overlap | 0.8801 | +0.1900 | 1 / 1 / 0 |" in table
    again = EvalReport.from_json(report.to_json())
    assert again.system("overlap").deltas == overlap.deltas
    assert again.system("overlap").histogram == hist
    assert again.to_markdown() == table
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["BM25.run", "overlap.run"]
    saved = read_run(tmp_path / "runs" / "overlap.run")
    assert [e.doc_id for e in saved["q1"]] == ["d1", "d4", "d2"]


def test_evaluate_checks_inputs(beir: Path, tmp_path: Path) -> None:
    data = load_beir(beir)
    run = read_run(beir / "run.trec")
    with pytest.raises(ConfigurationError):
        evaluate(data, run, [object()], progress=False)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        evaluate(data, run, max_queries=0, progress=False)
    other = tmp_path / "other.run"
    other.write_text("q1 Q0 nowhere 1 1.0 x\n")
    with pytest.raises(DatasetError, match="not in the corpus"):
        evaluate(data, read_run(other), progress=False)
    unjudged = tmp_path / "unjudged.run"
    unjudged.write_text("q3 Q0 d5 1 1.0 x\n")
    with pytest.raises(DatasetError, match="none of the 2 judged queries"):
        evaluate(data, read_run(unjudged), progress=False)
    report = evaluate(data, run, max_queries=1, progress=False)
    assert report.dataset["queries"] == 1 and list(report.first_stage.per_query) == ["q1"]


# -- the embedding cache, counted at the model boundary -------------------------------------------


def _bag_of_words(text: str, dim: int = 16) -> np.ndarray:
    vector = np.zeros(dim, dtype=np.float32)
    for word in text.lower().replace(".", " ").split():
        vector[zlib.crc32(word.encode()) % dim] += 1.0
    return vector / max(float(np.linalg.norm(vector)), 1e-9)


class FakeTokenizer:
    def __call__(self, texts: Sequence[str], **kwargs: Any) -> dict[str, list[list[str]]]:
        return {"input_ids": [t.split() for t in texts]}

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 2


class FakeEncoder:
    """A sentence-transformers stand-in; ``seen`` lists every text that reached the model."""

    max_seq_length = 128
    tokenizer = FakeTokenizer()

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str], **kwargs: Any) -> Any:
        import torch

        texts = list(texts)
        self.seen.extend(texts)
        if kwargs.get("output_value") == "token_embeddings":
            return [
                torch.from_numpy(np.stack([_bag_of_words(w) for w in t.split()])) for t in texts
            ]
        matrix = np.stack([_bag_of_words(t) for t in texts])
        return torch.from_numpy(matrix) if kwargs.get("convert_to_tensor") else matrix


def _embedding_reranker(fake: FakeEncoder) -> EmbeddingReranker:
    reranker = EmbeddingReranker(model="fake-model")
    reranker._loaded = fake  # the model boundary
    return reranker


def test_second_run_skips_encoding(beir: Path, tmp_path: Path) -> None:
    data = load_beir(beir)
    run = read_run(beir / "run.trec")
    seen = []
    reports = []
    for _ in range(2):
        fake = FakeEncoder()
        cache = EmbeddingCache(directory=tmp_path / "cache", progress=False)
        reports.append(
            evaluate(data, run, [_embedding_reranker(fake)], cache=cache, progress=False)
        )
        seen.append(fake.seen)
    in_scope = {data.text(d) for d in ("d1", "d2", "d3", "d4", "d5", "d6")}
    assert in_scope <= set(seen[0])
    assert seen[1] == []  # documents and queries all came from disk
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # documents, queries
    uncached = FakeEncoder()
    plain = evaluate(data, run, [_embedding_reranker(uncached)], progress=False)
    for report in reports:
        for qid, values in plain.systems[1].per_query.items():
            assert report.systems[1].per_query[qid] == pytest.approx(values)
    assert len(uncached.seen) == 6 + 2  # per query: 3 documents and the query


def test_token_embeddings_are_memoised_across_fusion_members(beir: Path) -> None:
    data = load_beir(beir)
    run = read_run(beir / "run.trec")
    fake = FakeEncoder()
    late = LateInteractionReranker(model="fake-model", encoder="sentence-transformers")
    late._loaded = fake
    fused = FusionReranker([late], first_stage="retrieval_score")
    report = evaluate(
        data, run, [late, fused], cache=EmbeddingCache(progress=False), progress=False
    )
    assert [s.name for s in report.systems[1:]] == [
        "late-interaction (fake-model)",
        "weighted(late-interaction + first stage)",
    ]
    assert len(fake.seen) == len(set(fake.seen)) == 6 + 2  # each text encoded once


def test_attach_swaps_only_the_attached_rerankers_model() -> None:
    fake = FakeEncoder()
    attached, other = _embedding_reranker(fake), _embedding_reranker(fake)
    cache = EmbeddingCache(progress=False)
    assert cache.attach(attached, ["alpha beta"]) == 1
    assert fake.seen == ["alpha beta"]
    wrapped = attached.loaded_model()
    assert wrapped is not fake and other.loaded_model() is fake
    assert cache.attach(attached) == 1  # attaching again wraps the model, not the wrapper
    assert attached.loaded_model()._encoder is fake
    attached.rerank("alpha", ["alpha beta"])
    assert fake.seen == ["alpha beta", "alpha"]  # the document came from the cache
    other.rerank("alpha", ["alpha beta"])
    assert sorted(fake.seen[2:]) == ["alpha", "alpha beta"]  # no cache: query and document


def test_embedding_cache_validates() -> None:
    with pytest.raises(ConfigurationError):
        EmbeddingCache(memory_bytes=-1)
    with pytest.raises(ConfigurationError):
        EmbeddingCache(directory=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EmbeddingCache("folder")  # type: ignore[misc]
    with pytest.raises(ConfigurationError):
        EmbeddingCache().embeddings(FakeEncoder(), ["a"], model="m", batch_size=0)


# -- full pipeline (embedded Qdrant, in memory) ----------------------------------------------------


def test_pipeline_bm25(beir: Path) -> None:
    data = load_beir(beir)
    run = retrieve(data, stage1="bm25", depth=3, progress=False)
    assert list(run) == ["q1", "q2"]
    assert run["q1"][0].doc_id == "d1" and run["q2"][0].doc_id == "d3"
    assert all(len(entries) <= 3 for entries in run.entries.values())


def test_pipeline_dense_reuses_cache_and_store(
    beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rerankit.eval.pipeline as pipeline

    fakes: list[FakeEncoder] = []

    def load(*args: Any, **kwargs: Any) -> FakeEncoder:
        fakes.append(FakeEncoder())
        return fakes[-1]

    monkeypatch.setattr(pipeline, "load_sentence_transformer", load)
    data = load_beir(beir)
    runs = [
        retrieve(
            data,
            depth=2,
            model="fake-model",
            qdrant_path=str(tmp_path / "qdrant"),
            cache=EmbeddingCache(directory=tmp_path / "cache", progress=False),
            progress=False,
        )
        for _ in range(2)
    ]
    for qid, scores in runs[0].scores().items():
        assert runs[1].scores()[qid] == pytest.approx(scores)
    assert runs[0]["q1"][0].doc_id == "d1"
    assert len(fakes[0].seen) == 6 + 2 and fakes[1].seen == []
    assert "dense fake-model top-2" in runs[0].name
    # The embedding reranker of the same model reuses the corpus and query embeddings in
    # memory (its documents are a subset of the corpus), and reproduces the dense order.
    cache = EmbeddingCache(progress=False)
    dense = retrieve(data, depth=3, model="fake-model", cache=cache, progress=False)
    reranker_model = FakeEncoder()
    report = evaluate(
        data, dense, [_embedding_reranker(reranker_model)], cache=cache, progress=False
    )
    assert reranker_model.seen == []
    assert report.systems[1].deltas["nDCG@10"].ties == 2
    with pytest.raises(ConfigurationError):
        retrieve(data, stage1="splade", progress=False)  # type: ignore[arg-type]
    with pytest.raises(DatasetError):
        retrieve(data, query_ids=["nope"], progress=False)


# -- the command line ------------------------------------------------------------------------------


def test_cli_eval(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerankit import registry

    monkeypatch.setitem(registry._registry, "test-overlap", Overlap)
    out = tmp_path / "out"
    args = [
        "eval",
        str(beir),
        "--run",
        str(beir / "run.trec"),
        "--reranker",
        "test-overlap",
        "--fuse",
        "weighted",
        "--quiet",
        "--no-cache",
        "--json",
        str(tmp_path / "report.json"),
        "--markdown",
        str(tmp_path / "report.md"),
        "--save-runs",
        str(out),
    ]
    if importlib.util.find_spec("matplotlib") is not None:
        args += ["--plot", str(tmp_path / "report.png")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| test-overlap | 0.8801 | +0.1900 | 1 / 1 / 0 |" in printed
    assert "weighted(test-overlap + first stage)" in printed
    report = EvalReport.from_json((tmp_path / "report.json").read_text())
    assert [s.name for s in report.systems] == [
        "run",
        "test-overlap",
        "weighted(test-overlap + first stage)",
    ]
    assert (tmp_path / "report.md").read_text().strip() == report.to_markdown()
    assert len(list(out.glob("*.run"))) == 3
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_eval_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "rerankit eval: error:" in capsys.readouterr().err


def test_plot_needs_a_reranker(beir: Path) -> None:
    pytest.importorskip("matplotlib")
    from rerankit.eval import plot_report

    data = load_beir(beir)
    report = evaluate(data, read_run(beir / "run.trec"), progress=False)
    with pytest.raises(ConfigurationError):
        plot_report(report, io.BytesIO())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "rerankit.eval",
        "rerankit.eval.beir",
        "rerankit.eval.runs",
        "rerankit.eval.metrics",
        "rerankit.eval.report",
        "rerankit.eval.cache",
    ],
)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    failures, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
    assert attempted > 0
