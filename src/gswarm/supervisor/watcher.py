"""The per-node coroutine: start, watch, classify each exit, decide, back off, restart.

Longer than ~150 lines: it is the one place where commands, state, policy and
recovery meet; the pieces it drives live in process/scriptmode/state/lock.

Loop (states from :mod:`gswarm.supervisor.state`): STARTING → spawn → RUNNING;
on exit → ``ProcessExited`` + ``Incident`` → ``policy.decide`` → BACKOFF (wait
"deadline or command" on the injected clock) → STARTING …, or STOPPED / FATAL.
Commands (``gswarm.runtime.Command``): ``stop`` (graceful), ``kill`` (now; also
during a graceful stop), ``restart`` (stop then start at once), ``start`` (from
STOPPED/FATAL/BACKOFF), ``stalled`` (the health monitor saw no progress: stop and
let the policy decide with ``reason="stalled"``), ``degraded``/``healthy``. A
``stop`` from a source starting with "health:" or "policy:" is a stop-and-alert
decision: the node stays STOPPED and ``gswarm run`` exits with NodeFatal's code.
A command with ``shutdown=True`` makes :meth:`Watcher.run` return after the
node stopped.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gswarm import maintenance
from gswarm.clock import SteadyWall
from gswarm.diskfull import alarm_for
from gswarm.errors import GSwarmError, NodeFatal
from gswarm.events import (Category, EventBus, Incident, Notice, NodeState as S, ProcessExited, ProcessStarted,
                           RecoveryAction, Recovery, RestartScheduled, Severity)
from gswarm.supervisor import policy
from gswarm.supervisor._giveup import cause_of_source, giveup_advice, giveup_event
from gswarm.supervisor._classify import ExitClassifier
from gswarm.supervisor._cmdwait import next_command
from gswarm.supervisor.capture import CaptureFile
from gswarm.supervisor.lock import CheckoutLock
from gswarm.supervisor._scriptenv import drop_login_preamble
from gswarm.supervisor.process import BatchCallback, ExitStatus, NodeProcess
from gswarm.supervisor.spec import LaunchSpec
from gswarm.supervisor.state import StateMachine

log = logging.getLogger(__name__)


POLICY_SOURCES = ("health:", "policy:")
"""A ``stop`` whose source starts so is a stop-and-alert decision (exit NodeFatal), not an operator's stop."""


@dataclass
class RunInfo:
    """What the snapshot shows about the current/last run (wall seconds; ``started_mono`` is the
    monotonic reading at the start, for the uptime)."""

    pid: int = 0
    pgid: int = 0
    started_at: float | None = None
    started_mono: float | None = None
    restarts: int = 0
    run_id: int = 0
    last_exit: dict[str, Any] | None = None
    next_restart_at: float | None = None
    fatal_reason: str | None = None
    degraded: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)


CLOSE_TIDY_WAIT = 5.0  # s: at shutdown, how long the capture's background gzip may still run (then it is left for later)


class Watcher:
    """Supervises one node until a shutdown command, FATAL or a policy stop.

    ``spec_factory()`` builds the LaunchSpec before every start (may raise
    GSwarmError → FATAL). ``clock`` drives backoff and maintenance waits; ``rng``
    draws the jitter. ``reinstall`` is an optional hook (sync or async) run when
    the policy asks for it (called with the ``Decision.reinstall_target``, "python" or
    "modal-login"); ``prestart`` (sync or async) runs before every start (e.g. restore
    the login files the script deleted), ``poststart`` (sync) after every spawn (e.g. back
    up a new swarm.pem); ``update_settings(**changes)`` applies option changes for the next
    start (the OOM ladder's E2 ``model_size``). Every ``step_up_check`` seconds of a run the
    OOM ladder may step back up (``policy.maybe_step_up``) through a graceful restart. :meth:`run` returns the exit code for ``gswarm run``
    (0, or NodeFatal.exit_code).
    """

    def __init__(self, node: str, settings: Any, bus: EventBus, clock: Any, state_dir: Path,
                 spec_factory: Callable[[], LaunchSpec], commands: asyncio.Queue, *,
                 rng: random.Random | None = None, lock: CheckoutLock | None = None,
                 console: BatchCallback | None = None, reinstall: Callable[[], Any] | None = None,
                 prestart: Callable[[], Any] | None = None, capture: bool = True,
                 poststart: Callable[[], Any] | None = None,
                 update_settings: Callable[..., None] | None = None, step_up_check: float = 300.0) -> None:
        self.node, self.settings, self.bus, self.clock = node, settings, bus, clock
        self.state_dir = Path(state_dir)
        self.spec_factory, self.commands = spec_factory, commands
        self.rng = rng or random.Random()
        self.lock, self.console, self.reinstall, self.prestart = lock, console, reinstall, prestart
        self.poststart, self.update_settings, self.step_up_check = poststart, update_settings, step_up_check
        self.sm = StateMachine(node, bus, clock.time)
        self.steady = SteadyWall(clock)  # the policy's "now": windows that a wall-clock step cannot stretch
        self.history = policy.History()
        self.info = RunInfo()
        self.spec: LaunchSpec | None = None
        self.proc: Any = None
        self.capture: CaptureFile | None = None
        self.disk = alarm_for(bus, clock, node)  # write failures (capture, pid record, backups): one alert
        if capture:
            from gswarm.supervisor.capture import capture_path

            self.capture = CaptureFile(capture_path(self.state_dir, node), settings.log_max_bytes, settings.log_backups,
                                       alarm=self.disk)
        self._shutdown = False
        self._login_alerted = False

    # ------------------------------------------------------------------ main loop
    async def run(self) -> int:
        """Supervise until shutdown (→ 0) or FATAL / policy stop (→ NodeFatal.exit_code)."""
        try:
            start = True
            while True:
                if start:
                    outcome = await self._attempt()
                else:
                    outcome = await self._idle()
                if outcome == "exit":
                    return 0
                if outcome == "fatal":
                    return NodeFatal.exit_code
                start = outcome == "start"
        finally:
            if self.capture is not None:
                self.capture.close()
                self.capture.wait_tidy(CLOSE_TIDY_WAIT)  # a rotated file being gzipped: finish it (bounded)

    async def _idle(self) -> str:
        """STOPPED/FATAL: wait for ``start`` (or a shutdown)."""
        if self._shutdown:
            return "exit"
        while True:
            cmd = await self.commands.get()
            if getattr(cmd, "shutdown", False):
                self._shutdown = True
                return "exit"
            if cmd.kind in ("start", "restart"):
                self.info.fatal_reason = None
                return "start"

    async def _attempt(self) -> str:
        """One start → exit → decision cycle; returns "start", "idle", "exit" or "fatal"."""
        self.sm.move(S.STARTING, "start")
        try:
            await self._prestart()
            self.spec = self.spec_factory()
            proc = await self._spawn(self.spec)
        except GSwarmError as exc:
            return self._fatal(f"cannot start the node: {exc}")
        self.sm.move(S.RUNNING, f"pid {proc.pid}")
        if self.spec.mode != "script":  # script mode: once the trainer runs (_on_trainer), the login is done then
            self._poststart()
        status, cmd = await self._supervise(proc)
        return await self._after_exit(proc, status, cmd)

    def _poststart(self) -> None:
        """Run the after-start hook; a note it returns (str) is published as a RecoveryAction."""
        if self.poststart is not None:
            try:
                note = self.poststart()
                if isinstance(note, str) and note:
                    self.bus.publish(RecoveryAction(self.node, self.clock.time(), Recovery.NONE, note))
            except Exception as exc:  # e.g. a swarm.pem that differs from the backup
                log.warning("after-start hook failed: %s", exc)
                self._notice("identity", Severity.ERROR, "after-start check failed", str(exc))

    def _on_login_wait(self, waiting: bool, ts: float) -> None:
        """Script mode: the script waits for (``waiting``) or got past a browser login (scriptmode docstring).

        WAITING_LOGIN is not RUNNING and its time is not uptime; one "needs you" Notice per wait until a
        trainer starts again."""
        if waiting and self.sm.state in (S.RUNNING, S.DEGRADED, S.STARTING):
            self.sm.move(S.WAITING_LOGIN, "run_rl_swarm.sh waits for the modal-login browser login")
            if not self._login_alerted:
                self._login_alerted = True
                self._notice("needs_you", Severity.WARNING, "the script waits for the modal-login browser login",
                             "open http://localhost:3000 in a browser on this machine (over SSH: ssh -L "
                             "3000:localhost:3000 this-host, then the same URL on yours) and log in; or stop and run "
                             "`gswarm login` once. GSwarm backs the login up and restores it before every start.")
        elif not waiting and self.sm.state == S.WAITING_LOGIN:
            waited = getattr(self.proc, "login_waited", 0.0)  # monotonic s, this run
            if self.proc is not None and self.info.started_at is not None:
                self.info.started_at = self.proc.started_at + waited  # wall, for display: when training could start
            self.sm.move(S.RUNNING, f"login done after {waited:.0f} s")

    def _on_trainer(self, pid: int) -> None:
        """Script mode: the Python trainer runs (the login is complete): run the after-start hook now, and drop
        the script's login lines from the exit tail — "Waiting for API key to become activated..." is printed on
        every testnet start and must not classify the trainer's later exit as api_key_pending."""
        self._login_alerted = False
        drop_login_preamble(self.classifier.tail)
        self._poststart()

    async def _prestart(self) -> None:
        """Run the ``prestart`` hook; a write failure there (restoring login files or backing up
        swarm.pem on a full disk) goes to the disk alarm and the start goes on: the node's own
        exit, if any, is classified as usual."""
        if self.prestart is None:
            return
        try:
            res = self.prestart()
            if inspect.isawaitable(res):
                await res
        except OSError as exc:
            self.disk.failed("login/identity files", exc, node=self.node)

    def _pid_record(self, pid: int | None = None, pgid: int = 0, ownership: Any = None) -> None:
        """Write (``pid`` given) or clear the checkout lock's pid record; a write failure goes to the disk
        alarm (the record only helps a later run find leftovers; supervision does not need it)."""
        if self.lock is None:
            return
        try:
            if pid is None:
                self.lock.clear_record()
            else:
                self.lock.write_record(pid, pgid, ownership)
        except OSError as exc:
            self.disk.failed("pid record", exc, node=self.node)

    async def _spawn(self, spec: LaunchSpec) -> Any:
        self.classifier = ExitClassifier(spec.generation)
        feed, console = self.classifier.feed, self.console

        def on_batch(batch: Any, ts: float) -> None:
            feed(batch.texts)
            if console is not None:
                console(batch, ts)

        kwargs = dict(capture=self.capture, on_batch=on_batch, extra_env=self.info.extra_env,
                      prompt_idle=self.settings.prompt_idle)
        if spec.use_pty or spec.mode == "script":
            from gswarm.supervisor.scriptmode import ScriptRun

            proc = ScriptRun(spec, self.node, self.bus, self.clock.time, stop_timeout=self.settings.stop_timeout,
                             on_login_wait=self._on_login_wait, on_trainer=self._on_trainer,
                             monotonic=self.clock.monotonic, **kwargs)
        else:
            proc = NodeProcess(spec, self.node, self.bus, self.clock.time, **kwargs)
        await proc.start()
        self.proc = proc
        self.info.run_id += 1
        self.info.pid, self.info.pgid, self.info.started_at = proc.pid, proc.pgid, proc.started_at
        self.info.started_mono = self.clock.monotonic()
        self.info.next_restart_at = None
        self._pid_record(proc.pid, proc.pgid, getattr(proc, "ownership", None))
        if self.capture is not None:
            self.capture.note(f"gswarm: started {' '.join(spec.argv)} (generation {spec.generation}, {spec.mode} mode)", proc.started_at, proc.pid)
        self.bus.publish(ProcessStarted(self.node, proc.started_at, proc.pid, proc.pgid, tuple(spec.argv),
                                        spec.generation, spec.mode, self.info.run_id))
        return proc

    async def _supervise(self, proc: Any) -> tuple[ExitStatus, Any]:
        """Wait for the exit or a command; returns the exit status and the command that ended it."""
        waiter = asyncio.ensure_future(proc.wait())
        ended_by = None
        try:
            while not waiter.done():
                cmd = await next_command(self.commands, waiter, self.clock, self.step_up_check)
                if cmd is None:
                    if not waiter.done():
                        cmd = self._maybe_step_up(proc)
                    if cmd is None:
                        continue
                if cmd.kind == "start":
                    continue
                if getattr(cmd, "shutdown", False):
                    self._shutdown = True
                if cmd.kind in ("degraded", "healthy"):
                    self._set_degraded(cmd.kind == "degraded", cmd.source)
                    continue
                ended_by = cmd
                await self._stop(proc, cmd, waiter)
            return waiter.result(), ended_by
        finally:
            if not waiter.done():
                waiter.cancel()

    async def _stop(self, proc: Any, cmd: Any, waiter: asyncio.Future) -> None:
        """Graceful stop (or kill); a ``kill`` command during the stop kills at once."""
        self.sm.move(S.STALLED if cmd.kind == "stalled" else S.STOPPING, f"{cmd.kind} ({cmd.source})")
        if cmd.kind == "stalled":
            self.sm.move(S.STOPPING, "stalled: no progress")
        if cmd.kind == "kill":
            proc.kill()
            return
        stopper = asyncio.ensure_future(proc.stop(self.settings.stop_timeout))
        while not stopper.done():
            nxt = await next_command(self.commands, stopper)
            if nxt is not None and nxt.kind == "kill":
                proc.kill()
            elif nxt is not None and getattr(nxt, "shutdown", False):
                self._shutdown = True
        await waiter

    def _maybe_step_up(self, proc: Any) -> Any:
        """After a long stable run, undo one OOM-ladder step: returns a restart Command or None."""
        uptime = self.uptime()
        gen = self.spec.generation if self.spec else ""
        d = policy.maybe_step_up(self.history, uptime, self.steady(), gen,
                                 after=getattr(self.settings, "oom_step_up_after", policy.STEP_UP_AFTER))
        if d is None:
            return None
        self._apply(d)
        from gswarm.runtime import Command

        return Command("restart", "policy:step-up")

    def _apply(self, d: policy.Decision) -> None:
        """Carry a decision's environment, E2 model size and ladder step into the next start."""
        self.info.extra_env.update(d.env)
        if d.model_size and self.update_settings is not None:
            self.update_settings(model_size=d.model_size)
        if d.detail:
            self.bus.publish(RecoveryAction(self.node, self.clock.time(), d.recovery, d.detail, dict(d.data)))

    def _set_degraded(self, flag: bool, why: str) -> None:
        self.info.degraded = flag
        if flag and self.sm.can(S.DEGRADED) and self.sm.state == S.RUNNING:
            self.sm.move(S.DEGRADED, why)
        elif not flag and self.sm.state == S.DEGRADED:
            self.sm.move(S.RUNNING, why)

    # ------------------------------------------------------------------ after an exit
    def uptime(self) -> float:
        """Seconds since the current/last run started, on the monotonic clock, without the script's
        browser-login wait (0.0 before any start)."""
        if self.info.started_mono is None:
            return 0.0
        waited = getattr(self.proc, "login_waited", 0.0)  # script mode: a browser-login wait is no uptime
        return max(0.0, self.clock.monotonic() - self.info.started_mono - waited)

    def login_wait(self) -> float | None:
        """Seconds (monotonic) of the current browser-login wait while WAITING_LOGIN, else None."""
        login = getattr(self.proc, "login", None)
        return login.current() if login is not None and self.sm.state == S.WAITING_LOGIN else None

    async def _after_exit(self, proc: Any, status: ExitStatus, cmd: Any) -> str:
        now = self.clock.time()  # wall: records and messages only
        uptime = self.uptime()  # monotonic, without the script's login wait
        stalled = cmd is not None and cmd.kind == "stalled"
        # a restart asked by health (live incident, policy.decide_live) is immediate; the health
        # service counts it in its own crash-loop budget and sends "stop" when that is spent
        requested = cmd is not None and not stalled
        by = cmd.source if requested and not cmd.source.startswith(POLICY_SOURCES) else ""  # an operator's stop/restart
        self.info.last_exit = {"exit_code": status.exit_code, "signal": status.signal, "ts": now, "requested": by or None}
        exited = ProcessExited(self.node, now, proc.pid, status.exit_code, status.signal, uptime, self.info.run_id, by)
        self.bus.publish(exited)
        if self.capture is not None:
            self.capture.note(f"gswarm: node {exited.words} after {uptime:.1f} s", now, proc.pid)
        self._pid_record()
        if requested and cmd.kind == "stop" and cmd.source.startswith(POLICY_SOURCES):
            reason = f"stopped by {cmd.source} (see the incident above)"
            self.sm.move(S.STOPPED, f"stopped by {cmd.source}")  # health/policy stop-and-alert: gswarm run gives up
            self.info.fatal_reason = reason
            self._gave_up(S.STOPPED, reason, cause_of_source(cmd.source), giveup_advice(""))
            return "fatal"
        if requested:
            self.sm.move(S.STOPPED, f"{cmd.kind} requested by {cmd.source}")
            if cmd.kind == "restart" and not self._shutdown:
                return "start"
            return "exit" if self._shutdown else "idle"
        gen = self.spec.generation if self.spec else ""
        exit_info = policy.ExitInfo(status.exit_code, status.signal, uptime, False, "stalled" if stalled else "", gen)
        if stalled:  # the exit was ours; what matters is the missing progress
            cls = policy.Classification(Category.STALLED, Recovery.RESTART, Severity.WARNING, "supervisor.stalled",
                                        tuple(list(self.classifier.tail)[-3:]),
                                        f"No training progress ({cmd.source}); GSwarm stopped the node to restart it.")
        else:
            cls = self.classifier.classify(status.exit_code, status.signal)
        if status.exit_code == 0 and not stalled and not self.settings.restart_on_clean_exit:
            self.sm.move(S.STOPPED, "clean exit (restart_on_clean_exit is off)")
            return "exit"
        if getattr(cls, "category", Category.NONE) != Category.NONE:
            self.bus.publish(Incident(self.node, now, cls.category, cls.recovery, cls.severity, cls.rule_id,
                                      tuple(cls.evidence), cls.advice))
        decision = policy.decide(exit_info, cls, self.history, self.settings, now=self.steady(), rand=self.rng.random())
        return await self._act(decision, cls)

    async def _act(self, d: policy.Decision, cls: Any) -> str:
        if d.action == "fatal":
            return self._fatal(d.reason or "crash loop", d.advice or getattr(cls, "advice", ""), d.category.value)
        if d.action in ("stop", "none"):
            self.sm.move(S.STOPPED, d.reason or "policy: stop")
            if d.alert or d.action == "stop":
                reason = self.info.fatal_reason = d.reason or "stopped by policy"
                advice = giveup_advice(d.advice or cls.advice)
                self._gave_up(S.STOPPED, reason, d.category.value, advice)
                self._notice("stopped", Severity.ERROR, f"node {self.node} stopped: {reason}", advice)
                return "fatal"
            return "exit"  # nothing more to do: the node finished (e.g. a clean exit the policy accepts)
        self._apply(d)
        self.sm.move(S.BACKOFF, d.reason or "restart")
        self.info.restarts += 1
        self.info.next_restart_at = self.clock.time() + d.delay
        self.bus.publish(RestartScheduled(self.node, self.clock.time(), d.delay, d.category, d.recovery,
                                          self._attempt_number(d), d.reason))
        await self._recover(d)
        return await self._backoff_wait(d.delay)

    def _attempt_number(self, d: policy.Decision) -> int:
        """``RestartScheduled.attempt``: the restart's number (≥ 1) within its current backoff streak,
        i.e. the count the policy grew this delay from: stalls in a row for a stall
        (``History.extra["stalls"]``), restarts of this upstream outage for a ``backoff`` cause
        (``extra["outage"]["count"]``), else failures since the last healthy run (``History.consecutive``,
        reset to 0 by a run of ``healthy_uptime`` s, so the next restart is #1 again)."""
        extra = self.history.extra
        if d.category == Category.STALLED:
            n = extra.get("stalls", 0)
        elif d.recovery == Recovery.BACKOFF:
            n = (extra.get("outage") or {}).get("count", 0)
        else:
            n = self.history.consecutive
        return max(1, int(n))

    async def _recover(self, d: policy.Decision) -> None:
        if d.cleanup and self.proc is not None:
            await self.proc.sweep_group(grace=min(self.settings.stop_timeout, 5.0))
            self.bus.publish(RecoveryAction(self.node, self.clock.time(), Recovery.CLEANUP_THEN_RESTART,
                                            f"ended leftovers of process group {self.proc.pgid}"))
        if d.reinstall:
            if self.reinstall is None:
                self._notice("reinstall", Severity.WARNING, "dependencies need a reinstall",
                             "No reinstall hook is configured; run `gswarm setup` and restart.")
                return
            try:
                target = d.reinstall_target or "python"
                try:
                    res = self.reinstall(target)
                except TypeError:  # a hook that takes no target
                    res = self.reinstall()
                if inspect.isawaitable(res):
                    await res
                self.bus.publish(RecoveryAction(self.node, self.clock.time(), Recovery.REINSTALL_DEPS, f"reinstalled ({target})"))
            except Exception as exc:
                log.exception("reinstall failed")
                self._notice("reinstall", Severity.ERROR, "reinstall failed", str(exc))

    async def _backoff_wait(self, delay: float) -> str:
        """BACKOFF: deadline or command; then honour a maintenance window."""
        deadline = self.clock.monotonic() + delay
        held_until = None
        while True:
            left = deadline - self.clock.monotonic()
            until = maintenance.active_until(self.state_dir, self.clock.time())
            if until is not None:
                left = max(left, until - self.clock.time())
                if until != held_until and until - self.clock.time() > deadline - self.clock.monotonic():
                    held_until = until
                    when = time.strftime("%H:%M", time.localtime(until))
                    self._notice("maintenance", Severity.INFO, f"restart held: maintenance window until {when}",
                                 "GSwarm restarts the node when the window ends (`gswarm maintenance off` ends it now).")
            if left <= 0:
                return "start"
            cmd = await next_command(self.commands, None, self.clock, min(left, 5.0))
            if cmd is None:
                continue
            if getattr(cmd, "shutdown", False):
                self._shutdown = True
            if cmd.kind in ("stop", "kill") or self._shutdown:
                self.info.next_restart_at = None
                self.sm.move(S.STOPPED, f"{cmd.kind} requested by {cmd.source}")
                return "exit" if self._shutdown else "idle"
            if cmd.kind in ("start", "restart"):
                return "start"

    def _fatal(self, reason: str, advice: str = "", cause: str | None = None) -> str:
        """FATAL: record the give-up (``cause``: the Category value of the run that ended, None when
        the start itself failed) and alert; returns "fatal"."""
        self.info.fatal_reason = reason
        self.info.next_restart_at = None
        self.sm.move(S.FATAL, reason)
        advice = giveup_advice(advice)
        self._gave_up(S.FATAL, reason, cause, advice)
        self._notice("fatal", Severity.CRITICAL, f"node {self.node} gave up: {reason}", advice)
        return "fatal"

    def _gave_up(self, state: S, reason: str, cause: str | None, advice: str) -> None:
        """Publish the give-up record (``_giveup`` module docstring); ``cause`` None = no run ended."""
        run_id = self.info.run_id if cause is not None else 0
        self.bus.publish(giveup_event(self.node, self.clock.time(), state.value, reason, cause, advice, run_id))

    def _notice(self, kind: str, sev: Severity, title: str, body: str = "") -> None:
        self.bus.publish(Notice(self.node, self.clock.time(), kind, sev, title, body))
