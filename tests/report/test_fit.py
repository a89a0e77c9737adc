"""The power law between non-zero parameters and WER: fit, prediction, held-out error."""

from __future__ import annotations

import math

import pytest

from speechprune.report.fit import fit_families, fit_power_law, fits_markdown, untried_size
from speechprune.report.table import ReportRow


def row(run: str, family: str, nonzero: int, wer: float) -> ReportRow:
    return ReportRow(run=run, model=family.split()[0], family=family, method="narang", units=0,
                     layers=1, params_total=nonzero * 10, params_nonzero=nonzero, sparsity=90.0,
                     dev_wer=wer, test_wer=wer, test_cer=wer / 2, relative_wer=None,
                     relative_cer=None, param_reduction=None, baseline="", predicted_sparsity=None)


def test_fit_recovers_the_scale_and_exponent_of_an_exact_power_law():
    sizes = [1e4, 3e4, 1e5, 3e5]
    law = fit_power_law(sizes, [500 * n ** -0.3 for n in sizes])
    assert law.exponent == pytest.approx(0.3)
    assert law.scale == pytest.approx(500)
    assert law.predict(2e5) == pytest.approx(500 * 2e5 ** -0.3)


def test_fit_refuses_a_single_size_and_a_zero_wer():
    with pytest.raises(ValueError, match="distinct sizes"):
        fit_power_law([1000, 1000], [10.0, 12.0])
    with pytest.raises(ValueError, match="WER > 0"):
        fit_power_law([1000, 2000], [10.0, 0.0])


def test_families_are_fitted_apart_and_each_run_is_predicted_from_the_others():
    dense = [row(f"d{n}", "bigru dense", n, 800 * n ** -0.35) for n in (20_000, 50_000, 120_000)]
    # Sparse runs off the law by a known amount: the held-out error must show it.
    sparse_sizes = (10_000, 30_000, 90_000)
    noise = (1.0, 1.2, 1.0)
    sparse = [row(f"s{n}", "bigru sparse", n, 300 * n ** -0.25 * k) for n, k in zip(sparse_sizes, noise)]
    lonely = [row("r1", "birnn dense", 40_000, 30.0)]
    fits = {f.family: f for f in fit_families(dense + sparse + lonely)}
    assert set(fits) == {"bigru dense", "bigru sparse"}  # one size: nothing to fit
    assert fits["bigru dense"].law.exponent == pytest.approx(0.35)
    assert fits["bigru dense"].mean_absolute_error == pytest.approx(0, abs=1e-9)
    held_out = {h.run: h for h in fits["bigru sparse"].held_out}
    assert set(held_out) == {"s10000", "s30000", "s90000"}
    middle = held_out["s30000"]
    from_ends = fit_power_law([10_000, 90_000], [300 * 10_000 ** -0.25, 300 * 90_000 ** -0.25])
    assert middle.predicted_wer == pytest.approx(from_ends.predict(30_000))
    assert middle.error == pytest.approx(middle.predicted_wer - middle.actual_wer)
    assert fits["bigru sparse"].mean_absolute_error > 0.1
    # Without sizes asked for, one untried size inside the range is predicted.
    (size,) = fits["bigru dense"].predictions
    assert size == untried_size([20_000, 50_000, 120_000]) and 20_000 < size < 120_000
    assert size not in (20_000, 50_000, 120_000)


def test_predictions_at_requested_sizes_and_their_markdown():
    rows = [row(f"d{n}", "birnn dense", n, 1000 * n ** -0.5) for n in (10_000, 40_000, 160_000)]
    (fit,) = fit_families(rows, predict_at=[80_000])
    assert fit.predictions[80_000] == pytest.approx(1000 * 80_000 ** -0.5)
    text = fits_markdown([fit])
    assert "birnn dense" in text and "80,000" in text and f"{1000 * 80_000 ** -0.5:.2f}" in text
    assert "leave-one-out" in text
    assert not math.isnan(fit.mean_absolute_error)
