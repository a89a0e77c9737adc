"""DeepSpeech2 (Amodei et al. 2016): 2D convolutions -> recurrent stack -> fully connected -> CTC.

Padding never reaches a valid output frame: padded frames are zeroed after every convolution,
the recurrent layers run on packed sequences, batch-norm statistics are taken over valid
(batch x time) frames only, and the lookahead sees zeros past an utterance's end. An utterance
therefore gives the same outputs alone or padded in a batch.

Parameter names are the ones pruning patterns select by (fnmatch):
    conv.convs.<i>.weight         conv kernels, (channels_out, channels_in, time, freq)
    conv.norms.<i>.weight/bias    their batch norms
    rnns.<i>.weight_ih_l0         torch's own RNN/GRU/LSTM names (cuDNN kernels on GPU), also
    rnns.<i>.weight_hh_l0         ..._reverse for the backward direction and bias_ih/bias_hh
    rnn_norms.<i>.weight/bias     sequence-wise batch norm before recurrent layer i >= 1
    lookahead.weight              row convolution (unidirectional models only)
    fc.hidden.weight/bias         optional hidden fully connected layer (fc_hidden > 0)
    fc.output.weight/bias         output layer to the characters (blank at index 0)
Weights are plain parameters, never re-parametrized, so pruning may edit `.data` in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from speechprune.config import ModelConfig

RNN_TYPES = ("rnn_relu", "rnn_tanh", "gru", "lstm")
MERGE_MODES = ("sum", "concat")


class ModelConfigError(ValueError):
    """A model configuration that cannot build a network; the message names the key."""


def validate_model_config(cfg: ModelConfig) -> None:
    """Raise ModelConfigError naming the first `model.*` key that cannot work."""
    if cfg.rnn_type not in RNN_TYPES:
        raise ModelConfigError(f"model.rnn_type must be one of {RNN_TYPES}, got {cfg.rnn_type!r}")
    if cfg.merge not in MERGE_MODES:
        raise ModelConfigError(f"model.merge must be one of {MERGE_MODES}, got {cfg.merge!r}")
    if cfg.conv_layers < 1:
        raise ModelConfigError(f"model.conv_layers must be at least 1, got {cfg.conv_layers}")
    for key in ("conv_channels", "conv_kernels", "conv_strides"):
        entries = getattr(cfg, key)
        if len(entries) < cfg.conv_layers:
            raise ModelConfigError(
                f"model.{key} has {len(entries)} entries but model.conv_layers is "
                f"{cfg.conv_layers}; give one entry per conv layer"
            )
    for key in ("conv_kernels", "conv_strides"):
        for i, pair in enumerate(getattr(cfg, key)[: cfg.conv_layers]):
            if len(pair) != 2 or min(pair) < 1:
                raise ModelConfigError(
                    f"model.{key}[{i}] must be [time, frequency] with both >= 1, got {list(pair)}"
                )
    for key in ("hidden_size", "num_layers"):
        if getattr(cfg, key) < 1:
            raise ModelConfigError(f"model.{key} must be at least 1, got {getattr(cfg, key)}")
    if not cfg.bidirectional and cfg.lookahead_context < 0:
        raise ModelConfigError(
            f"model.lookahead_context must be >= 0 frames, got {cfg.lookahead_context}"
        )
    if cfg.relu_clip <= 0:
        raise ModelConfigError(f"model.relu_clip must be positive, got {cfg.relu_clip}")
    if cfg.fc_hidden < 0:
        raise ModelConfigError(f"model.fc_hidden must be >= 0 (0: none), got {cfg.fc_hidden}")


def valid_frames(lengths: torch.Tensor, max_time: int) -> torch.Tensor:
    """(batch, max_time) bool, True where the frame index is below the utterance's length."""
    return torch.arange(max_time, device=lengths.device)[None, :] < lengths[:, None]


def clipped_relu(x: torch.Tensor, clip: float) -> torch.Tensor:
    """min(max(x, 0), clip), DeepSpeech2's activation."""
    return torch.clamp(x, min=0.0, max=clip)


class MaskedBatchNorm(nn.Module):
    """Batch norm over channel dim 1 whose statistics ignore padded positions.

    forward(x, mask): x is (batch, channels, ...) and mask is bool, broadcastable to x with
    size 1 in the channel dim (True = valid). Statistics are computed in float32 (safe under
    autocast); the result keeps x's dtype. Padded positions come out as zero.
    """

    def __init__(self, num_channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.num_channels = num_channels
        self.momentum = momentum
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.register_buffer("running_mean", torch.zeros(num_channels))
        self.register_buffer("running_var", torch.ones(num_channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        shape = [1, self.num_channels] + [1] * (x.dim() - 2)
        x32 = x.float()
        weights = mask.to(torch.float32)
        if self.training:
            reduce_dims = [0] + list(range(2, x.dim()))
            # Valid positions per channel: mask positions times the dims the mask broadcasts over.
            count = weights.expand(x.shape[0], 1, *x.shape[2:]).sum().clamp(min=1.0)
            mean = (x32 * weights).sum(dim=reduce_dims) / count
            centered = (x32 - mean.view(shape)) * weights
            var = centered.pow(2).sum(dim=reduce_dims) / count
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp(min=1.0)
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(unbiased.detach(), self.momentum)
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight.float() * torch.rsqrt(var + self.eps)
        out = (x32 - mean.view(shape)) * scale.view(shape) + self.bias.float().view(shape)
        return (out * weights).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, momentum={self.momentum}, eps={self.eps}"


class ConvFrontEnd(nn.Module):
    """2D convolutions over (time, frequency), each with masked batch norm and clipped ReLU.

    forward(features (batch, time, freq), lengths (batch,)) ->
        (batch, out_time, channels * out_freq), out_lengths (batch,)
    """

    def __init__(self, cfg: ModelConfig, num_features: int):
        super().__init__()
        self.relu_clip = cfg.relu_clip
        self.kernels = [tuple(k) for k in cfg.conv_kernels[: cfg.conv_layers]]
        self.strides = [tuple(s) for s in cfg.conv_strides[: cfg.conv_layers]]
        # Half-kernel padding: a frame's output sees the same neighbourhood wherever it lies.
        self.paddings = [(kt // 2, kf // 2) for kt, kf in self.kernels]
        channels = [1] + list(cfg.conv_channels[: cfg.conv_layers])
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)  # the norm adds a bias
            for c_in, c_out, kernel, stride, padding in zip(
                channels, channels[1:], self.kernels, self.strides, self.paddings
            )
        )
        self.norms = nn.ModuleList(MaskedBatchNorm(c) for c in channels[1:])
        out_freq = num_features
        for (_, kf), (_, sf), (_, pf) in zip(self.kernels, self.strides, self.paddings):
            out_freq = (out_freq + 2 * pf - kf) // sf + 1
        self.output_size = channels[-1] * out_freq

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames per utterance for input `lengths` (frames); same integer type."""
        for (kt, _), (st, _), (pt, _) in zip(self.kernels, self.strides, self.paddings):
            lengths = (lengths + 2 * pt - kt) // st + 1
        return lengths

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = features.unsqueeze(1)  # (batch, 1, time, freq)
        x = x * valid_frames(lengths, x.shape[2])[:, None, :, None].to(x.dtype)
        # CPU inference runs the convolutions on channels-last tensors: oneDNN's kernels for that
        # layout took the front end of a 32-channel model from 85 to 40 ms per 4 s utterance
        # (1 thread); training steps and 16-channel models measured no gain, so they keep NCHW.
        layout = (torch.channels_last if not self.training and x.device.type == "cpu"
                  else torch.contiguous_format)
        for conv, norm, (kt, _), (st, _), (pt, _) in zip(
            self.convs, self.norms, self.kernels, self.strides, self.paddings
        ):
            x = conv(x.contiguous(memory_format=layout))
            lengths = (lengths + 2 * pt - kt) // st + 1
            mask = valid_frames(lengths, x.shape[2])[:, None, :, None]
            # The norm zeroes padded frames, so the next conv sees zeros past each utterance's
            # end, exactly as if the utterance were alone.
            x = clipped_relu(norm(x, mask), self.relu_clip) * mask.to(x.dtype)
        batch, channels, time, freq = x.shape
        x = x.permute(0, 2, 1, 3).reshape(batch, time, channels * freq)
        return x, lengths


class Lookahead(nn.Module):
    """Row convolution (DeepSpeech2 section 3.5): y[t, d] = sum_{j=0..context} w[d, j] x[t+j, d].

    Gives a unidirectional model `context` frames of future at each output frame.
    forward(x (batch, time, size), mask (batch, time) bool) -> (batch, time, size).
    """

    def __init__(self, size: int, context: int):
        super().__init__()
        self.size = size
        self.context = context
        self.weight = nn.Parameter(torch.empty(size, 1, context + 1))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask[:, :, None].to(x.dtype)  # zeros past the end, as when run alone
        x = F.pad(x.transpose(1, 2), (0, self.context))  # future frames beyond the batch: zero
        out = F.conv1d(x, self.weight.to(x.dtype), groups=self.size).transpose(1, 2)
        return out * mask[:, :, None].to(out.dtype)

    def extra_repr(self) -> str:
        return f"{self.size}, context={self.context}"


class OutputHead(nn.Module):
    """Optional hidden fully connected layer (clipped ReLU), then the linear output layer."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, relu_clip: float):
        super().__init__()
        self.relu_clip = relu_clip
        self.hidden = nn.Linear(input_size, hidden_size) if hidden_size > 0 else None
        self.output = nn.Linear(hidden_size if hidden_size > 0 else input_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hidden is not None:
            x = clipped_relu(self.hidden(x), self.relu_clip)
        return self.output(x)


def _make_rnn(rnn_type: str, input_size: int, hidden_size: int, bidirectional: bool) -> nn.Module:
    common = dict(input_size=input_size, hidden_size=hidden_size, batch_first=True,
                  bidirectional=bidirectional)
    if rnn_type == "gru":
        return nn.GRU(**common)
    if rnn_type == "lstm":
        return nn.LSTM(**common)
    return nn.RNN(nonlinearity=rnn_type.removeprefix("rnn_"), **common)


class DeepSpeech2(nn.Module):
    """The acoustic model. `num_features`: frequency bins per frame; `num_classes`: output
    symbols including the CTC blank (index 0)."""

    def __init__(self, cfg: ModelConfig, num_features: int, num_classes: int):
        super().__init__()
        validate_model_config(cfg)
        self.name = cfg.name
        self.rnn_type = cfg.rnn_type
        self.bidirectional = cfg.bidirectional
        self.merge = cfg.merge
        self.relu_clip = cfg.relu_clip
        self.num_classes = num_classes
        self.conv = ConvFrontEnd(cfg, num_features)

        directions = 2 if cfg.bidirectional else 1
        layer_output = cfg.hidden_size * (directions if cfg.merge == "concat" else 1)
        input_sizes = [self.conv.output_size] + [layer_output] * (cfg.num_layers - 1)
        self.rnns = nn.ModuleList(
            _make_rnn(cfg.rnn_type, size, cfg.hidden_size, cfg.bidirectional)
            for size in input_sizes
        )
        # Batch norm on the input of every recurrent layer but the first (the convs have their
        # own): index i normalizes the input of rnns[i + 1].
        self.rnn_norms = nn.ModuleList(
            MaskedBatchNorm(size) for size in input_sizes[1:] if cfg.batch_norm
        )
        self.lookahead = (
            Lookahead(layer_output, cfg.lookahead_context) if not cfg.bidirectional else None
        )
        self.fc = OutputHead(layer_output, cfg.fc_hidden, num_classes, cfg.relu_clip)

    @property
    def time_stride(self) -> int:
        """Input frames per output frame (product of the conv time strides)."""
        stride = 1
        for time_stride, _ in self.conv.strides:
            stride *= time_stride
        return stride

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames per utterance for `lengths` input frames."""
        return self.conv.output_lengths(lengths)

    def _run_rnn(self, rnn: nn.Module, x: torch.Tensor, lengths_cpu: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
        out, _ = rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        if self.bidirectional and self.merge == "sum":
            forward_half, backward_half = out.chunk(2, dim=-1)
            out = forward_half + backward_half
        return out

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """features (batch, time, freq) float, lengths (batch,) int64 frames ->
        log_probs (batch, out_time, num_classes) float32, out_lengths (batch,) int64.
        Frames at or past out_lengths[b] are padding and carry no meaning."""
        x, out_lengths = self.conv(features, lengths)
        # pack_padded_sequence wants lengths on the CPU; this is the one host sync per batch.
        lengths_cpu = out_lengths.detach().cpu()
        if lengths_cpu.numel() and int(lengths_cpu.min()) < 1:
            raise ValueError(
                f"every utterance needs at least one input frame; got lengths {lengths.tolist()}"
            )
        if lengths_cpu.numel() and int(lengths_cpu.max()) > x.shape[1]:
            raise ValueError(
                f"lengths {lengths.tolist()} exceed the {features.shape[1]} frames of the padded "
                "features (batch, time, freq)"
            )
        mask = valid_frames(out_lengths, x.shape[1])
        for i, rnn in enumerate(self.rnns):
            if i > 0 and len(self.rnn_norms) > 0:
                x = self.rnn_norms[i - 1](x.transpose(1, 2), mask[:, None, :]).transpose(1, 2)
            x = self._run_rnn(rnn, x, lengths_cpu)
        if self.lookahead is not None:
            x = clipped_relu(self.lookahead(x, mask), self.relu_clip)
        logits = self.fc(x)
        # CTC wants float32 log-probabilities even when the network runs in bf16/fp16.
        return F.log_softmax(logits.float(), dim=-1), out_lengths

    def parameter_counts(self) -> list[tuple[str, int]]:
        """(layer name, number of parameters) for every layer that owns parameters, in order;
        the counts sum to the model's total."""
        counts = []
        for name, module in self.named_modules():
            own = sum(p.numel() for p in module.parameters(recurse=False))
            if own:
                counts.append((name, own))
        return counts

    def describe(self) -> str:
        """A readable per-layer table (name, kind, parameters) with the total."""
        modules = dict(self.named_modules())
        counts = self.parameter_counts()
        title = ("layer", "kind", "parameters")
        rows = [(name, _describe_layer(modules[name]), f"{count:,}") for name, count in counts]
        total = ("total", "", f"{sum(count for _, count in counts):,}")
        widths = [max(len(row[i]) for row in [title, *rows, total]) for i in range(3)]

        def line(row: tuple[str, str, str]) -> str:
            return f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}"

        directions = f"bidirectional ({self.merge})" if self.bidirectional else "unidirectional"
        header = (f"DeepSpeech2 '{self.name}': {self.rnn_type}, {directions}, "
                  f"time stride {self.time_stride}, {self.num_classes} classes")
        rule = "-" * (sum(widths) + 4)
        return "\n".join([header, line(title), *map(line, rows), rule, line(total)])


def _describe_layer(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return (f"conv {module.in_channels}->{module.out_channels} kernel "
                f"{tuple(module.kernel_size)} stride {tuple(module.stride)}")
    if isinstance(module, nn.RNNBase):
        kind = module.mode.lower().replace("_", " ")  # "gru", "lstm", "rnn relu", "rnn tanh"
        direction = "bidirectional" if module.bidirectional else "unidirectional"
        return f"{kind} {module.input_size}->{module.hidden_size} {direction}"
    if isinstance(module, MaskedBatchNorm):
        return f"batch norm {module.num_channels}"
    if isinstance(module, Lookahead):
        return f"lookahead {module.size} x {module.context + 1} frames"
    if isinstance(module, nn.Linear):
        return f"linear {module.in_features}->{module.out_features}"
    return type(module).__name__
