"""A power law between a model's non-zero parameters N and its WER, per model family:

    WER(N) = scale * N ** (-exponent)

fitted by least squares on log(WER) against log(N). It answers "what WER would a model of an
untried size reach?" and, by leaving each run out in turn and predicting it from the others,
shows how far such an answer can be trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from speechprune.report.table import ReportRow

MIN_POINTS_TO_FIT = 2  # distinct sizes a power law needs
MIN_POINTS_TO_HOLD_OUT = 3  # leaving one out must leave a fit


@dataclass
class PowerLaw:
    scale: float
    exponent: float  # WER falls by a factor 2**exponent when N doubles

    def predict(self, nonzero_params: float) -> float:
        """WER (percent) at `nonzero_params` non-zero parameters."""
        return self.scale * nonzero_params ** (-self.exponent)

    def formula(self) -> str:
        return f"WER = {self.scale:.4g} * N^-{self.exponent:.3f}"


@dataclass
class HeldOut:
    run: str
    nonzero_params: int
    actual_wer: float
    predicted_wer: float  # from the fit to the family's other runs

    @property
    def error(self) -> float:
        """Predicted minus actual, in WER points."""
        return self.predicted_wer - self.actual_wer


@dataclass
class FamilyFit:
    family: str
    law: PowerLaw
    runs: list[str]
    held_out: list[HeldOut] = field(default_factory=list)
    predictions: dict[int, float] = field(default_factory=dict)  # N -> predicted WER

    @property
    def mean_absolute_error(self) -> float:
        """Mean |predicted - actual| over the held-out runs, in WER points (nan: none)."""
        return (sum(abs(h.error) for h in self.held_out) / len(self.held_out)
                if self.held_out else math.nan)


def fit_power_law(nonzero_params: Sequence[float], wer: Sequence[float]) -> PowerLaw:
    """Least squares of log(WER) on log(N). Needs at least two distinct N and WER > 0."""
    n = np.asarray(nonzero_params, dtype=np.float64)
    w = np.asarray(wer, dtype=np.float64)
    if len(np.unique(n)) < MIN_POINTS_TO_FIT:
        raise ValueError(f"a power law needs at least {MIN_POINTS_TO_FIT} distinct sizes, got {len(np.unique(n))}")
    if (w <= 0).any() or (n <= 0).any():
        raise ValueError("a power law needs WER > 0 and N > 0 (log scale)")
    slope, intercept = np.polyfit(np.log(n), np.log(w), 1)
    return PowerLaw(scale=float(math.exp(intercept)), exponent=float(-slope))


def untried_size(sizes: Sequence[int]) -> int:
    """The geometric middle of the sizes tried: a size between them that no run has."""
    return int(round(math.exp(sum(math.log(s) for s in sizes) / len(sizes))))


def fit_families(rows: list[ReportRow], predict_at: Sequence[int] = ()) -> list[FamilyFit]:
    """One fit per family with at least two distinct sizes (runs with WER 0 left out: no log).

    Predictions at `predict_at` non-zero parameter counts, or, when empty, at one untried size
    inside the family's range."""
    fits = []
    for family in sorted({r.family for r in rows}):
        members = [r for r in rows if r.family == family and r.test_wer > 0 and r.params_nonzero > 0]
        if len({r.params_nonzero for r in members}) < MIN_POINTS_TO_FIT:
            continue
        sizes = [r.params_nonzero for r in members]
        law = fit_power_law(sizes, [r.test_wer for r in members])
        fit = FamilyFit(family, law, [r.run for r in members])
        if len(members) >= MIN_POINTS_TO_HOLD_OUT:
            for left_out in members:
                others = [r for r in members if r is not left_out]
                if len({r.params_nonzero for r in others}) < MIN_POINTS_TO_FIT:
                    continue
                partial = fit_power_law([r.params_nonzero for r in others], [r.test_wer for r in others])
                fit.held_out.append(HeldOut(left_out.run, left_out.params_nonzero,
                                            left_out.test_wer, partial.predict(left_out.params_nonzero)))
        for size in (list(predict_at) or [untried_size(sizes)]):
            fit.predictions[int(size)] = law.predict(size)
        fits.append(fit)
    return fits


def fits_markdown(fits: list[FamilyFit]) -> str:
    """The fitted laws, their predictions and their leave-one-out errors, as Markdown."""
    if not fits:
        return "No family has runs of two different sizes: nothing to fit."
    lines = []
    for fit in fits:
        lines.append(f"- **{fit.family}** ({len(fit.runs)} runs): {fit.law.formula()} "
                     f"(N = non-zero parameters, WER in percent)")
        for size, wer in fit.predictions.items():
            lines.append(f"  - predicted test WER at N = {size:,}: {wer:.2f}")
        if fit.held_out:
            lines.append(f"  - leave-one-out: mean |error| {fit.mean_absolute_error:.2f} WER points")
            for h in fit.held_out:
                lines.append(f"    - {h.run} (N = {h.nonzero_params:,}): actual {h.actual_wer:.2f}, "
                             f"predicted {h.predicted_wer:.2f} ({h.error:+.2f})")
        else:
            lines.append(f"  - leave-one-out error needs {MIN_POINTS_TO_HOLD_OUT} runs; "
                         f"this family has {len(fit.runs)}")
    return "\n".join(lines)
