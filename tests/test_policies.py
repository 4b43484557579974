"""Context policies: each policy's rule, and the invariants of any chain of them (subset,
accounting, no mutation, token budget never exceeded, cascade deadline) as property tests.

The model boundary is a fake scorer that looks raw scores up in a table and a fake embedder
that maps a text to a fixed vector; the expensive reranker of the cascade sleeps on demand.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankit import (
    Candidate,
    ConfigurationError,
    PassthroughReranker,
    Reranker,
    RerankResults,
    ScoreBatch,
    ScoreSpace,
    ThresholdPolicy,
)
from rerankit.policies import (
    MMR,
    Cascade,
    ContextPolicy,
    LostInTheMiddle,
    MetadataBoost,
    Recency,
    Shadow,
    ShadowReport,
    TokenBudget,
    arerank_with,
    check_policies,
    kendall_tau,
    overlap_at,
    rerank_with,
)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]


class Table(Reranker):
    """Raw score = ``table[text]`` (probability space); optionally sleeps first."""

    backend = "table"
    score_space = ScoreSpace.PROBABILITY
    pointwise = True

    def __init__(self, table: Mapping[str, float], *, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = dict(table)
        self.delay = delay

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        if self.delay:
            time.sleep(self.delay)
        return ScoreBatch([self.table.get(c.text, 0.0) for c in candidates])

    async def _ascore(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        if self.delay:
            await asyncio.sleep(self.delay)
        return ScoreBatch([self.table.get(c.text, 0.0) for c in candidates])


def embed(texts: list[str]) -> list[list[float]]:
    """One-hot over the first word: texts sharing it are duplicates (cosine 1), others are
    orthogonal (cosine 0)."""
    return [[float(text.split()[0] == head) for head in WORDS] for text in texts]


def words(text: str) -> int:
    return len(text.split())


texts = st.builds(
    lambda head, n: " ".join([head] + ["w"] * n), st.sampled_from(WORDS), st.integers(0, 9)
)
dates = st.none() | st.datetimes(
    min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2025, 12, 31)
).map(lambda d: d.isoformat())


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    pool = draw(st.lists(texts, min_size=0, max_size=14))
    docs = [
        Candidate(
            t,
            id=draw(st.none() | st.sampled_from(["a", "b", "c", f"id-{i}"])),
            metadata={
                "date": draw(dates),
                "source": draw(st.sampled_from(["docs", "forum", None])),
                "tags": [i],
            },
        )
        for i, t in enumerate(pool)
    ]
    table = {t: draw(st.floats(0.0, 1.0)) for t in set(pool)}
    expensive = {t: draw(st.floats(0.0, 1.0)) for t in set(pool)}
    menu: list[ContextPolicy] = [
        MMR(embed, lambda_mult=draw(st.floats(0.0, 1.0)), k=draw(st.none() | st.integers(1, 6))),
        TokenBudget(draw(st.integers(1, 40)), tokenizer=words, overhead=draw(st.integers(0, 2))),
        MetadataBoost(
            recency=Recency(half_life_days=draw(st.floats(1.0, 400.0)), weight=0.5, now=NOW),
            field_weights={"source": {"docs": 1.5, "forum": 0.5}},
        ),
        Cascade(Table(expensive), k=draw(st.integers(1, 8))),
        Shadow(Table(expensive), callback=lambda report: None, k=3),
    ]
    chain = draw(st.lists(st.sampled_from(menu), max_size=4, unique_by=id))
    if draw(st.booleans()):
        chain.append(LostInTheMiddle())
    threshold = ThresholdPolicy(
        top_n=draw(st.none() | st.integers(0, 8)),
        min_score=draw(st.none() | st.floats(0.0, 1.0)),
        min_keep=draw(st.integers(0, 3)),
    )
    return {"docs": docs, "table": table, "chain": chain, "threshold": threshold}


def snapshot(docs: Sequence[Candidate]) -> list[tuple[Any, ...]]:
    return [(c.text, c.id, copy.deepcopy(dict(c.metadata)), c.retrieval_score) for c in docs]


def accounted(results: RerankResults, n: int) -> list[int]:
    seen = [r.index for r in results] + [d.index for d in results.dropped]
    return sorted(seen + list(results.duplicates))


@SETTINGS
@given(scenarios())
def test_any_chain_keeps_a_subset_accounts_for_everything_and_mutates_nothing(
    s: dict[str, Any],
) -> None:
    docs, chain, threshold = s["docs"], s["chain"], s["threshold"]
    before = snapshot(docs)
    reranker = Table(s["table"])
    scored = reranker.rerank(
        "q",
        docs,
        policy=ThresholdPolicy(min_score=threshold.min_score, min_keep=threshold.min_keep),
    )
    results = rerank_with(reranker, "q", docs, policies=chain, policy=threshold)
    # Subset: only what the threshold's score rules kept can reach the list.
    assert {r.index for r in results} <= {r.index for r in scored}
    assert all(results[i].candidate is docs[results[i].index] for i in range(len(results)))
    # Accounting: every input exactly once, in the list, in dropped or in duplicates.
    assert accounted(results, len(docs)) == list(range(len(docs)))
    assert [r.rank for r in results] == list(range(len(results)))
    assert all(0.0 <= r.score <= 1.0 for r in results)
    if threshold.top_n is not None:
        assert len(results) <= threshold.top_n
    if docs and not results:
        assert results.empty_reason
    # The budget is never exceeded, whatever comes after it.
    for step in chain:
        if isinstance(step, TokenBudget):
            assert sum(step.tokens(r.text) for r in results) <= step.max_tokens
    # The records: one per policy, in order.
    names = [a["policy"] for a in results.applied]
    assert names == [p.name for p in chain]
    assert snapshot(docs) == before


@SETTINGS
@given(scenarios())
def test_a_policy_never_changes_the_results_it_is_given(s: dict[str, Any]) -> None:
    docs = s["docs"]
    given_results = Table(s["table"]).rerank("q", docs)
    snapshot = (list(given_results), given_results.dropped, dict(given_results.annotations))
    pool = [d for d in docs]
    for step in s["chain"]:
        out = step.apply("q", given_results, pool)
        assert out is not given_results
        assert (list(given_results), given_results.dropped, dict(given_results.annotations)) == (
            snapshot
        )


@settings(max_examples=25, deadline=None, database=None)
@given(scenarios())
async def test_async_chains_equal_sync(s: dict[str, Any]) -> None:
    chain = [p for p in s["chain"] if not isinstance(p, Shadow)]
    reranker = Table(s["table"])
    sync = rerank_with(reranker, "q", s["docs"], policies=chain, policy=s["threshold"])
    async_ = await arerank_with(reranker, "q", s["docs"], policies=chain, policy=s["threshold"])
    assert list(async_) == list(sync)
    assert async_.dropped == sync.dropped and dict(async_.annotations) == dict(sync.annotations)


# -- the cascade's deadline ----------------------------------------------------------------------

GRACE_S = 1.5


@settings(max_examples=8, deadline=None, database=None)
@given(budget_ms=st.integers(40, 250), slow=st.booleans())
def test_cascade_deadline_holds(budget_ms: int, slow: bool) -> None:
    docs = [f"doc {i}" for i in range(10)]
    cheap = Table({d: 1.0 - i / 10 for i, d in enumerate(docs)})
    expensive = Table({d: i / 10 for i, d in enumerate(docs)}, delay=5.0 if slow else 0.0)
    cascade = Cascade(expensive, k=4, budget_ms=budget_ms)
    started = time.perf_counter()
    results = rerank_with(cheap, "q", docs, policies=[cascade])
    elapsed = time.perf_counter() - started
    assert elapsed <= budget_ms / 1000 + GRACE_S
    assert [d.reason for d in results.dropped] == ["cascade"] * 6
    if slow:
        assert [r.text for r in results] == docs[:4]  # the cheap order, marked
        assert results.fallback and "budget_ms" in results.fallback
        assert all(r.fallback == results.fallback for r in results)
        assert results.applied[0]["deadline_exceeded"] is True
    else:
        assert [r.text for r in results] == docs[:4][::-1]  # the expensive order
        assert results.fallback is None and results.backend == "table"


@pytest.mark.parametrize("slow", [True, False])
async def test_async_cascade_deadline_holds(slow: bool) -> None:
    docs = [f"doc {i}" for i in range(6)]
    cheap = Table({d: 1.0 - i / 10 for i, d in enumerate(docs)})
    expensive = Table({d: i / 10 for i, d in enumerate(docs)}, delay=5.0 if slow else 0.0)
    started = time.perf_counter()
    results = await arerank_with(
        cheap, "q", docs, policies=[Cascade(expensive, k=3, budget_ms=100)]
    )
    assert time.perf_counter() - started <= 0.1 + GRACE_S
    assert [r.text for r in results] == (docs[:3] if slow else docs[:3][::-1])
    assert (results.fallback is not None) is slow


def test_cascade_records_the_cheap_stage_and_raises_the_expensive_error() -> None:
    docs = ["a", "b", "c"]
    cheap = Table({"a": 0.9, "b": 0.5, "c": 0.1})
    results = rerank_with(cheap, "q", docs, policies=[Cascade(Table({"c": 0.8}), k=3)])
    assert [r.text for r in results] == ["c", "a", "b"]
    assert results[0].score == 0.8
    assert dict(results.annotations[2])["cascade"] == {
        "stage": "expensive",
        "cheap_rank": 2,
        "cheap_score": 0.1,
    }

    class Broken(Table):
        def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
            raise RuntimeError("GPU fell over")

    with pytest.raises(Exception, match="GPU fell over"):
        rerank_with(cheap, "q", docs, policies=[Cascade(Broken({}), k=2, budget_ms=5000)])


# -- each policy's rule ----------------------------------------------------------------------


def test_mmr_prefers_a_different_passage_over_a_near_duplicate() -> None:
    docs = ["alpha one", "alpha two", "beta three"]
    reranker = Table({"alpha one": 0.9, "alpha two": 0.85, "beta three": 0.6})
    plain = rerank_with(reranker, "q", docs, policies=[MMR(embed, lambda_mult=1.0, k=2)])
    assert [r.text for r in plain] == ["alpha one", "alpha two"]
    diverse = rerank_with(reranker, "q", docs, policies=[MMR(embed, lambda_mult=0.5, k=2)])
    assert [r.text for r in diverse] == ["alpha one", "beta three"]
    assert [(d.index, d.reason) for d in diverse.dropped] == [(1, "mmr")]
    assert diverse.annotations[2]["mmr"]["pick"] == 1


def test_mmr_takes_rerankit_langchain_and_llama_index_embedders() -> None:
    class LangChainLike:
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embed(texts)

    class LlamaLike:
        def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
            return embed(texts)

    docs = ["alpha one", "alpha two", "beta three"]
    reranker = Table({"alpha one": 0.9, "alpha two": 0.85, "beta three": 0.6})
    for embedder in (LangChainLike(), LlamaLike(), embed):
        out = rerank_with(reranker, "q", docs, policies=[MMR(embedder, k=2)])
        assert [r.text for r in out] == ["alpha one", "beta three"]
    with pytest.raises(ConfigurationError, match="embed_documents"):
        MMR(object())
    with pytest.raises(ConfigurationError, match="one finite vector per text"):
        rerank_with(reranker, "q", docs, policies=[MMR(lambda texts: [[1.0]])])


def test_lost_in_the_middle_puts_the_best_at_both_ends_after_top_n() -> None:
    docs = [str(i) for i in range(7)]
    out = rerank_with(PassthroughReranker(), "q", docs, policies=[LostInTheMiddle()], top_n=5)
    assert [r.text for r in out] == ["0", "2", "4", "3", "1"]
    assert [d.reason for d in out.dropped] == ["top_n", "top_n"]
    assert out.annotations[1]["lost_in_the_middle"] == {"relevance_rank": 1}
    with pytest.raises(ConfigurationError, match="must come after every other policy"):
        check_policies([LostInTheMiddle(), TokenBudget(5, tokenizer=words)])


def test_recency_and_field_weights_boost_and_record_it() -> None:
    recency = Recency(field="date", half_life_days=30, weight=1.0, now=NOW)
    assert recency.factor("2025-05-02T00:00:00Z") == pytest.approx(0.5)
    assert recency.factor(NOW + dt.timedelta(days=3)) == 1.0  # the future counts as now
    boost = MetadataBoost(recency=recency, field_weights={"source": {"docs": 1.2}})
    docs = [
        Candidate("old", metadata={"date": "2024-06-01", "source": "docs"}),
        Candidate("new", metadata={"date": dt.date(2025, 6, 1), "source": "forum"}),
        Candidate("undated", metadata={"source": "docs"}),
        Candidate("garbled", metadata={"date": "yesterday-ish"}),
    ]
    reranker = Table({"old": 0.9, "new": 0.6, "undated": 0.5, "garbled": 0.4})
    out = rerank_with(reranker, "q", docs, policies=[boost])
    assert [r.text for r in out] == ["new", "undated", "garbled", "old"]
    assert out[0].score == pytest.approx(0.6)
    assert out[1].score == pytest.approx(0.5 * 1.2)
    notes = {r.text: dict(out.annotations[r.index])["boost"] for r in out}
    assert notes["old"]["score"] == 0.9 and notes["old"]["age_days"] == 365.0
    assert notes["old"]["factor"] == pytest.approx(1.2 * 0.5 ** (365 / 30))
    assert notes["undated"]["date"] == "missing"
    assert notes["garbled"]["date"] == "not a date: 'yesterday-ish'"
    with pytest.raises(ConfigurationError, match="needs recency= or field_weights="):
        MetadataBoost()


def test_token_budget_keeps_whole_passages_and_says_when_none_fits() -> None:
    class Encodes:  # a Hugging Face / tiktoken style tokenizer
        def encode(self, text: str) -> list[int]:
            return [0] * words(text)

    docs = ["one two three", "four five six seven eight", "nine ten"]
    reranker = PassthroughReranker()
    out = rerank_with(reranker, "q", docs, policies=[TokenBudget(6, tokenizer=Encodes())])
    assert [r.text for r in out] == ["one two three", "nine ten"]
    assert out.annotations[1]["token_budget"] == {"tokens": 5, "left": 3}
    assert out.applied[0]["used"] == 5
    none = rerank_with(reranker, "q", docs, policies=[TokenBudget(1, tokenizer=words)])
    assert (
        not none
        and none.empty_reason == "no passage fits max_tokens=1 (the shortest needs 2 tokens)"
    )
    with pytest.raises(ConfigurationError, match="token count"):
        rerank_with(reranker, "q", docs, policies=[TokenBudget(5, tokenizer=lambda t: "x")])
    with pytest.raises(ConfigurationError, match="tokenizer must be"):
        TokenBudget(5, tokenizer=3)


def test_shadow_reports_agreement_off_the_critical_path() -> None:
    reports: list[ShadowReport] = []
    docs = ["a", "b", "c", "d"]
    live = Table({"a": 0.9, "b": 0.7, "c": 0.5, "d": 0.1})
    reversed_ = Table({"a": 0.1, "b": 0.5, "c": 0.7, "d": 0.9}, delay=0.3)
    shadow = Shadow(reversed_, callback=reports.append, k=2)
    started = time.perf_counter()
    out = rerank_with(live, "q", docs, policies=[shadow], min_score=0.3)
    assert time.perf_counter() - started < 0.3  # the shadow's 0.3 s are not waited for
    assert [r.text for r in out] == ["a", "b", "c"]  # the live results, unchanged
    assert shadow.join(timeout=10)
    (report,) = reports
    assert report.kendall_tau == -1.0 and report.overlap == 0.0
    assert report.live == (0, 1, 2, 3) and report.shadow == (3, 2, 1, 0)
    assert report.error is None


def test_a_failing_shadow_or_callback_never_reaches_the_live_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Table):
        def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
            raise RuntimeError("shadow model missing")

    reports: list[ShadowReport] = []
    shadow = Shadow(Broken({}), callback=reports.append)
    out = rerank_with(Table({"a": 0.5}), "q", ["a", "b"], policies=[shadow])
    assert len(out) == 2 and shadow.join(timeout=10)
    assert reports[0].error is not None and "shadow model missing" in reports[0].error
    assert math.isnan(reports[0].kendall_tau)

    def explode(report: ShadowReport) -> None:
        raise ValueError("callback bug")

    noisy = Shadow(Table({}), callback=explode)
    assert len(rerank_with(Table({"a": 0.5}), "q", ["a"], policies=[noisy])) == 1
    assert noisy.join(timeout=10)
    assert "callback bug" in caplog.text


def test_shadow_sampling_and_rank_agreement_helpers() -> None:
    count = threading.Semaphore(0)
    shadow = Shadow(Table({}), callback=lambda r: count.release(), sample=0.25)
    for _ in range(8):
        rerank_with(Table({"a": 0.5}), "q", ["a", "b"], policies=[shadow])
    assert shadow.join(timeout=10)
    assert sum(1 for _ in range(8) if count.acquire(timeout=0)) == 2
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(2 / 3)
    assert math.isnan(kendall_tau([1, 1], [1, 2]))
    assert overlap_at([1, 2, 3], [3, 2, 9], 2) == 0.5


def test_check_policies_names_the_bad_entry() -> None:
    assert check_policies(None) == ()
    budget = TokenBudget(5, tokenizer=words)
    assert check_policies(budget) == (budget,)
    with pytest.raises(ConfigurationError, match=r"policies\[1\] must be a context policy"):
        check_policies([budget, "mmr"])
    with pytest.raises(ConfigurationError, match="must be a list of context policies"):
        check_policies("mmr")


# -- the faces and the RAG builders take the same objects -----------------------------------


def test_the_langchain_and_llama_index_components_take_policies() -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerankit.langchain import RerankCompressor
    from rerankit.llama_index import RerankPostprocessor

    reranker = Table({"fresh news": 0.6, "stale news": 0.9, "other": 0.2})
    policies = [
        MetadataBoost(recency=Recency(half_life_days=30, now=NOW)),
        TokenBudget(4, tokenizer=words),
    ]
    meta = {"fresh news": "2025-06-01", "stale news": "2025-01-01", "other": "2025-06-01"}
    docs = [Document(t, id=t, metadata={"date": d}) for t, d in meta.items()]
    kept = RerankCompressor(reranker=reranker, policies=policies).compress_documents(docs, "q")
    assert [d.page_content for d in kept] == ["fresh news", "other"]
    boost = kept[0].metadata["rerank"]["policies"]["boost"]
    assert boost["score"] == 0.6 and boost["factor"] == 1.0
    assert kept[0].metadata["rerank"]["policies"]["token_budget"] == {"tokens": 2}
    assert [d.reason for d in kept.results.dropped] == ["token_budget"]
    assert docs[0].metadata == {"date": "2025-06-01"}  # the input is untouched

    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=t, metadata={"date": d})) for t, d in meta.items()
    ]
    post = RerankPostprocessor(reranker=reranker, policies=policies)
    out = post.postprocess_nodes(nodes, query_str="q")
    assert [n.node.get_content() for n in out] == ["fresh news", "other"]
    assert out[0].node.metadata["rerank"]["policies"] == kept[0].metadata["rerank"]["policies"]
    with pytest.raises(ConfigurationError, match=r"policies\[0\]"):
        RerankCompressor(reranker=reranker, policies=["mmr"])


def test_the_retriever_batch_applies_policies_like_invoke() -> None:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from rerankit.langchain import RerankRetriever

    class Fixed(BaseRetriever):
        k: int = 4

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            return [Document(t, id=t) for t in ("alpha a", "alpha b", "beta c", "gamma d")]

    reranker = Table({"alpha a": 0.9, "alpha b": 0.8, "beta c": 0.7, "gamma d": 0.1})
    retriever = RerankRetriever(
        reranker=reranker, base_retriever=Fixed(), policies=[MMR(embed, k=2)], top_n=2
    )
    one = retriever.invoke("q")
    assert [d.id for d in one] == ["alpha a", "beta c"]
    assert [[d.id for d in docs] for docs in retriever.batch(["q", "q"])] == [
        ["alpha a", "beta c"]
    ] * 2


def test_the_rag_builders_take_policies() -> None:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from llama_index.core.retrievers import BaseRetriever as LlamaRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerankit.langchain import build_rag_chain
    from rerankit.llama_index import build_query_engine
    from rerankit.rag import ExtractiveAnswerer

    passages = {
        "qdrant": "Qdrant stores vectors and payloads for search.",
        "long": "Qdrant stores vectors " + "and also many other things " * 8,
        "pasta": "Boil pasta for nine minutes.",
    }

    class Fixed(BaseRetriever):
        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            return [Document(t, id=k, metadata={"source": k}) for k, t in passages.items()]

    class FixedNodes(LlamaRetriever):
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            return [
                NodeWithScore(node=TextNode(text=t, id_=k, metadata={"source": k}), score=1.0)
                for k, t in passages.items()
            ]

    reranker = Table({passages["long"]: 0.9, passages["qdrant"]: 0.8, passages["pasta"]: 0.1})
    budget = TokenBudget(12, tokenizer=words)
    chain = build_rag_chain(
        retriever=Fixed(), llm=ExtractiveAnswerer(), reranker=reranker, policies=[budget]
    )
    out = chain.invoke("Which database stores vectors?")
    assert [d.id for d in out["sources"]] == ["qdrant", "pasta"]
    assert "token_budget" in [d.reason for d in out["sources"].results.dropped]
    engine = build_query_engine(
        index=FixedNodes(), llm=ExtractiveAnswerer(), reranker=reranker, policies=[budget]
    )
    response = engine.query("Which database stores vectors?")
    assert [n.node.node_id for n in response.source_nodes] == ["qdrant", "pasta"]
    with pytest.raises(ConfigurationError, match="policies"):
        build_rag_chain(retriever=Fixed(), llm=ExtractiveAnswerer(), policies=[object()])
