"""Device and dtype resolution for the local (torch) backends."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from rerankit._deps import require
from rerankit.errors import ConfigurationError

DTYPES = ("auto", "float32", "bfloat16", "float16")


def torch_module() -> Any:
    return require("torch", extra="local", feature="Local rerankers")


def resolve_device(device: str | None) -> str:
    """``None`` (or ``"auto"``) picks ``cuda`` when available, then ``mps``, else ``cpu``."""
    if device and device != "auto":
        return device
    torch = torch_module()
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AMX or AVX512-BF16)."""
    torch = torch_module()
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None:
            try:
                if fn():
                    return True
            except Exception:  # pragma: no cover - private API changed
                pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_dtype(dtype: str, device: str) -> Any:
    """Map a dtype option to a torch dtype. ``auto`` picks bf16 where the hardware runs it fast."""
    if dtype not in DTYPES:
        raise ConfigurationError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    torch = torch_module()
    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device == "cpu" and cpu_supports_bf16():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)
