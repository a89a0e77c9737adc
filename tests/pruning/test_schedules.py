import pytest

from speechprune.pruning.schedules import (
    GroupSchedule,
    cubic_sparsity,
    eq1_start_slope,
    has_threshold_update,
    is_sparsity_update,
    is_threshold_update,
    narang_threshold,
    resolve_itr,
)

SCHEDULE = GroupSchedule(start_itr=10, ramp_itr=30, end_itr=50, freq=5)
THETA, PHI = 0.2, 0.3


@pytest.mark.parametrize(
    "value, steps",
    [(2000, 2000), ("2000", 2000), ("2000 steps", 2000), ("1 epoch", 120), ("1.5 epochs", 180), ("25%", 250), ("100%", 1000), ("0", 0)],
)
def test_iterations_resolve_from_steps_epochs_and_percentages(value, steps):
    assert resolve_itr(value, "pruning.groups.g.start_itr", total_steps=1000, steps_per_epoch=120) == steps


@pytest.mark.parametrize("value", ["0.25", "abc", "1 week", "150%", "-3"])
def test_malformed_iterations_name_the_key(value):
    with pytest.raises(ValueError, match=r"pruning\.groups\.g\.ramp_itr"):
        resolve_itr(value, "pruning.groups.g.ramp_itr", total_steps=1000, steps_per_epoch=100)


def test_threshold_updates_every_freq_steps_strictly_between_start_and_end():
    updates = [itr for itr in range(70) if is_threshold_update(itr, SCHEDULE)]
    assert updates == [15, 20, 25, 30, 35, 40, 45]


def test_threshold_before_ramp_is_the_start_slope_line():
    # theta * (itr - start + 1) / freq = 0.2 * 6 / 5
    assert narang_threshold(15, SCHEDULE, THETA, PHI) == pytest.approx(0.24)
    assert narang_threshold(25, SCHEDULE, THETA, PHI) == pytest.approx(0.2 * 16 / 5)


def test_threshold_at_and_after_ramp_adds_the_ramp_slope():
    # (theta * (ramp - start + 1) + phi * (itr - ramp + 1)) / freq
    assert narang_threshold(30, SCHEDULE, THETA, PHI) == pytest.approx((0.2 * 21 + 0.3 * 1) / 5)
    assert narang_threshold(45, SCHEDULE, THETA, PHI) == pytest.approx((0.2 * 21 + 0.3 * 16) / 5)


def test_eq1_makes_the_threshold_reach_q_at_end_up_to_the_plus_one_terms():
    q = 0.37
    schedule = GroupSchedule(start_itr=100, ramp_itr=400, end_itr=900, freq=10)
    theta = eq1_start_slope(q, schedule, 1.5)
    span = 2 * (400 - 100) + 3 * (900 - 400)
    assert theta == pytest.approx(2 * q * 10 / span)
    at_end = narang_threshold(900, schedule, theta, 1.5 * theta)
    # The printed formula's "+ 1" terms add 5 / span; without them it is exactly q.
    assert at_end == pytest.approx(q * (1 + 5 / span), rel=1e-12)
    without_offsets = (theta * (400 - 100) + 1.5 * theta * (900 - 400)) / 10
    assert without_offsets == pytest.approx(q, rel=1e-12)


def test_eq1_for_the_paper_multiplier_is_the_printed_formula_to_the_bit():
    schedule = GroupSchedule(start_itr=2_000, ramp_itr=25_000, end_itr=50_000, freq=100)
    for q in (0.37, 0.0123, 1.9):
        printed = 2.0 * q * 100 / (2 * (25_000 - 2_000) + 3 * (50_000 - 25_000))
        assert eq1_start_slope(q, schedule, 1.5) == printed


@pytest.mark.parametrize("multiplier", [1.0, 1.5, 2.0, 2.5, 3.0])
def test_eq1_reaches_q_at_end_for_any_ramp_multiplier(multiplier):
    """The sweeps vary ramp_multiplier from 1.0 to 3.0; the threshold must end near q for each.
    Seen to fail: with theta from the fixed 1.5 formula (3 * (end - ramp) in the denominator)
    the threshold ended at 0.76 q for m = 1.0 and 1.71 q for m = 3.0."""
    q = 0.37
    schedule = GroupSchedule(start_itr=100, ramp_itr=400, end_itr=900, freq=10)
    theta = eq1_start_slope(q, schedule, multiplier)
    span = 2 * (400 - 100) + 2 * multiplier * (900 - 400)
    without_offsets = (theta * (400 - 100) + multiplier * theta * (900 - 400)) / 10
    assert without_offsets == pytest.approx(q, rel=1e-12)
    at_end = narang_threshold(900, schedule, theta, multiplier * theta)
    assert at_end == pytest.approx(q * (1 + (2 + 2 * multiplier) / span), rel=1e-12)


def test_eq1_without_a_rising_threshold_is_a_clear_error():
    schedule = GroupSchedule(start_itr=100, ramp_itr=100, end_itr=900, freq=10)
    with pytest.raises(ValueError, match="ramp_multiplier=0"):
        eq1_start_slope(0.5, schedule, 0)


def test_eq1_threshold_is_within_a_hundredth_of_a_percent_of_q_at_paper_scale():
    schedule = GroupSchedule(start_itr=2_000, ramp_itr=25_000, end_itr=50_000, freq=100)
    theta = eq1_start_slope(1.0, schedule, 1.5)
    assert narang_threshold(50_000, schedule, theta, 1.5 * theta) == pytest.approx(1.0, rel=1e-4)


def test_schedule_without_any_multiple_of_freq_inside_has_no_update():
    assert not has_threshold_update(GroupSchedule(start_itr=10, ramp_itr=12, end_itr=20, freq=10))
    assert has_threshold_update(GroupSchedule(start_itr=10, ramp_itr=12, end_itr=21, freq=10))


def test_cubic_sparsity_goes_from_initial_to_final():
    schedule = GroupSchedule(start_itr=100, ramp_itr=100, end_itr=500, freq=50)
    assert cubic_sparsity(50, schedule, 0.1, 0.9) == pytest.approx(0.1)
    assert cubic_sparsity(100, schedule, 0.1, 0.9) == pytest.approx(0.1)
    assert cubic_sparsity(300, schedule, 0.1, 0.9) == pytest.approx(0.9 - 0.8 * 0.5**3)
    assert cubic_sparsity(500, schedule, 0.1, 0.9) == pytest.approx(0.9)
    assert cubic_sparsity(700, schedule, 0.1, 0.9) == pytest.approx(0.9)


def test_cubic_updates_every_dt_from_t0_and_always_at_the_end():
    schedule = GroupSchedule(start_itr=10, ramp_itr=10, end_itr=33, freq=10)
    assert [i for i in range(50) if is_sparsity_update(i, schedule)] == [10, 20, 30, 33]
