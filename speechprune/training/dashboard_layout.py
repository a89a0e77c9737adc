"""The TensorBoard custom-scalars layout written into every run, so the dashboard's CUSTOM
SCALARS tab opens on the charts that matter, grouped: loss, WER/CER against the dense baseline,
sparsity per pruning group, thresholds.

Charts select tags by regular expression, so one layout fits dense and pruned runs alike and
TensorBoard merges the layouts of a sweep's runs into one dashboard.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from speechprune.model.run_dir import METRICS_FILE, RunDirectory

log = logging.getLogger(__name__)

# Tags of the dense baseline's final figures, written as flat reference lines (see
# `write_baseline_reference`) so a pruned run's dev WER is drawn against them.
BASELINE_REFERENCE = {"baseline/dev_wer": "dev_wer", "baseline/test_wer": "test_wer",
                      "baseline/test_cer": "test_cer", "baseline/params_nonzero": "params_nonzero"}

# A pruned run's dev WER relative to the baseline's, at every dev evaluation: a curve the
# relative test figures (one point at the end of the run) are drawn beside; TensorBoard draws
# no chart whose tags hold a single step.
RELATIVE_DEV_WER = "relative/dev_wer"

CATEGORY_LOSS = "1. loss"
CATEGORY_ERRORS = "2. WER and CER against the dense baseline"
CATEGORY_SPARSITY = "3. sparsity per group"
CATEGORY_THRESHOLDS = "4. pruning thresholds"


def custom_scalars_layout(groups: list[str]) -> dict[str, dict[str, list[Any]]]:
    """The layout in `SummaryWriter.add_custom_scalars` form:
    {category: {chart title: ["Multiline", [tag regexes]]}}. `groups` are the pruning groups
    (one sparsity and one threshold chart each); without groups, one chart per category."""
    sparsity = ({f"sparsity: {g}": ["Multiline", [rf"^pruning/sparsity/{g}$"]] for g in groups}
                if groups else {"sparsity": ["Multiline", [r"^pruning/sparsity/[^.]*$"]]})
    thresholds = ({f"threshold: {g}": ["Multiline", [rf"^pruning/threshold/{g}$"]] for g in groups}
                  if groups else {"threshold": ["Multiline", [r"^pruning/threshold/[^.]*$"]]})
    sparsity["whole model"] = ["Multiline", [r"^pruning/sparsity/model$", r"^params/sparsity$"]]
    return {
        CATEGORY_LOSS: {
            "CTC loss (train, dev)": ["Multiline", [r"^train/loss$", r"^dev/loss$"]],
            "gradient norm": ["Multiline", [r"^train/grad_norm$"]],
            "learning rate": ["Multiline", [r"^train/learning_rate$"]],
        },
        CATEGORY_ERRORS: {
            "dev WER (%) and the baseline's": ["Multiline", [r"^dev/wer$", r"^baseline/(dev|test)_wer$"]],
            "dev CER (%) and the baseline's": ["Multiline", [r"^dev/cer$", r"^baseline/test_cer$"]],
            "test WER (%) of every test set (best dev checkpoint)":
                ["Multiline", [r"^test_sets/.*/wer$", r"^baseline/test_wer$"]],
            "WER/CER relative to the baseline (paper form, >0 better): dev, and test at the end":
                ["Multiline", [r"^relative/dev_wer$", r"^hparams/relative_test_(wer|cer)$"]],
            "non-zero parameters": ["Multiline", [r"^params/nonzero$", r"^pruning/params/nonzero$",
                                                  r"^baseline/params_nonzero$"]],
        },
        CATEGORY_SPARSITY: sparsity,
        CATEGORY_THRESHOLDS: thresholds,
    }


def write_baseline_reference(writer, baseline_dir: str, total_steps: int) -> dict[str, Any] | None:
    """Write the baseline run's final figures at step 0 and `total_steps` (a flat line across
    the chart) and return its metrics; None, with a warning, when the baseline has no
    metrics.json yet."""
    path = RunDirectory(Path(baseline_dir)).metrics_file
    if not path.is_file():
        log.warning("pruning.baseline=%s has no %s: no baseline lines in TensorBoard",
                    baseline_dir, METRICS_FILE)
        return None
    metrics = json.loads(path.read_text())
    for tag, key in BASELINE_REFERENCE.items():
        if key in metrics:
            for step in (0, max(total_steps, 1)):
                writer.add_scalar(tag, metrics[key], step)
    return metrics


def relative_dev_figures(dev_wer: float, baseline: dict[str, Any] | None) -> dict[str, float]:
    """{RELATIVE_DEV_WER: (baseline dev WER - this) / baseline's}, the paper's form, for one
    dev evaluation; empty without a baseline dev WER to compare with."""
    reference = (baseline or {}).get("dev_wer")
    return {RELATIVE_DEV_WER: (reference - dev_wer) / reference} if reference else {}


def write_layout(writer, cfg: Any, total_steps: int) -> dict[str, Any] | None:
    """Write the custom-scalars layout of a run configured by `cfg` (a TrainConfig) into
    `writer`'s event file, and the baseline's reference lines when it names one; returns the
    baseline's metrics (None without one)."""
    pruning = cfg.pruning
    groups = list(pruning.groups.keys()) if pruning.method != "none" else []
    writer.add_custom_scalars(custom_scalars_layout(groups))
    if getattr(pruning, "baseline", None):
        return write_baseline_reference(writer, pruning.baseline, total_steps)
    return None
