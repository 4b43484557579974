"""Progress bars for the long steps of an evaluation (tqdm when installed, else silent)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def progress_bar(
    *, total: int, desc: str, unit: str, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """A tqdm bar over ``total`` ``unit``; yields ``advance(n)``. A no-op when disabled."""
    if not enabled:
        yield lambda n: None
        return
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - tqdm comes with sentence-transformers
        yield lambda n: None
        return
    bar = tqdm(total=total, desc=desc, unit=unit, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


def iterate(items: Iterable[T], *, total: int, desc: str, unit: str, enabled: bool) -> Iterator[T]:
    """``items``, advancing a progress bar by one per item."""
    with progress_bar(total=total, desc=desc, unit=unit, enabled=enabled) as advance:
        for item in items:
            yield item
            advance(1)
