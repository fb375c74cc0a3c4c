"""Service ``notify``: bus events → rules → noise control → per-channel delivery; scheduled digests.

The service reads a bounded bus queue (the bus drops events when it is full, so
a slow notifier can never block ``publish``), translates events with
:class:`~gswarm.notify.rules.Rules`, filters them with
:class:`~gswarm.notify.noise.NoiseFilter` and hands them to the
:class:`~gswarm.notify.dispatch.Dispatcher` (its own workers, threads and
deadlines). A ticker on the injected clock releases messages deferred by quiet
hours and sends the digest when due. ``run`` never raises out. At shutdown the runtime calls
:meth:`NotifyService.drain` before it cancels ``run``, so queued alerts (a give-up) reach the channels
within a bounded deadline.

About 230 lines with :func:`create_service`/:func:`build_parts`, which map settings to parts, the shutdown
drain and the live reconfiguration: one service's whole life in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import tzinfo
from pathlib import Path
from typing import Any, Sequence

from gswarm import events as ev
from gswarm import maintenance
from gswarm.clock import Clock
from gswarm.notify import schedule
from gswarm.notify.channels import Channel, load_channels
from gswarm.notify.dispatch import Dispatcher
from gswarm.notify.noise import NoiseFilter
from gswarm.notify.rules import Message, Rules

log = logging.getLogger(__name__)
WATCHED = (ev.Incident, ev.ProcessExited, ev.StateChanged, ev.RestartScheduled, ev.ProgressUpdate,
           ev.ResourceSample, ev.Notice)


class NotifyService:
    """``NotifyService(bus, clock, state_dir, node, channels, …)``; see :func:`create_service`.

    ``digest``: schedule (``"daily 08:00"``, ``"weekly mon 08:00"``, ``"off"``; local time of ``tz``).
    ``db_path``: the store read for digests (default ``state_dir/gswarm.db``). ``tick``: seconds
    between ticker runs. ``noise``/``rules``/``dispatcher`` may be passed in (tests, settings).
    """

    name = "notify"

    def __init__(self, bus: ev.EventBus, clock: Clock, state_dir: Path, node: str, channels: Sequence[Channel],
                 *, noise: NoiseFilter | None = None, rules: Rules | None = None,
                 dispatcher: Dispatcher | None = None, digest: str | None = "daily 08:00",
                 tz: tzinfo | None = None, tick: float = 5.0, queue_size: int = 1000,
                 db_path: Path | None = None, stop_grace: float = 2.0) -> None:
        self.bus, self.clock, self.node, self.tz, self.tick = bus, clock, node, tz, tick
        self.state_dir = Path(state_dir)
        self.noise = noise or NoiseFilter(maintenance_until=self._maintenance, tz=tz)
        self.rules = rules or Rules()
        self.dispatcher = dispatcher or Dispatcher(channels, clock)
        self.digest_spec = digest
        self.next_digest_at = schedule.next_due(digest, clock.time(), tz)
        self.db_path = Path(db_path) if db_path else self.state_dir / "gswarm.db"
        self.stop_grace = stop_grace
        self.queue = bus.queue(queue_size, WATCHED)
        self.handled = 0
        self.last_digest: Any = None
        self._said_stopped = False
        self.digest_nodes: tuple[str, ...] = (node,)  # a host with several nodes: one digest per node

    def _maintenance(self, now: float) -> float | None:
        return maintenance.active_until(self.state_dir, now)

    def handle(self, event: ev.Event) -> int:
        """Translate, filter and queue one event; returns the number of deliveries queued. Never raises."""
        try:
            self.handled += 1
            return sum(self.offer(m) for m in self.rules.translate(event))
        except Exception:
            log.exception("notify: could not handle %s", type(event).__name__)
            return 0

    def offer(self, msg: Message) -> int:
        """Pass ``msg`` through noise control and queue what survives; returns deliveries queued."""
        admitted = self.noise.admit(msg, self.clock.time(), self._wanted)
        return sum(self.dispatcher.submit(m) for m in admitted)

    def _wanted(self, msg: Message) -> bool:
        return any(c.wants(msg.kind, msg.severity, force=msg.force) for c in self.dispatcher.channels)

    async def tick_once(self) -> None:
        """Release deferred messages; build and queue the digest when due."""
        now = self.clock.time()
        for msg in self.noise.release(now):
            self.dispatcher.submit(msg)
        if self.next_digest_at is not None and now >= self.next_digest_at:
            self.next_digest_at = schedule.next_due(self.digest_spec, now, self.tz)
            await self.send_digest(now - schedule.period_seconds(self.digest_spec), now)

    async def send_digest(self, since: float, until: float) -> int:
        """Build the digest of ``[since, until]`` for each of :attr:`digest_nodes` off the loop and queue it;
        returns deliveries queued."""
        queued = 0
        for node in self.digest_nodes:
            try:
                self.last_digest = await asyncio.to_thread(self._build_digest, since, until, node)
            except Exception:
                log.exception("notify: building the digest of %s failed", node)
                continue
            queued += self.dispatcher.submit(self.last_digest.message())
        return queued

    def _build_digest(self, since: float, until: float, node: str | None = None) -> Any:
        from gswarm.logs.store import StoreReader
        from gswarm.notify.digest import build_digest

        node = node or self.node
        folder = self.state_dir / "digests"
        png = folder / f"digest-{node}-{int(until)}.png"
        reader = StoreReader(self.db_path)
        try:
            digest = build_digest(reader, node, since, until, png, self.tz)
        finally:
            reader.close()
        for old in sorted(folder.glob(f"digest-{node}-*.png"))[:-14]:
            old.unlink(missing_ok=True)
        return digest

    async def run(self) -> None:
        """Consume events and tick until cancelled; says "started"/"stopped" (info). Never raises out."""
        self.dispatcher.start()
        self.offer(self.rules.lifecycle(self.node, self.clock.time(), started=True))
        ticker = asyncio.ensure_future(self._ticker())
        try:
            while True:
                self.handle(await self.queue.get())
        finally:
            ticker.cancel()
            if not self._said_stopped:  # cancelled without drain(): a short last word
                with contextlib.suppress(BaseException):
                    await self._say_stopped()
            await self.dispatcher.aclose()

    async def drain(self, timeout: float = 10.0) -> bool:
        """Shutdown, before the runtime cancels :meth:`run`: handle every event still queued (the give-up a
        FATAL node just published), queue "stopped supervising", then wait for the channels to deliver all
        of it, at most ``timeout`` seconds (real time; a hanging channel costs at most that). Returns True
        when everything was delivered or given up in time. Never raises (issue #13 case 6)."""
        try:
            for _ in range(3):  # let run() finish an event it already took from the queue
                await asyncio.sleep(0)
            while not self.queue.empty():
                self.handle(self.queue.get_nowait())
            self._said_stopped = True
            self.offer(self.rules.lifecycle(self.node, self.clock.time(), started=False))
            return await self.dispatcher.drain(timeout)
        except Exception:
            log.exception("notify: draining the queue at shutdown failed")
            return False

    async def _ticker(self) -> None:
        while True:
            await self.clock.sleep(self.tick)
            try:
                await self.tick_once()
            except Exception:
                log.exception("notify: tick failed")

    async def _say_stopped(self) -> None:
        msg = self.rules.lifecycle(self.node, self.clock.time(), started=False)
        for m in self.noise.admit(msg, self.clock.time(), self._wanted):
            await asyncio.wait_for(self.dispatcher.send_now(m), self.stop_grace)

    async def reconfigure(self, settings: Any) -> list[str]:
        """Swap in channels, noise control, rules and digest built from ``settings`` (``gswarm reload``, issue #14)
        while the service keeps running; the old dispatcher's queued messages are dropped. Returns the problems
        (skipped channels). Raises ConfigError for bad quiet hours (nothing is changed then)."""
        problems: list[str] = []
        _, noise, rules, dispatcher = build_parts(settings, self.clock, self.state_dir, problems)
        old = self.dispatcher
        self.noise, self.rules, self.dispatcher = noise, rules, dispatcher
        self.digest_spec = _opt(settings, "notify_digest", "daily 08:00")
        self.next_digest_at = schedule.next_due(self.digest_spec, self.clock.time(), self.tz)
        dispatcher.start()
        await old.aclose()
        return problems

    def status(self) -> dict[str, Any]:
        """``{"channels": {name: {...}}, "deferred": int, "suppressed": {reason: n}, "events_handled": int,
        "next_digest_at": float|None, "maintenance_until": float|None}`` — URLs redacted."""
        return {
            "channels": self.dispatcher.status(),
            "deferred": len(self.noise.deferred),
            "suppressed": dict(self.noise.stats),
            "events_handled": self.handled,
            "next_digest_at": self.next_digest_at,
            "maintenance_until": self._maintenance(self.clock.time()),
        }


def _opt(settings: Any, name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value is None else value


def build_parts(s: Any, clock: Clock, state_dir: Path, problems: list[str]) -> tuple[list[Channel], NoiseFilter, Rules, Dispatcher]:
    """Channels, noise filter, rules and dispatcher for settings ``s`` (see :func:`create_service`);
    misconfigured channels are skipped and described in ``problems``."""
    channels = load_channels(s.notify_urls, _opt(s, "notify_channels", []), s.notify_min_severity, problems)
    for p in problems:
        log.error("notifications: %s", p)
    noise = NoiseFilter(_opt(s, "notify_dedup_window", 1800.0), _opt(s, "notify_flap_count", 5),
                        _opt(s, "notify_flap_window", 600.0), s.quiet_hours,
                        maintenance_until=lambda now: maintenance.active_until(state_dir, now))
    rules = Rules(int(_opt(s, "notify_disk_low_gb", 5.0) * 1024**3), _opt(s, "notify_gpu_hot_c", 85.0))
    dispatcher = Dispatcher(channels, clock, _opt(s, "notify_timeout", 10.0), _opt(s, "notify_retries", 2))
    return channels, noise, rules, dispatcher


def create_service(rt: Any) -> NotifyService | None:
    """The notify service for runtime ``rt``, or None when no channel is configured.

    Options read from ``rt.settings`` (those not yet in Settings fall back to the defaults shown):
    notify_urls, notify_channels ([]), notify_min_severity, quiet_hours, notify_dedup_window (1800 s),
    notify_flap_count (5), notify_flap_window (600 s), notify_timeout (10 s), notify_retries (2),
    notify_digest ("daily 08:00"), notify_disk_low_gb (5.0), notify_gpu_hot_c (85.0).
    A channel URL Apprise does not understand is skipped: logged and announced as a
    ``Notice(kind="notify_config")`` through the remaining channels. Raises ConfigError for bad
    quiet hours or digest schedule.
    """
    s = rt.settings
    problems: list[str] = []
    state_dir = Path(rt.state_dir)
    channels, noise, rules, dispatcher = build_parts(s, rt.clock, state_dir, problems)
    if not channels:
        return None
    svc = NotifyService(rt.bus, rt.clock, state_dir, rt.node, channels, noise=noise, rules=rules,
                        dispatcher=dispatcher, digest=_opt(s, "notify_digest", "daily 08:00"))
    runtimes = getattr(rt, "runtimes", None)
    if isinstance(runtimes, dict) and len(runtimes) > 1:  # a gswarm.host.Host: name every node it runs
        svc.node, svc.digest_nodes = ", ".join(runtimes), tuple(runtimes)
    for p in problems:  # after the service subscribed, so the remaining channels carry it
        rt.bus.publish(ev.Notice(rt.node, rt.clock.time(), "notify_config", ev.Severity.WARNING,
                                 "a notification channel is misconfigured and was skipped", p))
    return svc
