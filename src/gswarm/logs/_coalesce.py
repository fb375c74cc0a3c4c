"""Progress rows coalesced before they reach SQLite: progress is state, not a stream (issue #18).

A node printing progress lines in a loop (a flood of ``Starting round: N/…``, a chatty generation,
"Already finished round … Next check in 5.0s") must not turn into one ``progress`` row per line.
:class:`ProgressCoalescer` lets through, per ``(node, kind)``:

* the first update, and one every ``window`` seconds: written at once when its own timestamp (``ts``) is
  ``window`` or more away from the last stored one (records spread over time, e.g. a replay, are all
  kept) or ``window`` of the caller's monotonic clock have passed since (a wall clock stepping back never
  holds rows up);
* a *stage change* (a stage other than the last stored one of that node and kind) at once, but at most
  one every ``stage_gap`` seconds (E0-E2 stages; a flood of stage lines stays bounded);
* in between, only the latest update is held (``advanced`` kept when any held update advanced, so
  ``StoreReader.last_advance`` still sees the advance) and stored when its window is due
  (:meth:`due`) or when the node stops (:meth:`take`, the last value before stop) or at shutdown.

So the table holds at most ``1/window + 1/stage_gap`` rows per second per kind and node (1 + 5 with the
defaults) whatever the node prints, and the latest round is stored at most ``window`` seconds late.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from gswarm import events as ev

WINDOW = 1.0  # s between two rows of one kind of one node
STAGE_GAP = 0.2  # s between two rows written early for a stage change


class ProgressCoalescer:
    """``offer(update, now) -> list`` of updates to store now; :meth:`due` / :meth:`take` the held ones.

    ``now`` is monotonic seconds (``clock.monotonic()``); ``window``/``stage_gap`` seconds.
    """

    def __init__(self, window: float = WINDOW, stage_gap: float = STAGE_GAP) -> None:
        self.window, self.stage_gap = window, stage_gap
        self._last: dict[tuple[str, str], tuple[float, int | None, float]] = {}  # (node, kind) -> (written at, stage, ts)
        self._stage_at: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], ev.ProgressUpdate] = {}

    def offer(self, e: ev.ProgressUpdate, now: float) -> list[ev.ProgressUpdate]:
        """The updates to store now for ``e`` (``[]`` when it is held)."""
        key = (e.node, e.kind)
        held = self._held.pop(key, None)
        if held is not None and held.advanced and not e.advanced:
            e = dataclasses.replace(e, advanced=True)
        last = self._last.get(key)
        if last is None or now - last[0] >= self.window or abs(e.ts - last[2]) >= self.window:
            return [self._stored(key, e, now)]
        if e.stage is not None and e.stage != last[1] and now - self._stage_at.get(key, float("-inf")) >= self.stage_gap:
            self._stage_at[key] = now
            return [self._stored(key, e, now)]
        self._held[key] = e
        return []

    def _stored(self, key: tuple[str, str], e: ev.ProgressUpdate, now: float) -> ev.ProgressUpdate:
        self._last[key] = (now, e.stage, e.ts)
        return e

    def due(self, now: float) -> list[ev.ProgressUpdate]:
        """Held updates whose window has passed (stored now)."""
        keys = [k for k in self._held if now - self._last[k][0] >= self.window]
        return [self._stored(k, self._held.pop(k), now) for k in keys]

    def take(self, now: float, nodes: Iterable[str] | None = None) -> list[ev.ProgressUpdate]:
        """Every held update (of ``nodes``, or all): the last values before a stop or shutdown."""
        wanted = None if nodes is None else set(nodes)
        keys = [k for k in self._held if wanted is None or k[0] in wanted]
        return [self._stored(k, self._held.pop(k), now) for k in keys]

    @property
    def held(self) -> int:
        """Number of updates waiting for their window."""
        return len(self._held)
