"""What is worth telling the operator: events → :class:`Message` (kind, severity, text).

Kinds and default severities (a channel's ``kinds`` and ``min_severity`` choose):
crashed (incident severity, at least error), recovered (warning: it resolves an
earlier alert), crash_loop (critical; state FATAL), stalled (warning), needs_you
(critical; ``Recovery.STOP_AND_ALERT`` causes such as identity conflict or login
expired, with the classifier's advice), login_soon (warning), disk_low (warning),
gpu_hot (warning), restarting (info; counted by flap suppression), flapping
(error; made by :mod:`gswarm.notify.noise`), supervisor_started/stopped (info),
digest and test (sent whatever the minimum). ``Notice`` events from other parts
keep their own kind and severity, except the watcher's ``fatal``/``stopped`` and the health
monitor's ``stalled`` and per-category alerts, which fold into the kinds above so that one
failure gives one message (:meth:`Rules._fresh`).

About 200 lines: one small handler per event type; splitting them would scatter the shared state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gswarm.events import (Category, Event, Incident, NodeState, Notice, ProcessExited, ProgressUpdate,
                           Recovery, ResourceSample, RestartScheduled, Severity, StateChanged)


class Kind(str, enum.Enum):
    """Message kinds GSwarm itself produces."""

    CRASHED = "crashed"
    RECOVERED = "recovered"
    CRASH_LOOP = "crash_loop"
    STALLED = "stalled"
    NEEDS_YOU = "needs_you"
    LOGIN_SOON = "login_soon"
    DISK_LOW = "disk_low"
    GPU_HOT = "gpu_hot"
    RESTARTING = "restarting"
    FLAPPING = "flapping"
    STARTED = "supervisor_started"
    STOPPED = "supervisor_stopped"
    DIGEST = "digest"
    TEST = "test"


_BENIGN = {Category.NONE, Category.CLEAN_EXIT, Category.ROUND_SKIP_BENIGN, Category.BENIGN_DEPENDENCY_WARNING}
_STALL = {Category.STALLED, Category.HANG_NO_PROGRESS}
_FAILED = {NodeState.BACKOFF, NodeState.FATAL, NodeState.STALLED}
_ONCE = {"needs_you", "crash_loop", "stalled"}
_ONCE_S = 120.0
# Notices of the watcher ("fatal", "stopped") and health monitor ("stalled") tell what state changes
# and incidents already tell; they share the kind so only the first report goes out (see Rules._fresh).
_CATEGORIES = frozenset(c.value for c in Category)
_NOTICE_ALIAS = {"fatal": "crash_loop", "stopped": "needs_you", "stalled": "stalled"}


@dataclass(frozen=True)
class Message:
    """One notification. ``key`` groups repeats for dedup (default: kind); ``force`` ignores min severity."""

    kind: str
    severity: Severity
    title: str
    body: str = ""
    node: str = ""
    ts: float = 0.0
    key: str = ""
    attach: Path | None = None
    force: bool = False
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def dedup_key(self) -> str:
        return f"{self.node}|{self.kind}|{self.key or self.kind}"


def _label(cat: Category) -> str:
    return cat.value.replace("_", " ")


def _exit_text(ex: ProcessExited) -> str:
    how = f"signal {ex.signal}" if ex.signal else f"exit code {ex.exit_code}"
    return f"{how} after {ex.uptime / 60:.1f} min"


class Rules:
    """Stateful translation of bus events into messages (one instance per service).

    ``disk_low_bytes`` (bytes) and ``gpu_hot_celsius`` (°C) are the resource thresholds.
    """

    def __init__(self, disk_low_bytes: int = 5 * 1024**3, gpu_hot_celsius: float = 85.0) -> None:
        self.disk_low_bytes = disk_low_bytes
        self.gpu_hot_celsius = gpu_hot_celsius
        self._last_exit: dict[str, ProcessExited] = {}
        self._failed: set[str] = set()
        self._pending_recovery: set[str] = set()
        self._recent: dict[tuple[str, str], float] = {}

    def translate(self, ev: Event) -> list[Message]:
        """Messages for ``ev`` (often none). Never raises for well-formed events."""
        handler = getattr(self, f"_on_{type(ev).__name__}", None)
        return [m for m in handler(ev) if self._fresh(m)] if handler else []

    def _fresh(self, m: Message) -> bool:
        """One needs-you / crash-loop / stalled message per node within ``_ONCE_S`` s, whichever part
        reported it (state change, incident, or the watcher's/health monitor's Notice); a crash loop
        right after a needs-you is the same story."""
        if m.key:
            self._recent[(m.node, "key:" + m.key)] = m.ts
        if m.kind not in _ONCE:
            return True
        near = [self._recent.get((m.node, k), float("-inf")) for k in
                ((m.kind, Kind.NEEDS_YOU.value) if m.kind == Kind.CRASH_LOOP.value else (m.kind,))]
        if any(abs(m.ts - t) <= _ONCE_S for t in near):
            return False
        self._recent[(m.node, m.kind)] = m.ts
        return True

    def lifecycle(self, node: str, ts: float, started: bool) -> Message:
        """Supervisor started / stopped message (info). Always with a body: Apprise refuses an empty one
        ("No message body"; issue #13 case 6)."""
        kind = Kind.STARTED if started else Kind.STOPPED
        what = "started supervising" if started else "stopped supervising"
        body = f"GSwarm {what} node {node}." + ("" if started else " The node is no longer watched or restarted.")
        return Message(kind.value, Severity.INFO, f"[{node}] GSwarm {what}", body, node, ts)

    def _on_ProcessExited(self, ev: ProcessExited) -> list[Message]:
        self._last_exit[ev.node] = ev  # a requested stop also exits (SIGTERM): not a failure by itself
        return []

    def _on_Incident(self, ev: Incident) -> list[Message]:
        if ev.category in _BENIGN:
            return []
        advice = f"\nWhat to do: {ev.advice}" if ev.advice else ""
        evidence = f"\nEvidence: {ev.evidence[-1][:300]}" if ev.evidence else ""
        if ev.recovery == Recovery.STOP_AND_ALERT:
            self._failed.add(ev.node)
            return [Message(Kind.NEEDS_YOU.value, Severity.CRITICAL, f"[{ev.node}] needs you: {_label(ev.category)}",
                            f"GSwarm stopped the node; a restart cannot fix this.{advice}{evidence}",
                            ev.node, ev.ts, key=ev.category.value)]
        if ev.category == Category.API_KEY_PENDING:
            return [Message(Kind.LOGIN_SOON.value, Severity.WARNING, f"[{ev.node}] login will be needed soon",
                            f"The API key is not activated yet.{advice}", ev.node, ev.ts)]
        if ev.category in _STALL:
            return self._stalled(ev.node, ev.ts, f"{_label(ev.category)}{advice}")
        ex = self._last_exit.get(ev.node)
        if ex is None or abs(ev.ts - ex.ts) > 120:
            return []  # a live incident (node still running): the health monitor's Notice says it if it matters
        self._failed.add(ev.node)
        sev = ev.severity if ev.severity.rank >= Severity.ERROR.rank else Severity.ERROR
        body = f"Cause: {_label(ev.category)} (rule {ev.rule_id or '-'}, recovery {ev.recovery.value})"
        body += f"\nExit: {_exit_text(ex)}"
        return [Message(Kind.CRASHED.value, sev, f"[{ev.node}] crashed: {_label(ev.category)}", body + advice + evidence,
                        ev.node, ev.ts, key=ev.category.value)]

    def _on_RestartScheduled(self, ev: RestartScheduled) -> list[Message]:
        self._failed.add(ev.node)
        return [Message(Kind.RESTARTING.value, Severity.INFO, f"[{ev.node}] restarting in {ev.delay:.0f} s",
                        f"Attempt {ev.attempt}; cause {_label(ev.cause)}; {ev.detail}".rstrip("; "),
                        ev.node, ev.ts, key=ev.cause.value, data={"cause": ev.cause.value})]

    def _on_StateChanged(self, ev: StateChanged) -> list[Message]:
        if ev.new == NodeState.FATAL:
            self._failed.add(ev.node)
            return [Message(Kind.CRASH_LOOP.value, Severity.CRITICAL, f"[{ev.node}] gave up: crash loop (FATAL)",
                            f"{ev.reason}\nWhat to do: run `gswarm diagnose`, fix the cause, then `gswarm run` again."
                            .lstrip(), ev.node, ev.ts)]
        if ev.new == NodeState.STALLED:
            self._failed.add(ev.node)
            return self._stalled(ev.node, ev.ts, ev.reason)
        if ev.new == NodeState.RUNNING and (ev.node in self._failed or ev.old in _FAILED):
            self._pending_recovery.add(ev.node)
        return []

    def _stalled(self, node: str, ts: float, why: str) -> list[Message]:
        self._failed.add(node)
        return [Message(Kind.STALLED.value, Severity.WARNING, f"[{node}] stalled: no training progress",
                        why or "No round or stage advanced within the stall timeout.", node, ts)]

    def _on_ProgressUpdate(self, ev: ProgressUpdate) -> list[Message]:
        if not ev.advanced or ev.node not in self._pending_recovery:
            return []
        self._pending_recovery.discard(ev.node)
        self._failed.discard(ev.node)
        where = f" (round {ev.round})" if ev.round is not None else ""
        return [Message(Kind.RECOVERED.value, Severity.WARNING, f"[{ev.node}] recovered",
                        f"Running again after a failure and progress resumed{where}.", ev.node, ev.ts)]

    def _on_ResourceSample(self, ev: ResourceSample) -> list[Message]:
        out: list[Message] = []
        for col, where in (("disk_free_bytes", "checkout"), ("state_disk_free_bytes", "state dir")):
            free = ev.data.get(col)
            if isinstance(free, (int, float)) and free < self.disk_low_bytes:
                out.append(Message(Kind.DISK_LOW.value, Severity.WARNING,
                                   f"[{ev.node}] disk low: {free / 1024**3:.1f} GiB free ({where})",
                                   f"Below the {self.disk_low_bytes / 1024**3:.1f} GiB threshold; free space "
                                   "(old checkpoints, caches) before the node fails to save.", ev.node, ev.ts, key=col))
        for i, gpu in enumerate(ev.data.get("gpu") or []):
            temp = _gpu_temp(gpu)
            if temp is not None and temp > self.gpu_hot_celsius:
                out.append(Message(Kind.GPU_HOT.value, Severity.WARNING, f"[{ev.node}] GPU {i} too hot: {temp:.0f} °C",
                                   f"Above {self.gpu_hot_celsius:.0f} °C; check cooling and fans.", ev.node, ev.ts,
                                   key=f"gpu{i}"))
        return out

    def _on_Notice(self, ev: Notice) -> list[Message]:
        if ev.kind in _CATEGORIES and ev.ts - self._recent.get((ev.node, "key:" + ev.kind), float("-inf")) <= _ONCE_S:
            return []  # the health monitor's alert for an incident we already reported
        kind = _NOTICE_ALIAS.get(ev.kind, ev.kind)
        if kind in (Kind.NEEDS_YOU.value, Kind.CRASH_LOOP.value):
            self._failed.add(ev.node)
        return [Message(kind, ev.severity, ev.title if ev.title.startswith("[") else f"[{ev.node}] {ev.title}",
                        ev.body, ev.node, ev.ts, key=ev.title)]


def _gpu_temp(gpu: Any) -> float | None:
    if not isinstance(gpu, dict):
        return None
    for k in ("temperature_celsius", "temperature_c", "temperature", "temp_c"):  # gswarm.monitor.gpu: temperature_celsius
        v = gpu.get(k)
        if isinstance(v, (int, float)):
            return float(v)
    return None
