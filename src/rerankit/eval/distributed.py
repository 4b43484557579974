"""Reranking a whole run on a Ray cluster with Ray Data (``pip install 'rerankit[ray]'``).

:func:`rerank_run_ray` turns each query of a first-stage run into one row (query text,
candidate ids, texts, first-stage scores and ranks), maps the rows through a pool of Ray actors
that each build the reranker once from its spec, and gathers a new run. Each actor reranks with
:func:`~rerankit.eval.rerank_run`, so the result equals the in-process reranking of the same
run, query for query. No scheduler of rerankit's own: Ray places the actors, streams the rows
and retries failed tasks. The same code runs on a laptop (``ray.init()``) and on a cluster
(``ray.init(address="ray://head:10001")``); only the actor count and CPUs per actor change.
"""

from __future__ import annotations

from typing import Any

from rerankit._deps import require
from rerankit.errors import ConfigurationError, DatasetError
from rerankit.eval.beir import BeirDataset, BeirDocument
from rerankit.eval.runs import Run, RunEntry

__all__ = ["rerank_run_ray"]


def _rows(dataset: BeirDataset, run: Run) -> list[dict[str, Any]]:
    rows = []
    for position, qid in enumerate(run):
        query = dataset.queries.get(qid) or run.query_texts.get(qid)
        if not query:
            raise DatasetError(f"{dataset.name}: query {qid!r} has no text")
        entries = run[qid]
        docs = [dataset.corpus.get(e.doc_id) for e in entries]
        missing = [e.doc_id for e, d in zip(entries, docs, strict=True) if d is None]
        if missing:
            raise DatasetError(f"{dataset.name}: document {missing[0]!r} is not in the corpus")
        rows.append(
            {
                "position": position,
                "qid": qid,
                "query": query,
                "doc_ids": [e.doc_id for e in entries],
                "titles": [d.title for d in docs if d is not None],
                "texts": [d.text for d in docs if d is not None],
                "scores": [e.score for e in entries],
                "ranks": [e.rank for e in entries],
            }
        )
    return rows


class _Rerank:
    """One Ray actor: the reranker built once, then one query (row) per call."""

    def __init__(self, spec: str) -> None:
        from rerankit.registry import as_reranker

        self.reranker = as_reranker(spec)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from rerankit.eval.runner import rerank_run

        qid = str(row["qid"])
        ids = [str(i) for i in row["doc_ids"]]
        corpus = {
            i: BeirDocument(str(t), str(x))
            for i, t, x in zip(ids, row["titles"], row["texts"], strict=True)
        }
        dataset = BeirDataset(corpus=corpus, queries={qid: str(row["query"])}, qrels={})
        first = Run(
            {
                qid: tuple(
                    RunEntry(i, float(s), int(r))
                    for i, s, r in zip(ids, row["scores"], row["ranks"], strict=True)
                )
            }
        )
        reranked, scores, truncated = rerank_run(dataset, first, self.reranker, progress=False)
        entries = reranked[qid]
        return {
            "position": int(row["position"]),
            "qid": qid,
            "name": reranked.name,
            "doc_ids": [e.doc_id for e in entries],
            "scores": [e.score for e in entries],
            "calibrated": list(scores[qid]),
            "truncated": truncated,
        }


def rerank_run_ray(
    dataset: BeirDataset,
    run: Run,
    reranker: str,
    *,
    depth: int | None = None,
    actors: int = 1,
    num_cpus: float = 1.0,
    name: str | None = None,
) -> Run:
    """Rerank every query of ``run`` on the Ray cluster this process is connected to
    (``ray.init(...)``; a local one is started when there is none).

    ``reranker`` is a spec (each of ``actors`` actors builds it; ``num_cpus`` each). The new
    run's scores are ``n, n-1, ..., 1`` in the reranker's order, as :func:`~rerankit.eval.
    rerank_run` gives them; queries keep the order of ``run``.

    Example:
        >>> import ray
        >>> from rerankit.eval import load_beir, read_run
        >>> from rerankit.eval.distributed import rerank_run_ray
        >>> ray.init(num_cpus=2)  # doctest: +SKIP
        >>> data = load_beir("datasets/trec-dl-2019-passage")  # doctest: +SKIP
        >>> first = read_run("datasets/trec-dl-2019-passage/bm25_top100.jsonl")  # doctest: +SKIP
        >>> rerank_run_ray(data, first, "embedding", actors=2).write_trec("embedding.run")
        ... # doctest: +SKIP
    """
    ray: Any = require("ray", extra="ray", feature="rerank_run_ray")
    require("ray.data", extra="ray", feature="rerank_run_ray", package="ray")
    if not isinstance(reranker, str) or not reranker.strip():
        raise ConfigurationError("reranker must be a spec string such as 'embedding'")
    for label, value in (("actors", actors),):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{label} must be a positive int, got {value!r}")
    run = run.top(depth)
    rows = _rows(dataset, run)
    if not rows:
        return Run({}, name=name or "reranked")
    if not ray.is_initialized():
        ray.init(log_to_driver=False)
    ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), actors * 4))
    out = ds.map(
        _Rerank,
        fn_constructor_kwargs={"spec": reranker},
        concurrency=actors,
        num_cpus=num_cpus,
    )
    done = sorted(out.take_all(), key=lambda r: int(r["position"]))
    if len(done) != len(rows):
        raise DatasetError(f"the Ray job returned {len(done)} of {len(rows)} queries")
    entries = {
        str(r["qid"]): tuple(
            RunEntry(str(d), float(s), rank)
            for rank, (d, s) in enumerate(zip(r["doc_ids"], r["scores"], strict=True), start=1)
        )
        for r in done
    }
    return Run(entries, name=name or str(done[0]["name"]))
