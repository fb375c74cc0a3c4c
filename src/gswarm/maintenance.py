"""Maintenance window: while active, GSwarm neither alerts nor restarts.

Stored as ``<state_dir>/maintenance.json`` ``{"until": <unix seconds>, "reason": str}``
so that ``gswarm maintenance 30m`` in one shell reaches a running supervisor.
"""

from __future__ import annotations

import json
from pathlib import Path

from gswarm.paths import atomic_write

FILE = "maintenance.json"


def set_window(state_dir: Path, until: float, reason: str = "") -> None:
    """Start (or extend/shorten) the window until ``until`` (Unix seconds)."""
    atomic_write(Path(state_dir) / FILE, json.dumps({"until": until, "reason": reason}))


def clear(state_dir: Path) -> None:
    """End the window now."""
    try:
        (Path(state_dir) / FILE).unlink()
    except FileNotFoundError:
        pass


def active_until(state_dir: Path, now: float) -> float | None:
    """End of the active window (Unix seconds), or None when no window is active.

    A missing, unreadable or malformed file means no window.
    """
    try:
        data = json.loads((Path(state_dir) / FILE).read_text(encoding="utf-8"))
        until = float(data["until"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return until if until > now else None
