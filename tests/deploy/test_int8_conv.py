"""The int8 convolution front end: the fp32 front end's output within 8-bit rounding, clipped
where the fp32 one clips, the same alone as in a padded batch, zeros past each length."""

from __future__ import annotations

import pytest
import torch

from speechprune.commands import compose_config
from speechprune.deploy import int8
from speechprune.deploy.int8_conv import Int8ConvFrontEnd, quantized_engine_available
from speechprune.model.deepspeech2 import ConvFrontEnd

pytestmark = pytest.mark.skipif(not quantized_engine_available(),
                                reason=f"torch's quantized engine is {torch.backends.quantized.engine}")


def trained_like_front_end(seed: int) -> ConvFrontEnd:
    """Two convolutions with batch-norm statistics off their defaults, one gamma negative."""
    cfg = compose_config("train", ["model.conv_layers=2", "model.conv_channels=[8,8]",
                                   "model.conv_kernels=[[5,11],[5,7]]",
                                   "model.conv_strides=[[2,2],[1,2]]"]).model
    torch.manual_seed(seed)
    front_end = ConvFrontEnd(cfg, 80).eval()
    with torch.no_grad():
        for norm in front_end.norms:
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.5)
        front_end.norms[0].weight[3] = -0.8
    return front_end


def int8_front_end(front_end: ConvFrontEnd, relu_clip: float = 20.0) -> Int8ConvFrontEnd:
    weights = {f"convs.{i}.weight": int8.quantize_rows(conv.weight.detach().numpy())
               for i, conv in enumerate(front_end.convs)}
    return Int8ConvFrontEnd(front_end, weights, relu_clip)


def test_int8_front_end_follows_the_fp32_one_within_8_bit_rounding():
    front_end = trained_like_front_end(seed=0)
    features = torch.randn(1, 120, 80, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([120])
    with torch.no_grad():
        expected, expected_lengths = front_end(features, lengths)
    actual, actual_lengths = int8_front_end(front_end)(features, lengths)
    assert torch.equal(actual_lengths, expected_lengths) and actual.shape == expected.shape
    assert (actual >= 0).all()  # the clipped ReLU's lower bound
    error = (actual - expected).abs()
    assert error.max() < 0.08 * expected.max() and error.mean() < 0.01 * expected.max()


def test_int8_front_end_clips_where_the_relu_clip_does():
    front_end = trained_like_front_end(seed=2)
    features = 4 * torch.randn(1, 60, 80, generator=torch.Generator().manual_seed(3))
    actual, _ = int8_front_end(front_end, relu_clip=0.5)(features, torch.tensor([60]))
    assert actual.max() <= 0.5 + 1e-6 and (actual > 0.49).any()


def test_int8_front_end_gives_an_utterance_the_same_output_alone_and_in_a_batch():
    front_end = int8_front_end(trained_like_front_end(seed=4))
    features = torch.randn(2, 90, 80, generator=torch.Generator().manual_seed(5))
    lengths = torch.tensor([90, 51])
    batch, batch_lengths = front_end(features, lengths)
    alone, alone_lengths = front_end(features[1:, :51], lengths[1:])
    length = int(alone_lengths[0])
    assert int(batch_lengths[1]) == length
    torch.testing.assert_close(batch[1, :length], alone[0, :length], rtol=0, atol=0)
    assert (batch[1, length:] == 0).all()
