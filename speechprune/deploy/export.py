"""The export format: a trained model as one safetensors file, its tensors stored compactly.

Container (format version 3): a safetensors file (https://github.com/huggingface/safetensors:
a JSON header, then raw little-endian arrays; nothing is unpickled on load, so a file from
elsewhere cannot run code). Its string metadata holds
- "format" ("speechprune-export") and "version" ("3");
- "header": JSON with the resolved training config, the alphabet, the feature statistics, the
  inference settings, the value type and one entry per model tensor (name, shape, layout, nnz,
  dtype, block_shape for "bsr", whether it is quantized);
- "sha256": the checksum of the header and of every array (sorted by name: name, dtype, shape,
  bytes), so a damaged file is refused rather than loaded with wrong weights.
Each model tensor is stored as the arrays "<tensor name>/<part>" of its layout:
- "dense": `values`, the whole tensor;
- "csr": (rows, cols) = (shape[0], prod(shape[1:])); `indptr` (uint32 or uint64), column
  `indices` in the smallest unsigned type that fits (uint8 / uint16 / uint32), `values`;
- "bitmask": the non-zero pattern as a bit per weight (numpy packbits, row-major), deflated with
  zlib (a 10%-dense random mask compresses to about its entropy, ~0.47 bits per weight), then
  the `values` in row-major order;
- "bsr": block-sparse rows for matrices pruned in whole blocks; `indptr` (uint32, one per block
  row + 1), block-column `indices` in the smallest unsigned type, `values` of the stored blocks,
  each block row-major, in block-row order.
Values (`values=`): "fp32"; "fp16" (the non-zeros of sparse tensors); or "int8": every weight
matrix (2+ dims) quantized symmetrically per output row, int8 in [-127, 127] and a float32
`scales` part (rows,), so W = scales[:, None] * q. Zeros stay exact zeros, so the pruning
pattern is kept; one-dimensional tensors (biases, norms) stay float32. At 90% sparsity an int8
matrix stores in ~16% of its int8 bytes with a bitmask (one value byte and ~0.6 mask bytes per
non-zero) and in ~10.7% with 4x4 blocks.
Files of versions 1 and 2 (the hand-rolled container before safetensors) are refused with a
message to re-export them.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy
import torch

from speechprune import atomic_write
from speechprune.config import ExportConfig
from speechprune.deploy.block_kernels import cut_into_blocks, detect_block_shape
from speechprune.deploy.int8 import dequantize_rows, quantize_rows

FORMAT_NAME = "speechprune-export"
FORMAT_VERSION = 3
READABLE_VERSIONS = (3,)
# The first bytes of a version 1 or 2 file (the container before safetensors).
LEGACY_MAGIC = b"SPRNEXP\x00"
# A safetensors header larger than this is not one of ours (a guard before reading it).
MAX_HEADER_BYTES = 64 << 20
LAYOUTS = ("auto", "csr", "bitmask", "bsr")
VALUE_TYPES = ("fp32", "fp16", "int8")


class ExportError(ValueError):
    """An export file that cannot be written or read; the message names the file and the fix."""


@dataclass
class TensorSummary:
    name: str
    shape: list[int]
    layout: str
    nnz: int
    stored_bytes: int  # bytes of this tensor's arrays


@dataclass
class ExportSummary:
    path: Path
    file_bytes: int
    dense_fp32_bytes: int  # the model's tensors as dense float32 (integer buffers as they are)
    tensors: list[TensorSummary] = field(default_factory=list)
    checkpoint_bytes: int = 0  # the source checkpoint file (optimizer state included), if any
    values: str = "fp32"
    container: str = "speechprune"  # or "onnx" (onnx_export.py): every tensor stored dense

    @property
    def sparse_tensors(self) -> list[TensorSummary]:
        return [t for t in self.tensors if t.layout != "dense"]

    @property
    def compression(self) -> float:
        """Dense float32 model bytes over the export file's bytes."""
        return self.dense_fp32_bytes / max(self.file_bytes, 1)

    @property
    def sparsity(self) -> float:
        """Share of zeros over the tensors stored sparse (0 when none is)."""
        total = sum(int(np.prod(t.shape)) for t in self.sparse_tensors)
        return 1.0 - sum(t.nnz for t in self.sparse_tensors) / total if total else 0.0

    def describe(self) -> str:
        """Lines for the export command: sizes against the dense model and the checkpoint."""
        stored = (f"{len(self.sparse_tensors)} of {len(self.tensors)} tensors stored sparse "
                  f"({self.sparsity:.1%} zeros in them)" if self.container != "onnx"
                  else "ONNX")
        lines = [f"{self.path}: {self.file_bytes:,} bytes, {self.values} values, {stored}",
                 f"  dense float32 model: {self.dense_fp32_bytes:,} bytes -> "
                 f"{self.compression:.2f}x smaller"]
        if self.checkpoint_bytes:
            lines.append(f"  checkpoint file: {self.checkpoint_bytes:,} bytes -> "
                         f"{self.checkpoint_bytes / max(self.file_bytes, 1):.2f}x smaller")
        if self.container == "onnx":
            zeros = 1.0 - sum(t.nnz for t in self.tensors) / max(sum(int(np.prod(t.shape))
                                                                     for t in self.tensors), 1)
            lines.append(f"  ONNX stores every tensor dense ({zeros:.1%} of the model's weights "
                         "are zeros): as large and as fast as the dense model; the sparse and "
                         "int8 savings need speechprune's own format (omit format=onnx)")
        elif not self.sparse_tensors:
            saving = ("only the 8-bit values save space" if self.values == "int8"
                      else "this export saves nothing over the dense model")
            lines.append(f"  no tensor is sparse enough to store compactly: {saving} (prune it "
                         "first, e.g. pruning=narang)")
        return "\n".join(lines)


@dataclass
class ExportContents:
    """What a read export holds: the header's metadata, dense float32 CPU tensors by name, and
    for int8 exports each quantized matrix as (q (rows, cols) int8, scales (rows,) float32)."""

    path: Path
    config: dict[str, Any]
    alphabet: str  # Alphabet.symbols, blank excluded
    feature_stats: dict[str, Any] | None
    inference: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source: str
    values: str = "fp32"
    quantized: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


# ---- encoding one tensor -------------------------------------------------------------------


@dataclass
class EncodedTensor:
    layout: str
    parts: dict[str, np.ndarray]
    block_shape: list[int] | None = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.parts.values())


def _smallest_index_dtype(count: int) -> type:
    """The smallest unsigned type holding indices 0 .. count - 1."""
    return np.uint8 if count <= 256 else np.uint16 if count <= 65536 else np.uint32


def _encode_csr(stored: np.ndarray) -> EncodedTensor:
    rows, cols = stored.shape
    nonzero = stored != 0
    nnz = int(nonzero.sum())
    indptr = np.zeros(rows + 1, dtype=np.uint32 if nnz < 2**32 else np.uint64)
    np.cumsum(nonzero.sum(axis=1), out=indptr[1:])
    return EncodedTensor("csr", {"indptr": indptr,
                                 "indices": np.nonzero(nonzero)[1].astype(_smallest_index_dtype(cols)),
                                 "values": stored[nonzero]})


def _encode_bitmask(stored: np.ndarray) -> EncodedTensor:
    nonzero = stored != 0
    packed = zlib.compress(np.packbits(nonzero.ravel()).tobytes(), 9)
    return EncodedTensor("bitmask", {"mask": np.frombuffer(packed, dtype=np.uint8),
                                     "values": stored[nonzero]})


def _encode_bsr(stored: np.ndarray, block_shape: tuple[int, int]) -> EncodedTensor:
    indptr, block_cols, blocks = cut_into_blocks(stored, block_shape)
    indices = block_cols.astype(_smallest_index_dtype(stored.shape[1] // block_shape[1]))
    return EncodedTensor("bsr", {"indptr": indptr, "indices": indices,
                                 "values": np.ascontiguousarray(blocks).reshape(-1)},
                         list(block_shape))


def _sparse_candidates(stored: np.ndarray, layout: str) -> list[EncodedTensor]:
    candidates = []
    if layout in ("auto", "csr"):
        candidates.append(_encode_csr(stored))
    if layout in ("auto", "bitmask"):
        candidates.append(_encode_bitmask(stored))
    if layout in ("auto", "bsr"):
        block_shape = detect_block_shape(stored)
        if block_shape != (1, 1) or layout == "bsr":
            candidates.append(_encode_bsr(stored, block_shape))
    return candidates


def encode_tensor(tensor: torch.Tensor, layout: str, values: str) -> tuple[EncodedTensor, int]:
    """(the tensor's stored form, its non-zero count). `layout` "auto" keeps the smallest of
    dense and the sparse layouts; dense wins only when sparse storage saves nothing."""
    array = tensor.detach().cpu().numpy()
    if not np.issubdtype(array.dtype, np.floating) or array.ndim < 2:
        return EncodedTensor("dense", {"values": np.ascontiguousarray(array)}), \
            int(np.count_nonzero(array))
    matrix = array.astype(np.float32).reshape(array.shape[0], -1)
    scales = None
    if values == "int8":
        stored, scales = quantize_rows(matrix)
        dense = EncodedTensor("dense", {"values": stored.reshape(array.shape)})
    else:
        stored = matrix.astype(np.float16) if values == "fp16" else matrix
        # fp16 halves the non-zeros of sparse tensors; a tensor left dense stays float32.
        dense = EncodedTensor("dense", {"values": np.ascontiguousarray(array, dtype=np.float32)})
    sparse = _sparse_candidates(stored, layout)
    if layout == "auto":
        chosen = min([dense, *sparse], key=lambda encoded: encoded.nbytes)
    else:
        chosen = sparse[0]
    if scales is not None:
        chosen.parts["scales"] = scales
    return chosen, int(np.count_nonzero(stored))


# ---- writing -------------------------------------------------------------------------------


def _checksum(header_json: str, arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(header_json.encode("utf-8"))
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{list(array.shape)}|".encode("utf-8"))
        digest.update(array.tobytes())
    return digest.hexdigest()


def write_export(path: str | Path, state_dict: dict[str, torch.Tensor], *, config: dict[str, Any],
                 alphabet: str, feature_stats: dict[str, Any] | None,
                 inference: dict[str, Any], source: str, layout: str = "auto",
                 values: str = "fp32") -> ExportSummary:
    """Write `state_dict` and its metadata to `path` in the export format (module docstring).

    layout: "auto" (per tensor the smallest of dense, csr, bitmask, bsr), or "csr", "bitmask" or
    "bsr" for every matrix, i.e. tensor of 2+ dims ("bsr" with the largest block shape whose
    blocks are 75% full, 1x1 blocks for unstructured zeros); values: "fp32", "fp16" or "int8".
    The file is written to a temporary name and renamed, so a reader never sees half of it."""
    if layout not in LAYOUTS:
        raise ExportError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if values not in VALUE_TYPES:
        raise ExportError(f"values must be one of {VALUE_TYPES}, got {values!r}")
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    entries, summaries = [], []
    dense_bytes = 0
    for name, tensor in state_dict.items():
        encoded, nnz = encode_tensor(tensor, layout, values)
        itemsize = 4 if tensor.is_floating_point() else tensor.element_size()
        dense_bytes += tensor.numel() * itemsize
        for part, array in encoded.parts.items():
            arrays[f"{name}/{part}"] = np.ascontiguousarray(array)
        entry = {"name": name, "shape": list(tensor.shape), "layout": encoded.layout, "nnz": nnz,
                 "dtype": str(tensor.dtype).removeprefix("torch."),
                 "parts": sorted(encoded.parts), "quantized": "scales" in encoded.parts}
        if encoded.block_shape is not None:
            entry["block_shape"] = encoded.block_shape
        entries.append(entry)
        summaries.append(TensorSummary(name, list(tensor.shape), encoded.layout, nnz,
                                       encoded.nbytes))
    header_json = json.dumps({"source": source, "config": config, "alphabet": str(alphabet),
                              "feature_stats": feature_stats, "inference": inference,
                              "values": values, "tensors": entries})
    metadata = {"format": FORMAT_NAME, "version": str(FORMAT_VERSION), "header": header_json,
                "sha256": _checksum(header_json, arrays)}
    atomic_write.write_bytes(path, safetensors.numpy.save(arrays, metadata=metadata))
    return ExportSummary(path, path.stat().st_size, dense_bytes, summaries, values=values)


# ---- reading -------------------------------------------------------------------------------


def _sniff(path: Path) -> str | None:
    """"current" for a safetensors file of this format, "legacy" for a version 1-2 file, else
    None (missing, unreadable, or another kind of file)."""
    try:
        with path.open("rb") as handle:
            start = handle.read(8)
            if start == LEGACY_MAGIC:
                return "legacy"
            if len(start) < 8:
                return None
            length = int.from_bytes(start, "little")
            if not 2 <= length <= min(MAX_HEADER_BYTES, path.stat().st_size - 8):
                return None
            header = json.loads(handle.read(length))
    except (OSError, ValueError):
        return None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return "current" if isinstance(metadata, dict) and metadata.get("format") == FORMAT_NAME \
        else None


def is_export_file(path: str | Path) -> bool:
    """True when `path` is an export file of this format or of an older version."""
    return Path(path).is_file() and _sniff(Path(path)) is not None


def _read_verified(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) after checking format, version and checksum."""
    if not path.is_file():
        raise ExportError(f"{path}: export file not found")
    kind = _sniff(path)
    if kind == "legacy":
        raise ExportError(f"{path}: an export of format version 1 or 2, written by an older "
                          "speechprune; this version reads version 3 (safetensors): re-export "
                          "the model from its checkpoint with `speechprune export <run dir> "
                          "out=<file>`")
    if kind is None:
        raise ExportError(f"{path}: not a speechprune export file (or a truncated one); create "
                          "one with `speechprune export <run dir> out=<file>`")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}
    except (safetensors.SafetensorError, OSError, ValueError) as error:
        raise ExportError(f"{path}: corrupt or truncated export file ({error}); copy it again "
                          "or re-export it") from None
    version = metadata.get("version")
    if version not in {str(v) for v in READABLE_VERSIONS}:
        readable = " and ".join(map(str, READABLE_VERSIONS))
        raise ExportError(f"{path}: export format version {version}, but this speechprune reads "
                          f"version {readable}; re-export the model from its checkpoint with "
                          "this version")
    header_json = metadata.get("header", "")
    if _checksum(header_json, arrays) != metadata.get("sha256"):
        raise ExportError(f"{path}: checksum mismatch, the export file is corrupt or truncated; "
                          "copy it again or re-export it")
    try:
        return json.loads(header_json), arrays
    except ValueError as error:
        raise ExportError(f"{path}: unreadable export header ({error})") from None


def _decode_sparse(entry: dict[str, Any], parts: dict[str, np.ndarray], rows: int,
                   cols: int) -> np.ndarray:
    """The stored (rows, cols) matrix of a csr, bitmask or bsr entry, in its stored dtype."""
    layout, values = entry["layout"], parts["values"]
    matrix = np.zeros((rows, cols), dtype=values.dtype)
    if layout == "csr":
        indptr, indices = parts["indptr"].astype(np.int64), parts["indices"].astype(np.int64)
        if (indptr.shape != (rows + 1,) or indptr[-1] != values.size or indices.size != values.size
                or (indices.size and indices.max() >= cols)):
            raise ValueError("inconsistent CSR arrays")
        matrix[np.repeat(np.arange(rows), np.diff(indptr)), indices] = values
    elif layout == "bitmask":
        try:
            bits = np.frombuffer(zlib.decompress(parts["mask"].tobytes()), dtype=np.uint8)
        except zlib.error as error:
            raise ValueError(f"mask does not inflate ({error})") from None
        nonzero = np.unpackbits(bits, count=rows * cols).astype(bool).reshape(rows, cols)
        if int(nonzero.sum()) != values.size:
            raise ValueError("mask and values disagree")
        matrix[nonzero] = values
    elif layout == "bsr":
        br, bc = (int(side) for side in entry["block_shape"])
        indptr, indices = parts["indptr"].astype(np.int64), parts["indices"].astype(np.int64)
        if (br < 1 or bc < 1 or rows % br or cols % bc or indptr.shape != (rows // br + 1,)
                or indptr[-1] != indices.size or values.size != indices.size * br * bc
                or (indices.size and indices.max() >= cols // bc)):
            raise ValueError("inconsistent block-sparse arrays")
        blocks = np.zeros((rows // br, cols // bc, br, bc), dtype=values.dtype)
        blocks[np.repeat(np.arange(rows // br), np.diff(indptr)), indices] = \
            values.reshape(-1, br, bc)
        matrix = blocks.transpose(0, 2, 1, 3).reshape(rows, cols)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return matrix


def _decode_tensor(entry: dict[str, Any], arrays: dict[str, np.ndarray]
                   ) -> tuple[torch.Tensor, tuple[np.ndarray, np.ndarray] | None]:
    """(the dense float32 tensor, (q, scales) when the entry is quantized)."""
    name, shape = entry["name"], tuple(entry["shape"])
    parts = {part: arrays[f"{name}/{part}"] for part in entry["parts"]}
    if entry["layout"] == "dense" and not entry.get("quantized"):
        array = parts["values"]
        if array.size != int(np.prod(shape)):
            raise ValueError(f"{array.size} values for shape {shape}")
        return torch.from_numpy(array.reshape(shape).copy()), None
    rows, cols = shape[0], int(np.prod(shape[1:]))
    if entry["layout"] == "dense":
        stored = parts["values"].reshape(rows, cols)
    else:
        stored = _decode_sparse(entry, parts, rows, cols)
    if entry.get("quantized"):
        scales = parts["scales"].astype(np.float32)
        if scales.shape != (rows,):
            raise ValueError(f"{scales.size} scales for {rows} rows")
        q = np.ascontiguousarray(stored, dtype=np.int8)
        return torch.from_numpy(dequantize_rows(q, scales).reshape(shape)), (q, scales)
    return torch.from_numpy(stored.astype(np.float32).reshape(shape)), None


def read_export(path: str | Path) -> ExportContents:
    """Read and verify an export file; raises ExportError with the reason and the fix."""
    path = Path(path)
    header, arrays = _read_verified(path)
    state_dict, quantized = {}, {}
    for entry in header.get("tensors", []):
        try:
            state_dict[entry["name"]], q = _decode_tensor(entry, arrays)
        except (KeyError, TypeError, ValueError) as error:
            raise ExportError(f"{path}: tensor {entry.get('name')!r} is malformed ({error}); "
                              "re-export the model") from None
        if q is not None:
            quantized[entry["name"]] = q
    try:
        return ExportContents(path, header["config"], str(header["alphabet"]),
                              header["feature_stats"], dict(header["inference"]), state_dict,
                              str(header.get("source", "")), header.get("values", "fp32"),
                              quantized)
    except (KeyError, TypeError) as error:
        raise ExportError(f"{path}: export header lacks {error}; re-export the model") from None


# ---- from a training checkpoint ------------------------------------------------------------


def feature_stats_to_json(stats: dict[str, Any] | None) -> dict[str, Any] | None:
    """A checkpoint's feature statistics (tensors inside) as JSON-ready plain data; float32
    values survive the round trip through Python floats exactly."""
    if stats is None:
        return None
    return {key: value.tolist() if isinstance(value, torch.Tensor) else value
            for key, value in stats.items()}


def export_checkpoint(model_path: str | Path, out: str | Path, *,
                      layout: str = ExportConfig.layout, values: str = ExportConfig.values,
                      sparse_min_sparsity: float = ExportConfig.sparse_min_sparsity,
                      which: str = ExportConfig.which) -> ExportSummary:
    """Export a training checkpoint (file, or run directory's `which` checkpoint) to `out`.

    `sparse_min_sparsity` (0..1) is stored as an inference setting: recurrent layers with at
    least that share of zero hidden-to-hidden weights run on the sparse kernels when loaded."""
    from speechprune.model.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, resolve_checkpoint

    checkpoint_path = resolve_checkpoint(model_path, which)
    checkpoint = load_checkpoint(checkpoint_path)
    if checkpoint.get("format") != CHECKPOINT_FORMAT or "model" not in checkpoint:
        raise ExportError(f"{checkpoint_path}: not a speechprune training checkpoint")
    if not 0.0 <= sparse_min_sparsity <= 1.0:
        raise ExportError(f"sparse_min_sparsity must be in [0, 1], got {sparse_min_sparsity}")
    summary = write_export(
        out, checkpoint["model"], config=checkpoint["config"], alphabet=checkpoint["alphabet"],
        feature_stats=feature_stats_to_json(checkpoint.get("feature_stats")),
        inference={"sparse_min_sparsity": sparse_min_sparsity}, source=str(checkpoint_path),
        layout=layout, values=values)
    summary.checkpoint_bytes = checkpoint_path.stat().st_size
    return summary
