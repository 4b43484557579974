"""What every ``rerankit`` command shares: one-line errors and checked argument types.

A user mistake never prints a traceback: a bad argument is one line on stderr naming it
(:class:`OneLineParser`), an error rerankit raises on purpose (:class:`~rerankit.RerankError`)
or a file-system error is one line naming the problem and the fix (:func:`guarded`); the exit
code is 2 (130 when interrupted).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from typing import NoReturn, TypeVar

from rerankit.errors import RerankError

__all__ = [
    "OneLineParser",
    "guarded",
    "non_negative_int",
    "one_line",
    "positive_int",
    "unit_float",
]

T = TypeVar("T")

USAGE_ERROR = 2
INTERRUPTED = 130


def one_line(text: object) -> str:
    """``text`` with its white space (newlines included) folded to single spaces."""
    return " ".join(str(text).split())


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block): the problem, then
    where to read more.

    Example:
        >>> from rerankit.cli_args import OneLineParser, positive_int
        >>> parser = OneLineParser(prog="rerankit demo")
        >>> _ = parser.add_argument("--fetch-k", type=positive_int, default=8)
        >>> parser.parse_args(["--fetch-k", "80"]).fetch_k
        80
    """

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {one_line(message)} (see {self.prog} -h)\n")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """An argument type: an int >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argument type: an int >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def unit_float(text: str) -> float:
    """An argument type: a number in [0, 1] (a calibrated score)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1] (a calibrated score), got {text!r}")
    return value


def guarded(command: str, run: Callable[[], T]) -> int:
    """Run ``run()``: 0 when it returns; 2 with one line on stderr for a
    :class:`~rerankit.RerankError` or an ``OSError``; 130 when interrupted. Warnings are one
    line each too (``rerankit <command>: warning: ...``)."""

    def show(message: Warning | str, category: type[Warning], *args: object, **kw: object) -> None:
        sys.stderr.write(f"rerankit {command}: warning: {one_line(message)}\n")

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            run()
    except RerankError as exc:
        sys.stderr.write(f"rerankit {command}: error: {one_line(exc)}\n")
        return USAGE_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"rerankit {command}: error: {where}{one_line(exc.strerror or exc)}\n")
        return USAGE_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"rerankit {command}: interrupted\n")
        return INTERRUPTED
    return 0
