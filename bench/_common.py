"""What the benchmark scripts share: paths, machine facts, CPU accounting, and writing one
section of ``docs/benchmarks.md``.

The scripts run as ``python bench/<script>.py`` from the repository root, which puts this
folder on ``sys.path``, so they import it as ``_common``.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rerankit.eval.report import environment

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"

_BF16_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else what ``platform`` knows)."""
    return str(environment()["cpu"])


def cpu_flags() -> list[str]:
    """Which of the flags that matter for bf16 inference this CPU has."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return [f for f in _BF16_FLAGS if f in flags]
    except OSError:
        pass
    return []


def version(package: str) -> str:
    """The installed version of ``package``, or ``"not installed"``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as text."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(v) for v in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user..steal; guest time is already inside user
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass(frozen=True)
class CpuShare:
    """Where the machine's CPU went during a run: this benchmark against everything else."""

    wall_s: float
    own_cpu_s: float
    other_cpu_s: float | None
    cores: int

    @property
    def other_share(self) -> float | None:
        """The other processes' share of the machine's capacity over the run (0 to 1)."""
        if self.other_cpu_s is None or self.wall_s <= 0:
            return None
        return max(0.0, self.other_cpu_s) / (self.wall_s * self.cores)

    def describe(self) -> str:
        """One sentence for the report: was the machine to itself?"""
        share = self.other_share
        if share is None:
            return "The CPU time of other processes could not be read on this system."
        other = max(0.0, self.other_cpu_s or 0.0)
        if share < 0.05:
            return (
                f"The machine was otherwise idle: other processes used {other:.0f} CPU-seconds "
                f"during the run, {100 * share:.1f}% of its capacity."
            )
        return (
            f"**The machine was shared with other jobs while this ran**: other processes used "
            f"{other:.0f} CPU-seconds, {100 * share:.0f}% of its capacity, so absolute times "
            "are noisy."
        )


class CpuMeter:
    """Measures a run's own CPU time (children included) and the rest of the machine's.

    Example:
        >>> meter = CpuMeter()
        >>> share = meter.stop()
        >>> share.wall_s >= 0 and share.own_cpu_s >= 0
        True
    """

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._own = _own_cpu_s()
        self._busy = _busy_cpu_s()

    def stop(self) -> CpuShare:
        """The figures from construction until now."""
        wall = time.perf_counter() - self._wall
        own = _own_cpu_s() - self._own
        busy = _busy_cpu_s()
        other = busy - self._busy - own if busy is not None and self._busy is not None else None
        return CpuShare(wall_s=wall, own_cpu_s=own, other_cpu_s=other, cores=os.cpu_count() or 1)


def write_section(path: Path, heading: str, section: str) -> None:
    """Put ``section`` in place of the one under ``heading`` (up to the next ``## ``) in
    ``path``, or append it; the rest of the file is left as it is."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    section = section.rstrip("\n") + "\n"
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
