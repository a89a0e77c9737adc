"""The compact export format: a self-describing, versioned, checksummed file of a trained model.

Layout (all integers little-endian):

    MAGIC (8 bytes) | format version (uint32) | header length H (uint64) | header (H bytes, UTF-8
    JSON) | payload (raw little-endian arrays) | SHA-256 of everything before it (32 bytes)

The header holds the resolved training config, the alphabet, the feature statistics, the
inference settings and one entry per model tensor naming its arrays' offsets in the payload.
Nothing is unpickled on load, so a file from elsewhere cannot run code.

Tensor layouts:
- "dense": the raw array (float32, or the tensor's own dtype for integer buffers).
- "csr": (rows, cols) = (shape[0], prod(shape[1:])); `indptr` (uint32 or uint64), column
  `indices` in the smallest unsigned type that fits (uint8 / uint16 / uint32), `values`.
- "bitmask": the non-zero pattern as a bit per weight (numpy packbits, row-major), deflated with
  zlib (a 10%-dense random mask compresses to about its entropy, ~0.47 bits per weight), then
  the `values` in row-major order.
- "bsr" (format version 2): block-sparse rows for matrices pruned in whole blocks; the entry's
  `block_shape` [br, bc]; `indptr` (uint32, one per block row + 1), block-column `indices` in the
  smallest unsigned type, `values` of the stored blocks, each block row-major, in block-row
  order. One index per block instead of one per weight: a 4x4-block-pruned matrix at 90%
  sparsity stores in about 10.3% of its dense bytes where CSR needs 15%.
Sparse values are float32 or float16 (`values_dtype`); dense tensors stay as they are.
Version 1 files (no "bsr") are still read.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechprune.deploy.block_kernels import cut_into_blocks, detect_block_shape

MAGIC = b"SPRNEXP\x00"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
FORMAT_NAME = "speechprune-export"
_PREFIX = struct.Struct("<8sIQ")  # magic, version, header length
_DIGEST_BYTES = 32
_ALIGN = 8  # payload arrays start at multiples of this many bytes
LAYOUTS = ("auto", "csr", "bitmask", "bsr")
VALUE_DTYPES = {"fp32": np.float32, "fp16": np.float16}


class ExportError(ValueError):
    """An export file that cannot be written or read; the message names the file and the fix."""


@dataclass
class TensorSummary:
    name: str
    shape: list[int]
    layout: str
    nnz: int
    stored_bytes: int  # payload bytes of this tensor's arrays, alignment padding excluded


@dataclass
class ExportSummary:
    path: Path
    file_bytes: int
    dense_fp32_bytes: int  # the model's tensors as dense float32 (integer buffers as they are)
    tensors: list[TensorSummary] = field(default_factory=list)
    checkpoint_bytes: int = 0  # the source checkpoint file (optimizer state included), if any

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
        lines = [f"{self.path}: {self.file_bytes:,} bytes, {len(self.sparse_tensors)} of "
                 f"{len(self.tensors)} tensors stored sparse ({self.sparsity:.1%} zeros in them)",
                 f"  dense float32 model: {self.dense_fp32_bytes:,} bytes -> "
                 f"{self.compression:.2f}x smaller"]
        if self.checkpoint_bytes:
            lines.append(f"  checkpoint file: {self.checkpoint_bytes:,} bytes -> "
                         f"{self.checkpoint_bytes / max(self.file_bytes, 1):.2f}x smaller")
        if not self.sparse_tensors:
            lines.append("  no tensor is sparse enough to store compactly: this export saves "
                         "nothing over the dense model (prune it first, e.g. pruning=narang)")
        return "\n".join(lines)


@dataclass
class ExportContents:
    """What a read export holds: the header's metadata and dense CPU tensors by name."""

    path: Path
    config: dict[str, Any]
    alphabet: str  # Alphabet.symbols, blank excluded
    feature_stats: dict[str, Any] | None
    inference: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source: str


# ---- writing -------------------------------------------------------------------------------


def _smallest_index_dtype(count: int) -> type:
    """The smallest unsigned type holding indices 0 .. count - 1."""
    return np.uint8 if count <= 256 else np.uint16 if count <= 65536 else np.uint32


def _encode_bsr(matrix: np.ndarray, block_shape: tuple[int, int], values_dtype: np.dtype
                ) -> dict[str, np.ndarray]:
    indptr, block_cols, blocks = cut_into_blocks(matrix, block_shape)
    return {"indptr": indptr,
            "indices": block_cols.astype(_smallest_index_dtype(matrix.shape[1] // block_shape[1])),
            "values": blocks.astype(values_dtype).reshape(-1)}


def _encode_tensor(tensor: torch.Tensor, layout: str, values_dtype: np.dtype
                   ) -> tuple[str, dict[str, np.ndarray], int, list[int] | None]:
    """(chosen layout, named arrays to store, non-zero count, block shape for "bsr") for one
    tensor."""
    array = tensor.detach().cpu().numpy()
    nnz = int(np.count_nonzero(array))
    if not np.issubdtype(array.dtype, np.floating) or array.ndim < 2:
        return "dense", {"values": np.ascontiguousarray(array)}, nnz, None
    array = array.astype(np.float32)
    dense = {"values": np.ascontiguousarray(array)}
    matrix = array.reshape(array.shape[0], -1)
    rows, cols = matrix.shape
    nonzero = matrix != 0
    values = matrix[nonzero].astype(values_dtype)
    candidates = {"dense": dense}
    if layout in ("auto", "csr"):
        index_dtype = _smallest_index_dtype(cols)
        counts = nonzero.sum(axis=1)
        indptr = np.zeros(rows + 1, dtype=np.uint32 if nnz < 2**32 else np.uint64)
        np.cumsum(counts, out=indptr[1:])
        candidates["csr"] = {"indptr": indptr,
                             "indices": np.nonzero(nonzero)[1].astype(index_dtype),
                             "values": values}
    if layout in ("auto", "bitmask"):
        packed = zlib.compress(np.packbits(nonzero.ravel()).tobytes(), 9)
        candidates["bitmask"] = {"mask": np.frombuffer(packed, dtype=np.uint8), "values": values}
    block_shape = None
    if layout in ("auto", "bsr"):
        block_shape = detect_block_shape(matrix)
        if block_shape != (1, 1) or layout == "bsr":
            candidates["bsr"] = _encode_bsr(matrix, block_shape, values_dtype)
    if layout == "auto":
        # Smallest wins; dense only when sparse storage would not save anything.
        # Dense is weighed at the sparse values' width, so fp16 never stores an unpruned tensor
        # as a "sparse" one only to halve it.
        def cost(kind: str) -> float:
            scale = values_dtype.itemsize / 4 if kind == "dense" else 1.0
            return scale * sum(a.nbytes for a in candidates[kind].values())

        chosen = min(candidates, key=cost)
    else:
        chosen = layout
    return chosen, candidates[chosen], nnz, list(block_shape) if chosen == "bsr" else None


def write_export(path: str | Path, state_dict: dict[str, torch.Tensor], *, config: dict[str, Any],
                 alphabet: str, feature_stats: dict[str, Any] | None,
                 inference: dict[str, Any], source: str, layout: str = "auto",
                 values: str = "fp32") -> ExportSummary:
    """Write `state_dict` and its metadata to `path` in the export format (see module docstring).

    layout: "auto" (per tensor the smallest of dense, csr, bitmask, bsr), or "csr", "bitmask" or
    "bsr" for every matrix, i.e. tensor of 2+ dims ("bsr" with the largest block shape whose
    blocks are 75% full, 1x1 blocks for unstructured zeros); values: "fp32" or "fp16" for the
    non-zeros of sparse tensors.
    """
    if layout not in LAYOUTS:
        raise ExportError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if values not in VALUE_DTYPES:
        raise ExportError(f"values must be one of {tuple(VALUE_DTYPES)}, got {values!r}")
    path = Path(path)
    entries, chunks, summaries = [], [], []
    offset = 0
    dense_bytes = 0
    for name, tensor in state_dict.items():
        chosen, arrays, nnz, block_shape = _encode_tensor(tensor, layout,
                                                          np.dtype(VALUE_DTYPES[values]))
        itemsize = 4 if tensor.is_floating_point() else tensor.element_size()
        dense_bytes += tensor.numel() * itemsize
        parts = {}
        for part, array in arrays.items():
            data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
            parts[part] = {"offset": offset, "nbytes": data.nbytes, "dtype": data.dtype.str}
            chunks.append(data.tobytes())
            padding = -data.nbytes % _ALIGN
            chunks.append(b"\x00" * padding)
            offset += data.nbytes + padding
        entry = {"name": name, "shape": list(tensor.shape), "layout": chosen, "nnz": nnz,
                 "dtype": str(tensor.dtype).removeprefix("torch."), "parts": parts}
        if block_shape is not None:
            entry["block_shape"] = block_shape
        entries.append(entry)
        summaries.append(TensorSummary(name, list(tensor.shape), chosen, nnz,
                                       sum(p["nbytes"] for p in parts.values())))
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "source": source,
              "config": config, "alphabet": str(alphabet), "feature_stats": feature_stats,
              "inference": inference, "values": values, "tensors": entries,
              "payload_bytes": offset}
    header_bytes = json.dumps(header).encode("utf-8")
    body = b"".join([_PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)), header_bytes, *chunks])
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(body + hashlib.sha256(body).digest())
    temporary.replace(path)
    return ExportSummary(path, path.stat().st_size, dense_bytes, summaries)


# ---- reading -------------------------------------------------------------------------------


def is_export_file(path: str | Path) -> bool:
    """True when `path` is a file that starts with the export magic (not checked further)."""
    path = Path(path)
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def _read_verified(path: Path) -> tuple[dict[str, Any], memoryview]:
    """(header, payload) after checking magic, version, lengths and checksum."""
    if not path.is_file():
        raise ExportError(f"{path}: export file not found")
    data = path.read_bytes()
    if len(data) < _PREFIX.size or data[: len(MAGIC)] != MAGIC:
        raise ExportError(f"{path}: not a speechprune export file (no {MAGIC!r} header); "
                          "create one with `speechprune export <run dir> out=<file>`")
    _, version, header_length = _PREFIX.unpack_from(data)
    if version not in READABLE_VERSIONS:
        readable = " and ".join(map(str, READABLE_VERSIONS))
        raise ExportError(f"{path}: export format version {version}, but this speechprune reads "
                          f"version {readable}; re-export the model from its checkpoint with "
                          "this version")
    body_end = len(data) - _DIGEST_BYTES
    if _PREFIX.size + header_length > body_end:
        raise ExportError(f"{path}: truncated export file ({len(data)} bytes, the header alone "
                          f"needs {_PREFIX.size + header_length + _DIGEST_BYTES}); copy it again")
    if hashlib.sha256(memoryview(data)[:body_end]).digest() != data[body_end:]:
        raise ExportError(f"{path}: checksum mismatch, the export file is corrupt or truncated; "
                          "copy it again or re-export it")
    try:
        header = json.loads(data[_PREFIX.size:_PREFIX.size + header_length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"{path}: unreadable export header ({error})") from None
    if header.get("format") != FORMAT_NAME:
        raise ExportError(f"{path}: header names format {header.get('format')!r}, "
                          f"expected {FORMAT_NAME!r}")
    payload = memoryview(data)[_PREFIX.size + header_length:body_end]
    if header.get("payload_bytes") != len(payload):
        raise ExportError(f"{path}: payload holds {len(payload)} bytes but the header says "
                          f"{header.get('payload_bytes')}; the file is damaged, re-export it")
    return header, payload


def _part(path: Path, name: str, parts: dict[str, Any], key: str, payload: memoryview) -> np.ndarray:
    try:
        spec = parts[key]
        start, nbytes = int(spec["offset"]), int(spec["nbytes"])
        if start < 0 or start + nbytes > len(payload):
            raise ValueError(f"bytes {start}..{start + nbytes} outside the payload")
        return np.frombuffer(payload[start:start + nbytes], dtype=np.dtype(spec["dtype"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ExportError(f"{path}: tensor {name!r} part {key!r} is malformed ({error}); "
                          "re-export the model") from None


def _decode_tensor(path: Path, entry: dict[str, Any], payload: memoryview) -> torch.Tensor:
    name, shape, layout = entry["name"], tuple(entry["shape"]), entry["layout"]
    parts = entry["parts"]
    values = _part(path, name, parts, "values", payload)
    if layout == "dense":
        array = values.astype(values.dtype.newbyteorder("="))
        if array.size != int(np.prod(shape)):
            raise ExportError(f"{path}: tensor {name!r} has {array.size} values for shape {shape}")
        return torch.from_numpy(array.reshape(shape).copy())
    rows = shape[0]
    cols = int(np.prod(shape[1:]))
    matrix = np.zeros((rows, cols), dtype=np.float32)
    if layout == "csr":
        indptr = _part(path, name, parts, "indptr", payload).astype(np.int64)
        indices = _part(path, name, parts, "indices", payload).astype(np.int64)
        if (indptr.shape != (rows + 1,) or indptr[-1] != values.size or indices.size != values.size
                or (indices.size and indices.max() >= cols)):
            raise ExportError(f"{path}: tensor {name!r} has inconsistent CSR arrays; re-export it")
        matrix[np.repeat(np.arange(rows), np.diff(indptr)), indices] = values
    elif layout == "bitmask":
        try:
            bits = np.frombuffer(zlib.decompress(_part(path, name, parts, "mask", payload).tobytes()),
                                 dtype=np.uint8)
        except zlib.error as error:
            raise ExportError(f"{path}: tensor {name!r} mask does not inflate ({error})") from None
        nonzero = np.unpackbits(bits, count=rows * cols).astype(bool).reshape(rows, cols)
        if int(nonzero.sum()) != values.size:
            raise ExportError(f"{path}: tensor {name!r} mask and values disagree; re-export it")
        matrix[nonzero] = values
    elif layout == "bsr":
        indptr = _part(path, name, parts, "indptr", payload).astype(np.int64)
        indices = _part(path, name, parts, "indices", payload).astype(np.int64)
        try:
            br, bc = (int(side) for side in entry["block_shape"])
        except (KeyError, TypeError, ValueError):
            raise ExportError(f"{path}: tensor {name!r} lacks a valid block_shape; "
                              "re-export it") from None
        if (br < 1 or bc < 1 or rows % br or cols % bc or indptr.shape != (rows // br + 1,)
                or indptr[-1] != indices.size or values.size != indices.size * br * bc
                or (indices.size and indices.max() >= cols // bc)):
            raise ExportError(f"{path}: tensor {name!r} has inconsistent block-sparse arrays; "
                              "re-export it")
        blocks = np.zeros((rows // br, cols // bc, br, bc), dtype=np.float32)
        blocks[np.repeat(np.arange(rows // br), np.diff(indptr)), indices] = \
            values.reshape(-1, br, bc)
        matrix = blocks.transpose(0, 2, 1, 3).reshape(rows, cols)
    else:
        raise ExportError(f"{path}: tensor {name!r} has unknown layout {layout!r}")
    return torch.from_numpy(matrix.reshape(shape))


def read_export(path: str | Path) -> ExportContents:
    """Read and verify an export file; raises ExportError with the reason and the fix."""
    path = Path(path)
    header, payload = _read_verified(path)
    try:
        state_dict = {entry["name"]: _decode_tensor(path, entry, payload)
                      for entry in header["tensors"]}
        return ExportContents(path, header["config"], str(header["alphabet"]),
                              header["feature_stats"], dict(header["inference"]), state_dict,
                              str(header.get("source", "")))
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


def export_checkpoint(model_path: str | Path, out: str | Path, *, layout: str = "auto",
                      values: str = "fp32", sparse_min_sparsity: float = 0.5,
                      which: str = "best") -> ExportSummary:
    """Export a training checkpoint (file, or run directory's `which` checkpoint) to `out`.

    `sparse_min_sparsity` (0..1) is stored as an inference setting: recurrent layers with at
    least that share of zero hidden-to-hidden weights run on the sparse kernels when loaded."""
    from speechprune.training.checkpoint import (CHECKPOINT_FORMAT, load_checkpoint,
                                                 resolve_checkpoint)

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
