"""Pruning schedules: when a group is updated and how far (threshold in |w|, or sparsity).

All iterations are 0-based optimizer steps counted over the whole run (`itr`). A group's
`start_itr` / `ramp_itr` / `end_itr` are written with a unit in the config (steps, epochs or a
percentage of training) and resolved here to steps, once, when the pruner is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

# "2000", "2000 steps", "1 epoch", "1.5 epochs", "25%".
_ITR_SYNTAX = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(steps?|epochs?|%)?\s*$")
ITR_SYNTAX_HINT = (
    "write an integer step count (2000), epochs ('1 epoch', '1.5 epochs') "
    "or a percentage of the run's total steps ('25%')"
)


def resolve_itr(value: object, key: str, total_steps: int, steps_per_epoch: int) -> int:
    """Convert a config iteration (`2000`, `"1 epoch"`, `"25%"`) to an optimizer step index.

    `key` (e.g. "pruning.groups.recurrent.ramp_itr") names the setting in the error message.
    Epochs and percentages are rounded to the nearest step.
    """
    text = str(value)
    match = _ITR_SYNTAX.match(text)
    if match is None:
        raise ValueError(f"{key}={text!r}: not an iteration; {ITR_SYNTAX_HINT}.")
    number, unit = float(match.group(1)), match.group(2) or "steps"
    if unit.startswith("step"):
        if number != int(number):
            raise ValueError(f"{key}={text!r}: a step count must be a whole number; {ITR_SYNTAX_HINT}.")
        return int(number)
    if unit.startswith("epoch"):
        return round(number * steps_per_epoch)
    if number > 100:
        raise ValueError(f"{key}={text!r}: a percentage of training must be at most 100%.")
    return round(number / 100.0 * total_steps)


@dataclass(frozen=True)
class GroupSchedule:
    """A group's schedule resolved to optimizer steps (0-based, over the whole run); None for
    an iteration the method has no key for (gradual's ramp_itr, oneshot's freq)."""

    start_itr: int
    ramp_itr: Optional[int]
    end_itr: int
    freq: Optional[int]  # steps between updates


# --------------------------------------------------------------------------------------------
# Narang et al. 2017: a threshold rising linearly with two slopes
# --------------------------------------------------------------------------------------------


def is_threshold_update(itr: int, schedule: GroupSchedule) -> bool:
    """True when the threshold and masks are updated at step `itr`.

    As in the paper's Algorithm 1: every `freq` steps (itr % freq == 0) while
    start_itr < itr < end_itr.
    """
    return schedule.start_itr < itr < schedule.end_itr and itr % schedule.freq == 0


def has_threshold_update(schedule: GroupSchedule) -> bool:
    """True when at least one step of the schedule updates the threshold."""
    first_multiple = (schedule.start_itr // schedule.freq + 1) * schedule.freq
    return first_multiple < schedule.end_itr


def narang_threshold(itr: int, schedule: GroupSchedule, start_slope: float, ramp_slope: float) -> float:
    """The threshold eps (in |w|) at step `itr` of the Narang schedule (method.md).

    eps = theta * (itr - start + 1) / freq                                   before ramp_itr
    eps = (theta * (ramp - start + 1) + phi * (itr - ramp + 1)) / freq       from ramp_itr on
    Only meaningful on update steps (see `is_threshold_update`); weights with |w| <= eps are
    pruned.
    """
    start, ramp, freq = schedule.start_itr, schedule.ramp_itr, schedule.freq
    if itr < ramp:
        return start_slope * (itr - start + 1) / freq
    return (start_slope * (ramp - start + 1) + ramp_slope * (itr - ramp + 1)) / freq


def eq1_start_slope(q: float, schedule: GroupSchedule, ramp_multiplier: float) -> float:
    """Eq. 1 generalized: the start slope theta that makes the threshold reach about q at
    end_itr when the ramp slope is phi = ramp_multiplier * theta.

    Without the "+ 1" terms the threshold at end_itr is
    (theta * (ramp - start) + m * theta * (end - ramp)) / freq; setting it to q gives
    theta = 2 * q * freq / (2 * (ramp - start) + 2 * m * (end - ramp)), which for the paper's
    m = 1.5 is its Eq. 1, 2 * q * freq / (2 * (ramp - start) + 3 * (end - ramp)), to the bit.
    With the "+ 1" terms `narang_threshold(end_itr)` is q * (1 + (2 + 2 m) / span), span being
    that denominator: q up to an offset that vanishes as the schedule lengthens.
    """
    span = (2 * (schedule.ramp_itr - schedule.start_itr)
            + 2 * ramp_multiplier * (schedule.end_itr - schedule.ramp_itr))
    if span <= 0:
        raise ValueError(f"Eq. 1 has no solution for start_itr={schedule.start_itr}, "
                         f"ramp_itr={schedule.ramp_itr}, end_itr={schedule.end_itr} and "
                         f"ramp_multiplier={ramp_multiplier}: the threshold never rises.")
    return 2.0 * q * schedule.freq / span


# --------------------------------------------------------------------------------------------
# Zhu & Gupta 2017: sparsity rising on a cubic curve
# --------------------------------------------------------------------------------------------


def is_sparsity_update(itr: int, schedule: GroupSchedule) -> bool:
    """True when the gradual (cubic) schedule prunes at step `itr`.

    Every `freq` steps from start_itr (t0, t0 + dt, ...) and always at end_itr, so the target
    is reached exactly at end_itr even when end - start is not a multiple of freq.
    """
    if not schedule.start_itr <= itr <= schedule.end_itr:
        return False
    return (itr - schedule.start_itr) % schedule.freq == 0 or itr == schedule.end_itr


def cubic_sparsity(itr: int, schedule: GroupSchedule, initial: float, final: float) -> float:
    """Zhu & Gupta's s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))**3, clamped to [t0, t0 + n dt].

    t0 = start_itr and n * dt = end_itr - start_itr (steps); returns a fraction of entries.
    """
    span = max(schedule.end_itr - schedule.start_itr, 1)
    progress = min(max((itr - schedule.start_itr) / span, 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3
