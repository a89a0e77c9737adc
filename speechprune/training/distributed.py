"""DistributedDataParallel set-up under `torchrun`: gloo on CPU, NCCL on GPU."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Mapping, Optional

import torch
import torch.distributed as torch_dist

from speechprune.model.device import choose_device

log = logging.getLogger(__name__)


def tensor_digest(tensor: torch.Tensor) -> bytes:
    """SHA-256 of a tensor's dtype, shape and exact bytes: equal digests mean bitwise-equal
    tensors (0.0 and -0.0, or two NaNs with other payloads, differ; a permutation of the same
    values differs too, which a sum would miss)."""
    data = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8)
    digest = hashlib.sha256(f"{tensor.dtype} {tuple(tensor.shape)}".encode())
    digest.update(data.numpy().tobytes())
    return digest.digest()


@dataclass(frozen=True)
class RankDifference:
    """The first tensor (in the order given) that is not bitwise equal on every rank."""

    name: str
    ranks: tuple[int, ...]  # the ranks whose copy differs from rank 0's


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

    def first_difference(self, tensors: Mapping[str, torch.Tensor]) -> Optional[RankDifference]:
        """The first of `tensors` whose bytes differ between ranks, or None when every rank
        holds bitwise-identical ones. Each rank sends one SHA-256 digest per tensor (32 bytes),
        not the tensors; a rank with other names, in another order, differs at the first."""
        if not self.enabled:
            return None
        mine = [(name, tensor_digest(tensor)) for name, tensor in tensors.items()]
        gathered: list[list] = [[] for _ in range(self.world_size)]
        torch_dist.all_gather_object(gathered, mine)
        length = max(len(entries) for entries in gathered)
        padded = [entries + [None] * (length - len(entries)) for entries in gathered]
        for position in range(length):
            column = [entries[position] for entries in padded]
            differing = tuple(rank for rank in range(1, self.world_size) if column[rank] != column[0])
            if differing:
                name = next(entry for entry in column if entry is not None)[0]
                return RankDifference(name, differing)
        return None

    def identical_on_all_ranks(self, tensors: Mapping[str, torch.Tensor], what: str) -> bool:
        """Whether every rank holds bitwise-identical `tensors`; when not, rank 0 logs a warning
        naming the first tensor that differs and the ranks it differs on. `what` names the
        collection in that warning ("weights", "pruning masks")."""
        difference = self.first_difference(tensors)
        if difference is not None and self.is_main:
            log.warning("%s differ between ranks: %s on rank(s) %s is not bitwise equal to rank "
                        "0's (the first of %d tensors compared)", what, difference.name,
                        ", ".join(map(str, difference.ranks)), len(tensors))
        return difference is None

    def close(self) -> None:
        if self.enabled and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


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
