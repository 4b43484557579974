"""``CrossEncoderReranker(runtime="openvino")`` against the PyTorch forward of the same model.

The BERT model is MiniLM with a seeded random head (``cross_encoder_path``); tiny random
XLM-RoBERTa and RoBERTa cross-encoders cover the RoBERTa family (position ids from the padding
index); a tiny random DistilBERT stands in for an architecture the runtime does not take.
"""

from __future__ import annotations

import itertools
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from rerankit import ConfigurationError, CrossEncoderReranker, MissingDependencyError
from rerankit._models import loaded_models
from rerankit._torch import cpu_supports_bf16
from rerankit.backends._openvino import (
    OPENVINO_WIDTH,
    OpenVinoModel,
    balanced_bounds,
    padded_inputs,
)
from tests._tiny_models import DOCS as VARIED
from tests._tiny_models import QUERY

pytest.importorskip("openvino")
pytest.importorskip("sentence_transformers")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

DOCS = [*VARIED, "Vectors of floats are stored in collections and searched by cosine similarity."]


def _raw(reranker: CrossEncoderReranker, docs: list[str] = DOCS) -> list[float]:
    by_index = {r.index: r.raw_score for r in reranker.rerank(QUERY, docs)}
    return [by_index[i] for i in range(len(docs))]


def _spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _assert_equals_torch(path: str) -> None:
    torch_scores = _raw(CrossEncoderReranker(model=path, dtype="float32", unpadded=False))
    openvino = CrossEncoderReranker(model=path, dtype="float32", runtime="openvino")
    assert _raw(openvino) == pytest.approx(torch_scores, abs=1e-4)
    # One pair per batch, and all of them in one: the same scores, so padding changes nothing.
    one_by_one = CrossEncoderReranker(model=path, dtype="float32", runtime="openvino", batch_size=1)
    assert _raw(one_by_one) == pytest.approx(torch_scores, abs=1e-4)
    at_once = CrossEncoderReranker(
        model=path, dtype="float32", runtime="openvino", batch_size=len(DOCS)
    )
    assert _raw(at_once) == pytest.approx(torch_scores, abs=1e-4)


def test_openvino_equals_the_torch_forward_in_float32(cross_encoder_path: str) -> None:
    _assert_equals_torch(cross_encoder_path)


def test_roberta_family_openvino_equals_the_torch_forward(roberta_path: str) -> None:
    _assert_equals_torch(roberta_path)


def test_two_label_head_scores_relevant_minus_not_relevant(
    cross_encoder_path: str, tmp_path: Path
) -> None:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        cross_encoder_path, num_labels=2, ignore_mismatched_sizes=True
    )
    with torch.no_grad():
        torch.manual_seed(3)
        model.classifier.weight.normal_(0.0, 0.5)
    path = tmp_path / "two-label"
    model.save_pretrained(str(path))
    transformers.AutoTokenizer.from_pretrained(cross_encoder_path).save_pretrained(str(path))
    expected = _raw(CrossEncoderReranker(model=str(path), dtype="float32", unpadded=False))
    got = _raw(CrossEncoderReranker(model=str(path), dtype="float32", runtime="openvino"))
    assert got == pytest.approx(expected, abs=1e-4)
    assert len(set(np.round(got, 3))) > 1


def test_long_documents_in_windows_match_the_torch_forward(cross_encoder_path: str) -> None:
    docs = [" ".join(f"word{i}" for i in range(300)), "short one", DOCS[3]]

    def reranker(**options: object) -> CrossEncoderReranker:
        return CrossEncoderReranker(
            model=cross_encoder_path,
            dtype="float32",
            max_length=64,
            long_documents="window",
            **options,  # type: ignore[arg-type]
        )

    expected, got = reranker(unpadded=False), reranker(runtime="openvino")
    windows = {r.index: r.windows for r in got.rerank(QUERY, docs)}
    assert windows[0] > 1
    assert _raw(got, docs) == pytest.approx(_raw(expected, docs), abs=1e-4)


@pytest.mark.skipif(not cpu_supports_bf16(), reason="needs a CPU with native bf16")
def test_auto_dtype_runs_bf16_and_keeps_the_float32_ranking(cross_encoder_path: str) -> None:
    fast = CrossEncoderReranker(model=cross_encoder_path, runtime="openvino")
    assert fast.cache_fingerprint()["dtype"] == "torch.bfloat16"
    exact = _raw(CrossEncoderReranker(model=cross_encoder_path, dtype="float32"))
    got = _raw(fast)
    assert got != exact  # computed in bf16, not float32
    assert _spearman(got, exact) >= 0.95
    assert got == pytest.approx(exact, abs=0.1)


def test_warm_up_converts_once_for_every_reranker_of_the_model(cross_encoder_path: str) -> None:
    first = CrossEncoderReranker(model=cross_encoder_path, dtype="float32", runtime="openvino")
    first.warm_up()
    held = loaded_models()
    second = CrossEncoderReranker(model=cross_encoder_path, dtype="float32", runtime="openvino")
    second.warm_up()
    assert second.rerank(QUERY, DOCS[:3])
    assert loaded_models() == held  # the second shares the converted model


def test_concurrent_calls_get_their_own_scores(cross_encoder_path: str) -> None:
    reranker = CrossEncoderReranker(model=cross_encoder_path, dtype="float32", runtime="openvino")
    requests = [DOCS[k:] + DOCS[:k] for k in range(6)]  # each call its own order
    alone = [_raw(reranker, docs) for docs in requests]
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(lambda docs: _raw(reranker, docs), requests * 2))
    assert together == alone * 2


def test_fingerprint_names_the_runtime(cross_encoder_path: str) -> None:
    openvino = CrossEncoderReranker(model=cross_encoder_path, runtime="openvino")
    plain = CrossEncoderReranker(model=cross_encoder_path)
    assert openvino.cache_fingerprint()["runtime"] == "openvino"
    assert "openvino" in openvino.cache_fingerprint()["versions"]
    assert openvino.cache_fingerprint() != plain.cache_fingerprint()


class _Streams:
    """Stands in for a compiled model: only the property OpenVinoModel reads."""

    def __init__(self, streams: int) -> None:
        self.streams = streams

    def get_property(self, name: str) -> int:
        assert name == "OPTIMAL_NUMBER_OF_INFER_REQUESTS"
        return self.streams


@pytest.mark.parametrize(
    ("pairs", "cap", "streams", "batches"),
    [(100, 8, 2, 13), (20, 8, 2, 4), (3, 8, 2, 3), (1, 8, 2, 1), (100, 8, 8, 16), (9, 1, 2, 9)],
)
def test_batches_fill_every_stream_twice_within_the_cap(
    pairs: int, cap: int, streams: int, batches: int
) -> None:
    assert OpenVinoModel(_Streams(streams)).batches(pairs, cap) == batches


def test_runtime_must_be_known() -> None:
    with pytest.raises(ConfigurationError, match="runtime must be one of"):
        CrossEncoderReranker(model="some/model", runtime="onnx")


def test_other_architectures_are_refused_with_the_fix(distilbert_path: str) -> None:
    reranker = CrossEncoderReranker(model=distilbert_path, runtime="openvino")
    with pytest.raises(ConfigurationError, match="runtime='torch'"):
        reranker.rerank(QUERY, DOCS[:2])


def test_missing_openvino_names_the_extra(
    cross_encoder_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    reranker = CrossEncoderReranker(model=cross_encoder_path, dtype="float32", runtime="openvino")
    with pytest.raises(MissingDependencyError, match=r"rerankit\[openvino\]"):
        reranker.rerank(QUERY, DOCS[:2])


def _rows(path: str, docs: list[str]) -> tuple[object, object, list[dict[str, list[int]]]]:
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path)
    return model, tokenizer, [dict(tokenizer(QUERY, doc)) for doc in docs]


def test_inputs_are_padded_to_a_multiple_of_the_width(cross_encoder_path: str) -> None:
    model, tokenizer, rows = _rows(cross_encoder_path, DOCS[:3])
    lengths = [len(row["input_ids"]) for row in rows]
    arrays = padded_inputs(model, tokenizer, rows)
    width = -(-max(lengths) // OPENVINO_WIDTH) * OPENVINO_WIDTH
    assert width > max(lengths)  # the test's rows do not fall on a multiple already
    assert {a.shape for a in arrays.values()} == {(len(rows), width)}
    assert arrays["attention_mask"].sum(axis=1).tolist() == lengths
    for array, row in zip(arrays["input_ids"], rows, strict=True):
        assert array[: len(row["input_ids"])].tolist() == row["input_ids"]
    assert arrays["position_ids"][0].tolist() == list(range(width))


def test_padding_stays_within_the_models_positions(cross_encoder_path: str) -> None:
    model, tokenizer, rows = _rows(cross_encoder_path, DOCS[:3])
    longest = max(len(row["input_ids"]) for row in rows)
    model.config.max_position_embeddings = longest + 1  # this test's own model object
    arrays = padded_inputs(model, tokenizer, rows)
    assert arrays["input_ids"].shape[1] == longest + 1


def _padded_size(lengths: list[int], start: int, stop: int) -> int:
    return (stop - start) * -(-lengths[stop - 1] // OPENVINO_WIDTH) * OPENVINO_WIDTH


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_balanced_bounds_cover_every_pair_with_the_smallest_largest_batch(count: int) -> None:
    lengths = sorted([12, 14, 15, 20, 33, 40, 41, 60, 97, 98, 120, 250, 251, 400])
    bounds = balanced_bounds(lengths, count)
    assert bounds[0] == 0 and bounds[-1] == len(lengths)
    assert all(a < b for a, b in itertools.pairwise(bounds))
    assert len(bounds) - 1 <= count
    largest = max(_padded_size(lengths, a, b) for a, b in itertools.pairwise(bounds))
    # no other cut into at most `count` contiguous batches has a smaller largest batch
    best = min(
        max(_padded_size(lengths, a, b) for a, b in itertools.pairwise(cut))
        for k in range(1, count + 1)
        for inner in itertools.combinations(range(1, len(lengths)), k - 1)
        for cut in [[0, *inner, len(lengths)]]
    )
    assert largest == best


def test_balanced_bounds_give_short_pairs_bigger_batches() -> None:
    lengths = [10] * 6 + [100] * 2
    assert balanced_bounds(lengths, 2) == [0, 6, 8]  # equal counts would be [0, 4, 8]
    assert balanced_bounds([], 3) == [0]
