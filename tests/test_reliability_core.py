"""Reliability of the core: what a backend returns is checked, bad arguments are typed errors,
non-finite scores never reach the cache, and a model that cannot be had fails in seconds.

Fakes sit at the model boundary only (a backend returning what a broken model would)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rerankit import (
    BackendError,
    CachedReranker,
    Candidate,
    ConfigurationError,
    CrossEncoderReranker,
    InvalidDocumentError,
    InvalidQueryError,
    InvalidScoreError,
    Reranker,
    RerankError,
    ScoreBatch,
    ScoreCache,
    ThresholdPolicy,
)
from rerankit.errors import ModelUnavailableError


class Returns(Reranker):
    """Returns ``value`` as the score of the document whose text is ``bad`` (else 0.5)."""

    backend = "returns"
    pointwise = True

    def __init__(self, value: Any, bad: str = "b") -> None:
        super().__init__()
        self.value = value
        self.bad = bad
        self.calls = 0

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        self.calls += 1
        return ScoreBatch([self.value if c.text == self.bad else 0.5 for c in candidates])


BAD_SCORES = [None, "abc", "0.7", True, math.inf, -math.inf, math.nan, [0.5], {"s": 1}]


@pytest.mark.parametrize("value", BAD_SCORES, ids=repr)
async def test_a_score_that_is_not_a_finite_number_names_the_document(value: Any) -> None:
    docs = ["a", "a", "b", "c"]  # "b" is input index 2, the second document scored
    for call in ("sync", "async"):
        reranker = Returns(value)
        with pytest.raises(InvalidScoreError) as info:
            await _call(reranker, call, docs)
        assert info.value.index == 2 and info.value.backend == "returns"
        assert "document 2" in str(info.value) and "Returns" in str(info.value)
        assert isinstance(info.value, BackendError) and isinstance(info.value, RerankError)


async def _call(reranker: Reranker, how: str, docs: list[str]) -> object:
    return reranker.rerank("q", docs) if how == "sync" else await reranker.arerank("q", docs)


class Raises(Reranker):
    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        raise ValueError("model exploded")


class WrongShape(Reranker):
    def __init__(self, batch: Any) -> None:
        super().__init__()
        self.batch = batch

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return self.batch  # type: ignore[no-any-return]


async def test_a_backends_own_exception_is_wrapped() -> None:
    message = "Raises failed to score: ValueError: model exploded"
    with pytest.raises(BackendError, match=message) as info:
        Raises().rerank("q", ["a"])
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(BackendError, match="model exploded"):
        await Raises().arerank("q", ["a"])


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        ([0.1, 0.2], "not a ScoreBatch"),
        (ScoreBatch([0.1]), "1 scores for 2 documents"),
        (ScoreBatch([0.1, 0.2], truncated=[True]), "truncation flags"),
    ],
)
def test_a_malformed_batch_is_a_backend_error(batch: Any, match: str) -> None:
    with pytest.raises(BackendError, match=match):
        WrongShape(batch).rerank("q", ["a", "b"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"top_n": True},
        {"top_n": -1},
        {"top_n": 1.5},
        {"min_score": True},
        {"min_score": "0.5"},
        {"min_score": 1.5},
        {"policy": {"top_n": 1}},
        {"policy": ThresholdPolicy(min_keep=1), "top_n": False},
    ],
    ids=repr,
)
def test_bad_threshold_arguments_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Returns(0.5).rerank("q", ["a", "b"], **kwargs)


@pytest.mark.parametrize(
    ("documents", "error", "index"),
    [
        (["fine", "bad \ud800 text"], InvalidDocumentError, 1),
        ([Candidate("x", metadata=[1, 2])], InvalidDocumentError, 0),  # type: ignore[arg-type]
        ([Candidate("x", retrieval_score=math.nan)], InvalidDocumentError, 0),
        (["a", Candidate("x", id=3)], InvalidDocumentError, 1),  # type: ignore[arg-type]
        (["a", None], InvalidDocumentError, 1),
    ],
)
def test_bad_documents_name_their_index(
    documents: list[Any], error: type[Exception], index: int
) -> None:
    reranker = Returns(0.5)
    with pytest.raises(error) as info:
        reranker.rerank("q", documents)
    assert getattr(info.value, "index", None) == index
    assert reranker.calls == 0  # refused before any model work


def test_a_lone_surrogate_in_the_query_is_a_typed_error() -> None:
    with pytest.raises(InvalidQueryError, match="surrogate"):
        Returns(0.5).rerank("q \udc80", ["a"])


# -- the cache never keeps a non-finite score ---------------------------------------------------


class Flaky(Returns):
    """Returns ``value`` for "b" on the first call only, then recovers."""

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        batch = super()._score(query, candidates)
        if self.calls > 1:
            return ScoreBatch([0.25 if c.text == self.bad else 0.5 for c in candidates])
        return batch


@pytest.mark.parametrize("value", [math.inf, math.nan, None])
@pytest.mark.parametrize("on_disk", [False, True])
async def test_the_cache_recovers_when_the_backend_does(
    value: Any, on_disk: bool, tmp_path: Path
) -> None:
    folder = tmp_path / "cache" if on_disk else None
    cached = CachedReranker(reranker=Flaky(value), cache=ScoreCache(path=folder))
    with pytest.raises(InvalidScoreError) as info:
        cached.rerank("q", ["a", "b"])
    assert info.value.index == 1
    assert len(cached.cache) == 0  # nothing was kept from the failed call
    results = await cached.arerank("q", ["a", "b"])
    assert {r.text: r.raw_score for r in results} == {"a": 0.5, "b": 0.25}
    if folder is not None:
        cached.cache.close()
        reopened = CachedReranker(reranker=Flaky(value), cache=ScoreCache(path=folder))
        again = reopened.rerank("q", ["a", "b"])  # another process would read the same file
        assert {r.text: r.raw_score for r in again} == {"a": 0.5, "b": 0.25}
        assert reopened.reranker.calls == 0  # type: ignore[attr-defined]


def test_a_non_finite_entry_on_disk_reads_as_a_miss(tmp_path: Path) -> None:
    from rerankit.cache import CachedScore, CacheKey

    cache = ScoreCache(path=tmp_path)
    assert cache._db is not None
    cache._db.execute(
        "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?)", ("f", "q", "d", float("inf"), 0, 1)
    )
    cache._db.commit()
    fresh = ScoreCache(path=tmp_path)
    assert fresh.get_many([CacheKey("f", "q", "d")]) == [None]
    fresh.put_many({CacheKey("f", "q", "x"): CachedScore(math.nan)})
    assert fresh.get_many([CacheKey("f", "q", "x")]) == [None]


# -- models ---------------------------------------------------------------------------------


@pytest.mark.model
def test_a_model_given_as_a_path_works(cross_encoder_path: str) -> None:
    reranker = CrossEncoderReranker(model=Path(cross_encoder_path), device="cpu")
    assert reranker.model == cross_encoder_path
    assert len(reranker.rerank("q", ["a", "b"])) == 2


def _load_in_subprocess(spec: str, env: dict[str, str]) -> tuple[float, str]:
    code = textwrap.dedent(
        f"""
        import time
        import sentence_transformers  # imported first: the time below is the model's alone
        from rerankit import from_spec
        from rerankit.errors import ModelUnavailableError
        start = time.perf_counter()
        try:
            from_spec({spec!r}).rerank("q", ["a"])
        except ModelUnavailableError as exc:
            print("unavailable", round(time.perf_counter() - start, 2), exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=True,
    ).stdout
    assert out.startswith("unavailable"), out
    _, seconds, message = out.split(" ", 2)
    return float(seconds), message


@pytest.mark.parametrize("spec", ["cross-encoder:acme/no-such-model", "embedding:acme/no-such"])
def test_a_model_missing_offline_fails_at_once(spec: str) -> None:
    seconds, message = _load_in_subprocess(spec, {"HF_HUB_OFFLINE": "1"})
    assert seconds < 5
    assert "acme/no-such" in message and "HF_HUB_OFFLINE" in message
    assert "local folder" in message


def test_a_model_behind_an_unreachable_hub_fails_in_seconds() -> None:
    # Nothing listens on port 9 of the loopback address: every connection is refused.
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
    started = time.perf_counter()
    seconds, message = _load_in_subprocess("cross-encoder:acme/no-such-model", env)
    assert seconds < 10 and time.perf_counter() - started < 60
    assert "could not be reached" in message and "acme/no-such-model" in message


def test_a_missing_folder_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        CrossEncoderReranker(model=str(tmp_path / "gone" / "model")).rerank("q", ["a"])
