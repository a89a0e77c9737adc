"""End-to-end transcription against the peers: dense fp32, torch's one-line dynamic int8, and the
pruned model exported with fp32 and with int8 values, all timed interleaved on the same audio.

    .venv/bin/python scripts/bench_transcription.py [--hidden 1024 1760] [--sparsity 0.9 0.95]
        [--threads 1 2] [--layers 3] [--rnn-type gru] [--seconds 4] [--repeats 5] [--isa avx2]

The model has DeepSpeech2's shape (2 convs with time stride 2, bidirectional recurrent layers,
summed directions) with random weights: speed does not depend on what the weights learned.
Per hidden size and sparsity:
- "dense fp32": the training checkpoint as `speechprune transcribe` runs it;
- "torch int8 (dynamic)": `torch.ao.quantization.quantize_dynamic(model, {nn.GRU, nn.Linear},
  dtype=torch.qint8)` of the same dense model, the one-line peer;
- "sparse fp32" / "sparse int8": a random `sparsity` share of every recurrent and fully
  connected weight zeroed (as Narang pruning leaves them), exported with `values=fp32|int8`;
- "sparse int8, 4x4 blocks": zeroed in whole 4x4 blocks (as pruning=block leaves them);
- "onnx (onnxruntime)": the pruned model exported with format=onnx and run by onnxruntime (when
  installed; `--no-onnx` leaves it out): ONNX stores the zeros, so this is dense speed.
Each is a Recognizer transcribing one file (features, network, greedy decoding); the models are
timed round-robin, `repeats` times each, and compared by median. RTF = processing seconds per
audio second. File sizes are those of the files each model loads from (torch int8: its
state_dict saved with torch.save). The CPU and the kernel level are printed with the results.

`--isa avx2` emulates an AVX2-only CPU on an AVX-512 one: every side is held to AVX2, the peers
too (fbgemm's int8 kernels: FBGEMM_ENABLE_INSTRUCTIONS; ATen, oneDNN and MKL for the float
parts), not only speechprune's kernels (SPEECHPRUNE_KERNEL); the script re-runs itself with those
variables set. Clock, caches and memory stay this CPU's, so it is an estimate of an AVX2 CPU's
ratios, not a measurement of one.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from speechprune.commands import compose_config
from speechprune.config import as_dict
from speechprune.data.text import Alphabet
from speechprune.deploy import native
from speechprune.deploy.export import export_checkpoint
from speechprune.deploy.onnx_export import export_onnx
from speechprune.deploy.kernels import set_cpu_threads
from speechprune.deploy.loader import load_exported
from speechprune.inference.recognizer import Recognizer
from speechprune.model.checkpoint import model_checkpoint, save_checkpoint
from speechprune.model.deepspeech2 import DeepSpeech2
from speechprune.pruning.magnitude import expand_block_mask

# What `--isa avx2` sets: each library's own switch for its highest instruction set.
AVX2_ENVIRONMENT = {"SPEECHPRUNE_KERNEL": "avx2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
                    "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                    "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
BENCH_MODEL = ["model=bigru", "model.conv_layers=2", "model.conv_channels=[32,32]",
               "model.conv_kernels=[[11,41],[11,21]]", "model.conv_strides=[[2,2],[1,2]]"]


def write_model(path: Path, overrides: list[str], sparsity: float,
                block_shape: tuple[int, int] = (1, 1)) -> Path:
    """A training checkpoint of a random model with a random `sparsity` share of the (br x bc)
    blocks of every recurrent and fully connected matrix zeroed."""
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


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def torch_dynamic_int8(recognizer: Recognizer) -> tuple[Recognizer, int]:
    """The peer: torch's dynamic int8 quantization of the dense model, and its saved size."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        model = torch.ao.quantization.quantize_dynamic(
            recognizer.model, {torch.nn.GRU, torch.nn.LSTM, torch.nn.RNN, torch.nn.Linear},
            dtype=torch.qint8)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
    return (Recognizer(model, recognizer.alphabet, recognizer.features, recognizer.data_cfg,
                       recognizer.device, recognizer.source), buffer.tell())


class OnnxRuntimeModel(torch.nn.Module):
    """The Recognizer's model interface over an onnxruntime session of a format=onnx export:
    forward(features (1, frames, num_features), lengths) -> (log_probs, output lengths)."""

    def __init__(self, path: Path, threads: int):
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        log_probs = torch.from_numpy(self.session.run(None, {self.input_name: features.numpy()})[0])
        return log_probs, torch.tensor([log_probs.shape[1]])


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Entry:
    name: str
    file: Path | None  # None: built in memory (torch int8)
    file_bytes: int
    kernels: str = ""


def load(entry: Entry, dense: Recognizer, threads: int) -> Recognizer:
    cpu = torch.device("cpu")
    parallel = threads > 1
    if entry.file is None:
        return torch_dynamic_int8(dense)[0]
    if entry.file.suffix == ".onnx":
        return Recognizer(OnnxRuntimeModel(entry.file, threads), dense.alphabet, dense.features,
                          dense.data_cfg, cpu, str(entry.file))
    if entry.file.suffix == ".pt":
        return Recognizer.from_checkpoint(entry.file, cpu)
    exported = load_exported(entry.file, cpu, parallel=parallel)
    entry.kernels = "; ".join(exported.kernels)
    return Recognizer(exported.model, exported.alphabet, exported.features, exported.data_cfg,
                      cpu, exported.source)


def time_round_robin(recognizers: dict[str, Recognizer], audio: str, repeats: int
                     ) -> dict[str, float]:
    """Median seconds per transcription of each recognizer, timed in turns."""
    with torch.no_grad():
        for recognizer in recognizers.values():
            recognizer.transcribe([audio])  # warm up: first calls allocate and pick kernels
        times: dict[str, list[float]] = {name: [] for name in recognizers}
        for _ in range(repeats):
            for name, recognizer in recognizers.items():
                start = time.perf_counter()
                recognizer.transcribe([audio])
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_size(tmp: Path, hidden: int, sparsity: float, args: argparse.Namespace,
               audio: str) -> None:
    overrides = BENCH_MODEL + [f"model.rnn_type={args.rnn_type}", f"model.hidden_size={hidden}",
                               f"model.num_layers={args.layers}"]
    dense_path = write_model(tmp / "dense.pt", overrides, 0.0)
    pruned_path = write_model(tmp / "pruned.pt", overrides, sparsity)
    blocks_path = write_model(tmp / "blocks.pt", overrides, sparsity, (4, 4))
    dense = Recognizer.from_checkpoint(dense_path, torch.device("cpu"))
    dense_bytes = 4 * sum(t.numel() for t in dense.model.state_dict().values())
    entries = [Entry("dense fp32", dense_path, dense_path.stat().st_size),
               Entry("torch int8 (dynamic)", None, torch_dynamic_int8(dense)[1])]
    for name, source, values in (("sparse fp32", pruned_path, "fp32"),
                                 ("sparse int8", pruned_path, "int8"),
                                 ("sparse int8, 4x4 blocks", blocks_path, "int8")):
        out = tmp / f"{name.replace(' ', '_').replace(',', '')}.spx"
        entries.append(Entry(name, out, export_checkpoint(source, out, values=values).file_bytes))
    if args.onnx:
        onnx_path = tmp / "pruned.onnx"
        export_onnx(pruned_path, onnx_path)
        entries.append(Entry("onnx (onnxruntime)", onnx_path, onnx_path.stat().st_size))
    parameters = sum(p.numel() for p in dense.model.parameters())
    print(f"\n### {args.layers} x bidirectional {args.rnn_type} {hidden}, {sparsity:.0%} sparse "
          f"({parameters:,} parameters, {args.seconds:g} s of audio, median of {args.repeats})\n")
    results = {}
    for threads in args.threads:
        set_cpu_threads(threads)
        recognizers = {entry.name: load(entry, dense, threads) for entry in entries}
        results[threads] = time_round_robin(recognizers, audio, args.repeats)
    header = "| model | file bytes | smaller than dense fp32 |"
    rule = "|---|---|---|"
    for threads in args.threads:
        header += f" RTF, {threads} thread(s) | vs dense fp32 | vs torch int8 |"
        rule += "---|---|---|"
    print(header + "\n" + rule)
    for entry in entries:
        row = f"| {entry.name} | {entry.file_bytes:,} | {dense_bytes / entry.file_bytes:.1f}x |"
        for threads in args.threads:
            seconds = results[threads]
            row += (f" {seconds[entry.name] / args.seconds:.4f} |"
                    f" {seconds['dense fp32'] / seconds[entry.name]:.2f}x |"
                    f" {seconds['torch int8 (dynamic)'] / seconds[entry.name]:.2f}x |")
        print(row)
    for entry in entries:
        if entry.kernels:
            print(f"\n{entry.name} kernels ({args.threads[-1]} thread(s)): {entry.kernels}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[1024, 1760])
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.9, 0.95])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--rnn-type", default="gru", choices=["gru", "rnn_relu", "rnn_tanh"])
    parser.add_argument("--seconds", type=float, default=4.0, help="audio length (seconds)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-onnx", dest="onnx", action="store_false",
                        help="leave out the onnxruntime peer")
    parser.add_argument("--isa", choices=["native", "avx2"], default="native",
                        help="avx2: hold every library to AVX2 (see the module docstring)")
    args = parser.parse_args()
    if args.isa == "avx2" and any(os.environ.get(k) != v for k, v in AVX2_ENVIRONMENT.items()):
        # The libraries read their switches when they load, so the settings need a new process.
        os.execvpe(sys.executable, [sys.executable, *sys.argv], {**os.environ, **AVX2_ENVIRONMENT})
    args.onnx = args.onnx and onnxruntime_available()
    held = ", ".join(f"{k}={os.environ[k]}" for k in AVX2_ENVIRONMENT if k in os.environ)
    print(f"CPU: {cpu_name()}; {native.describe_levels()}; torch {torch.__version__} "
          f"({torch.backends.cpu.get_cpu_capability()}), quantized engine "
          f"{torch.backends.quantized.engine}" + (f"; held to AVX2: {held}" if held else ""))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rate = 16000
        t = np.arange(int(args.seconds * rate)) / rate
        audio = tmp / "audio.wav"
        soundfile.write(audio, (0.3 * np.sin(2 * np.pi * 180 * t)
                                + 0.02 * np.random.default_rng(0).standard_normal(t.shape)
                                ).astype(np.float32), rate)
        for hidden in args.hidden:
            for sparsity in args.sparsity:
                bench_size(tmp, hidden, sparsity, args, str(audio))


if __name__ == "__main__":
    main()
