import numpy as np
import pytest
import torch

from speechprune.pruning.magnitude import block_max_magnitude, expand_block_mask, percentile, prune_smallest


@pytest.mark.parametrize("percent", [0.0, 37.5, 90.0, 100.0])
def test_percentile_matches_numpy_linear_interpolation(percent):
    values = torch.randn(13, 7, generator=torch.Generator().manual_seed(1)).abs()
    assert percentile(values, percent) == pytest.approx(float(np.percentile(values.numpy(), percent)), rel=1e-6)


def test_prune_smallest_prunes_exactly_the_requested_share_and_keeps_old_prunes():
    weight = torch.tensor([[0.5, -0.1, 0.3], [0.0, 2.0, -0.2]])
    mask = torch.tensor([[True, True, True], [True, False, True]])  # 2.0 already pruned
    new = prune_smallest(weight, mask, sparsity=0.5)
    # 3 pruned: the already pruned 2.0 first, then the smallest live |w|: 0.0 and -0.1.
    assert new.tolist() == [[True, False, True], [False, False, True]]


def test_prune_smallest_breaks_ties_without_overpruning():
    weight = torch.zeros(10)
    assert int((~prune_smallest(weight, torch.ones(10, dtype=torch.bool), 0.3)).sum()) == 3


def test_block_max_pads_edge_blocks_of_a_non_multiple_matrix():
    weight = torch.arange(1.0, 31.0).reshape(5, 6) * torch.tensor([1.0, -1.0]).repeat(3)
    maxima = block_max_magnitude(weight, (2, 4))
    assert maxima.shape == (3, 2)
    assert maxima.tolist() == [[10.0, 12.0], [22.0, 24.0], [28.0, 30.0]]


def test_expanded_block_mask_covers_whole_blocks_and_crops_padding():
    weight = torch.ones(5, 6)
    blocks = torch.tensor([[True, False], [False, True], [True, True]])
    full = expand_block_mask(blocks, weight, (2, 4))
    assert full.shape == (5, 6)
    assert full[0:2, 0:4].all() and not full[0:2, 4:6].any()
    assert not full[2:4, 0:4].any() and full[2:4, 4:6].all()
    assert full[4, :].all()
