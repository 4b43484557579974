"""The contract both ``QdrantMultiStageRetriever`` faces share, and the code behind it.

:class:`rerankit.langchain.QdrantMultiStageRetriever` and
:class:`rerankit.llama_index.QdrantMultiStageRetriever` have one contract:

* the same constructor fields with the same defaults: ``pipeline`` (a
  :class:`~rerankit.multistage.QdrantMultiStage`: stages, limits, reranker, threshold),
  ``top_n=None``, ``min_score=None``, ``query_filter=None`` (a Qdrant ``Filter``); set ones
  override the pipeline's, and they read back as attributes of the same names;
* per call, the same three, where the framework carries call arguments (LangChain:
  ``invoke(query, top_n=...)``; LlamaIndex: a :class:`~rerankit.llama_index.MultiStageQuery`
  bundle); ``None`` keeps the retriever's value, an unknown name is an error;
* one extra method, the same on both: ``add_documents(documents, batch_size=64,
  show_progress=True, recreate=False)`` ingests through the pipeline;
* the same metadata on every result (:meth:`~rerankit.multistage.MultiStageResults.metadata_for`);
  the per-stage timings are ``retriever.pipeline.search(query).timings``.

:class:`SearchOptions` holds and checks the settings and runs the core's search with them;
:func:`convert_hits` maps hits to framework objects. Framework-free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from rerankit.errors import ConfigurationError
from rerankit.multistage.pipeline import QdrantMultiStage
from rerankit.multistage.results import MultiStageHit, MultiStageResults
from rerankit.threshold import ThresholdPolicy

__all__ = ["CALL_OPTIONS", "SearchOptions", "check_pipeline", "convert_hits"]

T = TypeVar("T")

CALL_OPTIONS = ("top_n", "min_score", "query_filter")
"""The settings a call may override."""


def convert_hits(
    results: MultiStageResults, make: Callable[[MultiStageHit, dict[str, Any]], T]
) -> list[T]:
    """``make(hit, metadata)`` for each hit, best first; ``metadata`` is what a face attaches
    (:meth:`~rerankit.multistage.MultiStageResults.metadata_for`)."""
    return [make(hit, results.metadata_for(hit)) for hit in results]


def check_pipeline(pipeline: object) -> QdrantMultiStage:
    """``pipeline`` if it is a :class:`~rerankit.multistage.QdrantMultiStage`."""
    if not isinstance(pipeline, QdrantMultiStage):
        raise ConfigurationError(
            f"pipeline must be a QdrantMultiStage, got {type(pipeline).__name__}"
        )
    return pipeline


@dataclass(frozen=True)
class SearchOptions:
    """``top_n``, ``min_score`` and ``query_filter`` (a Qdrant ``Filter``) of a search.

    ``None`` means "not set": the pipeline's own threshold applies, or no filter.

    Example:
        >>> from rerankit.multistage.options import SearchOptions
        >>> base = SearchOptions(top_n=5)
        >>> base.merged({"top_n": 2, "min_score": None}).top_n
        2
        >>> base.merged({"min_score": None}).top_n  # None keeps the retriever's value
        5
    """

    top_n: int | None = None
    min_score: float | None = None
    query_filter: Any = None

    def __post_init__(self) -> None:
        ThresholdPolicy(top_n=self.top_n, min_score=self.min_score)  # typed errors

    def merged(self, overrides: Mapping[str, Any]) -> SearchOptions:
        """These options with the ``overrides`` that are not ``None``.

        Raises:
            ConfigurationError: an override is not one of :data:`CALL_OPTIONS`.
        """
        unknown = sorted(set(overrides) - set(CALL_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"unexpected arguments: {unknown} (a call takes {', '.join(CALL_OPTIONS)})"
            )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given) if given else self

    def search(self, pipeline: QdrantMultiStage, query: str) -> MultiStageResults:
        """``pipeline.search(query)`` with these options."""
        return pipeline.search(
            query, top_n=self.top_n, min_score=self.min_score, query_filter=self.query_filter
        )

    async def asearch(self, pipeline: QdrantMultiStage, query: str) -> MultiStageResults:
        """``pipeline.asearch(query)`` with these options."""
        return await pipeline.asearch(
            query, top_n=self.top_n, min_score=self.min_score, query_filter=self.query_filter
        )
