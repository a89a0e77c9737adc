"""One row per run: size, sparsity, error rates and performance relative to the dense baseline.

Relative performance has the paper's form (Narang et al. 2017, Table 3): (baseline - run) /
baseline of the error rate, in percent, so a negative number is worse than the baseline. The
baseline of a run is, in order of precedence: the run the report names (`baseline=<run dir>`),
the `pruning.baseline` the run was trained against (its metrics.json already holds the relative
figures), else the dense run of the same model with the most parameters among the runs reported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

from speechprune.report.runs import Run


@dataclass
class ReportRow:
    run: str
    model: str  # model preset name (bigru, birnn, ...)
    family: str  # model and kind, e.g. "bigru sparse"
    method: str  # pruning method ("none": dense)
    units: int  # hidden units per direction
    layers: int  # recurrent layers
    params_total: int
    params_nonzero: int
    sparsity: float  # percent of parameters that are zero
    dev_wer: float  # percent, best dev checkpoint
    test_wer: float  # percent
    test_cer: float  # percent
    relative_wer: Optional[float]  # percent, (baseline - run) / baseline; None without a baseline
    relative_cer: Optional[float]
    param_reduction: Optional[float]  # baseline's non-zero parameters / this run's
    baseline: str  # the baseline's label ("" without one)
    predicted_sparsity: Optional[float]  # percent of the model, predicted before training


@dataclass
class Baseline:
    label: str
    test_wer: float
    test_cer: float
    params_nonzero: int


def baseline_of(run: Run) -> Baseline:
    m = run.metrics
    return Baseline(run.name, m["test_wer"], m["test_cer"], m["params_nonzero"])


def family_baselines(runs: list[Run]) -> dict[str, Baseline]:
    """Per model name, the dense run with the most parameters (the paper's dense baseline)."""
    baselines: dict[str, Run] = {}
    for run in runs:
        if not run.is_dense:
            continue
        best = baselines.get(run.model_name)
        if best is None or run.metrics["params_total"] > best.metrics["params_total"]:
            baselines[run.model_name] = run
    return {model: baseline_of(run) for model, run in baselines.items()}


def relative(baseline: float, value: float) -> Optional[float]:
    """(baseline - value) / baseline in percent; None when the baseline's error is zero."""
    return 100.0 * (baseline - value) / baseline if baseline else None


def build_rows(runs: list[Run], explicit_baseline: Optional[Run] = None) -> list[ReportRow]:
    """The table's rows, grouped by model, dense before sparse, larger before smaller."""
    per_family = family_baselines(runs)
    rows = []
    for run in runs:
        m = run.metrics
        relative_wer = relative_cer = reduction = None
        label = ""
        baseline = (baseline_of(explicit_baseline) if explicit_baseline is not None
                    else None if "relative_test_wer" in m else per_family.get(run.model_name))
        if baseline is not None:
            label = baseline.label
            relative_wer = relative(baseline.test_wer, m["test_wer"])
            relative_cer = relative(baseline.test_cer, m["test_cer"])
            reduction = baseline.params_nonzero / max(1, m["params_nonzero"])
        elif "relative_test_wer" in m:  # trained with pruning.baseline: figures already there
            label = str(m.get("baseline", {}).get("run", "pruning.baseline"))
            relative_wer = 100.0 * m["relative_test_wer"]
            relative_cer = 100.0 * m["relative_test_cer"]
            reduction = m.get("param_reduction")
        predicted = m.get("predicted", {})
        predicted_sparsity = (100.0 * (1 - predicted["params_nonzero"] / predicted["params_total"])
                              if predicted.get("params_total") else None)
        rows.append(ReportRow(
            run=run.name, model=run.model_name, family=run.family, method=run.pruning_method,
            units=run.hidden_size, layers=int(run.config.get("model", {}).get("num_layers", 0)),
            params_total=int(m["params_total"]), params_nonzero=int(m["params_nonzero"]),
            sparsity=100.0 * m["params_sparsity"], dev_wer=m["dev_wer"], test_wer=m["test_wer"],
            test_cer=m["test_cer"], relative_wer=relative_wer, relative_cer=relative_cer,
            param_reduction=reduction, baseline=label, predicted_sparsity=predicted_sparsity))
    rows.sort(key=lambda r: (r.model, r.method != "none", -r.params_total, r.run))
    return rows


def signed_percent(value: Optional[float]) -> str:
    return "" if value is None else f"{value:+.2f}%"


MARKDOWN_COLUMNS = ["run", "model", "pruning", "units", "params", "non-zero", "sparsity",
                    "dev WER", "test WER", "test CER", "relative WER", "relative CER",
                    "reduction"]


def markdown_cells(row: ReportRow) -> list[str]:
    return [row.run, row.model, row.method, str(row.units), f"{row.params_total:,}",
            f"{row.params_nonzero:,}", f"{row.sparsity:.1f}%", f"{row.dev_wer:.2f}",
            f"{row.test_wer:.2f}", f"{row.test_cer:.2f}", signed_percent(row.relative_wer),
            signed_percent(row.relative_cer),
            "" if row.param_reduction is None else f"{row.param_reduction:.1f}x"]


def markdown_table(columns: list[str], rows: list[list[str]], text_columns: int) -> str:
    """A GitHub-flavoured Markdown table: the first `text_columns` left-aligned, numbers right."""
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(columns))) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def to_markdown(rows: list[ReportRow]) -> str:
    """The runs as a Markdown table; error rates in percent, relative figures signed."""
    return markdown_table(MARKDOWN_COLUMNS, [markdown_cells(row) for row in rows], text_columns=3)


def to_csv(rows: list[ReportRow]) -> str:
    """Every field of every row at full precision (empty cell: no baseline or no prediction)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(ReportRow)], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in asdict(row).items()})
    return out.getvalue()


def write_csv(rows: list[ReportRow], path: Path) -> None:
    path.write_text(to_csv(rows))
