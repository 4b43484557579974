"""Late-interaction reranking: ColBERT-style MaxSim over token embeddings.

Two encoders produce the token embeddings:

* ``sentence-transformers``: the token embeddings of any sentence-transformers model;
* ``colbert``: a ColBERT checkpoint in the original Stanford format
  (:mod:`rerankit.backends.colbert`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from rerankit._models import exclusive
from rerankit._torch import torch_module
from rerankit.backends._packed_sentence import packs, token_embeddings
from rerankit.backends._segments import LongDocuments, segment, segment_requests
from rerankit.backends.colbert import (
    FEATURE,
    ColbertEncoder,
    detect_encoder,
    load_colbert,
)
from rerankit.backends.local import LocalReranker
from rerankit.base import ScoreBatch, ScoreRequest
from rerankit.calibration import CalibrationSource, ScoreSpace
from rerankit.errors import ConfigurationError
from rerankit.sentence import document_budget
from rerankit.types import Candidate

__all__ = ["LateInteractionReranker", "maxsim", "maxsim_many"]

Encoder = Literal["auto", "sentence-transformers", "colbert"]
ENCODERS = ("auto", "sentence-transformers", "colbert")


def maxsim(query_tokens: Any, doc_tokens: Any) -> float:
    """Mean over query tokens of the best cosine with any document token.

    Both inputs are L2-normalised ``(tokens, dim)`` tensors; the result is in [-1, 1]
    (ColBERT's MaxSim sum divided by the number of query tokens).
    """
    sims = query_tokens @ doc_tokens.T
    return float(sims.max(dim=1).values.mean())


def maxsim_many(query_tokens: Any, docs: Sequence[Any], *, chunk: int = 256) -> list[float]:
    """:func:`maxsim` of one query against many documents, in a few padded tensor ops.

    Equal to ``[maxsim(query_tokens, d) for d in docs]``; padding positions never win the max.
    """
    if not docs:
        return []
    torch = torch_module()
    out: list[float] = []
    for start in range(0, len(docs), chunk):
        part = docs[start : start + chunk]
        padded = torch.nn.utils.rnn.pad_sequence(list(part), batch_first=True)  # (n, L, d)
        lengths = torch.tensor([d.shape[0] for d in part])
        mask = torch.arange(padded.shape[1])[None, :] < lengths[:, None]  # (n, L)
        sims = torch.einsum("qd,nld->nql", query_tokens, padded)
        sims = sims.masked_fill(~mask[:, None, :], float("-inf"))
        out.extend(float(v) for v in sims.max(dim=2).values.mean(dim=1).tolist())
    return out


# -- the reranker ----------------------------------------------------------------------------------


class LateInteractionReranker(LocalReranker):
    """Scores documents by MaxSim over per-token embeddings, ColBERT-style.

    The raw score is the length-normalised MaxSim (the mean over query tokens of the best
    cosine with any document token), in ``cosine`` space.

    ``unpadded`` (default ``None``: on the CPU) makes the sentence-transformers token
    embeddings of BERT, RoBERTa and XLM-RoBERTa models without padding
    (:mod:`rerankit.backends._packed_sentence`), equal to ``encode()`` up to floating-point
    noise; ``unpadded=False`` turns it off (the ColBERT encoder has its own forward).

    ``encoder`` picks how token embeddings are made:

    * ``"sentence-transformers"``: the token embeddings of any sentence-transformers model
      (the offline all-MiniLM-L6-v2 by default);
    * ``"colbert"``: a ColBERT checkpoint in the original Stanford format (e.g.
      ``colbert-ir/colbertv2.0``): a BERT whose weights also hold a ``linear.weight``
      projection to the ColBERT dimension, with an ``artifact.metadata`` JSON. As in ColBERT,
      the query gets the query marker (``[unused0]``) right after ``[CLS]`` and is padded with
      ``[MASK]`` tokens to ``query_maxlen`` (query augmentation; the masks are encoded and
      scored, and attended to only when the metadata sets ``attend_to_mask_tokens``);
      documents get the document marker (``[unused1]``), are not padded and are cut at
      ``doc_maxlen`` tokens (``max_length`` overrides it); embeddings are L2-normalised and
      document punctuation tokens are left out of MaxSim (``mask_punctuation``). The raw
      score is ColBERT's score divided by ``query_maxlen``, so rankings are ColBERT's.
      A query longer than ``query_maxlen`` tokens is truncated, as ColBERT does;
    * ``"auto"`` (default): ``colbert`` when the checkpoint's ``config.json`` lists the
      ``HF_ColBERT`` architecture or it ships an ``artifact.metadata`` file, otherwise
      ``sentence-transformers``. The decision reads the checkpoint's files (a local directory,
      or the hub through ``huggingface_hub``) and never the model name; it happens on first
      use, not in the constructor.

    Example:
        >>> from rerankit import LateInteractionReranker
        >>> reranker = LateInteractionReranker()
        >>> top = reranker.rerank("vector database", ["Qdrant stores vectors.", "Pasta recipes"])
        >>> top[0].index
        0
        >>> colbert = LateInteractionReranker(model="colbert-ir/colbertv2.0")  # doctest: +SKIP
    """

    backend = "late-interaction"
    score_space = ScoreSpace.COSINE
    _feature = FEATURE

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None = None,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        dtype: str = "float32",
        long_documents: LongDocuments = "truncate",
        window_overlap: int = 64,
        trust_remote_code: bool = False,
        calibration: CalibrationSource | None = None,
        dedupe: bool = True,
        encoder: Encoder = "auto",
        unpadded: bool | None = None,
    ) -> None:
        super().__init__(
            model=model,
            device=device,
            batch_size=batch_size,
            max_length=max_length,
            dtype=dtype,
            long_documents=long_documents,
            window_overlap=window_overlap,
            trust_remote_code=trust_remote_code,
            calibration=calibration,
            dedupe=dedupe,
        )
        if encoder not in ENCODERS:
            raise ConfigurationError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        self.encoder: Encoder = encoder
        self._set_unpadded(unpadded)
        self._resolved: Literal["sentence-transformers", "colbert"] | None = None

    def resolved_encoder(self) -> Literal["sentence-transformers", "colbert"]:
        """The encoder in use: ``encoder``, or for ``"auto"`` what the checkpoint's files say."""
        if self._resolved is None:
            self._resolved = detect_encoder(self.model) if self.encoder == "auto" else self.encoder
        return self._resolved

    def _load_model(self) -> Any:
        if self.resolved_encoder() == "colbert":
            return load_colbert(self.model, self.device, self.dtype, self.trust_remote_code)
        return super()._load_model()

    def _tokens(self, encoder: Any, texts: Sequence[str]) -> list[Any]:
        torch = torch_module()
        if self._unpadded_allowed(encoder) and packs(encoder, pooled=False):
            out = token_embeddings(encoder, texts)
        else:
            out = encoder.encode(
                list(texts),
                batch_size=self.batch_size,
                output_value="token_embeddings",
                convert_to_numpy=False,
                show_progress_bar=False,
            )
        return [torch.nn.functional.normalize(t.float(), dim=-1) for t in out]

    def _score(self, query: str, candidates: Sequence[Candidate]) -> ScoreBatch:
        return self._score_many([(query, candidates)])[0]

    def _score_many(self, requests: Sequence[ScoreRequest]) -> list[ScoreBatch]:
        """Every query's documents in one encoding pass: each distinct text is encoded once."""
        encoder = self._load()
        with exclusive(encoder.tokenizer):  # encode() tokenises with per-call settings
            if isinstance(encoder, ColbertEncoder):
                return [
                    self._score_colbert(encoder, query, [c.text for c in candidates])
                    for query, candidates in requests
                ]
            shared = segment_requests(
                encoder.tokenizer,
                requests,
                document_budget(encoder),
                mode=self.long_documents,
                overlap=self.window_overlap,
            )
            docs = dict(zip(shared.texts, self._tokens(encoder, shared.texts), strict=True))
            tokens = dict(zip(shared.queries, self._tokens(encoder, shared.queries), strict=True))
        return [
            ScoreBatch(
                raw=plan.aggregate_max(maxsim_many(tokens[query], [docs[t] for t in plan.texts])),
                truncated=plan.truncated,
                windows=plan.windows,
            )
            for (query, _), plan in zip(requests, shared.plans, strict=True)
        ]

    def _score_colbert(
        self, encoder: ColbertEncoder, query: str, texts: Sequence[str]
    ) -> ScoreBatch:
        window = encoder.doc_window(self.max_length)
        segments = segment(
            encoder.tokenizer,
            texts,
            window - encoder.specials,
            mode=self.long_documents,
            overlap=self.window_overlap,
        )
        q = encoder.encode_query(query)
        docs = encoder.encode_documents(segments.texts, window, segments.lengths, self.batch_size)
        raw = maxsim_many(q, docs)
        return ScoreBatch(
            raw=segments.aggregate_max(raw),
            truncated=segments.truncated,
            windows=segments.windows,
        )
