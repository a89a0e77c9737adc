"""ONNX export, for runtimes other than speechprune's (onnxruntime, TensorRT, OpenVINO...).

The graph is the acoustic model for one utterance: features (1, frames, num_features) float32
-> log_probs (1, out_frames, classes) float32, frames dynamic. Feature extraction stays outside
the graph: the file's metadata holds what a caller needs to reproduce it and to decode
("speechprune.features": the feature config and statistics as JSON, "speechprune.alphabet":
the symbols after the CTC blank at index 0, "speechprune.time_stride").

ONNX has no sparse tensors in its operators: the pruned weights are stored dense with their
zeros, so the file is as large as the dense fp32 model and runs at dense speed. The sparse and
int8 savings need speechprune's own export (`speechprune export` without format=onnx).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from speechprune.atomic_write import atomic_path
from speechprune.deploy.export import ExportError, ExportSummary, TensorSummary

ONNX_OPSET = 17


class OneUtteranceGraph(nn.Module):
    """forward(features (1, frames, num_features)) -> log_probs (1, out_frames, classes)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((features.shape[0],), features.shape[1], dtype=torch.long)
        return self.model(features, lengths)[0]


def export_onnx(model_path: str | Path, out: str | Path, which: str = "best") -> ExportSummary:
    """Write the checkpoint's model (a file, or a run directory's `which` checkpoint) to `out`
    as ONNX; returns its summary (every tensor dense)."""
    try:
        import onnx
    except ImportError:
        raise ExportError("format=onnx needs the onnx package: pip install onnx "
                          "(make env installs it)") from None
    from speechprune.deploy.export import feature_stats_to_json
    from speechprune.model.checkpoint import load_checkpoint, load_trained_model, resolve_checkpoint

    checkpoint_path = resolve_checkpoint(model_path, which)
    trained = load_trained_model(checkpoint_path, torch.device("cpu"), which=which)
    graph = OneUtteranceGraph(trained.model).eval()
    example = torch.zeros(1, 200, trained.features.num_features)
    out = Path(out)
    with atomic_path(out) as temporary, warnings.catch_warnings():
        # The TorchScript exporter: torch.export (dynamo=True) cannot trace the model's checks
        # on utterance lengths. It warns about its own deprecation and about the traced checks.
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (example,), str(temporary), input_names=["features"],
                          output_names=["log_probs"], opset_version=ONNX_OPSET, dynamo=False,
                          dynamic_axes={"features": {1: "frames"}, "log_probs": {1: "out_frames"}})
        model = onnx.load(str(temporary))
        checkpoint = load_checkpoint(checkpoint_path)
        features = {"config": checkpoint["config"]["data"]["features"],
                    "stats": feature_stats_to_json(checkpoint.get("feature_stats"))}
        for key, value in (("speechprune.alphabet", checkpoint["alphabet"]),
                           ("speechprune.features", json.dumps(features)),
                           ("speechprune.time_stride", str(trained.model.time_stride))):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(temporary))
    state = trained.model.state_dict()
    tensors = [TensorSummary(name, list(t.shape), "dense", int(torch.count_nonzero(t)),
                             t.numel() * t.element_size()) for name, t in state.items()]
    dense_bytes = sum(t.numel() * (4 if t.is_floating_point() else t.element_size())
                      for t in state.values())
    summary = ExportSummary(out, out.stat().st_size, dense_bytes, tensors, values="fp32",
                            container="onnx")
    summary.checkpoint_bytes = checkpoint_path.stat().st_size
    return summary
