"""Structured JSON-lines log ``<state_dir>/logs/gswarm.jsonl``: GSwarm's own events (issue #18: not node output).

The node's output is kept once, in the capture file ``logs/<node>/output.log``
(:mod:`gswarm.supervisor.capture`); ``gswarm logs``, the API tail and the dashboard merge both into one
time-ordered view (:mod:`gswarm.logs._merged`, :mod:`gswarm.logs._captureread`, :mod:`gswarm.api.logfile`).
:func:`records_of`/:func:`encoded_of` still turn output events into records (the shape readers give capture
lines; levels as below), but :class:`JsonLogService` no longer writes them (:func:`logged`).

One compact object per line (no spaces after separators): ``ts_unix`` (Unix s, 6 decimals),
``node``, ``level`` (debug/info/warning/error/critical), ``kind``, ``pid``, ``message``; output
records add ``stream``, other records ``category`` and ``data``. An output record leaves out
``level`` when it is ``info`` and ``stream`` when it is ``stdout`` (readers fill both in). ``category`` is the failure category
for incidents, else the source: ``supervisor``, ``progress``, ``notice``; an output record has none
(its ``kind`` ``output`` says it; readers fill ``category: "output"``, ``gswarm.logs._jsonread``).
Files written before issue #18 also hold ``ts`` (the same time as ISO text) and ``category`` on
output records, and spaces after separators: readers accept both shapes. Dropping them took a
record of a ~95-byte line from ~3.2x to ~1.9x the line.
Progress updates (``ProgressUpdate``) are logged only when the operator cares (:func:`logged`): a
round/stage advance or the node's identity (hello, peer, swarm) — not every parsed progress line. Output levels come from the node's
own markers (generations.md §12 "Timestamp prefixes": ``LEVEL:logger:``, `` - LEVEL - ``,
``[LEVEL]``, `` LEVEL: ``), else ``info``; the lines of a Python traceback (``Traceback (most
recent call last):``, the indented and ``File`` lines after it, up to and including the final
exception line; chained-exception headers too) are ``error`` (:class:`TracebackTracker`, state
per node and stream). Exits with a non-zero code or a signal other than SIGTERM (15) are
``error`` (the log cannot tell a requested stop; SIGTERM is how GSwarm stops a node), other exits
``info``; incidents take their severity.

Rotation by size (``max_bytes``) and by UTC day into ``gswarm.jsonl.<YYYYmmddTHHMMSSZ>``, then
gzip (``.gz``); at most ``backups`` rotated files are kept, none older than ``retention_days``.
Written by :class:`JsonLogService` (buffered; flushed every ``flush_interval`` s and at shutdown).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gswarm import events as ev
from gswarm.logs._appender import Appender
from gswarm.paths import gzip_file
from gswarm.logs._levels import TracebackTracker, chunk_levels, line_level

__all__ = ["IDENTITY_KINDS", "LOG_NAME", "JsonLog", "JsonLogService", "TracebackTracker", "chunk_levels", "create_service", "encoded_of", "iso",
           "line_level", "logged", "record_of", "records_of", "rotated_files"]

log = logging.getLogger(__name__)
LOG_NAME = "gswarm.jsonl"
# gzip level of rotated files: 1 compresses node logs ~2.5x faster than the default 9 for ~1.4x the size
# (issue #18: a flood rotates every few seconds; the capture file uses the same level)
GZIP_LEVEL = 1
EARLY_FLUSH_LINES = 10_000  # buffered records that trigger a flush before the interval (bounds memory)
Parts = tuple[bytes, ...]  # serialised JSON log records, in pieces (see encoded_of)
# A lone surrogate (a path decoded with surrogateescape in a notice) cannot be UTF-8: written as the JSON
# escape "\udcff" it reads back as the same string, instead of failing the write of the whole buffer.
_LONE = "backslashreplace"
_STAMP = re.compile(r"\.(\d{8}T\d{6}Z)(?:-\d+)?(?:\.gz)?$")


def iso(ts: float) -> str:
    """``ts`` (Unix s) as ISO-8601 UTC with microseconds, e.g. ``2023-11-14T22:13:20.000000+00:00``."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds")


def record_of(e: ev.Event, tracker: TracebackTracker | None = None) -> dict[str, Any] | None:
    """The JSON record for an event, or None for events not logged (resource samples).

    ``tracker`` keeps traceback state across output events (None = this line alone).
    """
    base: dict[str, Any] = {"ts_unix": round(e.ts, 6), "node": e.node}
    if isinstance(e, ev.OutputLine):
        level = (tracker or TracebackTracker()).levels(e.node, e.stream, (e.text,))[0]
        return _output(base, level, e.pid, e.stream, e.text)
    if isinstance(e, ev.ResourceSample):
        return None
    if isinstance(e, ev.Incident):
        return base | {"level": e.severity.value, "kind": "incident", "pid": None, "category": e.category.value,
                       "message": e.advice or e.rule_id,
                       "data": {"rule_id": e.rule_id, "recovery": e.recovery.value, "evidence": list(e.evidence)}}
    kind, level, category, message, data = _describe(e)
    return base | {"level": level, "kind": kind, "pid": getattr(e, "pid", None), "category": category,
                   "message": message, "data": data}


IDENTITY_KINDS = frozenset({"hello", "peer", "swarm"})  # progress facts that say who the node is


def logged(e: ev.Event) -> bool:
    """Whether the JSON log records ``e``: GSwarm's own events but resource samples and the progress updates
    an operator does not need (issue #18): a ``ProgressUpdate`` only when it is an advance or an identity
    fact. The node's output (``OutputBatch``/``OutputLine``) is not logged here: it is kept once, in the
    capture file (``logs/<node>/output.log``), and readers merge it in (:mod:`gswarm.logs._captureread`)."""
    if type(e) is ev.ProgressUpdate:
        return e.advanced or e.kind in IDENTITY_KINDS
    return type(e) not in _NOT_LOGGED


_NOT_LOGGED = (ev.ResourceSample, ev.OutputBatch, ev.OutputLine)


def records_of(e: ev.Event, tracker: TracebackTracker | None = None) -> list[dict[str, Any]]:
    """The JSON records for an event: one per line of an ``OutputBatch``, else ``[record_of(e)]`` (or none).

    ``tracker`` keeps traceback state across events (the service passes one; None = this event alone).
    """
    if type(e) is not ev.OutputBatch:
        if tracker is not None and type(e) is ev.ProcessStarted:
            tracker.reset(e.node)
        rec = record_of(e, tracker)
        return [] if rec is None else [rec]
    ts_unix, node, pid, stream = round(e.ts, 6), e.node, e.pid, e.stream
    levels = (tracker or TracebackTracker()).levels(node, stream, e.texts)
    return [_output({"ts_unix": ts_unix, "node": node}, lvl, pid, stream, text) for text, lvl in zip(e.texts, levels)]


def _output(base: dict[str, Any], level: str, pid: int, stream: str, text: str) -> dict[str, Any]:
    """An output record: ``level`` left out when ``info`` and ``stream`` when ``stdout`` (the defaults readers fill in)."""
    rec = base | ({} if level == "info" else {"level": level}) | {"kind": "output", "pid": pid}
    return rec | ({} if stream == "stdout" else {"stream": stream}) | {"message": text}


def _dumps(rec: Any) -> str:
    return json.dumps(rec, ensure_ascii=False, default=str, separators=(",", ":"))


def encoded_of(e: ev.Event, tracker: TracebackTracker | None = None) -> list[tuple[str, float, Parts, int]]:
    """:func:`records_of` already serialised: ``[(ts_iso, ts_unix, parts, n)]``; the concatenation of
    ``parts`` (bytes) is ``n`` JSON records in UTF-8, each ended by ``b"\\n"`` (a record never holds a
    raw newline) and exactly ``json.dumps(record, ensure_ascii=False, separators=(",", ":"))``; ``ts_iso``
    (:func:`iso`) only decides the UTC day of rotation, it is not written. An ``OutputBatch`` gives one
    group of all its lines (the service no longer writes node output, issue #18; this serves tests and
    tools writing files of the earlier shape). Lone surrogates are written as JSON ``\\uXXXX`` escapes
    (:data:`_LONE`)."""
    if type(e) is not ev.OutputBatch:
        return _groups(records_of(e, tracker))
    recs = records_of(e, tracker)
    if not recs:
        return []
    return [(iso(e.ts), recs[0]["ts_unix"], ("".join(_dumps(r) + "\n" for r in recs).encode("utf-8", _LONE),), len(recs))]


def _groups(records: list[dict[str, Any]]) -> list[tuple[str, float, Parts, int]]:
    """One serialised group per record (the slow path: events other than output, :meth:`JsonLog.write`)."""
    return [(iso(r["ts_unix"]), r["ts_unix"], ((_dumps(r) + "\n").encode("utf-8", _LONE),), 1) for r in records]


def _describe(e: ev.Event) -> tuple[str, str, str, str, dict[str, Any]]:
    if isinstance(e, ev.StateChanged):
        return "state", "info", "supervisor", f"{e.old.value} -> {e.new.value} {e.reason}".strip(), {"old": e.old.value, "new": e.new.value}
    if isinstance(e, ev.ProcessStarted):
        return "start", "info", "supervisor", f"started pid {e.pid} ({e.generation}, {e.mode})", {"argv": list(e.argv), "generation": e.generation}
    if isinstance(e, ev.ProcessExited):
        lvl = "info" if e.requested or (e.exit_code in (0, None) and e.signal in (None, 15)) else "error"
        return "exit", lvl, "supervisor", f"pid {e.pid} {e.words} after {e.uptime:.1f} s", {"exit_code": e.exit_code, "signal": e.signal, "uptime": e.uptime, "requested": e.requested or None}
    if isinstance(e, ev.RestartScheduled):
        return "restart", "warning", "supervisor", e.detail or f"restart in {e.delay:.1f} s", {"delay": e.delay, "cause": e.cause.value, "recovery": e.recovery.value, "attempt": e.attempt}
    if isinstance(e, ev.RecoveryAction):
        lvl = "info" if e.recovery == ev.Recovery.NONE else "warning"  # NONE: housekeeping such as login backups
        return "recovery", lvl, "supervisor", e.detail, {"recovery": e.recovery.value, **dict(e.data)}
    if isinstance(e, ev.Notice):
        return "notice", e.severity.value, "notice", e.title, {"kind": e.kind, "body": e.body}
    if isinstance(e, ev.ProgressUpdate):
        parts = [e.kind] + [f"{k}={v}" for k, v in (("round", e.round), ("stage", e.stage)) if v is not None]
        msg = " ".join(parts) + (f" {e.detail}" if e.detail else "")  # a missing round/stage is left out, never "None"
        return "progress", "info", "progress", msg, {"round": e.round, "stage": e.stage, "advanced": e.advanced}
    return type(e).__name__.lower(), "info", "supervisor", "", {}


class JsonLog:
    """The file writer: ``write(records)`` appends and rotates; ``compress()`` gzips rotated files;
    ``prune(now)`` applies ``backups`` and ``retention_days``. Sizes in bytes."""

    def __init__(self, directory: Path, max_bytes: int = 50 << 20, backups: int = 10, retention_days: float = 30.0) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.dir, 0o700)  # also when the capture created it first (parents get the umask's mode)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
                raise
            # a full disk: each write creates the folder when it can, and reports when it cannot
        self.path = self.dir / LOG_NAME
        self.max_bytes, self.backups, self.retention_s = max_bytes, backups, retention_days * 86400.0
        self._day: str | None = None
        self.rotations = 0  # rotate() calls so far
        if self.path.exists() and self.path.stat().st_size:
            self._day = time.strftime("%Y%m%d", time.gmtime(self.path.stat().st_mtime))

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append ``records`` (rotating before a record that would pass ``max_bytes`` or starts a new UTC day)."""
        self.write_encoded(_groups(records))

    def write_encoded(self, groups: list[tuple[str, float, Parts, int]]) -> None:
        """Append already serialised records, ``[(ts_iso, ts_unix, parts, n)]`` (see :func:`encoded_of`),
        with the same rotation rules as :meth:`write`. A group that fits before ``max_bytes`` is written
        as it is (its parts one after the other). Raises OSError when a write fails (disk full, EIO): the
        file is then cut back to its size before this call (:class:`~gswarm.logs._appender.Appender`),
        so no record is left half written."""
        fh = self._open()
        try:
            size = fh.tell()
            for ts, ts_unix, parts, n in groups:
                day = ts[:10].replace("-", "")
                length = sum(map(len, parts))
                fits = size + length <= self.max_bytes or (not size and n == 1)
                if fits and not (size and self._day and day != self._day):  # no rotation inside
                    self._day = day if size == 0 or self._day is None else self._day
                    for part in parts:
                        fh.write(part)
                    size += length
                    continue
                for record in b"".join(parts).splitlines(keepends=True):  # crosses a rotation: record by record
                    if size and (size + len(record) > self.max_bytes or (self._day and day != self._day)):
                        fh.close()
                        self.rotate(ts_unix)
                        fh, size = self._open(), 0
                    self._day = day if size == 0 or self._day is None else self._day
                    fh.write(record)
                    size += len(record)
            fh.close()
        except BaseException:
            fh.abort()
            raise

    def _open(self) -> Appender:
        """The current file for appending, created 0600 (it holds the node's output); the folder is made
        (0700) when missing, e.g. after a start on a full disk."""
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Appender(self.path, 0o600)

    def rotate(self, now: float) -> Path:
        """Rename the current file to ``gswarm.jsonl.<stamp>``; returns the new name."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        existing = self.rotated()
        if existing and _order(existing[-1])[0] > stamp:  # keep names in write order if clocks/ts go backwards
            stamp = _order(existing[-1])[0]
        n = _order(existing[-1])[1] + 1 if existing and _order(existing[-1])[0] == stamp else 0
        target = self.dir / (f"{LOG_NAME}.{stamp}" + (f"-{n}" if n else ""))  # after the newest, never in a pruned gap
        while target.exists() or target.with_name(target.name + ".gz").exists():
            n += 1
            target = self.dir / f"{LOG_NAME}.{stamp}-{n}"
        os.replace(self.path, target)
        self._day = None
        self.rotations += 1
        return target

    def rotated(self) -> list[Path]:
        """Rotated files (plain or ``.gz``), oldest first."""
        return rotated_files(self.dir)

    def compress(self) -> int:
        """Gzip rotated plain files (atomic: temp file + rename); returns how many."""
        n = 0
        for p in self.rotated():
            if p.suffix != ".gz":
                gzip_file(p, GZIP_LEVEL)
                n += 1
        return n

    def prune(self, now: float) -> list[Path]:
        """Delete rotated files beyond ``backups`` or rotated before ``now - retention_days``."""
        files = self.rotated()
        cutoff = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - self.retention_s))
        doomed = files[: max(0, len(files) - self.backups)] + [p for p in files if _STAMP.search(p.name)[1] < cutoff]
        for p in dict.fromkeys(doomed):
            p.unlink(missing_ok=True)
        return list(dict.fromkeys(doomed))


def rotated_files(directory: Path) -> list[Path]:
    """Rotated JSON log files in ``directory`` (plain or ``.gz``), oldest first."""
    return sorted((p for p in Path(directory).glob(f"{LOG_NAME}.*") if _STAMP.search(p.name)), key=_order)


def _order(p: Path) -> tuple[str, int]:
    m = re.search(r"\.(\d{8}T\d{6}Z)(?:-(\d+))?", p.name)
    return (m[1], int(m[2] or 0)) if m else ("", 0)


class JsonLogService:
    """Service ``jsonlog``: buffers the events it logs (:func:`logged`; inline subscriber, no drops up to
    ``max_buffer`` records; ``dropped`` counts records) and writes them every ``flush_interval`` seconds,
    as soon as ``EARLY_FLUSH_LINES`` (or half of ``max_buffer``) wait, and at shutdown; compresses and
    prunes after rotations. ``alarm``: a :class:`gswarm.diskfull.DiskAlarm` told about failed and
    successful writes (None: failures are logged)."""

    name = "jsonlog"

    def __init__(self, bus: ev.EventBus, clock: Any, writer: JsonLog, flush_interval: float = 1.0, max_buffer: int = 100_000,
                 alarm: Any = None) -> None:
        self.bus, self.clock, self.writer, self.alarm = bus, clock, writer, alarm
        self.flush_interval, self.max_buffer = flush_interval, max_buffer
        self._buf: list[ev.Event] = []  # one record each
        self.dropped = 0
        self.rotations = 0
        self._early = False  # a flush is scheduled because the buffer is filling up
        self._early_at = min(max_buffer // 2, EARLY_FLUSH_LINES)
        self._tidy_due = False  # an early flush rotated the file: run() compresses and prunes
        self._tidy_lock = threading.Lock()  # one compress/prune pass at a time (tidy)
        self._unsubscribe = bus.subscribe(self._on_event)

    def _on_event(self, e: ev.Event) -> None:
        if not logged(e):  # node output included: the capture file holds it (issue #18)
            return
        if len(self._buf) < self.max_buffer:
            self._buf.append(e)
        else:
            self.dropped += 1
        if len(self._buf) >= self._early_at and not self._early:  # a burst: write now, not in a second
            try:
                asyncio.get_running_loop().call_soon(self._flush_early)
                self._early = True
            except RuntimeError:  # no loop (tests feeding the bus directly): the next flush() writes it
                pass

    def _flush_early(self) -> None:
        self._early = False
        try:
            seen = self.rotations
            self.flush()
            self._tidy_due = self._tidy_due or self.rotations != seen  # gzip later, from run(), off the loop
        except Exception:
            log.exception("writing the JSON log failed")

    def flush(self) -> int:
        """Write the buffered events now; returns the number of records written.

        A failed write (disk full, EIO) drops this batch (counted in ``dropped``; the file keeps only
        whole records) and goes to the disk alarm (:mod:`gswarm.diskfull`) instead of raising."""
        batch, self._buf = self._buf, []
        groups = [g for e in batch for g in encoded_of(e)]
        if groups:
            before = self.writer.rotations  # a counter, not a listing of the folder per flush (a flood flushes often)
            try:
                self.writer.write_encoded(groups)
            except OSError as exc:
                self.dropped += sum(g[3] for g in groups)
                if self.alarm is not None:
                    self.alarm.failed("JSON log", exc, self.writer.path)
                else:
                    log.warning("cannot write %s: %s", self.writer.path, exc)
                return 0
            self.rotations += self.writer.rotations != before
            if self.alarm is not None and self.alarm.active:
                self.alarm.ok()
        return sum(g[3] for g in groups)

    def tidy(self) -> OSError | None:
        """Compress rotated files and apply retention (after a rotation). Returns the OSError when
        compressing failed (no room for the ``.gz``: the plain rotated file stays); it runs in a worker
        thread, so the caller reports it on the loop (:meth:`_tidied`). One pass at a time: a pass still
        running in its worker when :meth:`run` is cancelled is waited for by the final one (two passes on
        the same file raced: ENOENT and a lost record)."""
        with self._tidy_lock:
            failed = None
            try:
                self.writer.compress()
            except OSError as exc:
                failed = exc
            self.writer.prune(self.clock.time())
            return failed

    def _tidied(self, failed: OSError | None) -> None:
        if failed is None:
            return
        if self.alarm is not None:
            self.alarm.failed("JSON log (compressing)", failed, self.writer.dir)
        else:
            log.warning("compressing rotated JSON logs in %s failed: %s", self.writer.dir, failed)

    async def run(self) -> None:
        """Flush periodically until cancelled; flush once more on the way out."""
        running = False  # a tidy pass in its worker thread: cancelled here, it goes on there
        try:
            self.writer.prune(self.clock.time())
            while True:
                await self.clock.sleep(self.flush_interval)
                try:
                    seen = self.rotations
                    self.flush()
                    if self.rotations != seen or self._tidy_due:
                        self._tidy_due, running = False, True
                        self._tidied(await asyncio.to_thread(self.tidy))  # gzip of a big file off the loop
                        running = False
                except Exception:
                    log.exception("writing the JSON log failed")
        finally:
            self._unsubscribe()
            try:
                seen = self.rotations
                self.flush()
                if self.rotations != seen or self._tidy_due or running:
                    self._tidied(self.tidy())  # after a cancelled pass: waits for it, then does what it left
            except Exception:
                log.exception("final flush of the JSON log failed")


def create_service(rt: Any) -> JsonLogService:
    """Factory: ``<state_dir>/logs/gswarm.jsonl`` with ``log_max_bytes``, ``log_backups``, ``retention_days``."""
    from gswarm.diskfull import alarm_for

    s = rt.settings
    return JsonLogService(rt.bus, rt.clock, JsonLog(Path(rt.state_dir) / "logs", s.log_max_bytes, s.log_backups, s.retention_days),
                          alarm=alarm_for(rt.bus, rt.clock, rt.node))
