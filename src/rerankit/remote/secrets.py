"""API keys: resolved from an argument or the environment, held as pydantic ``SecretStr``,
and scrubbed from every message rerankit builds."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rerankit._deps import require
from rerankit.errors import ConfigurationError

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["MASK", "redact", "resolve_api_key"]

MASK = "**********"
"""What a key looks like in a repr, a config, a log line or an error message."""


def resolve_api_key(
    api_key: str | SecretStr | None,
    *,
    env: str | None,
    extra: str,
    feature: str,
) -> SecretStr | None:
    """``api_key`` (a str or ``SecretStr``), else ``$env``, as a ``SecretStr``; ``None`` if
    neither is set. Blank values count as unset."""
    value: Any = api_key
    if value is not None and hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(
            f"api_key must be a str or pydantic SecretStr, got {type(value).__name__}"
        )
    if value is None or not value.strip():
        value = os.environ.get(env, "") if env else ""
    value = value.strip()
    if not value:
        return None
    pydantic = require("pydantic", extra=extra, feature=feature)
    secret: SecretStr = pydantic.SecretStr(value)
    return secret


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by :data:`MASK`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
