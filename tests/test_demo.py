"""``rerankit demo``: the main job, end to end on embedded Qdrant and the offline MiniLM."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rerankit.cli import main
from rerankit.demo import DemoConfig, run_demo
from rerankit.demo.corpus import PASSAGES


def test_demo_prints_side_by_side_table(tmp_path: Path) -> None:
    out = io.StringIO()
    reports = run_demo(DemoConfig(qdrant_path=str(tmp_path / "q")), out)
    text = out.getvalue()
    assert f"{len(PASSAGES)} passages in Qdrant" in text
    assert "stage 1" in text and "rerank + threshold" in text
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
    # The reranker fixes the BM25 order on the cross-encoder query: the passage that
    # answers it comes first.
    first = reports[0]
    assert first.hits[first.results[0].index].doc_id == "rerank-1"
    # Off-topic query: BM25 finds keyword matches, the threshold keeps none of them.
    last = reports[-1]
    assert last.hits and not last.results and "min_score" in (last.results.empty_reason or "")


def test_demo_is_idempotent_on_the_same_store(tmp_path: Path) -> None:
    path = str(tmp_path / "q")
    for _ in range(2):
        run_demo(DemoConfig(qdrant_path=path, queries=["coffee"]), io.StringIO())
    from qdrant_client import QdrantClient

    client = QdrantClient(path=path)
    try:
        assert client.count("rerankit-demo").count == len(PASSAGES)
    finally:
        client.close()


def test_cli_options(tmp_path: Path, capsys: object) -> None:
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
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "late-interaction" in printed
    assert "coffee-1" in printed
    assert "[top_n]" in printed


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
