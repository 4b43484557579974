"""Sentence embeddings as plain lists of floats: the encoding step shared by the LangChain and
LlamaIndex embedding wrappers (:class:`rerankit.langchain.SentenceTransformerEmbeddings`,
:class:`rerankit.llama_index.SentenceTransformerEmbedding`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rerankit._models import encoding

__all__ = ["embed_rows"]


def embed_rows(
    load: Callable[[], Any], texts: Sequence[str], *, batch_size: int, normalize: bool
) -> list[list[float]]:
    """One embedding per text, as a list of floats; ``[]`` for no texts.

    ``load`` returns the sentence-transformers model; it is only called when there is text to
    encode (so an empty call never loads the model).
    """
    if not texts:
        return []
    model = load()
    with encoding(model):  # encode() tokenises with per-call settings
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return [[float(x) for x in row] for row in vectors]
