"""The device a model runs on, from a config's `device` setting (training and inference alike)."""

from __future__ import annotations

import torch


def choose_device(requested: str, local_rank: int = 0) -> torch.device:
    """The device `requested` names: "auto" (CUDA when available, else the CPU), "cpu", or
    "cuda" (GPU `local_rank`)."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("trainer.device=cuda but no CUDA device is available; use trainer.device=cpu")
        return torch.device("cuda", local_rank)
    if requested != "cpu":
        raise ValueError(f"trainer.device={requested!r}: choose 'auto', 'cpu' or 'cuda'")
    return torch.device("cpu")
