"""Helpers of the ``rerankit serve`` tests: a server subprocess on 127.0.0.1 (a real
``rerankit serve`` process, fake backends registered by :mod:`tests._serve_launcher`) and the
word-overlap score the fake backends give, to compute expected answers locally."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def overlap(query: str, text: str) -> float:
    """The score of :class:`tests._fixtures.OverlapReranker`."""
    words = {w.strip("?.,").lower() for w in query.split()}
    return len(words & {w.strip("?.,").lower() for w in text.split()}) / len(words)


class ServerProcess:
    """``python -m tests._serve_launcher serve --port 0 ARGS`` and the URL it listens on."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
            "HF_HUB_OFFLINE": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.stderr: list[str] = []
        self._drain = threading.Thread()

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests._serve_launcher", "serve", "--port", "0", *self.args],
            cwd=ROOT,
            env=self.env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stderr is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.stderr.append(line)
            found = re.search(r" on (http://\S+)$", line.strip())
            if found:
                self.url = found.group(1)
                # Keep reading: access-log lines would fill the pipe and stall the server.
                self._drain = threading.Thread(target=self._read_rest, daemon=True)
                self._drain.start()
                return self
        self.stop()
        raise RuntimeError("the server did not start: " + "".join(self.stderr))

    def _read_rest(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._drain.join(5)
        return code

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
