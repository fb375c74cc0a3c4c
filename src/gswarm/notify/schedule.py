"""When the next digest is due: ``"daily HH:MM"``, ``"weekly DAY HH:MM"`` (local time) or ``"off"``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo

from gswarm.errors import ConfigError

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_schedule(spec: str | None) -> tuple[str, int | None, int, int] | None:
    """``spec`` → (``"daily"|"weekly"``, weekday 0=Monday or None, hour, minute); None for off/empty.

    Raises ConfigError (option notify_digest) on anything else.
    """
    if spec is None or spec.strip().lower() in ("", "off", "none", "no"):
        return None
    m = re.fullmatch(r"\s*(daily|weekly)(?:\s+([a-z]{3})[a-z]*)?(?:\s+(\d{1,2}):(\d{2}))?\s*", spec.lower())
    if not m or (m[1] == "daily" and m[2]) or (m[2] and m[2] not in _DAYS):
        raise ConfigError(f"option notify_digest: {spec!r}; use 'daily 08:00', 'weekly mon 08:00' or 'off'")
    hour, minute = (int(m[3]), int(m[4])) if m[3] else (8, 0)
    if hour > 23 or minute > 59:
        raise ConfigError(f"option notify_digest: time in {spec!r} is not a valid HH:MM")
    day = _DAYS.index(m[2]) if m[2] else (0 if m[1] == "weekly" else None)
    return m[1], day, hour, minute


def next_due(spec: str | None, now: float, tz: tzinfo | None = None) -> float | None:
    """Unix seconds of the first scheduled time strictly after ``now`` (None when off)."""
    parsed = parse_schedule(spec)
    if parsed is None:
        return None
    every, day, hour, minute = parsed
    local = datetime.fromtimestamp(now, tz).astimezone(tz)
    cand = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if every == "weekly":
        cand += timedelta(days=(day - cand.weekday()) % 7)
    step = timedelta(days=7 if every == "weekly" else 1)
    while cand.timestamp() <= now:
        cand += step
    return cand.timestamp()


def period_seconds(spec: str | None) -> float:
    """Span a digest covers: 7 days for weekly, else 1 day (seconds)."""
    parsed = parse_schedule(spec)
    return 7 * 86400.0 if parsed and parsed[0] == "weekly" else 86400.0


def parse_duration(text: str, option: str = "duration") -> float:
    """``"90s"``, ``"30m"``, ``"2h"``, ``"7d"``, ``"1w"``, ``"1h30m"`` or plain seconds → seconds (float > 0).

    The one duration grammar of GSwarm (:mod:`gswarm.config.durations`). Raises ConfigError naming ``option``.
    """
    from gswarm.config.durations import parse_duration as parse

    return parse(text, option)
