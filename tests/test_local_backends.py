"""The local (torch) backends against real weights: cross-encoder, embedding, late interaction.

The cross-encoder is MiniLM with a seeded random head (``cross_encoder_path``): good for
mechanics (batching, dtypes, truncation, windows, model sharing), never for quality claims.
The bi-encoder checks use the real all-MiniLM-L6-v2 weights.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rerankit import (
    BackendError,
    ConfigurationError,
    CrossEncoderReranker,
    EmbeddingReranker,
    LateInteractionReranker,
    TruncationWarning,
)
from rerankit._models import clear_model_cache, loaded_models
from rerankit.backends._segments import segment
from rerankit.backends.local import LocalReranker
from rerankit.cache.fingerprint import _is_pointwise
from rerankit.multistage import SentenceTransformerEncoder

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

QUERY = "which database stores vectors?"
DOCS = [
    "Qdrant is a vector database written in Rust.",
    "Paris is the capital of France.",
    "Boil the pasta for nine minutes in salted water.",
    "The stock market fell sharply on Tuesday.",
    "A cross-encoder scores the query and the passage jointly.",
    "Jupiter is the largest planet in the solar system.",
    "Pour-over coffee tastes best with water at about 93 degrees.",
    "BM25 ranks documents by term frequency.",
    "Cats sleep for most of the day.",
    "Rerankers improve the quality of retrieval for RAG pipelines.",
]
# Whole common words only: a window cut at a token boundary re-tokenises to the same tokens.
LONG_DOC = " ".join(
    f"the river runs past the old mill and the green field number {i} ." for i in range(30)
)


def _spearman(a: list[float], b: list[float]) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _raw_by_index(results: list) -> dict[int, float]:
    return {r.index: r.raw_score for r in results}


@pytest.fixture(scope="module")
def ce32(cross_encoder_path: str) -> CrossEncoderReranker:
    reranker = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="float32")
    reranker.warm_up()
    return reranker


@pytest.fixture(scope="module")
def embedder() -> EmbeddingReranker:
    return EmbeddingReranker(device="cpu")


# -- constructor validation (no model) ----------------------------------------------------------


@pytest.mark.parametrize("cls", [CrossEncoderReranker, EmbeddingReranker, LateInteractionReranker])
@pytest.mark.parametrize(
    "bad",
    [
        {"batch_size": 0},
        {"batch_size": -3},
        {"dtype": "int3"},
        {"long_documents": "x"},
        {"window_overlap": -1},
        {"model": ""},
        {"model": "   "},
    ],
)
def test_bad_constructor_args_raise_configuration_error(cls: type, bad: dict) -> None:
    kwargs = {"model": "some/model", **bad}
    with pytest.raises(ConfigurationError):
        cls(**kwargs)


def test_cross_encoder_max_length_too_small_is_rejected() -> None:
    with pytest.raises(ConfigurationError):
        CrossEncoderReranker(model="some/model", max_length=4)


@pytest.mark.parametrize(
    ("cls", "option", "value", "accepted"),
    [
        # One rule for every local model: bools are not sizes, windows are at least 8 tokens.
        (CrossEncoderReranker, "batch_size", True, False),
        (EmbeddingReranker, "batch_size", True, False),
        (LateInteractionReranker, "batch_size", True, False),
        (SentenceTransformerEncoder, "batch_size", True, False),
        (CrossEncoderReranker, "max_length", 4, False),
        (EmbeddingReranker, "max_length", 4, False),
        (EmbeddingReranker, "max_length", "64", False),
        (EmbeddingReranker, "max_length", 8, True),
        (LateInteractionReranker, "max_length", 4, False),
        (SentenceTransformerEncoder, "max_length", 4, False),
        (CrossEncoderReranker, "max_length", "64", False),
        (LateInteractionReranker, "max_length", "64", False),
        (SentenceTransformerEncoder, "max_length", "64", False),
        (CrossEncoderReranker, "max_length", 8, True),
        (LateInteractionReranker, "max_length", 8, True),
        (SentenceTransformerEncoder, "dtype", "int3", False),
        (SentenceTransformerEncoder, "model", " ", False),
    ],
)
def test_local_models_share_one_option_rule(
    cls: type, option: str, value: object, accepted: bool
) -> None:
    kwargs = {"model": "some/model", option: value}
    if accepted:
        assert getattr(cls(**kwargs), option) == value
    else:
        with pytest.raises(ConfigurationError, match=option):
            cls(**kwargs)


def test_model_is_required_only_for_the_cross_encoder() -> None:
    message = r"^model must be a non-empty hub id or local path$"
    with pytest.raises(ConfigurationError, match=message):
        CrossEncoderReranker(model=None)  # type: ignore[arg-type]
    for cls in (EmbeddingReranker, LateInteractionReranker, SentenceTransformerEncoder):
        assert cls().model == cls(model=None).model != ""
        with pytest.raises(ConfigurationError, match=r"local path, or None$"):
            cls(model="")


def test_local_rerankers_declare_pointwise_scores() -> None:
    rerankers = [
        CrossEncoderReranker(model="some/model"),
        EmbeddingReranker(model="some/model"),
        LateInteractionReranker(model="some/model"),
    ]
    for reranker in rerankers:
        assert isinstance(reranker, LocalReranker)
        assert reranker.pointwise is True
        assert _is_pointwise(reranker) is True


class _CountingModel:
    """Wraps a loaded sentence-transformers model and counts ``encode`` calls."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.model.encode(*args, **kwargs)


@pytest.mark.model
def test_use_model_routes_scoring_through_the_given_model() -> None:
    reranker = EmbeddingReranker(device="cpu")
    neighbour = EmbeddingReranker(device="cpu")
    assert reranker._loaded is None
    loaded = reranker.loaded_model()
    assert loaded is reranker.loaded_model() is neighbour.loaded_model()
    before = reranker.rerank(QUERY, DOCS[:4])
    counting = _CountingModel(loaded)
    reranker.use_model(counting)
    assert reranker.loaded_model() is counting
    after = reranker.rerank(QUERY, DOCS[:4])
    assert counting.calls == 2  # the query and the documents
    # The wrapper is not a SentenceTransformer, so it is asked to encode() (padded) where the
    # loaded model ran unpadded: the same scores up to float32 noise.
    assert [r.raw_score for r in after] == pytest.approx([r.raw_score for r in before], abs=1e-5)
    # Another reranker sharing the same loaded model keeps it.
    assert neighbour.loaded_model() is loaded
    neighbour.rerank(QUERY, DOCS[:4])
    assert counting.calls == 2


@pytest.mark.model
@pytest.mark.parametrize("backend", ["embedding", "cross-encoder", "late-interaction"])
def test_long_documents_are_reported_by_rerankit_only(
    backend: str, cross_encoder_path: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # transformers logs "Token indices sequence length is longer than the specified maximum
    # sequence length" once per tokenizer when rerankit measures a long document; a fresh load
    # gives a tokenizer that has not logged it yet.
    clear_model_cache()
    if backend == "cross-encoder":
        reranker: LocalReranker = CrossEncoderReranker(
            model=cross_encoder_path, device="cpu", dtype="float32"
        )
    elif backend == "embedding":
        reranker = EmbeddingReranker(device="cpu")
    else:
        reranker = LateInteractionReranker(device="cpu", encoder="sentence-transformers")
    long_doc = " ".join([LONG_DOC] * 2)  # over 512 tokens: longer than any of these windows
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        with pytest.warns(TruncationWarning, match="1 of 2 documents"):
            results = reranker.rerank(QUERY, [DOCS[0], long_doc])
    finally:
        logger.removeHandler(handler)
    assert results.truncated == 1
    assert not [r for r in records if "sequence length is longer" in r.getMessage()]
    assert "sequence length is longer" not in capfd.readouterr().err


def test_constructing_does_not_load(minilm_path: str, cross_encoder_path: str) -> None:
    clear_model_cache()
    missing = str(Path(minilm_path).parent / "no-such-model-dir")
    # A model that does not exist: constructing must not even look at it.
    CrossEncoderReranker(model=missing)
    EmbeddingReranker(model=missing)
    LateInteractionReranker(model=missing)
    ce = CrossEncoderReranker(model=cross_encoder_path, dtype="float32")
    emb = EmbeddingReranker()
    late = LateInteractionReranker()
    assert loaded_models() == 0
    assert ce._loaded is None and emb._loaded is None and late._loaded is None


# -- cross-encoder ---------------------------------------------------------------------------------


@pytest.mark.model
def test_cross_encoder_scores_are_logits_and_sigmoid(
    ce32: CrossEncoderReranker, cross_encoder_path: str
) -> None:
    results = ce32.rerank(QUERY, DOCS)
    assert sorted(r.index for r in results) == list(range(len(DOCS)))
    assert [r.rank for r in results] == list(range(len(DOCS)))
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    for r in results:
        assert type(r.raw_score) is float
        assert type(r.score) is float
        assert r.score == pytest.approx(1.0 / (1.0 + math.exp(-r.raw_score)), abs=1e-12)
        assert 0.0 < r.score < 1.0
    # The seeded head spreads logits: some negative, some positive (not already sigmoid'ed).
    raws = [r.raw_score for r in results]
    assert min(raws) < 0.0 < max(raws)

    # raw_score is the model's logit, computed here without rerankit.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(cross_encoder_path)
    model = AutoModelForSequenceClassification.from_pretrained(cross_encoder_path).eval()
    with torch.no_grad():
        features = tokenizer([QUERY] * len(DOCS), DOCS, padding=True, return_tensors="pt")
        logits = model(**features).logits[:, 0].tolist()
    by_index = _raw_by_index(results)
    for i, logit in enumerate(logits):
        assert by_index[i] == pytest.approx(logit, abs=1e-4)


@pytest.mark.model
def test_cross_encoder_batching_and_order_do_not_change_scores(
    ce32: CrossEncoderReranker, cross_encoder_path: str
) -> None:
    one = CrossEncoderReranker(
        model=cross_encoder_path, device="cpu", dtype="float32", batch_size=1
    )
    batched = _raw_by_index(ce32.rerank(QUERY, DOCS))
    single = _raw_by_index(one.rerank(QUERY, DOCS))
    for i in range(len(DOCS)):
        assert single[i] == pytest.approx(batched[i], abs=1e-4)

    reversed_docs = DOCS[::-1]
    flipped = _raw_by_index(ce32.rerank(QUERY, reversed_docs))
    n = len(DOCS)
    for i in range(n):
        assert flipped[n - 1 - i] == pytest.approx(batched[i], abs=1e-4)


@pytest.mark.model
def test_cross_encoder_bf16_tracks_fp32(
    ce32: CrossEncoderReranker, cross_encoder_path: str
) -> None:
    bf16 = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="bfloat16")
    assert next(bf16._load().model.parameters()).dtype == torch.bfloat16
    a = _raw_by_index(ce32.rerank(QUERY, DOCS))
    b = _raw_by_index(bf16.rerank(QUERY, DOCS))
    xs = [a[i] for i in range(len(DOCS))]
    ys = [b[i] for i in range(len(DOCS))]
    assert all(type(y) is float for y in ys)
    assert _spearman(xs, ys) > 0.9
    spread = max(xs) - min(xs)
    assert max(abs(x - y) for x, y in zip(xs, ys, strict=True)) < 0.2 * spread


@pytest.mark.model
def test_dtype_auto_resolves_to_bf16_on_this_cpu(cross_encoder_path: str) -> None:
    from rerankit._torch import cpu_supports_bf16

    if not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16 (AMX / AVX512-BF16)")
    auto = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="auto")
    loaded = auto._load()
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    # "auto" and "bfloat16" name the same weights: one load.
    explicit = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="bfloat16")
    assert explicit._load() is loaded


@pytest.mark.model
def test_model_loads_once_per_process(cross_encoder_path: str) -> None:
    clear_model_cache()
    rerankers = [
        CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="float32")
        for _ in range(10)
    ]
    assert loaded_models() == 0
    first = rerankers[0]._load()
    assert all(r._load() is first for r in rerankers)
    assert loaded_models() == 1
    # device=None resolves to cpu here: same key, same object.
    assert CrossEncoderReranker(model=cross_encoder_path, dtype="float32")._load() is first

    other = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="bfloat16")
    assert other._load() is not first
    assert loaded_models() == 2
    assert next(first.model.parameters()).dtype == torch.float32

    clear_model_cache()
    assert loaded_models() == 0
    # Already-built rerankers keep their model; new ones load afresh.
    assert rerankers[3]._load() is first
    fresh = CrossEncoderReranker(model=cross_encoder_path, device="cpu", dtype="float32")
    assert fresh._load() is not first


@pytest.mark.model
def test_embedding_rerankers_share_one_model() -> None:
    a, b = EmbeddingReranker(device="cpu"), EmbeddingReranker(device="cpu")
    assert a._load() is b._load()
    # A late-interaction reranker on the same sentence-transformers model shares it too.
    assert LateInteractionReranker(device="cpu")._load() is a._load()


@pytest.mark.model
def test_long_document_is_flagged_truncated_and_warned_once(cross_encoder_path: str) -> None:
    reranker = CrossEncoderReranker(
        model=cross_encoder_path, device="cpu", dtype="float32", max_length=32
    )
    docs = ["a short note about rivers.", LONG_DOC]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = reranker.rerank("where does the river run?", docs)
        again = reranker.rerank("where does the river run?", docs)
    flags = {r.index: r.truncated for r in results}
    assert flags == {0: False, 1: True}
    assert results.truncated == 1
    assert again.truncated == 1
    assert all(r.windows == 1 for r in results)
    truncation = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(truncation) == 1, "TruncationWarning must be emitted once per reranker"

    other = CrossEncoderReranker(
        model=cross_encoder_path, device="cpu", dtype="float32", max_length=32
    )
    with pytest.warns(TruncationWarning):
        other.rerank("where does the river run?", docs)


@pytest.mark.model
def test_no_truncation_no_warning(ce32: CrossEncoderReranker) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        results = ce32.rerank(QUERY, DOCS[:3])
    assert results.truncated == 0
    assert not any(r.truncated for r in results)


@pytest.mark.model
def test_window_mode_scores_max_over_windows(cross_encoder_path: str) -> None:
    query = "where does the river run?"
    windowed = CrossEncoderReranker(
        model=cross_encoder_path,
        device="cpu",
        dtype="float32",
        max_length=32,
        long_documents="window",
        window_overlap=8,
    )
    docs = ["a short note about rivers.", LONG_DOC]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        results = windowed.rerank(query, docs)
    by_index = {r.index: r for r in results}
    assert results.truncated == 0
    assert not by_index[1].truncated
    assert by_index[0].windows == 1
    n_windows = by_index[1].windows
    assert n_windows > 1

    # Rebuild the windows: the document budget is the window minus the query and specials.
    tokenizer = windowed._load().tokenizer
    n_query = len(tokenizer(query, add_special_tokens=False)["input_ids"])
    budget = 32 - n_query - tokenizer.num_special_tokens_to_add(pair=True)
    windows = segment(tokenizer, [LONG_DOC], budget, mode="window", overlap=8).texts
    assert len(windows) == n_windows
    for text in windows:
        assert text in LONG_DOC
    assert LONG_DOC.startswith(windows[0])
    assert LONG_DOC.endswith(windows[-1])

    # Each window fits the model window, and the document scores as its best window.
    plain = CrossEncoderReranker(
        model=cross_encoder_path, device="cpu", dtype="float32", max_length=32
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        window_results = plain.rerank(query, windows)
    assert window_results.truncated == 0
    best = max(r.raw_score for r in window_results)
    assert by_index[1].raw_score == pytest.approx(best, abs=1e-4)
    # The short document is scored as a whole, exactly as without windowing.
    short = plain.rerank(query, docs[:1])[0].raw_score
    assert by_index[0].raw_score == pytest.approx(short, abs=1e-4)


@pytest.mark.model
def test_cross_encoder_with_three_labels_is_rejected(
    minilm_path: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    st = pytest.importorskip("sentence_transformers")
    path = tmp_path_factory.mktemp("three-labels") / "ce3"
    st.CrossEncoder(minilm_path, num_labels=3, device="cpu").save_pretrained(str(path))
    reranker = CrossEncoderReranker(model=str(path), device="cpu", dtype="float32")
    with pytest.raises(ConfigurationError, match="3 output labels"):
        reranker.rerank(QUERY, DOCS[:2])


@pytest.mark.model
async def test_cross_encoder_async_matches_sync(ce32: CrossEncoderReranker) -> None:
    sync = ce32.rerank(QUERY, DOCS[:4])
    result = await ce32.arerank(QUERY, DOCS[:4])
    assert [(r.index, r.raw_score) for r in result] == [(r.index, r.raw_score) for r in sync]


# -- embedding -------------------------------------------------------------------------------------


@pytest.mark.model
def test_embedding_default_model_is_offline_minilm(
    embedder: EmbeddingReranker, minilm_path: str
) -> None:
    assert embedder.model == minilm_path
    # Metadata, events and tables name the model, not a site-packages folder.
    assert embedder.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert LateInteractionReranker().model == minilm_path


@pytest.mark.model
def test_embedding_raw_score_is_the_cosine(embedder: EmbeddingReranker, minilm_path: str) -> None:
    from sentence_transformers import SentenceTransformer

    results = embedder.rerank(QUERY, DOCS)
    reference = SentenceTransformer(minilm_path, device="cpu")
    q = reference.encode([QUERY], normalize_embeddings=True)[0]
    d = reference.encode(DOCS, normalize_embeddings=True)
    cosines = d @ q
    by_index = _raw_by_index(results)
    for i, cosine in enumerate(cosines):
        assert by_index[i] == pytest.approx(float(cosine), abs=1e-5)
    for r in results:
        assert type(r.raw_score) is float
        assert r.score == pytest.approx(min(1.0, max(0.0, r.raw_score)))
    assert results.backend == "embedding"


@pytest.mark.model
def test_embedding_ranks_the_relevant_document_first(embedder: EmbeddingReranker) -> None:
    docs = [
        "The stock market fell sharply on Tuesday.",
        "Jupiter is the largest planet in the solar system.",
        "Knead the dough, let it rise, then bake the loaf in a hot oven.",
        "The train to Berlin leaves at noon.",
    ]
    results = embedder.rerank("How do I bake bread at home?", docs)
    assert results[0].index == 2
    assert results[0].score > results[1].score + 0.1


# -- late interaction (sentence-transformers encoder) ----------------------------------------------


@pytest.mark.model
def test_late_interaction_raw_is_maxsim_of_token_embeddings(minilm_path: str) -> None:
    from transformers import AutoModel, AutoTokenizer

    reranker = LateInteractionReranker(device="cpu")
    docs = DOCS[:4]
    results = reranker.rerank(QUERY, docs)
    assert reranker.resolved_encoder() == "sentence-transformers"

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModel.from_pretrained(minilm_path).eval()

    def tokens(text: str):
        with torch.no_grad():
            hidden = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
        return hidden / hidden.norm(dim=-1, keepdim=True)

    q = tokens(QUERY)
    by_index = _raw_by_index(results)
    for i, doc in enumerate(docs):
        expected = float((q @ tokens(doc).T).max(dim=1).values.mean())
        assert by_index[i] == pytest.approx(expected, abs=1e-4)
    assert all(-1.0 <= r.raw_score <= 1.0 for r in results)


@pytest.mark.model
def test_late_interaction_ranks_the_relevant_document_first() -> None:
    docs = [
        "The stock market fell sharply on Tuesday.",
        "Knead the dough, let it rise, then bake the loaf in a hot oven.",
        "Jupiter is the largest planet in the solar system.",
    ]
    results = LateInteractionReranker(device="cpu").rerank("How do I bake bread at home?", docs)
    assert results[0].index == 1


class _Fragile:
    """The loaded cross-encoder, whose model runs out of memory on batches over ``limit``
    pairs (what a full accelerator does), at the model boundary."""

    def __init__(self, encoder: Any, limit: int) -> None:
        self._encoder = encoder
        self.limit = limit
        self.sizes: list[int] = []
        self.model = self  # the reranker calls encoder.model(**features)

    def __call__(self, **features: Any) -> Any:
        import torch

        rows = int(features["input_ids"].shape[0])
        self.sizes.append(rows)
        if rows > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self._encoder.model(**features)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder if name != "device" else self._encoder.model, name)


@pytest.mark.model
def test_a_batch_that_runs_out_of_memory_is_split(cross_encoder_path: str) -> None:
    from rerankit import RerankWarning

    reranker = CrossEncoderReranker(
        model=cross_encoder_path, device="cpu", dtype="float32", batch_size=8
    )
    docs = [f"document number {i} about vectors and search" for i in range(10)]
    expected = reranker.rerank("vector search", docs)
    fragile = _Fragile(reranker.loaded_model(), limit=3)
    reranker.use_model(fragile)
    with pytest.warns(RerankWarning, match="ran out of memory"):
        got = reranker.rerank("vector search", docs)
    assert [r.index for r in got] == [r.index for r in expected]
    assert [r.raw_score for r in got] == pytest.approx([r.raw_score for r in expected], abs=1e-5)
    assert fragile.sizes == [8, 4, 2, 2, 2, 2, 2]  # halved until it fits, then kept small
    fragile.limit = 0
    with pytest.raises(BackendError, match="out of memory on a single pair"):
        reranker.rerank("vector search", ["one"])


def test_device_auto_picks_what_the_machine_has() -> None:
    from rerankit._torch import resolve_device

    assert resolve_device("auto") == resolve_device(None) == "cpu"  # no accelerator here
