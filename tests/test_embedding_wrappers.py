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
        self.tokenizer = object()  # what the tokenizer lock is keyed on

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


@pytest.mark.parametrize(
    "options",
    [
        {"max_length": 4},
        {"max_length": 0},
        {"max_length": True},
        {"batch_size": 0},
        {"batch_size": True},
        {"dtype": "float8"},
        {"model": ""},
        {"normalize": "yes"},
        {"query_prompt": 3},
        {"document_prompt": None},
    ],
)
def test_both_wrappers_and_the_rerankers_validate_options_by_one_rule(
    options: dict[str, Any],
) -> None:
    from rerankit import ConfigurationError, EmbeddingReranker

    with pytest.raises(ConfigurationError) as langchain:
        SentenceTransformerEmbeddings(**options)
    with pytest.raises(ConfigurationError) as llama:
        SentenceTransformerEmbedding(**options)
    assert str(langchain.value) == str(llama.value)
    shared = {k: v for k, v in options.items() if k in ("max_length", "batch_size", "dtype")}
    if shared:
        with pytest.raises(ConfigurationError) as reranker:
            EmbeddingReranker(**shared)
        assert str(reranker.value) == str(langchain.value)


def test_both_wrappers_take_the_same_names_and_defaults() -> None:
    langchain = SentenceTransformerEmbeddings(
        batch_size=3, max_length=64, query_prompt="q: ", document_prompt="d: "
    )
    llama = SentenceTransformerEmbedding(
        batch_size=3, max_length=64, query_prompt="q: ", document_prompt="d: "
    )
    assert (langchain.batch_size, langchain.max_length) == (llama.embed_batch_size, 64)
    assert (langchain.query_prompt, langchain.document_prompt) == ("q: ", "d: ")
    assert (llama.query_prompt, llama.document_prompt) == ("q: ", "d: ")
    assert langchain.dtype == llama.dtype == "float32"
    assert langchain.normalize is llama.normalize is True
