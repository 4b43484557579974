"""A plain list of framework objects that also carries the rerankit results it was made from.

The base of the lists the LangChain and LlamaIndex faces return (documents or nodes, best
first): ``.results`` is the core's results object and ``.empty_reason`` says why the list is
empty. Framework-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

__all__ = ["ResultsList"]


class _Explained(Protocol):
    @property
    def empty_reason(self) -> str | None: ...


ItemT = TypeVar("ItemT")
ResultsT = TypeVar("ResultsT", bound=_Explained)


class ResultsList(list[ItemT], Generic[ItemT, ResultsT]):
    """``items``, best first, with the ``results`` they were made from."""

    def __init__(self, items: Iterable[ItemT], results: ResultsT) -> None:
        super().__init__(items)
        self.results = results

    @property
    def empty_reason(self) -> str | None:
        """Why the list is empty (nothing returned or nothing passed), or ``None``."""
        return self.results.empty_reason
