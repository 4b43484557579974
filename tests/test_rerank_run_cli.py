"""``rerankit rerank-run`` mistakes: one stderr line, exit code 2, before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_errors import rerankit

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rr") / "toy"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "Qdrant."}\n')
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "vector db"}\n')
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (root / "first.run").write_text("q1 Q0 d1 1 3.0 bm25\n")
    return root


def test_rerank_run_mistakes_are_one_line(folder: Path, tmp_path: Path) -> None:
    cases = [
        (
            ["/nonexistent/beir", "--run", str(folder / "first.run"), "--output", "x.run"],
            "is not a folder",
        ),
        (
            [str(folder), "--run", str(folder / "missing.run"), "--output", "x.run"],
            "cannot read run",
        ),
        (
            [str(folder), "--run", str(folder / "first.run"), "--output", "/nonexistent/dir/x.run"],
            "/nonexistent/dir",
        ),
        ([str(folder), "--run", str(folder / "first.run")], "--output"),
    ]
    for args, fragment in cases:
        proc = rerankit("rerank-run", *args)
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("rerankit rerank-run: error: ") and fragment in lines[0], lines
