"""The examples: every notebook is generated from its script, committed without outputs, and
runs top to bottom offline (executed here with nbclient on the ``python3`` kernel, i.e. this
interpreter's ipykernel)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))

# What each notebook must print when it runs offline (the extractive answerer, no OpenAI).
EXPECTED = {
    "langchain_rag.ipynb": [
        "25 points in Qdrant",
        "generator: ExtractiveAnswerer",
        "[Extractive answer: no LLM was used.",
        "cites [1] rerank-1",
        "[1] (source: rerank-1)",
        "-> abstained, the LLM was not called: no document reached min_score=0.35",
        "prompt sent: None",
    ],
    "llama_index_rag.ipynb": [
        "25 points in Qdrant",
        "[Extractive answer: no LLM was used.",
        "cites [1] gil-1",
        "[1] (source: gil-1)",
        "-> abstained, the LLM was not called: no document reached min_score=0.35",
        "How does HNSW find nearest neighbours? -> ['hnsw-1']",
    ],
    "compare_rerankers.ipynb": [
        "6 queries, 8 candidates each, rerankers: embedding, late-interaction",
        "* rerank-1    2 |   1    +1",
        "median latency  stage 1 (BM25)",
        "plot saved to",
    ],
}

# Variables that would make the examples leave the offline path.
_ONLINE = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "QDRANT_URL", "RERANKIT_LOCAL_LLM")


def _make_notebooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_notebooks", EXAMPLES / "make_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no examples/__pycache__
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


def test_every_script_has_an_up_to_date_notebook() -> None:
    make = _make_notebooks()
    assert sorted(Path(s).with_suffix(".ipynb").name for s in make.SCRIPTS) == NOTEBOOKS
    assert set(EXPECTED) == set(NOTEBOOKS)
    for script in make.SCRIPTS:
        committed = (EXAMPLES / script).with_suffix(".ipynb").read_text(encoding="utf-8")
        assert committed == make.render(EXAMPLES / script), (
            f"{script}: notebook out of date; run python examples/make_notebooks.py"
        )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    raw = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    nb = nbformat.from_dict(raw)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def _text(nb: Any) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


async def _execute_all() -> dict[str, Any]:
    async def run(name: str) -> Any:
        nb = nbformat.read(EXAMPLES / name, as_version=4)
        client = nbclient.NotebookClient(
            nb,
            kernel_name="python3",
            timeout=300,
            startup_timeout=120,
            resources={"metadata": {"path": str(EXAMPLES)}},
        )
        try:
            await client.async_execute()
        except Exception as exc:  # reported by the test of that notebook
            return exc
        return nb

    outcomes = await asyncio.gather(*(run(name) for name in NOTEBOOKS))
    return dict(zip(NOTEBOOKS, outcomes, strict=True))


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every notebook, executed concurrently in its own kernel, offline, with a fresh cache."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    before = sorted(p.name for p in EXAMPLES.iterdir())
    with pytest.MonkeyPatch.context() as patch:
        for name in _ONLINE:
            patch.delenv(name, raising=False)
        patch.setenv("XDG_CACHE_HOME", str(cache))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.delenv("RERANKIT_EXTRA_RERANKERS", raising=False)
        patch.delenv("MPLBACKEND", raising=False)
        results = asyncio.run(_execute_all())
    results["_cache"] = cache
    yield results
    # Running the examples writes nothing next to them (stores and plots go to the cache).
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.name != "__pycache__") == [
        n for n in before if n != "__pycache__"
    ]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_offline(executed: dict[str, Any], name: str) -> None:
    outcome = executed[name]
    if isinstance(outcome, Exception):
        pytest.fail(f"{name} failed:\n{outcome}")
    text = _text(outcome)
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: {expected!r} not in its output"
    assert "Traceback" not in text


def test_comparison_notebook_shows_and_saves_the_plot(executed: dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    nb = executed["compare_rerankers.ipynb"]
    if isinstance(nb, Exception):
        pytest.fail(str(nb))
    images = [
        output
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.output_type == "display_data" and "image/png" in output.get("data", {})
    ]
    assert len(images) == 1
    assert (executed["_cache"] / "rerankit" / "examples" / "compare_rerankers.png").stat().st_size


def test_examples_use_the_cache_folder_for_qdrant(executed: dict[str, Any]) -> None:
    folders = {p.name for p in (executed["_cache"] / "rerankit").iterdir()}
    assert {"examples-langchain", "examples-llama-index", "examples-compare"} <= folders
    assert os.environ.get("XDG_CACHE_HOME") != str(executed["_cache"])  # restored
