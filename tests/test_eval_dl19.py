"""``rerankit eval`` reproduces the reference figures of TREC DL 2019 passage.

The data lives next to the repository, in ``../shared/datasets`` (never copied in); these tests
skip when it is absent. ``../shared/datasets/README.md`` gives the figures: BM25 top-100 as
given, nDCG@10 = 0.5058; reordered by the cosine of all-MiniLM-L6-v2 embeddings, 0.6424
(trec_eval nDCG@10: linear gains, ideal DCG over the full qrels).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from rerankit.eval import EmbeddingCache, evaluate, load_beir, read_run

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
DL19 = DATASETS / "trec-dl-2019-passage"

pytestmark = pytest.mark.skipif(
    not (DL19 / "bm25_top100.jsonl").is_file(),
    reason=f"TREC DL 2019 data not found at {DL19} (the shared datasets sit next to the repo)",
)


def test_bm25_as_given_reproduces_the_reference() -> None:
    data = load_beir(DL19)
    assert len(data.judged_queries()) == 43
    report = evaluate(data, read_run(DL19 / "bm25_top100.jsonl"), rel_level=2, progress=False)
    assert report.dataset["queries"] == 43
    assert report.settings["depth"] == 100
    assert report.first_stage.aggregate["nDCG@10"] == pytest.approx(0.5058, abs=5e-5)


@pytest.mark.model
def test_minilm_cosine_rerank_reproduces_the_reference(tmp_path: Path) -> None:
    """About 4,300 passages through MiniLM on CPU (the slow test: minutes on 2 busy cores),
    then a second run that must encode nothing, counted at the model boundary."""
    from rerankit import EmbeddingReranker

    data = load_beir(DL19)
    run = read_run(DL19 / "bm25_top100.jsonl")
    encoded: list[int] = []  # texts that reached the model, per run
    figures: list[float] = []
    timings: list[float] = []
    for _ in range(2):
        reranker = EmbeddingReranker()
        model = reranker._load()
        encoded.append(0)

        def counting(texts: Any, *args: Any, _real: Any = model.encode, **kwargs: Any) -> Any:
            encoded[-1] += 1 if isinstance(texts, str) else len(texts)
            return _real(texts, *args, **kwargs)

        model.encode = counting
        try:
            started = time.perf_counter()
            report = evaluate(
                data,
                run,
                [reranker],
                cache=EmbeddingCache(directory=tmp_path / "cache", progress=False),
                progress=False,
            )
            timings.append(time.perf_counter() - started)
        finally:
            del model.encode  # back to the class's method
        figures.append(report.systems[1].aggregate["nDCG@10"])
    assert encoded == [4297 + 43, 0]  # every passage and query once; then none
    assert figures[0] == pytest.approx(0.6424, abs=5e-4)
    assert figures[1] == pytest.approx(figures[0], abs=1e-9)
    print(
        f"\nDL19 MiniLM cosine nDCG@10 {figures[0]:.4f}; cold {timings[0]:.0f} s, "
        f"warm {timings[1]:.1f} s"
    )
