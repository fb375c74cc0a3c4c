"""Noise control, pure and clock-free: every call takes ``now`` (Unix seconds).

Order for each message: maintenance window (drop everything but digests/tests),
flap suppression (``flap_count`` restarts of one node within ``flap_window`` s
become ONE ``flapping`` message saying so; crash/restart messages of that node
are then dropped until it has been calm for ``flap_window`` s), deduplication
(same node+kind+key within ``dedup_window`` s is dropped), quiet hours
(``"22:00-07:00"`` local time, may wrap midnight: non-critical messages wait
and :meth:`NoiseFilter.release` hands them out once quiet hours end).
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import Callable

from gswarm.errors import ConfigError
from gswarm.events import Severity
from gswarm.notify.rules import Kind, Message

_BYPASS = {Kind.DIGEST.value, Kind.TEST.value}
_FLAP_SILENCED = {Kind.CRASHED.value, Kind.RESTARTING.value}


def parse_quiet_hours(spec: str | None) -> tuple[int, int] | None:
    """``"HH:MM-HH:MM"`` → (start, end) minutes of the day; None/empty → None.

    Raises ConfigError (option quiet_hours) on any other shape or an out-of-range time.
    """
    if not spec or not spec.strip():
        return None
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", spec)
    if not m or int(m[1]) > 23 or int(m[3]) > 23 or int(m[2]) > 59 or int(m[4]) > 59:
        raise ConfigError(f"option quiet_hours: {spec!r} is not HH:MM-HH:MM (local time, e.g. 22:00-07:00)")
    return int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])


class NoiseFilter:
    """Decides what is sent now, later or never.

    ``maintenance_until(now) -> float | None`` says whether a maintenance window is
    active (e.g. ``lambda now: gswarm.maintenance.active_until(state_dir, now)``).
    ``tz`` is the zone of quiet hours (None = the host's local zone). Windows in seconds.
    ``stats`` counts dropped/deferred messages by reason.
    """

    def __init__(
        self,
        dedup_window: float = 1800.0,
        flap_count: int = 5,
        flap_window: float = 600.0,
        quiet_hours: str | None = None,
        tz: tzinfo | None = None,
        maintenance_until: Callable[[float], float | None] = lambda now: None,
    ) -> None:
        self.dedup_window = dedup_window
        self.flap_count = flap_count
        self.flap_window = flap_window
        self.quiet = parse_quiet_hours(quiet_hours)
        self.tz = tz
        self.maintenance_until = maintenance_until
        self.stats: Counter[str] = Counter()
        self._seen: dict[str, float] = {}
        self._restarts: dict[str, deque[tuple[float, str]]] = {}
        self._flapping: dict[str, float] = {}
        self._deferred: list[Message] = []

    @property
    def deferred(self) -> list[Message]:
        """Messages waiting for the end of quiet hours (oldest first)."""
        return list(self._deferred)

    def in_quiet_hours(self, now: float) -> bool:
        """True when ``now`` falls inside the quiet hours (local time of ``tz``)."""
        if self.quiet is None:
            return False
        t = datetime.fromtimestamp(now, self.tz)
        m, (start, end) = t.hour * 60 + t.minute, self.quiet
        return start <= m < end if start <= end else (m >= start or m < end)

    def admit(self, msg: Message, now: float, wanted: Callable[[Message], bool] | None = None) -> list[Message]:
        """Messages to send now for ``msg`` (0 or 1); may defer or drop it instead.

        ``wanted(msg)`` (optional) says whether any channel takes the message; unwanted ones are
        still counted for flap suppression but neither deduplicated nor deferred.
        """
        if msg.kind in _BYPASS:
            return [msg]
        if self.maintenance_until(now) is not None:
            self.stats["maintenance"] += 1
            return []
        flap = self._flap(msg, now)
        if flap is None:
            return []
        msg = flap
        if wanted is not None and not wanted(msg):
            self.stats["unrouted"] += 1
            return []
        last = self._seen.get(msg.dedup_key)
        if last is not None and now - last < self.dedup_window:
            self.stats["duplicate"] += 1
            return []
        self._seen[msg.dedup_key] = now
        if msg.severity != Severity.CRITICAL and self.in_quiet_hours(now):
            self.stats["deferred"] += 1
            self._deferred.append(msg)
            return []
        return [msg]

    def release(self, now: float) -> list[Message]:
        """Deferred messages to send now: all of them once quiet hours are over (none during maintenance)."""
        if not self._deferred or self.in_quiet_hours(now):
            return []
        out, self._deferred = self._deferred, []
        if self.maintenance_until(now) is not None:
            self.stats["maintenance"] += len(out)
            return []
        return out

    def _flap(self, msg: Message, now: float) -> Message | None:
        """The message after flap suppression: itself, the one flapping message, or None (dropped)."""
        node = msg.node
        if node in self._flapping and now - self._flapping[node] >= self.flap_window:
            del self._flapping[node]  # calm again
        if msg.kind not in _FLAP_SILENCED:
            return msg
        if msg.kind == Kind.CRASHED.value:
            if node in self._flapping:
                self.stats["flapping"] += 1
                return None
            return msg
        hist = self._restarts.setdefault(node, deque())
        hist.append((now, str(msg.data.get("cause", msg.key))))
        while hist and now - hist[0][0] > self.flap_window:
            hist.popleft()
        if node in self._flapping:
            self._flapping[node] = now
            self.stats["flapping"] += 1
            return None
        if len(hist) < self.flap_count:
            return msg
        self._flapping[node] = now
        causes = Counter(c for _, c in hist)
        listing = ", ".join(f"{c.replace('_', ' ')} ×{n}" for c, n in causes.most_common())
        minutes = self.flap_window / 60
        return replace(msg, kind=Kind.FLAPPING.value, severity=Severity.ERROR, key="flapping",
                       title=f"[{node}] flapping: {len(hist)} restarts in {minutes:g} min",
                       body=f"Causes: {listing}. Further crash and restart messages are held back until "
                            f"the node has run {minutes:g} min without a restart; see `gswarm status`.")
