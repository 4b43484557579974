"""Tiny random cross-encoders with MiniLM's tokenizer, and a query with documents of very
different lengths, for tests of the local fast paths.

A DistilBERT stands in for an architecture that the fast paths do not take; XLM-RoBERTa and
RoBERTa cover the RoBERTa family (bge rerankers).
"""

from __future__ import annotations

from pathlib import Path

QUERY = "which database stores vectors?"
# Very different lengths, so one batch pads its short pairs a lot.
DOCS = [
    "Paris.",
    "Qdrant is a vector database written in Rust.",
    "Boil the pasta for nine minutes in salted water, then drain it and add the sauce.",
    " ".join(f"the river runs past the old mill and field number {i} ." for i in range(12)),
    "Cats sleep.",
    "A cross-encoder scores the query and the passage jointly, token by token, in one pass "
    "through every layer of the transformer.",
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "ok",
]

# The RoBERTa family: (config class, model class) names in transformers.
ROBERTA_FAMILY = {
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForSequenceClassification"),
    "roberta": ("RobertaConfig", "RobertaForSequenceClassification"),
}


def build_distilbert(folder: Path, minilm_path: str) -> str:
    """A tiny random DistilBERT cross-encoder (1 logit) with MiniLM's tokenizer."""
    import torch
    import transformers

    torch.manual_seed(7)
    config = transformers.DistilBertConfig(
        vocab_size=30522, dim=64, hidden_dim=128, n_layers=2, n_heads=4, num_labels=1
    )
    model = transformers.DistilBertForSequenceClassification(config).eval()
    path = folder / "tiny-distilbert-ce"
    model.save_pretrained(str(path))
    transformers.AutoTokenizer.from_pretrained(minilm_path).save_pretrained(str(path))
    return str(path)


def build_roberta(family: str, folder: Path, minilm_path: str) -> str:
    """A tiny random RoBERTa-family cross-encoder (1 logit) with MiniLM's tokenizer."""
    import torch
    import transformers

    config_name, model_name = ROBERTA_FAMILY[family]
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path)
    torch.manual_seed(11)
    config = getattr(transformers, config_name)(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
        initializer_range=0.2,  # not 0.02: logits that spread over a few units
    )
    model = getattr(transformers, model_name)(config).eval()
    path = folder / f"tiny-{family}-ce"
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return str(path)
