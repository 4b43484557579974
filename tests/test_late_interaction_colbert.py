"""ColBERT checkpoints (original Stanford ``HF_ColBERT`` format) in LateInteractionReranker.

No real ColBERT weights are reachable offline, so the tests build a checkpoint in that format
from the MiniLM weights: a BERT whose state dict holds ``bert.*`` keys plus a seeded
``linear.weight`` projection (384 -> 128), a ``config.json`` naming ``HF_ColBERT`` and an
``artifact.metadata``. MaxSim is then recomputed here, independently of rerankit, from
ColBERT's recipe: [CLS] [unused0] query [SEP] padded with [MASK] to ``query_maxlen``;
[CLS] [unused1] document [SEP] cut at ``doc_maxlen``; projection, L2 normalisation, and
document punctuation tokens dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from rerankit import ConfigurationError, LateInteractionReranker, TruncationWarning
from rerankit.backends.colbert import ColbertSettings, detect_encoder

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.model

QUERY_MAXLEN = 32
DOC_MAXLEN = 48
DIM = 128
QUERY = "how do vector databases search embeddings?"
DOCS = [
    "Qdrant, a vector database, searches embeddings with HNSW!",
    "Boil the pasta (nine minutes) in salted water; then drain it...",
    "Paris is the capital of France.",
    "Embeddings? Vectors! Search: fast, approximate, graph-based.",
]
LONG_DOC = " ".join(f"the vector index holds shard number {i} of the data ." for i in range(20))


def _metadata() -> dict[str, object]:
    return {
        "query_token_id": "[unused0]",
        "doc_token_id": "[unused1]",
        "query_token": "[Q]",
        "doc_token": "[D]",
        "query_maxlen": QUERY_MAXLEN,
        "doc_maxlen": DOC_MAXLEN,
        "dim": DIM,
        "similarity": "cosine",
        "mask_punctuation": True,
        "attend_to_mask_tokens": False,
        "interaction": "colbert",
    }


def _copy_with(src: Path, dst: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """A cheap copy of a checkpoint dir: symlinks to every file but those in ``skip``."""
    dst.mkdir(parents=True)
    for item in src.iterdir():
        if item.name not in skip:
            (dst / item.name).symlink_to(item)
    return dst


@pytest.fixture(scope="module")
def projection() -> object:
    generator = torch.Generator().manual_seed(4321)
    return torch.randn(DIM, 384, generator=generator) / 384**0.5


@pytest.fixture(scope="module")
def colbert_dir(
    minilm_path: str, projection: object, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """MiniLM saved as a Stanford-format ColBERT checkpoint."""
    path = tmp_path_factory.mktemp("colbert") / "tiny-colbert"
    bert = transformers.BertModel.from_pretrained(minilm_path)
    bert.save_pretrained(str(path))
    transformers.AutoTokenizer.from_pretrained(minilm_path).save_pretrained(str(path))
    weights = path / "model.safetensors"
    state = safetensors_torch.load_file(str(weights))
    # HF_ColBERT keeps the encoder under ``bert.`` and the projection as ``linear.weight``.
    state = {f"bert.{key}": value for key, value in state.items()}
    state["linear.weight"] = projection.clone()
    safetensors_torch.save_file(state, str(weights), metadata={"format": "pt"})
    config = json.loads((path / "config.json").read_text())
    config["architectures"] = ["HF_ColBERT"]
    (path / "config.json").write_text(json.dumps(config))
    (path / "artifact.metadata").write_text(json.dumps(_metadata(), indent=2))
    return path


@pytest.fixture(scope="module")
def colbert(colbert_dir: Path) -> LateInteractionReranker:
    reranker = LateInteractionReranker(model=str(colbert_dir), device="cpu")
    reranker.warm_up()
    return reranker


class Reference:
    """ColBERT's encoding, written out here without rerankit."""

    def __init__(self, minilm_path: str, projection: object) -> None:
        self.tok = transformers.AutoTokenizer.from_pretrained(minilm_path)
        self.bert = transformers.BertModel.from_pretrained(minilm_path).eval()
        self.w = projection
        self.punctuation = {
            self.tok.convert_tokens_to_ids(symbol) for symbol in string.punctuation
        } - {self.tok.unk_token_id}

    def _embed(self, ids: list[int], attention: list[int]) -> object:
        with torch.no_grad():
            hidden = self.bert(
                input_ids=torch.tensor([ids]), attention_mask=torch.tensor([attention])
            ).last_hidden_state[0]
        out = hidden @ self.w.T
        return out / out.norm(dim=-1, keepdim=True)

    def query(self, text: str, *, augment: bool = True, marker: bool = True) -> object:
        tok = self.tok
        body = tok(text, add_special_tokens=False)["input_ids"][: QUERY_MAXLEN - 3]
        head = [tok.cls_token_id] + ([tok.convert_tokens_to_ids("[unused0]")] if marker else [])
        ids = [*head, *body, tok.sep_token_id]
        attention = [1] * len(ids)
        if augment:
            pad = QUERY_MAXLEN - len(ids)
            ids += [tok.mask_token_id] * pad
            attention += [0] * pad
        return self._embed(ids, attention)

    def doc(self, text: str, *, mask_punctuation: bool = True, marker: bool = True) -> object:
        tok = self.tok
        body = tok(text, add_special_tokens=False)["input_ids"][: DOC_MAXLEN - 3]
        head = [tok.cls_token_id] + ([tok.convert_tokens_to_ids("[unused1]")] if marker else [])
        ids = [*head, *body, tok.sep_token_id]
        emb = self._embed(ids, [1] * len(ids))
        if mask_punctuation:
            keep = torch.tensor([i not in self.punctuation for i in ids])
            emb = emb[keep]
        return emb

    @staticmethod
    def maxsim(q: object, d: object) -> float:
        # ColBERT's score (sum over query tokens) over the number of query tokens.
        return float((q @ d.T).max(dim=1).values.sum() / q.shape[0])


@pytest.fixture(scope="module")
def reference(minilm_path: str, projection: object) -> Reference:
    return Reference(minilm_path, projection)


# -- detection -------------------------------------------------------------------------------------


def test_auto_detects_colbert_from_config_architecture(colbert_dir: Path, tmp_path: Path) -> None:
    assert detect_encoder(str(colbert_dir)) == "colbert"
    no_metadata = _copy_with(colbert_dir, tmp_path / "no-metadata", skip=("artifact.metadata",))
    assert detect_encoder(str(no_metadata)) == "colbert"
    assert LateInteractionReranker(model=str(no_metadata)).resolved_encoder() == "colbert"


def test_auto_detects_colbert_from_artifact_metadata(colbert_dir: Path, tmp_path: Path) -> None:
    plain_config = _copy_with(colbert_dir, tmp_path / "metadata-only", skip=("config.json",))
    config = json.loads((colbert_dir / "config.json").read_text())
    config["architectures"] = ["BertModel"]
    (plain_config / "config.json").write_text(json.dumps(config))
    assert detect_encoder(str(plain_config)) == "colbert"


def test_plain_sentence_transformers_dir_is_not_colbert(minilm_path: str, tmp_path: Path) -> None:
    assert detect_encoder(minilm_path) == "sentence-transformers"
    # The name is never consulted: a MiniLM directory called like a ColBERT checkpoint.
    disguised = tmp_path / "colbert-ir" / "colbertv2.0"
    disguised.parent.mkdir()
    disguised.symlink_to(minilm_path, target_is_directory=True)
    reranker = LateInteractionReranker(model=str(disguised), device="cpu")
    assert reranker.resolved_encoder() == "sentence-transformers"


def test_sentence_transformers_path_is_used_without_markers(minilm_path: str) -> None:
    from sentence_transformers import SentenceTransformer

    reranker = LateInteractionReranker(model=minilm_path, device="cpu")
    assert reranker.resolved_encoder() == "sentence-transformers"
    assert isinstance(reranker._load(), SentenceTransformer)
    results = reranker.rerank(QUERY, DOCS)
    assert len(results) == len(DOCS)


def test_forced_encoder_skips_detection(colbert_dir: Path, minilm_path: str) -> None:
    assert (
        LateInteractionReranker(
            model=str(colbert_dir), encoder="sentence-transformers"
        ).resolved_encoder()
        == "sentence-transformers"
    )
    forced = LateInteractionReranker(model=minilm_path, encoder="colbert", device="cpu")
    assert forced.resolved_encoder() == "colbert"
    with pytest.raises(ConfigurationError, match=r"linear\.weight"):
        forced.rerank(QUERY, DOCS[:1])


@pytest.mark.parametrize(
    "bad", [{"encoder": "colbertv2"}, {"encoder": ""}, {"max_length": 4}, {"max_length": "64"}]
)
def test_bad_late_interaction_args(bad: dict) -> None:
    with pytest.raises(ConfigurationError):
        LateInteractionReranker(**bad)


def test_settings_from_metadata() -> None:
    settings = ColbertSettings.from_metadata(_metadata())
    assert (settings.query_maxlen, settings.doc_maxlen) == (QUERY_MAXLEN, DOC_MAXLEN)
    assert settings.query_token_id == "[unused0]" and settings.doc_token_id == "[unused1]"
    assert settings.mask_punctuation and not settings.attend_to_mask_tokens
    assert ColbertSettings.from_metadata(None) == ColbertSettings()
    with pytest.raises(ConfigurationError):
        ColbertSettings.from_metadata({"query_maxlen": "32"})
    with pytest.raises(ConfigurationError):
        ColbertSettings.from_metadata({"mask_punctuation": "yes"})


# -- scoring ---------------------------------------------------------------------------------------


def test_colbert_maxsim_matches_independent_computation(
    colbert: LateInteractionReranker, reference: Reference
) -> None:
    assert colbert.resolved_encoder() == "colbert"
    results = colbert.rerank(QUERY, DOCS)
    raw = {r.index: r.raw_score for r in results}
    q = reference.query(QUERY)
    assert q.shape == (QUERY_MAXLEN, DIM)
    for i, doc in enumerate(DOCS):
        expected = reference.maxsim(q, reference.doc(doc))
        assert raw[i] == pytest.approx(expected, abs=1e-4), DOCS[i]
        assert type(raw[i]) is float
    assert results.truncated == 0


def test_reference_is_sensitive_to_each_colbert_rule(
    colbert: LateInteractionReranker, reference: Reference
) -> None:
    """Dropping any one rule changes some score: the match above pins every rule."""
    raw = {r.index: r.raw_score for r in colbert.rerank(QUERY, DOCS)}
    q = reference.query(QUERY)
    variants = {
        "no punctuation masking": lambda doc: reference.maxsim(
            q, reference.doc(doc, mask_punctuation=False)
        ),
        "no [MASK] augmentation": lambda doc: reference.maxsim(
            reference.query(QUERY, augment=False), reference.doc(doc)
        ),
        "no query marker": lambda doc: reference.maxsim(
            reference.query(QUERY, marker=False), reference.doc(doc)
        ),
        "no document marker": lambda doc: reference.maxsim(q, reference.doc(doc, marker=False)),
    }
    for name, score in variants.items():
        worst = max(abs(score(doc) - raw[i]) for i, doc in enumerate(DOCS))
        assert worst > 1e-3, f"{name} gives the same scores: the test would not notice it"


def test_colbert_long_document_truncates_at_doc_maxlen(
    colbert: LateInteractionReranker, reference: Reference
) -> None:
    with pytest.warns(TruncationWarning):
        results = LateInteractionReranker(model=colbert.model, device="cpu").rerank(
            QUERY, [DOCS[0], LONG_DOC]
        )
    by_index = {r.index: r for r in results}
    assert by_index[1].truncated and not by_index[0].truncated
    assert results.truncated == 1
    q = reference.query(QUERY)
    assert by_index[1].raw_score == pytest.approx(
        reference.maxsim(q, reference.doc(LONG_DOC)), abs=1e-4
    )


def test_colbert_window_mode_takes_the_best_window(colbert: LateInteractionReranker) -> None:
    windowed = LateInteractionReranker(
        model=colbert.model, device="cpu", long_documents="window", window_overlap=8
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        results = windowed.rerank(QUERY, [LONG_DOC])
    assert results[0].windows > 1 and not results[0].truncated

    from rerankit.backends._segments import segment

    encoder = colbert._load()
    windows = segment(encoder.tokenizer, [LONG_DOC], DOC_MAXLEN - 3, mode="window", overlap=8).texts
    assert len(windows) == results[0].windows
    assert all(w in LONG_DOC for w in windows)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        per_window = colbert.rerank(QUERY, windows)
    assert results[0].raw_score == pytest.approx(max(r.raw_score for r in per_window), abs=1e-4)


def test_colbert_batching_and_sharing(colbert: LateInteractionReranker) -> None:
    one = LateInteractionReranker(model=colbert.model, device="cpu", batch_size=1)
    assert one._load() is colbert._load()
    a = {r.index: r.raw_score for r in colbert.rerank(QUERY, DOCS)}
    b = {r.index: r.raw_score for r in one.rerank(QUERY, DOCS)}
    for i in a:
        assert b[i] == pytest.approx(a[i], abs=1e-5)


def test_colbert_bf16(colbert: LateInteractionReranker) -> None:
    bf16 = LateInteractionReranker(model=colbert.model, device="cpu", dtype="bfloat16")
    loaded = bf16._load()
    assert loaded is not colbert._load()
    assert next(loaded.bert.parameters()).dtype == torch.bfloat16
    a = {r.index: r.raw_score for r in colbert.rerank(QUERY, DOCS)}
    b = {r.index: r.raw_score for r in bf16.rerank(QUERY, DOCS)}
    for i in a:
        assert b[i] == pytest.approx(a[i], abs=0.05)


# -- hub ids ---------------------------------------------------------------------------------------


def test_colbert_from_hub_cache(
    colbert: LateInteractionReranker, colbert_dir: Path, tmp_path: Path
) -> None:
    """A hub id resolves through huggingface_hub: here an offline cache holding the checkpoint."""
    repo = tmp_path / "hub" / "models--rerankit-test--tiny-colbert"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    shutil.copytree(colbert_dir, snapshot)
    expected = {r.index: r.raw_score for r in colbert.rerank(QUERY, DOCS)}

    script = textwrap.dedent(
        f"""
        import json, sys, warnings
        warnings.simplefilter("ignore")
        from rerankit import LateInteractionReranker
        r = LateInteractionReranker(model="rerankit-test/tiny-colbert", device="cpu")
        res = r.rerank({QUERY!r}, {DOCS!r})
        json.dump({{"encoder": r.resolved_encoder(),
                   "raw": {{r.index: r.raw_score for r in res}}}}, sys.stdout)
        """
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["encoder"] == "colbert"
    for i, value in expected.items():
        assert out["raw"][str(i)] == pytest.approx(value, abs=1e-4)
