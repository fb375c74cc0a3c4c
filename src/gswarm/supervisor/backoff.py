"""Restart backoff: pure functions of numbers (no clock, no randomness of its own).

Exponential with a cap and *full jitter* (AWS architecture blog, "Exponential
Backoff And Jitter"): ``delay = rand * min(cap, initial * factor ** (n - 1))``
for the n-th consecutive failure, with ``rand`` drawn by the caller in [0, 1].
Only the ceiling grows: each delay is drawn anew between 0 and it, so a later
attempt may well wait less than an earlier one (e.g. 4.3 s, then 1.2 s) — that
is full jitter spreading restarts, not a bug. The failure count (the attempt
number ``n``, shown as ``restart #n``) resets after a healthy uptime; a
crash-loop window counts failures within the last ``window`` seconds.
"""

from __future__ import annotations

from typing import Iterable


def backoff_delay(attempt: int, initial: float, cap: float, factor: float = 2.0, rand: float | None = None) -> float:
    """Delay in seconds before restart number ``attempt`` (1 = first failure).

    ``initial``/``cap`` seconds, ``factor`` ≥ 1. ``rand`` in [0, 1] applies full jitter
    (None = no jitter, the computed ceiling). Raises ValueError for attempt < 1,
    negative times, factor < 1 or rand outside [0, 1].
    """
    if attempt < 1 or initial < 0 or cap < 0 or factor < 1:
        raise ValueError(f"invalid backoff parameters attempt={attempt} initial={initial} cap={cap} factor={factor}")
    exp = min(attempt - 1, 1024)  # avoid float overflow for absurd counts
    try:
        ceiling = min(cap, initial * factor**exp)
    except OverflowError:
        ceiling = cap
    if rand is None:
        return ceiling
    if not 0.0 <= rand <= 1.0:
        raise ValueError(f"rand must be in [0, 1], got {rand}")
    return ceiling * rand


def next_attempt(consecutive: int, uptime: float, healthy_uptime: float) -> int:
    """Consecutive-failure count after a failure that ran ``uptime`` seconds.

    A run of at least ``healthy_uptime`` seconds resets the count first, so the
    result is 1 after a healthy run, else ``consecutive + 1``.
    """
    return 1 if uptime >= healthy_uptime else consecutive + 1


def failures_in_window(times: Iterable[float], now: float, window: float) -> list[float]:
    """The failure times (Unix seconds) within the last ``window`` seconds of ``now``."""
    return [t for t in times if now - t <= window]


def is_crash_loop(times: Iterable[float], now: float, window: float, max_failures: int) -> bool:
    """True when at least ``max_failures`` failures fall within ``window`` seconds of ``now``."""
    return len(failures_in_window(times, now, window)) >= max_failures
