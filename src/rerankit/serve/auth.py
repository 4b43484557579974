"""Bearer-token authentication for ``rerankit serve``.

The token comes from an environment variable (``RERANKIT_SERVE_TOKEN`` unless told another),
is held as a pydantic ``SecretStr`` and compared in constant time (:func:`hmac.compare_digest`
on SHA-256 digests, so neither the length nor the content of the token shows in the time an
answer takes). It is never logged: the access log has no headers.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from pydantic import SecretStr

from rerankit.errors import ConfigurationError
from rerankit.serve.limits import Refused

__all__ = ["DEFAULT_TOKEN_ENV", "BearerAuth", "token_from_env"]

DEFAULT_TOKEN_ENV = "RERANKIT_SERVE_TOKEN"


def token_from_env(name: str | None = None) -> SecretStr | None:
    """The token in the variable ``name`` (default ``RERANKIT_SERVE_TOKEN``).

    ``None`` when the default variable is unset (the server then takes any request); a
    :class:`~rerankit.ConfigurationError` when a variable named on purpose is unset or empty.
    """
    variable = name or DEFAULT_TOKEN_ENV
    value = os.environ.get(variable)
    if value is None or not value.strip():
        if name is not None:
            raise ConfigurationError(
                f"--token-env {name}: the variable {name} is not set (or empty); export the "
                "token in it, or leave --token-env out to serve without a token"
            )
        return None
    return SecretStr(value.strip())


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


class BearerAuth:
    """Checks ``Authorization: Bearer <token>``; with no token every request passes.

    Example:
        >>> from pydantic import SecretStr
        >>> from rerankit.serve.auth import BearerAuth
        >>> auth = BearerAuth(SecretStr("s3cret"))
        >>> auth.check("Bearer s3cret") is None
        True
    """

    def __init__(self, token: SecretStr | None) -> None:
        self._digest = _digest(token.get_secret_value()) if token is not None else None

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def __repr__(self) -> str:
        return f"BearerAuth(enabled={self.enabled})"

    def check(self, header: str | None) -> None:
        """Raise :class:`~rerankit.serve.limits.Refused` (401) unless ``header`` carries the
        token."""
        if self._digest is None:
            return
        scheme, _, given = (header or "").partition(" ")
        ok = hmac.compare_digest(_digest(given.strip()), self._digest)
        if scheme.lower() != "bearer" or not ok:
            raise Refused(
                401,
                "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                reason="unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
