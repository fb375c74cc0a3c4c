"""Node health: stall detection by PROGRESS (not output), degraded on swallowed errors, live incidents.

:class:`HealthTracker` is pure (injected clock, plain ``now`` floats in seconds on one timeline: the
service feeds it :class:`~gswarm.clock.SteadyWall` readings, see "Time" below). A stall is no
round/stage advance (``ProgressUpdate.advanced``) for longer than the generation's timeout; while the node is
waiting for the swarm ("Already finished round … Next check in …") the limit is ``WAITING_FACTOR`` times
longer, because the swarm, not the node, is slow (generations.md §1 design note, case 057). Defaults:
E0–E2 ``30 min`` — a stage is minutes of TRL steps and the waiting poll backs off to 300 s (§4.6);
E3–E6 ``60 min`` — one stage per round, nodes block until the contract round moves, polling backs off to
900 s (§6.6), so 60 min is four maximal poll intervals. ``settings.stall_timeout`` overrides both.
Repeated "Error occurred during training, continuing" (genrl 0.1.11 / 0.3.0 swallow errors, §8.6, §14)
marks the node degraded (``DEGRADED_COUNT`` within ``DEGRADED_WINDOW`` s).

:class:`HealthService` (``create_service(rt)``) feeds the tracker from bus events, checks every
``interval`` s and puts commands on ``rt.commands``: ``stalled`` (the watcher stops the node and the policy
restarts it with reason "stalled"), ``degraded``/``healthy``. It also runs a ``StreamClassifier`` over the
output and acts on live incidents through ``policy.decide_live`` (restart after K rejected submissions in a
row or N swallowed errors, stop on identity/login problems), publishing an ``Incident`` for each. (The watcher
classifies only at exit, so the live path lives here; if the watcher ever acts on ``StreamClassifier.on_line``
itself, drop it here.) Longer than ~150 lines: the pure tracker and its thin bus wrapper are kept side by side.

Time (issue #13 case 5): the service keeps the tracker and the live crash-loop budget on a
:class:`~gswarm.clock.SteadyWall` timeline (moves with the monotonic clock only): an event's wall ``ts`` is
mapped onto it when the event arrives, and the periodic check reads it directly, so a wall-clock step of
±2 h neither fakes a stall ("no advance for 120 min") nor hides one. Events it publishes keep wall ``ts``.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from gswarm import events as ev
from gswarm.clock import SteadyWall

log = logging.getLogger(__name__)

DEFAULT_TIMEOUTS = {"E0": 1800.0, "E1": 1800.0, "E2": 1800.0, "E3": 3600.0, "E4": 3600.0, "E5": 3600.0, "E6": 3600.0}
FALLBACK_TIMEOUT = 3600.0
WAITING_FACTOR = 3.0
DEGRADED_COUNT, DEGRADED_WINDOW = 2, 1800.0
_SWALLOWED = ("Error occurred during training, continuing", "Error occurred during evaluation, continuing",
              "Error with swarm payloads, continuing")


def stall_timeout_for(generation: str | None, override: float | None = None) -> float:
    """Seconds without a progress advance that mean "stalled" for ``generation`` (override wins)."""
    return float(override) if override else DEFAULT_TIMEOUTS.get(generation or "", FALLBACK_TIMEOUT)


@dataclass(frozen=True)
class Verdict:
    """Result of :meth:`HealthTracker.check`: ``state`` "stopped" | "ok" | "waiting" | "stalled";
    ``idle`` s since the last advance (or start), ``limit`` s allowed now, ``degraded`` flag, ``reason``."""

    state: str
    idle: float = 0.0
    limit: float = 0.0
    degraded: bool = False
    reason: str = ""


class HealthTracker:
    """Progress-based health of one node. ``clock`` supplies ``time()`` when ``now`` is omitted."""

    def __init__(self, clock: Any, generation: str | None = None, stall_timeout: float | None = None) -> None:
        self.clock = clock
        self.override = stall_timeout
        self.generation = generation
        self.running = False
        self.last_advance = 0.0
        self.waiting = False
        self._errors: deque[float] = deque()

    @property
    def timeout(self) -> float:
        return stall_timeout_for(self.generation, self.override)

    def on_start(self, ts: float, generation: str | None = None) -> None:
        """A new run started at ``ts``: the stall clock starts now."""
        self.running, self.last_advance, self.waiting = True, ts, False
        self.generation = generation or self.generation
        self._errors.clear()

    def on_exit(self, ts: float) -> None:
        self.running = False

    def on_progress(self, e: ev.ProgressUpdate, ts: float | None = None) -> None:
        """Advances reset the stall clock (at ``ts``, default ``e.ts``); ``waiting`` marks the swarm-wait phase."""
        if e.advanced:
            self.last_advance, self.waiting = max(self.last_advance, e.ts if ts is None else ts), False
        elif e.kind == "waiting":
            self.waiting = True

    def on_output(self, text: str, ts: float) -> bool:
        """Count swallowed training errors; True when ``text`` was one."""
        if "continuing" not in text or not any(s in text for s in _SWALLOWED):
            return False
        self._errors.append(ts)
        return True

    def degraded(self, now: float) -> bool:
        while self._errors and now - self._errors[0] > DEGRADED_WINDOW:
            self._errors.popleft()
        return len(self._errors) >= DEGRADED_COUNT

    def check(self, now: float | None = None) -> Verdict:
        """The verdict at ``now`` (wall-clock seconds)."""
        now = self.clock.time() if now is None else now
        if not self.running:
            return Verdict("stopped")
        idle, limit = now - self.last_advance, self.timeout * (WAITING_FACTOR if self.waiting else 1.0)
        deg = self.degraded(now)
        if idle > limit:
            what = "waiting for the swarm" if self.waiting else "no round/stage advance"
            return Verdict("stalled", idle, limit, deg, f"{what} for {idle / 60:.0f} min (limit {limit / 60:.0f} min)")
        return Verdict("waiting" if self.waiting else "ok", idle, limit, deg)


class HealthService:
    """Bus-driven wrapper around :class:`HealthTracker` for one runtime (see module docstring)."""

    name = "health"

    def __init__(self, rt: Any, interval: float = 30.0, classifier: Any = None) -> None:
        self.rt, self.interval = rt, interval
        spec = getattr(rt, "spec", None)
        self.tracker = HealthTracker(rt.clock, getattr(spec, "generation", None), rt.settings.stall_timeout)
        self._classifier = classifier
        self._stream: Any = None
        self._live_history: Any = None
        self._stall_sent = False
        self._degraded_sent = False
        self.steady = SteadyWall(rt.clock)  # the tracker's timeline (module docstring "Time")
        rt.bus.subscribe(self.on_event)

    def on_event(self, e: ev.Event) -> None:
        """Inline bus subscriber (cheap): feeds the tracker and the live classifier."""
        if e.node != self.rt.node:
            return
        if type(e) is ev.OutputBatch:  # the live output path: one event per chunk read
            self._on_lines(e.texts, e.ts, e.joined)
        elif isinstance(e, ev.OutputLine):
            self._on_lines((e.text,), e.ts, e.text)
        elif isinstance(e, ev.ProgressUpdate):
            self.tracker.on_progress(e, self.steady.of(e.ts))
        elif isinstance(e, ev.ProcessStarted):
            self.tracker.on_start(self.steady.of(e.ts), e.generation)
            self._share_generation(e.generation)
            self._stall_sent = False
            self._stream = self._new_stream(e.generation)
        elif isinstance(e, ev.ProcessExited):
            self.tracker.on_exit(self.steady.of(e.ts))
        elif isinstance(e, ev.StateChanged) and ev.NodeState.WAITING_LOGIN in (e.old, e.new):
            if e.new == ev.NodeState.WAITING_LOGIN:  # waiting for a browser login is not a stall
                self.tracker.on_exit(self.steady.of(e.ts))
            elif e.new == ev.NodeState.RUNNING:  # the stall clock starts when the login is done
                self.tracker.on_start(self.steady.of(e.ts))

    def idle(self) -> float | None:
        """Seconds without a round/stage advance in the current run (since its start when none yet), on the
        monotonic timeline; None when no run is going. For the snapshot and ``/readyz``."""
        if not self.tracker.running:
            return None
        return max(0.0, self.steady() - self.tracker.last_advance)

    def _on_lines(self, texts: tuple[str, ...], ts: float, joined: str) -> None:
        """The lines of one chunk (``joined`` = ``"\\n".join(texts)``, read at wall ``ts``): count swallowed
        training errors, then let the live classifier see them and act on what it finds; both prefilter the
        whole chunk."""
        if "continuing" in joined:
            on_output, steady = self.tracker.on_output, self.steady.of(ts)
            for text in texts:
                on_output(text, steady)
        stream = self._stream
        if stream is not None:
            for found in stream.on_lines(texts, ts, joined):
                self._on_incident(found, ts)

    def _share_generation(self, generation: str) -> None:
        """Tell the restart policy the generation (``History.extra["generation"]``) for its OOM ladder, as long
        as the watcher does not pass ``ExitInfo.generation`` itself."""
        history = getattr(getattr(self.rt, "watcher", None), "history", None)
        if history is not None and generation and generation != "unknown":
            history.extra["generation"] = generation

    def _new_stream(self, generation: str | None) -> Any:
        try:
            from gswarm.logs.classify import Classifier

            self._classifier = self._classifier or Classifier.from_package()
            return self._classifier.stream(generation, live_only=True)
        except Exception:  # a broken rule file must not stop supervision
            log.exception("live classifier unavailable")
            return None

    def _on_incident(self, cls: Any, ts: float) -> None:
        from gswarm.supervisor import policy

        bus, node = self.rt.bus, self.rt.node
        bus.publish(ev.Incident(node, ts, cls.category, cls.recovery, cls.severity, cls.rule_id, cls.evidence, cls.advice))
        self._live_history = self._live_history or policy.History()
        d = policy.decide_live(cls, self._live_history, self.rt.settings, self.steady.of(ts))
        if d.action == "restart":
            self._command("restart", f"health:{cls.category.value}")
        elif d.action in ("stop", "fatal"):
            self._command("stop", f"health:{cls.category.value}")
        if d.alert or d.action in ("stop", "fatal"):
            sev = ev.Severity.ERROR if d.action in ("stop", "fatal") else ev.Severity.WARNING
            bus.publish(ev.Notice(node, ts, cls.category.value, sev, f"node {node}: {d.reason}", d.advice))

    def tick(self, now: float | None = None) -> Verdict:
        """One periodic check at wall ``now`` (default: the clock now; mapped onto the steady timeline): act
        on transitions (stalled once per run; degraded/healthy on change)."""
        v = self.tracker.check(self.steady() if now is None else self.steady.of(now))
        now = self.rt.clock.time() if now is None else now  # wall, for the events published
        node, bus = self.rt.node, self.rt.bus
        if v.state == "stalled" and not self._stall_sent:
            self._stall_sent = True
            bus.publish(ev.Notice(node, now, "stalled", ev.Severity.WARNING, f"node {node} stalled", v.reason))
            self._command("stalled", "health")
        if v.state != "stopped" and v.degraded != self._degraded_sent:
            self._degraded_sent = v.degraded
            self._command("degraded" if v.degraded else "healthy", "health:trainer_errors")
            if v.degraded:
                bus.publish(ev.Notice(node, now, "degraded", ev.Severity.WARNING, f"node {node} degraded",
                                      "Training errors are being swallowed repeatedly; see logs/swarm_launcher.log."))
        return v

    def _command(self, kind: str, source: str) -> None:
        from gswarm.runtime import Command

        self.rt.commands.put_nowait(Command(kind, source))

    async def run(self) -> None:
        while True:
            await self.rt.clock.sleep(self.interval)
            try:
                self.tick()
            except Exception:  # never raise out of a service
                log.exception("health check failed")


def create_service(rt: Any) -> HealthService:
    """Factory for the runtime (``gswarm.monitor.health:create_service``)."""
    return HealthService(rt)
