"""A trained recognizer: acoustic model + features + alphabet, loaded from a checkpoint, a run
directory or an export file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from speechprune.config import DataConfig
from speechprune.data.audio import load_audio
from speechprune.data.features import FeatureExtractor
from speechprune.data.text import Alphabet
from speechprune.decoding.beam import GreedyDecoder
from speechprune.deploy.loader import is_export_file, load_exported
from speechprune.model.checkpoint import load_trained_model


@dataclass
class Recognizer:
    model: torch.nn.Module
    alphabet: Alphabet
    features: FeatureExtractor
    data_cfg: DataConfig
    device: torch.device
    source: Path

    @classmethod
    def from_checkpoint(cls, model_path: str | Path, device: torch.device,
                        which: str = "best", parallel: bool = False) -> "Recognizer":
        """Load an exported model (`speechprune export`, run with the sparse kernels, on two
        threads when `parallel`), a checkpoint file, or a run directory's `best` (else `last`)
        checkpoint."""
        if is_export_file(model_path):
            exported = load_exported(model_path, device, parallel=parallel)
            return cls(exported.model, exported.alphabet, exported.features, exported.data_cfg,
                       device, Path(exported.source))
        trained = load_trained_model(model_path, device, which)
        return cls(trained.model, trained.alphabet, trained.features, trained.data_cfg, device,
                   trained.source)

    @property
    def time_stride(self) -> int:
        return self.model.time_stride

    @torch.no_grad()
    def transcribe(self, audio_paths: list[str], autocast_dtype: Optional[torch.dtype] = None,
                   decoder: Optional[Callable[[torch.Tensor, torch.Tensor], list[str]]] = None,
                   ) -> list[str]:
        """Transcripts of audio files, one at a time (no padding effects). decoder: see
        speechprune.decoding.beam.build_decoder; None decodes greedily."""
        decoder = decoder or GreedyDecoder(self.alphabet)
        transcripts = []
        for path in audio_paths:
            waveform = load_audio(path, self.data_cfg.features.sample_rate)
            features = self.features(torch.from_numpy(waveform)).unsqueeze(0).to(self.device)
            lengths = torch.tensor([features.shape[1]], device=self.device)
            log_probs, output_lengths = self.model(features, lengths)
            transcripts.append(decoder(log_probs.float().cpu(), output_lengths.cpu())[0])
        return transcripts
