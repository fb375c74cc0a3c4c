"""The node's state machine: an explicit transition table; illegal moves raise.

Words after supervisord/circus (STARTING, BACKOFF, FATAL). Every change is
published as :class:`gswarm.events.StateChanged`.
"""

from __future__ import annotations

from typing import Callable

from gswarm.errors import GSwarmError
from gswarm.events import EventBus, NodeState, StateChanged

S = NodeState
_ENDED = {S.STOPPING, S.BACKOFF, S.STOPPED, S.FATAL}  # where a live node can go when it ends

TRANSITIONS: dict[NodeState, frozenset[NodeState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING} | _ENDED),
    S.RUNNING: frozenset({S.STALLED, S.DEGRADED, S.WAITING_LOGIN} | _ENDED),
    S.WAITING_LOGIN: frozenset({S.RUNNING, S.STALLED} | _ENDED),
    S.DEGRADED: frozenset({S.RUNNING, S.STALLED} | _ENDED),
    S.STALLED: frozenset({S.RUNNING, S.DEGRADED} | _ENDED),
    S.STOPPING: frozenset({S.STOPPED, S.BACKOFF, S.STARTING, S.FATAL}),
    S.BACKOFF: frozenset({S.STARTING, S.FATAL, S.STOPPED}),
    S.FATAL: frozenset({S.STARTING, S.STOPPED}),
}
"""state → states it may move to. A live node (STARTING/RUNNING/DEGRADED/STALLED) may end
in STOPPING, BACKOFF, STOPPED or FATAL; STOPPING → STARTING is a requested restart. WAITING_LOGIN (script
mode: the script waits for a browser login) is live but not RUNNING; it returns to RUNNING when the login is done."""

LIVE = frozenset({S.STARTING, S.RUNNING, S.DEGRADED, S.STALLED, S.WAITING_LOGIN})


class IllegalTransition(GSwarmError):
    """A state change not in :data:`TRANSITIONS` (a bug in GSwarm, not operator input)."""


class StateMachine:
    """Holds one node's state; ``move`` checks the table and publishes ``StateChanged``.

    ``clock_time`` returns wall seconds for the event timestamp.
    """

    def __init__(self, node: str, bus: EventBus, clock_time: Callable[[], float], initial: NodeState = S.STOPPED) -> None:
        self.node = node
        self.bus = bus
        self._time = clock_time
        self.state = initial
        self.reason = ""

    def can(self, new: NodeState) -> bool:
        """True when ``state → new`` is allowed (or a no-op)."""
        return new == self.state or new in TRANSITIONS[self.state]

    def move(self, new: NodeState, reason: str = "") -> None:
        """Change to ``new``; no-op when already there. Raises IllegalTransition."""
        old = self.state
        if new == old:
            return
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(f"node {self.node}: illegal state change {old.value} → {new.value} ({reason})")
        self.state = new
        self.reason = reason
        self.bus.publish(StateChanged(self.node, self._time(), old, new, reason))
