"""Shared test data: the API key that must never leak, a fast retry policy, a corpus."""

from __future__ import annotations

from rerankit.remote import RetryPolicy

__all__ = ["FAST", "QUERY", "SECRET", "corpus", "leaked"]

SECRET = "sk-live-0123456789-SECRET-abcdef"
"""The API key the tests use; it must never show up anywhere but the Authorization header."""

FAST = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.05, jitter=0.5)
"""Test retry policy: real backoff and jitter, tiny delays."""

QUERY = "how do red apples grow in cold orchards"


def corpus(n: int) -> list[str]:
    """``n`` distinct documents with varied overlap with :data:`QUERY`."""
    words = ["red", "apples", "grow", "cold", "orchards", "in", "how", "do"]
    out = []
    for i in range(n):
        picked = [w for j, w in enumerate(words) if (i >> j) & 1 or (i * 7 + j) % 5 == 0]
        out.append(f"document {i}: " + " ".join(picked) + f" filler-{i}")
    return out


def leaked(text: str) -> bool:
    return SECRET in text or SECRET[8:24] in text
