"""One "disk full" alarm per event bus, shared by every writer of the state dir (issue #13 case 2).

GSwarm's writers (capture file, JSON log, SQLite store, pid records, login/identity backups) catch their
own write errors where the write happens, undo any half-written record, and report here. The alarm turns a
burst of failures from many writers into one :class:`~gswarm.events.Notice` ``kind="disk_full"``
(severity ERROR) and, once writes succeed again with no failure for ``quiet`` seconds (monotonic clock), one
``kind="disk_ok"`` (WARNING, like the notifier's "recovered": a channel that got the alert gets the
all-clear). Supervision never depends on it: a writer that cannot write drops what it could not write
(counted) and the node keeps running and is restarted as usual.

Errors counted as "the disk": ``OSError`` of any errno (ENOSPC and EDQUOT are named "disk full"; EIO,
EROFS, EFBIG … "cannot write") and ``sqlite3`` errors whose SQLite code is SQLITE_FULL or SQLITE_IOERR
(or whose text says "disk is full" / "disk I/O error").
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import weakref
from typing import Any

from gswarm.events import EventBus, Notice, Severity

log = logging.getLogger(__name__)

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL, _SQLITE_IOERR = 13, 10
_ALARMS: "weakref.WeakKeyDictionary[EventBus, DiskAlarm]" = weakref.WeakKeyDictionary()


def is_write_error(exc: BaseException) -> bool:
    """True for an error that means "the state dir cannot be written": any OSError, or an sqlite3 error
    with code SQLITE_FULL/SQLITE_IOERR (extended codes included) or that text."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) in (_SQLITE_FULL, _SQLITE_IOERR):
            return True
        text = str(exc).lower()
        return "disk is full" in text or "disk i/o error" in text
    return False


def _describe(exc: BaseException) -> tuple[bool, str]:
    """``(full, text)``: whether ``exc`` says the disk is full, and a short reason for humans."""
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, "")
        why = f"{exc.strerror or exc}" + (f" ({name})" if name else "")
        return exc.errno in FULL_ERRNOS, why
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", 0) or 0
    return (code & 0xFF) == _SQLITE_FULL or "disk is full" in text.lower(), f"SQLite: {text}"


class DiskAlarm:
    """Raise once, clear once. ``clock`` gives ``monotonic()`` (the quiet period) and ``time()`` (event ts).

    :meth:`failed` is called by a writer for each failed write, :meth:`ok` after a successful one (cheap:
    returns at once unless the alarm is raised). ``failures`` counts failed writes per writer name.
    """

    def __init__(self, bus: EventBus, clock: Any, node: str, quiet: float = 30.0) -> None:
        self.bus, self.clock, self.node, self.quiet = bus, clock, node, quiet
        self.active = False
        self.raised = self.cleared = 0  # alerts published (tests, status)
        self.failures: dict[str, int] = {}
        self._last_failure = 0.0
        self._first: str = ""

    def failed(self, what: str, exc: BaseException, where: Any = None, node: str | None = None) -> None:
        """Writer ``what`` (e.g. "capture file") could not write ``where`` (a path, optional): ``exc``.

        The first failure of an episode logs a warning and publishes the ``disk_full`` Notice; later ones
        only count. Never raises."""
        self.failures[what] = self.failures.get(what, 0) + 1
        self._last_failure = self.clock.monotonic()
        if self.active:
            return
        self.active = True
        full, why = _describe(exc)
        place = f" {where}" if where else ""
        self._first = f"{what}{place}: {why}"
        log.warning("cannot write %s%s: %s; supervision continues", what, place, why)
        title = "disk full: GSwarm cannot write its files" if full else "GSwarm cannot write its files"
        body = (f"Writing the {self._first}. The node keeps running and is restarted as usual, but its output "
                "and history are not recorded until writes succeed again. Free space on the state dir's disk "
                "(or fix the device); GSwarm says so when writing works again.")
        self.raised += 1
        self._publish("disk_full", Severity.ERROR, title, body, node)

    def ok(self, node: str | None = None) -> None:
        """A write succeeded: clear the alarm when no write failed for ``quiet`` seconds. Never raises."""
        if not self.active or self.clock.monotonic() - self._last_failure < self.quiet:
            return
        self.active = False
        lost = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures.items()))
        self.failures = {}
        self.cleared += 1
        log.warning("writing works again (failed writes meanwhile: %s)", lost)
        self._publish("disk_ok", Severity.WARNING, "GSwarm can write its files again",
                      f"Writes succeed again. Failed writes while the disk was unavailable: {lost}. "
                      f"First failure: {self._first}.", node)

    def _publish(self, kind: str, sev: Severity, title: str, body: str, node: str | None) -> None:
        try:
            self.bus.publish(Notice(node or self.node, self.clock.time(), kind, sev, title, body))
        except Exception:  # pragma: no cover - publish never raises; belt and braces for a write path
            log.exception("could not publish the %s notice", kind)


def alarm_for(bus: EventBus, clock: Any, node: str) -> DiskAlarm:
    """The alarm shared by every writer on ``bus`` (created on first use with ``clock`` and ``node``)."""
    alarm = _ALARMS.get(bus)
    if alarm is None:
        alarm = _ALARMS[bus] = DiskAlarm(bus, clock, node)
    return alarm
