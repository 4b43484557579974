"""Generate the example notebooks from the example scripts.

Each script is the source of truth, written in the "percent" format that Jupytext, VS Code and
PyCharm understand: ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose lines
are comments. This writes ``<name>.ipynb`` next to each ``<name>.py``, without outputs, with
stable cell ids (so regenerating an unchanged script changes nothing).

    python examples/make_notebooks.py          # regenerate
    python examples/make_notebooks.py --check  # exit 1 if a notebook is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent
SCRIPTS = ["langchain_rag.py", "llama_index_rag.py", "compare_rerankers.py"]

_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python", "pygments_lexer": "ipython3"},
}


def _cells(source: str) -> list[tuple[str, list[str]]]:
    cells: list[tuple[str, list[str]]] = []
    kind: str | None = None
    lines: list[str] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            if kind is not None:
                cells.append((kind, lines))
            kind = "markdown" if "[markdown]" in line else "code"
            lines = []
            continue
        if kind is None:
            if line.strip():
                raise ValueError("a percent-format script must start with a '# %%' cell marker")
            continue
        if kind == "markdown":
            if line and not line.startswith("#"):
                raise ValueError(f"markdown cells hold comment lines only, got {line!r}")
            line = line[2:] if line.startswith("# ") else line.lstrip("#")
        lines.append(line)
    if kind is not None:
        cells.append((kind, lines))
    out = []
    for kind, body in cells:
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        out.append((kind, body))
    return out


def notebook(script: Path) -> dict[str, Any]:
    """The notebook (nbformat 4.5 JSON) for one percent-format script."""
    cells = []
    for number, (kind, lines) in enumerate(_cells(script.read_text(encoding="utf-8"))):
        text = "\n".join(lines)
        cell: dict[str, Any] = {
            "cell_type": kind,
            "id": f"{script.stem.replace('_', '-')}-{number:02d}",
            "metadata": {},
            "source": text.splitlines(keepends=True),
        }
        if kind == "code":
            cell["execution_count"] = None
            cell["outputs"] = []
        cells.append(cell)
    return {"cells": cells, "metadata": _METADATA, "nbformat": 4, "nbformat_minor": 5}


def render(script: Path) -> str:
    return json.dumps(notebook(script), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a notebook is stale")
    args = parser.parse_args(argv)
    stale = []
    for name in SCRIPTS:
        script = EXAMPLES / name
        target = script.with_suffix(".ipynb")
        text = render(script)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(target.name)
        if not args.check:
            target.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python examples/make_notebooks.py)")
        return 1
    if not args.check:
        print(f"wrote {', '.join(stale) or 'nothing (all up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
