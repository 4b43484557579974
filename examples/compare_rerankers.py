# %% [markdown]
# # Comparing rerankers: stage 1 against the reranked list
#
# A first-stage retriever is fast and recalls broadly; a reranker reorders its candidates with a
# more precise model, and the threshold drops what does not answer the question. This example
# shows what each reranker changes, on a small corpus with near-miss distractors (passages that
# share the question's words but do not answer it):
#
# * stage 1: BM25 from Qdrant (keyword matching, so distractors rank high);
# * rerankers: the offline all-MiniLM-L6-v2 as a bi-encoder (`embedding`) and as a
#   late-interaction (MaxSim) model (`late-interaction`), plus any spec you list in
#   `RERANKIT_EXTRA_RERANKERS` (comma-separated, e.g. `cross-encoder:<model>`);
# * for each query: every candidate's position before and after, its move, its calibrated
#   score, what the threshold dropped, and the latency of each stage;
# * a plot of position changes and per-stage latency.
#
# Everything runs offline. Run it as a script (`python examples/compare_rerankers.py`) or open
# `compare_rerankers.ipynb`; the notebook is generated from this script.

# %%
import os
import statistics
import textwrap
import time

from langchain_core.documents import Document
from langchain_qdrant import QdrantVectorStore, RetrievalMode

from rerankit import Candidate, ThresholdPolicy, from_spec
from rerankit.demo.corpus import PASSAGES
from rerankit.langchain import (
    BM25SparseEmbeddings,
    SentenceTransformerEmbeddings,
    build_qdrant_store,
)
from rerankit.qdrant import (
    PAYLOAD_METADATA,
    PAYLOAD_TEXT,
    VECTOR_BM25,
    cache_dir,
    default_qdrant_path,
)

FETCH_K = 8  # stage-1 candidates per query
POLICY = ThresholdPolicy(top_n=3, min_score=0.35)  # what the reranked list keeps
SPECS = ["embedding", "late-interaction"] + [
    s.strip() for s in os.environ.get("RERANKIT_EXTRA_RERANKERS", "").split(",") if s.strip()
]

# Each query and the passage that answers it (None: the corpus does not answer it).
QUERIES = {
    "How does a cross-encoder score a passage?": "rerank-1",
    "How does HNSW find nearest neighbours?": "hnsw-1",
    "What water temperature for pour-over coffee?": "coffee-1",
    "Which rover collects rock samples on Mars?": "mars-1",
    "Why don't Python threads run in parallel?": "gil-1",
    "How long can a python snake grow?": None,
}

# %% [markdown]
# ## Stage 1: BM25 in Qdrant
#
# The collection holds dense MiniLM vectors and BM25 sparse vectors (Qdrant applies the IDF).
# Point ids are content hashes, so re-running does not add points. Set `QDRANT_URL` (and
# `QDRANT_API_KEY`) to use a Qdrant server instead of the embedded store in the cache folder.

# %%
COLLECTION = "rerankit-compare"
url = os.environ.get("QDRANT_URL")
documents = [Document(page_content=text, metadata={"source": doc_id}) for doc_id, text in PASSAGES]
hybrid_store = build_qdrant_store(
    documents,
    SentenceTransformerEmbeddings(),
    collection=COLLECTION,
    url=url,
    api_key=os.environ.get("QDRANT_API_KEY") if url else None,
    path=None if url else default_qdrant_path("examples-compare"),
    hybrid=True,
)
# The same collection, searched by its BM25 field only (rerankit's vector and payload names).
bm25 = QdrantVectorStore(
    client=hybrid_store.client,
    collection_name=COLLECTION,
    retrieval_mode=RetrievalMode.SPARSE,
    sparse_embedding=BM25SparseEmbeddings.fit([d.page_content for d in documents]),
    sparse_vector_name=VECTOR_BM25,
    content_payload_key=PAYLOAD_TEXT,
    metadata_payload_key=PAYLOAD_METADATA,
)


def stage1(query: str) -> tuple[list[Document], float]:
    """The first-stage candidates and how long the search took (ms)."""
    started = time.perf_counter()
    docs = bm25.similarity_search(query, k=FETCH_K)
    return docs, (time.perf_counter() - started) * 1000


# %% [markdown]
# ## Rerank each query's candidates with every reranker
#
# Models are loaded (`warm_up`) before timing, so the latencies are per query.

# %%
rerankers = {spec: from_spec(spec) for spec in SPECS}
for reranker in rerankers.values():
    warm = getattr(reranker, "warm_up", None)
    if warm is not None:
        warm()

runs = []  # one record per query
for query, answer_id in QUERIES.items():
    docs, stage1_ms = stage1(query)
    candidates = [Candidate(d.page_content, id=d.metadata["source"]) for d in docs]
    reranked = {}
    for spec, reranker in rerankers.items():
        started = time.perf_counter()
        results = reranker.rerank(query, candidates, policy=POLICY)
        reranked[spec] = (results, (time.perf_counter() - started) * 1000)
    runs.append(
        {
            "query": query,
            "answer": answer_id,
            "ids": [c.id for c in candidates],
            "stage1_ms": stage1_ms,
            "reranked": reranked,
        }
    )
print(f"{len(runs)} queries, {FETCH_K} candidates each, rerankers: {', '.join(SPECS)}")

# %% [markdown]
# ## Stage 1 against the reranked lists
#
# `old` is the stage-1 position, then for each reranker the new position (`-` when the
# threshold dropped it), the move (`+2`: up two places) and the calibrated score. `*` marks the
# passage that answers the query.


# %%
def move(old: int, new: int | None) -> str:
    if new is None:
        return "drop"
    delta = old - new
    return f"+{delta}" if delta > 0 else ("=" if delta == 0 else str(delta))


def table(run: dict) -> str:
    header = f"{'':2}{'id':<9} {'old':>3}" + "".join(f" | {s[:16]:^20}" for s in SPECS)
    lines = [f"query: {run['query']}", header]
    positions = {}
    for spec in SPECS:
        results, _ = run["reranked"][spec]
        kept = {r.index: (r.rank + 1, r.score) for r in results}
        dropped = {d.index: (None, d.score) for d in results.dropped}
        positions[spec] = {**dropped, **kept}
    for old, doc_id in enumerate(run["ids"], start=1):
        mark = "* " if doc_id == run["answer"] else "  "
        cells = []
        for spec in SPECS:
            new, score = positions[spec].get(old - 1, (None, float("nan")))
            cells.append(f" | {new or '-':>3} {move(old, new):>5} {score:6.3f}    ")
        lines.append(f"{mark}{doc_id:<9} {old:>3}" + "".join(cells))
    timing = ", ".join(f"{s} {run['reranked'][s][1]:.1f} ms" for s in SPECS)
    lines.append(f"  stage 1 {run['stage1_ms']:.1f} ms | rerank + threshold: {timing}")
    for spec in SPECS:
        reason = run["reranked"][spec][0].empty_reason
        if reason:
            lines.append(f"  {spec}: nothing kept -> a RAG chain abstains ({reason})")
    return "\n".join(lines)


for run in runs:
    print(table(run), end="\n\n")

# %% [markdown]
# ## Where did the answering passage end up?
#
# Position 1 is what an LLM reads first. For the last query the corpus has no answer: the
# right outcome is an empty list (the chain then abstains instead of answering from noise).


# %%
def answer_position(run: dict, spec: str | None) -> int | None:
    """1-based position of the answering passage (None: not in the list)."""
    if run["answer"] is None:
        return None
    if spec is None:
        return run["ids"].index(run["answer"]) + 1 if run["answer"] in run["ids"] else None
    results, _ = run["reranked"][spec]
    return next((r.rank + 1 for r in results if r.id == run["answer"]), None)


print(f"{'query':<46} {'stage 1':>8}" + "".join(f" {s[:16]:>17}" for s in SPECS))
for run in runs:
    row = [answer_position(run, None)] + [answer_position(run, s) for s in SPECS]
    if run["answer"] is None:
        cells = ["(no answer)"] + [
            "empty" if not run["reranked"][s][0] else f"{len(run['reranked'][s][0])} kept"
            for s in SPECS
        ]
    else:
        cells = [str(p) if p else "-" for p in row]
    print(f"{run['query'][:45]:<46} {cells[0]:>8}" + "".join(f" {c:>17}" for c in cells[1:]))

latency = {"stage 1 (BM25)": statistics.median(r["stage1_ms"] for r in runs)}
for spec in SPECS:
    latency[f"rerank: {spec}"] = statistics.median(r["reranked"][spec][1] for r in runs)
print()
for stage, ms in latency.items():
    print(f"median latency  {stage:<28} {ms:8.1f} ms")

# %% [markdown]
# ## Plot: position changes and per-stage latency
#
# One panel per query: each line is a stage-1 candidate, from its BM25 position (left) to its
# position after each reranker (`drop`: cut by the threshold). The passage that answers the
# query is the thick line. On the right, the median latency of each stage (log scale).
# Needs matplotlib (`pip install matplotlib`); the figure is also saved as a PNG.

# %%
try:
    import matplotlib.pyplot as plt  # in a notebook the figure shows below the cell
except ImportError:
    plt = None
    print("matplotlib is not installed: pip install matplotlib to see the plot")

if plt is not None:
    DROP = FETCH_K + 1
    figure = plt.figure(figsize=(13, 6.6))
    grid = figure.add_gridspec(2, 4, width_ratios=[1, 1, 1, 1.15], wspace=0.45, hspace=0.45)
    columns = ["stage 1", *SPECS]
    for n, run in enumerate(runs):
        ax = figure.add_subplot(grid[n // 3, n % 3])
        new_positions = {}
        for spec in SPECS:
            results, _ = run["reranked"][spec]
            new_positions[spec] = {r.index: r.rank + 1 for r in results}
        for i, doc_id in enumerate(run["ids"]):
            ys = [i + 1] + [new_positions[s].get(i, DROP) for s in SPECS]
            is_answer = doc_id == run["answer"]
            ax.plot(
                range(len(columns)),
                ys,
                marker="o",
                linewidth=3 if is_answer else 1,
                color="C3" if is_answer else "0.7",
                zorder=3 if is_answer else 2,
                label=doc_id if is_answer else None,
            )
        ax.set_xticks(range(len(columns)), [c.replace("-", "-\n") for c in columns], fontsize=8)
        ax.set_yticks([*range(1, FETCH_K + 1), DROP], [*map(str, range(1, FETCH_K + 1)), "drop"])
        ax.set_ylim(DROP + 0.5, 0.5)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(textwrap.fill(run["query"], 30), fontsize=9)
        if run["answer"]:
            ax.legend(fontsize=7, loc="center right")
    ax = figure.add_subplot(grid[:, 3])
    names = list(latency)
    labels = [n.replace(": ", ":\n").replace(" (", "\n(").replace("-", "-\n") for n in names]
    bars = ax.bar(labels, [latency[n] for n in names], color=[f"C{i}" for i in range(len(names))])
    ax.bar_label(bars, labels=[f"{latency[n]:.1f} ms" for n in names], fontsize=8, padding=2)
    ax.set_yscale("log")
    ax.set_ylim(min(latency.values()) / 2, max(latency.values()) * 8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel("median latency per query (ms, log scale)", fontsize=8)
    ax.set_title("Per-stage latency", fontsize=9)
    figure.suptitle("Stage 1 (BM25) against the reranked lists", fontsize=11)
    plot_path = cache_dir() / "examples" / "compare_rerankers.png"
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(plot_path, dpi=110, bbox_inches="tight")
    print(f"plot saved to {plot_path}")

# %% [markdown]
# ## What to take from it
#
# * BM25 puts keyword look-alikes first (the skiing "encoders", the rugby "rover"); the
#   rerankers move the answering passage up and the threshold drops most look-alikes.
# * Reranking costs orders of magnitude more than the first stage, which is why it runs on a
#   few candidates (`FETCH_K`), not on the collection.
# * Scores are calibrated to [0, 1] per backend, but backends spread them differently: here
#   late interaction scores the unanswerable query's candidates above 0.35 and keeps them,
#   while the bi-encoder keeps nothing, so a RAG chain with it abstains. Check the threshold of
#   the backend you deploy on questions your corpus cannot answer.

# %% [markdown]
# The embedded Qdrant folder can be opened by one client at a time: close it when done.

# %%
hybrid_store.client.close()
