"""``rerankit eval``: measure rerankers on BEIR-layout data with trec_eval-style measures.

Read a BEIR folder (:func:`load_beir`), take a first stage (a run file via :func:`read_run`, or
the full pipeline via :func:`retrieve`: Qdrant, dense or BM25), rerank its candidates with each
reranker and measure nDCG@10, RR@10 and recall through ir-measures (:func:`evaluate`). The
:class:`EvalReport` holds per-query values, deltas against the first stage with wins / ties /
losses, and writes JSON, markdown and (:func:`plot_report`) a PNG.

Example:
    >>> from rerankit import EmbeddingReranker
    >>> from rerankit.eval import EmbeddingCache, evaluate, load_beir, read_run
    >>> folder = "../shared/datasets/trec-dl-2019-passage"
    >>> data = load_beir(folder)  # doctest: +SKIP
    >>> bm25 = read_run(f"{folder}/bm25_top100.jsonl")  # doctest: +SKIP
    >>> cache = EmbeddingCache(directory="~/.cache/rerankit/eval")
    >>> report = evaluate(data, bm25, [EmbeddingReranker()], cache=cache)  # doctest: +SKIP
    >>> report.system("embedding (all-MiniLM-L6-v2)").aggregate["nDCG@10"]  # doctest: +SKIP
    0.6424...

This package needs ``ir-measures`` (``pip install 'rerankit[eval]'``); it is imported on use.
"""

from rerankit.eval.beir import BeirDataset, BeirDocument, load_beir, read_qrels
from rerankit.eval.cache import EmbeddingCache
from rerankit.eval.metrics import Delta, Evaluator, compare, default_measures
from rerankit.eval.pipeline import retrieve
from rerankit.eval.plot import plot_report
from rerankit.eval.report import EvalReport, ScoreHistogram, SystemResult, environment
from rerankit.eval.runner import RETRIEVAL_RANK_KEY, display_model, evaluate, rerank_run
from rerankit.eval.runs import Run, RunEntry, read_run

__all__ = [
    "RETRIEVAL_RANK_KEY",
    "BeirDataset",
    "BeirDocument",
    "Delta",
    "EmbeddingCache",
    "EvalReport",
    "Evaluator",
    "Run",
    "RunEntry",
    "ScoreHistogram",
    "SystemResult",
    "compare",
    "default_measures",
    "display_model",
    "environment",
    "evaluate",
    "load_beir",
    "plot_report",
    "read_qrels",
    "read_run",
    "rerank_run",
    "retrieve",
]
