# %% [markdown]
# # RAG with LlamaIndex: Qdrant, rerank, threshold, cited answer
#
# The query engine that `rerankit.llama_index.build_query_engine` builds:
#
# 1. **retrieve** nodes from a `VectorStoreIndex` over Qdrant (here hybrid: dense MiniLM +
#    BM25);
# 2. **rerank** them with `RerankPostprocessor` and apply the **threshold** (`top_n`,
#    `min_score`);
# 3. **synthesise** with `CitingSynthesizer`: the kept nodes in reranked order, numbered `[1]`,
#    `[2]`, ... with their source ids (never their scores), and any LlamaIndex LLM; the answer
#    cites the numbers.
#
# When no node passes the threshold, the engine answers that the documents do not cover the
# question **without calling the LLM**, and says so in `response.metadata`.
#
# It runs offline: embeddings and reranker are the offline all-MiniLM-L6-v2. With
# `OPENAI_API_KEY` or `OPENAI_BASE_URL` set (and optionally `OPENAI_MODEL`), answers come from
# that OpenAI-compatible model; without them, from an extractive answerer that is labelled as
# such: it returns the context sentences most relevant to the question, with citations.
#
# Run it as a script (`python examples/llama_index_rag.py`) or open `llama_index_rag.ipynb`;
# the notebook is generated from this script.

# %%
import asyncio
import os
import textwrap

from llama_index.core import Document
from llama_index.core.async_utils import asyncio_run
from llama_index.core.base.response.schema import Response

from rerankit.demo.corpus import PASSAGES
from rerankit.llama_index import (
    SentenceTransformerEmbedding,
    build_qdrant_index,
    build_query_engine,
    generator_from_env,
)
from rerankit.qdrant import default_qdrant_path

# %% [markdown]
# ## 1. Ingest the documents into Qdrant
#
# 25 short passages on six topics, each topic with near-miss distractors. The store is embedded
# in a cache folder (set `QDRANT_URL`, and `QDRANT_API_KEY` if needed, to use a Qdrant server).
# Nodes are embedded and upserted in batches with a progress bar; their ids are content hashes,
# so running this again adds nothing.

# %%
documents = [
    Document(text=text, id_=doc_id, metadata={"source": doc_id}) for doc_id, text in PASSAGES
]
url = os.environ.get("QDRANT_URL")
index = build_qdrant_index(
    documents,
    SentenceTransformerEmbedding(),
    collection="rerankit-llama-index-rag",
    url=url,
    api_key=os.environ.get("QDRANT_API_KEY") if url else None,
    path=None if url else default_qdrant_path("examples-llama-index"),
    hybrid=True,
)
client = index.vector_store.client
print(client.count("rerankit-llama-index-rag").count, "points in Qdrant")

# %% [markdown]
# ## 2. Build the query engine
#
# `generator_from_env()` returns an OpenAI-compatible LLM when `OPENAI_API_KEY` or
# `OPENAI_BASE_URL` is set; else a local LLM when `RERANKIT_LOCAL_LLM` names one (a hub id, a
# model folder or a `.gguf` file; `local_llm()` is the offline SmolLM2-135M-Instruct); else the
# offline `ExtractiveAnswerer`. Any LlamaIndex LLM works as `llm`; `streaming=True` makes the
# engine stream the answer token by token.

# %%
llm = generator_from_env()
print("generator:", llm)
engine = build_query_engine(
    index=index,
    llm=llm,
    reranker="embedding",  # or "late-interaction", "cross-encoder:<model>", a Reranker
    fetch_k=8,
    top_n=3,
    min_score=0.35,
)


def show(response) -> None:
    """Print a response: the answer, its citations and the source nodes with their scores."""
    meta = response.metadata
    print("question:", meta["question"])
    print(f"answer ({meta['generator']}):")
    print(textwrap.indent(str(response), "    "))
    if meta["abstained"]:
        print("    -> abstained, the LLM was not called:", meta["empty_reason"])
    for c in meta["citations"]:
        print(f"  cites [{c.number}] {c.source_id} (rerank score {c.score:.3f})")
    print(f"  source nodes (reranked, thresholded): {len(response.source_nodes)}")
    for number, item in enumerate(response.source_nodes, start=1):
        node_meta = item.node.metadata
        print(
            f"    [{number}] {node_meta['source']:<9} score {item.score:.3f}"
            f" (retrieval score {node_meta['retrieval_score']:.3f},"
            f" stage-1 position {node_meta['rerank']['original_rank'] + 1})"
        )


# %% [markdown]
# ## 3. Ask
#
# `response.source_nodes` are the kept nodes, scored by the reranker (the first-stage score is
# in `metadata["retrieval_score"]`); `response.metadata` holds the citations, the exact prompt
# and whether the engine abstained.

# %%
response = engine.query("Why don't Python threads run in parallel?")
show(response)

# %% [markdown]
# The exact prompt the LLM receives (the extractive answerer does not need it, but it is built
# and shown all the same). Passages are in reranked order with their source ids; no scores.

# %%
print(response.metadata["prompt"])

# %% [markdown]
# ## 4. A question the documents do not answer
#
# Nothing passes the threshold, so the engine abstains and the LLM is never called.

# %%
response = engine.query("How long can a python snake grow?")
show(response)

# %% [markdown]
# ## 5. Async
#
# `aquery` works too (with the embedded store, retrieval runs in a worker thread).


# %%
async def ask_all(questions: list[str]) -> list[Response]:
    return await asyncio.gather(*(engine.aquery(q) for q in questions))


# asyncio_run works in a script and inside a notebook's running event loop alike.
questions = ["How does HNSW find nearest neighbours?", "How does a cross-encoder score a passage?"]
for response in asyncio_run(ask_all(questions)):
    print(
        response.metadata["question"], "->", [c.source_id for c in response.metadata["citations"]]
    )

# %% [markdown]
# The embedded Qdrant folder can be opened by one client at a time: close it when done.

# %%
client.close()
