"""`speechprune export ... format=onnx`: onnxruntime gives the PyTorch model's log-probabilities
and transcripts, and the file carries what a caller needs to make features and decode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from speechprune.data.audio import load_audio
from speechprune.decoding.beam import GreedyDecoder
from speechprune.deploy.onnx_export import export_onnx
from speechprune.inference.recognizer import Recognizer

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
CPU = torch.device("cpu")


@pytest.mark.parametrize("rnn_type,bidirectional", [("gru", True), ("lstm", False),
                                                    ("rnn_relu", True)])
def test_onnx_export_gives_the_transcripts_and_log_probs_of_pytorch(
        tmp_path, make_checkpoint, speech_like_wav, rnn_type, bidirectional):
    checkpoint = make_checkpoint(tmp_path / "best.pt", rnn_type, bidirectional, sparsity=0.9,
                                 global_stats=True)
    summary = export_onnx(checkpoint, tmp_path / "model.onnx")
    assert "ONNX stores every tensor dense" in summary.describe()
    reference = Recognizer.from_checkpoint(checkpoint, CPU)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    decoder = GreedyDecoder(reference.alphabet)
    # Two lengths: the frame axis is dynamic, not the length traced at export.
    for seconds in (1.2, 0.7):
        waveform = load_audio(str(speech_like_wav), 16000)[:int(seconds * 16000)]
        features = reference.features(torch.from_numpy(waveform)).unsqueeze(0)
        with torch.no_grad():
            expected, lengths = reference.model(features, torch.tensor([features.shape[1]]))
        actual = session.run(None, {"features": features.numpy()})[0]
        assert actual.shape == tuple(expected.shape)
        np.testing.assert_allclose(actual, expected.numpy(), atol=1e-4, rtol=1e-4)
        assert decoder(torch.from_numpy(actual), lengths) == decoder(expected, lengths)


def test_onnx_file_names_its_alphabet_features_and_time_stride(tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.5,
                                 global_stats=True)
    export_onnx(checkpoint, tmp_path / "model.onnx")
    metadata = {p.key: p.value for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    reference = Recognizer.from_checkpoint(checkpoint, CPU)
    assert metadata["speechprune.alphabet"] == reference.alphabet.symbols
    assert int(metadata["speechprune.time_stride"]) == reference.time_stride
    features = json.loads(metadata["speechprune.features"])
    assert features["config"]["kind"] == reference.data_cfg.features.kind
    assert len(features["stats"]["mean"]) == reference.features.num_features
