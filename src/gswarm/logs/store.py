"""The SQLite store ``<state_dir>/gswarm.db``: one writer, many readers.

Schema (contract in ``docs/architecture.md``): ``runs``, ``events``, ``incidents``,
``samples``, ``progress`` — see :mod:`gswarm.logs._schema`. The writer
(:class:`Store`) opens the file in WAL mode, validates it, migrates it, maps bus
events to rows in one transaction per batch and prunes rows older than the
retention window. A foreign or corrupted file is never overwritten: it is renamed
to ``gswarm.db.corrupt-<UTC timestamp>`` and a fresh store is created.
Readers use :class:`StoreReader` (re-exported here) with their own connection.
This module is ~230 lines because the event → row mapping (one small function per
event type) belongs next to the writer; the reader lives in ``_storeread.py`` and
the bus-consuming service (:class:`StoreService`) in ``_storeservice.py``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from gswarm import events as ev
from gswarm.errors import StoreError
from gswarm.logs import _schema
from gswarm.logs._storeread import StoreReader, check_file

__all__ = ["Store", "StoreReader", "StoreService", "create_service", "DB_NAME", "SAMPLE_COLUMNS"]
log = logging.getLogger(__name__)
DB_NAME = "gswarm.db"
SAMPLE_COLUMNS = (
    "cpu_percent", "rss_bytes", "threads", "open_files", "host_cpu_percent", "host_mem_percent",
    "swap_percent", "load1", "disk_free_bytes", "net_sent_bytes", "net_recv_bytes", "gpu",
    "state_disk_free_bytes",
)
_PRUNE = (("events", "ts"), ("incidents", "ts"), ("samples", "ts"), ("progress", "ts"))


@dataclass
class OpenResult:
    """What happened when the writer opened the file: ``set_aside`` is the new name of a bad file."""

    set_aside: Path | None = None
    reason: str = ""


def set_aside(path: Path, now: float) -> Path:
    """Rename ``path`` (and its ``-wal``/``-shm`` files) to ``<name>.corrupt-<YYYYmmddTHHMMSSZ>``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target


class Store:
    """The single writer. ``Store(path, now=clock.time(), node=None)``; raises StoreError if the folder is unusable.

    On open, runs left without ``stopped_at`` by a supervisor that died (of ``node`` — a name, or a tuple of
    the names one host supervises — or of every node when None) are closed at that node's last recorded fact.

    ``write(events)`` stores a batch in one transaction; ``prune(now, retention_s)``
    deletes rows older than ``now - retention_s`` (seconds). ``opened.set_aside`` tells
    whether a bad file was moved away on open.
    """

    def __init__(self, path: Path, now: float | None = None, node: str | tuple[str, ...] | None = None) -> None:
        self.path = Path(path)
        self.node = node
        self.opened = OpenResult()
        self._open_run: dict[str, int] = {}
        problem = check_file(self.path)
        if problem:
            try:
                moved = set_aside(self.path, now if now is not None else time.time())
            except OSError as exc:
                raise StoreError(f"the store {self.path} {problem} and could not be set aside ({exc}); "
                                 "move it away yourself") from None
            self.opened = OpenResult(moved, problem)
            log.warning("store %s %s; moved it to %s and started a new one", self.path, problem, moved)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))  # 0600 before SQLite creates it
            os.chmod(self.path, 0o600)  # (its -wal/-shm files take the same mode)
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            if _schema.version(self.conn) == 0:
                self.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            _schema.migrate(self.conn)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}; check the folder permissions and free space") from None
        self._close_orphan_runs()

    def close(self) -> None:
        """Close the connection (checkpoints the WAL)."""
        self.conn.close()

    def _close_orphan_runs(self) -> None:
        """Runs left open by a supervisor that died end at the node's last recorded fact."""
        for node in ((self.node,) if self.node is None or isinstance(self.node, str) else self.node):
            self.conn.execute(
                "UPDATE runs SET stopped_at = MAX(started_at, COALESCE((SELECT MAX(ts) FROM samples s WHERE s.node = runs.node"
                " AND s.ts >= runs.started_at), 0), COALESCE((SELECT MAX(ts) FROM events e WHERE e.node = runs.node"
                " AND e.ts >= runs.started_at), 0)) WHERE stopped_at IS NULL AND (? IS NULL OR node = ?)", (node, node)
            )

    def write(self, batch: Iterable[ev.Event]) -> int:
        """Store ``batch`` in one transaction; returns the number of events stored. Unknown types are skipped."""
        n = 0
        open_runs = dict(self._open_run)  # restored when the batch is rolled back (disk full): no dangling run id
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for event in batch:
                handler = _HANDLERS.get(type(event))
                if handler is not None:
                    handler(self, cur, event)
                    n += 1
            cur.execute("COMMIT")
        except BaseException:
            self._open_run = open_runs
            if self.conn.in_transaction:  # SQLite may already have rolled back itself (SQLITE_FULL, IOERR)
                cur.execute("ROLLBACK")
            raise
        return n

    def record_settings(self, node: str, ts: float, settings: dict[str, Any]) -> None:
        """One ``events`` row ``kind="settings"`` holding the settings a run started with (``settings``: already
        redacted, JSON-ready), so ``gswarm bundle`` can describe that run instead of its own command line."""
        self.conn.execute("INSERT INTO events(node, ts, kind, state, message, data) VALUES (?,?,?,?,?,?)",
                          (node, ts, "settings", None, "settings of this run (secrets masked)",
                           json.dumps(settings, default=str)))

    def prune(self, now: float, retention_s: float) -> int:
        """Delete facts older than ``now - retention_s`` (finished runs by ``stopped_at``); returns rows deleted."""
        cutoff = now - retention_s
        deleted = 0
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        for table, col in _PRUNE:
            deleted += cur.execute(f"DELETE FROM {table} WHERE {col} < ?", (cutoff,)).rowcount
        deleted += cur.execute("DELETE FROM runs WHERE stopped_at IS NOT NULL AND stopped_at < ?", (cutoff,)).rowcount
        cur.execute("COMMIT")
        if deleted:
            self.conn.execute("PRAGMA incremental_vacuum")
        return deleted

    # --- event → row mapping (one small function per event type)
    def _run_id(self, cur: sqlite3.Cursor, node: str) -> int | None:
        if node in self._open_run:
            return self._open_run[node]
        row = cur.execute("SELECT id FROM runs WHERE node = ? ORDER BY started_at DESC, id DESC LIMIT 1", (node,)).fetchone()
        return row[0] if row else None


def _event(cur: sqlite3.Cursor, e: ev.Event, kind: str, state: str | None, message: str, data: dict | None) -> None:
    cur.execute(
        "INSERT INTO events(node, ts, kind, state, message, data) VALUES (?,?,?,?,?,?)",
        (e.node, e.ts, kind, state, message, json.dumps(data) if data is not None else None),
    )


def _started(store: Store, cur: sqlite3.Cursor, e: ev.ProcessStarted) -> None:
    cur.execute(
        "INSERT INTO runs(node, started_at, pid, generation, mode) VALUES (?,?,?,?,?)",
        (e.node, e.ts, e.pid, e.generation, e.mode),
    )
    store._open_run[e.node] = int(cur.lastrowid)
    data = {"pid": e.pid, "pgid": e.pgid, "argv": list(e.argv), "generation": e.generation, "mode": e.mode, "run_id": e.run_id}
    _event(cur, e, "start", None, f"started pid {e.pid} ({e.generation}, {e.mode})", data)


def _exited(store: Store, cur: sqlite3.Cursor, e: ev.ProcessExited) -> None:
    run = store._run_id(cur, e.node)
    store._open_run.pop(e.node, None)
    if run is not None:
        cur.execute(  # only a run still open: when its start was lost (disk full) an earlier run stays as it was
            "UPDATE runs SET stopped_at = ?, exit_code = ?, signal = ?, uptime = ?, requested = ? WHERE id = ?"
            " AND stopped_at IS NULL",
            (e.ts, e.exit_code, e.signal, e.uptime, e.requested or None, run),
        )
    data = {"pid": e.pid, "exit_code": e.exit_code, "signal": e.signal, "uptime": e.uptime, "run_id": e.run_id,
            "requested": e.requested or None}
    _event(cur, e, "exit", None, f"pid {e.pid} {e.words} after {e.uptime:.0f} s", data)


def _state(store: Store, cur: sqlite3.Cursor, e: ev.StateChanged) -> None:
    _event(cur, e, "state", _val(e.new), e.reason, {"old": _val(e.old), "new": _val(e.new)})


def _restart(store: Store, cur: sqlite3.Cursor, e: ev.RestartScheduled) -> None:
    data = {"delay": e.delay, "cause": _val(e.cause), "recovery": _val(e.recovery), "attempt": e.attempt}
    _event(cur, e, "restart", None, e.detail or f"restart in {e.delay:.1f} s ({_val(e.cause)})", data)
    run = store._run_id(cur, e.node)
    if run is not None:
        cur.execute("UPDATE runs SET cause = ? WHERE id = ?", (_val(e.cause), run))


def _recovery(store: Store, cur: sqlite3.Cursor, e: ev.RecoveryAction) -> None:
    """A recovery step; a give-up record (``data["gave_up"]`` with a ``cause``, see
    ``gswarm.supervisor._giveup``) also sets ``runs.cause`` of the run that ended, as ``_restart`` does."""
    _event(cur, e, "recovery", None, e.detail, {"recovery": _val(e.recovery), **dict(e.data)})
    cause = e.data.get("cause") if e.data.get("gave_up") else None
    run = store._run_id(cur, e.node) if cause else None
    if run is not None:
        cur.execute("UPDATE runs SET cause = ? WHERE id = ? AND cause IS NULL", (cause, run))


def _notice(store: Store, cur: sqlite3.Cursor, e: ev.Notice) -> None:
    data = {"kind": e.kind, "severity": _val(e.severity), "title": e.title, "body": e.body}
    _event(cur, e, "notice", None, e.title, data)


def _incident(store: Store, cur: sqlite3.Cursor, e: ev.Incident) -> None:
    cur.execute(
        "INSERT INTO incidents(node, ts, category, recovery, severity, rule_id, evidence, advice) VALUES (?,?,?,?,?,?,?,?)",
        (e.node, e.ts, _val(e.category), _val(e.recovery), _val(e.severity), e.rule_id, json.dumps(list(e.evidence)), e.advice),
    )


def _sample(store: Store, cur: sqlite3.Cursor, e: ev.ResourceSample) -> None:
    vals = [e.data.get(c) for c in SAMPLE_COLUMNS]
    vals[SAMPLE_COLUMNS.index("gpu")] = json.dumps(e.data.get("gpu") or [])
    cols = ", ".join(SAMPLE_COLUMNS)
    marks = ",".join("?" * (len(SAMPLE_COLUMNS) + 2))
    cur.execute(f"INSERT INTO samples(node, ts, {cols}) VALUES ({marks})", (e.node, e.ts, *vals))


def _progress(store: Store, cur: sqlite3.Cursor, e: ev.ProgressUpdate) -> None:
    cur.execute(
        "INSERT INTO progress(node, ts, kind, round, stage, round_total, animal, peer_id, advanced, detail)"
        " VALUES (?,?,?,?,?,?,?,?,?,?)",
        (e.node, e.ts, e.kind, e.round, e.stage, e.round_total, e.animal, e.peer_id, int(e.advanced), e.detail),
    )


def _val(x: object) -> object:
    return getattr(x, "value", x)


_HANDLERS = {
    ev.ProcessStarted: _started, ev.ProcessExited: _exited, ev.StateChanged: _state,
    ev.RestartScheduled: _restart, ev.RecoveryAction: _recovery, ev.Notice: _notice,
    ev.Incident: _incident, ev.ResourceSample: _sample, ev.ProgressUpdate: _progress,
}
STORED_TYPES: tuple[type, ...] = tuple(_HANDLERS)

from gswarm.logs._storeservice import StoreService, create_service  # noqa: E402  (service needs Store)
