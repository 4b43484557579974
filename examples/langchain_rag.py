# %% [markdown]
# # RAG with LangChain: Qdrant, rerank, threshold, cited answer
#
# The chain that `rerankit.langchain.build_rag_chain` builds:
#
# 1. **retrieve** candidates from a `QdrantVectorStore` (here hybrid: dense MiniLM + BM25);
# 2. **rerank** them with `RerankCompressor` and apply the **threshold** (`top_n`, `min_score`);
# 3. **prompt**: the kept passages in reranked order, numbered `[1]`, `[2]`, ... with their
#    source ids (never their scores);
# 4. **generate** with any LangChain chat model; the answer cites the numbers.
#
# When no passage passes the threshold, the chain answers that the documents do not cover the
# question **without calling the model**, and says so in its output.
#
# It runs offline: embeddings and reranker are the offline all-MiniLM-L6-v2. With
# `OPENAI_API_KEY` or `OPENAI_BASE_URL` set (and optionally `OPENAI_MODEL`), answers come from
# that OpenAI-compatible model; without them, from an extractive answerer that is labelled as
# such: it returns the context sentences most relevant to the question, with citations.
#
# Run it as a script (`python examples/langchain_rag.py`) or open `langchain_rag.ipynb`; the
# notebook is generated from this script.

# %%
import os
import textwrap

from langchain_core.documents import Document

from rerankit.demo.corpus import PASSAGES
from rerankit.langchain import (
    SentenceTransformerEmbeddings,
    build_qdrant_store,
    build_rag_chain,
    generator_from_env,
)
from rerankit.qdrant import default_qdrant_path

# %% [markdown]
# ## 1. Ingest the documents into Qdrant
#
# 25 short passages on six topics, each topic with near-miss distractors. The store is embedded
# in a cache folder (set `QDRANT_URL`, and `QDRANT_API_KEY` if needed, to use a Qdrant server).
# Points are upserted in batches with a progress bar; their ids are content hashes, so running
# this again adds nothing.

# %%
documents = [Document(page_content=text, metadata={"source": doc_id}) for doc_id, text in PASSAGES]
url = os.environ.get("QDRANT_URL")
store = build_qdrant_store(
    documents,
    SentenceTransformerEmbeddings(),
    collection="rerankit-langchain-rag",
    url=url,
    api_key=os.environ.get("QDRANT_API_KEY") if url else None,
    path=None if url else default_qdrant_path("examples-langchain"),
    hybrid=True,
)
print(store.client.count("rerankit-langchain-rag").count, "points in Qdrant")

# %% [markdown]
# ## 2. Build the chain
#
# `generator_from_env()` returns an OpenAI-compatible chat model when `OPENAI_API_KEY` or
# `OPENAI_BASE_URL` is set; else a local chat model when `RERANKIT_LOCAL_LLM` names one (a hub
# id, a model folder or a `.gguf` file; `local_chat_model()` is the offline
# SmolLM2-135M-Instruct); else the offline `ExtractiveAnswerer`. Any LangChain chat model works
# as `llm` (e.g. `ChatOpenAI`, `ChatOllama`), and `chain.stream(question)` yields the sources
# first, then the answer token by token.

# %%
llm = generator_from_env()
print("generator:", llm)
chain = build_rag_chain(
    retriever=store,
    llm=llm,
    reranker="embedding",  # or "late-interaction", "cross-encoder:<model>", a Reranker
    fetch_k=8,
    top_n=3,
    min_score=0.35,
)


def show(out: dict) -> None:
    """Print a chain output: the answer, its citations and the sources with their scores."""
    print("question:", out["question"])
    print(f"answer ({out['generator']}):")
    print(textwrap.indent(out["answer"], "    "))
    if out["abstained"]:
        print("    -> abstained, the LLM was not called:", out["empty_reason"])
    for c in out["citations"]:
        print(f"  cites [{c.number}] {c.source_id} (rerank score {c.score:.3f})")
    retrieved = [d.metadata["source"] for d in out["retrieved"]]
    print(f"  stage 1 retrieved {len(retrieved)}: {', '.join(retrieved)}")
    print(f"  kept after rerank + threshold: {len(out['sources'])}")
    for number, doc in enumerate(out["sources"], start=1):
        meta = doc.metadata
        print(
            f"    [{number}] {meta['source']:<9} score {meta['relevance_score']:.3f}"
            f" (stage-1 position {meta['rerank']['original_rank'] + 1})"
        )


# %% [markdown]
# ## 3. Ask
#
# The output holds the answer, the citations, the sources with their scores (in prompt order),
# the stage-1 candidates, and the exact prompt.

# %%
out = chain.invoke("How does a cross-encoder score a passage?")
show(out)

# %% [markdown]
# The exact prompt the LLM receives (the extractive answerer does not need it, but it is built
# and shown all the same). Passages are in reranked order with their source ids; no scores.

# %%
print(out["prompt"])

# %% [markdown]
# ## 4. A question the documents do not answer
#
# The retriever still returns candidates (keyword matches on "python"), but none passes the
# threshold, so the chain abstains and the model is never called.

# %%
out = chain.invoke("How long can a python snake grow?")
show(out)
print("prompt sent:", out["prompt"])

# %% [markdown]
# ## 5. Batch and async
#
# It is an ordinary LCEL runnable: `batch`, `ainvoke` and `astream_events` work as usual.

# %%
for out in chain.batch(
    ["Why don't Python threads run in parallel?", "What water temperature for pour-over coffee?"]
):
    print(out["question"], "->", [c.source_id for c in out["citations"]])

# %% [markdown]
# The embedded Qdrant folder can be opened by one client at a time: close it when done.

# %%
store.client.close()
