"""The cross-encoder's unpadded (packed) forward against the plain HF forward.

The BERT model is MiniLM with a seeded random head (``cross_encoder_path``); tiny random
XLM-RoBERTa and RoBERTa cross-encoders (with MiniLM's tokenizer) cover the RoBERTa family; a
tiny random DistilBERT stands in for an architecture that falls back to the model's own forward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rerankit import ConfigurationError, CrossEncoderReranker
from rerankit.backends._packed import packable
from tests._tiny_models import DOCS, QUERY, ROBERTA_FAMILY

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
transformers = pytest.importorskip("transformers")


def _plain_logits(path: str, docs: list[str], *, one_by_one: bool) -> list[float]:
    """The model's logits from the Hugging Face forward, without rerankit (float32)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()
    groups = [[d] for d in docs] if one_by_one else [docs]
    out: list[float] = []
    with torch.no_grad():
        for group in groups:
            features = tokenizer([QUERY] * len(group), group, padding=True, return_tensors="pt")
            out.extend(model(**features).logits[:, 0].tolist())
    return out


def _raw(reranker: CrossEncoderReranker, docs: list[str]) -> list[float]:
    by_index = {r.index: r.raw_score for r in reranker.rerank(QUERY, docs)}
    return [by_index[i] for i in range(len(docs))]


def test_unpadded_must_be_a_bool_or_none() -> None:
    with pytest.raises(ConfigurationError, match="unpadded"):
        CrossEncoderReranker(model="some/model", unpadded="yes")  # type: ignore[arg-type]
    assert CrossEncoderReranker(model="some/model").unpadded is None


def test_only_exact_bert_classes_are_packable() -> None:
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    tokenizer: Any = type("Tok", (), {"padding_side": "right"})()
    model = transformers.BertForSequenceClassification(config).eval()
    assert packable(model, tokenizer)

    class Custom(transformers.BertForSequenceClassification):  # e.g. remote code
        pass

    assert not packable(Custom(config).eval(), tokenizer)
    assert not packable(model.train(), tokenizer)
    model.eval()
    left: Any = type("Tok", (), {"padding_side": "left"})()
    assert not packable(model, left)
    decoder = transformers.BertConfig(**{**config.to_dict(), "is_decoder": True})
    assert not packable(transformers.BertForSequenceClassification(decoder).eval(), tokenizer)
    distil = transformers.DistilBertForSequenceClassification(
        transformers.DistilBertConfig(vocab_size=100, dim=32, hidden_dim=64, n_layers=1, n_heads=2)
    )
    assert not packable(distil.eval(), tokenizer)


def _assert_unpadded_equals_plain_forward(path: str) -> None:
    """float32: the unpadded path (on by default on the CPU) against the model's own forward,
    pair by pair and batched, and against ``unpadded=False``."""
    packed = CrossEncoderReranker(model=path, device="cpu", dtype="float32")
    assert packed._packs(packed._load())
    padded = CrossEncoderReranker(model=path, device="cpu", dtype="float32", unpadded=False)
    assert not padded._packs(padded._load())
    alone = _plain_logits(path, DOCS, one_by_one=True)
    together = _plain_logits(path, DOCS, one_by_one=False)
    assert max(alone) - min(alone) > 1e-3, alone  # the scores differ, so the test can fail
    got = _raw(packed, DOCS)
    assert got == pytest.approx(alone, abs=1e-4)
    assert got == pytest.approx(together, abs=1e-4)
    assert got == pytest.approx(_raw(padded, DOCS), abs=1e-4)


def _assert_batched_equals_unbatched(path: str) -> None:
    """Batches of 7 pairs, of 1, and several queries sharing batches give the same scores."""
    docs = [f"{d} {i}" for i in range(5) for d in DOCS]  # 40 pairs, several batches
    batched = CrossEncoderReranker(model=path, device="cpu", dtype="float32", batch_size=7)
    single = CrossEncoderReranker(model=path, device="cpu", dtype="float32", batch_size=1)
    assert batched._packs(batched._load())
    assert _raw(batched, docs) == pytest.approx(_raw(single, docs), abs=1e-4)
    many = batched.rerank_batch([QUERY, QUERY], [docs[:9], docs[9:]])
    joined = [r.raw_score for r in sorted(many[0], key=lambda r: r.index)] + [
        r.raw_score for r in sorted(many[1], key=lambda r: r.index)
    ]
    assert joined == pytest.approx(_raw(single, docs), abs=1e-4)


@pytest.mark.model
def test_unpadded_equals_the_plain_forward_in_float32(cross_encoder_path: str) -> None:
    _assert_unpadded_equals_plain_forward(cross_encoder_path)  # BERT


@pytest.mark.model
def test_unpadded_batched_equals_unbatched(cross_encoder_path: str) -> None:
    _assert_batched_equals_unbatched(cross_encoder_path)


@pytest.mark.model
def test_one_pass_of_many_attention_blocks_equals_the_plain_forward(
    cross_encoder_path: str,
) -> None:
    # 48 pairs of very different lengths: with batch_size unset they share one unpadded pass,
    # attention in three blocks of 16 (each padded to its own longest pair), and the last layer
    # runs for the first tokens only.
    docs = [f"{d} {i}" for i in range(6) for d in DOCS]
    packed = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="float32")
    assert packed.batch_size == 32  # the padded path's default; unpadded passes go by tokens
    got = _raw(packed, docs)
    assert got == pytest.approx(_plain_logits(cross_encoder_path, docs, one_by_one=True), abs=1e-4)
    assert got == pytest.approx(_plain_logits(cross_encoder_path, docs, one_by_one=False), abs=1e-4)


@pytest.mark.model
def test_feed_forward_in_token_chunks_equals_the_plain_forward(
    cross_encoder_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerankit.backends import _packed

    # 53 tokens per chunk (MiniLM's intermediate is 1,536 wide): the 24 pairs' few hundred
    # tokens run the block after attention in many chunks, the last one partial, and each
    # chunk boundary falls inside a pair.
    monkeypatch.setattr(_packed, "FEED_FORWARD_ELEMENTS", 53 * 1536)
    docs = [f"{d} {i}" for i in range(3) for d in DOCS]
    packed = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="float32")
    assert packed._packs(packed._load())
    got = _raw(packed, docs)
    assert got == pytest.approx(_plain_logits(cross_encoder_path, docs, one_by_one=True), abs=1e-4)


def test_unpadded_passes_stop_at_the_token_budget() -> None:
    from rerankit.backends._packed import within_tokens

    assert within_tokens([5, 7, 9, 30], 21) == 3
    assert within_tokens([5, 7, 9, 30], 51) == 4
    assert within_tokens([30, 5], 10) == 1  # one row even when it alone is over
    assert within_tokens([5, 7, 9, 30], 21, start=1) == 2  # from row 1: 7 + 9
    assert within_tokens([5, 7, 9, 30], 21, start=4) == 0
    assert within_tokens([], 10) == 0


@pytest.mark.model
def test_unpadded_two_label_head(cross_encoder_path: str, tmp_path: Path) -> None:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        cross_encoder_path, num_labels=2, ignore_mismatched_sizes=True
    )
    torch.manual_seed(3)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 0.5)
    path = tmp_path / "two-label"
    model.save_pretrained(str(path))
    transformers.AutoTokenizer.from_pretrained(cross_encoder_path).save_pretrained(str(path))
    packed = CrossEncoderReranker(model=str(path), device="cpu", dtype="float32")
    padded = CrossEncoderReranker(model=str(path), device="cpu", dtype="float32", unpadded=False)
    assert packed._packs(packed._load())
    assert _raw(packed, DOCS) == pytest.approx(_raw(padded, DOCS), abs=1e-4)


@pytest.mark.model
def test_unpadded_bf16_tracks_the_padded_bf16(cross_encoder_path: str) -> None:
    packed = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="bfloat16")
    padded = CrossEncoderReranker(
        model=cross_encoder_path, device="cpu", dtype="bfloat16", unpadded=False
    )
    fp32 = _plain_logits(cross_encoder_path, DOCS, one_by_one=True)
    a, b = _raw(packed, DOCS), _raw(padded, DOCS)
    spread = max(fp32) - min(fp32)
    assert max(abs(x - y) for x, y in zip(a, fp32, strict=True)) < 0.05 * spread
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 0.05 * spread


@pytest.mark.model
def test_other_architectures_fall_back_to_the_model_forward(distilbert_path: str) -> None:
    reranker = CrossEncoderReranker(
        model=distilbert_path, device="cpu", dtype="float32", unpadded=True
    )
    assert not reranker._packs(reranker._load())
    got = _raw(reranker, DOCS)
    assert got == pytest.approx(_plain_logits(distilbert_path, DOCS, one_by_one=True), abs=1e-4)
    assert got == pytest.approx(_plain_logits(distilbert_path, DOCS, one_by_one=False), abs=1e-4)


@pytest.mark.parametrize("family", sorted(ROBERTA_FAMILY))
def test_only_exact_roberta_classes_are_packable(family: str) -> None:
    config_name, model_name = ROBERTA_FAMILY[family]
    config = getattr(transformers, config_name)(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    model_cls = getattr(transformers, model_name)
    tokenizer: Any = type("Tok", (), {"padding_side": "right"})()
    model = model_cls(config).eval()
    assert packable(model, tokenizer)

    class Custom(model_cls):  # type: ignore[misc,valid-type]  # e.g. remote code
        pass

    assert not packable(Custom(config).eval(), tokenizer)
    assert not packable(model.train(), tokenizer)
    model.eval()
    left: Any = type("Tok", (), {"padding_side": "left"})()
    assert not packable(model, left)
    model.classifier = torch.nn.Linear(32, 1)  # a replaced head: not the family's own
    assert not packable(model, tokenizer)


@pytest.mark.model
def test_roberta_unpadded_equals_the_plain_forward_in_float32(roberta_path: str) -> None:
    _assert_unpadded_equals_plain_forward(roberta_path)


@pytest.mark.model
def test_roberta_unpadded_batched_equals_unbatched(roberta_path: str) -> None:
    _assert_batched_equals_unbatched(roberta_path)
