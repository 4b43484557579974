"""The framework-free RAG pieces: prompt, citations, extractive answers, abstention, Qdrant
paths and argument checks, and ``rerankit demo --answer``."""

from __future__ import annotations

import copy
import doctest
import importlib
import io
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rerankit import Candidate, ConfigurationError, RerankResults
from rerankit.cli import main
from rerankit.demo import DemoConfig, run_demo
from rerankit.qdrant import default_qdrant_path, open_client, point_id
from rerankit.qdrant.client import cache_dir
from rerankit.qdrant.ingest import batched, existing_point_ids
from rerankit.rag import (
    ABSTAIN_ANSWER,
    ABSTAINED,
    EXTRACTIVE,
    EXTRACTIVE_LABEL,
    ExtractiveAnswerer,
    PromptMessage,
    RagPrompt,
    Source,
    answer_question,
    format_answer,
    format_prompt,
    openai_configured,
    parse_citations,
    resolve_source_id,
)
from rerankit.rag.extractive import split_sentences

from ._fixtures import OverlapReranker

SOURCES = [
    Source(
        number=1,
        source_id="qdrant",
        text="Qdrant stores vectors. It is written in Rust.",
        score=0.91,
    ),
    Source(number=2, source_id="pasta", text="Boil the pasta for nine minutes.", score=0.42),
]


# -- prompt ------------------------------------------------------------------------------------


def test_prompt_numbers_sources_in_the_given_order_without_scores() -> None:
    messages = RagPrompt().messages("what stores vectors?", SOURCES)
    assert [m.role for m in messages] == ["system", "user"]
    user = messages[1].content
    assert user.index("[1] (source: qdrant)") < user.index("[2] (source: pasta)")
    assert user.endswith("Question: what stores vectors?")
    assert "0.91" not in user and "0.42" not in user and "score" not in user
    assert "[1]" in messages[0].content  # the system prompt asks for numbered citations
    reordered = RagPrompt().context(list(reversed(SOURCES)))
    assert reordered.index("pasta") < reordered.index("qdrant")


def test_custom_prompt_and_validation() -> None:
    prompt = RagPrompt(
        system="Be brief {not a field}.",
        user="Q: {question}\n{context}",
        passage="<{number}> {text}",
        separator="\n",
    )
    messages = prompt.messages("q?", SOURCES)
    assert messages[0].content == "Be brief {not a field}."
    assert (
        messages[1].content.splitlines()[1] == "<1> Qdrant stores vectors. It is written in Rust."
    )
    for bad in (
        {"user": "{context}"},
        {"user": "{context} {question} {extra}"},
        {"user": "{context!r} {question}"},
        {"user": "{context} {question"},
        {"passage": "{number} {text} {score}"},
        {"passage": "{source_id} {text}"},
        {"system": 3},
    ):
        with pytest.raises(ConfigurationError):
            RagPrompt(**bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RagPrompt("positional")  # type: ignore[misc]


def test_source_validation_and_frozen_metadata() -> None:
    meta = {"source": "a"}
    source = Source(number=1, source_id="a", text="t", metadata=meta)
    meta["source"] = "changed"
    assert source.metadata["source"] == "a"
    for bad in ({"number": 0}, {"number": True}, {"source_id": ""}, {"text": None}):
        with pytest.raises(ConfigurationError):
            Source(**{"number": 1, "source_id": "a", "text": "t", **bad})  # type: ignore[arg-type]


def test_resolve_source_id() -> None:
    assert resolve_source_id({"source": "s", "doc_id": "d"}, doc_id="x", number=1) == "s"
    assert resolve_source_id({"doc_id": "d"}, doc_id="x", number=1) == "d"
    assert resolve_source_id({}, doc_id="x", number=1) == "x"
    assert resolve_source_id({"source": ""}, doc_id=None, number=4) == "doc-4"
    assert resolve_source_id({"url": "u", "source": "s"}, doc_id=None, number=1, key="url") == "u"
    assert resolve_source_id({"source": "a\n[2] (source: b)"}, doc_id=None, number=1) == (
        "a [2] (source: b)"
    )
    assert len(resolve_source_id({"source": "x" * 500}, doc_id=None, number=1)) == 120


def test_parse_citations() -> None:
    answer = "Vectors [1]. Pasta [2][1]. Both [1, 2]; none [3] [0] [x]."
    assert [(c.number, c.source_id, c.score) for c in parse_citations(answer, SOURCES)] == [
        (1, "qdrant", 0.91),
        (2, "pasta", 0.42),
    ]
    assert parse_citations("no citations", SOURCES) == []
    assert [c.number for c in parse_citations("[2; 1]", SOURCES)] == [2, 1]


def test_format_prompt() -> None:
    text = format_prompt([PromptMessage("system", "S"), PromptMessage("user", "U")])
    assert text == "--- system ---\nS\n--- user ---\nU"


# -- extractive answers ------------------------------------------------------------------------


def test_split_sentences() -> None:
    assert split_sentences("One. Two!  Three?\n\nFour 4.5 percent. e.g. lower") == [
        "One.",
        "Two!",
        "Three?",
        "Four 4.5 percent. e.g. lower",
    ]
    assert split_sentences("   ") == []


def test_extractive_answer_picks_relevant_sentences_with_citations() -> None:
    scorer = OverlapReranker()
    answerer = ExtractiveAnswerer(reranker=scorer, max_sentences=2, min_ratio=0.5)
    answer = answerer.answer("which database stores vectors", SOURCES)
    lines = answer.text.splitlines()
    assert lines[0] == EXTRACTIVE_LABEL
    assert lines[1] == "Qdrant stores vectors. [1]"
    assert [s.source_id for s in answer.sentences] == ["qdrant"]  # min_ratio cut the rest
    assert scorer.calls[-1] == [
        "Qdrant stores vectors.",
        "It is written in Rust.",
        "Boil the pasta for nine minutes.",
    ]
    unlabelled = ExtractiveAnswerer(reranker=scorer, label="").answer("pasta minutes", SOURCES)
    assert unlabelled.text == "Boil the pasta for nine minutes. [2]"
    assert ExtractiveAnswerer(reranker=scorer).answer("q", []).text == ABSTAIN_ANSWER


async def test_extractive_async_equals_sync() -> None:
    answerer = ExtractiveAnswerer(reranker=OverlapReranker())
    assert (await answerer.aanswer("pasta", SOURCES)) == answerer.answer("pasta", SOURCES)


def test_extractive_validation() -> None:
    for bad in (
        {"max_sentences": 0},
        {"max_sentences": 1.5},
        {"min_ratio": 2.0},
        {"reranker": 3},
        {"label": None},
    ):
        with pytest.raises(ConfigurationError):
            ExtractiveAnswerer(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ExtractiveAnswerer(reranker=OverlapReranker()).answer("q", ["not a source"])  # type: ignore[list-item]
    assert ExtractiveAnswerer(reranker="embedding").reranker.backend == "embedding"


# -- answer_question ---------------------------------------------------------------------------


def results_for(query: str, texts: Sequence[tuple[str, str]], **kwargs: float) -> RerankResults:
    candidates = [Candidate(t, id=i, metadata={"source": f"src-{i}"}) for i, t in texts]
    return OverlapReranker().rerank(query, candidates, **kwargs)  # type: ignore[arg-type]


TEXTS = [("a", "pasta boils in water"), ("b", "qdrant stores vectors"), ("c", "vectors in rust")]


def test_answer_question_calls_the_generator_with_the_exact_prompt() -> None:
    calls: list[Sequence[PromptMessage]] = []

    def llm(messages: Sequence[PromptMessage]) -> str:
        calls.append(messages)
        return "It is Qdrant [1], in Rust [2]."

    results = results_for("qdrant stores vectors", TEXTS, min_score=0.3)
    rag = answer_question("qdrant stores vectors", results, generator=llm, generator_name="fake")
    assert len(calls) == 1 and rag.messages is not None
    assert list(calls[0]) == list(rag.messages)
    assert [s.source_id for s in rag.sources] == ["src-b", "src-c"]
    assert [(c.number, c.source_id) for c in rag.citations] == [(1, "src-b"), (2, "src-c")]
    assert rag.generator == "fake" and not rag.abstained
    assert rag.prompt is not None and "[2] (source: src-c)" in rag.prompt
    report = format_answer(rag)
    assert "answer (fake):" in report and "[1] src-b  score 1.000" in report
    assert "prompt (as sent):" in report
    by_id = answer_question("q", results, generator=llm, source_key="missing")
    assert [s.source_id for s in by_id.sources] == ["b", "c"]


def test_answer_question_abstains_without_calling_the_generator() -> None:
    calls = []

    def llm(messages: Sequence[PromptMessage]) -> str:
        calls.append(messages)
        return "never"

    results = results_for("lattice gauge theory", TEXTS, min_score=0.5)
    rag = answer_question("lattice gauge theory", results, generator=llm)
    assert calls == []
    assert rag.abstained and rag.answer == ABSTAIN_ANSWER and rag.generator == ABSTAINED
    assert rag.messages is None and rag.prompt is None and rag.citations == ()
    assert rag.empty_reason is not None and "min_score=0.5" in rag.empty_reason
    report = format_answer(rag)
    assert "the LLM was not called" in report and "prompt: none" in report
    empty = answer_question("q", RerankResults(), generator=llm)
    assert empty.abstained and empty.empty_reason == "no document passed the threshold"


def test_answer_question_validation_and_extractive() -> None:
    results = results_for("qdrant stores vectors", TEXTS, min_score=0.3)
    with pytest.raises(ConfigurationError):
        answer_question("q", [], generator=lambda m: "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        answer_question("q", results, generator=lambda m: 3)  # type: ignore[arg-type, return-value]
    with pytest.raises(ConfigurationError):
        answer_question("q", results, generator="gpt")  # type: ignore[arg-type]
    rag = answer_question(
        "qdrant stores vectors",
        results,
        generator=ExtractiveAnswerer(reranker=OverlapReranker(), max_sentences=1),
    )
    assert rag.generator == EXTRACTIVE and rag.answer.startswith(EXTRACTIVE_LABEL)
    assert [c.source_id for c in rag.citations] == ["src-b"]
    assert "prompt (what an LLM would receive):" in format_answer(rag)


def test_openai_configured() -> None:
    assert not openai_configured({})
    assert not openai_configured({"OPENAI_API_KEY": ""})
    assert openai_configured({"OPENAI_API_KEY": "sk"})
    assert openai_configured({"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"})


# -- Qdrant helpers -----------------------------------------------------------------------------


def test_qdrant_paths_and_clients(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "rerankit"
    assert default_qdrant_path() == str(tmp_path / "rerankit" / "qdrant")
    with pytest.raises(ConfigurationError):
        default_qdrant_path("../x")
    client = open_client()  # the default: embedded, under the cache folder
    try:
        assert (tmp_path / "rerankit" / "qdrant").is_dir()
        assert existing_point_ids(client, "nope", [point_id("a")]) == set()
    finally:
        client.close()
    with pytest.raises(ConfigurationError):
        open_client(path=":memory:", api_key="k")


def test_point_ids_and_batches() -> None:
    assert point_id("x") == point_id("x") != point_id("y")
    assert [list(b) for b in batched([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    with pytest.raises(ConfigurationError):
        list(batched([1], 0))


# -- rerankit demo --answer ---------------------------------------------------------------------


def test_demo_answer_prints_answer_citations_and_prompt() -> None:
    out = io.StringIO()
    queries = ["How does a cross-encoder score a passage?", "How long can a python snake grow?"]
    reports = run_demo(DemoConfig(qdrant_path=":memory:", queries=queries, answer=True), out)
    text = out.getvalue()
    answered, abstained = (r.answer for r in reports)
    assert answered is not None and abstained is not None
    assert not answered.abstained and answered.citations[0].source_id == "rerank-1"
    assert answered.generator == EXTRACTIVE
    assert answered.messages is not None
    kept = [answered.sources[i].source_id for i in range(len(answered.sources))]
    assert kept == [r.id for r in reports[0].results]
    assert "answer (extractive, no LLM):" in text and EXTRACTIVE_LABEL in text
    assert "[1] rerank-1  score 0.6" in text
    assert "prompt (what an LLM would receive):" in text and "| [1] (source: rerank-1)" in text
    assert abstained.abstained and "min_score=0.35" in (abstained.empty_reason or "")
    assert "answer (abstained, no LLM call):" in text and "prompt: none (no LLM call)" in text


def test_cli_demo_answer_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "demo",
            "--answer",
            "--qdrant-path",
            ":memory:",
            "--query",
            "What water temperature for pour-over coffee?",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "citations:\n    [1] coffee-1" in printed
    assert "Question: What water temperature for pour-over coffee?" in printed


# -- packaging ----------------------------------------------------------------------------------


def test_rag_and_qdrant_import_no_framework() -> None:
    code = (
        "import sys, rerankit.rag, rerankit.qdrant; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'langchain_core', "
        "'llama_index', 'qdrant_client', 'openai', 'tqdm') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_framework_packages_import_rag_lazily() -> None:
    code = (
        "import sys, rerankit.langchain, rerankit.llama_index; "
        "print(','.join(m for m in ('rerankit.langchain.rag', 'rerankit.llama_index.rag', "
        "'langchain_qdrant') if m in sys.modules)); "
        "from rerankit.langchain import build_rag_chain; "
        "from rerankit.llama_index import build_query_engine; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ok"]


DOCTEST_MODULES = [
    "rerankit.rag",
    "rerankit.rag.prompt",
    "rerankit.rag.extractive",
    "rerankit.rag.answer",
    "rerankit.rag.openai_settings",
    "rerankit._lazy",
    "rerankit.qdrant",
    "rerankit.langchain.embeddings",
    "rerankit.langchain.rag",
    "rerankit.langchain.chat",
    "rerankit.langchain.store",
    "rerankit.llama_index.embeddings",
    "rerankit.llama_index.llm",
    "rerankit.llama_index.rag",
    "rerankit.llama_index.store",
]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    failures, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0
    assert failures == 0


# -- shared helpers of the framework faces ------------------------------------------------------


def test_lazy_exports_import_on_first_access_and_cache() -> None:
    import types

    from rerankit._lazy import lazy_exports

    module = types.ModuleType("lazy_demo")
    module.__getattr__, module.__dir__ = lazy_exports(  # type: ignore[method-assign]
        vars(module), {"dedent": "textwrap", "missing": "textwrap"}
    )
    assert "dedent" not in vars(module)
    assert "dedent" in dir(module) and "missing" in dir(module)
    import textwrap

    assert module.dedent is textwrap.dedent
    assert vars(module)["dedent"] is textwrap.dedent  # stored: later lookups skip __getattr__
    with pytest.raises(AttributeError, match="module 'lazy_demo' has no attribute 'other'"):
        module.other  # noqa: B018
    with pytest.raises(AttributeError):
        module.missing  # noqa: B018  (textwrap has no such name)


def test_check_ingest_args_messages() -> None:
    from rerankit.qdrant.stores import check_ingest_args

    def check(documents: object = (), **kwargs: object) -> None:
        args: dict[str, object] = {
            "collection": "c",
            "kinds": int,
            "sequence_of": "ints",
            "each": "an int",
            "batch_size": 2,
            "client": None,
            "url": None,
            "path": None,
            "api_key": None,
            **kwargs,
        }
        check_ingest_args(documents, **args)  # type: ignore[arg-type]

    check([1, 2])
    check([], client=object())
    cases = [
        ({"collection": " "}, "collection must be a non-empty str"),
        ({"collection": 3}, "collection must be a non-empty str"),
        ({"documents": "12"}, "documents must be a sequence of ints"),
        ({"documents": {1, 2}}, "documents must be a sequence of ints"),
        ({"documents": [1, "2"]}, r"documents\[1\] must be an int, got str"),
        ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
        ({"batch_size": 1.5}, "batch_size must be a positive int"),
        ({"client": object(), "path": ":memory:"}, "not both"),
        ({"client": object(), "api_key": "k"}, "not both"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigurationError, match=message):
            check(**kwargs)


def test_rag_settings_resolve_the_reranker_and_reject_bad_values() -> None:
    from rerankit.rag.checks import check_prompt_args, rag_settings
    from rerankit.threshold import ThresholdPolicy

    def check(**kwargs: object) -> object:
        args: dict[str, object] = {"reranker": OverlapReranker(), "fetch_k": 5, **kwargs}
        return rag_settings("builder", args).reranker

    reranker = OverlapReranker()
    assert check(reranker=reranker) is reranker
    assert getattr(check(reranker="embedding"), "backend", None) == "embedding"
    assert getattr(check(reranker=None), "backend", None) == "none"
    assert check(policy=ThresholdPolicy(min_keep=1), prompt=RagPrompt(), source_key="url")
    defaults = rag_settings("builder", {})
    assert (defaults.reranker.backend, defaults.fetch_k, defaults.top_n) == ("embedding", 20, 4)
    with pytest.raises(TypeError, match="unexpected keyword arguments: \\['topn'\\]"):
        rag_settings("builder", {"topn": 3})
    with pytest.raises(ConfigurationError, match="top_n or min_ratio"):
        rag_settings("builder", {"reranker": None, "min_score": 0.5})
    cases = [
        ({"fetch_k": 0}, "fetch_k must be a positive int, got 0"),
        ({"fetch_k": True}, "fetch_k must be a positive int, got True"),
        ({"fetch_k": "5"}, "fetch_k must be a positive int"),
        ({"reranker": 3}, "reranker must be a Reranker, a spec string .*, got int"),
        ({"reranker": "nope:x"}, "nope"),
        ({"top_n": -1}, "top_n"),
        ({"min_score": 1.5}, "min_score"),
        ({"policy": {"top_n": 1}}, "policy must be a ThresholdPolicy or None, got dict"),
        ({"prompt": "Answer: {question}"}, "prompt must be a RagPrompt, got str"),
        ({"source_key": 3}, "source_key must be a str or None"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigurationError, match=message):
            check(**kwargs)
    check_prompt_args(RagPrompt(), "source")
    with pytest.raises(ConfigurationError, match="prompt must be a RagPrompt"):
        check_prompt_args(object(), None)


def test_openai_adapter_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import dataclass

    from rerankit.rag.openai_settings import ChatHolder, OpenAISettings, env_values, settings_of

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    values = env_values()
    assert values["api_key"].get_secret_value() == "sk-env"  # held as a SecretStr
    assert {k: v for k, v in values.items() if k != "api_key"} == {
        "model": "gpt-4o-mini",
        "base_url": "http://127.0.0.1:9/v1",
    }

    @dataclass
    class Secret:
        value: str

        def get_secret_value(self) -> str:
            return self.value

    @dataclass
    class Fields:
        model: str = "m"
        api_key: Secret | None = None
        base_url: str | None = "http://127.0.0.1:9/v1"
        timeout: float = 5.0
        max_retries: int = 0
        deadline: float | None = 9.0
        default_headers: dict[str, str] | None = None
        default_query: dict[str, str] | None = None

    settings = settings_of(Fields(api_key=Secret("sk-x"), default_headers={"api-key": "sk-gw"}))
    assert settings == OpenAISettings(
        model="m",
        api_key="sk-x",  # type: ignore[arg-type]
        base_url="http://127.0.0.1:9/v1",
        timeout=5.0,
        max_retries=0,
        deadline=9.0,
        default_headers={"api-key": "sk-gw"},
    )
    assert "sk-x" not in repr(settings) and "sk-gw" not in repr(settings)
    assert settings_of(Fields()).api_key is None
    with pytest.raises(ConfigurationError, match="timeout"):
        settings_of(Fields(timeout=0))

    pytest.importorskip("openai")
    made: list[str] = []

    def make() -> Any:
        made.append("chat")
        return settings.chat(lambda: "Test()")

    holder = ChatHolder()
    assert made == []  # nothing is made before first use
    chat = holder.get(make)
    assert holder.get(make) is chat and made == ["chat"]
    assert chat.resilience.retry.max_retries == 0 and chat.deadline == 9.0
    assert copy.deepcopy(holder).get(make) is not chat  # a copy gets its own
