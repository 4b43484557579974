"""Who holds an embedded Qdrant folder: its lock, and the process holding it.

Embedded (local) Qdrant takes an exclusive, non-blocking lock on ``<folder>/.lock`` for as long
as a client has the folder open. :func:`is_locked` tries the same lock (and lets it go at
once); :func:`lock_holder` finds the process holding it in ``/proc/locks`` (Linux; ``None``
elsewhere or when it cannot be told).
"""

from __future__ import annotations

import os
from pathlib import Path

from rerankit._deps import require

__all__ = ["LOCK_FILE", "is_locked", "lock_holder", "process_name"]

LOCK_FILE = ".lock"
"""The lock file embedded Qdrant keeps in its folder."""


def is_locked(folder: Path) -> bool:
    """True when another open client holds ``folder``'s lock (this process's included)."""
    lock = folder / LOCK_FILE
    if not lock.is_file():
        return False
    portalocker = require(
        "portalocker", extra="qdrant", feature="The embedded Qdrant store", package="portalocker"
    )
    with lock.open("r+") as handle:
        try:
            portalocker.lock(
                handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
            )
        except portalocker.exceptions.LockException:
            return True
        portalocker.unlock(handle)
    return False


def lock_holder(folder: Path, *, locks: str | None = None) -> int | None:
    """The pid holding ``folder``'s lock, read from ``/proc/locks`` (``locks`` overrides its
    text); ``None`` when it cannot be told."""
    try:
        info = (folder / LOCK_FILE).stat()
        table = locks if locks is not None else Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 6693 fe:00:2147473 0 EOF"; "->" marks a waiter.
        parts = line.split()
        if len(parts) < 6 or "->" in parts:
            continue
        pid, where = parts[4], parts[5]
        try:
            major, minor, inode = where.split(":")
            if (
                int(inode) == info.st_ino
                and int(major, 16) == os.major(info.st_dev)
                and int(minor, 16) == os.minor(info.st_dev)
            ):
                return int(pid)
        except ValueError:
            continue
    return None


def process_name(pid: int, *, width: int = 60) -> str | None:
    """The command line of process ``pid`` (shortened), or ``None`` when unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    text = " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)
    if not text:
        return None
    return text if len(text) <= width else text[: width - 3] + "..."
