"""Injected time.

Backoff, stall detection, noise control and retention all take a :class:`Clock`
so tests can drive time by hand (:class:`FakeClock`) and never sleep for real.

Units: seconds everywhere. ``monotonic()`` is for durations, ``time()`` is the
wall clock (Unix epoch seconds) for anything stored or shown. A wall-clock step
(NTP, an operator's ``date -s``, a VM resumed) must change no decision (issue #13
case 5): uptime, stall, backoff and crash-loop windows are measured on
``monotonic()``; :class:`SteadyWall` gives code that keeps epoch-like numbers (the
restart policy's windows) a timeline that moves only with ``monotonic()``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time as _time
from typing import Protocol


class Clock(Protocol):
    """What GSwarm needs from time."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (cancellable)."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SteadyWall:
    """Epoch-like seconds that advance only with ``clock.monotonic()``.

    ``SteadyWall(clock)()`` equals ``clock.time()`` at creation and then moves with the monotonic clock,
    so a wall-clock step never shows in a difference of two readings; the numbers still read as Unix
    seconds (close to the wall clock, off by the steps since creation) where they end up in a message.
    :meth:`of` maps a wall timestamp taken just now (an event's ``ts``) onto this timeline.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._offset = clock.time() - clock.monotonic()

    def __call__(self) -> float:
        return self.clock.monotonic() + self._offset

    def of(self, wall_ts: float) -> float:
        """``wall_ts`` (Unix seconds read recently from ``clock.time()``) on the steady timeline: its distance
        to the wall clock now is kept, the wall clock's steps since creation are not."""
        return wall_ts - self.clock.time() + self()


async def wait_event_or_timeout(clock: Clock, event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass on ``clock``.

    Returns True when the event was set (a command arrived), False on timeout.
    Loops use this instead of bare sleeps so that a stop takes effect at once.
    """
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, sleeper):
            if not task.done():
                task.cancel()
    return event.is_set()


class FakeClock:
    """A clock that only moves when told to (tests).

    ``advance(dt)`` moves both clocks by ``dt`` seconds and wakes every
    ``sleep`` whose deadline has passed; ``step_wall(dt)`` moves only the wall
    clock (an NTP or ``date -s`` step; may be negative). ``start`` is the
    initial wall time.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._mono = 0.0
        self._wall0 = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall0 + self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), fut))
        await fut

    @property
    def pending_sleeps(self) -> list[float]:
        """Deadlines (monotonic seconds) of sleeps not yet woken, soonest first."""
        return sorted(d for d, _, f in self._sleepers if not f.done())

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock by ``seconds`` (±); the monotonic clock and every sleep are unaffected."""
        self._wall0 += seconds

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake due sleepers."""
        self._mono += seconds
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def run_for(self, seconds: float, step: float = 0.5) -> None:
        """Advance ``seconds`` in ``step`` increments, yielding to the loop between."""
        remaining = seconds
        while remaining > 0:
            dt = min(step, remaining)
            self.advance(dt)
            remaining -= dt
            for _ in range(5):
                await asyncio.sleep(0)
