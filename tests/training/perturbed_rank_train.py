"""`speechprune train` whose rank 1 changes its model and masks just before the end-of-run
identity check, for the test of that check on a real distributed run (tests/training/test_loop.py).

Run under torchrun like the console script: `torchrun ... perturbed_rank_train.py train <overrides>`.
On rank 1 only: two different entries of the first recurrent matrix trade places (the sum of
the weights stays the same) and one pruned entry of the first fc matrix's mask is set again
(its weight stays zero, so only the mask differs).
"""

from __future__ import annotations

import torch

from speechprune import cli
from speechprune.training import loop

real_finish = loop.Trainer.finish


def perturbed_finish(self: loop.Trainer):
    if self.dist.rank == 1:
        groups = {group.name: group for group in self.pruner.groups}
        with torch.no_grad():
            weight = groups["recurrent"].matrices[0].param.view(-1)
            first = int(weight.nonzero()[0])
            other = next(i for i in range(first + 1, weight.numel()) if weight[i] != weight[first])
            weight[first], weight[other] = weight[other].clone(), weight[first].clone()
            mask = groups["fc"].matrices[0].mask.view(-1)
            mask[int((~mask).nonzero()[0])] = True
    return real_finish(self)


loop.Trainer.finish = perturbed_finish

if __name__ == "__main__":
    cli.main()
