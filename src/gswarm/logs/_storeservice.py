"""The store writer task: consumes the bus through one queue and writes batches.

Batching: the task waits for one event, then drains everything already queued
(up to ``max_batch``) and commits it in one transaction, so a burst costs one
commit. Output lines are not stored here (they go to the JSON log). Progress
updates are coalesced (:class:`gswarm.logs._coalesce.ProgressCoalescer`: at most one
row per kind per second per node plus stage changes; the held latest value is written
when its second is over, before the node's exit row, and at shutdown). Pruning runs
every ``prune_interval`` seconds of the injected clock. On cancel the queue is
drained and written before the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from gswarm import events as ev
from gswarm.logs._coalesce import ProgressCoalescer
from gswarm.diskfull import alarm_for, is_write_error
from gswarm.logs.store import DB_NAME, STORED_TYPES, Store

log = logging.getLogger(__name__)


class _Paused(Exception):
    """The store could not be opened recently; not retried yet."""


class StoreService:
    """Service ``store``: ``StoreService(bus, clock, path, retention_days=30.0, node="default")``.

    ``retention_days`` (days) bounds the database; ``prune_interval`` (seconds)
    is how often old rows are deleted. ``run_settings`` (node → redacted settings, JSON-ready) is stored once
    at start as ``events`` rows of kind ``settings``. Publishes a ``Notice(kind="store_set_aside")``
    when a foreign/corrupted database was renamed on open. ``alarm`` (:class:`gswarm.diskfull.DiskAlarm`)
    hears of writes that fail because the disk is full or failing (the batch is dropped, counted in
    ``dropped``, and SQLite's rollback keeps the file whole) and of writes that succeed.
    """

    name = "store"

    def __init__(self, bus: ev.EventBus, clock: Any, path: Path, retention_days: float = 30.0,
                 node: str = "default", prune_interval: float = 3600.0, max_batch: int = 1000,
                 queue_size: int = 20_000, run_settings: dict[str, dict[str, Any]] | None = None,
                 alarm: Any = None) -> None:
        self.bus, self.clock, self.path, self.node, self.alarm = bus, clock, Path(path), node, alarm
        # node -> its redacted settings, recorded once at start (gswarm bundle describes that run)
        self.run_settings = run_settings or {}
        self.retention_s = retention_days * 86400.0
        self.prune_interval = prune_interval
        self.max_batch = max_batch
        self.queue = bus.queue(queue_size, STORED_TYPES)
        self.store: Store | None = None
        self.written = 0
        self.dropped = 0
        self._retry_at = float("-inf")
        self.coalescer = ProgressCoalescer()
        self.owned: tuple[str, ...] | None = None  # every node of a multi-node host: their orphan runs are closed

    def open(self) -> Store:
        """Open (or reopen) the writer; publishes a Notice if a bad file was set aside.

        After a failed open (StoreError: permissions, disk full…) batches are dropped and
        counted in ``dropped`` until ``retry_after`` (60 s) of the clock have passed.
        """
        if self.store is None:
            if self.clock.monotonic() < self._retry_at:
                raise _Paused()
            try:
                self.store = Store(self.path, now=self.clock.time(), node=self.owned or self.node)
            except Exception as exc:
                self._retry_at = self.clock.monotonic() + 60.0
                inner = exc.__cause__ or exc.__context__ or exc  # StoreError hides the sqlite3/OS error (from None)
                if self.alarm is not None and is_write_error(inner):
                    self.alarm.failed("history database", exc, self.path)
                raise
            if self.store.opened.set_aside is not None:
                moved = self.store.opened.set_aside
                self.bus.publish(ev.Notice(
                    self.node, self.clock.time(), "store_set_aside", ev.Severity.WARNING,
                    "History database was unusable and was set aside",
                    f"{self.path} {self.store.opened.reason}; it was renamed to {moved.name} and a new store was started.",
                ))
            self.store.prune(self.clock.time(), self.retention_s)
        return self.store

    def flush(self, first: ev.Event | None = None, final: bool = False) -> int:
        """Write ``first`` and everything queued now in one transaction (progress coalesced; ``final``:
        also every held progress value); returns the number written."""
        batch = [first] if first is not None else []
        while not self.queue.empty() and len(batch) < self.max_batch:
            batch.append(self.queue.get_nowait())
        batch = self._coalesced(batch, final)
        if not batch:
            return 0
        try:
            store = self.open()
        except _Paused:
            self.dropped += len(batch)
            return 0
        try:
            n = store.write(batch)
        except Exception as exc:  # the transaction was rolled back: the database holds only whole batches
            if self.alarm is None or not is_write_error(exc):
                raise
            self.dropped += len(batch)
            self.alarm.failed("history database", exc, self.path)
            return 0
        self.written += n
        if self.alarm is not None and self.alarm.active:
            self.alarm.ok()
        return n

    def _coalesced(self, batch: list[ev.Event], final: bool) -> list[ev.Event]:
        """``batch`` with progress updates coalesced, held values that are due added, and a node's held
        values written before its ``ProcessExited`` (the last value before stop)."""
        now, c = self.clock.monotonic(), self.coalescer
        out: list[ev.Event] = c.due(now)
        for e in batch:
            if type(e) is ev.ProgressUpdate:
                out += c.offer(e, now)
            else:
                if type(e) is ev.ProcessExited:
                    out += c.take(now, (e.node,))
                out.append(e)
        return out + c.take(now) if final else out

    async def run(self) -> None:
        """Write batches until cancelled; never raises out (errors are logged and the batch dropped)."""
        prune_task = asyncio.ensure_future(self._prune_loop())
        held_task = asyncio.ensure_future(self._held_loop())
        try:
            self._safe(self.open)
            for node, settings in self.run_settings.items():
                self._safe(lambda n=node, s=settings: self.open().record_settings(n, self.clock.time(), s))
            while True:
                first = await self.queue.get()
                self._safe(lambda: self.flush(first))
                await asyncio.sleep(0)
        finally:
            for task in (prune_task, held_task):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            self._safe(lambda: self.flush(final=True))
            if self.store is not None:
                self.store.close()
                self.store = None

    async def _held_loop(self) -> None:
        """Writes held progress values once their window is over (a flood that stopped leaves its latest round)."""
        while True:
            await self.clock.sleep(self.coalescer.window / 2)
            if self.coalescer.held:
                self._safe(self.flush)

    async def _prune_loop(self) -> None:
        while True:
            await self.clock.sleep(self.prune_interval)
            self._safe(lambda: self.open().prune(self.clock.time(), self.retention_s))

    def _safe(self, fn: Any) -> Any:
        try:
            return fn()
        except _Paused:
            return 0
        except Exception as exc:
            inner = exc.__cause__ or exc.__context__ or exc
            if self.alarm is not None and is_write_error(inner):  # the disk alarm reported it (once): no traceback
                log.debug("store writer: %s failed: %s", getattr(fn, "__name__", "step"), exc)
                return 0
            log.exception("store writer: %s failed", getattr(fn, "__name__", "step"))
            return 0


class _Together:
    """Runs the store writer and the JSON log writer as one service (until the runtime lists
    ``gswarm.logs.jsonlog:create_service`` itself)."""

    name = "store"

    def __init__(self, *services: Any) -> None:
        self.services = services
        self.store = services[0]

    async def run(self) -> None:
        await asyncio.gather(*(s.run() for s in self.services))


def create_service(rt: Any) -> Any:
    """Factory for the runtime: the store at ``rt.state_dir / "gswarm.db"`` with ``settings.retention_days``.

    Also runs the JSON log service when the runtime does not list its factory itself.
    """
    from gswarm.config import redacted_dict

    runtimes = getattr(rt, "runtimes", None)
    nodes = runtimes if isinstance(runtimes, dict) and len(runtimes) > 1 else {rt.node: rt}  # a gswarm.host.Host
    store = StoreService(rt.bus, rt.clock, Path(rt.state_dir) / DB_NAME,
                         retention_days=rt.settings.retention_days, node=rt.node, alarm=alarm_for(rt.bus, rt.clock, rt.node),
                         run_settings={name: redacted_dict(r.settings) for name, r in nodes.items()})
    if len(nodes) > 1:
        store.owned = tuple(nodes)
    if "gswarm.logs.jsonlog:create_service" in tuple(getattr(rt, "service_paths", ()) or ()):
        return store
    from gswarm.logs import jsonlog

    return _Together(store, jsonlog.create_service(rt))
