"""Export then load round-trips to the same outputs; the file's size follows the non-zero count;
damaged, truncated and incompatible files fail with their message."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors
import safetensors.numpy
import torch

from speechprune.deploy.export import (ExportError, export_checkpoint, is_export_file,
                                       read_export)
from speechprune.deploy import native
from speechprune.deploy.int8_rnn import Int8Linear, Int8RecurrentLayer
from speechprune.deploy.loader import load_exported
from speechprune.deploy.sparse_rnn import SparseRecurrentLayer
from speechprune.inference.recognizer import Recognizer

CPU = torch.device("cpu")


def random_features(num_features: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(3, 90, num_features, generator=generator)
    return features, torch.tensor([90, 61, 23])


@pytest.mark.slow
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


@pytest.mark.slow
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
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        return json.loads(handle.metadata()["header"])


def stored_arrays(path) -> dict[str, np.ndarray]:
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}


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


@pytest.mark.parametrize("values", ["fp32", "int8"])
@pytest.mark.parametrize("layout", ["csr", "bitmask", "bsr"])
def test_file_size_is_the_framing_plus_the_bytes_the_nonzeros_need(
        tmp_path, layout, values, make_checkpoint):
    block_shape = (4, 4) if layout == "bsr" else (1, 1)
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", False, sparsity=0.9,
                                 block_shape=block_shape)
    state = torch.load(checkpoint, weights_only=True)["model"]
    summary = export_checkpoint(checkpoint, tmp_path / "model.spx", layout=layout, values=values)
    arrays = stored_arrays(tmp_path / "model.spx")
    header = read_export_header(tmp_path / "model.spx")
    value_bytes = 1 if values == "int8" else 4
    for name, tensor in state.items():
        entry = next(e for e in header["tensors"] if e["name"] == name)
        stored = {part: arrays[f"{name}/{part}"].nbytes for part in entry["parts"]}
        if tensor.dim() < 2:
            assert stored == {"values": tensor.numel() * tensor.element_size()}
            continue
        rows, cols = tensor.shape[0], tensor[0].numel()
        nnz = entry["nnz"]  # int8 may round a tiny weight to zero: nnz counts what is stored
        assert nnz <= int(torch.count_nonzero(tensor))
        expected = {"values": nnz * value_bytes}
        if values == "int8":
            expected["scales"] = rows * 4  # one float32 scale per output row
        if layout == "csr":
            expected.update(indices=nnz * (1 if cols <= 256 else 2), indptr=(rows + 1) * 4)
        elif layout == "bsr":
            br, bc = entry["block_shape"]
            padded = torch.nn.functional.pad(tensor.reshape(rows, cols) != 0,
                                             (0, -cols % bc, 0, -rows % br))
            blocks = int(padded.reshape(-1, br, padded.shape[1] // bc, bc)
                         .any(dim=3).any(dim=1).sum())
            expected.update(values=blocks * br * bc * value_bytes, indices=blocks * 1,
                            indptr=(rows // br + 1) * 4)
        else:
            assert stored["mask"] <= (rows * cols + 7) // 8 + 64  # deflated: at most ~1 bit each
            expected["mask"] = stored["mask"]
        assert stored == expected, name
    # The file is the safetensors header (the metadata inside) plus exactly these arrays.
    with (tmp_path / "model.spx").open("rb") as handle:
        header_bytes = 8 + int.from_bytes(handle.read(8), "little")
    assert summary.file_bytes == header_bytes + sum(a.nbytes for a in arrays.values())


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
    with safetensors.safe_open(str(export_file), framework="numpy") as handle:
        metadata = handle.metadata()
    arrays = stored_arrays(export_file)
    export_file.write_bytes(safetensors.numpy.save(arrays, metadata={**metadata, "version": "99"}))
    with pytest.raises(ExportError, match="version 99.*reads version 3"):
        read_export(export_file)


def test_file_of_the_container_before_safetensors_asks_for_a_re_export(tmp_path):
    old = tmp_path / "model.spx"
    old.write_bytes(b"SPRNEXP\x00" + (2).to_bytes(4, "little") + bytes(100))
    assert is_export_file(old)
    with pytest.raises(ExportError, match="format version 1 or 2.*re-export the model"):
        load_exported(old)


def test_safetensors_file_of_another_program_is_not_an_export(tmp_path):
    other = tmp_path / "weights.safetensors"
    other.write_bytes(safetensors.numpy.save({"w": np.zeros(3, np.float32)}, metadata={"a": "b"}))
    assert not is_export_file(other)
    with pytest.raises(ExportError, match="not a speechprune export file"):
        read_export(other)


def test_checkpoint_is_not_mistaken_for_an_export(tmp_path, export_file):
    checkpoint = tmp_path / "best.pt"
    assert is_export_file(export_file)
    assert not is_export_file(checkpoint)
    assert not is_export_file(tmp_path / "missing.spx")
    with pytest.raises(ExportError, match="not a speechprune export file"):
        read_export(checkpoint)


# ---- int8 exports --------------------------------------------------------------------------

needs_int8_kernels = pytest.mark.skipif(
    not native.supported_levels(), reason=f"C kernels not built: {native.unavailable_reason()}")


@needs_int8_kernels
@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_int8_export_runs_every_layer_on_int8_kernels_close_to_the_float_model(
        tmp_path, rnn_type, bidirectional, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", rnn_type, bidirectional, sparsity=0.9)
    export_checkpoint(checkpoint, tmp_path / "model.spx", values="int8")
    exported = load_exported(tmp_path / "model.spx", CPU)
    assert all(isinstance(rnn, Int8RecurrentLayer) for rnn in exported.model.rnns)
    assert isinstance(exported.model.fc.output, Int8Linear)
    assert all(" int8 " in line for line in exported.kernels), exported.kernels
    reference = Recognizer.from_checkpoint(checkpoint, CPU)
    features, lengths = random_features(exported.features.num_features)
    with torch.no_grad():
        expected, expected_lengths = reference.model(features, lengths)
        actual, actual_lengths = exported.model(features, lengths)
    torch.testing.assert_close(actual_lengths, expected_lengths)
    for b, length in enumerate(expected_lengths.tolist()):
        difference = (actual[b, :length] - expected[b, :length]).abs()
        # log-probabilities of a random 2-layer model move by a few hundredths under int8
        assert difference.max() < 0.1 and difference.mean() < 0.02, (b, difference.max())
        assert (actual[b, length:] == actual[b, length:]).all()  # padding frames are finite


@needs_int8_kernels
def test_int8_export_gives_the_same_outputs_at_every_kernel_level(tmp_path, make_checkpoint,
                                                                  monkeypatch):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9)
    export_checkpoint(checkpoint, tmp_path / "model.spx", values="int8")
    features, lengths = random_features(161)
    outputs = {}
    for level in native.supported_levels():
        monkeypatch.setenv(native.LEVEL_ENV, level)
        exported = load_exported(tmp_path / "model.spx", CPU)
        assert all(line.endswith("zeros)") and level in line
                   for line in exported.kernels if line.startswith("rnns."))
        with torch.no_grad():
            outputs[level] = exported.model(features, lengths)[0]
    for level, output in outputs.items():
        torch.testing.assert_close(output, outputs["portable"], rtol=0, atol=0, msg=level)


@needs_int8_kernels
@pytest.mark.parametrize("block_shape", [(1, 1), (4, 4)])
def test_int8_export_of_a_ninety_percent_sparse_model_is_small_and_runs_its_sparse_layout(
        tmp_path, make_checkpoint, block_shape):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9,
                                 block_shape=block_shape)
    full = export_checkpoint(checkpoint, tmp_path / "fp32.spx")
    quantized = export_checkpoint(checkpoint, tmp_path / "int8.spx", values="int8")
    pruned = [t for t in quantized.tensors if t.name.startswith("rnns.") and "weight" in t.name]
    dense_bytes = sum(4 * int(np.prod(t.shape)) for t in pruned)
    scale_bytes = sum(4 * t.shape[0] for t in pruned)
    # Past one float32 scale per row (large at hidden 40: 30% of the bytes), one byte per value
    # and a deflated bitmask (~0.6 bytes per non-zero) or one index per 4x4 block.
    assert dense_bytes / (sum(t.stored_bytes for t in pruned) - scale_bytes) > \
        (20 if block_shape == (1, 1) else 30)
    assert quantized.file_bytes < full.file_bytes  # the header (config, ~15 KB) is the same
    assert "int8 values" in quantized.describe()
    exported = load_exported(tmp_path / "int8.spx", CPU)
    sparse_kind = "unstructured" if block_shape == (1, 1) else "blocks"
    assert all(f"int8 {sparse_kind}" in line or "int8 dense" in line
               for line in exported.kernels if line.startswith("rnns."))


@needs_int8_kernels
def test_damaged_int8_export_is_refused(tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9)
    export_checkpoint(checkpoint, tmp_path / "model.spx", values="int8")
    data = bytearray((tmp_path / "model.spx").read_bytes())
    data[-100] ^= 0x01  # one int8 weight or scale off by one bit
    (tmp_path / "model.spx").write_bytes(bytes(data))
    with pytest.raises(ExportError, match="checksum mismatch"):
        load_exported(tmp_path / "model.spx", CPU)
    (tmp_path / "model.spx").write_bytes(bytes(data[:-1000]))
    with pytest.raises(ExportError, match="corrupt or truncated"):
        load_exported(tmp_path / "model.spx", CPU)


def test_int8_export_without_the_c_kernels_runs_the_dequantized_weights(
        tmp_path, make_checkpoint, monkeypatch):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9)
    export_checkpoint(checkpoint, tmp_path / "model.spx", values="int8")
    contents = read_export(tmp_path / "model.spx")
    monkeypatch.setattr(native, "selected_level", lambda: None)
    exported = load_exported(tmp_path / "model.spx", CPU)
    assert all(isinstance(rnn, SparseRecurrentLayer) for rnn in exported.model.rnns)
    name = "rnns.0.weight_hh_l0"
    q, scales = contents.quantized[name]
    torch.testing.assert_close(contents.state_dict[name],
                               torch.from_numpy(q.astype(np.float32) * scales[:, None]))
