"""Magnitude statistics and mask rules on one weight tensor.

Masks are bool tensors shaped like the weight: True keeps an entry, False prunes it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def percentile(values: torch.Tensor, percent: float) -> float:
    """The `percent`-th percentile (0..100) of all entries, with numpy's linear interpolation.

    Uses kthvalue rather than torch.quantile, which refuses tensors above 2**24 entries (a
    2560-unit GRU's recurrent matrix has 19.7M).
    """
    flat = values.detach().flatten().float()
    position = percent / 100.0 * (flat.numel() - 1)
    below, above = math.floor(position), math.ceil(position)
    low = flat.kthvalue(below + 1).values.item()
    high = flat.kthvalue(above + 1).values.item() if above != below else low
    return low + (high - low) * (position - below)


def prune_smallest(weight: torch.Tensor, mask: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A new mask pruning the round(sparsity * numel) smallest |w|; already pruned entries count first.

    The result never keeps an entry `mask` prunes. Exactly that many entries end up pruned
    (ties are broken by index, never by pruning more).
    """
    n_prune = round(sparsity * weight.numel())
    already_pruned = int((~mask).sum().item())
    if n_prune <= already_pruned:
        return mask.clone()
    # Pruned entries get -1 so they are taken before any live weight, even one that is 0.
    scores = torch.where(mask, weight.detach().abs(), torch.full_like(weight, -1.0, dtype=weight.dtype))
    smallest = torch.topk(scores.flatten().float(), n_prune, largest=False, sorted=False).indices
    new_mask = mask.clone()
    new_mask.view(-1)[smallest] = False
    return new_mask


def as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """A 2-D view (rows, columns) of a weight: vectors become one row, conv kernels (out, in*k)."""
    if weight.dim() == 1:
        return weight.view(1, -1)
    return weight.reshape(weight.shape[0], -1)


def block_max_magnitude(weight: torch.Tensor, block_shape: tuple[int, int]) -> torch.Tensor:
    """Largest |w| of each block, shape (ceil(rows / r), ceil(cols / c)).

    The matrix is padded with zeros on its bottom and right edges, so the edge blocks are smaller
    blocks: padding never raises a block's maximum.
    """
    matrix = as_matrix(weight.detach()).abs().float()
    rows, cols = block_shape
    pad_rows = -matrix.shape[0] % rows
    pad_cols = -matrix.shape[1] % cols
    padded = F.pad(matrix, (0, pad_cols, 0, pad_rows))
    return F.max_pool2d(padded[None, None], kernel_size=(rows, cols))[0, 0]


def expand_block_mask(block_mask: torch.Tensor, weight: torch.Tensor, block_shape: tuple[int, int]) -> torch.Tensor:
    """A per-entry mask shaped like `weight` from a per-block mask (crops the padded edges)."""
    rows, cols = block_shape
    matrix_shape = as_matrix(weight).shape
    full = block_mask.repeat_interleave(rows, dim=0).repeat_interleave(cols, dim=1)
    return full[: matrix_shape[0], : matrix_shape[1]].reshape(weight.shape)
