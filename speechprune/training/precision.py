"""Which floating-point type the training step autocasts to (`trainer.precision`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# CPU flags (Linux /proc/cpuinfo names) of native bf16 arithmetic: without them bf16 is
# emulated and slower than fp32, so `auto` keeps fp32 there.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The first processor's feature flags; empty where /proc/cpuinfo does not exist."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def resolve_precision(precision: str, device: torch.device,
                      flags: Optional[set[str]] = None) -> str:
    """`auto` becomes bf16 where the device computes it natively (a CUDA GPU with bf16, a CPU
    with AVX-512 BF16 or AMX) and fp32 elsewhere; other values are returned as given."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    flags = cpu_flags() if flags is None else flags
    return "bf16" if any(flag in flags for flag in CPU_BF16_FLAGS) else "fp32"


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of a resolved precision (None: plain fp32)."""
    if precision not in AUTOCAST_DTYPES:
        choices = [*AUTOCAST_DTYPES, "auto"]
        raise ValueError(f"trainer.precision={precision!r}: choose one of {choices}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("trainer.precision=fp16 needs a GPU; use bf16 or fp32 on the CPU")
    return AUTOCAST_DTYPES[precision]
