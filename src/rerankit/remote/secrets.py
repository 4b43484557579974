"""Secrets of the remote clients: held as pydantic ``SecretStr``, masked where shown, scrubbed
from every message and log line.

* :func:`resolve_api_key`: an API key from an argument or the environment, as a ``SecretStr``.
* :class:`SecretMap`: headers or query parameters, where a value is a secret when it was given
  as a ``SecretStr`` or when its name says it carries a credential (:func:`is_secret_name`);
  other values (``X-Tenant: 1``, ``api-version``) stay plain, so masking never garbles them.
* :func:`redact`: ``text`` with every secret, and the forms it takes in URLs and Basic auth
  headers, replaced by :data:`MASK`.
* :func:`guard_logs`: registers an object's secrets (weakly) with the log redaction that
  rerankit installs once, as a log record factory, for the loggers of ``rerankit``, ``httpx``,
  ``httpcore``, ``openai``, ``cohere`` and ``fern`` (the Cohere SDK's): their request lines
  carry URLs (query keys) and their debug lines echo response headers, which a server may fill
  with the key. A record factory is the one hook that sees the records of every logger of
  those libraries (logger filters are not inherited by child loggers).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, quote_plus

from rerankit._deps import require
from rerankit.errors import ConfigurationError

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = [
    "MASK",
    "SecretMap",
    "guard_logs",
    "is_secret_name",
    "redact",
    "resolve_api_key",
    "secret_forms",
]

MASK = "**********"
"""What a secret looks like in a repr, a config, a log line or an error message."""

MIN_SECRET_LENGTH = 4
"""Values shorter than this are never searched for in text: replacing every ``1`` of a message
would destroy it, and no credential is that short."""

_SECRET_WORDS = (
    "auth",
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "cookie",
    "session",
    "signature",
    "credential",
    "bearer",
)
_SECRET_NAMES = frozenset({"sig", "code", "pwd"})
"""Query parameters that carry keys without saying so (Azure SAS ``sig``, Functions ``code``)."""

_LOG_PREFIXES = ("rerankit", "httpx", "httpcore", "openai", "cohere", "fern", "mixedbread")
"""Loggers (and their children) whose records are redacted; ``httpx`` and ``httpcore`` cover
``httpx2`` and ``httpcore2`` too, the stack of the ``openai`` SDK."""


def _secret_str(value: str) -> SecretStr:
    pydantic = require("pydantic", extra="http", feature="rerankit secrets")
    secret: SecretStr = pydantic.SecretStr(value)
    return secret


def is_secret(value: object) -> bool:
    """True for a pydantic ``SecretStr`` (or anything else with ``get_secret_value``)."""
    return callable(getattr(value, "get_secret_value", None))


def reveal(value: str | SecretStr) -> str:
    """The plain text of a value that may be a ``SecretStr``."""
    if is_secret(value):
        return str(value.get_secret_value())  # type: ignore[union-attr]
    return str(value)


def is_secret_name(name: str) -> bool:
    """Whether a header or query parameter named ``name`` carries a credential.

    Example:
        >>> from rerankit.remote.secrets import is_secret_name
        >>> [is_secret_name(n) for n in ("Authorization", "api-key", "X-Tenant", "api-version")]
        [True, True, False, False]
    """
    lowered = name.strip().lower()
    return lowered in _SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


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
    if value is not None and is_secret(value):
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
    require("pydantic", extra=extra, feature=feature)
    return _secret_str(value)


class SecretMap(Mapping[str, "str | SecretStr"]):
    """Headers or query parameters whose secret values are held as ``SecretStr``.

    A value is secret when given as a ``SecretStr`` or when :func:`is_secret_name` says its
    name carries a credential; :meth:`reveal` builds the plain dict for one request,
    :meth:`masked` the dict to show.

    Example:
        >>> from rerankit.remote.secrets import SecretMap
        >>> headers = SecretMap("headers", {"X-Api-Key": "sk-123456", "X-Tenant": "blue"})
        >>> headers.masked()
        {'X-Api-Key': '**********', 'X-Tenant': 'blue'}
        >>> headers.reveal()["X-Api-Key"]
        'sk-123456'
    """

    def __init__(self, what: str, values: Mapping[str, str | SecretStr] | None = None) -> None:
        if values is not None and not isinstance(values, Mapping):
            raise ConfigurationError(f"{what} must be a mapping of str to str")
        items: dict[str, str | SecretStr] = {}
        for name, value in (values or {}).items():
            if not isinstance(name, str) or not (isinstance(value, str) or is_secret(value)):
                raise ConfigurationError(f"{what} must be a mapping of str to str")
            if is_secret(value) or is_secret_name(name):
                items[name] = _secret_str(reveal(value))
            else:
                items[name] = value
        self._items = items

    def __getitem__(self, name: str) -> str | SecretStr:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"SecretMap({self.masked()!r})"

    def reveal(self) -> dict[str, str]:
        """The plain values, for the request being built (do not keep the result)."""
        return {name: reveal(value) for name, value in self._items.items()}

    def masked(self) -> dict[str, str]:
        """Secret values as :data:`MASK`, the others as they are."""
        return {name: MASK if is_secret(v) else str(v) for name, v in self._items.items()}

    def secrets(self) -> list[str]:
        """The plain secret values (for redaction)."""
        return [reveal(v) for v in self._items.values() if is_secret(v)]


def basic_credentials(user: str, password: str) -> str:
    """The token of an ``Authorization: Basic`` header, a form a password takes in transit."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def secret_forms(secret: str) -> set[str]:
    """``secret`` and the forms it takes in URLs (percent-encoded, ``+`` for spaces)."""
    if len(secret) < MIN_SECRET_LENGTH:
        return set()
    return {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (in each of its :func:`secret_forms`) replaced by
    :data:`MASK`.

    Example:
        >>> from rerankit.remote.secrets import redact
        >>> redact("GET /v1?key=a%2Bb%2Fc-key", ["a+b/c-key"])
        'GET /v1?key=**********'
    """
    forms = sorted({form for s in secrets for form in secret_forms(s)}, key=len, reverse=True)
    for form in forms:
        text = text.replace(form, MASK)
    return text


# -- log redaction -----------------------------------------------------------------------------


class _HasSecrets(Protocol):
    def _secrets(self) -> list[str]: ...


class _Registry:
    """The live objects whose secrets log records must not show (held weakly)."""

    def __init__(self) -> None:
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._installed = False

    def add(self, owner: _HasSecrets) -> None:
        with self._lock:
            self._owners.add(owner)
            if not self._installed:
                _install_record_factory()
                self._installed = True

    def secrets(self) -> list[str]:
        with self._lock:
            owners = list(self._owners)
        out: list[str] = []
        for owner in owners:
            try:
                out.extend(owner._secrets())
            except Exception:  # an owner half torn down: its secrets are gone with it
                continue
        return out


_REGISTRY = _Registry()


def guard_logs(owner: _HasSecrets) -> None:
    """Keep ``owner._secrets()`` out of every log record of rerankit and the HTTP / SDK
    libraries while ``owner`` lives."""
    _REGISTRY.add(owner)


def _redact_record(record: logging.LogRecord, secrets: list[str]) -> None:
    message = record.getMessage()
    cleaned = redact(message, secrets)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text, secrets)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)


def redacting_filter() -> logging.Filter:
    """A filter that also scrubs the ``extra`` attributes of a record (for loggers such as
    Cohere's ``fern`` that log request details as extras)."""

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            secrets = _REGISTRY.secrets()
            if secrets:
                _redact_record(record, secrets)
                for name, value in list(vars(record).items()):
                    if isinstance(value, str) and name not in ("msg", "exc_text"):
                        setattr(record, name, redact(value, secrets))
                    elif isinstance(value, Mapping):
                        setattr(record, name, redact(repr(dict(value)), secrets))
            return True

    return _Filter()


def _install_record_factory() -> None:
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith(_LOG_PREFIXES):
            secrets = _REGISTRY.secrets()
            if secrets:
                _redact_record(record, secrets)
        return record

    logging.setLogRecordFactory(factory)
    logging.getLogger("fern").addFilter(redacting_filter())


class SecretGetter:
    """A callable that reveals a ``SecretStr`` when called: what SDKs that take a key provider
    (``cohere``) are given, so that their client objects hold no plain key."""

    __slots__ = ("_secret",)

    def __init__(self, secret: SecretStr) -> None:
        self._secret = secret

    def __call__(self) -> str:
        return str(self._secret.get_secret_value())

    def __repr__(self) -> str:
        return f"SecretGetter({MASK!r})"
