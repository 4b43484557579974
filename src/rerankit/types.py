"""Value types of the rerank core: candidates in, results out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["RETRIEVAL_SCORE_KEY", "Candidate", "Dropped", "RerankResult", "RerankResults"]

DropReason = Literal[
    "min_score", "min_ratio", "largest_gap", "top_n", "mmr", "token_budget", "cascade"
]
"""Why a scored document was not returned: a threshold rule (``min_score``, ``min_ratio``,
``largest_gap``, ``top_n``) or a context policy (:mod:`rerankit.policies`: ``mmr`` not selected
for diversity, ``token_budget`` did not fit the prompt budget, ``cascade`` pruned by the cheap
stage of a cascade)."""

RETRIEVAL_SCORE_KEY = "retrieval_score"
"""Metadata key of a document's first-stage score (read by the candidate rule, written by the
framework components)."""


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A document to rerank: its text, an optional id, metadata and first-stage score.

    The candidate is never changed by rerankit; results point back to the same object.
    ``retrieval_score`` is the score the first stage gave it (what
    ``FusionReranker(first_stage="retrieval_score")`` fuses); the LangChain and LlamaIndex
    components fill it from ``NodeWithScore.score`` or ``metadata["retrieval_score"]``.

    Example:
        >>> from rerankit import Candidate
        >>> c = Candidate("Qdrant is a vector database.", id="doc-1", metadata={"source": "faq"})
        >>> c.id, c.metadata["source"]
        ('doc-1', 'faq')
    """

    text: str
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    retrieval_score: float | None = None
    """The first-stage (retrieval) score, when the retriever gave one; higher is better."""

    def __post_init__(self) -> None:
        if isinstance(self.metadata, Mapping) and not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", _frozen(self.metadata))


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One reranked document.

    Attributes:
        index: position of the document in the input list.
        score: calibrated relevance in [0, 1]; higher is more relevant. Thresholds compare this.
        raw_score: what the model emitted, in the backend's declared score space.
        rank: 0-based position in the reranked output.
        candidate: the input candidate, untouched (strings are wrapped in a :class:`Candidate`).
        truncated: the document was longer than the model window and was cut.
        windows: how many windows were scored (1 unless long documents are windowed).
        fallback: why this result does not come from the primary reranker (set by
            :class:`~rerankit.FallbackReranker`), ``None`` otherwise.
    """

    index: int
    score: float
    raw_score: float
    rank: int
    candidate: Candidate
    truncated: bool = False
    windows: int = 1
    fallback: str | None = None

    @property
    def text(self) -> str:
        """The candidate's text."""
        return self.candidate.text

    @property
    def id(self) -> str | None:
        """The candidate's id."""
        return self.candidate.id


@dataclass(frozen=True, slots=True)
class Dropped:
    """An input document that was scored but not returned, and why."""

    index: int
    score: float
    raw_score: float
    reason: DropReason


class RerankResults(list[RerankResult]):
    """The results of one rerank call: a list of :class:`RerankResult`, best first.

    Besides the list itself it accounts for every input that is not in it:

    * ``dropped``: inputs cut by the threshold policy or ``top_n``, with the rule that cut them;
    * ``duplicates``: input index of a duplicate -> index of the copy that was scored and kept;
    * ``empty_reason``: when the list is empty although there were documents, why
      (e.g. ``"no document reached min_score=0.5 (best score 0.31)"``). ``None`` otherwise;
    * ``truncated``: how many documents were truncated to the model window;
    * ``fallback``: why these results do not come from the primary reranker of a
      :class:`~rerankit.FallbackReranker` (``None`` when they do);
    * ``usage``: what the call cost a remote backend (requests, retries, tokens, search units),
      as plain JSON-able values; ``None`` for local backends;
    * ``score_space``: the space of each ``raw_score`` (``"logit"``, ``"rank"``, ...; see
      :class:`~rerankit.ScoreSpace`);
    * ``timings``: milliseconds per step (``"score"``: the model or service, ``"rerank"``: the
      whole call; the framework components add ``"retrieve"`` where they retrieve);
    * ``candidates``: how many documents came in;
    * ``annotations``: input index -> what the context policies (:mod:`rerankit.policies`)
      recorded about that document, by policy (``{"boost": {"score": ..., "factor": ...}}``);
      empty without policies. The framework components copy it to ``metadata["rerank"]
      ["policies"]``;
    * ``applied``: one plain record per context policy applied, in order
      (``{"policy": "token_budget", "max_tokens": 1000, "used": 812, ...}``).

    Every input index appears exactly once: in the list, in ``dropped`` or in ``duplicates``
    (context policies keep this: what they drop is in ``dropped`` with their reason).

    Example:
        >>> from rerankit import RerankResults
        >>> r = RerankResults([], empty_reason="no documents")
        >>> bool(r), r.empty_reason
        (False, 'no documents')
    """

    def __init__(
        self,
        results: Iterable[RerankResult] = (),
        *,
        dropped: Iterable[Dropped] = (),
        duplicates: Mapping[int, int] | None = None,
        empty_reason: str | None = None,
        truncated: int = 0,
        backend: str = "",
        model: str = "",
        fallback: str | None = None,
        usage: Mapping[str, Any] | None = None,
        score_space: str = "",
        timings: Mapping[str, float] | None = None,
        candidates: int | None = None,
        annotations: Mapping[int, Mapping[str, Any]] | None = None,
        applied: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(results)
        self.dropped: tuple[Dropped, ...] = tuple(dropped)
        self.duplicates: Mapping[int, int] = MappingProxyType(dict(duplicates or {}))
        self.empty_reason = empty_reason
        self.truncated = truncated
        self.backend = backend
        self.model = model
        self.fallback = fallback
        self.usage: Mapping[str, Any] | None = _frozen(usage) if usage is not None else None
        self.score_space = score_space
        self.timings: Mapping[str, float] = MappingProxyType(dict(timings or {}))
        self.candidates: int = (
            candidates
            if candidates is not None
            else len(self) + len(self.dropped) + len(self.duplicates)
        )
        self.annotations: Mapping[int, Mapping[str, Any]] = MappingProxyType(
            {int(k): _frozen(v) for k, v in (annotations or {}).items()}
        )
        self.applied: tuple[Mapping[str, Any], ...] = tuple(_frozen(a) for a in applied)

    def replace(self, **changes: Any) -> RerankResults:
        """A copy with some attributes changed (``results``, ``timings``, ...)."""
        fields: dict[str, Any] = {
            "results": list(self),
            "dropped": self.dropped,
            "duplicates": self.duplicates,
            "empty_reason": self.empty_reason,
            "truncated": self.truncated,
            "backend": self.backend,
            "model": self.model,
            "fallback": self.fallback,
            "usage": self.usage,
            "score_space": self.score_space,
            "timings": self.timings,
            "candidates": self.candidates,
            "annotations": self.annotations,
            "applied": self.applied,
        }
        fields.update(changes)
        items = fields.pop("results")
        return RerankResults(items, **fields)

    @property
    def is_empty(self) -> bool:
        """True when nothing was returned."""
        return len(self) == 0

    def __repr__(self) -> str:
        return (
            f"RerankResults({list.__repr__(self)}, dropped={len(self.dropped)}, "
            f"duplicates={len(self.duplicates)}, empty_reason={self.empty_reason!r}"
            + (f", fallback={self.fallback!r}" if self.fallback is not None else "")
            + ")"
        )
