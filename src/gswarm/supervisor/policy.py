"""Restart policy: a pure function from an exit (and its classified cause) to a decision.

PLACEHOLDER written by the lead so the supervisor core can be built in parallel;
the failures helper (issue #4) owns this module and replaces the body of
:func:`decide`, keeping the types' existing fields (more may be added).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gswarm.events import Category, Recovery, Severity


@dataclass(frozen=True)
class Classification:
    """The classified cause of a failure (see ``gswarm.logs.classify``)."""

    category: Category = Category.NONE
    recovery: Recovery = Recovery.NONE
    severity: Severity = Severity.INFO
    rule_id: str = ""
    evidence: tuple[str, ...] = ()
    advice: str = ""


@dataclass(frozen=True)
class ExitInfo:
    """How the node ended: ``exit_code`` (None if killed by a signal), ``signal`` number,
    ``uptime`` seconds, ``requested`` True when GSwarm itself stopped it, and
    ``reason`` for supervisor-initiated restarts (e.g. "stalled")."""

    exit_code: int | None
    signal: int | None
    uptime: float
    requested: bool = False
    reason: str = ""


@dataclass
class History:
    """What the policy remembers between exits (owned by the watcher, mutated only by ``decide``).

    ``failures``: (wall ts, category) of recent failures; ``consecutive``: failures since
    the last healthy run.
    """

    failures: list[tuple[float, Category]] = field(default_factory=list)
    consecutive: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What to do next.

    ``action``: "restart" (after ``delay`` seconds), "stop" (stay stopped, alert),
    "fatal" (crash loop: give up, non-zero exit of gswarm run), "none" (nothing to do).
    ``env`` extra environment for the next start; ``cleanup`` end leftovers of our own
    group and stale node files first; ``reinstall`` reinstall dependencies first;
    ``alert`` tell the operator.
    """

    action: str
    delay: float = 0.0
    category: Category = Category.NONE
    recovery: Recovery = Recovery.NONE
    reason: str = ""
    env: dict[str, str] = field(default_factory=dict)
    cleanup: bool = False
    reinstall: bool = False
    alert: bool = False
    advice: str = ""


def decide(exit_info: ExitInfo, classification: Classification, history: History, settings: Any, now: float, rand: float = 1.0) -> Decision:
    """Decide what follows an exit. ``rand`` in [0, 1] is the jitter draw (injected for tests).

    Placeholder: exponential backoff with full jitter, crash loop → fatal.
    """
    if exit_info.requested:
        return Decision("none", reason="stopped on request")
    window = settings.crash_loop_window
    history.failures = [(t, c) for t, c in history.failures if now - t <= window]
    if exit_info.uptime >= settings.healthy_uptime:
        history.consecutive = 0
    history.failures.append((now, classification.category))
    history.consecutive += 1
    if len(history.failures) >= settings.crash_loop_max:
        return Decision("fatal", category=classification.category, reason=f"{len(history.failures)} failures within {window:g}s", alert=True)
    base = min(settings.backoff_max, settings.backoff_initial * settings.backoff_factor ** (history.consecutive - 1))
    delay = base * rand if settings.backoff_jitter else base
    return Decision("restart", delay=delay, category=classification.category, recovery=Recovery.RESTART, reason="restart with backoff")
