"""Progress bars for long steps (tqdm when installed, else silent). Framework-free."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(
    *,
    total: int,
    desc: str,
    unit: str,
    enabled: bool = True,
    leave: bool = True,
    widget: bool = False,
) -> Iterator[Callable[[int], None]]:
    """A tqdm bar over ``total`` ``unit``; yields ``advance(n)``.

    A no-op when ``enabled`` is false or tqdm is not installed. ``leave=False`` clears the bar
    when it is done; ``widget=True`` uses ``tqdm.auto`` (the notebook widget where ipywidgets
    is installed) instead of the plain text bar, which works everywhere.
    """
    if not enabled:
        yield lambda n: None
        return
    try:
        if widget:
            from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]
        else:
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore,no-redef]
    except ImportError:  # pragma: no cover - tqdm comes with sentence-transformers
        yield lambda n: None
        return
    bar = tqdm(total=total, desc=desc, unit=unit, leave=leave)
    try:
        yield bar.update
    finally:
        bar.close()
