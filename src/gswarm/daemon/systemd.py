"""The sd_notify service: tells systemd (``Type=notify``) how the supervised node is doing.

- ``READY=1`` once the node has been started (first RUNNING, or BACKOFF after a failed first start), or
  earlier — before the environment setup and the browser login — from :func:`during_setup`, with a
  STATUS saying GSwarm waits for the login;
- ``STATUS=node <name>: <STATE> — <reason>`` on every state change;
- ``STOPPING=1`` when GSwarm itself is shutting down (stop by a signal or ``--duration``, or the run ends);
- ``WATCHDOG=1`` every ``WATCHDOG_USEC``/2 from a task of the event loop: a frozen loop sends nothing, so
  systemd (``WatchdogSec=``) kills and restarts a wedged GSwarm.
Does nothing without ``NOTIFY_SOCKET`` (not under systemd).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from gswarm.daemon.sdnotify import Notifier, address, watchdog_interval
from gswarm.events import StateChanged

log = logging.getLogger(__name__)
READY_STATES = frozenset({"RUNNING", "DEGRADED", "STALLED", "BACKOFF"})
SHUTDOWN_SOURCES = ("(signal)", "(duration)")
SETUP_STATUS = "preparing the node (environment, modal-login); waiting for the login if one is needed — the URL is in the journal"


class SdNotifyService:
    """Service ``sdnotify`` for runtime ``rt`` (see the module docstring); ``notifier`` and ``interval``
    (seconds between WATCHDOG pings, None = no watchdog) come from the environment by default."""

    name = "sdnotify"

    def __init__(self, rt: Any, notifier: Notifier, interval: float | None) -> None:
        self.rt, self.notifier, self.interval = rt, notifier, interval
        self.ready = bool(getattr(rt, "sd_ready", False))
        self.pings = 0
        self._unsubscribe = rt.bus.subscribe(self.on_event)  # now: the watcher's first STARTING precedes run()

    def on_event(self, ev: Any) -> None:
        """Bus subscriber: STATUS on each state change of our node, READY once, STOPPING on shutdown."""
        if not isinstance(ev, StateChanged) or ev.node != self.rt.node:
            return
        new = getattr(ev.new, "value", str(ev.new))
        fields = {"status": f"node {ev.node}: {new}" + (f" — {ev.reason}" if ev.reason else "")}
        if not self.ready and new in READY_STATES:
            fields = {"ready": "1", **fields}
            self.ready = self.rt.sd_ready = True
        if new == "STOPPING" and ev.reason.endswith(SHUTDOWN_SOURCES):
            fields["stopping"] = "1"
        self.notifier.send(**fields)

    async def run(self) -> None:
        """Subscribe, ping the watchdog until cancelled, then say STOPPING. Never raises out."""
        try:
            snap_state = self.rt.snapshot()["state"]
            if not self.ready and snap_state in READY_STATES:
                self.on_event(StateChanged(self.rt.node, self.rt.clock.time(), snap_state, snap_state, "already running"))
            await ping_forever(self, self.rt.clock)
        finally:
            self._unsubscribe()
            self.notifier.send(stopping="1", status=f"gswarm stopping; node {self.rt.node}: {self.rt.snapshot()['state']}")
            self.notifier.close()


async def ping_forever(owner: Any, clock: Any) -> None:
    """``WATCHDOG=1`` every ``owner.interval`` seconds (on ``clock``) through ``owner.notifier``; sleeps
    forever when there is no watchdog. A late wake-up (the loop was blocked) is logged with its lag."""
    if owner.interval is None:
        await asyncio.Future()
    while True:
        due = clock.monotonic() + owner.interval
        await clock.sleep(owner.interval)
        lag = clock.monotonic() - due
        if lag > owner.interval:
            log.warning("event loop was blocked for %.1f s (systemd watchdog pings are late)", lag)
        owner.pings += bool(owner.notifier.send(watchdog="1"))


SD_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def take_env(rt: Any) -> tuple[str | bytes | None, float | None]:
    """(socket address, watchdog interval s) from the environment, read once per runtime (``rt.sd_env``);
    the variables are then removed from ``os.environ`` so the node's processes (env = ``os.environ`` + spec,
    ``supervisor/process.py``) do not inherit them — as ``sd_notify(unset_environment=1)`` does."""
    got = getattr(rt, "sd_env", None)
    if got is None:
        got = rt.sd_env = (address(), watchdog_interval())
        for name in SD_VARS:
            os.environ.pop(name, None)
    return got


def create_service(rt: Any) -> SdNotifyService | None:
    """The service when ``NOTIFY_SOCKET`` is set (running under systemd ``Type=notify``), else None."""
    addr, interval = take_env(rt)
    if addr is None:
        return None
    return SdNotifyService(rt, Notifier(addr), interval)


async def during_setup(rt: Any) -> None:
    """Before the node's first start (environment setup and browser login can take many minutes): READY
    with a STATUS saying so, and WATCHDOG pings, until cancelled. No-op without ``NOTIFY_SOCKET``."""
    addr, interval = take_env(rt)
    if addr is None:
        return
    notifier = Notifier(addr)
    owner = type("Setup", (), {"interval": interval, "notifier": notifier, "pings": 0})()
    try:
        notifier.send(ready="1", status=SETUP_STATUS)
        rt.sd_ready = True
        await ping_forever(owner, rt.clock)
    finally:
        with contextlib.suppress(OSError):
            notifier.close()
