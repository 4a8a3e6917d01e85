"""The emulator's own controls (what tests and demonstrations call on ``Emulator``): their errors and
input checks. They are not part of any Azure API, so their errors have no service error code."""
from __future__ import annotations

import math


class PreemptionRefused(ValueError):
    """``Emulator.preempt_node`` cannot preempt that node; the message says why in one line."""


def check_rate(rate) -> float:
    """A preemption rate: preemptions per low-priority node-hour, a finite number >= 0."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError("the preemption rate must be a number of preemptions per node-hour, not {!r}".format(
            rate)) from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("the preemption rate must be 0 or more preemptions per node-hour, not {!r}".format(rate))
    return value
