"""Runs ``rerankit serve`` in a subprocess with fake backends registered (the model boundary):
``overlap`` (word overlap, as :class:`tests._fixtures.OverlapReranker`) and ``slow``
(the same, ``delay`` seconds per call). Usage: ``python -m tests._serve_launcher serve ...``."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from rerankit import Candidate, ScoreBatch
from rerankit.cli import main
from rerankit.registry import register_backend
from tests._fixtures import OverlapReranker


class SlowReranker(OverlapReranker):
    backend = "slow"

    def __init__(self, delay: float = 0.5) -> None:
        super().__init__()
        self.delay = delay

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        time.sleep(self.delay)
        return super()._score(query, candidates)


register_backend("overlap", lambda **_: OverlapReranker())
register_backend("slow", SlowReranker)

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
