"""One rank of tests/training/test_distributed.py: joins the gloo group that RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT describe (as under torchrun), compares tensors across ranks in
every case of CASES, and writes what it found to `<out>/rank<RANK>.json`.

Run by the test, two processes at once: `python rank_comparison_worker.py <out>`.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch

from speechprune.training.distributed import setup_distributed


def weights() -> dict[str, torch.Tensor]:
    """The same tensors on every rank: weights with pruned (exactly zero) entries, and masks."""
    generator = torch.Generator().manual_seed(0)
    recurrent = torch.randn(12, 4, generator=generator).abs()
    mask = recurrent > 0.5
    return {"conv.weight": torch.randn(4, 1, 5, 11, generator=generator),
            "rnn.weight_hh": recurrent * mask,  # +0.0 where pruned
            "rnn.weight_hh mask": mask,
            "fc.weight": torch.randn(6, 4, generator=generator)}


def swap_two_values(tensors: dict[str, torch.Tensor]) -> None:
    """Two different entries trade places: every sum (and count) stays the same."""
    flat = tensors["fc.weight"].view(-1)
    flat[0], flat[1] = flat[1].clone(), flat[0].clone()


def nudge_one_value(tensors: dict[str, torch.Tensor]) -> None:
    """One entry moves to the next float32 up (about 1e-7 relative)."""
    flat = tensors["conv.weight"].view(-1)
    flat[3] = torch.nextafter(flat[3], torch.tensor(float("inf")))


def negative_zero(tensors: dict[str, torch.Tensor]) -> None:
    """A pruned +0.0 becomes -0.0: one bit, which torch.equal and any sum ignore."""
    weight = tensors["rnn.weight_hh"].view(-1)
    weight[int((weight == 0).nonzero()[0])] = -0.0


def move_a_kept_entry(tensors: dict[str, torch.Tensor]) -> None:
    """Two kept entries each move one place, in opposite directions: the number of kept
    entries and the sum of their positions (the old fingerprint) stay the same."""
    flat = tensors["rnn.weight_hh mask"].view(-1)
    kept = flat.tolist()
    right = next(i for i in range(len(kept) - 1) if kept[i] and not kept[i + 1])
    left = next(i for i in range(right + 2, len(kept) - 1) if not kept[i] and kept[i + 1])
    flat[right], flat[right + 1] = False, True
    flat[left], flat[left + 1] = True, False


def unmask_one_weight(tensors: dict[str, torch.Tensor]) -> None:
    flat = tensors["rnn.weight_hh mask"].view(-1)
    flat[int((~flat).nonzero()[0])] = True


def two_differences(tensors: dict[str, torch.Tensor]) -> None:
    """Two tensors differ: the first in order is the one named."""
    nudge_one_value(tensors)
    swap_two_values(tensors)


CASES = {"identical": lambda tensors: None, "swap_two_values": swap_two_values,
         "nudge_one_value": nudge_one_value, "negative_zero": negative_zero,
         "move_a_kept_entry": move_a_kept_entry, "unmask_one_weight": unmask_one_weight,
         "two_differences": two_differences}


def main(out: Path) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    dist = setup_distributed("cpu")
    results = {}
    for case, perturb in CASES.items():
        tensors = weights()
        if dist.rank == 1:
            with torch.no_grad():
                perturb(tensors)
        difference = dist.first_difference(tensors)
        results[case] = None if difference is None else [difference.name, list(difference.ranks)]
    # The warning the training loop's check logs, once, on rank 0.
    tensors = weights()
    if dist.rank == 1:
        swap_two_values(tensors)
    results["identical_on_all_ranks"] = dist.identical_on_all_ranks(tensors, "weights")
    (out / f"rank{dist.rank}.json").write_text(json.dumps(results))
    dist.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
