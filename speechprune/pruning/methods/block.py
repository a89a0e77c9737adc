"""block: Narang, Undersander, Diamos 2017, whole blocks whose largest |w| is at or below the
narang threshold are pruned; Eq. 1's q is then the percentile of the block maxima. Edge blocks
of a matrix that is not a multiple of `block_shape` are smaller (the matrix is padded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from speechprune.pruning.methods.narang import NarangConfig, NarangPruner
from speechprune.pruning.pruner import register_method

# The replay holds the weights still; under block pruning the surviving blocks grow to make up
# for the pruned ones, and block maxima sit in a narrow band, so runs end below the prediction
# (README, "Pruning during training": 1.8 to 9.5 points in the recurrent group).
BLOCK_CAVEAT = ("block pruning has ended below this prediction in every measured run (surviving "
                "blocks grow while the threshold rises): read it as an upper bound, and raise "
                "the groups' percentile to reach a target")


@dataclass
class BlockConfig(NarangConfig):
    method: str = "block"
    # (rows, columns) of one block.
    block_shape: list[int] = field(default_factory=lambda: [4, 4])


@register_method
class BlockPruner(NarangPruner):
    name = "block"
    config_class = BlockConfig
    prediction_caveat = BLOCK_CAVEAT

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        shape = list(cfg.block_shape)
        if len(shape) != 2 or any(int(s) < 1 for s in shape):
            raise ValueError(f"pruning.block_shape={shape}: must be two positive integers [rows, columns], e.g. [4, 4].")

    def block_shape(self) -> Optional[tuple[int, int]]:
        rows, cols = self.cfg.block_shape
        return int(rows), int(cols)
