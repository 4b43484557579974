"""The LangChain and LlamaIndex sentence-transformers embedding wrappers share one encoding step
(``rerankit._embed_rows``): same vectors, same options passed to the model, no load for no text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from rerankit._embed_rows import embed_rows
from rerankit.langchain import SentenceTransformerEmbeddings
from rerankit.llama_index import SentenceTransformerEmbedding


class RecordingModel:
    """Stands in for a sentence-transformers model: one row ``[len(text), 0.5]`` per text."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def encode(self, texts: Sequence[str], **options: Any) -> np.ndarray:
        self.calls.append((list(texts), options))
        return np.array([[len(t), 0.5] for t in texts], dtype=np.float32)


def test_embed_rows_passes_the_options_and_returns_floats() -> None:
    model = RecordingModel()
    rows = embed_rows(lambda: model, ("ab", "c"), batch_size=7, normalize=False)
    assert rows == [[2.0, 0.5], [1.0, 0.5]]
    assert all(type(x) is float for row in rows for x in row)
    assert model.calls == [
        (
            ["ab", "c"],
            {
                "batch_size": 7,
                "normalize_embeddings": False,
                "convert_to_numpy": True,
                "show_progress_bar": False,
            },
        )
    ]


def test_no_text_never_loads_the_model() -> None:
    def load() -> Any:
        raise AssertionError("the model must not load for an empty call")

    assert embed_rows(load, [], batch_size=1, normalize=True) == []
    langchain = SentenceTransformerEmbeddings(model="/no/such/model")
    assert langchain.embed_documents([]) == []
    llama = SentenceTransformerEmbedding(model_name="/no/such/model")
    assert llama._get_text_embeddings([]) == []


@pytest.mark.model
def test_both_wrappers_give_the_same_vectors() -> None:
    texts = ["Qdrant stores vectors.", "Boil pasta for nine minutes."]
    langchain = SentenceTransformerEmbeddings(batch_size=1)
    llama = SentenceTransformerEmbedding(embed_batch_size=1)
    assert langchain.embed_documents(texts) == llama.get_text_embedding_batch(texts)
    assert langchain.embed_query("vector database") == llama.get_query_embedding("vector database")
    vector = np.asarray(langchain.embed_query("vector database"))
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
