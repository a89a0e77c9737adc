"""The convolution front end in int8, for int8 exports on the CPU.

Each convolution with its batch norm and clipped ReLU becomes one quantized convolution
(torch's quantized engine: oneDNN / fbgemm on x86, qnnpack on ARM):
- the batch norm (eval: a per-channel affine map) folds into the convolution: weights scaled
  per output channel, which only changes each channel's int8 scale, and a bias;
- the clipped ReLU is the quantized output itself: uint8 with zero point 0 saturates below at 0
  (the ReLU) and above at 255 * scale, so the scale is chosen so that 255 * scale is the clip,
  min(relu_clip, the largest channel's beta + BN_RANGE_SIGMAS * |gamma|): after the batch norm a
  channel's activations have mean beta and deviation |gamma|, so this bound loses only outliers
  and keeps 8 bits for the range activations occupy;
- the first convolution's input (the features) is quantized per utterance from its min and max.
The front end is the dense part of a pruned model (Narang pruning leaves convolutions alone) and
took ~40% of its time in fp32; int8 takes a fraction (README, bench_transcription.py).
Utterances run one at a time, so padding never enters a convolution (as in the fp32 model,
which masks it away).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from speechprune.model.deepspeech2 import ConvFrontEnd

# Post-norm activations above beta + this many |gamma| are clipped (see the module docstring).
BN_RANGE_SIGMAS = 6.0


def quantized_engine_available() -> bool:
    return torch.backends.quantized.engine in ("x86", "fbgemm", "onednn", "qnnpack")


class Int8ConvFrontEnd(nn.Module):
    """ConvFrontEnd's forward contract: (features (batch, time, freq), lengths (batch,)) ->
    ((batch, out_time, channels * out_freq), out_lengths), zeros past each length."""

    def __init__(self, front_end: ConvFrontEnd, weights: dict[str, tuple[np.ndarray, np.ndarray]],
                 relu_clip: float):
        super().__init__()
        self.front_end = front_end
        # What DeepSpeech2 reads of its front end besides forward.
        self.strides, self.output_size = front_end.strides, front_end.output_size
        self.output_lengths = front_end.output_lengths
        self.layers = []
        for i, (conv, norm) in enumerate(zip(front_end.convs, front_end.norms)):
            q, scales = weights[f"convs.{i}.weight"]
            factor = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).detach().double()
            bias = (norm.bias - norm.running_mean * factor).detach().float()
            signs = torch.where(factor < 0, -1, 1).to(torch.int8)
            folded = (torch.from_numpy(scales).double() * factor.abs()).clamp(min=1e-30)
            q_folded = torch.from_numpy(q).reshape(conv.weight.shape) * signs.view(-1, 1, 1, 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's quantized tensors announce their move
                weight = torch._make_per_channel_quantized_tensor(
                    q_folded.contiguous(), folded, torch.zeros(len(folded), dtype=torch.long), 0)
                packed = torch.ops.quantized.conv2d_prepack(
                    weight, bias, list(conv.stride), list(conv.padding), list(conv.dilation),
                    conv.groups)
            reach = float((norm.bias + BN_RANGE_SIGMAS * norm.weight.abs()).max().detach())
            output_range = min(relu_clip, max(reach, 1e-3))
            self.layers.append((packed, output_range / 255.0))

    def _one(self, features: torch.Tensor) -> torch.Tensor:
        """features (time, freq) -> (out_time, channels * out_freq)."""
        x = features.float()[None, None]
        low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        scale = max(high - low, 1e-8) / 255.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qx = torch.quantize_per_tensor(x, scale, int(round(-low / scale)), torch.quint8)
            qx = qx.contiguous(memory_format=torch.channels_last)
            for packed, output_scale in self.layers:
                qx = torch.ops.quantized.conv2d(qx, packed, output_scale, 0)
            out = qx.dequantize()
        _, channels, time, freq = out.shape
        return out[0].permute(1, 0, 2).reshape(time, channels * freq)

    @torch.no_grad()
    def forward(self, features: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        out_lengths = self.front_end.output_lengths(lengths)
        outputs = [self._one(features[b, :int(length)]) for b, length in enumerate(lengths.tolist())]
        batch, time = features.shape[0], int(out_lengths.max()) if len(outputs) else 0
        time = max(time, self.front_end.output_lengths(torch.tensor(features.shape[1])).item())
        result = features.new_zeros(batch, time, self.front_end.output_size)
        for b, out in enumerate(outputs):
            result[b, :out.shape[0]] = out
        return result, out_lengths

    def extra_repr(self) -> str:
        return f"int8 ({torch.backends.quantized.engine}), {len(self.layers)} convolutions"
