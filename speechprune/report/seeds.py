"""Runs that differ only in their seed, summarised together.

On a small test set one seed's relative WER is mostly noise: on tiny (123 test utterances) two
seeds of the same dense model measured 18.6% and 24.0% test WER (README, "Pruning during
training"). So the report groups runs whose settings are equal but for the seed, gives the mean
and standard deviation of their error rates, and compares the mean of each pruned group with the
mean of the dense group of the same settings (the same config without its `pruning` section):
the relative WER of the means, in the paper's form.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Optional

from speechprune.config import flatten
from speechprune.report.runs import Run
from speechprune.report.table import markdown_table, relative, signed_percent

# Keys that do not change what is trained: the seed (what a group varies), where and how fast
# it runs, the preset's name, the sweep objective, and the run the pruning schedule took its
# percentiles from (seeds of a pruned model are often pruned against their own dense seed).
NOT_SETTINGS = ("trainer.seed", "trainer.threads", "trainer.device", "data.batching.num_workers",
                "experiment_name", "objective", "pruning.baseline")


@dataclass
class SeedGroup:
    runs: list[str]  # run labels, in seed order
    seeds: list[int]
    model: str
    method: str  # pruning method ("none": dense)
    units: int
    params_nonzero: float  # mean over the group
    sparsity: float  # percent of parameters that are zero, mean
    test_wer: float  # percent, mean
    test_wer_sd: Optional[float]  # sample standard deviation; None for a single run
    test_cer: float
    test_cer_sd: Optional[float]
    relative_wer: Optional[float] = None  # percent, of the means against the dense group
    relative_cer: Optional[float] = None
    param_reduction: Optional[float] = None  # the dense group's mean non-zeros / this group's
    baseline: str = ""  # the dense group's first run


def settings_of(run: Run, without_pruning: bool = False) -> tuple[tuple[str, Any], ...]:
    """What `run` trained, as sorted (key, value) pairs; with `without_pruning`, what its dense
    twin trained."""
    ignored = NOT_SETTINGS + (("pruning",) if without_pruning else ())
    return tuple(sorted((key, value) for key, value in flatten(run.config).items()
                        if not any(key == i or key.startswith(f"{i}.") for i in ignored)))


def spread(values: list[float]) -> Optional[float]:
    return statistics.stdev(values) if len(values) > 1 else None


def seed_of(run: Run) -> int:
    return int(run.config.get("trainer", {}).get("seed", 0))


def summarise(runs: list[Run]) -> SeedGroup:
    runs = sorted(runs, key=lambda r: (seed_of(r), r.name))
    metrics = [r.metrics for r in runs]
    wers = [m["test_wer"] for m in metrics]
    cers = [m["test_cer"] for m in metrics]
    return SeedGroup(
        runs=[r.name for r in runs], seeds=[seed_of(r) for r in runs], model=runs[0].model_name,
        method=runs[0].pruning_method, units=runs[0].hidden_size,
        params_nonzero=statistics.mean(m["params_nonzero"] for m in metrics),
        sparsity=100.0 * statistics.mean(m["params_sparsity"] for m in metrics),
        test_wer=statistics.mean(wers), test_wer_sd=spread(wers),
        test_cer=statistics.mean(cers), test_cer_sd=spread(cers))


def group_by_seed(runs: list[Run]) -> list[SeedGroup]:
    """One group per setting, dense groups first; each pruned group compared with the dense
    group of its settings when there is one."""
    by_settings: dict[tuple, list[Run]] = {}
    for run in runs:
        by_settings.setdefault(settings_of(run), []).append(run)
    # Each group with the settings of its dense twin (its own, for a dense group).
    groups = [(summarise(members), settings_of(members[0], without_pruning=True))
              for members in by_settings.values()]
    dense = {twin: group for group, twin in groups if group.method == "none"}
    for group, twin_settings in groups:
        twin = dense.get(twin_settings)
        if group.method == "none" or twin is None:
            continue
        group.relative_wer = relative(twin.test_wer, group.test_wer)
        group.relative_cer = relative(twin.test_cer, group.test_cer)
        group.param_reduction = twin.params_nonzero / max(1.0, group.params_nonzero)
        group.baseline = twin.runs[0]
    return sorted((group for group, _ in groups),
                  key=lambda g: (g.model, g.units, g.method != "none", g.runs))


def mean_and_spread(mean: float, sd: Optional[float]) -> str:
    return f"{mean:.2f}" if sd is None else f"{mean:.2f} ± {sd:.2f}"


SEED_COLUMNS = ["runs", "pruning", "units", "seeds", "non-zero (mean)", "sparsity",
                "test WER", "test CER", "relative WER", "relative CER", "reduction"]


def seeds_markdown(groups: list[SeedGroup]) -> str:
    """A Markdown table of the groups: error rates as mean ± sample standard deviation."""
    rows = [[", ".join(g.runs), g.method, str(g.units), ", ".join(map(str, g.seeds)),
             f"{g.params_nonzero:,.0f}", f"{g.sparsity:.1f}%",
             mean_and_spread(g.test_wer, g.test_wer_sd), mean_and_spread(g.test_cer, g.test_cer_sd),
             signed_percent(g.relative_wer), signed_percent(g.relative_cer),
             "" if g.param_reduction is None else f"{g.param_reduction:.1f}x"]
            for g in groups]
    return markdown_table(SEED_COLUMNS, rows, text_columns=2)
