"""FusionReranker: validation, hand-computed RRF and weighted fusion, the first-stage signal."""

from __future__ import annotations

import doctest
from collections.abc import Sequence

import pytest

import rerankit.backends.fusion as fusion_module
from rerankit import (
    Candidate,
    ConfigurationError,
    FusionReranker,
    InvalidDocumentError,
    Reranker,
    ScoreBatch,
    ScoreSpace,
)


class Fixed(Reranker):
    """Scores each text from a table (unknown texts score 0); counts calls."""

    backend = "fixed"
    score_space = ScoreSpace.PROBABILITY

    def __init__(self, table: dict[str, float]) -> None:
        super().__init__()
        self.table = table
        self.calls = 0

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        self.calls += 1
        return ScoreBatch([self.table.get(t, 0.0) for t in texts])


A = Fixed({"a": 0.9, "b": 0.5, "c": 0.1})  # order a, b, c
B = Fixed({"a": 0.2, "b": 0.3, "c": 0.8})  # order c, b, a


def docs(first_stage: Sequence[float] = (3.0, 1.0, 2.0)) -> list[Candidate]:
    return [
        Candidate(t, id=t, metadata={"retrieval_score": s})
        for t, s in zip("abc", first_stage, strict=True)
    ]


def test_rrf_matches_hand_computation() -> None:
    fused = FusionReranker([A, B], method="rrf", rrf_k=60)
    results = fused.rerank("q", docs())
    # a: 1/61 + 1/63, b: 1/62 + 1/62, c: 1/63 + 1/61. Two mid ranks lose to a first and a
    # last (1/x is convex); a and c tie and keep their input order.
    best = 2 / 61
    expected = {"a": (1 / 61 + 1 / 63) / best, "b": (2 / 62) / best, "c": (1 / 63 + 1 / 61) / best}
    assert [r.id for r in results] == ["a", "c", "b"]
    for r in results:
        assert r.raw_score == pytest.approx(expected[str(r.id)])
        assert r.score == pytest.approx(r.raw_score)
    assert results.backend == "fusion"
    assert "rrf(" in results.model


def test_rrf_with_first_stage_from_metadata() -> None:
    fused = FusionReranker([A, B], method="rrf", first_stage="retrieval_score", rrf_k=0)
    # First stage order: a (3.0), c (2.0), b (1.0). With k=0: a: 1 + 1/3 + 1 = 2.333,
    # b: 1/2 + 1/2 + 1/3 = 1.333, c: 1/3 + 1 + 1/2 = 1.833.
    results = fused.rerank("q", docs())
    assert [r.id for r in results] == ["a", "c", "b"]
    assert results[0].raw_score == pytest.approx((1 + 1 / 3 + 1) / 3)


def test_weighted_minmax_matches_hand_computation() -> None:
    fused = FusionReranker(
        [A, B], method="weighted", weights=[2.0, 1.0], first_stage="retrieval_score"
    )
    results = fused.rerank("q", docs())
    # min-max: A a=1 b=0.5 c=0; B a=0 b=1/6 c=1; first stage a=1 b=0 c=0.5; weights 2, 1, 1.
    expected = {"a": (2 + 0 + 1) / 4, "b": (1 + 1 / 6 + 0) / 4, "c": (0 + 1 + 0.5) / 4}
    assert {r.id: r.raw_score for r in results} == pytest.approx(expected)
    assert [r.id for r in results] == ["a", "c", "b"]


def test_weighted_calibrated_uses_member_scores() -> None:
    fused = FusionReranker([A, B], method="weighted", normalize="calibrated")
    results = fused.rerank("q", docs())
    expected = {"a": (0.9 + 0.2) / 2, "b": (0.5 + 0.3) / 2, "c": (0.1 + 0.8) / 2}
    assert {r.id: r.raw_score for r in results} == pytest.approx(expected)


def test_first_stage_must_be_in_every_candidate() -> None:
    fused = FusionReranker([A], first_stage="retrieval_score")
    bad = [*docs()[:2], Candidate("c", id="c", metadata={"other": 1})]
    with pytest.raises(InvalidDocumentError) as info:
        fused.rerank("q", bad)
    assert info.value.index == 2
    with pytest.raises(InvalidDocumentError):
        fused.rerank("q", ["a", "b"])  # plain strings carry no first-stage score
    with pytest.raises(InvalidDocumentError):
        fused.rerank("q", docs((1.0, float("nan"), 2.0)))


def test_policy_duplicates_and_accounting() -> None:
    fused = FusionReranker([A, B])
    inputs = ["a", "b", "c", "a"]
    results = fused.rerank("q", inputs, top_n=1)
    assert len(results) == 1
    assert dict(results.duplicates) == {3: 0}
    seen = {r.index for r in results} | {d.index for d in results.dropped} | set(results.duplicates)
    assert seen == set(range(len(inputs)))


async def test_arerank_equals_rerank() -> None:
    fused = FusionReranker([A, B], method="weighted", first_stage="retrieval_score")
    sync = fused.rerank("q", docs())
    result = await fused.arerank("q", docs())
    assert [(r.id, r.score) for r in result] == [(r.id, r.score) for r in sync]


def test_default_method_is_weighted_without_first_stage() -> None:
    fused = FusionReranker([A, B])
    assert (fused.method, fused.first_stage, fused.normalize) == ("weighted", None, "minmax")


def test_plain_strings_without_first_stage() -> None:
    assert [r.text for r in FusionReranker([A, B]).rerank("q", ["c", "b", "a"])] == ["c", "a", "b"]
    assert FusionReranker([A, B]).rerank("q", []).empty_reason == "no documents"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ([], {}),
        ([A], {}),  # one signal is no fusion
        ("embedding", {}),
        ([A, object()], {}),
        ([A, B], {"method": "borda"}),
        ([A, B], {"normalize": "zscore"}),
        ([A, B], {"weights": [1.0]}),
        ([A, B], {"weights": [1.0, -1.0]}),
        ([A, B], {"weights": [0.0, 0.0]}),
        ([A, B], {"weights": [1.0, True]}),
        ([A, B], {"rrf_k": -1}),
        ([A, B], {"rrf_k": float("inf")}),
        ([A, B], {"first_stage": ""}),
        ([A], {"first_stage": "retrieval_score", "first_stage_weight": float("nan")}),
    ],
)
def test_constructor_validates(args: object, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        FusionReranker(args, **kwargs)  # type: ignore[arg-type]


def test_keyword_only_options_and_specs() -> None:
    with pytest.raises(TypeError):
        FusionReranker([A, B], "rrf")  # type: ignore[misc]
    fused = FusionReranker(["embedding", "late-interaction"], method="weighted")
    assert [m.backend for m in fused.rerankers] == ["embedding", "late-interaction"]
    assert fused.model_name.startswith("weighted(embedding:")


def test_first_stage_score_comes_from_the_candidate_or_its_metadata() -> None:
    fused = FusionReranker([Fixed({})], first_stage="retrieval_score", first_stage_weight=1.0)
    by_field = [Candidate("a", retrieval_score=1.0), Candidate("b", retrieval_score=5.0)]
    by_metadata = [
        Candidate("a", metadata={"retrieval_score": 1.0}),
        Candidate("b", metadata={"retrieval_score": 5.0}),
    ]
    seen = [
        [(r.index, r.score, r.raw_score) for r in fused.rerank("q", d)]
        for d in (by_field, by_metadata)
    ]
    assert seen[0] == seen[1] and [i for i, _, _ in seen[0]] == [1, 0]
    with pytest.raises(InvalidDocumentError) as info:
        fused.rerank("q", ["a", "b"])
    assert info.value.index == 0 and "retrieval_score" in str(info.value)


def test_docstring_examples_run() -> None:
    failures, attempted = doctest.testmod(fusion_module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0
    assert failures == 0


class Truncating(Fixed):
    """Flags texts longer than one character as truncated."""

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        batch = super()._score(query, candidates)
        return ScoreBatch(batch.raw, truncated=[len(c.text) > 1 for c in candidates])


async def test_fusion_truncation_warning_points_at_the_caller() -> None:
    import warnings

    from rerankit import TruncationWarning

    for call in ("rerank", "arerank"):
        fused = FusionReranker([Truncating({"a": 0.9}), Fixed({"a": 0.1})])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if call == "rerank":
                results = fused.rerank("q", ["a", "long b", "c"])
            else:
                results = await fused.arerank("q", ["a", "long b", "c"])
        assert results.truncated == 1
        assert [r.truncated for r in results if r.index == 1] == [True]
        own = [
            w
            for w in caught
            if issubclass(w.category, TruncationWarning)
            and str(w.message).startswith("FusionReranker")
        ]
        assert len(own) == 1 and own[0].filename == __file__


def test_members_see_the_candidates_themselves() -> None:
    seen: list[list[Candidate]] = []

    class Recording(Fixed):
        def rerank(self, query, documents, **kwargs):  # type: ignore[no-untyped-def,override]
            seen.append(list(documents))
            return super().rerank(query, documents, **kwargs)

    candidates = docs()
    fused = FusionReranker([Recording({}), A], first_stage="retrieval_score")
    fused.rerank("q", [*candidates, candidates[0]])  # the duplicate is folded before fusing
    assert len(seen) == 1 and len(seen[0]) == 3
    assert all(a is b for a, b in zip(seen[0], candidates, strict=True))
