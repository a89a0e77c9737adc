"""The device a model runs on, from a config's `device` setting (training and inference alike)."""

from __future__ import annotations

import torch


def choose_device(requested: str, local_rank: int = 0, key: str = "trainer.device") -> torch.device:
    """The device `requested` names: "auto" (CUDA when available, else the CPU), "cpu", or
    "cuda" (GPU `local_rank`). Errors name `key`, the setting the caller read `requested` from."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{key}=cuda but no CUDA device is available; use {key}=cpu")
        return torch.device("cuda", local_rank)
    if requested != "cpu":
        raise ValueError(f"{key}={requested!r}: choose 'auto', 'cpu' or 'cuda'")
    return torch.device("cpu")
