"""LangChain components: a document compressor and a reranking retriever.

Needs ``pip install 'rerankit[langchain]'``.
"""

from rerankit._deps import require

require("langchain_core", extra="langchain", feature="rerankit.langchain")

from rerankit.langchain.compressor import RerankCompressor, RerankedDocuments  # noqa: E402
from rerankit.langchain.retriever import RerankRetriever  # noqa: E402

__all__ = ["RerankCompressor", "RerankRetriever", "RerankedDocuments"]
