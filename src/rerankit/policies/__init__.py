"""Context policies: what happens between reranking and the prompt.

The same objects work in the core (:func:`rerank_with`), in the LangChain and LlamaIndex
components (``policies=`` on ``RerankCompressor``, ``RerankRetriever``, ``RerankStep`` and
``RerankPostprocessor``) and in the RAG builders (``build_rag_chain(..., policies=[...])``):

* :class:`MMR`: diversity by maximal marginal relevance (``lambda_mult``) on the reranker's
  scores and the passages' embeddings;
* :class:`LostInTheMiddle`: the best passages at both ends of the prompt;
* :class:`MetadataBoost`: recency decay on a date field (:class:`Recency`) and per-field
  weights, the boost recorded in each passage's metadata;
* :class:`TokenBudget`: the best passages that fit ``max_tokens`` by the generator's
  tokenizer; none is cut;
* :class:`Cascade`: a cheap reranker prunes to ``k``, an expensive one reorders them, with a
  latency budget after which the cheap order is returned, marked;
* :class:`Shadow`: a second reranker scores the same candidates off the critical path; its
  agreement (Kendall's tau, overlap at k) goes to a callback.

They compose with the threshold and with each other: the threshold's score rules run first,
then the policies in order, then ``top_n`` (before a ``final`` policy: lost-in-the-middle).
Every drop is accounted for as the threshold's are (``results.dropped`` with the reason
``"mmr"``, ``"token_budget"`` or ``"cascade"``); what a policy noted about a passage is in
``results.annotations`` (and in ``metadata["rerank"]["policies"]`` through the components), what
it did in ``results.applied``. Policies never change their inputs. Framework-free.

Example:
    >>> from rerankit import EmbeddingReranker
    >>> from rerankit.policies import LostInTheMiddle, TokenBudget, rerank_with
    >>> docs = ["Qdrant stores vectors.", "Pasta recipes", "Vector search in Qdrant"]
    >>> budget = TokenBudget(max_tokens=8, tokenizer=lambda text: len(text.split()))
    >>> results = rerank_with(EmbeddingReranker(), "vector database", docs,
    ...                       policies=[budget, LostInTheMiddle()])
    >>> sum(len(r.text.split()) for r in results) <= 8
    True
"""

from rerankit.policies.base import ContextPolicy, drop, rebuilt
from rerankit.policies.boost import MetadataBoost, Recency
from rerankit.policies.budget import TokenBudget, token_counter
from rerankit.policies.cascade import Cascade
from rerankit.policies.mmr import MMR
from rerankit.policies.order import LostInTheMiddle
from rerankit.policies.pipeline import (
    apply_policies,
    arerank_with,
    check_policies,
    rerank_batch_with,
    rerank_with,
)
from rerankit.policies.shadow import Shadow, ShadowReport, kendall_tau, overlap_at

__all__ = [
    "MMR",
    "Cascade",
    "ContextPolicy",
    "LostInTheMiddle",
    "MetadataBoost",
    "Recency",
    "Shadow",
    "ShadowReport",
    "TokenBudget",
    "apply_policies",
    "arerank_with",
    "check_policies",
    "drop",
    "kendall_tau",
    "overlap_at",
    "rebuilt",
    "rerank_batch_with",
    "rerank_with",
    "token_counter",
]
