"""LlamaIndex components: a node postprocessor backed by any rerankit reranker, and
end-to-end RAG.

Needs ``pip install 'rerankit[llama-index]'``. The query engine, the Qdrant ingestion and the
local embedding model (:mod:`rerankit.llama_index.rag`, :mod:`rerankit.llama_index.store`,
:mod:`rerankit.llama_index.embeddings`) are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rerankit._deps import require
from rerankit._lazy import lazy_exports

require(
    "llama_index.core",
    extra="llama-index",
    feature="rerankit.llama_index",
    package="llama-index-core",
)

from rerankit.llama_index.postprocessor import RerankedNodes, RerankPostprocessor  # noqa: E402

if TYPE_CHECKING:
    from rerankit.llama_index.embeddings import SentenceTransformerEmbedding
    from rerankit.llama_index.llm import OpenAICompatibleLLM
    from rerankit.llama_index.local import LocalHuggingFaceLLM, local_llm
    from rerankit.llama_index.multistage import (
        MultiStageNodes,
        MultiStageQuery,
        QdrantMultiStageRetriever,
    )
    from rerankit.llama_index.rag import (
        CitingSynthesizer,
        build_query_engine,
        generator_from_env,
    )
    from rerankit.llama_index.store import RerankitQdrantVectorStore, build_qdrant_index

__getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "SentenceTransformerEmbedding": "rerankit.llama_index.embeddings",
        "MultiStageNodes": "rerankit.llama_index.multistage",
        "MultiStageQuery": "rerankit.llama_index.multistage",
        "QdrantMultiStageRetriever": "rerankit.llama_index.multistage",
        "CitingSynthesizer": "rerankit.llama_index.rag",
        "OpenAICompatibleLLM": "rerankit.llama_index.llm",
        "LocalHuggingFaceLLM": "rerankit.llama_index.local",
        "local_llm": "rerankit.llama_index.local",
        "RerankitQdrantVectorStore": "rerankit.llama_index.store",
        "build_qdrant_index": "rerankit.llama_index.store",
        "build_query_engine": "rerankit.llama_index.rag",
        "generator_from_env": "rerankit.llama_index.rag",
    },
)


__all__ = [
    "CitingSynthesizer",
    "LocalHuggingFaceLLM",
    "MultiStageNodes",
    "MultiStageQuery",
    "OpenAICompatibleLLM",
    "QdrantMultiStageRetriever",
    "RerankPostprocessor",
    "RerankedNodes",
    "RerankitQdrantVectorStore",
    "SentenceTransformerEmbedding",
    "build_qdrant_index",
    "build_query_engine",
    "generator_from_env",
    "local_llm",
]
