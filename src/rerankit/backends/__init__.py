"""Reranking backends. Each imports its heavy dependencies lazily, on first use."""

from rerankit.backends.cross_encoder import CrossEncoderReranker
from rerankit.backends.embedding import EmbeddingReranker
from rerankit.backends.late_interaction import LateInteractionReranker

__all__ = ["CrossEncoderReranker", "EmbeddingReranker", "LateInteractionReranker"]
