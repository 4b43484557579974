"""Strict reading of remote answers: bodies, numbers, ``[{index, score}]`` results, logprobs.

Every parser raises :class:`~rerankit.remote.errors.BadResponse` (which the retry loop turns
into a :class:`~rerankit.remote.MalformedResponseError`) with a message naming the field,
never a stray ``OverflowError``, ``UnicodeDecodeError`` or ``TypeError``: a body that is not
UTF-8 JSON (gzip sent without ``Content-Encoding``, HTML with status 200), a score too large
for a float, NaN or infinite, a positive log-probability. Every backend reads its answers
here, the SDK-based ones through :func:`json_checker`, an ``httpx`` response hook that checks a
body before the SDK parses it and hands the body, as sent, to :func:`capture_body`: the SDKs
coerce values (``"0"`` to ``0``, ``true`` to ``1.0``) that a strict reading must refuse.
"""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rerankit.remote.errors import BadResponse

__all__ = [
    "Body",
    "capture_body",
    "count",
    "field",
    "json_checker",
    "logprob",
    "number",
    "read_json",
    "scores_by_index",
    "yes_no_probability",
]

_GZIP_MAGIC = b"\x1f\x8b"
_LOGPROB_TOLERANCE = 1e-4
"""Rounding that servers put on top of a log-probability of 0 (``1e-06`` is seen in the wild)."""


def field(item: Any, name: str) -> Any:
    """``item[name]`` for mappings, ``item.name`` for objects; ``None`` when absent."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: Any, limit: int = 40) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {len(format(value, 'x'))}-hex-digit integer"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json(
    content: bytes,
    *,
    expect: type | tuple[type, ...] | None = None,
    what: str = "the answer",
    content_type: str | None = None,
) -> Any:
    """``content`` parsed as UTF-8 JSON, of type ``expect`` when given.

    Example:
        >>> from rerankit.remote.parsing import read_json
        >>> read_json(b'{"results": []}', expect=dict)
        {'results': []}
    """
    if content[:2] == _GZIP_MAGIC:
        raise BadResponse(
            f"{what} is gzip-compressed but the server sent no Content-Encoding header"
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadResponse(f"{what} is not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        kind = f" ({content_type})" if content_type and "json" not in content_type else ""
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise BadResponse(f"{what} is not valid JSON{kind}: {reason}") from None
    if expect is not None and not isinstance(data, expect):
        wanted: dict[type, str] = {dict: "an object", list: "an array"}
        kinds = expect if isinstance(expect, tuple) else (expect,)
        names = " or ".join(wanted.get(k, k.__name__) for k in kinds)
        raise BadResponse(f"{what} should be {names}, got {_json_type(data)}")
    return data


class Body:
    """The JSON body of the 2xx answer of a request made in a :func:`capture_body` block.

    Example:
        >>> from rerankit.remote.parsing import capture_body
        >>> with capture_body() as body:
        ...     pass  # no request answered here
        >>> body.filled, body.or_else("what the SDK parsed")
        (False, 'what the SDK parsed')
    """

    __slots__ = ("filled", "value")

    def __init__(self) -> None:
        self.filled = False
        self.value: Any = None

    def or_else(self, parsed: Any) -> Any:
        """The body as sent when captured, else ``parsed`` (what the SDK made of it)."""
        return self.value if self.filled else parsed


_body: contextvars.ContextVar[Body | None] = contextvars.ContextVar(
    "rerankit_captured_body", default=None
)


@contextmanager
def capture_body() -> Iterator[Body]:
    """Capture, for this thread or task, the body that :func:`json_checker` reads."""
    body = Body()
    token = _body.set(body)
    try:
        yield body
    finally:
        _body.reset(token)


def json_checker(
    expect: type | tuple[type, ...], *, asynchronous: bool
) -> Callable[[Any], Any] | Callable[[Any], Awaitable[Any]]:
    """An ``httpx`` ``response`` event hook that reads a 2xx body, checks it with
    :func:`read_json` (SDKs would raise ``TypeError`` or ``UnicodeDecodeError``) and hands it
    to the running :func:`capture_body` block."""

    def check(response: Any) -> None:
        data = read_json(
            response.content, expect=expect, content_type=response.headers.get("content-type")
        )
        body = _body.get()
        if body is not None:
            body.filled, body.value = True, data

    if asynchronous:

        async def acheck(response: Any) -> None:
            if 200 <= response.status_code < 300:
                await response.aread()
                check(response)

        return acheck

    def scheck(response: Any) -> None:
        if 200 <= response.status_code < 300:
            response.read()
            check(response)

    return scheck


def number(value: Any, name: str) -> float:
    """``value`` as a finite float, or :class:`BadResponse` naming the field ``name``.

    Example:
        >>> from rerankit.remote.parsing import number
        >>> number(3, "score")
        3.0
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadResponse(f"{name} is {_json_type(value)} ({_short(value)}), not a number")
    try:
        out = float(value)
    except OverflowError:
        raise BadResponse(f"{name} is {_short(value)}, too large for a float") from None
    if not math.isfinite(out):
        raise BadResponse(f"{name} is {out}, not a finite number")
    return out


def count(value: Any) -> int:
    """A usage count (tokens, units): non-negative and finite, else 0 (usage is metadata, a
    broken count never fails a call)."""
    try:
        out = number(value, "count")
    except BadResponse:
        return 0
    return int(out) if out >= 0 else 0


def logprob(value: Any, name: str) -> float:
    """A log-probability: a number ``<= 0`` (``-inf`` allowed), or :class:`BadResponse`."""
    if isinstance(value, float) and value == -math.inf:
        return value
    out = number(value, name)
    if out > _LOGPROB_TOLERANCE:
        raise BadResponse(f"{name} is {out:g}, but a log-probability is never positive")
    return min(out, 0.0)


def scores_by_index(items: Any, n: int, *, score_key: str, index_key: str = "index") -> list[float]:
    """One score per document, from results that name documents by index.

    Raises :class:`BadResponse` unless the results hold each index in ``range(n)`` exactly
    once with a finite numeric score: a missing, duplicate, out-of-range or non-integer index
    could only be "repaired" by giving one document another's score.
    """
    if not isinstance(items, list | tuple):
        raise BadResponse(f"expected a list of results, got {_json_type(items)}")
    raw: list[float | None] = [None] * n
    bad_index: list[Any] = []
    out_of_range: list[int] = []
    duplicates: list[int] = []
    bad_score: list[int] = []
    reasons: list[str] = []
    for position, item in enumerate(items):
        index = field(item, index_key)
        score = field(item, score_key)
        if isinstance(index, bool) or not isinstance(index, int):
            bad_index.append(index)
            continue
        if not 0 <= index < n:
            out_of_range.append(index)
            continue
        if raw[index] is not None or index in bad_score:
            duplicates.append(index)
            continue
        try:
            raw[index] = number(score, f"results[{position}].{score_key}")
        except BadResponse as exc:
            bad_score.append(index)
            reasons.append(str(exc))
    missing = [i for i, value in enumerate(raw) if value is None and i not in bad_score]
    problems = []
    if missing:
        problems.append(f"missing indices {_preview(missing)}")
    if duplicates:
        problems.append(f"duplicate indices {_preview(duplicates)}")
    if out_of_range:
        problems.append(f"out-of-range indices {_preview(out_of_range)}")
    if bad_index:
        problems.append(f"non-integer indices {_preview(bad_index)}")
    if bad_score:
        problems.append(
            f"no valid {score_key} for indices {_preview(bad_score)} ({'; '.join(reasons[:3])})"
        )
    if problems:
        raise BadResponse(
            f"the server returned {len(items)} results for {n} documents: " + "; ".join(problems)
        )
    return [float(value) for value in raw if value is not None]


def _preview(values: list[Any], limit: int = 8) -> str:
    shown = ", ".join(_short(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def yes_no_probability(content_logprobs: Any, yes: str = "yes", no: str = "no") -> float | None:
    """P(yes) / (P(yes) + P(no)) at the first answer token that offers yes or no; ``None`` when
    the answer's first word offers neither (or there are no logprobs).

    A numeric log-probability that is positive, NaN or too large raises :class:`BadResponse`
    naming it (``exp`` of it would overflow or exceed 1); alternatives without a numeric
    log-probability are skipped.
    """
    if not content_logprobs or not isinstance(content_logprobs, list | tuple):
        return None
    for t, token in enumerate(content_logprobs):
        mass = {yes: 0.0, no: 0.0}
        alternatives = field(token, "top_logprobs")
        candidates = [*alternatives] if isinstance(alternatives, list | tuple) else []
        candidates.append(token)
        seen: set[str] = set()
        for c, candidate in enumerate(candidates):
            text = field(candidate, "token")
            value = field(candidate, "logprob")
            if not isinstance(text, str) or isinstance(value, bool):
                continue
            if not isinstance(value, int | float) or text in seen:
                continue
            seen.add(text)
            where = f"choices[0].logprobs.content[{t}]" + (
                ".logprob" if candidate is token else f".top_logprobs[{c}].logprob"
            )
            lp = logprob(value, where)
            word = text.strip().lower()
            if word in mass:
                mass[word] += math.exp(lp)
        total = mass[yes] + mass[no]
        if total > 0:
            return mass[yes] / total
        text = field(token, "token")
        if isinstance(text, str) and any(ch.isalnum() or ch == "_" for ch in text):
            return None  # the first word of the answer offers neither yes nor no
    return None
