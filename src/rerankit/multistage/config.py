"""The checked configuration of a :class:`~rerankit.multistage.QdrantMultiStage`.

:meth:`PipelineConfig.build` turns the constructor's arguments into one frozen value, raising a
:class:`~rerankit.ConfigurationError` that names the argument for each mistake: the stages, the
fusion, their limits (a later stage may not ask for more points than it is given), the
reranker (an instance or a spec string) and the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from rerankit.base import Reranker
from rerankit.errors import ConfigurationError
from rerankit.multistage.stages import (
    STAGE_DENSE,
    STAGE_FUSION,
    STAGE_MULTIVECTOR,
    STAGE_RERANK,
    STAGE_SPARSE,
    DenseStage,
    FusionStage,
    MultivectorStage,
    SparseStage,
)
from rerankit.qdrant.schema import Layout
from rerankit.registry import as_reranker
from rerankit.threshold import ThresholdPolicy

__all__ = ["PipelineConfig", "has_score_rules"]


def has_score_rules(policy: ThresholdPolicy) -> bool:
    """True when ``policy`` compares scores (which needs a reranker), not only counts."""
    return any(
        value is not None for value in (policy.min_score, policy.min_ratio, policy.largest_gap)
    )


@dataclass(frozen=True)
class PipelineConfig:
    """Stages, reranker and threshold of one multi-stage pipeline, checked.

    Example:
        >>> from rerankit.multistage import QdrantMultiStage
        >>> config = QdrantMultiStage(collection="docs", path=":memory:", dense=None).config
        >>> config.stages, config.layout.names
        (('sparse',), ('bm25',))
    """

    collection: str
    dense: DenseStage | None
    sparse: SparseStage | None
    fusion: FusionStage | None
    """``None`` unless both prefetches run (with one there is nothing to fuse)."""
    multivector: MultivectorStage | None
    reranker: Reranker | None
    policy: ThresholdPolicy
    trace: bool

    @classmethod
    def build(
        cls,
        *,
        collection: object,
        dense: object,
        sparse: object,
        fusion: object,
        multivector: object,
        reranker: object,
        top_n: int | None,
        min_score: float | None,
        policy: object,
        trace: object,
    ) -> PipelineConfig:
        """Check the arguments of :class:`~rerankit.multistage.QdrantMultiStage`."""
        if not isinstance(collection, str) or not collection.strip():
            raise ConfigurationError("collection must be a non-empty str")
        if dense is not None and not isinstance(dense, DenseStage):
            raise ConfigurationError(f"dense must be a DenseStage or None, got {dense!r}")
        if sparse is not None and not isinstance(sparse, SparseStage):
            raise ConfigurationError(f"sparse must be a SparseStage or None, got {sparse!r}")
        if isinstance(fusion, str):
            fusion = FusionStage(method=fusion)  # type: ignore[arg-type]
        if not isinstance(fusion, FusionStage):
            raise ConfigurationError(
                f"fusion must be a FusionStage, 'rrf' or 'dbsf', got {fusion!r}"
            )
        if multivector is not None and not isinstance(multivector, MultivectorStage):
            raise ConfigurationError(
                f"multivector must be a MultivectorStage or None, got {multivector!r}"
            )
        if dense is None and sparse is None:
            raise ConfigurationError(
                "at least one prefetch is needed: configure dense=DenseStage() and/or "
                "sparse=SparseStage()"
            )
        if reranker is not None:  # None: no rerank stage
            reranker = as_reranker(reranker)  # type: ignore[arg-type]
        if policy is not None and not isinstance(policy, ThresholdPolicy):
            raise ConfigurationError(
                f"policy must be a ThresholdPolicy, got {type(policy).__name__}"
            )
        resolved = (policy or ThresholdPolicy()).merged(top_n=top_n, min_score=min_score)
        if reranker is None and has_score_rules(resolved):
            raise ConfigurationError(
                "min_score / min_ratio / largest_gap need a reranker (they compare its "
                "calibrated scores); without one only top_n applies"
            )
        fused = dense is not None and sparse is not None
        config = cls(
            collection=collection,
            dense=dense,
            sparse=sparse,
            fusion=fusion if fused else None,
            multivector=multivector,
            reranker=reranker,
            policy=resolved,
            trace=bool(trace),
        )
        config.layout  # noqa: B018 - checks that the vector names differ
        config._check_limits()
        return config

    def _check_limits(self) -> None:
        prefetch = [s.limit for s in (self.dense, self.sparse) if s is not None]
        upstream = max(prefetch)
        if self.fusion is not None:
            if self.fusion.limit > sum(prefetch):
                raise ConfigurationError(
                    f"fusion.limit={self.fusion.limit} exceeds the {sum(prefetch)} points the "
                    "dense and sparse prefetches pass on"
                )
            upstream = self.fusion.limit
        if self.multivector is not None and self.multivector.limit > upstream:
            raise ConfigurationError(
                f"multivector.limit={self.multivector.limit} exceeds the {upstream} points the "
                "previous stage passes on"
            )

    @property
    def layout(self) -> Layout:
        """The collection's vector fields this configuration reads and ingestion writes."""
        return Layout(dense=self.dense, sparse=self.sparse, multivector=self.multivector)

    @property
    def qdrant_stages(self) -> tuple[str, ...]:
        """The stages Qdrant runs, in order."""
        present = (
            (STAGE_DENSE, self.dense),
            (STAGE_SPARSE, self.sparse),
            (STAGE_FUSION, self.fusion),
            (STAGE_MULTIVECTOR, self.multivector),
        )
        return tuple(name for name, stage in present if stage is not None)

    @property
    def stages(self) -> tuple[str, ...]:
        """Every stage that runs, in order (``rerank`` last when there is a reranker)."""
        return self.qdrant_stages + ((STAGE_RERANK,) if self.reranker is not None else ())

    @property
    def limits(self) -> dict[str, int]:
        """Each Qdrant stage's limit."""
        limits: dict[str, int] = {}
        for name, stage in (
            (STAGE_DENSE, self.dense),
            (STAGE_SPARSE, self.sparse),
            (STAGE_FUSION, self.fusion),
            (STAGE_MULTIVECTOR, self.multivector),
        ):
            if stage is not None:
                limits[name] = stage.limit
        return limits

    def resolve_policy(self, top_n: int | None, min_score: float | None) -> ThresholdPolicy:
        """The threshold of one call: the configured one with ``top_n`` / ``min_score``
        overridden where given."""
        policy = self.policy.merged(top_n=top_n, min_score=min_score)
        if self.reranker is None and has_score_rules(policy):
            raise ConfigurationError("min_score needs a reranker; without one only top_n applies")
        return policy
