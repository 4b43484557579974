"""The score cache: LRU and disk storage, the CachedReranker wrapper, fingerprints."""

from __future__ import annotations

import asyncio
import doctest
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from rerankit import (
    CachedReranker,
    Candidate,
    ConfigurationError,
    CrossEncoderReranker,
    FusionReranker,
    Reranker,
    RerankResults,
    ScoreBatch,
    ScoreCache,
    ScoreSpace,
)
from rerankit.cache import CachedScore, CacheKey, default_cache_dir, digest, score_fingerprint
from tests._fixtures import CORPUS, OverlapReranker

TEXTS = [text for _, text in CORPUS]

pytestmark = pytest.mark.filterwarnings("ignore::rerankit.TruncationWarning")


class Flagged(Reranker):
    """Pointwise fake that reports truncation and windows, and counts what it scores."""

    backend = "flagged"
    score_space = ScoreSpace.LOGIT
    pointwise = True

    def __init__(self, *, max_length: int = 40, api_key: str = "secret", batch_size: int = 8):
        super().__init__()
        self.max_length = max_length
        self.api_key = api_key
        self.batch_size = batch_size
        self.scored: list[list[str]] = []

    @property
    def model_name(self) -> str:
        return "flagged-model"

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        self.scored.append(list(texts))
        return ScoreBatch(
            raw=[(len(t) % 17) - 8.0 + len(query) / 100 for t in texts],
            truncated=[len(t) > self.max_length for t in texts],
            windows=[1 + len(t) // 50 for t in texts],
        )


class Listwise(OverlapReranker):
    pointwise = False


def snapshot(results: RerankResults) -> tuple[object, ...]:
    """Everything a caller can observe in a result list."""
    rows = tuple(
        (r.index, r.score, r.raw_score, r.rank, r.truncated, r.windows, r.candidate)
        for r in results
    )
    return (
        rows,
        results.dropped,
        dict(results.duplicates),
        results.empty_reason,
        results.truncated,
        results.backend,
        results.model,
    )


# -- ScoreCache --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_score_cache_rejects_bad_max_entries(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_entries"):
        ScoreCache(max_entries=bad)  # type: ignore[arg-type]


def test_score_cache_rejects_bad_path() -> None:
    with pytest.raises(ConfigurationError, match="path"):
        ScoreCache(path=42)  # type: ignore[arg-type]


def test_score_cache_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        ScoreCache(10)  # type: ignore[misc]


def test_score_cache_lru_evicts_least_recently_used() -> None:
    cache = ScoreCache(max_entries=2)
    a, b, c = (CacheKey("m", "q", d) for d in "abc")
    cache.put_many({a: CachedScore(1.0), b: CachedScore(2.0)})
    assert cache.get_many([a]) == [CachedScore(1.0)]  # a is now the most recent
    cache.put_many({c: CachedScore(3.0)})
    assert cache.get_many([a, b, c]) == [CachedScore(1.0), None, CachedScore(3.0)]
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (3, 1)


def test_score_cache_clear_resets_entries_and_counters() -> None:
    cache = ScoreCache()
    key = CacheKey("m", "q", "d")
    cache.put_many({key: CachedScore(0.5, True, 3)})
    cache.get_many([key])
    cache.clear()
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (0, 0)
    assert cache.get_many([key]) == [None]


def test_disk_cache_survives_a_new_instance(tmp_path: Path) -> None:
    key = CacheKey("m", digest("q"), digest("doc"))
    first = ScoreCache(path=tmp_path / "cache")
    first.put_many({key: CachedScore(-1.25, True, 4)})
    first.close()
    assert (tmp_path / "cache" / "scores.sqlite3").is_file()
    second = ScoreCache(path=tmp_path / "cache", max_entries=1)
    assert second.get_many([key, CacheKey("m", digest("q"), "other")]) == [
        CachedScore(-1.25, True, 4),
        None,
    ]
    second.clear()
    assert ScoreCache(path=tmp_path / "cache").get_many([key]) == [None]


def test_disk_cache_path_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigurationError, match="cannot open the score cache"):
        ScoreCache(path=blocker)


def test_default_cache_dir_honours_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANKIT_CACHE_DIR", "/tmp/rr-cache")
    assert default_cache_dir() == Path("/tmp/rr-cache")
    monkeypatch.delenv("RERANKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/xdg")
    assert default_cache_dir() == Path("/tmp/xdg/rerankit")


# -- CachedReranker ----------------------------------------------------------------------------


def test_repeated_query_skips_the_model_and_returns_identical_results() -> None:
    inner = Flagged()
    cached = CachedReranker(reranker=inner)
    docs = [*TEXTS, TEXTS[0], Candidate("x" * 120, id="long")]
    first = cached.rerank("what is qdrant", docs, top_n=4)
    second = cached.rerank("what is qdrant", docs, top_n=4)
    assert len(inner.scored) == 1
    assert snapshot(first) == snapshot(second)
    assert snapshot(second) == snapshot(inner.rerank("what is qdrant", docs, top_n=4))
    assert any(r.windows > 1 for r in second)
    assert second.truncated == first.truncated > 0
    assert cached.cache.hits == len(TEXTS) + 1


def test_only_missing_documents_reach_the_model() -> None:
    inner = Flagged()
    cached = CachedReranker(reranker=inner)
    cached.rerank("q", TEXTS[:3])
    cached.rerank("q", TEXTS[1:5])
    assert inner.scored == [TEXTS[:3], TEXTS[3:5]]
    cached.rerank("another query", TEXTS[:1])
    assert inner.scored[-1] == TEXTS[:1]


def test_repeated_text_without_dedupe_is_scored_once() -> None:
    inner = OverlapReranker()
    inner.dedupe = False
    cached = CachedReranker(reranker=inner, pointwise=True)
    results = cached.rerank("qdrant vector", [TEXTS[0], TEXTS[0], TEXTS[1]])
    assert inner.calls == [[TEXTS[0], TEXTS[1]]]
    assert sorted(r.index for r in results) == [0, 1, 2]


async def test_async_hits_equal_sync_results() -> None:
    inner = Flagged()
    cached = CachedReranker(reranker=inner)
    sync = cached.rerank("query", TEXTS)
    again = await cached.arerank("query", TEXTS)
    assert len(inner.scored) == 1
    assert snapshot(sync) == snapshot(again)
    fresh = await CachedReranker(reranker=Flagged()).arerank("query", TEXTS)
    assert snapshot(fresh) == snapshot(sync)


async def test_concurrent_async_calls_share_one_cache() -> None:
    cached = CachedReranker(reranker=Flagged())
    results = await asyncio.gather(*(cached.arerank(f"q{i % 3}", TEXTS) for i in range(9)))
    for i, result in enumerate(results):
        assert snapshot(result) == snapshot(results[i % 3])


def test_disk_cache_serves_a_new_process_identically(tmp_path: Path) -> None:
    first = CachedReranker(reranker=Flagged(), cache=ScoreCache(path=tmp_path))
    before = first.rerank("persist me", TEXTS)
    inner = Flagged()
    second = CachedReranker(reranker=inner, cache=ScoreCache(path=tmp_path))
    after = second.rerank("persist me", TEXTS)
    assert inner.scored == []
    assert snapshot(after) == snapshot(before)


def test_results_report_the_wrapped_backend_and_calibration() -> None:
    inner = Flagged()
    cached = CachedReranker(reranker=inner)
    assert cached.backend == "cache"  # the results name who scored
    assert cached.score_space is ScoreSpace.LOGIT
    assert cached.model_name == "flagged-model"
    assert cached.calibration is inner.calibration
    assert "CachedReranker(" in repr(cached)
    result = cached.rerank("q", TEXTS[:2])
    assert (result.backend, result.model) == ("flagged", "flagged-model")


def test_options_that_change_scores_change_the_key() -> None:
    cache = ScoreCache()
    short = CachedReranker(reranker=Flagged(max_length=10), cache=cache)
    long = CachedReranker(reranker=Flagged(max_length=1000), cache=cache)
    assert short.fingerprint != long.fingerprint
    a = short.rerank("q", TEXTS)
    b = long.rerank("q", TEXTS)
    assert a.truncated != b.truncated
    assert cache.hits == 0


def test_credentials_and_batch_size_do_not_enter_the_key() -> None:
    a = Flagged(api_key="one", batch_size=4)
    b = Flagged(api_key="two", batch_size=64)
    assert score_fingerprint(a) == score_fingerprint(b)


def test_local_model_folder_contents_enter_the_key(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"v1")
    reranker = CrossEncoderReranker(model=str(tmp_path), device="cpu", dtype="float32")
    pytest.importorskip("torch")
    before = score_fingerprint(reranker)
    weights.write_bytes(b"version 2")
    os.utime(weights, ns=(1, 2))
    assert score_fingerprint(reranker) != before


def test_cross_encoder_fingerprint_covers_score_options(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from rerankit._torch import resolve_dtype

    def fp(**options: object) -> str:
        return score_fingerprint(CrossEncoderReranker(model=str(tmp_path), **options))  # type: ignore[arg-type]

    base = fp()
    assert fp(max_length=64) != base
    assert fp(dtype="float32") != base or str(resolve_dtype("auto", "cpu")) == "torch.float32"
    assert fp(long_documents="window") != base
    assert fp(batch_size=7, micro_batching=True) == base
    resolved = str(resolve_dtype("auto", "cpu")).removeprefix("torch.")
    assert fp(dtype=resolved, device="cpu") == base  # "auto" is keyed by what it resolves to


def test_refuses_rerankers_whose_scores_depend_on_the_list() -> None:
    with pytest.raises(ConfigurationError, match="not pointwise"):
        CachedReranker(reranker=Listwise())
    with pytest.raises(ConfigurationError, match="cannot tell"):
        CachedReranker(reranker=FusionReranker([Flagged(), OverlapReranker()]))
    with pytest.raises(ConfigurationError, match="cannot tell"):
        CachedReranker(reranker=OverlapReranker())
    assert CachedReranker(reranker=OverlapReranker(), pointwise=True).reranker.backend == "overlap"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reranker": 3}, "must be a Reranker"),
        ({"reranker": Flagged(), "cache": {}}, "must be a ScoreCache"),
        ({"reranker": Flagged(), "pointwise": "yes"}, "pointwise"),
        ({"reranker": "no-such-backend"}, "unknown reranker backend"),
    ],
)
def test_constructor_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CachedReranker(**kwargs)  # type: ignore[arg-type]


def test_refuses_double_wrapping_and_positional_use() -> None:
    cached = CachedReranker(reranker=Flagged())
    with pytest.raises(ConfigurationError, match="already"):
        CachedReranker(reranker=cached)
    with pytest.raises(TypeError):
        CachedReranker(Flagged())  # type: ignore[misc]


def test_accepts_a_spec(tmp_path: Path) -> None:
    cached = CachedReranker(reranker=f"cross-encoder:{tmp_path}?max_length=64")
    assert isinstance(cached.reranker, CrossEncoderReranker)
    assert cached.reranker.max_length == 64
    assert cached.reranker.backend == "cross-encoder"


def test_empty_and_all_cached_calls_do_not_call_the_model() -> None:
    inner = Flagged()
    cached = CachedReranker(reranker=inner)
    assert cached.rerank("q", []).empty_reason == "no documents"
    cached.rerank("q", TEXTS[:2])
    cached.rerank("q", list(reversed(TEXTS[:2])))
    assert len(inner.scored) == 1


# -- with a real model -------------------------------------------------------------------------


@pytest.mark.model
def test_cached_cross_encoder_is_identical_and_skips_the_model(
    cross_encoder_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = CrossEncoderReranker(
        model=cross_encoder_path, max_length=32, long_documents="window", window_overlap=4
    )
    docs = [*TEXTS, " ".join(TEXTS)]
    cached = CachedReranker(reranker=inner)
    first = cached.rerank("what does a reranker score", docs)
    assert any(r.windows > 1 for r in first)
    calls: list[int] = []
    original = inner._score_texts

    def spy(requests: object) -> object:
        calls.append(1)
        return original(requests)  # type: ignore[arg-type]

    monkeypatch.setattr(inner, "_score_texts", spy)
    second = cached.rerank("what does a reranker score", docs)
    assert calls == []
    assert snapshot(second) == snapshot(first)

    truncating = CachedReranker(
        reranker=CrossEncoderReranker(model=cross_encoder_path, max_length=16)
    )
    with pytest.warns(UserWarning, match="truncated"):
        one = truncating.rerank("reranker", docs)
    two = truncating.rerank("reranker", docs)
    assert one.truncated == two.truncated > 0
    assert snapshot(one) == snapshot(two)


@pytest.mark.model
def test_cached_reranker_in_langchain_keeps_metadata(cross_encoder_path: str) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from rerankit.langchain import RerankCompressor

    reranker = CachedReranker(reranker=CrossEncoderReranker(model=cross_encoder_path))
    compressor = RerankCompressor(reranker=reranker, top_n=2)
    docs = [Document(page_content=t, id=str(i)) for i, t in enumerate(TEXTS)]
    first = compressor.compress_documents(docs, "vector database")
    second = compressor.compress_documents(docs, "vector database")
    assert [d.metadata for d in first] == [d.metadata for d in second]
    assert first[0].metadata["rerank"]["backend"] == "cross-encoder"


@pytest.mark.model
def test_docstring_examples_run() -> None:
    import rerankit.cache as module

    failures, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0
    assert failures == 0


async def test_async_disk_cache_is_identical(tmp_path: Path) -> None:
    inner = Flagged()
    cached = CachedReranker(reranker=inner, cache=ScoreCache(path=tmp_path))
    first = await cached.arerank("async disk", TEXTS)
    again = await CachedReranker(reranker=inner, cache=ScoreCache(path=tmp_path)).arerank(
        "async disk", TEXTS
    )
    assert len(inner.scored) == 1
    assert snapshot(first) == snapshot(again)


def test_mutable_state_does_not_enter_the_key() -> None:
    inner = Flagged()
    before = score_fingerprint(inner)
    inner.rerank("q", TEXTS[:2])  # appends to inner.scored
    assert score_fingerprint(inner) == before


def test_pointwise_is_read_from_the_declaration() -> None:
    from rerankit.backends.local import LocalReranker

    class LocalLength(LocalReranker):
        """A custom local backend: pointwise because every local reranker is."""

        def __init__(self) -> None:
            super().__init__(
                model="some/model",
                device="cpu",
                batch_size=8,
                max_length=None,
                dtype="float32",
                long_documents="truncate",
                window_overlap=0,
                trust_remote_code=False,
                calibration=None,
                dedupe=True,
            )

        def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
            texts = [c.text for c in candidates]
            return ScoreBatch([len(t) / 100 for t in texts])

    class ByMode(OverlapReranker):
        """Declares pointwise from an option, as a property."""

        def __init__(self, mode: str) -> None:
            super().__init__()
            self.listwise = mode == "listwise"

        @property
        def pointwise(self) -> bool | None:
            return not self.listwise

    class ModeOnly(OverlapReranker):
        """No declaration, only an option called ``mode``."""

        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

    assert CachedReranker(reranker=LocalLength()).rerank("q", ["ab", "abc"])[0].index == 1
    assert CachedReranker(reranker=ByMode("pointwise")).reranker.backend == "overlap"
    with pytest.raises(ConfigurationError, match="not pointwise"):
        CachedReranker(reranker=ByMode("listwise"))
    # An option named like LLMReranker's is not a declaration: the caller has to vouch.
    with pytest.raises(ConfigurationError, match="pointwise=True"):
        CachedReranker(reranker=ModeOnly("pointwise"))
    vouched = CachedReranker(reranker=ModeOnly("pointwise"), pointwise=True)
    assert vouched.reranker.backend == "overlap"
    declared = CachedReranker(reranker=CrossEncoderReranker(model="m"))
    assert declared.reranker.backend == "cross-encoder"
