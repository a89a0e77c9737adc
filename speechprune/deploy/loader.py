"""Load an export file into a runnable recognizer model (sparse recurrent kernels on the CPU)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf

from speechprune.config import DataConfig, ModelConfig
from speechprune.data.features import FeatureExtractor, FeatureStats
from speechprune.data.text import Alphabet
from speechprune.deploy.export import ExportError, is_export_file, read_export
from speechprune.deploy.native import unavailable_reason
from speechprune.deploy.sparse_rnn import SparseDeepSpeech2, sparsify_recurrent_layers

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
    kernels: list[str] = field(default_factory=list)  # which kernel each recurrent layer runs

    @property
    def time_stride(self) -> int:
        return self.model.time_stride


def load_exported(path: str | Path, device: torch.device | str = "cpu", *,
                  parallel: bool = False,
                  sparse_min_sparsity: float | None = None) -> ExportedModel:
    """Read and verify an export file and build its model in eval mode on `device`.

    On the CPU, RNN and GRU layers whose hidden-to-hidden weights are at least
    `sparse_min_sparsity` zeros (default: the value stored at export) run the sparse kernels,
    with two threads when `parallel` (a bidirectional layer runs one direction per thread, a
    unidirectional one splits its rows over numba's threads); other layers, and every layer on
    a GPU, run torch's dense ones. Raises ExportError for a missing, corrupt, truncated or
    incompatible file."""
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
    threshold = (contents.inference.get("sparse_min_sparsity", 0.5)
                 if sparse_min_sparsity is None else sparse_min_sparsity)
    kernels = sparsify_recurrent_layers(model, threshold, parallel=parallel)
    for line in kernels:
        log.info("%s: %s", path.name, line)
    if any("CSR" in line for line in kernels) and unavailable_reason():
        log.info("%s: unstructured layers run the CSR kernel, not permute-ELL: %s", path.name,
                 unavailable_reason())
    return ExportedModel(model, alphabet, features, data_cfg, path, kernels)
