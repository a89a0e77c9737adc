"""DeepSpeech2: shapes and lengths, padding invariance, parameter accounting, learning."""

from __future__ import annotations

import copy
import math
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from speechprune.config import ModelConfig
from speechprune.model.deepspeech2 import DeepSpeech2, ModelConfigError

CONF_MODEL = Path(__file__).resolve().parents[2] / "conf" / "model"
NUM_FEATURES = 20
NUM_CLASSES = 7

RNN_TYPES = ["rnn_relu", "rnn_tanh", "gru", "lstm"]
# (bidirectional, merge)
DIRECTIONS = [(False, "sum"), (True, "sum"), (True, "concat")]


@pytest.fixture(autouse=True)
def single_thread():
    """These models are tiny: with the cores shared, thread synchronisation costs more than
    the arithmetic (10 optimizer steps: 9 s on two threads, 0.6 s on one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(rnn_type: str = "gru", bidirectional: bool = True, merge: str = "sum",
                conv_layers: int = 2, **overrides) -> ModelConfig:
    """A model small enough that a test runs in milliseconds, with every part switched on."""
    values = dict(
        name="tiny", rnn_type=rnn_type, bidirectional=bidirectional, merge=merge,
        conv_layers=conv_layers, conv_channels=[3, 4, 2],
        conv_kernels=[[5, 7], [3, 5], [3, 3]], conv_strides=[[2, 2], [1, 2], [2, 1]],
        hidden_size=6, num_layers=2, lookahead_context=3, fc_hidden=5,
    )
    values.update(overrides)
    return ModelConfig(**values)


def padded_batch(lengths: list[int], extra_padding: int = 0, seed: int = 0):
    """Random features whose padded frames hold large garbage (not zeros), so any leak shows."""
    generator = torch.Generator().manual_seed(seed)
    time = max(lengths) + extra_padding
    features = torch.randn(len(lengths), time, NUM_FEATURES, generator=generator)
    garbage = 100.0 * torch.randn(len(lengths), time, NUM_FEATURES, generator=generator)
    for b, length in enumerate(lengths):
        features[b, length:] = garbage[b, length:]
    return features, torch.tensor(lengths, dtype=torch.int64)


def warm_up_statistics(model: DeepSpeech2) -> None:
    """One train-mode pass so the batch norms' running statistics are not the identity."""
    model.train()
    with torch.no_grad():
        model(*padded_batch([30, 22, 17], seed=99))
    model.eval()


@pytest.mark.parametrize("conv_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional,merge", DIRECTIONS)
@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_output_shape_and_lengths_follow_the_conv_time_strides(rnn_type, bidirectional, merge,
                                                               conv_layers):
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config(rnn_type, bidirectional, merge, conv_layers),
                        NUM_FEATURES, NUM_CLASSES).eval()
    lengths = [1, 2, 3, 5, 8, 13, 21, 34]
    features, lengths_tensor = padded_batch(lengths)
    with torch.no_grad():
        log_probs, out_lengths = model(features, lengths_tensor)

    # Odd kernels with half-kernel padding: ceil(length / stride) frames at every layer.
    expected = [math.ceil(length / model.time_stride) for length in lengths]
    assert out_lengths.dtype == torch.int64
    assert out_lengths.tolist() == expected
    assert model.output_lengths(lengths_tensor).tolist() == expected
    assert log_probs.shape == (len(lengths), max(expected), NUM_CLASSES)
    assert log_probs.dtype == torch.float32
    # Log-softmax over the classes.
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]))


def test_time_stride_is_the_product_of_the_used_conv_time_strides():
    strides = [[2, 2], [1, 2], [2, 1]]
    assert DeepSpeech2(tiny_config(conv_layers=1, conv_strides=strides), 20, 7).time_stride == 2
    assert DeepSpeech2(tiny_config(conv_layers=2, conv_strides=strides), 20, 7).time_stride == 2
    assert DeepSpeech2(tiny_config(conv_layers=3, conv_strides=strides), 20, 7).time_stride == 4


@pytest.mark.parametrize("bidirectional,merge", DIRECTIONS)
@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_eval_outputs_of_an_utterance_do_not_depend_on_batch_padding(rnn_type, bidirectional,
                                                                     merge):
    torch.manual_seed(1)
    model = DeepSpeech2(tiny_config(rnn_type, bidirectional, merge, conv_layers=3),
                        NUM_FEATURES, NUM_CLASSES)
    warm_up_statistics(model)
    lengths = [41, 9, 26, 1]
    features, lengths_tensor = padded_batch(lengths, extra_padding=7)
    with torch.no_grad():
        batch_log_probs, batch_lengths = model(features, lengths_tensor)
        for b, length in enumerate(lengths):
            alone, alone_length = model(features[b : b + 1, :length], lengths_tensor[b : b + 1])
            assert alone_length.item() == batch_lengths[b].item() == alone.shape[1]
            torch.testing.assert_close(batch_log_probs[b, : alone.shape[1]], alone[0],
                                       rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bidirectional,merge", DIRECTIONS)
@pytest.mark.parametrize("rnn_type", ["rnn_relu", "lstm"])
def test_train_mode_batch_norm_statistics_ignore_padded_frames(rnn_type, bidirectional, merge):
    torch.manual_seed(2)
    model = DeepSpeech2(tiny_config(rnn_type, bidirectional, merge, conv_layers=2),
                        NUM_FEATURES, NUM_CLASSES).train()
    twin = copy.deepcopy(model)
    lengths = [33, 12, 20]
    tight, lengths_tensor = padded_batch(lengths, extra_padding=0)
    loose, _ = padded_batch(lengths, extra_padding=25)
    loose[:, : tight.shape[1]] = tight

    tight_out, tight_lengths = model(tight, lengths_tensor)
    loose_out, loose_lengths = twin(loose, lengths_tensor)

    assert tight_lengths.tolist() == loose_lengths.tolist()
    for b, length in enumerate(tight_lengths.tolist()):
        torch.testing.assert_close(loose_out[b, :length], tight_out[b, :length],
                                   rtol=1e-5, atol=1e-5)
    buffers = dict(twin.named_buffers())
    norm_buffers = [name for name in buffers if "running" in name]
    assert len(norm_buffers) == 2 * (2 + 1)  # two conv norms, one between the two rnn layers
    for name, value in model.named_buffers():
        torch.testing.assert_close(buffers[name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", [
    tiny_config("gru", True, "concat", conv_layers=3),
    tiny_config("lstm", False, conv_layers=1, fc_hidden=0),
    tiny_config("rnn_tanh", True, "sum", batch_norm=False),
])
def test_parameter_counts_cover_every_parameter_and_describe_lists_every_layer(config):
    model = DeepSpeech2(config, NUM_FEATURES, NUM_CLASSES)
    counts = model.parameter_counts()
    total = sum(p.numel() for p in model.parameters())
    assert sum(count for _, count in counts) == total
    owners = {name.rsplit(".", 1)[0] for name, _ in model.named_parameters()}
    assert {name for name, _ in counts} == owners

    table = model.describe()
    for name, count in counts:
        assert any(line.startswith(name + " ") and line.endswith(f"{count:,}")
                   for line in table.splitlines()), f"{name} missing from:\n{table}"
    assert table.splitlines()[-1].startswith("total")
    assert table.splitlines()[-1].endswith(f"{total:,}")


def test_parameter_names_are_selectable_by_pruning_patterns():
    model = DeepSpeech2(tiny_config("gru", True, "sum", num_layers=3), NUM_FEATURES, NUM_CLASSES)
    names = [name for name, _ in model.named_parameters()]
    hidden = [n for n in names if fnmatch(n, "rnns.*.weight_hh*")]
    assert hidden == [f"rnns.{i}.weight_hh_l0{suffix}" for i in range(3)
                      for suffix in ("", "_reverse")]
    assert [n for n in names if fnmatch(n, "fc.*weight")] == ["fc.hidden.weight",
                                                              "fc.output.weight"]
    assert [n for n in names if fnmatch(n, "conv.convs.*weight")] == [
        "conv.convs.0.weight", "conv.convs.1.weight"]


def test_weights_edited_in_place_change_the_output():
    """Pruning writes zeros into `.data`; the forward pass must read those very tensors."""
    torch.manual_seed(3)
    model = DeepSpeech2(tiny_config("gru", True), NUM_FEATURES, NUM_CLASSES).eval()
    features, lengths = padded_batch([15, 11])
    with torch.no_grad():
        before, _ = model(features, lengths)
        for name, parameter in model.named_parameters():
            if fnmatch(name, "rnns.*.weight_hh*"):
                parameter.data.zero_()
        after, _ = model(features, lengths)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("bidirectional,merge", DIRECTIONS)
@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_a_few_optimizer_steps_on_ctc_loss_lower_the_loss(rnn_type, bidirectional, merge):
    torch.manual_seed(4)
    model = DeepSpeech2(tiny_config(rnn_type, bidirectional, merge), NUM_FEATURES,
                        NUM_CLASSES).train()
    features, lengths = padded_batch([40, 31, 24])
    targets = torch.tensor([1, 2, 3, 4, 2, 5, 6, 1, 3])
    target_lengths = torch.tensor([4, 3, 2])
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    def loss_value() -> torch.Tensor:
        log_probs, out_lengths = model(features, lengths)
        return ctc(log_probs.transpose(0, 1), targets, out_lengths, target_lengths)

    first = loss_value()
    first.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, f"no gradient reaches {name}"
    optimizer.step()
    for _ in range(9):
        optimizer.zero_grad()
        loss_value().backward()
        optimizer.step()
    assert loss_value().item() < 0.9 * first.item()


def test_forward_under_cpu_bf16_autocast_returns_float32_log_probs():
    torch.manual_seed(5)
    model = DeepSpeech2(tiny_config("gru", False), NUM_FEATURES, NUM_CLASSES).train()
    features, lengths = padded_batch([19, 8])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_probs, out_lengths = model(features, lengths)
    assert log_probs.dtype == torch.float32
    assert torch.isfinite(log_probs[0, : out_lengths[0]]).all()
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]))
    log_probs.sum().backward()


@pytest.mark.parametrize("path", sorted(CONF_MODEL.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_model_preset_merges_onto_the_schema_and_builds(path):
    cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(path))
    model_cfg: ModelConfig = OmegaConf.to_object(cfg)
    assert model_cfg.name == path.stem
    model = DeepSpeech2(model_cfg, num_features=161, num_classes=29)
    assert all(m.bidirectional == model_cfg.bidirectional for m in model.rnns)
    assert (model.lookahead is None) == model_cfg.bidirectional
    log_probs, out_lengths = model.eval()(torch.randn(1, 30, 161), torch.tensor([30]))
    assert log_probs.shape == (1, out_lengths.item(), 29)


@pytest.mark.parametrize("overrides,key", [
    (dict(rnn_type="transformer"), "model.rnn_type"),
    (dict(merge="average"), "model.merge"),
    (dict(conv_layers=3, conv_channels=[4, 4]), "model.conv_channels"),
    (dict(conv_strides=[[2], [1, 2], [1, 1]]), "model.conv_strides[0]"),
    (dict(conv_kernels=[[5, 0], [3, 5], [3, 3]]), "model.conv_kernels[0]"),
])
def test_an_unusable_config_names_the_key_to_fix(overrides, key):
    with pytest.raises(ModelConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        DeepSpeech2(tiny_config(**overrides), NUM_FEATURES, NUM_CLASSES)


@pytest.mark.parametrize("lengths,message", [([12, 0], "at least one input frame"),
                                             ([12, 30], "exceed the 12 frames")])
def test_impossible_lengths_are_refused_with_the_reason(lengths, message):
    model = DeepSpeech2(tiny_config(), NUM_FEATURES, NUM_CLASSES)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(2, 12, NUM_FEATURES), torch.tensor(lengths))
