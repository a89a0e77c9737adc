"""Check, in one command, the CUDA paths that the CPU tests cannot reach (run it where a GPU is).

    .venv/bin/python scripts/check_gpu.py [--epochs 2] [--out DIR] [--device cuda|cpu]

1. Mixed precision with pruning: the quickstart model trains on cuda:0 (cuDNN GRUs over packed
   sequences) with trainer.precision=bf16 and =fp16 and pruning=narang on a schedule squeezed
   into the run. Passes when the dev loss falls, at most a few steps are skipped as non-finite
   (fp16 loss scaling skips some while it calibrates), and every masked weight is exactly zero
   in the final checkpoint: the masks, applied in place, reached cuDNN's flat weight buffer.
2. DistributedDataParallel with NCCL under torchrun: two processes when there are two GPUs, else
   one (NCCL refuses two ranks on one GPU); metrics.json must say ranks_identical and
   masks_identical.
3. The bf16 run's export loaded on the GPU falls back to torch's dense kernels and transcribes
   test utterances as its training checkpoint does.

`--device cpu` rehearses the same checks on the CPU (fp32, gloo with two processes, the export
on the sparse kernels), to try the script before spending device time. Needs data/tiny
(`make data`). Prints one PASS/FAIL line per check, writes check_gpu.json into --out, and exits
1 if a check failed, 2 when there is no CUDA device.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from speechprune.model.run_dir import RunDirectory

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "speechprune.cli"]
# Narang pruning from step 10, ramp at 40%, frozen at 80% of the run, thresholds every 5 steps.
SQUEEZED_SCHEDULE = [f"pruning.groups.{group}.{key}={value}"
                     for group in ("recurrent", "input", "fc")
                     for key, value in (("start_itr", 10), ("ramp_itr", "'40%'"),
                                        ("end_itr", "'80%'"), ("freq", 5))]
MAX_SKIPPED_STEPS = 10


def train(run_dir: Path, overrides: list[str], processes: int = 0) -> tuple[int, float, str]:
    """(exit status, seconds, output tail) of `speechprune train` (under torchrun if processes)."""
    command = CLI + ["train"]
    if processes:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "-m", "speechprune.cli", "train"]
    start = time.perf_counter()
    result = subprocess.run(command + overrides + [f"hydra.run.dir={run_dir}"], cwd=REPO,
                            capture_output=True, text=True, env={**os.environ,
                                                                 "PYTHONUNBUFFERED": "1"})
    return result.returncode, time.perf_counter() - start, (result.stdout + result.stderr)[-2000:]


def dev_losses(run_dir: Path) -> list[float]:
    log_file = RunDirectory(run_dir).log_file
    log = log_file.read_text() if log_file.exists() else ""
    return [float(x) for x in re.findall(r"dev: loss ([0-9.]+)", log)]


def masked_weights_are_zero(run_dir: Path) -> tuple[bool, int]:
    """(every weight under a zero mask is exactly 0, number of masked weights) in last.pt."""
    checkpoint = torch.load(RunDirectory(run_dir).last_checkpoint, map_location="cpu",
                            weights_only=False)
    model, masked, all_zero = checkpoint["model"], 0, True
    for group in checkpoint["pruner"]["groups"].values():
        for name, matrix in group["matrices"].items():
            pruned = matrix["mask"] == 0
            masked += int(pruned.sum())
            all_zero &= bool((model[name][pruned] == 0).all())
    return all_zero, masked


def check_precision(precision: str, base: list[str], out: Path) -> dict:
    run_dir = out / f"train_{precision}"
    status, seconds, tail = train(run_dir, base + [f"trainer.precision={precision}"])
    result = {"check": f"{precision} training with narang masks", "seconds": round(seconds, 1)}
    if status != 0:
        return {**result, "passed": False, "detail": tail}
    losses = dev_losses(run_dir)
    metrics = json.loads(RunDirectory(run_dir).metrics_file.read_text())
    zero, masked = masked_weights_are_zero(run_dir)
    result.update(dev_losses=losses, nonfinite_steps=metrics.get("nonfinite_steps"),
                  masked_weights=masked, masked_weights_zero=zero,
                  sparsity=metrics.get("params_sparsity"), test_wer=metrics.get("test_wer"))
    result["passed"] = (len(losses) >= 2 and losses[-1] < losses[0] and zero and masked > 0
                        and metrics.get("nonfinite_steps", 0) <= MAX_SKIPPED_STEPS)
    return result


def check_ddp(base: list[str], out: Path, device: str) -> dict:
    processes = 2 if device == "cpu" else min(2, torch.cuda.device_count())
    run_dir = out / "train_ddp"
    status, seconds, tail = train(run_dir, base + ["trainer.epochs=1"], processes=processes)
    backend = "gloo" if device == "cpu" else "NCCL"
    result = {"check": f"{backend} DDP, {processes} process(es)", "seconds": round(seconds, 1)}
    if status != 0:
        return {**result, "passed": False, "detail": tail}
    metrics = json.loads(RunDirectory(run_dir).metrics_file.read_text())
    result.update({key: metrics.get(key) for key in
                   ("world_size", "ranks_identical", "masks_identical")})
    result["passed"] = (metrics.get("world_size") == processes and metrics.get("ranks_identical")
                        is True and metrics.get("masks_identical") is True)
    return result


def check_export(run: str, out: Path, device: str) -> dict:
    from speechprune.deploy.export import export_checkpoint
    from speechprune.deploy.loader import load_exported
    from speechprune.inference.recognizer import Recognizer

    export = out / f"{run}.spx"
    export_checkpoint(out / run, export)
    corpus = REPO / "data" / "tiny"
    files = [str(corpus / json.loads(line)["audio_filepath"])
             for line in (corpus / "test.jsonl").read_text().splitlines()[:8]]
    exported = load_exported(export, device, sparse_min_sparsity=0.0)  # sparse however few zeros
    recognizer = Recognizer(exported.model, exported.alphabet, exported.features,
                            exported.data_cfg, torch.device(device), exported.source)
    reference = Recognizer.from_checkpoint(out / run, torch.device("cpu"))
    same = sum(a == b for a, b in zip(recognizer.transcribe(files), reference.transcribe(files)))
    expected_kernel = "not on the CPU" if device == "cuda" else "recurrent"
    return {"check": f"export of {run} loaded on {device} vs its checkpoint",
            "kernels": exported.kernels, "same_transcripts": f"{same}/{len(files)}",
            "passed": (all(expected_kernel in k for k in exported.kernels)
                       and same >= len(files) - 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "check_gpu")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: rehearse the checks without a GPU (fp32, gloo)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check here (run this on a machine with a GPU)")
        sys.exit(2)
    if not (REPO / "data/tiny/train.jsonl").exists():
        print("data/tiny is missing: build it first with `make data`")
        sys.exit(2)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.device == "cuda":
        print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
              f"cuDNN {torch.backends.cudnn.version()}", flush=True)
    base = ["experiment=quickstart", f"trainer.device={args.device}",
            f"trainer.epochs={args.epochs}", "data.batching.num_workers=4", "pruning=narang",
            *SQUEEZED_SCHEDULE]
    precisions = ["bf16", "fp16"] if args.device == "cuda" else ["fp32"]
    checks = [lambda p=p: check_precision(p, base, args.out) for p in precisions]
    checks += [lambda: check_ddp(base, args.out, args.device),
               lambda: check_export(f"train_{precisions[0]}", args.out, args.device)]
    results = []
    for check in checks:
        try:
            result = check()
        except Exception as error:  # a check that crashes is a failed check; the others still run
            result = {"check": "a check crashed", "passed": False,
                      "detail": f"{type(error).__name__}: {error}"}
        results.append(result)
        details = {k: v for k, v in result.items() if k not in ("check", "passed")}
        print(f"{'PASS' if result['passed'] else 'FAIL'} {result['check']}: {details}", flush=True)
    (args.out / "check_gpu.json").write_text(json.dumps(results, indent=2, default=str))
    sys.exit(0 if all(r["passed"] for r in results) else 1)


if __name__ == "__main__":
    main()
