"""LlamaIndex components: a node postprocessor backed by any rerankit reranker.

Needs ``pip install 'rerankit[llama-index]'``.
"""

from rerankit._deps import require

require(
    "llama_index.core",
    extra="llama-index",
    feature="rerankit.llama_index",
    package="llama-index-core",
)

from rerankit.llama_index.postprocessor import RerankPostprocessor  # noqa: E402

__all__ = ["RerankPostprocessor"]
