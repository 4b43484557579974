"""Reading answers: thinking sections, citations past the passages, the LLM's own abstention.

No model here: the rules are text rules (the real-model paths are in test_local_llm.py).
"""

from __future__ import annotations

import random

import pytest

from rerankit import RerankResults
from rerankit.backends.llm_answers import after_thinking, parse_grade, parse_ranking
from rerankit.rag import (
    ABSTAIN_ANSWER,
    LLM_ABSTAINED,
    Source,
    answer_question,
    read_answer,
)
from rerankit.rag.answer_text import (
    AnswerStream,
    llm_abstained,
    remove_invalid_citations,
    stream_answer,
)
from rerankit.thinking import ThinkingFilter, strip_thinking

from ._fixtures import OverlapReranker

SOURCES = [Source(number=i, source_id=f"s{i}", text=f"text {i}") for i in (1, 2, 3)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>The user asks about X.</think>\n\nyes 8", "yes 8"),
        ("<THINK>a</THINK>b<think>c</think> d", "b d"),
        ("thinking in a template that opened the tag</think>Paris [1].", "Paris [1]."),
        ("Paris [1]. <think>cut off while thinking", "Paris [1]. "),
        ("no tags at all, 3 < 4", "no tags at all, 3 < 4"),
    ],
)
def test_strip_thinking(text: str, expected: str) -> None:
    assert strip_thinking(text) == expected


def test_thinking_filter_matches_strip_thinking_on_any_chunking() -> None:
    text = "  <think>step 1 [9]\nstep 2</think>\n\nThe answer is 42 <b>bold</b>.<think>x</think>!"
    rng = random.Random(7)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(0, 8)))
        parts = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        f = ThinkingFilter()
        assert "".join([*(f.feed(p) for p in parts), f.close()]) == strip_thinking(text)


def test_invalid_citations_are_removed_from_the_text() -> None:
    text = "Paris [1, 7]. Lyon [9]. Nice [2][4]. Both [1; 3]."
    assert remove_invalid_citations(text, 3) == "Paris [1]. Lyon. Nice [2]. Both [1; 3]."
    read = read_answer(text, SOURCES)
    assert "[7]" not in read.text and "9" not in read.text and "[4]" not in read.text
    assert [c.number for c in read.citations] == [1, 2, 3]


@pytest.mark.parametrize(
    "text",
    [
        ABSTAIN_ANSWER,
        "The documents do not cover this question",
        "The documents don't cover this question.",
        "The provided context does not contain information about the Roman empire.",
        "There is no information about snakes in the passages.",
        "I cannot answer this question based on the provided documents.",
        "Sorry, the passages don\u2019t mention it. They are about rovers.",
        "The document does not contain the requested information.",  # SmolLM2's own words
    ],
)
def test_the_llm_abstaining_is_noticed(text: str) -> None:
    assert llm_abstained(text)
    read = read_answer(text, SOURCES)
    assert read.abstained and read.reason == LLM_ABSTAINED and read.citations == ()


@pytest.mark.parametrize(
    "text",
    [
        "Perseverance collects rock samples [1].",
        "The documents say Perseverance collects samples [2].",
        "The passages do not say when, but Perseverance does [1].",  # cites: an answer
        "Documents are stored as vectors.",
    ],
)
def test_answers_are_not_taken_for_abstentions(text: str) -> None:
    assert not read_answer(text, SOURCES).abstained


def test_streamed_answer_adds_up_to_the_answer_read() -> None:
    text = "<think>which one? [5]</think>\n Perseverance [1, 5] does; see [9] and [3]. "
    rng = random.Random(3)
    want = read_answer(text, SOURCES)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(0, 10)))
        parts = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        *pieces, read = stream_answer(parts, SOURCES)
        assert "".join(pieces) == want.text == read.text  # type: ignore[union-attr]
        stream = AnswerStream(len(SOURCES))
        assert "".join([*(stream.feed(p) for p in parts), stream.close()]) == want.text
    assert want.text == "Perseverance [1] does; see and [3]."


def test_answer_question_reads_the_generated_answer() -> None:
    results = OverlapReranker().rerank("rover samples", ["rover samples mars", "rover cores"])

    def llm(messages: object) -> str:
        return "<think>[1] or [2]?</think>The rover collects samples [1][8]."

    rag = answer_question("rover samples", results, generator=llm)
    assert rag.answer == "The rover collects samples [1]."
    assert [c.number for c in rag.citations] == [1] and not rag.abstained

    rag = answer_question("rover samples", results, generator=lambda m: ABSTAIN_ANSWER)
    assert rag.abstained and rag.abstain_reason == LLM_ABSTAINED and rag.messages is not None
    assert rag.empty_reason is None  # something passed: the LLM abstained

    empty = answer_question("q", RerankResults(empty_reason="no documents"), generator=llm)
    assert empty.abstained and empty.abstain_reason == "no documents" and empty.messages is None


def test_llm_reranker_parsing_skips_thinking() -> None:
    assert parse_grade("<think>maybe 2, maybe 3</think>\nyes 9") == 0.9
    assert parse_grade("<think>still thinking 4") is None
    assert parse_ranking("<think>[1] > [2]?</think>[2] > [1]", 2).order == [1, 0]
    tokens = [{"token": t} for t in ("<think>", "2", "</", "think", ">", "\n", "no", " 1")]
    assert [t["token"] for t in after_thinking(tokens)] == ["no", " 1"]
    assert after_thinking([{"token": "<think>"}, {"token": "yes"}]) == []
    plain = [{"token": "yes"}]
    assert after_thinking(plain) is plain
