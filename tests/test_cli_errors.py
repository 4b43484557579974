"""No traceback for a user mistake anywhere in the CLI: each mistake, run as a real
``python -m rerankit.cli`` process, exits with 2 and prints one line on stderr that names the
problem and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def rerankit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "rerankit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    (line,) = lines
    assert line.startswith(
        ("rerankit demo: error: ", "rerankit eval: error: ", "rerankit calibrate: error: ")
    ), line
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("beir") / "toy"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "", "text": "Qdrant is a vector database."}) + "\n"
    )
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "vector db"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return root


DEMO_MISTAKES = [
    (["--fetch-k", "0"], ["argument --fetch-k", "must be 1 or more"]),
    (["--top-n", "-1"], ["argument --top-n", "must be 0 or more"]),
    (["--min-score", "2"], ["argument --min-score", "must be in [0, 1]"]),
    (["--stage1", "splade"], ["argument --stage1", "invalid choice"]),
    (["--reranker", "nope:model"], ["unknown reranker backend 'nope'"]),
    (["--qdrant-url", "notaurl"], ["Qdrant URL 'notaurl' is malformed", "http://localhost:6333"]),
    (
        ["--qdrant-url", "http://localhost:9", "--qdrant-path", "/tmp/x"],
        ["--qdrant-path: not allowed with argument --qdrant-url"],
    ),
    (["--stage1", "title", "--qdrant-path", ":memory:"], ["needs documents with titles"]),
    (["--corpus", "/nonexistent/docs.jsonl"], ["does not exist", "BEIR folder"]),
    (["--llm", "m.gguf"], ["--llm names the model of --generator local"]),
    (["--generator", "gpt"], ["argument --generator", "invalid choice"]),
    (
        ["--answer", "--generator", "local", "--llm", "/nowhere/m.gguf"],
        ["cannot load the model '/nowhere/m.gguf'", "does not exist"],
    ),
]


@pytest.mark.parametrize(("args", "fragments"), DEMO_MISTAKES)
def test_demo_mistakes_are_one_line(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(rerankit("demo", *args), *fragments)


def test_an_unreachable_server_fails_fast() -> None:
    started = time.monotonic()
    proc = rerankit("demo", "--qdrant-url", "http://localhost:9")
    assert time.monotonic() - started < 60  # deadline: start-up plus a short probe, no retries
    assert_one_line_error(
        proc, "cannot reach a Qdrant server at http://localhost:9", "--qdrant-url"
    )


def test_a_corpus_without_queries_asks_for_them(tmp_path: Path) -> None:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "some text"}) + "\n")
    proc = rerankit("demo", "--corpus", str(corpus), "--qdrant-path", ":memory:")
    assert_one_line_error(proc, "no queries", "--query TEXT")


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


def test_a_locked_embedded_store_names_the_folder_and_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "demo-qdrant"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        proc = rerankit("demo", "--qdrant-path", str(folder))
        line = assert_one_line_error(proc, str(folder), "--qdrant-path", "':memory:'")
        if sys.platform.startswith("linux"):
            assert f"process {holder.pid}" in line
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)


def test_eval_mistakes_are_one_line(beir: Path, tmp_path: Path) -> None:
    assert_one_line_error(rerankit("eval", str(tmp_path / "missing")), "missing")
    assert_one_line_error(rerankit("eval", str(beir), "--depth", "0"), "argument --depth")
    assert_one_line_error(
        rerankit("eval", str(beir), "--stage1", "bm25", "--qdrant-url", "notaurl", "--quiet"),
        "Qdrant URL 'notaurl' is malformed",
    )
    assert_one_line_error(
        rerankit(
            "eval", str(beir), "--stage1", "bm25", "--qdrant-url", "http://localhost:9", "--quiet"
        ),
        "cannot reach a Qdrant server at http://localhost:9",
    )
    assert_one_line_error(
        rerankit("eval", str(beir), "--qdrant-url", "http://x:1", "--qdrant-path", "/tmp/x"),
        "not allowed with argument",
    )
    assert_one_line_error(rerankit("eval", str(beir), "--reranker", "nope:x"), "nope")


def test_calibrate_mistakes_are_one_line(beir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 3.0 toy\n")
    assert_one_line_error(rerankit("calibrate", str(tmp_path / "missing")), "missing")
    assert_one_line_error(
        rerankit("calibrate", str(beir), "--reranker", "none", "--reranker", "none"),
        "calibrate fits one reranker",
        "--fuse",
    )
    assert_one_line_error(
        rerankit("calibrate", str(beir), "--run", str(run), "--folds", "1"), "--folds"
    )
    assert_one_line_error(
        rerankit("calibrate", str(beir), "--run", str(run), "--method", "spline"),
        "argument --method",
    )
    assert_one_line_error(
        rerankit("calibrate", str(beir), "--run", str(run), "--reranker", "none", "--quiet"),
        "cannot fit a calibration",
    )
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert_one_line_error(
        rerankit("demo", "--reranker", f"embedding?calibration={bad}"),
        "not a rerankit calibration file",
    )


def test_no_command_is_one_line() -> None:
    proc = rerankit()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
