"""How the watcher records that it gave up on the node (private helper of ``watcher.py``).

GSwarm gives up in two ways: FATAL (a crash loop, a node that cannot be started) and STOPPED by a
stop-and-alert decision (``policy`` "stop": e.g. out of memory at the smallest setting, a repeated
identity clash; or a ``stop`` command from ``health:``/``policy:``). Both end ``gswarm run`` with
NodeFatal's code, and both are published the same way, through the existing event type
:class:`gswarm.events.RecoveryAction` with ``recovery=stop_and_alert`` and ``data`` =

``{"gave_up": True, "state": "STOPPED"|"FATAL", "cause": <Category value>|None, "reason": str,
"advice": str, "run_id": int}``

(``cause`` None when no run ended, e.g. the start itself failed). The store sets ``runs.cause`` of
the run that ended from it (so the last failure counts), ``gswarm status`` and its ``--json`` show
``gave_up`` until the next start (``StoreReader.gave_up``).
"""

from __future__ import annotations

import re

from gswarm.events import Category, Recovery, RecoveryAction

GAVE_UP = "gave_up"
"""Key in ``RecoveryAction.data`` that marks a give-up record (value True)."""

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(])")
_PROMISE = re.compile(r"\bGSwarm\b|^(It|then) (restarts|retries|reinstalls)", re.I)


def giveup_advice(advice: str) -> str:
    """Advice for a node GSwarm will not restart: says so, keeps the sentences of the classifier's
    ``advice`` that describe the problem or a manual step, and drops those that promise what GSwarm
    does next (they mention GSwarm: "GSwarm restarts it with a smaller model…", which no longer happens).

    Returns one paragraph of text; the reason itself is shown next to it (notice title, status row).
    """
    kept = [s for s in _SENTENCE.split((advice or "").strip()) if s and not _PROMISE.search(s)]
    head = "GSwarm gave up and will not restart the node."
    tail = "Fix the cause, then start `gswarm run` again."
    return " ".join([head, *kept, tail])


def cause_of_source(source: str) -> str | None:
    """The category value in a stop command's source ``"health:<category>"`` (None if it names none)."""
    _, _, name = source.partition(":")
    return name if name in {c.value for c in Category} and name != Category.NONE.value else None


def giveup_event(node: str, ts: float, state: str, reason: str, cause: str | None, advice: str,
                 run_id: int) -> RecoveryAction:
    """The give-up record (shape in the module docstring); ``ts`` wall seconds, ``run_id`` the
    watcher's run counter of the run that ended (0 when none ran)."""
    data = {GAVE_UP: True, "state": state, "cause": cause, "reason": reason, "advice": advice, "run_id": run_id}
    return RecoveryAction(node, ts, Recovery.STOP_AND_ALERT, f"gave up ({state}): {reason}", data)
