"""ThresholdPolicy: each rule, their documented order, empty outcomes and validation."""

from __future__ import annotations

import pytest

from rerankit import ConfigurationError, RerankError, ThresholdPolicy
from rerankit.threshold import ThresholdOutcome

SCORES = [0.9, 0.8, 0.75, 0.3, 0.2]


def check_partition(outcome: ThresholdOutcome, n: int) -> None:
    """Kept and cut positions partition ``range(n)``; kept is a best-first prefix."""
    assert sorted([*outcome.kept, *outcome.cut]) == list(range(n))
    assert outcome.kept == list(range(len(outcome.kept)))


# -- defaults ------------------------------------------------------------------------------------


def test_default_policy_keeps_everything() -> None:
    policy = ThresholdPolicy()
    assert policy.is_noop
    outcome = policy.apply(SCORES)
    assert outcome.kept == [0, 1, 2, 3, 4]
    assert outcome.cut == {}
    assert outcome.empty_reason is None


def test_empty_scores() -> None:
    outcome = ThresholdPolicy(min_score=0.5, top_n=0, min_keep=2).apply([])
    assert outcome.kept == []
    assert outcome.cut == {}
    assert outcome.empty_reason is None


@pytest.mark.parametrize(
    "policy",
    [
        ThresholdPolicy(top_n=3),
        ThresholdPolicy(min_score=0.1),
        ThresholdPolicy(min_ratio=0.5),
        ThresholdPolicy(largest_gap=0.2),
    ],
)
def test_any_rule_makes_policy_not_noop(policy: ThresholdPolicy) -> None:
    assert not policy.is_noop


def test_min_keep_alone_is_noop() -> None:
    assert ThresholdPolicy(min_keep=3).is_noop


# -- single rules --------------------------------------------------------------------------------


def test_min_score_is_inclusive() -> None:
    outcome = ThresholdPolicy(min_score=0.75).apply(SCORES)
    assert outcome.kept == [0, 1, 2]
    assert outcome.cut == {3: "min_score", 4: "min_score"}
    assert outcome.empty_reason is None
    check_partition(outcome, len(SCORES))


def test_min_score_zero_keeps_everything() -> None:
    assert ThresholdPolicy(min_score=0.0).apply([0.5, 0.0]).kept == [0, 1]


def test_min_score_nothing_survives() -> None:
    outcome = ThresholdPolicy(min_score=0.95).apply(SCORES)
    assert outcome.kept == []
    assert set(outcome.cut.values()) == {"min_score"}
    assert outcome.empty_reason is not None
    assert "min_score=0.95" in outcome.empty_reason
    assert "0.9000" in outcome.empty_reason
    check_partition(outcome, len(SCORES))


def test_min_ratio_relative_to_best() -> None:
    outcome = ThresholdPolicy(min_ratio=0.5).apply([0.8, 0.5, 0.4, 0.39])
    assert outcome.kept == [0, 1, 2]  # 0.4 == 0.5 * 0.8 is kept
    assert outcome.cut == {3: "min_ratio"}


def test_min_ratio_one_keeps_only_ties_with_best() -> None:
    outcome = ThresholdPolicy(min_ratio=1.0).apply([0.6, 0.6, 0.59])
    assert outcome.kept == [0, 1]
    assert outcome.cut == {2: "min_ratio"}


def test_min_ratio_all_zero_scores_keeps_all() -> None:
    assert ThresholdPolicy(min_ratio=0.9).apply([0.0, 0.0]).kept == [0, 1]


def test_largest_gap_cuts_after_the_largest_drop() -> None:
    outcome = ThresholdPolicy(largest_gap=0.2).apply(SCORES)
    # gaps: 0.1, 0.05, 0.45, 0.1 -> cut after position 2
    assert outcome.kept == [0, 1, 2]
    assert outcome.cut == {3: "largest_gap", 4: "largest_gap"}
    check_partition(outcome, len(SCORES))


def test_largest_gap_below_threshold_does_not_cut() -> None:
    outcome = ThresholdPolicy(largest_gap=0.5).apply(SCORES)
    assert outcome.kept == [0, 1, 2, 3, 4]
    assert outcome.cut == {}


def test_largest_gap_equal_to_threshold_cuts() -> None:
    outcome = ThresholdPolicy(largest_gap=0.5).apply([1.0, 0.5, 0.25])
    assert outcome.kept == [0]


def test_largest_gap_tie_cuts_at_the_first_largest() -> None:
    outcome = ThresholdPolicy(largest_gap=0.1).apply([1.0, 0.5, 0.5, 0.0])
    assert outcome.kept == [0]
    assert outcome.cut == {1: "largest_gap", 2: "largest_gap", 3: "largest_gap"}


def test_largest_gap_zero_needs_a_positive_gap() -> None:
    assert ThresholdPolicy(largest_gap=0.0).apply([0.5, 0.5, 0.5]).kept == [0, 1, 2]
    assert ThresholdPolicy(largest_gap=0.0).apply([0.5, 0.5, 0.4]).kept == [0, 1]


def test_largest_gap_single_score() -> None:
    assert ThresholdPolicy(largest_gap=0.0).apply([0.5]).kept == [0]


def test_top_n() -> None:
    outcome = ThresholdPolicy(top_n=2).apply(SCORES)
    assert outcome.kept == [0, 1]
    assert outcome.cut == {2: "top_n", 3: "top_n", 4: "top_n"}
    assert outcome.empty_reason is None


def test_top_n_zero_is_empty_with_reason() -> None:
    outcome = ThresholdPolicy(top_n=0).apply(SCORES)
    assert outcome.kept == []
    assert outcome.empty_reason == "top_n=0"
    assert set(outcome.cut.values()) == {"top_n"}
    check_partition(outcome, len(SCORES))


def test_top_n_larger_than_input() -> None:
    outcome = ThresholdPolicy(top_n=10).apply(SCORES)
    assert outcome.kept == [0, 1, 2, 3, 4]
    assert outcome.cut == {}


# -- min_keep ------------------------------------------------------------------------------------


def test_min_keep_restores_the_best_after_min_score() -> None:
    outcome = ThresholdPolicy(min_score=0.95, min_keep=2).apply(SCORES)
    assert outcome.kept == [0, 1]
    assert outcome.cut == {2: "min_score", 3: "min_score", 4: "min_score"}
    assert outcome.empty_reason is None


def test_min_keep_tops_up_a_partial_survivor_list() -> None:
    outcome = ThresholdPolicy(min_score=0.85, min_keep=3).apply(SCORES)
    assert outcome.kept == [0, 1, 2]
    assert outcome.cut == {3: "min_score", 4: "min_score"}


def test_min_keep_after_largest_gap() -> None:
    outcome = ThresholdPolicy(largest_gap=0.3, min_keep=4).apply([0.9, 0.1, 0.05, 0.0, 0.0])
    assert outcome.kept == [0, 1, 2, 3]
    assert outcome.cut == {4: "largest_gap"}


def test_min_keep_larger_than_input_keeps_all() -> None:
    outcome = ThresholdPolicy(min_score=1.0, min_keep=10).apply([0.2, 0.1])
    assert outcome.kept == [0, 1]
    assert outcome.cut == {}
    assert outcome.empty_reason is None


def test_min_keep_does_nothing_when_enough_survive() -> None:
    outcome = ThresholdPolicy(min_score=0.5, min_keep=1).apply(SCORES)
    assert outcome.kept == [0, 1, 2]


# -- order of rules ------------------------------------------------------------------------------


def test_min_score_runs_before_min_ratio() -> None:
    outcome = ThresholdPolicy(min_score=0.3, min_ratio=0.9).apply([0.5, 0.46, 0.4, 0.2])
    assert outcome.cut == {3: "min_score", 2: "min_ratio"}
    assert outcome.kept == [0, 1]


def test_min_ratio_runs_before_largest_gap() -> None:
    # After min_ratio cuts 0.1, the largest remaining gap is 0.8 -> 0.5.
    outcome = ThresholdPolicy(min_ratio=0.5, largest_gap=0.2).apply([0.9, 0.8, 0.5, 0.45, 0.1])
    assert outcome.cut == {4: "min_ratio", 2: "largest_gap", 3: "largest_gap"}
    assert outcome.kept == [0, 1]


def test_largest_gap_only_looks_at_survivors() -> None:
    # The big gap 0.6 -> 0.1 is already cut by min_score; among 0.9/0.85/0.6 the gap is 0.25.
    outcome = ThresholdPolicy(min_score=0.5, largest_gap=0.3).apply([0.9, 0.85, 0.6, 0.1])
    assert outcome.kept == [0, 1, 2]
    assert outcome.cut == {3: "min_score"}


def test_top_n_runs_after_min_keep() -> None:
    outcome = ThresholdPolicy(min_score=0.99, min_keep=3, top_n=1).apply(SCORES)
    assert outcome.kept == [0]
    assert outcome.cut == {1: "top_n", 2: "top_n", 3: "min_score", 4: "min_score"}
    assert outcome.empty_reason is None


def test_top_n_zero_after_min_score_keeps_min_score_reason() -> None:
    outcome = ThresholdPolicy(min_score=0.99, top_n=0).apply(SCORES)
    assert outcome.kept == []
    assert outcome.empty_reason is not None
    assert "min_score" in outcome.empty_reason


def test_top_n_zero_overrides_min_keep() -> None:
    outcome = ThresholdPolicy(min_keep=2, top_n=0).apply(SCORES)
    assert outcome.kept == []
    assert outcome.empty_reason == "top_n=0"


def test_top_n_zero_after_min_keep_rescue_reports_top_n() -> None:
    # min_keep rescued the documents min_score cut, so top_n=0 is why the result is empty.
    outcome = ThresholdPolicy(min_score=0.99, min_keep=2, top_n=0).apply(SCORES)
    assert outcome.kept == []
    assert outcome.empty_reason == "top_n=0"


def test_all_rules_together() -> None:
    policy = ThresholdPolicy(top_n=2, min_score=0.1, min_ratio=0.2, largest_gap=0.3, min_keep=1)
    outcome = policy.apply([0.95, 0.9, 0.88, 0.4, 0.15, 0.05])
    assert outcome.kept == [0, 1]
    assert outcome.cut == {
        5: "min_score",
        4: "min_ratio",  # 0.15 < 0.2 * 0.95
        3: "largest_gap",
        2: "top_n",
    }
    check_partition(outcome, 6)


def test_empty_result_is_not_an_exception() -> None:
    outcome = ThresholdPolicy(min_score=1.0).apply([0.99])
    assert isinstance(outcome, ThresholdOutcome)
    assert outcome.kept == []
    assert outcome.empty_reason


def test_apply_does_not_mutate_scores() -> None:
    scores = list(SCORES)
    ThresholdPolicy(min_score=0.5, min_keep=4, top_n=2).apply(scores)
    assert scores == SCORES


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"top_n": -1},
        {"top_n": 1.0},
        {"top_n": "3"},
        {"min_score": -0.01},
        {"min_score": 1.01},
        {"min_score": float("nan")},
        {"min_score": float("inf")},
        {"min_score": "0.5"},
        {"min_score": "high"},
        {"min_ratio": -1},
        {"min_ratio": 2},
        {"largest_gap": 1.5},
        {"largest_gap": float("nan")},
        {"largest_gap": [0.1]},
        {"min_keep": -1},
        {"min_keep": None},
        {"min_keep": 0.5},
    ],
)
def test_bad_values_raise_configuration_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as info:
        ThresholdPolicy(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, RerankError)
    assert next(iter(kwargs)) in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"top_n": 0},
        {"min_score": 0},
        {"min_score": 1},
        {"min_ratio": 0.0},
        {"min_ratio": 1.0},
        {"largest_gap": 0.0},
        {"min_keep": 0},
    ],
)
def test_boundary_values_are_accepted(kwargs: dict[str, object]) -> None:
    ThresholdPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_is_frozen() -> None:
    policy = ThresholdPolicy(top_n=1)
    with pytest.raises(AttributeError):
        policy.top_n = 2  # type: ignore[misc]


# -- merged --------------------------------------------------------------------------------------


def test_merged_overrides_given_fields_only() -> None:
    base = ThresholdPolicy(top_n=5, min_score=0.2, min_ratio=0.3, largest_gap=0.4, min_keep=1)
    merged = base.merged(top_n=2, min_score=0.7)
    assert merged == ThresholdPolicy(
        top_n=2, min_score=0.7, min_ratio=0.3, largest_gap=0.4, min_keep=1
    )
    assert base.top_n == 5
    assert base.min_score == 0.2


def test_merged_none_keeps_the_policy() -> None:
    base = ThresholdPolicy(top_n=5, min_score=0.2)
    assert base.merged() is base
    assert base.merged(top_n=None, min_score=None) == base


def test_merged_zero_values_do_override() -> None:
    merged = ThresholdPolicy(top_n=5, min_score=0.2).merged(top_n=0, min_score=0.0)
    assert merged.top_n == 0
    assert merged.min_score == 0.0


def test_merged_validates() -> None:
    with pytest.raises(ConfigurationError):
        ThresholdPolicy().merged(top_n=-3)
    with pytest.raises(ConfigurationError):
        ThresholdPolicy().merged(min_score=7.0)
