"""Wall time of a training step with pruning, against the same dense step, side by side.

For several model sizes, times one forward + CTC loss + backward + clip + SGD step of a
bidirectional GRU DeepSpeech2 model on a fixed random batch, in four variants interleaved
round by round (so machine noise hits them alike):

  dense          no pruning
  narang         speechprune's pruner: masks multiplied in after each step (threshold updated
                 every `freq` = 100 steps, as in the paper: the common step)
  narang-update  the same, with the threshold and masks updated on this very step (worst case)
  torch-prune    torch.nn.utils.prune: the masks applied by forward pre-hooks (weight_orig * mask
                 recomputed in every forward, gradients through the product)

Target: narang costs at most 3% more than dense. Whole-step ratios on a shared 2-core machine
carry several percent of noise, so the script also times the pruner's own work (`pruner.step`
after the optimizer step) and reports it as a share of the dense step: that share is the
overhead, measured directly.

    .venv/bin/python scripts/bench_pruning_overhead.py [--sizes 128 256 512] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn.utils import prune

from speechprune.commands import compose_config
from speechprune.model.deepspeech2 import DeepSpeech2
from speechprune.model.loss import ctc_loss
from speechprune.pruning import build_pruner

BATCH, FRAMES, LABELS, FEATURES, CLASSES = 8, 300, 40, 161, 29


def make_model(hidden: int) -> DeepSpeech2:
    cfg = compose_config("train", ["experiment=quickstart", f"model.hidden_size={hidden}",
                                   "model.num_layers=3"])
    torch.manual_seed(0)
    return DeepSpeech2(cfg.model, FEATURES, CLASSES)


def narang_config():
    cfg = compose_config("train", ["pruning=narang"]).pruning
    for group in cfg.groups.values():
        group.start_itr, group.ramp_itr, group.end_itr, group.freq = 0, "50%", "90%", 100
    return cfg


def make_step(model: torch.nn.Module, after_step=None):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9, nesterov=True)
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(BATCH, FRAMES, FEATURES, generator=generator)
    lengths = torch.full((BATCH,), FRAMES)
    targets = torch.randint(1, CLASSES, (BATCH, LABELS), generator=generator)
    target_lengths = torch.full((BATCH,), LABELS)
    counter = {"itr": 0}

    def step() -> None:
        log_probs, out_lengths = model(features, lengths)
        loss = ctc_loss(log_probs, out_lengths, targets, target_lengths)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 400.0)
        optimizer.step()
        if after_step is not None:
            after_step(counter["itr"])
        counter["itr"] += 1

    return step


def timed(function, seconds: list[float]):
    """`function`, recording the wall time of every call in `seconds`."""
    def wrapper(*args):
        start = time.perf_counter()
        function(*args)
        seconds.append(time.perf_counter() - start)
    return wrapper


def variants(hidden: int, pruner_seconds: dict[str, list[float]]) -> dict[str, callable]:
    dense = make_model(hidden)

    narang_model = make_model(hidden)
    pruner = build_pruner(narang_model, narang_config(), total_steps=1000, steps_per_epoch=100)
    pruner.step(100)  # masks exist and are non-trivial from here on
    # itr 101..: no update until 200 -> masks applied only (the common step)
    narang = make_step(narang_model, timed(lambda itr: pruner.step(101 + itr % 98),
                                           pruner_seconds["narang"]))

    update_model = make_model(hidden)
    update_pruner = build_pruner(update_model, narang_config(), total_steps=1000, steps_per_epoch=100)
    update_pruner.step(100)
    narang_update = make_step(update_model, timed(lambda itr: update_pruner.step(100 * (2 + itr % 6)),
                                                  pruner_seconds["narang-update"]))

    hooked = make_model(hidden)
    for name, module in hooked.named_modules():
        for param_name, _ in list(module.named_parameters(recurse=False)):
            if "weight_hh" in param_name or "weight_ih" in param_name or (
                    name.startswith("fc") and param_name == "weight"):
                prune.l1_unstructured(module, param_name, amount=0.5)
    return {"dense": make_step(dense), "narang": narang, "narang-update": narang_update,
            "torch-prune": make_step(hooked)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {BATCH} x {FRAMES} frames, 3-layer bidirectional GRU, {args.threads} threads; "
          f"median of {args.rounds} interleaved rounds")
    print(f"{'hidden':>6} {'dense ms':>9} {'narang':>8} {'narang-update':>14} {'torch-prune':>12}"
          f"   pruner.step share of a dense step: common, update")
    for hidden in args.sizes:
        pruner_seconds: dict[str, list[float]] = {"narang": [], "narang-update": []}
        steps = variants(hidden, pruner_seconds)
        for step in steps.values():  # warm-up
            step()
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
        median = {name: statistics.median(values) for name, values in times.items()}
        ratios = {name: median[name] / median["dense"] for name in steps}
        shares = {name: statistics.median(values) / median["dense"]
                  for name, values in pruner_seconds.items()}
        print(f"{hidden:>6} {1000 * median['dense']:>9.1f} {ratios['narang']:>7.3f}x "
              f"{ratios['narang-update']:>13.3f}x {ratios['torch-prune']:>11.3f}x   "
              f"{100 * shares['narang']:.2f}%, {100 * shares['narang-update']:.2f}%", flush=True)


if __name__ == "__main__":
    main()
