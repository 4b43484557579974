"""Progress bars for the long steps of an evaluation (tqdm when installed, else silent)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

from rerankit._progress import progress_bar as _progress_bar

T = TypeVar("T")


def progress_bar(
    *, total: int, desc: str, unit: str, enabled: bool = True
) -> AbstractContextManager[Callable[[int], None]]:
    """A tqdm bar over ``total`` ``unit`` (cleared when done); yields ``advance(n)``."""
    return _progress_bar(
        total=total, desc=desc, unit=unit, enabled=enabled, leave=False, widget=True
    )


def iterate(items: Iterable[T], *, total: int, desc: str, unit: str, enabled: bool) -> Iterator[T]:
    """``items``, advancing a progress bar by one per item."""
    with progress_bar(total=total, desc=desc, unit=unit, enabled=enabled) as advance:
        for item in items:
            yield item
            advance(1)
