"""An offline stand-in for an LLM: the context sentences most relevant to the question.

It generates nothing. It splits the reranked sources into sentences, scores them against the
question with a rerankit reranker (the offline MiniLM by default) and returns the best ones,
each followed by the citation of its source, under a label that says the answer is extractive.
Every RAG example uses it when no OpenAI-compatible model is configured, so they all run
end to end without a network.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from rerankit.base import Reranker
from rerankit.errors import ConfigurationError
from rerankit.rag.prompt import ABSTAIN_ANSWER, Source
from rerankit.registry import as_reranker
from rerankit.threshold import ThresholdPolicy
from rerankit.types import Candidate, RerankResults

__all__ = ["EXTRACTIVE_LABEL", "ExtractedSentence", "ExtractiveAnswer", "ExtractiveAnswerer"]

EXTRACTIVE_LABEL = (
    "[Extractive answer: no LLM was used. These are the context sentences most relevant "
    "to the question.]"
)

# A sentence ends at . ! ? followed by space and an upper-case letter, digit or opening
# quote/bracket; blank lines and line breaks also separate sentences.
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")


def split_sentences(text: str) -> list[str]:
    """``text`` split into sentences (whitespace collapsed, empty pieces dropped).

    Example:
        >>> from rerankit.rag.extractive import split_sentences
        >>> split_sentences("Qdrant stores vectors. It uses HNSW!\\nPayloads are JSON.")
        ['Qdrant stores vectors.', 'It uses HNSW!', 'Payloads are JSON.']
    """
    return [" ".join(part.split()) for part in _SPLIT.split(text) if part and part.strip()]


@dataclass(frozen=True, slots=True)
class ExtractedSentence:
    """One sentence of an extractive answer and the source it comes from."""

    number: int
    source_id: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class ExtractiveAnswer:
    """The answer text (label, then one cited sentence per line) and its sentences.

    Example:
        >>> from rerankit.rag import ExtractiveAnswerer, Source
        >>> answer = ExtractiveAnswerer(label="").answer(
        ...     "what stores vectors?", [Source(number=1, source_id="q", text="Qdrant stores vectors.")])
        >>> answer.text, answer.sentences[0].source_id
        ('Qdrant stores vectors. [1]', 'q')
    """  # noqa: E501

    text: str
    sentences: tuple[ExtractedSentence, ...]


class ExtractiveAnswerer:
    """Answers with the context sentences most relevant to the question, with citations.

    An offline stand-in for an LLM (it calls no model besides the reranker). The sources are
    split into sentences, reranked against the question with ``reranker`` (default: the
    offline all-MiniLM-L6-v2 embedding reranker), and the best ``max_sentences`` whose score is
    at least ``min_ratio`` times the best score are returned, best first, each followed by
    ``[n]``, the number of its source in the prompt. The text starts with ``label`` so nobody
    mistakes it for a generated answer (``label=""`` drops it).

    Example:
        >>> from rerankit.rag import ExtractiveAnswerer, Source
        >>> answerer = ExtractiveAnswerer(max_sentences=1)
        >>> sources = [Source(number=1, source_id="a", text="Pasta cooks in nine minutes."),
        ...            Source(number=2, source_id="b", text="Qdrant is a vector database. "
        ...                   "It was written in Rust.")]
        >>> print(answerer.answer("Which database stores vectors?", sources).text)
        [Extractive answer: no LLM was used. These are the context sentences most relevant to the question.]
        Qdrant is a vector database. [2]
    """  # noqa: E501

    name = "extractive"

    def __init__(
        self,
        *,
        reranker: Reranker | str | None = None,
        max_sentences: int = 3,
        min_ratio: float = 0.85,
        label: str = EXTRACTIVE_LABEL,
    ) -> None:
        if reranker is not None and not isinstance(reranker, Reranker | str):
            raise ConfigurationError(
                f"reranker must be a Reranker, a spec string or None, got {type(reranker).__name__}"
            )
        if not isinstance(max_sentences, int) or isinstance(max_sentences, bool):
            raise ConfigurationError(f"max_sentences must be an int, got {max_sentences!r}")
        if max_sentences < 1:
            raise ConfigurationError(f"max_sentences must be >= 1, got {max_sentences}")
        if not isinstance(label, str):
            raise ConfigurationError("label must be a str")
        # Validates min_ratio (a number in [0, 1]) with the same rules as every threshold.
        self._policy = ThresholdPolicy(top_n=max_sentences, min_ratio=min_ratio, min_keep=1)
        self.max_sentences = max_sentences
        self.min_ratio = min_ratio
        self.label = label
        self._spec = reranker if isinstance(reranker, str) else None
        self._reranker = reranker if isinstance(reranker, Reranker) else None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ExtractiveAnswerer(max_sentences={self.max_sentences}, min_ratio={self.min_ratio})"

    @property
    def reranker(self) -> Reranker:
        """The sentence scorer (built on first use from the spec, default ``"embedding"``)."""
        with self._lock:
            if self._reranker is None:
                self._reranker = as_reranker(self._spec or "embedding")
            return self._reranker

    def _candidates(self, sources: Sequence[Source]) -> tuple[list[Candidate], list[Source]]:
        candidates: list[Candidate] = []
        owners: list[Source] = []
        for source in sources:
            if not isinstance(source, Source):
                raise ConfigurationError(
                    f"sources must be rerankit.rag.Source objects, got {type(source).__name__}"
                )
            for i, sentence in enumerate(split_sentences(source.text)):
                candidates.append(Candidate(sentence, id=f"{source.number}:{i}"))
                owners.append(source)
        return candidates, owners

    def _compose(self, results: RerankResults, owners: list[Source]) -> ExtractiveAnswer:
        picked = tuple(
            ExtractedSentence(
                owners[r.index].number, owners[r.index].source_id, r.text, float(r.score)
            )
            for r in results
        )
        lines = [self.label] if self.label else []
        lines.extend(f"{s.text} [{s.number}]" for s in picked)
        return ExtractiveAnswer("\n".join(lines), picked)

    def answer(self, question: str, sources: Sequence[Source]) -> ExtractiveAnswer:
        """The most relevant sentences of ``sources`` for ``question``, with citations.

        With no sentences to pick from, the answer is :data:`~rerankit.rag.ABSTAIN_ANSWER`.
        """
        candidates, owners = self._candidates(sources)
        if not candidates:
            return ExtractiveAnswer(ABSTAIN_ANSWER, ())
        results = self.reranker.rerank(question, candidates, policy=self._policy)
        return self._compose(results, owners)

    async def aanswer(self, question: str, sources: Sequence[Source]) -> ExtractiveAnswer:
        """Async :meth:`answer`."""
        candidates, owners = self._candidates(sources)
        if not candidates:
            return ExtractiveAnswer(ABSTAIN_ANSWER, ())
        results = await self.reranker.arerank(question, candidates, policy=self._policy)
        return self._compose(results, owners)
