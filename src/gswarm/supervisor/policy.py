"""Restart policy: a pure function from an exit (and its classified cause) to a decision.

Recovery by cause (failures area, issue #4; categories and recoveries from shared/failures/INDEX.md):

* ``restart`` — transient trainer bugs: exponential backoff with full jitter, counted in the crash-loop budget
  (``crash_loop_max`` failures within ``crash_loop_window`` → ``fatal``).
* ``backoff`` — upstream outages (bootstrap peers, DHT ping, chain RPC, 5xx through the modal-login proxy, Hugging
  Face downloads): delays start at ``OUTAGE_MIN`` and grow to ``OUTAGE_MAX``, ONE alert per outage, and they do
  not count toward the crash loop (restarting cannot fix the swarm, and must not storm it).
* ``cleanup_then_restart`` — DHT daemon timeouts (``Decision.cleanup``); identity taken: cleanup the first time
  (our own leftover holds it), stop and alert when it repeats (INDEX.md "Gaps").
* ``stop_and_alert`` — restarting cannot help: stop, alert, advice (precision unsupported by the hardware, launcher
  syntax errors, a login nobody finishes, a full disk — issue #17).
* restart once, then stop with the evidence — ``native_abort`` (glibc abort, SIGABRT/SIGSEGV) and
  ``cuda_internal_assert`` (issue #17), like ``wrapper_only_error`` (``ONCE_THEN_STOP``).
* ``reinstall_deps`` — once per target (python deps / modal-login), then stop and alert.
* ``reduce_model`` — the out-of-memory ladder in ``_policy_oom.py``; :func:`maybe_step_up` climbs back after
  ``STEP_UP_AFTER`` seconds of stable uptime.
* A SIGKILL (signal 9 / status 137) with no decisive output → ``system_oom_killed``: a smaller model while the
  ladder has one, else a plain restart with backoff (one kill can be an operator or a cgroup limit; the crash-loop
  budget ends repeated kills in FATAL, issue #12); exit 0 with nothing
  classified → ``clean_exit`` (restart if ``settings.restart_on_clean_exit``).
Live incidents (the node keeps running) go through :func:`decide_live`. Units: seconds; ``now`` is epoch-like but
taken from :class:`gswarm.clock.SteadyWall` by the watcher and the health service, so a wall-clock step never
stretches or shrinks a window (issue #13 case 5).

Longer than ~150 lines on purpose: one small function per recovery kind, kept together so the whole policy
reads in one place (the OOM ladder lives in ``_policy_oom.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from gswarm.events import Category, Recovery, Severity
from gswarm.supervisor import _policy_oom as oom

OUTAGE_MIN = 180.0  # s, first delay during an upstream outage (bootnodes/RPC outages last minutes to hours)
OUTAGE_MAX = 1800.0  # s, cap of the outage delay
STEP_UP_AFTER = 6 * 3600.0  # s of stable uptime before the OOM ladder climbs one rung back
NON_FAILURE = frozenset({Category.NONE, Category.BENIGN_DEPENDENCY_WARNING, Category.ROUND_SKIP_BENIGN,
                         Category.HANG_NO_PROGRESS, Category.CLEAN_EXIT})
SIGKILL_STATUS = (137, -9)
SIGKILL_ADVICE = ("The node was killed by SIGKILL without a traceback: most likely the kernel's out-of-memory killer "
                  "(check `journalctl -k | grep -i 'out of memory'`), but also an operator, a container or cgroup memory "
                  "limit. GSwarm restarts it after a backoff, with a smaller model while one is left (E2 parameter count, "
                  "E3-E6 model), and gives up (FATAL) only when the crash-loop budget is spent. Add RAM or swap.")
# categories restarted once, then stopped with the evidence when they recur before a healthy uptime (history key):
# a native abort or a CUDA/PyTorch internal assert can be a one-off, a second one in a row is not (issue #17)
ONCE_THEN_STOP = {Category.IDENTITY_TAKEN: "identity_taken", Category.WRAPPER_ONLY_ERROR: "wrapper_only",
                  Category.NATIVE_ABORT: "native_abort", Category.CUDA_INTERNAL_ASSERT: "cuda_internal_assert"}


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
    ``reason`` for supervisor-initiated restarts (e.g. "stalled"); ``generation`` E0..E6 if known."""

    exit_code: int | None
    signal: int | None
    uptime: float
    requested: bool = False
    reason: str = ""
    generation: str = ""


@dataclass
class History:
    """What the policy remembers between exits (owned by the watcher, mutated only by ``decide``).

    ``failures``: (``now`` of the decision, category) of recent failures; ``consecutive``: failures since
    the last healthy run; ``extra``: JSON-ready state (``outage``, ``oom`` ladder, ``reinstalled``,
    ``identity_taken``, ``wrapper_only``, ``stalls``; the watcher may set ``generation``; the progress service
    sets ``model_in_use`` from the node's "Using Model:" line, E3-E6, and clears it at every start).
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
    group and stale node files first; ``reinstall`` reinstall dependencies first
    (``reinstall_target`` "python" or "modal-login"); ``alert`` tell the operator.
    ``detail``/``data`` describe a recovery step for a ``RecoveryAction`` event (OOM ladder);
    ``model_size`` is the E2 parameter count to start with (None = unchanged).
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
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    model_size: str | None = None
    reinstall_target: str = ""


def effective(exit_info: ExitInfo, cls: Classification) -> Classification:
    """The cause the policy acts on: SIGKILL without decisive output → system_oom_killed; exit 0 with
    nothing classified → clean_exit; another exit with nothing classified → unknown_crash."""
    if cls.category not in NON_FAILURE and cls.category != Category.WRAPPER_ONLY_ERROR:
        return cls
    if exit_info.signal == 9 or exit_info.exit_code in SIGKILL_STATUS:
        return Classification(Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL, Severity.ERROR, "exit.sigkill",
                              cls.evidence, SIGKILL_ADVICE)
    if cls.category == Category.WRAPPER_ONLY_ERROR:
        return cls
    if exit_info.exit_code == 0:
        return Classification(Category.CLEAN_EXIT, Recovery.RESTART, Severity.WARNING, "exit.clean", cls.evidence,
                              "The node ended with status 0 although nobody asked it to stop.")
    return Classification(Category.UNKNOWN_CRASH, Recovery.RESTART, Severity.ERROR, "exit.unknown", cls.evidence,
                          f"The node ended with status {exit_info.exit_code} and no known cause in its output.")


def decide(exit_info: ExitInfo, classification: Classification, history: History, settings: Any, now: float, rand: float = 1.0) -> Decision:
    """Decide what follows an exit. ``rand`` in [0, 1] is the jitter draw (injected for tests).

    Mutates ``history``; never raises for any classification.
    """
    if exit_info.requested:
        return Decision("none", reason="stopped on request")
    if exit_info.uptime >= settings.healthy_uptime:
        history.consecutive = 0
        for key in ("outage", "reinstalled", *ONCE_THEN_STOP.values()):
            history.extra.pop(key, None)
        if exit_info.reason != "stalled":  # a stall always follows a long uptime; other exits end the streak
            history.extra.pop("stalls", None)
    gen = exit_info.generation or history.extra.get("generation", "") or ""
    cls = effective(exit_info, classification)
    if exit_info.reason == "stalled":
        return _stalled(history, settings, gen)
    if cls.recovery == Recovery.BACKOFF:
        return _outage(cls, history, settings, now, rand, gen)
    history.extra.pop("outage", None)
    if cls.category == Category.CLEAN_EXIT and not settings.restart_on_clean_exit:
        return Decision("none", category=cls.category, reason="clean exit; restart_on_clean_exit is off")
    if cls.recovery == Recovery.STOP_AND_ALERT:
        return _stop(cls, "restarting cannot fix this")
    if cls.recovery == Recovery.REINSTALL_DEPS:
        return _reinstall(cls, history, settings, now, rand, gen)
    if cls.recovery == Recovery.REDUCE_MODEL:
        return _reduce(cls, exit_info, history, settings, now, rand, gen)
    if cls.category in ONCE_THEN_STOP:
        key = ONCE_THEN_STOP[cls.category]
        history.extra[key] = history.extra.get(key, 0) + 1
        if history.extra[key] > 1:
            return _stop(cls, "it happened again right after a restart")
    cleanup = cls.recovery == Recovery.CLEANUP_THEN_RESTART or cls.category == Category.IDENTITY_TAKEN
    return _restart(cls, history, settings, now, rand, gen, cleanup=cleanup)


def _restart(cls: Classification, history: History, settings: Any, now: float, rand: float, gen: str, **kw: Any) -> Decision:
    window = settings.crash_loop_window
    history.failures = [(t, c) for t, c in history.failures if now - t <= window]
    history.failures.append((now, cls.category))
    history.consecutive += 1
    if len(history.failures) >= settings.crash_loop_max:
        return Decision("fatal", category=cls.category, recovery=cls.recovery, alert=True, advice=cls.advice,
                        reason=f"crash loop: {_count(len(history.failures), 'failure')} within {window:g}s "
                               f"(last: {cls.category.value})")
    base = min(settings.backoff_max, settings.backoff_initial * settings.backoff_factor ** (history.consecutive - 1))
    delay = base * rand if settings.backoff_jitter else base
    recovery = kw.pop("recovery", Recovery.RESTART)
    if kw.get("cleanup"):
        recovery = Recovery.CLEANUP_THEN_RESTART
    env = {**oom.current_env(history.extra.get("oom"), gen), **kw.pop("env", {})}
    return Decision("restart", delay=delay, category=cls.category, recovery=recovery, env=env, advice=cls.advice,
                    reason=kw.pop("reason", f"{cls.category.value}: restart with backoff"), **kw)


def _count(n: int, noun: str) -> str:
    """``1 failure``, ``3 failures``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _stop(cls: Classification, why: str) -> Decision:
    return Decision("stop", category=cls.category, recovery=Recovery.STOP_AND_ALERT, alert=True, advice=cls.advice,
                    reason=f"{cls.category.value}: {why}")


def _outage(cls: Classification, history: History, settings: Any, now: float, rand: float, gen: str) -> Decision:
    o = history.extra.setdefault("outage", {"since": now, "count": 0, "alerted": False, "category": cls.category.value})
    o["count"] += 1
    lo = float(getattr(settings, "outage_backoff_min", OUTAGE_MIN))
    hi = max(lo, float(getattr(settings, "outage_backoff_max", OUTAGE_MAX)), settings.backoff_max)
    base = min(hi, lo * settings.backoff_factor ** (o["count"] - 1))
    delay = lo + (base - lo) * rand if settings.backoff_jitter else base
    alert, o["alerted"] = not o["alerted"], True
    return Decision("restart", delay=delay, category=cls.category, recovery=Recovery.BACKOFF, alert=alert,
                    advice=cls.advice, env=oom.current_env(history.extra.get("oom"), gen),
                    cleanup=cls.category == Category.DHT_DAEMON_TIMEOUT,
                    reason=f"upstream outage ({cls.category.value}), attempt {o['count']} since {o['since']:.0f}")


def _stalled(history: History, settings: Any, gen: str) -> Decision:
    n = history.extra["stalls"] = history.extra.get("stalls", 0) + 1
    delay = min(OUTAGE_MAX, settings.backoff_initial * settings.backoff_factor ** (n - 1))
    return Decision("restart", delay=delay, category=Category.STALLED, recovery=Recovery.RESTART,
                    env=oom.current_env(history.extra.get("oom"), gen), alert=n == 1,
                    reason=f"no progress: restart #{n} (server-side stalls do not clear by restarting, so the delay grows)")


def _reinstall(cls: Classification, history: History, settings: Any, now: float, rand: float, gen: str) -> Decision:
    target = "modal-login" if cls.category == Category.MODAL_LOGIN_SERVER_ERROR else "python"
    done = history.extra.setdefault("reinstalled", {})
    if target in done:
        return _stop(cls, f"still failing after reinstalling the {target} dependencies")
    done[target] = now
    return _restart(cls, history, settings, now, rand, gen, reinstall=True, reinstall_target=target,
                    recovery=Recovery.REINSTALL_DEPS, reason=f"{cls.category.value}: reinstall {target} dependencies once")


def _reduce(cls: Classification, exit_info: ExitInfo, history: History, settings: Any, now: float, rand: float, gen: str) -> Decision:
    st = oom.state(history.extra, settings)
    in_use = oom.model_in_use(history.extra, gen)  # "Using Model:" of the failed run (E3-E6), set by monitor/progress
    step = oom.step_down(st, oom.DEVICE.get(cls.category, "ram"), gen, now, in_use)
    if step is None:
        short = exit_info.uptime < settings.healthy_uptime
        if cls.category == Category.SYSTEM_OOM_KILLED and short:  # one SIGKILL can be anything: the budget decides
            return _restart(cls, history, settings, now, rand, gen, alert=not history.failures,
                            reason=f"{cls.category.value}: {oom.exhausted(st, gen, in_use)}; "
                                   "restart after backoff (repeated kills end in FATAL)")
        known = gen in oom.MODEL_POOLS or gen in ("E0", "E1", "E2")
        if known and short:
            return _stop(cls, oom.exhausted(st, gen, in_use))
        if not known:  # no model pool to step down in: restart (alert once), the crash-loop budget still applies
            return _restart(cls, history, settings, now, rand, gen, alert=not history.failures,
                            reason=f"{cls.category.value}: generation unknown, no smaller model to choose; restart")
        return _restart(cls, history, settings, now, rand, gen, alert=True,
                        reason=f"{cls.category.value} after {exit_info.uptime:.0f}s uptime: {oom.exhausted(st, gen, in_use)}; restart")
    return _restart(cls, history, settings, now, rand, gen, recovery=Recovery.REDUCE_MODEL, detail=step["detail"],
                    data=dict(step), model_size=step.get("size"), reason=f"{cls.category.value}: {step['detail']}")


def maybe_step_up(history: History, uptime: float, now: float, generation: str = "",
                  after: float = STEP_UP_AFTER) -> Decision | None:
    """After ``after`` s (default ``STEP_UP_AFTER``) of uptime and as long since the last ladder step, undo one model rung.

    Returns a "restart" Decision carrying the new env/model_size (the watcher applies it at its convenience,
    e.g. a graceful restart), or None. Mutates ``history.extra["oom"]``.
    """
    st = history.extra.get("oom")
    if not st or uptime < after or now - (st.get("since") or now) < after:
        return None
    gen = generation or history.extra.get("generation", "") or ""
    up = oom.step_up(st, gen, now)
    if up is None:
        return None
    return Decision("restart", category=Category.NONE, recovery=Recovery.REDUCE_MODEL, reason=up["detail"],
                    env={**oom.current_env(st, gen), **up["env"]}, detail=up["detail"], data=dict(up), model_size=up.get("size"))


def decide_live(classification: Classification, history: History, settings: Any, now: float) -> Decision:
    """What to do about a live incident (``StreamClassifier.on_line``); the node is still running.

    stop_and_alert → "stop"; restart-type (repeated chain rejections, swallowed training errors) → graceful
    "restart" now (counted in the crash-loop budget); upstream (backoff) → "none" with one alert; else "none".
    """
    cls = classification
    if cls.recovery == Recovery.STOP_AND_ALERT:
        return _stop(cls, "seen repeatedly while running")
    if cls.recovery == Recovery.BACKOFF:
        o = history.extra.setdefault("outage", {"since": now, "count": 0, "alerted": False, "category": cls.category.value})
        alert, o["alerted"] = not o["alerted"], True
        return Decision("none", category=cls.category, recovery=Recovery.BACKOFF, alert=alert, advice=cls.advice,
                        reason=f"upstream problem ({cls.category.value}); the node keeps running")
    if cls.recovery in (Recovery.RESTART, Recovery.CLEANUP_THEN_RESTART, Recovery.REDUCE_MODEL):
        d = _restart(cls, history, settings, now, 0.0, history.extra.get("generation", "") or "")
        return replace(d, delay=0.0, reason=f"{cls.category.value} repeated while running: restart") if d.action == "restart" else d
    return Decision("none", category=cls.category, reason="nothing to do")
