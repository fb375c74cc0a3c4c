"""One grammar for spans and moments, used by every option and flag that takes one.

Spans: plain seconds (``90``, ``1.5``) or number+unit parts in descending order, no spaces needed:
``90s``, ``30m``, ``1h30m``, ``2d``, ``1w``, ``1d12h`` (units s, m, h, d, w; case-insensitive).
Moments: an ISO-8601 time (``2026-12-07T08:00``, ``2026-12-07 08:00:00+01:00``, ``…Z``; a time without
zone is local time) or a span back from now (``2h`` = two hours ago) where a "since"-style moment is meant.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from gswarm.errors import ConfigError

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
EXAMPLES = "90s, 30m, 1h30m, 2d"
_N = r"[1-9][0-9]*"
# JSON Schema (OpenAPI) form of a positive span: whole numbers, units in descending order, no spaces. Narrower
# than what span_seconds accepts (decimals, spaces), never wider, so every string it allows is accepted.
SCHEMA_PATTERN = (rf"^({_N}|{_N}w({_N}d)?({_N}h)?({_N}m)?({_N}s)?|{_N}d({_N}h)?({_N}m)?({_N}s)?"
                  rf"|{_N}h({_N}m)?({_N}s)?|{_N}m({_N}s)?|{_N}s)$")


def span_seconds(text: str) -> float | None:
    """Seconds of a span written in the grammar above, or None when ``text`` is not one.

    Parts must come in descending unit order and each unit at most once (``30m1h`` is refused: it is
    almost always a typo). Negative values are not spans."""
    t = re.sub(r"\s+", "", str(text)).lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return float(t)
    if not _WHOLE.fullmatch(t):
        return None
    parts = _PART.findall(t)
    order = [list(UNITS).index(u) for _, u in parts]
    if order != sorted(order, reverse=True) or len(set(order)) != len(order):
        return None
    return sum(float(n) * UNITS[u] for n, u in parts)


def parse_duration(text: str, option: str = "duration", allow_zero: bool = False) -> float:
    """Seconds (float > 0, or >= 0 with ``allow_zero``) of ``text``; ConfigError naming ``option`` otherwise."""
    seconds = span_seconds(text or "")
    if seconds is None:
        raise ConfigError(f"{option}: {text!r} is not a duration; use seconds or e.g. {EXAMPLES}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(f"{option}: {text!r} must be longer than zero; use e.g. {EXAMPLES}")
    return seconds


def parse_moment(text: str, option: str, now: float) -> float:
    """Unix seconds of a moment: an ISO-8601 time (local time when it has no zone) or a span back from
    ``now`` (Unix seconds). ConfigError naming ``option`` otherwise."""
    seconds = span_seconds(text or "")
    if seconds is not None:
        return now - seconds
    raw = (text or "").strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise ConfigError(f"{option}: {text!r} is neither an ISO time (e.g. 2026-12-07T08:00, 2026-12-07T08:00Z) "
                          f"nor a duration back from now (e.g. {EXAMPLES})") from None
    return moment.timestamp() if moment.tzinfo else moment.astimezone().timestamp()


def parse_until(text: str, option: str, now: float) -> float:
    """Unix seconds of an end: a span forward from ``now`` (``30m``, ``1h30m``) or an ISO-8601 time after
    ``now``. ConfigError naming ``option`` for anything else or a time not in the future."""
    seconds = span_seconds(text or "")
    if seconds is not None:
        if seconds <= 0:
            raise ConfigError(f"{option}: {text!r} must be longer than zero; use e.g. {EXAMPLES}")
        return now + seconds
    try:
        end = parse_moment(text, option, now)
    except ConfigError:
        raise ConfigError(f"{option}: {text!r} is neither a duration (e.g. {EXAMPLES}) nor an ISO time "
                          "(e.g. 2026-12-07T08:00)") from None
    if end <= now:
        raise ConfigError(f"{option}: {text!r} is not in the future; give a later time or a duration (e.g. 30m)")
    return end


def coerce_duration(value: Any) -> Any:
    """Pydantic ``before`` hook for seconds options: a duration string becomes float seconds, anything else
    passes through (pydantic then names the option in its error)."""
    if isinstance(value, str):
        seconds = span_seconds(value)
        if seconds is not None:
            return seconds
        raise ValueError(f"{value!r} is not a duration; use seconds or e.g. {EXAMPLES}")
    return value
