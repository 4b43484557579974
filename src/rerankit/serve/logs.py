"""Structured access logs of ``rerankit serve``: one JSON object per request on the
``rerankit.serve.access`` logger, without bodies, queries, documents or headers (so neither
user data nor the bearer token reaches a log)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

__all__ = ["ACCESS", "JsonFormatter", "access", "configure"]

ACCESS = logging.getLogger("rerankit.serve.access")
log = logging.getLogger("rerankit.serve")


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__
        return json.dumps(out, default=str)


def access(**fields: Any) -> None:
    """Log one answered request (method, path, status, milliseconds, documents, client...)."""
    ACCESS.info("request", extra={"fields": fields})


def configure(level: int = logging.INFO) -> None:
    """Send ``rerankit.serve`` records to stderr as JSON lines (what ``rerankit serve`` does);
    a process that configured its own handlers keeps them."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
