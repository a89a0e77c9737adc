"""End-to-end transcription real-time factor: a dense model vs the same model pruned, exported
and run on the sparse recurrent kernels.

    .venv/bin/python scripts/bench_transcription.py [--hidden 1024] [--layers 3] [--rnn-type gru]
        [--sparsity 0.9] [--block 1x1] [--seconds 4] [--repeats 5] [--threads 1]

The model has DeepSpeech2's shape (2 convs with time stride 2, bidirectional recurrent layers,
summed directions) with random weights: speed does not depend on what the weights learned. The
pruned model zeroes a random `sparsity` share of the (br x bc) blocks of every recurrent and
fully connected matrix (--block 1x1: single weights, as Narang pruning does; 4x4: as
pruning=block does), is written with `export_checkpoint` and loaded with `load_exported`.
Both transcribe the same synthetic audio file (features, network, greedy decoding), timed
interleaved; RTF = processing seconds / audio seconds (lower is faster).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from speechprune.commands import compose_config
from speechprune.config import as_dict
from speechprune.data.text import Alphabet
from speechprune.decoding.recognizer import Recognizer
from speechprune.deploy.export import export_checkpoint
from speechprune.deploy.kernels import set_cpu_threads
from speechprune.deploy.loader import load_exported
from speechprune.model.deepspeech2 import DeepSpeech2
from speechprune.pruning.magnitude import expand_block_mask
from speechprune.training.checkpoint import model_checkpoint, save_checkpoint


def write_model(path: Path, overrides: list[str], sparsity: float,
                block_shape: tuple[int, int] = (1, 1)) -> Path:
    cfg = compose_config("train", overrides)
    alphabet = Alphabet.from_config(cfg.data.text)
    torch.manual_seed(0)
    model = DeepSpeech2(cfg.model, 161, len(alphabet))
    br, bc = block_shape
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2 and ("rnns." in name or name.startswith("fc.")):
                rows, cols = param.shape
                kept = torch.rand(-(-rows // br), -(-cols // bc)) >= sparsity
                param.mul_(expand_block_mask(kept, param, block_shape))
    save_checkpoint(model_checkpoint(as_dict(cfg), alphabet.symbols, model.state_dict()), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--rnn-type", default="gru", choices=["gru", "rnn_relu", "rnn_tanh"])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--block", default="1x1",
                        help="prune blocks of rows x columns (1x1: unstructured)")
    parser.add_argument("--seconds", type=float, default=4.0, help="audio length (seconds)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    try:
        block_shape = tuple(int(side) for side in args.block.split("x"))
        assert len(block_shape) == 2
    except (ValueError, AssertionError):
        parser.error(f"--block takes a shape like 4x4, got {args.block!r}")
    parallel = set_cpu_threads(args.threads) > 1
    overrides = ["model=bigru", f"model.rnn_type={args.rnn_type}", "model.conv_layers=2",
                 "model.conv_channels=[32,32]", "model.conv_kernels=[[11,41],[11,21]]",
                 "model.conv_strides=[[2,2],[1,2]]", f"model.hidden_size={args.hidden}",
                 f"model.num_layers={args.layers}"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dense_path = write_model(tmp / "dense.pt", overrides, 0.0)
        pruned_path = write_model(tmp / "pruned.pt", overrides, args.sparsity, block_shape)
        summary = export_checkpoint(pruned_path, tmp / "pruned.spx")
        rate = 16000
        t = np.arange(int(args.seconds * rate)) / rate
        audio = tmp / "audio.wav"
        soundfile.write(audio, (0.3 * np.sin(2 * np.pi * 180 * t)
                                + 0.02 * np.random.default_rng(0).standard_normal(t.shape)
                                ).astype(np.float32), rate)
        cpu = torch.device("cpu")
        dense = Recognizer.from_checkpoint(dense_path, cpu)
        exported = load_exported(tmp / "pruned.spx", cpu, parallel=parallel)
        sparse = Recognizer(exported.model, exported.alphabet, exported.features,
                            exported.data_cfg, cpu, exported.source)
        print(f"model: {args.layers} x bidirectional {args.rnn_type} hidden {args.hidden}, "
              f"{sum(p.numel() for p in dense.model.parameters()):,} parameters; "
              f"export {summary.file_bytes:,} bytes ({summary.compression:.1f}x smaller than "
              f"dense fp32); kernels: {'; '.join(exported.kernels)}")
        files = [str(audio)]
        dense.transcribe(files), sparse.transcribe(files)  # warm up (numba compiles once)
        dense_times, sparse_times = [], []
        for _ in range(args.repeats):
            for recognizer, times in ((dense, dense_times), (sparse, sparse_times)):
                start = time.perf_counter()
                recognizer.transcribe(files)
                times.append(time.perf_counter() - start)
        dense_rtf = statistics.median(dense_times) / args.seconds
        sparse_rtf = statistics.median(sparse_times) / args.seconds
        print(f"| model | RTF (median of {args.repeats}) |\n|---|---|")
        print(f"| dense | {dense_rtf:.3f} |\n| {args.sparsity:.0%} sparse ({args.block} blocks), "
              f"exported | {sparse_rtf:.3f} |")
        print(f"speedup: {dense_rtf / sparse_rtf:.2f}x ({args.threads} thread(s))")


if __name__ == "__main__":
    main()
