"""The ``rerankit demo`` command: an offline, end-to-end look at reranking.

* :mod:`~rerankit.demo.corpus`: the built-in passages and queries;
* :mod:`~rerankit.demo.documents`: the built-in corpus, or the user's (JSONL or BEIR folder);
* :mod:`~rerankit.demo.store`: its Qdrant collection, through :mod:`rerankit.qdrant`;
* :mod:`~rerankit.demo.run`: the run and its report.
"""

from rerankit.demo.documents import DemoCorpus, load_corpus
from rerankit.demo.run import DemoConfig, QueryReport, run_demo

__all__ = ["DemoConfig", "DemoCorpus", "QueryReport", "load_corpus", "run_demo"]
