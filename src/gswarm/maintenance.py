"""Maintenance window: while active, GSwarm neither alerts nor restarts.

Stored as ``<state_dir>/maintenance.json`` ``{"until": <unix seconds>, "reason": str}``
so that ``gswarm maintenance 30m`` in one shell reaches a running supervisor.
A window lasts at most :data:`MAX_SECONDS`; a broken file (not JSON, not an object,
``until`` not a number or out of range) means no window, and :func:`problem` says why.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from gswarm.errors import ConfigError
from gswarm.paths import atomic_write

FILE = "maintenance.json"
MAX_SECONDS = 365 * 86400.0  # longest window, seconds (365 days)
_LAST_UNTIL = 253402300799.0  # 9999-12-31 23:59:59 UTC: anything later cannot be shown (time_t / datetime)


def set_window(state_dir: Path, until: float, reason: str = "") -> None:
    """Start (or extend/shorten) the window until ``until`` (Unix seconds).

    Raises ConfigError when ``until`` is not a finite time before year 10000 (nothing is written then).
    """
    if not _in_range(until):
        raise ConfigError(f"maintenance: end time {until!r} is out of range; use a duration of at most "
                          f"{MAX_SECONDS / 86400:.0f} days (e.g. gswarm maintenance 2h)")
    atomic_write(Path(state_dir) / FILE, json.dumps({"until": until, "reason": reason}))


def clear(state_dir: Path) -> None:
    """End the window now."""
    try:
        (Path(state_dir) / FILE).unlink()
    except FileNotFoundError:
        pass


def _in_range(until: object) -> bool:
    return isinstance(until, (int, float)) and not isinstance(until, bool) and math.isfinite(until) \
        and 0 <= until <= _LAST_UNTIL


def _read(state_dir: Path) -> tuple[float | None, str | None]:
    """``(until, problem)``: until None when the file is missing or broken; problem None unless broken."""
    path = Path(state_dir) / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror})"
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    except ValueError:
        return None, "is not valid JSON"
    if not isinstance(data, dict) or "until" not in data:
        return None, 'is not a JSON object with "until" (Unix seconds)'
    until = data["until"]
    if isinstance(until, str):  # a hand-edited "1767225600" still counts
        try:
            until = float(until)
        except ValueError:
            pass
    if not _in_range(until):
        return None, f'has "until" = {str(until)[:40]!r}, not a Unix time in range'
    return float(until), None


def active_until(state_dir: Path, now: float) -> float | None:
    """End of the active window (Unix seconds), or None when no window is active.

    A missing, unreadable or malformed file (see :func:`problem`) means no window.
    """
    until, _ = _read(state_dir)
    return until if until is not None and until > now else None


def problem(state_dir: Path) -> str | None:
    """Why ``<state_dir>/maintenance.json`` is ignored (a one-line warning naming the file), or None when
    it is missing or fine. A broken file means no window: alerts and restarts are active."""
    _, why = _read(state_dir)
    if why is None:
        return None
    return (f"{Path(state_dir) / FILE} {why}; it is ignored, so alerts and restarts are active; "
            "remove it with `gswarm maintenance off` or replace it with `gswarm maintenance 30m`")
