"""Fitted calibrations: the fit recovers a known link, fingerprints name the model and its
score options, files round-trip, and rerankers load them (file, spec, calibrations folder).

The model boundary is a fake reranker whose raw score is the number in each text, so the
calibrated score a reranker returns can be checked against the fitted function exactly.
"""

from __future__ import annotations

import json
import math
import random
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerankit import (
    CachedReranker,
    CalibrationError,
    Candidate,
    ConfigurationError,
    EmbeddingReranker,
    FusionReranker,
    PassthroughReranker,
    Reranker,
    ScoreBatch,
    ScoreSpace,
    Sigmoid,
    from_spec,
    register_backend,
)
from rerankit.calibrate import (
    FittedCalibration,
    ModelFingerprint,
    calibration_path,
    expected_calibration_error,
    fit_calibration,
    load_calibration,
    model_fingerprint,
)
from rerankit.calibration import Isotonic
from rerankit.errors import CalibrationMismatchWarning


class Numbers(Reranker):
    """Raw score = the number the text holds (plus ``offset``, a score-changing option)."""

    backend = "numbers"
    score_space = ScoreSpace.COSINE
    pointwise = True

    def __init__(self, offset: float = 0.0, batch_size: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offset = offset
        self.batch_size = batch_size

    @property
    def model_name(self) -> str:
        return "number-reader"

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return ScoreBatch([float(c.text) + self.offset for c in candidates])


class RankNumbers(Numbers):
    backend = "rank-numbers"
    score_space = ScoreSpace.RANK


register_backend("numbers-test", Numbers, replace=True)


def synthetic(link: Any, n: int = 6000, seed: int = 0) -> tuple[list[float], list[int], list[str]]:
    rng = random.Random(seed)
    raw = [rng.uniform(-1.0, 1.0) for _ in range(n)]
    labels = [int(rng.random() < link(x)) for x in raw]
    return raw, labels, [f"q{i // 50}" for i in range(n)]


def fitted_file(tmp_path: Path, reranker: Reranker, function: Any = None) -> Path:
    calibration = FittedCalibration(
        function or Sigmoid(scale=4.0, shift=-2.0),
        model_fingerprint(reranker),
        score_space=reranker.score_space.value,
        fit={"method": "platt"},
    )
    return calibration.save(tmp_path / "numbers.json")


# -- fitting -----------------------------------------------------------------------------------


def test_platt_recovers_a_logistic_link() -> None:
    truth = Sigmoid(scale=3.0, shift=-1.0)
    raw, labels, groups = synthetic(truth)
    fit = fit_calibration(raw, labels, groups, default=Sigmoid(), method="platt")
    assert isinstance(fit.calibration, Sigmoid)
    assert fit.calibration.scale == pytest.approx(3.0, abs=0.35)
    assert fit.calibration.shift == pytest.approx(-1.0, abs=0.15)
    grid = [i / 10 - 1 for i in range(21)]
    assert max(abs(fit.calibration(x) - truth(x)) for x in grid) < 0.04
    assert fit.ece_after < 0.03 < fit.ece_before  # the default sigmoid(raw) is off


def test_auto_picks_isotonic_for_a_step_link_and_recovers_it() -> None:
    def step(x: float) -> float:
        return 0.1 if x < 0.2 else 0.85

    raw, labels, groups = synthetic(step)
    fit = fit_calibration(raw, labels, groups, default=Sigmoid())
    assert fit.method == "isotonic"
    assert isinstance(fit.calibration, Isotonic)
    assert fit.heldout_log_loss["isotonic"] < fit.heldout_log_loss["platt"]
    for x in (-0.9, -0.5, 0.0, 0.4, 0.7, 0.95):
        assert fit.calibration(x) == pytest.approx(step(x), abs=0.06)
    assert fit.ece_after < 0.03
    assert fit.pairs == 6000 and fit.queries == 120 and fit.folds == 5


def test_scores_against_relevance_get_a_flat_map_not_a_reversed_one() -> None:
    raw, labels, groups = synthetic(lambda x: 0.9 if x < 0 else 0.1)
    fit = fit_calibration(raw, labels, groups, default=Sigmoid(), method="platt")
    assert isinstance(fit.calibration, Sigmoid) and fit.calibration.scale == 0.0
    assert fit.calibration(-1.0) == fit.calibration(1.0)


@settings(max_examples=25, deadline=None, database=None)
@given(
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=20, max_size=200),
    st.randoms(use_true_random=False),
)
def test_fitted_maps_never_reorder(raw: list[float], rng: random.Random) -> None:
    labels = [int(rng.random() < 0.4) for _ in raw]
    if len(set(labels)) < 2:
        labels[0], labels[1] = 0, 1
    groups = [f"q{i % 4}" for i in range(len(raw))]
    for method in ("platt", "isotonic"):
        fit = fit_calibration(raw, labels, groups, default=Sigmoid(), method=method, folds=2)
        values = [fit.calibration(x) for x in sorted(raw)]
        assert values == sorted(values)
        assert all(0.0 <= v <= 1.0 for v in values)


def test_ece_of_known_bins() -> None:
    assert expected_calibration_error([0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0]) == pytest.approx(0.25)
    assert expected_calibration_error([0.25] * 4, [1, 0, 0, 0]) == 0.0


@pytest.mark.parametrize(
    ("labels", "groups", "match"),
    [
        ([0, 0, 0, 0], ["a", "a", "b", "b"], "none of the 4 scored candidates is relevant"),
        ([1, 1, 1, 1], ["a", "a", "b", "b"], "is non-relevant"),
        ([1, 0, 1, 0], ["a", "a", "a", "a"], "one query"),
    ],
)
def test_unfittable_data_says_why(labels: list[int], groups: list[str], match: str) -> None:
    with pytest.raises(CalibrationError, match=match):
        fit_calibration([0.1, 0.2, 0.3, 0.4], labels, groups, default=Sigmoid())


# -- fingerprints ------------------------------------------------------------------------------


def test_fingerprint_changes_with_the_model_and_score_options(tmp_path: Path) -> None:
    base = model_fingerprint(EmbeddingReranker())
    assert base.backend == "embedding"
    assert base.model == "sentence-transformers/all-MiniLM-L6-v2"  # never a site-packages path
    assert base.revision is not None and base.revision.startswith("sha256:")
    assert model_fingerprint(EmbeddingReranker(max_length=128)).digest != base.digest
    assert model_fingerprint(EmbeddingReranker(query_prompt="query: ")).digest != base.digest
    # Options that do not change scores, and numeric precision, leave it alone.
    same = EmbeddingReranker(batch_size=3, device="cpu", dedupe=False)
    assert model_fingerprint(same).digest == base.digest
    other = tmp_path / "my-model"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"weights v1")
    first = model_fingerprint(EmbeddingReranker(model=other))
    assert first.model == "my-model" and first.digest != base.digest
    (other / "model.safetensors").write_bytes(b"weights v2, retrained")
    second = model_fingerprint(EmbeddingReranker(model=other))
    assert second.revision != first.revision
    assert second.differences(first) == [
        f"revision: {second.revision!r} here, {first.revision!r} in the other"
    ]


def test_fingerprint_of_composites_covers_their_members() -> None:
    fused = model_fingerprint(FusionReranker([Numbers(), Numbers(offset=1.0)]))
    assert [m.options["offset"] for m in fused.members] == [0.0, 1.0]
    assert fused.digest != model_fingerprint(FusionReranker([Numbers(), Numbers()])).digest
    assert model_fingerprint(FusionReranker([Numbers(), Numbers()], method="rrf")).digest != (
        model_fingerprint(FusionReranker([Numbers(), Numbers()])).digest
    )
    inner = Numbers(offset=2.0)
    assert model_fingerprint(CachedReranker(reranker=inner)) == model_fingerprint(inner)


def test_fingerprint_round_trips_through_json() -> None:
    fp = model_fingerprint(FusionReranker([Numbers(), Numbers(offset=0.5)], weights=[1, 2]))
    back = ModelFingerprint.from_dict(json.loads(json.dumps(fp.to_dict())))
    assert back == fp and back.digest == fp.digest


# -- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [Sigmoid(scale=7.9, shift=-5.7), Isotonic((0.0, 0.3, 0.9), (0.02, 0.4, 0.97))],
)
def test_a_file_round_trips(tmp_path: Path, function: Any) -> None:
    reranker = Numbers()
    written = fitted_file(tmp_path, reranker, function)
    loaded = load_calibration(written)
    assert loaded.function == function
    assert loaded.fingerprint == model_fingerprint(reranker)
    assert loaded.source == str(written)
    for x in (-1.0, 0.1, 0.5, 2.0):
        assert loaded(x) == function(x)
    folder_copy = FittedCalibration.from_dict(loaded.to_dict()).save(tmp_path)
    assert folder_copy == calibration_path(loaded.fingerprint, tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "cannot read calibration file"),
        ('{"format": "other/1"}', "not a rerankit calibration file"),
        (
            '{"format": "rerankit-calibration/1", "calibration": {"kind": "spline"}, '
            '"fingerprint": {"backend": "x", "model": "y"}}',
            "kind must be 'platt' or 'isotonic'",
        ),
        (
            '{"format": "rerankit-calibration/1", "calibration": {"kind": "platt", "scale": -1,'
            ' "shift": 0}, "fingerprint": {"backend": "x", "model": "y"}}',
            "would reorder",
        ),
        (
            '{"format": "rerankit-calibration/1", "calibration": {"kind": "isotonic", '
            '"x": [0, 1], "y": [0.9, 0.1]}, "fingerprint": {"backend": "x", "model": "y"}}',
            "non-decreasing",
        ),
    ],
)
def test_a_bad_file_is_one_clear_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=match):
        Numbers(calibration=str(path))


def test_a_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"does not exist.*rerankit calibrate"):
        Numbers(calibration=tmp_path / "missing.json")


# -- loading -----------------------------------------------------------------------------------


def test_a_loaded_file_makes_scores_its_probabilities(tmp_path: Path) -> None:
    function = Sigmoid(scale=4.0, shift=-2.0)
    reranker = Numbers(calibration=str(fitted_file(tmp_path, Numbers(), function)))
    assert reranker.custom_calibration
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationMismatchWarning)
        results = reranker.rerank("q", ["0.9", "0.2", "0.6"], min_score=0.5)
    assert [(r.text, r.score) for r in results] == [
        ("0.9", function(0.9)),
        ("0.6", function(0.6)),
    ]
    assert [(d.index, d.reason) for d in results.dropped] == [(1, "min_score")]


def test_min_score_applies_to_rank_scores_once_calibrated(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="rank-derived"):
        RankNumbers().rerank("q", ["0.1"], min_score=0.5)
    reranker = RankNumbers(calibration=fitted_file(tmp_path, RankNumbers()))
    assert [r.text for r in reranker.rerank("q", ["0.1", "0.8"], min_score=0.5)] == ["0.8"]
    assert [r.text for r in PassthroughReranker().rerank("q", ["a", "b"], top_n=1)] == ["a"]


def test_a_mismatched_fingerprint_warns_once_and_says_what_changed(tmp_path: Path) -> None:
    path = fitted_file(tmp_path, Numbers())
    reranker = Numbers(offset=0.25, calibration=path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reranker.rerank("q", ["0.5"])
        reranker.rerank("q", ["0.6"])
        Numbers(offset=0.25, calibration=path).rerank("q", ["0.7"])  # same file, same model
    caught = [w for w in caught if issubclass(w.category, CalibrationMismatchWarning)]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and "option offset: 0.25 now, 0.0 when fitted" in message
    assert caught[0].filename == __file__  # points at the caller's line


def test_the_spec_option_loads_a_file(tmp_path: Path) -> None:
    path = fitted_file(tmp_path, Numbers())
    reranker = from_spec(f"numbers-test?calibration={path}")
    assert isinstance(reranker.calibration, FittedCalibration)
    assert reranker.rerank("q", ["1.0"])[0].score == Sigmoid(4.0, -2.0)(1.0)


def test_auto_finds_the_file_of_its_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "calibrations"
    monkeypatch.setenv("RERANKIT_CALIBRATIONS", str(folder))
    mine = FittedCalibration(Sigmoid(scale=9.0), model_fingerprint(Numbers()), "cosine")
    folder.mkdir()
    mine.save(folder)
    theirs = FittedCalibration(Sigmoid(scale=1.0), model_fingerprint(Numbers(offset=3.0)))
    theirs.save(folder)
    reranker = Numbers(calibration="auto")
    assert reranker.rerank("q", ["0.2"])[0].score == Sigmoid(scale=9.0)(0.2)
    assert Numbers(offset=3.0, calibration=folder).rerank("q", ["0.2"])[0].score == (
        Sigmoid(scale=1.0)(3.2)
    )
    cached = CachedReranker(reranker=Numbers(calibration="auto"))  # resolved when wrapped
    assert cached.rerank("q", ["0.2"])[0].score == Sigmoid(scale=9.0)(0.2)
    with pytest.raises(CalibrationError, match=rf"no calibration for numbers.*{folder}"):
        Numbers(offset=1.0, calibration="auto").rerank("q", ["0.2"])


def test_default_folder_is_under_the_rerankit_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from rerankit.calibrate import calibrations_dir

    monkeypatch.delenv("RERANKIT_CALIBRATIONS", raising=False)
    monkeypatch.setenv("RERANKIT_CACHE_DIR", "/somewhere/cache")
    assert calibrations_dir() == Path("/somewhere/cache/calibrations")


def test_uncalibrated_rerankers_are_unchanged() -> None:
    reranker = Numbers()
    assert not reranker.custom_calibration
    assert [r.score for r in reranker.rerank("q", ["0.4", "1.7", "-0.2"])] == [1.0, 0.4, 0.0]
    assert math.isclose(Numbers(calibration=Sigmoid()).rerank("q", ["0"])[0].score, 0.5)


# -- the command line, and the components loading what it writes -------------------------------

TOPICS = [
    ("qdrant", "which database stores vectors", "Qdrant is a vector database for embeddings."),
    ("pasta", "how long to boil pasta", "Boil the pasta in salted water for nine minutes."),
    ("paris", "what is the capital of france", "Paris is the capital of France."),
    ("coffee", "best water temperature for coffee", "Brew coffee with water at 93 degrees."),
    ("bm25", "how does bm25 rank documents", "BM25 ranks documents by term frequency."),
    ("tides", "what causes ocean tides", "Tides are caused by the gravity of the moon."),
    ("bees", "how do bees make honey", "Bees make honey from the nectar of flowers."),
    ("rust", "why does iron rust", "Iron rusts when it reacts with oxygen and water."),
]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A BEIR folder (one relevant passage per query) and a run listing every passage, the
    relevant one first for six queries and third for two."""
    root = tmp_path_factory.mktemp("calibrate") / "toy"
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as corpus, (root / "queries.jsonl").open("w") as qs:
        for key, query, text in TOPICS:
            corpus.write(json.dumps({"_id": key, "title": "", "text": text}) + "\n")
            qs.write(json.dumps({"_id": f"q-{key}", "text": query}) + "\n")
    rows = [f"q-{key}\t{key}\t1" for key, _, _ in TOPICS]
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows))
    lines = []
    keys = [k for k, _, _ in TOPICS]
    for i, key in enumerate(keys):
        others = [k for k in keys if k != key]
        order = [key, *others] if i < 6 else [*others[:2], key, *others[2:]]
        lines += [f"q-{key} Q0 {d} {r + 1} {10.0 - r} toy" for r, d in enumerate(order)]
    run = root / "run.trec"
    run.write_text("\n".join(lines) + "\n")
    return root, run


def calibrate_cli(*args: str) -> int:
    from rerankit.cli import main

    return main(["calibrate", *args, "--quiet", "--no-cache"])


def test_the_cli_writes_a_file_the_components_load(
    toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rerankit.langchain import RerankCompressor
    from rerankit.llama_index import RerankPostprocessor

    root, run = toy
    output = tmp_path / "none.json"
    code = calibrate_cli(
        str(root), "--run", str(run), "--split", "train", "--reranker", "none",
        "--output", str(output), "--folds", "4", "--plot", str(tmp_path / "plot.png"),
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "64 candidates of 8 queries, 8 relevant" in printed and str(output) in printed
    assert (tmp_path / "plot.png").stat().st_size > 0
    fitted = load_calibration(output)
    assert fitted.fingerprint == model_fingerprint(PassthroughReranker())
    assert fitted.fit["split"] == "train" and fitted.fit["pairs"] == 64
    # Position 1 holds the relevant passage 6 times in 8: P(relevant) there is high, and it
    # is the only position a threshold of 0.5 keeps.
    first = fitted(1.0)
    assert first > 0.5 > fitted(1.0 - 2 / 8)

    from langchain_core.documents import Document

    spec = f"none?calibration={output}"
    compressor = RerankCompressor(reranker=spec, min_score=0.5)  # rank scores, now probabilities
    docs = [Document("first hit", id="a"), Document("second", id="b"), Document("third", id="c")]
    kept = compressor.compress_documents(docs, "q")
    assert [d.id for d in kept] == ["a"]
    assert kept[0].metadata["relevance_score"] == fitted(1.0)  # 3 candidates: 1 - 0/3

    from llama_index.core.schema import NodeWithScore, TextNode

    post = RerankPostprocessor(reranker=spec, min_score=0.5)
    nodes = [NodeWithScore(node=TextNode(text=t, id_=t), score=1.0) for t in ("x", "y")]
    assert [n.node.node_id for n in post.postprocess_nodes(nodes, query_str="q")] == ["x"]


def test_the_cli_writes_into_the_calibrations_folder_by_default(
    toy: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, run = toy
    monkeypatch.setenv("RERANKIT_CALIBRATIONS", str(tmp_path / "calibrations"))
    args = [str(root), "--run", str(run), "--split", "train", "--reranker", "none"]
    assert calibrate_cli(*args, "--method", "platt", "--folds", "2") == 0
    reranker = PassthroughReranker(calibration="auto")
    fitted = reranker.calibration
    assert isinstance(fitted, FittedCalibration) and fitted.method == "platt"
    assert reranker.rerank("q", ["a", "b"], min_score=0.5).candidates == 2
