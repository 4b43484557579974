"""Retrieval-augmented generation on top of reranking: prompt, citations, abstention.

This package imports no framework. It holds what the LangChain chain
(:func:`rerankit.langchain.build_rag_chain`), the LlamaIndex query engine
(:func:`rerankit.llama_index.build_query_engine`) and ``rerankit demo --answer`` share:

* :class:`RagPrompt`: the reranked sources, numbered in reranked order with their source ids,
  and the question, as chat messages (no scores in them);
* :func:`parse_citations`: which sources an answer cites as ``[n]``;
* :data:`ABSTAIN_ANSWER`: the answer when nothing passes the threshold (no LLM call);
* :class:`ExtractiveAnswerer`: an offline, clearly labelled stand-in for an LLM;
* :func:`answer_question`: the whole answer step over :class:`~rerankit.RerankResults`;
* :func:`openai_configured`: whether ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` is set.

Example:
    >>> from rerankit import EmbeddingReranker
    >>> from rerankit.rag import ABSTAIN_ANSWER, ExtractiveAnswerer, answer_question
    >>> results = EmbeddingReranker().rerank("mars rovers", ["Pasta recipes"], min_score=0.5)
    >>> rag = answer_question("mars rovers", results, generator=ExtractiveAnswerer())
    >>> rag.answer == ABSTAIN_ANSWER, rag.abstained, rag.messages
    (True, True, None)
"""

from rerankit.rag.answer import (
    ABSTAINED,
    EXTRACTIVE,
    Generate,
    RagAnswer,
    answer_question,
    format_answer,
    sources_from_results,
)
from rerankit.rag.answer_text import LLM_ABSTAINED, read_answer
from rerankit.rag.extractive import (
    EXTRACTIVE_LABEL,
    ExtractedSentence,
    ExtractiveAnswer,
    ExtractiveAnswerer,
)
from rerankit.rag.local_llm import LocalGenerator
from rerankit.rag.openai_settings import DEFAULT_OPENAI_MODEL, OpenAISettings, openai_configured
from rerankit.rag.prompt import (
    ABSTAIN_ANSWER,
    DEFAULT_PASSAGE,
    DEFAULT_SYSTEM,
    DEFAULT_USER,
    SOURCE_KEYS,
    Citation,
    PromptMessage,
    RagPrompt,
    Source,
    format_prompt,
    parse_citations,
    resolve_source_id,
)

__all__ = [
    "ABSTAINED",
    "ABSTAIN_ANSWER",
    "DEFAULT_OPENAI_MODEL",
    "DEFAULT_PASSAGE",
    "DEFAULT_SYSTEM",
    "DEFAULT_USER",
    "EXTRACTIVE",
    "EXTRACTIVE_LABEL",
    "LLM_ABSTAINED",
    "SOURCE_KEYS",
    "Citation",
    "ExtractedSentence",
    "ExtractiveAnswer",
    "ExtractiveAnswerer",
    "Generate",
    "LocalGenerator",
    "OpenAISettings",
    "PromptMessage",
    "RagAnswer",
    "RagPrompt",
    "Source",
    "answer_question",
    "format_answer",
    "format_prompt",
    "openai_configured",
    "parse_citations",
    "read_answer",
    "resolve_source_id",
    "sources_from_results",
]
