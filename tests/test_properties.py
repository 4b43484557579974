"""Property tests of the rerank core over random scores, duplicates and threshold policies.

The model boundary is a fake ``Reranker._score`` that looks scores up in a random table; the
expected output is derived from the documented rules (sort by calibrated score, then raw score,
then input index; fold duplicates by id or text; apply the policy rules in their documented
order), independently of how the core implements them.
"""

from __future__ import annotations

import asyncio
import copy
import math
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankit import (
    Candidate,
    Clip,
    ConfigurationError,
    Linear,
    Reranker,
    RerankResults,
    ScoreBatch,
    ScoreSpace,
    Sigmoid,
    ThresholdPolicy,
    TruncationWarning,
)
from rerankit.calibration import calibrate

from . import _fixtures

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TEXTS = [f"text {i}" for i in range(6)]
IDS = ["id-a", "id-b", "id-c"]


class Fake(Reranker):
    """Looks raw scores up in ``table``; flags texts in ``long`` as truncated."""

    backend = "fake"

    def __init__(
        self, table: Mapping[str, float], long: frozenset[str] = frozenset(), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.table = dict(table)
        self.long = long
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        with self._lock:
            self.calls.append(list(texts))
        return ScoreBatch(
            raw=[self.table[t] for t in texts],
            truncated=[t in self.long for t in texts],
        )


FAKES: dict[ScoreSpace, type[Fake]] = {
    space: type(f"Fake{space.name.title()}", (Fake,), {"score_space": space})
    for space in ScoreSpace
}

TIES = [0.0, 0.5, 1.0]
RAW = {
    ScoreSpace.PROBABILITY: st.floats(0.0, 1.0),
    ScoreSpace.LOGIT: st.floats(-40.0, 40.0),
    ScoreSpace.COSINE: st.floats(-1.5, 1.5),  # clipping creates ties on the calibrated score
    ScoreSpace.GRADE: st.floats(-2.0, 12.0),
    ScoreSpace.RANK: st.floats(0.0, 1.0),
}


def make_candidate(text: str, id: str | None, n: int) -> Candidate:
    return Candidate(text, id=id, metadata={"n": n, "tags": [n]})


documents = st.lists(
    st.one_of(
        st.sampled_from(TEXTS),
        st.builds(
            make_candidate,
            st.sampled_from(TEXTS),
            st.none() | st.sampled_from(IDS),
            st.integers(0, 100),
        ),
    ),
    max_size=12,
)

unit = st.floats(0.0, 1.0)
policies = st.builds(
    ThresholdPolicy,
    top_n=st.none() | st.integers(0, 8),
    min_score=st.none() | unit,
    min_ratio=st.none() | unit,
    largest_gap=st.none() | unit,
    min_keep=st.integers(0, 4),
)


@dataclass
class Scenario:
    space: ScoreSpace
    table: dict[str, float]
    long: frozenset[str]
    docs: list[str | Candidate]
    policy: ThresholdPolicy | None
    top_n: int | None
    min_score: float | None
    dedupe: bool

    def reranker(self) -> Fake:
        return FAKES[self.space](self.table, self.long, dedupe=self.dedupe)

    def kwargs(self) -> dict[str, Any]:
        return {"top_n": self.top_n, "min_score": self.min_score, "policy": self.policy}

    def effective(self) -> ThresholdPolicy:
        """The policy with the shorthands applied, built by hand (not with ``merged``)."""
        p = self.policy or ThresholdPolicy()
        return ThresholdPolicy(
            top_n=self.top_n if self.top_n is not None else p.top_n,
            min_score=self.min_score if self.min_score is not None else p.min_score,
            min_ratio=p.min_ratio,
            largest_gap=p.largest_gap,
            min_keep=p.min_keep,
        )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    space = draw(st.sampled_from([s for s in ScoreSpace if s.absolute]))
    raw = st.sampled_from(TIES) | RAW[space]
    table = {t: draw(raw) for t in TEXTS}
    long = frozenset(draw(st.sets(st.sampled_from(TEXTS), max_size=3)))
    return Scenario(
        space=space,
        table=table,
        long=long,
        docs=draw(documents),
        policy=draw(st.none() | policies),
        top_n=draw(st.none() | st.integers(0, 8)),
        min_score=draw(st.none() | unit),
        dedupe=draw(st.booleans()),
    )


# -- reference model (from the documentation) ---------------------------------------------------


def as_candidate(doc: str | Candidate) -> Candidate:
    return doc if isinstance(doc, Candidate) else Candidate(doc)


def fold(docs: Sequence[str | Candidate], dedupe: bool) -> tuple[list[int], dict[int, int]]:
    """Scored indices and duplicate links: a later copy (same id, else same text) of an
    earlier scored document folds into it."""
    cands = [as_candidate(d) for d in docs]
    if not dedupe:
        return list(range(len(cands))), {}
    unique: list[int] = []
    duplicates: dict[int, int] = {}
    for j, c in enumerate(cands):
        same_id = [u for u in unique if c.id is not None and cands[u].id == c.id]
        same_text = [u for u in unique if cands[u].text == c.text]
        target = (same_id or same_text or [None])[0]
        if target is None:
            unique.append(j)
        else:
            duplicates[j] = target
    return unique, duplicates


def expected_cut(scores: Sequence[float], p: ThresholdPolicy) -> tuple[int, dict[int, str]]:
    """How many of the best-first ``scores`` are kept, and the rule that cut each other one."""
    n = len(scores)
    k1 = n if p.min_score is None else sum(s >= p.min_score for s in scores)
    k2 = k1
    if p.min_ratio is not None and k1:
        k2 = sum(s >= p.min_ratio * scores[0] for s in scores[:k1])
    k3 = k2
    if p.largest_gap is not None and k2 > 1:
        gaps = [scores[i] - scores[i + 1] for i in range(k2 - 1)]
        widest = max(gaps)
        if widest >= p.largest_gap and widest > 0:
            k3 = gaps.index(widest) + 1
    k4 = max(k3, min(p.min_keep, n))
    k5 = k4 if p.top_n is None else min(k4, p.top_n)
    reasons: dict[int, str] = {}
    for pos in range(k5, n):
        if pos < k4:
            reasons[pos] = "top_n"
        elif pos >= k1:
            reasons[pos] = "min_score"
        elif pos >= k2:
            reasons[pos] = "min_ratio"
        else:
            reasons[pos] = "largest_gap"
    return k5, reasons


def freeze(docs: Sequence[str | Candidate]) -> list[Any]:
    return [
        (d.text, d.id, copy.deepcopy(dict(d.metadata))) if isinstance(d, Candidate) else d
        for d in docs
    ]


def snapshot(results: RerankResults) -> tuple[Any, ...]:
    return _fixtures.snapshot(results, source=False)


def run_sync(s: Scenario, reranker: Fake | None = None) -> RerankResults:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        return (reranker or s.reranker()).rerank("query", s.docs, **s.kwargs())


def run_async(s: Scenario, reranker: Fake | None = None) -> RerankResults:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        return asyncio.run((reranker or s.reranker()).arerank("query", s.docs, **s.kwargs()))


# -- properties ----------------------------------------------------------------------------------


@SETTINGS
@given(scenarios())
def test_rerank_matches_the_documented_model(s: Scenario) -> None:
    reranker = s.reranker()
    docs_before = list(s.docs)
    frozen_before = freeze(s.docs)

    results = run_sync(s, reranker)

    # inputs are never mutated
    assert s.docs == docs_before
    assert all(a is b for a, b in zip(s.docs, docs_before, strict=True))
    assert freeze(s.docs) == frozen_before

    unique, duplicates = fold(s.docs, s.dedupe)
    cands = [as_candidate(d) for d in s.docs]

    # the model is called once (or not at all) with each scored text, in input order
    if unique:
        assert reranker.calls == [[cands[i].text for i in unique]]
    else:
        assert reranker.calls == []
    if s.dedupe and reranker.calls:
        assert len(set(reranker.calls[0])) == len(reranker.calls[0])
    assert dict(results.duplicates) == duplicates

    # sorted by calibrated score, then raw score, then input index
    raw = {i: s.table[cands[i].text] for i in unique}
    score = {i: reranker.calibration(raw[i]) for i in unique}
    order = sorted(unique, key=lambda i: (-score[i], -raw[i], i))
    kept = [r.index for r in results]
    dropped = [d.index for d in results.dropped]
    assert kept + dropped == order

    # the policy keeps a best-first prefix, cut by the documented rules
    policy = s.effective()
    n_kept, reasons = expected_cut([score[i] for i in order], policy)
    assert len(results) == n_kept
    assert {order.index(d.index): d.reason for d in results.dropped} == reasons
    if policy.top_n is not None:
        assert len(results) <= policy.top_n

    # accounting: every input index exactly once
    every = kept + dropped + list(results.duplicates)
    assert sorted(every) == list(range(len(s.docs)))
    assert len(set(kept)) == len(kept)

    # fields
    for rank, r in enumerate(results):
        assert r.rank == rank
        assert type(r.score) is float
        assert type(r.raw_score) is float
        assert r.score == score[r.index]
        assert r.raw_score == raw[r.index]
        assert 0.0 <= r.score <= 1.0
        assert r.truncated is (cands[r.index].text in s.long)
        if isinstance(s.docs[r.index], Candidate):
            assert r.candidate is s.docs[r.index]
        else:
            assert r.candidate == Candidate(s.docs[r.index])  # type: ignore[arg-type]
    for d in results.dropped:
        assert type(d.score) is float
        assert d.score == score[d.index]
        assert d.raw_score == raw[d.index]
    assert results.truncated == sum(cands[i].text in s.long for i in unique)

    # an empty result says why; a non-empty one does not
    assert (results.empty_reason is None) == (len(results) > 0)


@SETTINGS
@given(scenarios())
def test_sync_equals_async(s: Scenario) -> None:
    reranker = s.reranker()
    sync = run_sync(s, reranker)
    asynchronous = run_async(s, reranker)
    assert snapshot(sync) == snapshot(asynchronous)
    for a, b in zip(sync, asynchronous, strict=True):
        if isinstance(s.docs[a.index], Candidate):
            assert a.candidate is b.candidate
    assert len(reranker.calls) in (0, 2)
    if reranker.calls:
        assert reranker.calls[0] == reranker.calls[1]


@SETTINGS
@given(scenarios())
def test_rerank_is_deterministic(s: Scenario) -> None:
    assert snapshot(run_sync(s)) == snapshot(run_sync(s))


class Down(Reranker):
    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        raise RuntimeError("down")


@SETTINGS
@given(scenarios())
def test_fallback_answers_as_its_member_called_directly(s: Scenario) -> None:
    from rerankit import FallbackReranker

    member = s.reranker()
    # The fallback folds duplicates by the same rule as the member, then the member reranks.
    fallback = FallbackReranker([Down(), member], dedupe=s.dedupe)
    direct = run_sync(s, member)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        sync = fallback.rerank("query", s.docs, **s.kwargs())
        asynchronous = asyncio.run(fallback.arerank("query", s.docs, **s.kwargs()))
    if not s.docs:
        assert sync.backend == asynchronous.backend == "fallback" and not sync
        return
    for results in (sync, asynchronous):
        assert snapshot(results) == snapshot(direct)
        assert results.backend == "fake" and results.fallback is not None
        for r in results:
            if isinstance(s.docs[r.index], Candidate):
                assert r.candidate is s.docs[r.index]


@SETTINGS
@given(
    st.lists(st.floats(0.0, 1.0), max_size=15).map(lambda xs: sorted(xs, reverse=True)),
    policies,
)
def test_policy_apply_partitions_best_first(scores: list[float], policy: ThresholdPolicy) -> None:
    outcome = policy.apply(scores)
    n_kept, reasons = expected_cut(scores, policy)
    assert outcome.kept == list(range(n_kept))
    assert outcome.cut == reasons
    assert sorted([*outcome.kept, *outcome.cut]) == list(range(len(scores)))
    if policy.top_n is not None:
        assert len(outcome.kept) <= policy.top_n
    if policy.top_n is None or policy.top_n >= policy.min_keep:
        assert len(outcome.kept) >= min(policy.min_keep, len(scores))
    assert (outcome.empty_reason is not None) == (not outcome.kept and bool(scores))


finite = st.floats(allow_nan=False, allow_infinity=False)


@SETTINGS
@given(
    finite,
    st.floats(-1e6, 1e6),
    st.floats(-1e6, 1e6),
)
def test_sigmoid_stays_in_unit_interval(raw: float, scale: float, shift: float) -> None:
    value = calibrate(Sigmoid(scale=scale, shift=shift), raw)
    assert 0.0 <= value <= 1.0
    assert not math.isnan(value)


@SETTINGS
@given(finite, finite)
def test_sigmoid_is_monotonic(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert Sigmoid()(low) <= Sigmoid()(high)


@SETTINGS
@given(finite, st.floats(-1e6, 1e6), st.floats(1e-3, 1e6))
def test_linear_and_clip_stay_in_unit_interval(raw: float, low: float, width: float) -> None:
    assert 0.0 <= calibrate(Linear(low, low + width), raw) <= 1.0
    assert 0.0 <= calibrate(Clip(), raw) <= 1.0


@SETTINGS
@given(scenarios(), policies)
def test_rank_space_refuses_min_score_and_applies_the_other_rules(
    s: Scenario, policy: ThresholdPolicy
) -> None:
    reranker = FAKES[ScoreSpace.RANK](s.table, s.long, dedupe=s.dedupe)
    if policy.min_score is not None:
        with pytest.raises(ConfigurationError, match="top_n or min_ratio"):
            reranker.rerank("query", s.docs, policy=policy)
        return
    results = reranker.rerank("query", s.docs, policy=policy)
    absolute = FAKES[ScoreSpace.PROBABILITY](s.table, s.long, dedupe=s.dedupe)
    assert snapshot(results) == snapshot(absolute.rerank("query", s.docs, policy=policy))
    assert results.score_space == "rank"
