"""DistributedDataParallel set-up under `torchrun`: gloo on CPU, NCCL on GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            torch_dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
        return tensor

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's `flag`, on every rank (for decisions only rank 0 can make)."""
        if not self.enabled:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        torch_dist.broadcast(value, src=0)
        return bool(value.item())

    def all_equal(self, value: torch.Tensor) -> bool:
        """Whether every rank holds the same `value` (a small float64 tensor)."""
        if not self.enabled:
            return True
        gathered = [torch.zeros_like(value) for _ in range(self.world_size)]
        torch_dist.all_gather(gathered, value)
        return all(torch.equal(gathered[0], other) for other in gathered[1:])

    def close(self) -> None:
        if self.enabled and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def choose_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("trainer.device=cuda but no CUDA device is available; use trainer.device=cpu")
        return torch.device("cuda", local_rank)
    if requested != "cpu":
        raise ValueError(f"trainer.device={requested!r}: choose 'auto', 'cpu' or 'cuda'")
    return torch.device("cpu")


def setup_distributed(requested_device: str) -> DistributedContext:
    """Join the process group `torchrun` describes in the environment, or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = choose_device(requested_device, local_rank)
    if world_size > 1 and not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                      rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, device)
