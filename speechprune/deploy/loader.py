"""Load an export file into a runnable recognizer model (sparse or int8 kernels on the CPU)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf

from speechprune.config import DataConfig, ExportConfig, ModelConfig
from speechprune.data.features import FeatureExtractor, FeatureStats
from speechprune.data.text import Alphabet
from speechprune.deploy import native
from speechprune.deploy.export import ExportContents, ExportError, is_export_file, read_export
from speechprune.deploy.int8_conv import Int8ConvFrontEnd, quantized_engine_available
from speechprune.deploy.int8_rnn import Int8Linear, Int8RecurrentLayer
from speechprune.deploy.sparse_rnn import (SparseDeepSpeech2, sparsify_recurrent_layers,
                                           unsupported_reason)

__all__ = ["ExportedModel", "ExportError", "is_export_file", "load_exported"]

log = logging.getLogger(__name__)


@dataclass
class ExportedModel:
    """What Recognizer needs: `.model` has DeepSpeech2's forward(features, lengths) ->
    (log_probs, out_lengths) contract and `.time_stride`."""

    model: SparseDeepSpeech2
    alphabet: Alphabet
    features: FeatureExtractor
    data_cfg: DataConfig
    source: Path
    kernels: list[str] = field(default_factory=list)  # which kernel each layer runs

    @property
    def time_stride(self) -> int:
        return self.model.time_stride


def _zeros(parameters: list[torch.Tensor]) -> float:
    return 1.0 - sum(int(torch.count_nonzero(p)) for p in parameters) / sum(p.numel()
                                                                            for p in parameters)


def int8_layers(model: SparseDeepSpeech2, contents: ExportContents, level: str,
                parallel: bool) -> list[str]:
    """Swap the recurrent layers and the head's linear layers of `model` (on the CPU) for their
    int8 versions on the C kernels, with the weights as the export stored them. Returns one line
    per layer saying which kernels it runs."""
    kernels = []
    if quantized_engine_available():
        weights = {name.removeprefix("conv."): q for name, q in contents.quantized.items()
                   if name.startswith("conv.convs.")}
        model.conv = Int8ConvFrontEnd(model.conv, weights, model.relu_clip)
        kernels.append(f"conv: {model.conv.extra_repr()}")
    for i, rnn in enumerate(model.rnns):
        if unsupported_reason(rnn):
            kernels.append(f"rnns.{i}: dense torch, dequantized ({unsupported_reason(rnn)})")
            continue
        weights = {name: contents.quantized[f"rnns.{i}.{name}"]
                   for name, _ in rnn.named_parameters() if name.startswith("weight")}
        layer = Int8RecurrentLayer(rnn, weights, level, parallel=parallel)
        model.rnns[i] = layer
        hh = [p for name, p in rnn.named_parameters() if name.startswith("weight_hh")]
        ih = [p for name, p in rnn.named_parameters() if name.startswith("weight_ih")]
        kernels.append(f"rnns.{i}: {layer.kernel_summary} ({_zeros(hh):.1%} / {_zeros(ih):.1%} "
                       "zeros)")
    for name in ("hidden", "output"):
        linear = getattr(model.fc, name)
        if linear is not None:
            layer = Int8Linear(linear, contents.quantized[f"fc.{name}.weight"], level)
            setattr(model.fc, name, layer)
            kernels.append(f"fc.{name}: {layer.weight.describe()} "
                           f"({_zeros([linear.weight]):.1%} zeros)")
    return kernels


def _int8_level(path: Path) -> str | None:
    """The kernel level int8 layers run at (None: the C kernels are not available here)."""
    try:
        return native.selected_level()
    except native.KernelLevelError as error:
        raise ExportError(f"{path}: cannot run its int8 layers: {error}") from None


def load_exported(path: str | Path, device: torch.device | str = "cpu", *,
                  parallel: bool = False,
                  sparse_min_sparsity: float | None = None) -> ExportedModel:
    """Read and verify an export file and build its model in eval mode on `device`.

    On the CPU, an int8 export (`values=int8`) runs every recurrent and fully connected layer on
    the int8 C kernels, each matrix in the faster of its sparse and dense layouts; other exports
    run RNN and GRU layers whose hidden-to-hidden weights are at least `sparse_min_sparsity`
    zeros (default: the value stored at export) on the fp32 sparse kernels. `parallel`: two
    threads (a bidirectional layer runs one direction per thread). Every layer on a GPU, and
    int8 layers where the C kernels are not built, run torch's dense kernels on the dequantized
    weights. Raises ExportError for a missing, corrupt, truncated or incompatible file, or a
    kernel level (SPEECHPRUNE_KERNEL) this CPU lacks."""
    contents = read_export(path)
    path = Path(path)
    try:
        data_cfg: DataConfig = OmegaConf.merge(OmegaConf.structured(DataConfig),
                                               contents.config["data"])
        model_cfg: ModelConfig = OmegaConf.merge(OmegaConf.structured(ModelConfig),
                                                 contents.config["model"])
    except Exception as error:  # omegaconf raises several types for a config that does not fit
        raise ExportError(f"{path}: the stored config does not fit this speechprune's schema "
                          f"({error}); re-export the model with this version") from None
    alphabet = Alphabet.from_config(data_cfg.text)
    if alphabet.symbols != contents.alphabet:
        raise ExportError(f"{path}: alphabet in the config and the export differ")
    stats = None
    if contents.feature_stats is not None:
        entry = dict(contents.feature_stats)
        entry["mean"] = torch.tensor(entry["mean"], dtype=torch.float32)
        entry["std"] = torch.tensor(entry["std"], dtype=torch.float32)
        stats = FeatureStats(**entry)
    features = FeatureExtractor(data_cfg.features, stats)
    model = SparseDeepSpeech2(model_cfg, features.num_features, len(alphabet))
    try:
        model.load_state_dict(contents.state_dict)
    except RuntimeError as error:
        raise ExportError(f"{path}: tensors do not fit the stored model config ({error})") from None
    model = model.to(device).eval()
    on_cpu = torch.device(device).type == "cpu"
    level = _int8_level(path) if contents.quantized and on_cpu else None
    if level is not None:
        kernels = int8_layers(model, contents, level, parallel)
    else:
        if contents.quantized and on_cpu:
            log.info("%s: int8 kernels unavailable (%s); running the dequantized weights on the "
                     "fp32 kernels", path.name, native.unavailable_reason())
        threshold = sparse_min_sparsity
        if threshold is None:  # files written before the setting was stored take its default
            threshold = contents.inference.get("sparse_min_sparsity",
                                               ExportConfig.sparse_min_sparsity)
        kernels = sparsify_recurrent_layers(model, threshold, parallel=parallel)
    for line in kernels:
        log.info("%s: %s", path.name, line)
    if any("CSR" in line for line in kernels) and native.unavailable_reason():
        log.info("%s: unstructured layers run the CSR kernel, not permute-ELL: %s",
                 path.name, native.unavailable_reason())
    return ExportedModel(model, alphabet, features, data_cfg, path, kernels)
