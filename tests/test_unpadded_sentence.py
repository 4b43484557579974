"""The bi-encoder rerankers' unpadded encoding against sentence-transformers' ``encode``.

Real weights: the offline all-MiniLM-L6-v2 (a BERT with mean pooling and ``Normalize``). A
sentence-transformers model over the same weights with CLS pooling stands in for a pipeline the
unpadded path does not reproduce, and must go through ``encode``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rerankit import ConfigurationError, EmbeddingReranker, LateInteractionReranker
from rerankit.backends._packed_sentence import packs, sentence_embeddings, token_embeddings

torch = pytest.importorskip("torch")
st = pytest.importorskip("sentence_transformers")

QUERY = "which database stores vectors?"
BASE = [
    "Paris.",
    "Qdrant is a vector database written in Rust.",
    "Boil the pasta for nine minutes in salted water, then drain it and add the sauce.",
    " ".join(f"the river runs past the old mill and field number {i} ." for i in range(40)),
    "ok",
    "A bi-encoder embeds the query and each passage on their own, then compares the vectors.",
]
DOCS = [f"{d} ({i})" for i in range(7) for d in BASE]  # 42 texts: several attention blocks


def _raw(reranker: EmbeddingReranker | LateInteractionReranker, docs: list[str]) -> list[float]:
    by_index = {r.index: r.raw_score for r in reranker.rerank(QUERY, docs)}
    return [by_index[i] for i in range(len(docs))]


@pytest.mark.parametrize("cls", [EmbeddingReranker, LateInteractionReranker])
def test_unpadded_must_be_a_bool_or_none(cls: type) -> None:
    with pytest.raises(ConfigurationError, match="unpadded"):
        cls(unpadded="yes")
    assert cls().unpadded is None


@pytest.mark.model
def test_sentence_embeddings_equal_encode(minilm_path: str) -> None:
    model = st.SentenceTransformer(minilm_path, device="cpu")
    assert not packs(model.train(), pooled=True)  # dropout would be live
    model.eval()
    assert packs(model, pooled=True) and packs(model, pooled=False)
    want = model.encode(DOCS, convert_to_tensor=True, normalize_embeddings=True).float()
    got = sentence_embeddings(model, DOCS)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5)
    tokens = model.encode(DOCS[:6], output_value="token_embeddings", convert_to_numpy=False)
    mine = token_embeddings(model, DOCS[:6])
    assert [t.shape for t in mine] == [t.shape for t in tokens]
    for a, b in zip(mine, tokens, strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-4)
    assert token_embeddings(model, []) == []
    assert sentence_embeddings(model, []).shape[0] == 0


@pytest.mark.model
@pytest.mark.parametrize("cls", [EmbeddingReranker, LateInteractionReranker])
def test_rerankers_unpadded_equal_encode_in_float32(cls: type) -> None:
    extra = {} if cls is EmbeddingReranker else {"encoder": "sentence-transformers"}
    unpadded = cls(device="cpu", dtype="float32", **extra)
    padded = cls(device="cpu", dtype="float32", unpadded=False, **extra)
    encoder = unpadded._load()
    assert unpadded._unpadded_allowed(encoder) and not padded._unpadded_allowed(encoder)
    assert _raw(unpadded, DOCS) == pytest.approx(_raw(padded, DOCS), abs=1e-5)
    # Several queries sharing one encoding pass give the same scores too.
    many = unpadded.rerank_batch([QUERY, "pasta"], [DOCS[:9], DOCS[9:]])
    alone = [unpadded.rerank(QUERY, DOCS[:9]), unpadded.rerank("pasta", DOCS[9:])]
    for a, b in zip(many, alone, strict=True):
        assert [r.index for r in a] == [r.index for r in b]
        assert [r.raw_score for r in a] == pytest.approx([r.raw_score for r in b], abs=1e-5)


@pytest.mark.model
def test_bf16_unpadded_tracks_encode(minilm_path: str) -> None:
    unpadded = EmbeddingReranker(device="cpu", dtype="bfloat16")
    fp32 = EmbeddingReranker(device="cpu", dtype="float32", unpadded=False)
    a, b = _raw(unpadded, DOCS[:6]), _raw(fp32, DOCS[:6])
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 0.02
    assert sorted(range(6), key=a.__getitem__) == sorted(range(6), key=b.__getitem__)


@pytest.mark.model
def test_other_pooling_goes_through_encode(minilm_path: str, tmp_path: Path) -> None:
    transformer = st.models.Transformer(minilm_path)
    pooling = st.models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="cls")
    model = st.SentenceTransformer(modules=[transformer, pooling], device="cpu")
    path = tmp_path / "minilm-cls"
    model.save(str(path))
    reranker = EmbeddingReranker(model=str(path), device="cpu", dtype="float32")
    loaded = reranker._load()
    assert not packs(loaded, pooled=True)  # CLS pooling: encode() it is
    assert packs(loaded, pooled=False)  # its token states are still the transformer's
    want = loaded.encode([QUERY], normalize_embeddings=True, convert_to_tensor=True)[0].float()
    docs = loaded.encode(DOCS[:6], normalize_embeddings=True, convert_to_tensor=True).float()
    assert _raw(reranker, DOCS[:6]) == pytest.approx((docs @ want).tolist(), abs=1e-5)
