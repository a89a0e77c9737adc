"""Benchmark the recurrent matrix-vector product: dense torch vs speechprune's sparse kernels.

    .venv/bin/python scripts/bench_sparse_kernels.py [--hidden 512 1024 1760 2560]
        [--batches 1 4 16] [--sparsities 0.8 0.9 0.95] [--threads 1 2] [--gates 1]
        [--blocks 1x1 4x4 8x8 16x16] [--repeats 7]

Matrices are (gates * hidden, hidden) with a random mask of (br x bc) blocks: 1x1 is
unstructured sparsity as Narang pruning leaves it (timed with the CSR kernel and, where the CPU
has AVX-512, the permute-ELL kernel), larger blocks what pruning=block leaves (block-sparse
kernel); gates=3 gives a GRU's fused recurrent matrix. For every case dense and sparse are
timed interleaved, `repeats` times, and the medians are compared, so load from other processes
hits both alike. Dense is the faster of torch.mm and one torch.mv per column. `ideal` is the
bytes the dense product reads over the bytes the sparse one reads (values + indices + row
pointers): the speedup a purely memory-bound kernel would get.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np
import torch

from speechprune.deploy.block_kernels import block_sparse_from_dense
from speechprune.deploy.kernels import csr_from_dense, sparse_multiply
from speechprune.deploy.permute_ell import available as permute_ell_available
from speechprune.deploy.permute_ell import permute_ell_from_dense


def seconds_per_call(call, min_seconds: float) -> float:
    """Mean wall time of `call` over enough calls to fill `min_seconds`."""
    call()
    calls, start = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def bench_case(hidden: int, gates: int, batch: int, sparsity: float, threads: int,
               block_shape: tuple[int, int], kernel: str, repeats: int, min_seconds: float,
               rng: np.random.Generator) -> dict:
    rows = gates * hidden
    br, bc = block_shape
    kept = rng.random((rows // br, hidden // bc)) >= sparsity
    matrix = rng.standard_normal((rows, hidden)).astype(np.float32)
    matrix *= np.repeat(np.repeat(kept, br, axis=0), bc, axis=1)
    formats = {"CSR": csr_from_dense, "permute-ELL": permute_ell_from_dense,
               "blocks": lambda m: block_sparse_from_dense(m, block_shape)}
    sparse = formats[kernel](matrix)
    dense = torch.from_numpy(matrix)
    x = rng.standard_normal((hidden, batch)).astype(np.float32)
    x_vec = np.ascontiguousarray(x[:, 0])
    x_torch = torch.from_numpy(x)
    out = np.empty((rows, batch), dtype=np.float32)
    out_vec = np.empty(rows, dtype=np.float32)
    out_torch = torch.empty(rows, batch)
    out_torch_vec = torch.empty(rows)
    parallel = threads > 1
    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    # Dense baseline: the faster of one torch.mm and `batch` torch.mv calls (torch.mm with 4
    # columns measured 4x slower than 4 torch.mv calls here, which would flatter the kernel).
    columns = [torch.from_numpy(np.ascontiguousarray(x[:, b])) for b in range(batch)]
    dense_calls = [lambda: [torch.mv(dense, c, out=out_torch_vec) for c in columns]]  # noqa: E731
    if batch == 1:
        sparse_call = lambda: sparse_multiply(sparse, x_vec, out_vec, parallel)  # noqa: E731
    else:
        dense_calls.append(lambda: torch.mm(dense, x_torch, out=out_torch))  # noqa: E731
        sparse_call = lambda: sparse_multiply(sparse, x, out, parallel)  # noqa: E731
    dense_times, sparse_times = [], []
    for _ in range(repeats):
        dense_times.append(min(seconds_per_call(call, min_seconds) for call in dense_calls))
        sparse_times.append(seconds_per_call(sparse_call, min_seconds))
    dense_s, sparse_s = statistics.median(dense_times), statistics.median(sparse_times)
    return {"hidden": hidden, "rows": rows, "batch": batch, "sparsity": sparsity,
            "blocks": f"{br}x{bc}", "kernel": kernel,
            "threads": threads, "dense_us": dense_s * 1e6, "sparse_us": sparse_s * 1e6,
            "speedup": dense_s / sparse_s, "ideal": matrix.nbytes / sparse.nbytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 1024, 1760, 2560])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.8, 0.9, 0.95])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--gates", type=int, default=1, help="1: RNN, 3: GRU (fused gates)")
    parser.add_argument("--blocks", nargs="+", default=["1x1", "4x4", "16x16"],
                        help="block shapes of the mask, rows x columns (1x1: unstructured)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.02,
                        help="wall time per timing sample (seconds)")
    args = parser.parse_args()
    try:
        shapes = [tuple(int(side) for side in b.split("x")) for b in args.blocks]
    except ValueError:
        parser.error(f"--blocks takes shapes like 4x4, got {args.blocks}")
    rng = np.random.default_rng(0)
    unstructured = ["CSR"] + (["permute-ELL"] if permute_ell_available() else [])
    print("| hidden | matrix | blocks | kernel | batch | sparsity | threads | dense us | sparse us "
          "| speedup | ideal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for hidden in args.hidden:
        for block_shape in shapes:
            for kernel in unstructured if block_shape == (1, 1) else ["blocks"]:
                for sparsity in args.sparsities:
                    for batch in args.batches:
                        for threads in args.threads:
                            r = bench_case(hidden, args.gates, batch, sparsity, threads,
                                           block_shape, kernel, args.repeats, args.min_seconds,
                                           rng)
                            print(f"| {r['hidden']} | {r['rows']}x{r['hidden']} | {r['blocks']} "
                                  f"| {r['kernel']} | {r['batch']} | {r['sparsity']:.0%} | "
                                  f"{r['threads']} | {r['dense_us']:.1f} | {r['sparse_us']:.1f} | "
                                  f"{r['speedup']:.2f}x | {r['ideal']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
