"""Calibrations and the score contract: every calibrated score is a finite float in [0, 1]."""

from __future__ import annotations

import math

import pytest

from rerankit import CalibrationError, Clip, ConfigurationError, Linear, ScoreSpace, Sigmoid
from rerankit.calibration import Identity, calibrate, default_calibration

# -- Sigmoid -------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [-5.0, -1.0, -0.25, 0.0, 0.25, 1.0, 5.0, 30.0])
def test_sigmoid_matches_the_formula(x: float) -> None:
    assert Sigmoid()(x) == pytest.approx(1.0 / (1.0 + math.exp(-x)), rel=1e-12)


def test_sigmoid_zero_is_one_half() -> None:
    assert Sigmoid()(0.0) == 0.5


def test_sigmoid_is_symmetric() -> None:
    for x in (0.1, 1.0, 3.0, 12.0):
        assert Sigmoid()(x) + Sigmoid()(-x) == pytest.approx(1.0)


@pytest.mark.parametrize("x", [710.0, 1000.0, 1e6, 1e300, 1.7e308])
def test_sigmoid_is_stable_for_large_positive(x: float) -> None:
    assert Sigmoid()(x) == 1.0


@pytest.mark.parametrize("x", [-710.0, -1000.0, -1e6, -1e300, -1.7e308])
def test_sigmoid_is_stable_for_large_negative(x: float) -> None:
    value = Sigmoid()(x)
    assert 0.0 <= value < 1e-300  # no OverflowError, no NaN


def test_sigmoid_keeps_precision_for_moderately_negative() -> None:
    # exp(-40) is far below float epsilon; a naive 1/(1+exp(40)) still works, but the
    # stable branch must not round it to 0.
    assert Sigmoid()(-40.0) == pytest.approx(math.exp(-40.0), rel=1e-12)
    assert Sigmoid()(-700.0) > 0.0


def test_sigmoid_overflowing_scale_saturates() -> None:
    # scale * raw overflows to +-inf; the result must still be a number in [0, 1].
    assert Sigmoid(scale=1e308)(10.0) == 1.0
    assert Sigmoid(scale=1e308)(-10.0) == 0.0


def test_sigmoid_is_monotonic() -> None:
    xs = [-1e4, -50.0, -3.0, -0.5, 0.0, 0.5, 3.0, 50.0, 1e4]
    values = [Sigmoid()(x) for x in xs]
    assert values == sorted(values)
    assert all(0.0 <= v <= 1.0 for v in values)


def test_sigmoid_scale_and_shift() -> None:
    platt = Sigmoid(scale=2.0, shift=-1.0)
    assert platt(0.5) == 0.5
    assert platt(1.0) == pytest.approx(1.0 / (1.0 + math.exp(-1.0)))
    assert Sigmoid(scale=-1.0)(2.0) == pytest.approx(Sigmoid()(-2.0))


# -- Linear --------------------------------------------------------------------------------------


def test_linear_maps_range_and_clips() -> None:
    lin = Linear(-1.0, 1.0)
    assert lin(-1.0) == 0.0
    assert lin(0.0) == 0.5
    assert lin(1.0) == 1.0
    assert lin(0.5) == 0.75
    assert lin(-5.0) == 0.0
    assert lin(5.0) == 1.0


def test_linear_grade() -> None:
    lin = Linear(0.0, 10.0)
    assert [lin(g) for g in (0, 2.5, 7, 10, 11)] == [0.0, 0.25, 0.7, 1.0, 1.0]


@pytest.mark.parametrize(("low", "high"), [(1.0, 1.0), (2.0, 1.0), (0.0, float("nan"))])
def test_linear_rejects_empty_or_reversed_range(low: float, high: float) -> None:
    with pytest.raises(CalibrationError):
        Linear(low, high)


# -- Clip ----------------------------------------------------------------------------------------


def test_clip() -> None:
    clip = Clip()
    assert [clip(x) for x in (-0.5, 0.0, 0.3, 1.0, 1.7)] == [0.0, 0.0, 0.3, 1.0, 1.0]
    assert Identity is Clip


# -- default_calibration -------------------------------------------------------------------------


def test_default_calibration_logit_is_sigmoid() -> None:
    cal = default_calibration(ScoreSpace.LOGIT)
    assert cal == Sigmoid()
    assert cal(0.0) == 0.5
    assert cal(3.0) == pytest.approx(1.0 / (1.0 + math.exp(-3.0)))


def test_default_calibration_probability_is_identity_on_unit_interval() -> None:
    cal = default_calibration(ScoreSpace.PROBABILITY)
    assert [cal(x) for x in (0.0, 0.42, 1.0)] == [0.0, 0.42, 1.0]


def test_default_calibration_cosine_clips() -> None:
    cal = default_calibration(ScoreSpace.COSINE)
    assert [cal(x) for x in (-1.0, -0.2, 0.0, 0.6, 1.0)] == [0.0, 0.0, 0.0, 0.6, 1.0]


def test_default_calibration_grade_divides_by_ten() -> None:
    cal = default_calibration(ScoreSpace.GRADE)
    assert cal == Linear(0.0, 10.0)
    assert cal(7.0) == 0.7


@pytest.mark.parametrize("space", list(ScoreSpace))
def test_default_calibration_accepts_plain_string_values(space: ScoreSpace) -> None:
    # ScoreSpace is a str enum: "logit" must mean the same as ScoreSpace.LOGIT.
    assert default_calibration(space.value) == default_calibration(space)  # type: ignore[arg-type]


def test_default_calibration_unknown_space() -> None:
    with pytest.raises(ConfigurationError):
        default_calibration("decibel")  # type: ignore[arg-type]


# -- calibrate() contract ------------------------------------------------------------------------


def test_calibrate_returns_plain_float() -> None:
    assert type(calibrate(lambda raw: 1, 5.0)) is float
    assert calibrate(lambda raw: 1, 5.0) == 1.0
    assert calibrate(Sigmoid(), 0.0) == 0.5


@pytest.mark.parametrize("raw", [float("nan"), float("inf"), float("-inf")])
def test_calibrate_rejects_non_finite_raw(raw: float) -> None:
    calls: list[float] = []

    def spy(x: float) -> float:
        calls.append(x)
        return 0.5

    with pytest.raises(CalibrationError, match="non-finite"):
        calibrate(spy, raw)
    assert calls == []


@pytest.mark.parametrize("out", [-1e-9, 1.0000001, 2.0, float("nan"), float("inf"), -float("inf")])
def test_calibrate_rejects_output_outside_unit_interval(out: float) -> None:
    with pytest.raises(CalibrationError, match="outside"):
        calibrate(lambda raw: out, 0.3)


@pytest.mark.parametrize("out", [0.0, 1.0, 0.5, 1e-300])
def test_calibrate_accepts_unit_interval(out: float) -> None:
    assert calibrate(lambda raw: out, 0.3) == out


def test_calibrate_passes_raw_to_calibration() -> None:
    seen: list[float] = []

    def spy(x: float) -> float:
        seen.append(x)
        return 0.25

    assert calibrate(spy, -3.5) == 0.25
    assert seen == [-3.5]


def test_calibration_error_names_the_raw_score() -> None:
    with pytest.raises(CalibrationError, match=r"3\.5"):
        calibrate(lambda raw: raw, 3.5)
