"""Per-step cost of the int8 recurrent product: speechprune's kernels at one level vs torch's
dynamic int8 (fbgemm) linear, batch 1, one thread.

    SPEECHPRUNE_KERNEL=avx2 .venv/bin/python scripts/bench_int8_step.py
        [--hidden 1024 1760] [--sparsities 0.9 0.95] [--gates 3] [--blocks 1x1 4x4]
        [--steps 200] [--repeats 5]

Each case is a random (gates * hidden, hidden) matrix with a random mask of (br x bc) blocks.
`matvec` is one integer product (sp_matmat_int32 with one vector, through ctypes: about half a
microsecond of the figure is the call); `step` is a whole GRU step of int8.run_direction
(quantizing h, the product, the gates) over `steps` frames, per frame. torch is
torch.ops.quantized.linear_dynamic on a (1, hidden) input, what its dynamic int8 GRU runs per
step for W_hh. The three are timed interleaved and the medians of `repeats` are printed.
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np
import torch

from speechprune.deploy import int8, native


def per_call(call, calls: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def bench_case(hidden: int, gates: int, sparsity: float, block: tuple[int, int], level: str,
               steps: int, repeats: int, rng: np.random.Generator) -> str:
    rows = gates * hidden
    br, bc = block
    kept = rng.random((rows // br, hidden // bc)) >= sparsity
    weights = rng.standard_normal((rows, hidden)).astype(np.float32)
    weights *= np.repeat(np.repeat(kept, br, axis=0), bc, axis=1)
    q, scales = int8.quantize_rows(weights)
    structure = "blocks" if block != (1, 1) else "unstructured"
    matrix = int8.pack(q, scales, level, structure)

    compiled = native.library()
    x = np.zeros((1, matrix.padded_shape[1]), dtype=np.int8)
    x[0, :hidden] = rng.integers(-127, 128, hidden)
    out = np.empty((1, matrix.padded_shape[0]), dtype=np.int32)
    number, struct = native.level_number(level), ctypes.byref(matrix.struct)
    x_pointer, out_pointer = x.ctypes.data, out.ctypes.data
    # The AVX-512 level prepares x in place (x ^ 0x80); the portable and AVX2 levels do not, so
    # repeating the call on one buffer is only meaningful for them and for the timing.
    matvec = lambda: compiled.sp_matmat_int32(number, struct, 1, x_pointer, x.shape[1],  # noqa: E731
                                              out_pointer, out.shape[1])

    projected = rng.standard_normal((steps, rows)).astype(np.float32)
    bias = np.zeros(rows, dtype=np.float32)
    h = np.empty((steps, hidden), dtype=np.float32)
    mode = "GRU" if gates == 3 else "RNN_TANH"
    direction = lambda: int8.run_direction(matrix, mode, bias, projected, False, h)  # noqa: E731

    packed = torch.ops.quantized.linear_prepack(
        torch.quantize_per_channel(torch.from_numpy(weights), torch.from_numpy(scales.astype(np.float64)),
                                   torch.zeros(rows, dtype=torch.int64), 0, torch.qint8),
        torch.zeros(rows))
    h_torch = torch.randn(1, hidden)
    torch_call = lambda: torch.ops.quantized.linear_dynamic(h_torch, packed)  # noqa: E731

    times = {"matvec": [], "step": [], "torch": []}
    for _ in range(repeats):
        times["matvec"].append(per_call(matvec, steps))
        times["step"].append(per_call(direction, 3) / steps)
        times["torch"].append(per_call(torch_call, steps))
    us = {name: min(t) * 1e6 for name, t in times.items()}
    lanes = matrix.arrays["values"].size / max(matrix.nnz, 1)
    return (f"{rows}x{hidden} {sparsity:.0%} {br}x{bc} {level:8s} {matrix.describe():38s} "
            f"stored/nnz {lanes:.2f}  matvec {us['matvec']:7.1f} us  step {us['step']:7.1f} us  "
            f"torch int8 {us['torch']:7.1f} us  torch/matvec {us['torch'] / us['matvec']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[1024, 1760])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.9, 0.95])
    parser.add_argument("--gates", type=int, default=3, help="1: RNN, 3: GRU (fused gates)")
    parser.add_argument("--blocks", nargs="+", default=["1x1"], help="block shapes, e.g. 4x4")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    level = native.selected_level()
    print(f"{native.describe_levels()}; torch {torch.__version__}, "
          f"{torch.backends.cpu.get_cpu_capability()}, 1 thread")
    rng = np.random.default_rng(args.seed)
    for hidden in args.hidden:
        for sparsity in args.sparsities:
            for block in args.blocks:
                shape = tuple(int(v) for v in block.split("x"))
                print(bench_case(hidden, args.gates, sparsity, shape, level, args.steps,
                                 args.repeats, rng), flush=True)


if __name__ == "__main__":
    main()
