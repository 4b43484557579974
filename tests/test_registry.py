"""Backend specs and the backend registry. Constructing a backend loads no model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence

import pytest

import rerankit.registry as registry
from rerankit import (
    Candidate,
    ConfigurationError,
    CrossEncoderReranker,
    EmbeddingReranker,
    LateInteractionReranker,
    Reranker,
    ScoreBatch,
    UnknownBackendError,
    available_backends,
    from_spec,
    parse_spec,
    register_backend,
)

BUILTINS = {"cross-encoder", "embedding", "late-interaction"}


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give each test its own copy of the registry (built-ins included); undone afterwards."""
    available_backends()  # make sure the built-ins are registered before copying
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))


class Constant(Reranker):
    backend = "constant"

    def __init__(self, *, value: float = 0.5, model: str | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.value = value
        self.model = model

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        texts = [c.text for c in candidates]
        return ScoreBatch([self.value] * len(texts))


# -- parse_spec ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("embedding", ("embedding", None, {})),
        ("  embedding  ", ("embedding", None, {})),
        ("embedding:", ("embedding", None, {})),
        ("cross-encoder:some/model", ("cross-encoder", "some/model", {})),
        (
            "cross-encoder:some/model?batch_size=8&dtype=float32",
            ("cross-encoder", "some/model", {"batch_size": 8, "dtype": "float32"}),
        ),
        (
            "late-interaction:/models/colbertv2.0?max_length=256",
            ("late-interaction", "/models/colbertv2.0", {"max_length": 256}),
        ),
        ("x:C:/models/m", ("x", "C:/models/m", {})),
        ("embedding?device=cpu", ("embedding", None, {"device": "cpu"})),
    ],
)
def test_parse_spec(spec: str, expected: tuple[str, str | None, dict[str, object]]) -> None:
    assert parse_spec(spec) == expected


def test_parse_spec_coerces_option_values() -> None:
    _, _, options = parse_spec("x:m?a=8&b=0.25&c=true&d=False&e=none&f=null&g=cpu&h=-3&i=1e-3&j=")
    assert options == {
        "a": 8,
        "b": 0.25,
        "c": True,
        "d": False,
        "e": None,
        "f": None,
        "g": "cpu",
        "h": -3,
        "i": 0.001,
        "j": "",
    }
    assert type(options["a"]) is int
    assert type(options["b"]) is float
    assert options["c"] is True


def test_parse_spec_url_decodes_values() -> None:
    _, _, options = parse_spec("x:m?query_prompt=query%3A%20&document_prompt=passage:+")
    assert options == {"query_prompt": "query: ", "document_prompt": "passage: "}


@pytest.mark.parametrize("spec", ["", "   ", None, 3])
def test_parse_spec_rejects_empty_or_non_string(spec: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_spec(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec", ["cross-encoder:m?batch_size", "cross-encoder:m?a=1&", "cross-encoder:m?a=1&&b=2"]
)
def test_parse_spec_malformed_options_raise_configuration_error(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="malformed"):
        parse_spec(spec)


# -- from_spec -----------------------------------------------------------------------------------


def test_builtins_are_available() -> None:
    assert set(available_backends()) >= BUILTINS
    assert available_backends() == sorted(available_backends())


def test_from_spec_embedding_default() -> None:
    reranker = from_spec("embedding")
    assert isinstance(reranker, EmbeddingReranker)
    assert reranker.backend == "embedding"
    assert reranker.model  # the offline default model, resolved without loading it
    assert reranker._loaded is None


def test_from_spec_cross_encoder_with_options_loads_nothing() -> None:
    reranker = from_spec("cross-encoder:some/model?batch_size=8&dtype=float32")
    assert isinstance(reranker, CrossEncoderReranker)
    assert reranker.backend == "cross-encoder"
    assert reranker.model == "some/model"
    assert reranker.model_name == "some/model"
    assert reranker.batch_size == 8
    assert reranker.dtype == "float32"
    assert reranker.max_length is None
    assert reranker._loaded is None
    assert "some/model" in repr(reranker)


def test_from_spec_late_interaction() -> None:
    reranker = from_spec("late-interaction:/models/colbert?batch_size=4")
    assert isinstance(reranker, LateInteractionReranker)
    assert reranker.model == "/models/colbert"
    assert reranker.batch_size == 4


def test_overrides_win_over_spec_options_and_model() -> None:
    reranker = from_spec(
        "cross-encoder:some/model?batch_size=8&dtype=float32",
        batch_size=2,
        model="other/model",
        max_length=128,
    )
    assert isinstance(reranker, CrossEncoderReranker)
    assert reranker.batch_size == 2
    assert reranker.model == "other/model"
    assert reranker.dtype == "float32"
    assert reranker.max_length == 128


def test_overrides_pass_non_string_values() -> None:
    def calibration(raw: float) -> float:
        return 0.5

    reranker = from_spec("cross-encoder:m", calibration=calibration, dedupe=False)
    assert reranker.calibration is calibration
    assert reranker.dedupe is False


def test_unknown_backend_lists_available() -> None:
    with pytest.raises(UnknownBackendError) as info:
        from_spec("nope:some/model")
    message = str(info.value)
    assert "'nope'" in message
    for name in BUILTINS:
        assert name in message
    assert isinstance(info.value, ConfigurationError)


def test_unknown_backend_lists_custom_backends_too() -> None:
    register_backend("constant", Constant)
    with pytest.raises(UnknownBackendError, match="constant"):
        from_spec("missing")


@pytest.mark.parametrize(
    "spec",
    [
        "cross-encoder",  # model is required
        "cross-encoder:m?no_such_option=1",
        "cross-encoder:m?batch_size=0",
        "cross-encoder:m?batch_size=2.5",
        "cross-encoder:m?dtype=float8",
        "cross-encoder:m?long_documents=explode",
        "embedding?max_length=oops&bogus=1",
        "embedding?dtype=int4",
        "late-interaction?window_overlap=-1",
    ],
)
def test_bad_options_raise_configuration_error(spec: str) -> None:
    with pytest.raises(ConfigurationError):
        from_spec(spec)


def test_bad_override_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        from_spec("cross-encoder:m", not_an_option=True)


# -- register_backend ----------------------------------------------------------------------------


def test_register_custom_factory_class() -> None:
    register_backend("constant", Constant)
    assert "constant" in available_backends()
    reranker = from_spec("constant:my-model?value=0.75")
    assert isinstance(reranker, Constant)
    assert reranker.value == 0.75
    assert reranker.model == "my-model"
    results = reranker.rerank("q", ["a", "b"])
    assert [r.score for r in results] == [0.75, 0.75]


def test_register_custom_factory_function() -> None:
    seen: dict[str, object] = {}

    def factory(**kwargs: object) -> Reranker:
        seen.update(kwargs)
        return Constant(value=0.1)

    register_backend("fn", factory)
    reranker = from_spec("fn:model-x?k=3", extra="yes")
    assert isinstance(reranker, Constant)
    assert seen == {"k": 3, "extra": "yes", "model": "model-x"}


def test_duplicate_registration_rejected() -> None:
    register_backend("constant", Constant)
    with pytest.raises(ConfigurationError, match="already registered"):
        register_backend("constant", lambda **kw: Constant())
    assert isinstance(from_spec("constant"), Constant)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_cannot_be_silently_replaced(name: str) -> None:
    with pytest.raises(ConfigurationError, match="already registered"):
        register_backend(name, Constant)


def test_replace_true_overrides() -> None:
    register_backend("constant", Constant)
    register_backend("constant", lambda **kw: Constant(value=0.9), replace=True)
    reranker = from_spec("constant")
    assert isinstance(reranker, Constant)
    assert reranker.value == 0.9


def test_replacing_a_builtin_keeps_the_others() -> None:
    register_backend("cross-encoder", Constant, replace=True)
    assert isinstance(from_spec("cross-encoder"), Constant)
    assert isinstance(from_spec("embedding"), EmbeddingReranker)
    assert set(available_backends()) >= BUILTINS


@pytest.mark.parametrize("name", ["", "a:b", "a?b"])
def test_invalid_backend_name_rejected(name: str) -> None:
    with pytest.raises(ConfigurationError):
        register_backend(name, Constant)
    assert name not in available_backends()


def test_factory_type_error_becomes_configuration_error() -> None:
    def picky(*, only: int) -> Reranker:
        return Constant()

    register_backend("picky", picky)
    with pytest.raises(ConfigurationError, match="picky"):
        from_spec("picky?other=1")


def test_registration_in_a_fresh_process_sees_the_builtins() -> None:
    # Before any spec was resolved, registering a built-in name must still be refused, and
    # replacing one built-in must not hide the others.
    code = textwrap.dedent(
        """
        from rerankit import ConfigurationError, available_backends, register_backend
        try:
            register_backend("embedding", dict)
        except ConfigurationError:
            print("refused")
        register_backend("cross-encoder", dict, replace=True)
        print(",".join(available_backends()))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert out == [
        "refused",
        "causal-lm,cohere,cross-encoder,embedding,http,jina,late-interaction,llm,mixedbread,none,voyage",
    ]
