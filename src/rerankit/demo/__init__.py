"""The ``rerankit demo`` command: an offline, end-to-end look at reranking."""

from rerankit.demo.run import DemoConfig, QueryReport, run_demo

__all__ = ["DemoConfig", "QueryReport", "run_demo"]
