"""LangChain components: a document compressor, a reranking retriever, and end-to-end RAG.

Needs ``pip install 'rerankit[langchain]'``. The RAG chain, the Qdrant ingestion and the local
embeddings (:mod:`rerankit.langchain.rag`, :mod:`rerankit.langchain.store`,
:mod:`rerankit.langchain.embeddings`) are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rerankit._deps import require
from rerankit._lazy import lazy_exports

require("langchain_core", extra="langchain", feature="rerankit.langchain")

from rerankit.langchain.compressor import RerankCompressor, RerankedDocuments  # noqa: E402
from rerankit.langchain.retriever import RerankRetriever  # noqa: E402
from rerankit.langchain.step import RerankStep  # noqa: E402

if TYPE_CHECKING:
    from rerankit.langchain.chat import ChatOpenAICompatible
    from rerankit.langchain.embeddings import BM25SparseEmbeddings, SentenceTransformerEmbeddings
    from rerankit.langchain.local import LocalChatHuggingFace, local_chat_model
    from rerankit.langchain.multistage import MultiStageDocuments, QdrantMultiStageRetriever
    from rerankit.langchain.rag import (
        RagChainOutput,
        build_rag_chain,
        generator_from_env,
    )
    from rerankit.langchain.store import build_qdrant_store

__getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "BM25SparseEmbeddings": "rerankit.langchain.embeddings",
        "SentenceTransformerEmbeddings": "rerankit.langchain.embeddings",
        "MultiStageDocuments": "rerankit.langchain.multistage",
        "QdrantMultiStageRetriever": "rerankit.langchain.multistage",
        "ChatOpenAICompatible": "rerankit.langchain.chat",
        "LocalChatHuggingFace": "rerankit.langchain.local",
        "local_chat_model": "rerankit.langchain.local",
        "RagChainOutput": "rerankit.langchain.rag",
        "build_qdrant_store": "rerankit.langchain.store",
        "build_rag_chain": "rerankit.langchain.rag",
        "generator_from_env": "rerankit.langchain.rag",
    },
)


__all__ = [
    "BM25SparseEmbeddings",
    "ChatOpenAICompatible",
    "LocalChatHuggingFace",
    "MultiStageDocuments",
    "QdrantMultiStageRetriever",
    "RagChainOutput",
    "RerankCompressor",
    "RerankRetriever",
    "RerankStep",
    "RerankedDocuments",
    "SentenceTransformerEmbeddings",
    "build_qdrant_store",
    "build_rag_chain",
    "generator_from_env",
    "local_chat_model",
]
