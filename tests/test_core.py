"""Unit tests of the rerank core (``Reranker.rerank`` / ``arerank``) with a fake scorer.

The fake implements only the backend hook ``_score``; everything else is the real core.
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pytest

import rerankit
from rerankit import (
    BackendError,
    CalibrationError,
    Candidate,
    ConfigurationError,
    Dropped,
    EmptyQueryError,
    InvalidDocumentError,
    InvalidQueryError,
    Linear,
    Reranker,
    RerankError,
    RerankResult,
    RerankResults,
    ScoreBatch,
    ScoreSpace,
    Sigmoid,
    ThresholdPolicy,
    TruncationWarning,
)
from rerankit.calibration import Clip

from ._fixtures import snapshot

# -- the fake scorer -----------------------------------------------------------------------------


class FakeReranker(Reranker):
    """Scores each text by looking it up in ``table`` (``default`` when missing).

    Records every call, so tests can count how often the "model" ran and on which texts.
    """

    backend = "fake"
    score_space = ScoreSpace.PROBABILITY

    def __init__(
        self,
        table: Mapping[str, float] | None = None,
        *,
        default: float = 0.0,
        truncate: Callable[[str], bool] | None = None,
        windows: Callable[[str], int] | None = None,
        wrong_count: int = 0,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.table = dict(table or {})
        self.default = default
        self.truncate = truncate
        self.windows = windows
        self.wrong_count = wrong_count
        self.calls: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    @property
    def texts_scored(self) -> list[str]:
        return [t for _, texts in self.calls for t in texts]

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        with self._lock:
            self.calls.append((query, list(texts)))
        raw = [self.table.get(t, self.default) for t in texts]
        if self.wrong_count:
            raw = raw + [0.0] * self.wrong_count if self.wrong_count > 0 else raw[:-1]
        return ScoreBatch(
            raw=raw,
            truncated=None if self.truncate is None else [self.truncate(t) for t in texts],
            windows=None if self.windows is None else [self.windows(t) for t in texts],
        )


class LogitFake(FakeReranker):
    score_space = ScoreSpace.LOGIT


class CosineFake(FakeReranker):
    score_space = ScoreSpace.COSINE


class GradeFake(FakeReranker):
    score_space = ScoreSpace.GRADE


DOCS = ["alpha", "beta", "gamma", "delta"]
TABLE = {"alpha": 0.2, "beta": 0.9, "gamma": 0.5, "delta": 0.7}


def accounted(results: RerankResults, n_inputs: int) -> None:
    """Every input index appears exactly once: in results, in dropped or in duplicates."""
    seen = (
        [r.index for r in results] + [d.index for d in results.dropped] + list(results.duplicates)
    )
    assert sorted(seen) == list(range(n_inputs))


# -- ordering and result fields ------------------------------------------------------------------


def test_results_sorted_best_first_with_correct_fields() -> None:
    reranker = FakeReranker(TABLE)
    results = reranker.rerank("q", DOCS)

    assert isinstance(results, RerankResults)
    assert [r.index for r in results] == [1, 3, 2, 0]
    assert [r.rank for r in results] == [0, 1, 2, 3]
    assert [r.score for r in results] == [0.9, 0.7, 0.5, 0.2]
    assert [r.raw_score for r in results] == [0.9, 0.7, 0.5, 0.2]
    assert [r.text for r in results] == ["beta", "delta", "gamma", "alpha"]
    for r in results:
        assert isinstance(r, RerankResult)
        assert r.text == DOCS[r.index]
        assert r.truncated is False
        assert r.windows == 1
    assert results.dropped == ()
    assert dict(results.duplicates) == {}
    assert results.empty_reason is None
    assert results.truncated == 0
    assert results.backend == "fake"
    assert not results.is_empty
    accounted(results, len(DOCS))


def test_raw_and_calibrated_scores_differ_for_logits() -> None:
    reranker = LogitFake({"a": 2.0, "b": -1.0, "c": 0.0})
    results = reranker.rerank("q", ["a", "b", "c"])
    assert [r.index for r in results] == [0, 2, 1]
    assert [r.raw_score for r in results] == [2.0, 0.0, -1.0]
    for r in results:
        assert r.score == pytest.approx(1.0 / (1.0 + math.exp(-r.raw_score)))
        assert 0.0 <= r.score <= 1.0


def test_scores_are_plain_python_floats_even_from_numpy() -> None:
    class NumpyFake(Reranker):
        score_space = ScoreSpace.LOGIT

        def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
            texts = [c.text for c in candidates]
            return ScoreBatch(
                raw=np.arange(len(texts), dtype=np.float32),
                truncated=np.zeros(len(texts), dtype=bool),
                windows=np.ones(len(texts), dtype=np.int64),
            )

    results = NumpyFake().rerank("q", ["a", "b", "c"])
    assert [r.index for r in results] == [2, 1, 0]
    for r in results:
        assert type(r.score) is float
        assert type(r.raw_score) is float
        assert type(r.truncated) is bool
        assert type(r.windows) is int
    for d in FakeReranker(TABLE).rerank("q", DOCS, top_n=1).dropped:
        assert type(d.score) is float
        assert type(d.raw_score) is float


def test_ties_broken_by_raw_score_then_input_index() -> None:
    # Calibrated scores all clip to 1.0 (or 0.0); raw scores then decide, then input order.
    reranker = CosineFake({"a": 1.5, "b": 3.0, "c": 1.5, "d": -0.5, "e": -2.0, "f": -0.5})
    results = reranker.rerank("q", ["a", "b", "c", "d", "e", "f"])
    assert [r.score for r in results] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert [r.index for r in results] == [1, 0, 2, 3, 5, 4]


def test_equal_scores_keep_input_order() -> None:
    reranker = FakeReranker(default=0.5)
    results = reranker.rerank("q", ["e", "d", "c", "b", "a"])
    assert [r.index for r in results] == [0, 1, 2, 3, 4]


def test_string_inputs_are_wrapped_in_candidates() -> None:
    results = FakeReranker(TABLE).rerank("q", DOCS)
    for r in results:
        assert isinstance(r.candidate, Candidate)
        assert r.candidate.text == DOCS[r.index]
        assert r.candidate.id is None
        assert r.id is None


def test_candidate_identity_and_no_mutation() -> None:
    meta = {"source": "faq", "tags": ["a", "b"]}
    meta_before = copy.deepcopy(meta)
    docs = [
        Candidate("alpha", id="1", metadata=meta),
        "beta",
        Candidate("gamma", id="3"),
        Candidate("delta", metadata={"k": 1}),
    ]
    docs_before = list(docs)
    snapshot = [(d.text, d.id, dict(d.metadata)) if isinstance(d, Candidate) else d for d in docs]

    results = FakeReranker(TABLE).rerank("q", docs, top_n=3)

    for r in results:
        if isinstance(docs[r.index], Candidate):
            assert r.candidate is docs[r.index]
    assert {r.index for r in results} == {1, 3, 2}
    assert docs == docs_before
    assert all(a is b for a, b in zip(docs, docs_before, strict=True))
    assert snapshot == [
        (d.text, d.id, dict(d.metadata)) if isinstance(d, Candidate) else d for d in docs
    ]
    assert meta == meta_before


def test_candidate_metadata_is_a_frozen_copy() -> None:
    meta = {"source": "faq"}
    cand = Candidate("x", metadata=meta)
    meta["source"] = "changed"
    assert cand.metadata["source"] == "faq"
    with pytest.raises(TypeError):
        cand.metadata["source"] = "y"  # type: ignore[index]


def test_tuple_input_accepted_and_not_required_to_be_list() -> None:
    results = FakeReranker(TABLE).rerank("q", tuple(DOCS))
    assert [r.index for r in results] == [1, 3, 2, 0]


def test_query_is_passed_to_the_scorer_unchanged() -> None:
    reranker = FakeReranker(TABLE)
    reranker.rerank("  what is beta?  ", DOCS)
    assert reranker.calls == [("  what is beta?  ", DOCS)]


# -- top_n, min_score, policy --------------------------------------------------------------------


def test_top_n_keeps_the_best_and_drops_the_rest() -> None:
    results = FakeReranker(TABLE).rerank("q", DOCS, top_n=2)
    assert [r.index for r in results] == [1, 3]
    assert [r.rank for r in results] == [0, 1]
    assert results.dropped == (
        Dropped(index=2, score=0.5, raw_score=0.5, reason="top_n"),
        Dropped(index=0, score=0.2, raw_score=0.2, reason="top_n"),
    )
    accounted(results, len(DOCS))


def test_top_n_larger_than_input_keeps_everything() -> None:
    results = FakeReranker(TABLE).rerank("q", DOCS, top_n=10)
    assert len(results) == 4
    assert results.dropped == ()


def test_top_n_zero_is_empty_with_reason() -> None:
    results = FakeReranker(TABLE).rerank("q", DOCS, top_n=0)
    assert results == []
    assert results.is_empty
    assert results.empty_reason is not None
    assert "top_n" in results.empty_reason
    assert {d.reason for d in results.dropped} == {"top_n"}
    accounted(results, len(DOCS))


def test_min_score_cuts_below_threshold_inclusive() -> None:
    results = FakeReranker(TABLE).rerank("q", DOCS, min_score=0.5)
    assert [r.index for r in results] == [1, 3, 2]  # 0.5 itself is kept
    assert [(d.index, d.reason) for d in results.dropped] == [(0, "min_score")]
    accounted(results, len(DOCS))


def test_min_score_compares_calibrated_not_raw_score() -> None:
    # Logits 1.0 and -1.0 -> sigmoid 0.73 and 0.27: min_score=0.5 keeps only the first.
    results = LogitFake({"a": 1.0, "b": -1.0}).rerank("q", ["b", "a"], min_score=0.5)
    assert [r.index for r in results] == [1]
    assert results.dropped[0].index == 0
    assert results.dropped[0].raw_score == -1.0
    assert results.dropped[0].score == pytest.approx(1 / (1 + math.e))


def test_min_score_nothing_survives_is_empty_result_not_exception() -> None:
    results = FakeReranker(TABLE).rerank("q", DOCS, min_score=0.95)
    assert results == []
    assert results.empty_reason is not None
    assert "min_score" in results.empty_reason
    assert "0.9000" in results.empty_reason  # the best score is reported
    assert len(results.dropped) == 4
    accounted(results, len(DOCS))


def test_policy_is_applied() -> None:
    policy = ThresholdPolicy(min_ratio=0.7)
    results = FakeReranker(TABLE).rerank("q", DOCS, policy=policy)
    # 0.7 * 0.9 = 0.63: beta (0.9) and delta (0.7) survive.
    assert [r.index for r in results] == [1, 3]
    assert {d.index: d.reason for d in results.dropped} == {2: "min_ratio", 0: "min_ratio"}


def test_shorthands_override_policy_fields() -> None:
    policy = ThresholdPolicy(top_n=1, min_score=0.8, min_keep=0)
    reranker = FakeReranker(TABLE)
    results = reranker.rerank("q", DOCS, policy=policy, top_n=3, min_score=0.3)
    assert [r.index for r in results] == [1, 3, 2]
    # The policy object itself is not changed.
    assert policy == ThresholdPolicy(top_n=1, min_score=0.8)
    assert [r.index for r in reranker.rerank("q", DOCS, policy=policy)] == [1]


def test_policy_min_keep_guards_against_empty_context() -> None:
    policy = ThresholdPolicy(min_score=0.95, min_keep=2)
    results = FakeReranker(TABLE).rerank("q", DOCS, policy=policy)
    assert [r.index for r in results] == [1, 3]
    assert results.empty_reason is None
    assert {d.index for d in results.dropped} == {2, 0}


@pytest.mark.parametrize(
    "kwargs",
    [{"top_n": -1}, {"top_n": 1.5}, {"min_score": 1.5}, {"min_score": -0.1}],
)
def test_bad_shorthands_raise_configuration_error(kwargs: dict[str, object]) -> None:
    reranker = FakeReranker(TABLE)
    with pytest.raises(ConfigurationError):
        reranker.rerank("q", DOCS, **kwargs)  # type: ignore[arg-type]
    assert reranker.calls == []


# -- duplicates ----------------------------------------------------------------------------------


def test_duplicate_texts_are_scored_once_and_accounted() -> None:
    reranker = FakeReranker(TABLE)
    docs = ["alpha", "beta", "alpha", "beta", "gamma", "alpha"]
    results = reranker.rerank("q", docs)
    assert len(reranker.calls) == 1
    assert reranker.texts_scored == ["alpha", "beta", "gamma"]
    assert [r.index for r in results] == [1, 4, 0]
    assert dict(results.duplicates) == {2: 0, 3: 1, 5: 0}
    accounted(results, len(docs))


def test_duplicate_ids_are_folded_even_with_different_text() -> None:
    reranker = FakeReranker(TABLE)
    first = Candidate("alpha", id="x")
    docs = [first, Candidate("beta", id="x"), Candidate("gamma", id="y")]
    results = reranker.rerank("q", docs)
    assert reranker.texts_scored == ["alpha", "gamma"]
    assert dict(results.duplicates) == {1: 0}
    assert [r.index for r in results] == [2, 0]
    assert results[1].candidate is first
    accounted(results, len(docs))


def test_same_id_takes_precedence_over_same_text() -> None:
    reranker = FakeReranker(TABLE)
    docs = [Candidate("alpha", id="a"), Candidate("beta"), Candidate("beta", id="a")]
    results = reranker.rerank("q", docs)
    assert reranker.texts_scored == ["alpha", "beta"]
    assert dict(results.duplicates) == {2: 0}
    accounted(results, len(docs))


def test_only_scored_copies_are_fold_targets() -> None:
    # 1 folds into 0 by id; its text "beta" was never scored, so 2 ("beta") is new.
    reranker = FakeReranker(TABLE)
    docs = [Candidate("alpha", id="a"), Candidate("beta", id="a"), "beta"]
    results = reranker.rerank("q", docs)
    assert reranker.texts_scored == ["alpha", "beta"]
    assert dict(results.duplicates) == {1: 0}
    assert [r.index for r in results] == [2, 0]


def test_candidate_and_string_with_same_text_are_duplicates() -> None:
    reranker = FakeReranker(TABLE)
    docs = [Candidate("beta", id="b1"), "beta", Candidate("beta", id="b2")]
    results = reranker.rerank("q", docs)
    assert reranker.texts_scored == ["beta"]
    assert dict(results.duplicates) == {1: 0, 2: 0}
    assert [r.index for r in results] == [0]
    assert results[0].candidate is docs[0]


def test_duplicate_of_a_dropped_document_stays_in_duplicates() -> None:
    docs = ["alpha", "beta", "alpha"]
    results = FakeReranker(TABLE).rerank("q", docs, min_score=0.5)
    assert [r.index for r in results] == [1]
    assert [d.index for d in results.dropped] == [0]
    assert dict(results.duplicates) == {2: 0}
    accounted(results, len(docs))


def test_dedupe_false_scores_every_copy() -> None:
    reranker = FakeReranker(TABLE, dedupe=False)
    docs = ["alpha", "beta", "alpha", Candidate("gamma", id="x"), Candidate("delta", id="x")]
    results = reranker.rerank("q", docs)
    assert reranker.texts_scored == ["alpha", "beta", "alpha", "gamma", "delta"]
    assert dict(results.duplicates) == {}
    assert [r.index for r in results] == [1, 4, 3, 0, 2]
    accounted(results, len(docs))


def test_duplicates_is_read_only() -> None:
    results = FakeReranker(TABLE).rerank("q", ["alpha", "alpha"])
    with pytest.raises(TypeError):
        results.duplicates[5] = 0  # type: ignore[index]


# -- empty input and validation ------------------------------------------------------------------


def test_empty_documents_returns_empty_results_without_scoring() -> None:
    reranker = FakeReranker(TABLE)
    results = reranker.rerank("q", [])
    assert isinstance(results, RerankResults)
    assert results == []
    assert results.is_empty
    assert results.empty_reason == "no documents"
    assert results.dropped == ()
    assert dict(results.duplicates) == {}
    assert results.backend == "fake"
    assert reranker.calls == []


async def test_async_empty_documents_returns_empty_results_without_scoring() -> None:
    reranker = FakeReranker(TABLE)
    results = await reranker.arerank("q", ())
    assert results == []
    assert results.empty_reason == "no documents"
    assert reranker.calls == []


@pytest.mark.parametrize("query", ["", " ", "\n\t  "])
def test_blank_query_raises_empty_query_error(query: str) -> None:
    reranker = FakeReranker(TABLE)
    with pytest.raises(EmptyQueryError):
        reranker.rerank(query, DOCS)
    with pytest.raises(EmptyQueryError):
        reranker.rerank(query, [])  # validated even when there is nothing to score
    assert reranker.calls == []


@pytest.mark.parametrize("query", [None, 42, b"bytes", ["q"]])
def test_non_str_query_raises_invalid_query_error(query: object) -> None:
    reranker = FakeReranker(TABLE)
    with pytest.raises(InvalidQueryError, match=type(query).__name__):
        reranker.rerank(query, DOCS)  # type: ignore[arg-type]
    assert reranker.calls == []


@pytest.mark.parametrize("bad", [None, 3, b"bytes", {"text": "x"}, 1.5])
def test_non_text_document_raises_with_index(bad: object) -> None:
    reranker = FakeReranker(TABLE)
    docs = ["alpha", "beta", bad, "gamma"]
    with pytest.raises(InvalidDocumentError, match=r"\b2\b") as info:
        reranker.rerank("q", docs)  # type: ignore[arg-type]
    assert info.value.index == 2
    assert "document 2" in str(info.value)
    assert reranker.calls == []


def test_candidate_with_non_text_raises_with_index() -> None:
    reranker = FakeReranker(TABLE)
    docs = [Candidate("alpha"), Candidate(123)]  # type: ignore[arg-type]
    with pytest.raises(InvalidDocumentError) as info:
        reranker.rerank("q", docs)
    assert info.value.index == 1
    assert "document 1" in str(info.value)
    assert reranker.calls == []


@pytest.mark.parametrize("documents", ["alpha beta", b"alpha", None, 42, iter(["a"]), {"a": 1}])
def test_documents_not_a_sequence_raise_configuration_error(documents: object) -> None:
    reranker = FakeReranker(TABLE)
    with pytest.raises(ConfigurationError):
        reranker.rerank("q", documents)  # type: ignore[arg-type]
    assert reranker.calls == []


async def test_async_validation_errors_match_sync() -> None:
    reranker = FakeReranker(TABLE)
    with pytest.raises(EmptyQueryError):
        await reranker.arerank("  ", DOCS)
    with pytest.raises(InvalidQueryError):
        await reranker.arerank(1, DOCS)  # type: ignore[arg-type]
    with pytest.raises(InvalidDocumentError) as info:
        await reranker.arerank("q", ["a", 7])  # type: ignore[list-item]
    assert info.value.index == 1
    with pytest.raises(ConfigurationError):
        await reranker.arerank("q", "abc")
    assert reranker.calls == []


# -- backend contract ----------------------------------------------------------------------------


@pytest.mark.parametrize("wrong", [1, -1])
def test_wrong_number_of_scores_raises_backend_error(wrong: int) -> None:
    reranker = FakeReranker(TABLE, wrong_count=wrong)
    with pytest.raises(BackendError, match="scores"):
        reranker.rerank("q", DOCS)


async def test_async_wrong_number_of_scores_raises_backend_error() -> None:
    reranker = FakeReranker(TABLE, wrong_count=2)
    with pytest.raises(BackendError):
        await reranker.arerank("q", DOCS)


def test_wrong_number_of_truncation_flags_raises_backend_error() -> None:
    class BadFlags(Reranker):
        def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
            texts = [c.text for c in candidates]
            return ScoreBatch(raw=[0.5] * len(texts), truncated=[True])

    class BadWindows(Reranker):
        def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
            texts = [c.text for c in candidates]
            return ScoreBatch(raw=[0.5] * len(texts), windows=[1] * (len(texts) + 1))

    with pytest.raises(BackendError):
        BadFlags().rerank("q", ["a", "b"])
    with pytest.raises(BackendError):
        BadWindows().rerank("q", ["a", "b"])


# -- truncation ----------------------------------------------------------------------------------


def long_text(text: str) -> bool:
    return len(text) > 5


def test_truncation_flags_are_reported_and_counted() -> None:
    docs = ["short", "a much longer text", "tiny", "another long one"]
    reranker = FakeReranker(
        {d: 1.0 - i / 10 for i, d in enumerate(docs)},
        truncate=long_text,
        windows=lambda t: 3 if long_text(t) else 1,
    )
    with pytest.warns(TruncationWarning, match="2 of 4"):
        results = reranker.rerank("q", docs)
    assert results.truncated == 2
    by_index = {r.index: r for r in results}
    assert [by_index[i].truncated for i in range(4)] == [False, True, False, True]
    assert [by_index[i].windows for i in range(4)] == [1, 3, 1, 3]


def test_truncated_counts_scored_documents_even_when_dropped() -> None:
    docs = ["a much longer text", "short"]
    reranker = FakeReranker({"a much longer text": 0.1, "short": 0.9}, truncate=long_text)
    with pytest.warns(TruncationWarning):
        results = reranker.rerank("q", docs, top_n=1)
    assert [r.index for r in results] == [1]
    assert results[0].truncated is False
    assert results.truncated == 1


def test_truncation_warning_emitted_once_per_instance() -> None:
    docs = ["a much longer text", "short"]
    first = FakeReranker(truncate=long_text)
    second = FakeReranker(truncate=long_text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert first.rerank("q", docs).truncated == 1
        assert len([w for w in caught if issubclass(w.category, TruncationWarning)]) == 1
        second.rerank("q", docs)
        second.rerank("q", docs)
    truncation = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(truncation) == 2
    # The warning points at the caller of rerank(), not at rerankit internals.
    assert all(w.filename == __file__ for w in truncation)


def test_no_truncation_no_warning() -> None:
    reranker = FakeReranker(TABLE, truncate=lambda t: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = reranker.rerank("q", DOCS)
    assert results.truncated == 0
    assert not any(r.truncated for r in results)


async def test_async_truncation_warning_once_per_instance() -> None:
    docs = ["a much longer text", "short"]
    reranker = FakeReranker(truncate=long_text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = await reranker.arerank("q", docs)
        second = await reranker.arerank("q", docs)
        reranker.rerank("q", docs)
    assert first.truncated == second.truncated == 1
    assert len([w for w in caught if issubclass(w.category, TruncationWarning)]) == 1


# -- calibration ---------------------------------------------------------------------------------


def test_default_calibration_follows_score_space() -> None:
    assert isinstance(FakeReranker().calibration, Clip)
    assert isinstance(CosineFake().calibration, Clip)
    assert LogitFake().calibration == Sigmoid()
    assert GradeFake().calibration == Linear(0.0, 10.0)
    results = GradeFake({"a": 7.0, "b": 2.5}).rerank("q", ["a", "b"])
    assert [(r.raw_score, r.score) for r in results] == [(7.0, 0.7), (2.5, 0.25)]


def test_custom_calibration_is_used() -> None:
    seen: list[float] = []

    def halve(raw: float) -> float:
        seen.append(raw)
        return raw / 2

    reranker = FakeReranker(TABLE, calibration=halve)
    results = reranker.rerank("q", DOCS, min_score=0.3)
    assert sorted(seen) == sorted(TABLE.values())
    assert [r.score for r in results] == [0.45, 0.35]
    assert [r.raw_score for r in results] == [0.9, 0.7]


def test_custom_calibration_can_reorder() -> None:
    reranker = FakeReranker(TABLE, calibration=lambda raw: 1.0 - raw)
    results = reranker.rerank("q", DOCS)
    assert [r.index for r in results] == [0, 2, 3, 1]


def test_platt_sigmoid_calibration() -> None:
    reranker = LogitFake({"a": 1.0, "b": 3.0}, calibration=Sigmoid(scale=2.0, shift=-4.0))
    results = reranker.rerank("q", ["a", "b"], min_score=0.5)
    assert [r.index for r in results] == [1]  # sigmoid(2) kept, sigmoid(-2) cut
    assert results[0].score == pytest.approx(1 / (1 + math.exp(-2.0)))


@pytest.mark.parametrize("value", [1.5, -0.01, float("nan"), float("inf")])
def test_calibration_out_of_range_raises(value: float) -> None:
    reranker = FakeReranker(TABLE, calibration=lambda raw: value)
    with pytest.raises(CalibrationError):
        reranker.rerank("q", DOCS)


@pytest.mark.parametrize("raw", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_raw_score_raises_calibration_error(raw: float) -> None:
    reranker = LogitFake({"beta": raw}, default=0.0)
    with pytest.raises(CalibrationError):
        reranker.rerank("q", DOCS)


async def test_async_calibration_error() -> None:
    reranker = FakeReranker({"alpha": float("nan")})
    with pytest.raises(CalibrationError):
        await reranker.arerank("q", DOCS)


# -- error hierarchy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        rerankit.BackendError,
        rerankit.CalibrationError,
        rerankit.ConfigurationError,
        rerankit.EmptyQueryError,
        rerankit.InvalidDocumentError,
        rerankit.InvalidQueryError,
        rerankit.MissingDependencyError,
        rerankit.UnknownBackendError,
    ],
)
def test_all_errors_are_rerank_errors(error: type[Exception]) -> None:
    assert issubclass(error, RerankError)


def test_raised_errors_are_caught_as_rerank_error() -> None:
    reranker = FakeReranker(TABLE)
    calls: list[Callable[[], object]] = [
        lambda: reranker.rerank("", DOCS),
        lambda: reranker.rerank(None, DOCS),  # type: ignore[arg-type]
        lambda: reranker.rerank("q", [None]),  # type: ignore[list-item]
        lambda: reranker.rerank("q", "abc"),
        lambda: reranker.rerank("q", DOCS, top_n=-2),
        lambda: FakeReranker(wrong_count=1).rerank("q", DOCS),
        lambda: FakeReranker(calibration=lambda r: 2.0).rerank("q", DOCS),
    ]
    for call in calls:
        with pytest.raises(RerankError):
            call()


def test_truncation_warning_is_a_rerank_warning() -> None:
    assert issubclass(TruncationWarning, rerankit.RerankWarning)
    assert issubclass(rerankit.RerankWarning, UserWarning)


# -- sync == async -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"top_n": 2},
        {"top_n": 0},
        {"min_score": 0.6},
        {"min_score": 0.99},
        {"policy": ThresholdPolicy(largest_gap=0.1, min_keep=1)},
        {"policy": ThresholdPolicy(min_ratio=0.5), "top_n": 1},
    ],
)
async def test_sync_equals_async(kwargs: dict[str, object]) -> None:
    docs = [Candidate("alpha", id="a"), "beta", "gamma", "alpha", "delta", Candidate("x", id="a")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        reranker = FakeReranker(TABLE, truncate=lambda t: t == "gamma")
        sync = reranker.rerank("q", docs, **kwargs)  # type: ignore[arg-type]
        asynchronous = await reranker.arerank("q", docs, **kwargs)  # type: ignore[arg-type]
    assert snapshot(sync) == snapshot(asynchronous)
    assert list(sync) == list(asynchronous)
    for a, b in zip(sync, asynchronous, strict=True):
        if isinstance(docs[a.index], Candidate):
            assert a.candidate is b.candidate is docs[a.index]
    assert len(reranker.calls) == 2
    assert reranker.calls[0] == reranker.calls[1]


async def test_native_async_scorer_is_used_by_arerank() -> None:
    class AsyncFake(FakeReranker):
        async_calls = 0

        async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
            texts = [c.text for c in candidates]
            type(self).async_calls += 1
            return ScoreBatch(raw=[self.table.get(t, 0.0) for t in texts])

    reranker = AsyncFake(TABLE)
    results = await reranker.arerank("q", DOCS, top_n=2)
    assert [r.index for r in results] == [1, 3]
    assert AsyncFake.async_calls == 1
    assert reranker.calls == []  # the sync hook was not used


# -- the backend hook sees validated candidates ----------------------------------------------------


class CandidateScorer(FakeReranker):
    """Scores from the candidates' ids and first-stage scores, as a fusion reranker does."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.seen: list[tuple[str, list[Candidate]]] = []

    def _by_id(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        self.seen.append((query, list(candidates)))
        return ScoreBatch([len(c.id or "") + (c.retrieval_score or 0.0) for c in candidates])

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return self._by_id(query, candidates)

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return self._by_id(query, candidates)


async def test_hook_sees_validated_unique_candidates_and_results_are_finished() -> None:
    docs = [
        Candidate("x", id="b"),
        Candidate("y", id="ddd", retrieval_score=0.5, metadata={"k": 1}),
        "plain",
        Candidate("z", id="b"),
        Candidate("w", id="cc"),
    ]
    reranker = CandidateScorer(calibration=Linear(low=0.0, high=4.0))
    for results in (
        reranker.rerank("q", docs, top_n=2),
        await reranker.arerank("q", docs, top_n=2),
    ):
        assert [r.index for r in results] == [1, 4]
        assert [r.raw_score for r in results] == [3.5, 2.0]
        assert results[0].candidate is docs[1]
        assert [d.index for d in results.dropped] == [0, 2]
        assert dict(results.duplicates) == {3: 0}
        assert results.candidates == len(docs)
        assert set(results.timings) == {"score", "rerank"}
        assert results.timings["rerank"] >= results.timings["score"] >= 0.0
        accounted(results, len(docs))
    assert len(reranker.seen) == 2
    query, candidates = reranker.seen[0]
    assert query == "q"
    assert [c.id for c in candidates] == ["b", "ddd", None, "cc"]  # the duplicate is folded
    assert candidates[1] is docs[1] and candidates[2] == Candidate("plain")
    assert candidates[1].metadata == {"k": 1} and candidates[1].retrieval_score == 0.5
    assert reranker.rerank("q", []).is_empty and len(reranker.seen) == 2


async def test_async_truncation_warning_points_at_the_caller() -> None:
    reranker = FakeReranker(truncate=long_text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await reranker.arerank("q", ["a much longer text", "short"])
    truncation = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(truncation) == 1
    assert truncation[0].filename == __file__


def test_pointwise_is_unknown_unless_declared() -> None:
    class Declared(FakeReranker):
        pointwise = True

    class ByOption(FakeReranker):
        @property
        def pointwise(self) -> bool | None:
            return self.default == 0.0

    assert FakeReranker().pointwise is None
    assert Declared().pointwise is True
    assert ByOption().pointwise is True and ByOption(default=1.0).pointwise is False
