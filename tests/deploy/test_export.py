"""Export then load round-trips to the same outputs; the file's size follows the non-zero count;
damaged, truncated and incompatible files fail with their message."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from speechprune.decoding.recognizer import Recognizer
from speechprune.deploy.export import (ExportError, export_checkpoint, is_export_file,
                                       read_export)
from speechprune.deploy.loader import load_exported
from speechprune.deploy.sparse_rnn import SparseRecurrentLayer

CPU = torch.device("cpu")


def random_features(num_features: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(3, 90, num_features, generator=generator)
    return features, torch.tensor([90, 61, 23])


@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_export_then_load_gives_the_outputs_of_the_masked_training_model(
        tmp_path, rnn_type, bidirectional, speech_like_wav, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", rnn_type, bidirectional, sparsity=0.9,
                                  global_stats=rnn_type == "gru")
    export_checkpoint(checkpoint, tmp_path / "model.spx")
    reference = Recognizer.from_checkpoint(checkpoint, CPU)
    exported = load_exported(tmp_path / "model.spx", CPU)

    assert all(isinstance(rnn, SparseRecurrentLayer) for rnn in exported.model.rnns)
    assert exported.time_stride == reference.time_stride
    features, lengths = random_features(exported.features.num_features)
    with torch.no_grad():
        expected, expected_lengths = reference.model(features, lengths)
        actual, actual_lengths = exported.model(features, lengths)
    torch.testing.assert_close(actual_lengths, expected_lengths)
    for b, length in enumerate(expected_lengths.tolist()):  # frames past a length mean nothing
        torch.testing.assert_close(actual[b, :length], expected[b, :length], atol=1e-4, rtol=1e-4)

    # The same audio file through the exported model's own feature extractor and alphabet.
    exported_recognizer = Recognizer(exported.model, exported.alphabet, exported.features,
                                     exported.data_cfg, CPU, exported.source)
    assert (exported_recognizer.transcribe([str(speech_like_wav)])
            == reference.transcribe([str(speech_like_wav)]))


def test_block_pruned_model_stores_blocks_and_runs_block_kernels(tmp_path, make_checkpoint,
                                                                 speech_like_wav):
    # Hidden 40: 4x4 blocks tile every recurrent matrix; the fc head (29 x 80) is cut short.
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9,
                                 block_shape=(4, 4))
    summary = export_checkpoint(checkpoint, tmp_path / "model.spx", layout="bsr")
    layouts = {t.name: t.layout for t in summary.tensors}
    assert layouts["rnns.0.weight_hh_l0"] == "bsr" and layouts["rnns.1.weight_ih_l0_reverse"] == "bsr"
    # auto keeps the smallest per tensor (a deflated bitmask of a block pattern is tiny too),
    # and one index per block is smaller than CSR's one per weight.
    auto = export_checkpoint(checkpoint, tmp_path / "auto.spx")
    csr = export_checkpoint(checkpoint, tmp_path / "csr.spx", layout="csr")
    assert auto.file_bytes <= summary.file_bytes < csr.file_bytes
    entry = next(e for e in read_export_header(tmp_path / "model.spx")["tensors"]
                 if e["name"] == "rnns.0.weight_hh_l0")
    assert entry["block_shape"][0] % 4 == 0 and entry["block_shape"][1] % 4 == 0
    exported = load_exported(tmp_path / "model.spx", CPU)
    assert all("recurrent block-sparse" in line for line in exported.kernels), exported.kernels
    reference = Recognizer.from_checkpoint(checkpoint, CPU)
    features, lengths = random_features(exported.features.num_features)
    with torch.no_grad():
        expected = reference.model(features, lengths)[0]
        actual = exported.model(features, lengths)[0]
    torch.testing.assert_close(actual[0], expected[0], atol=1e-4, rtol=1e-4)
    exported_recognizer = Recognizer(exported.model, exported.alphabet, exported.features,
                                     exported.data_cfg, CPU, exported.source)
    assert (exported_recognizer.transcribe([str(speech_like_wav)])
            == reference.transcribe([str(speech_like_wav)]))


def read_export_header(path) -> dict:
    raw = path.read_bytes()
    header_length = struct.unpack_from("<Q", raw, 12)[0]
    return json.loads(raw[20:20 + header_length])


def test_loading_logs_which_kernel_each_layer_runs(tmp_path, make_checkpoint, caplog):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9)
    export_checkpoint(checkpoint, tmp_path / "model.spx")
    with caplog.at_level("INFO", logger="speechprune.deploy.loader"):
        exported = load_exported(tmp_path / "model.spx", CPU)
    assert [r.getMessage() for r in caplog.records][:2] == [f"model.spx: {line}"
                                                         for line in exported.kernels]
    assert all("rnns." in line and "recurrent" in line for line in exported.kernels)


def test_fp16_values_stay_within_a_stated_tolerance_and_shrink_the_file(
        tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9)
    full = export_checkpoint(checkpoint, tmp_path / "fp32.spx", values="fp32")
    half = export_checkpoint(checkpoint, tmp_path / "fp16.spx", values="fp16")
    assert half.file_bytes < full.file_bytes
    features, lengths = random_features(161)
    with torch.no_grad():
        a = load_exported(tmp_path / "fp32.spx").model(features, lengths)[0]
        b = load_exported(tmp_path / "fp16.spx").model(features, lengths)[0]
    # fp16 keeps ~3 significant digits per weight; log-probabilities move by well under 0.05.
    assert (a[0] - b[0]).abs().max() < 5e-2


@pytest.mark.parametrize("layout", ["csr", "bitmask", "bsr"])
def test_file_size_is_the_framing_plus_the_bytes_the_nonzeros_need(
        tmp_path, layout, make_checkpoint):
    block_shape = (4, 4) if layout == "bsr" else (1, 1)
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", False, sparsity=0.9,
                                 block_shape=block_shape)
    state = torch.load(checkpoint, weights_only=True)["model"]
    summary = export_checkpoint(checkpoint, tmp_path / "model.spx", layout=layout)
    raw = (tmp_path / "model.spx").read_bytes()
    header_length = struct.unpack_from("<Q", raw, 12)[0]
    payload_bytes = summary.file_bytes - 20 - header_length - 32
    expected = 0
    for name, tensor in state.items():
        nnz = int(torch.count_nonzero(tensor))
        if tensor.dim() >= 2:
            rows, cols = tensor.shape[0], tensor[0].numel()
            values = nnz * 4
            if layout == "csr":
                index_size = 1 if cols <= 256 else 2
                part_sizes = [values, nnz * index_size, (rows + 1) * 4]
            elif layout == "bsr":
                entry = next(e for e in read_export_header(tmp_path / "model.spx")["tensors"]
                             if e["name"] == name)
                br, bc = entry["block_shape"]
                padded = torch.nn.functional.pad(tensor.reshape(rows, cols) != 0,
                                                 (0, -cols % bc, 0, -rows % br))
                blocks = int(padded.reshape(-1, br, padded.shape[1] // bc, bc)
                             .any(dim=3).any(dim=1).sum())
                part_sizes = [blocks * br * bc * 4, blocks * 1, (rows // br + 1) * 4]
            else:
                mask = next(t for t in summary.tensors if t.name == name).stored_bytes - values
                assert mask <= (rows * cols + 7) // 8 + 64  # deflated bits: at most ~1 bit each
                part_sizes = [values, mask]
        else:
            part_sizes = [tensor.numel() * tensor.element_size()]
        expected += sum(size + (-size % 8) for size in part_sizes)
    assert payload_bytes == expected


def test_ninety_percent_sparse_recurrent_matrices_store_over_eight_times_smaller(
        tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9)
    summary = export_checkpoint(checkpoint, tmp_path / "model.spx", values="fp16")
    pruned = [t for t in summary.tensors if t.name.startswith("rnns.") and "weight" in t.name]
    dense_bytes = sum(4 * int(np.prod(t.shape)) for t in pruned)
    assert dense_bytes / sum(t.stored_bytes for t in pruned) > 8


def test_unpruned_model_exports_and_says_it_saves_nothing(tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.0)
    summary = export_checkpoint(checkpoint, tmp_path / "model.spx")
    assert summary.sparse_tensors == []
    assert "saves nothing" in summary.describe()
    exported = load_exported(tmp_path / "model.spx")
    assert all("dense torch" in line for line in exported.kernels)


@pytest.fixture
def export_file(tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "rnn_tanh", False, sparsity=0.9)
    export_checkpoint(checkpoint, tmp_path / "model.spx")
    return tmp_path / "model.spx"


def test_truncated_file_fails_with_a_clear_message(export_file):
    data = export_file.read_bytes()
    export_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match="corrupt or truncated"):
        read_export(export_file)
    export_file.write_bytes(data[:30])
    with pytest.raises(ExportError, match="truncated"):
        read_export(export_file)


def test_flipped_byte_fails_the_checksum(export_file):
    data = bytearray(export_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    export_file.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="checksum mismatch"):
        load_exported(export_file)


def test_file_of_another_format_version_names_both_versions(export_file):
    data = bytearray(export_file.read_bytes())
    struct.pack_into("<I", data, 8, 99)
    export_file.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="version 99.*reads version 1 and 2"):
        read_export(export_file)


def test_checkpoint_is_not_mistaken_for_an_export(tmp_path, export_file):
    checkpoint = tmp_path / "best.pt"
    assert is_export_file(export_file)
    assert not is_export_file(checkpoint)
    assert not is_export_file(tmp_path / "missing.spx")
    with pytest.raises(ExportError, match="not a speechprune export file"):
        read_export(checkpoint)
